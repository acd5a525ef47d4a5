package exec_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/internal/exectest"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/provider/exec"
	"github.com/rotor-dev/rotor/store"
)

// noLeak fails the test if any secret value shows in err.
func noLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	text := fmt.Sprintf("%v %+v", err, err)
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("error text leaks a secret value: %s", text)
		}
	}
}

func newProvider(t *testing.T, timeout time.Duration, argv ...string) *exec.Provider {
	t.Helper()
	p, err := exec.New("db-password", exec.Options{Command: argv, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// script writes a command for the provider to execute (see
// [exectest.Script] for why tests write scripts only through it).
func script(t *testing.T, body string) string {
	t.Helper()
	return exectest.Script(t, "cmd.sh", body)
}

func TestProtocolRoundTrip(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	p := newProvider(t, 10*time.Second, "testdata/provider.sh", state)
	ctx := t.Context()

	first, err := p.Mint(ctx, provider.MintRequest{Secret: "db-password", Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.Value, "ex_") || first.Meta["issuer"] != "provider.sh" {
		t.Fatalf("Mint = meta %v", first.Meta)
	}
	cur := &store.Key{Value: first.Value, ID: "kid-1", Meta: first.Meta}
	second, err := p.Mint(ctx, provider.MintRequest{Secret: "db-password", Current: cur, Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{first.Value, second.Value}
	for _, v := range secrets {
		if err := p.Test(ctx, v); err != nil {
			noLeak(t, err, secrets...)
			t.Fatalf("Test(minted) = %v", err)
		}
	}
	old := store.Key{Value: first.Value, ID: "kid-1"}
	for i := range 2 {
		if err := p.Revoke(ctx, old); err != nil {
			noLeak(t, err, secrets...)
			t.Fatalf("Revoke #%d = %v", i+1, err)
		}
	}
	err = p.Test(ctx, first.Value)
	if !errors.Is(err, provider.ErrRejected) || !strings.Contains(err.Error(), "unknown credential") {
		t.Fatalf("Test(revoked) = %v, want ErrRejected with the command's reason", err)
	}
	noLeak(t, err, secrets...)
}

// TestMintIsIdempotentOnRequestID: a mint repeated with the request id of
// an earlier one (a run that died before saving the answer) gets the same
// credential back and mints nothing new; another id gets a new one. The
// request carries request_id on stdin and in ROTOR_REQUEST_ID.
func TestMintIsIdempotentOnRequestID(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	p := newProvider(t, 10*time.Second, "testdata/provider.sh", state)
	if !p.IdempotentMint() {
		t.Fatal("the exec provider does not declare its mint idempotent")
	}
	ctx := t.Context()
	req := provider.MintRequest{Secret: "db-password", RequestID: "20261101T120000Z-3f2a9c1d-mint-0b8e7f6a"}
	first, err := p.Mint(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Mint(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Value != first.Value {
		t.Fatal("a mint repeated with the same request id answered another credential")
	}
	req.RequestID += "-other"
	other, err := p.Mint(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if other.Value == first.Value {
		t.Fatal("a new request id answered an old credential")
	}
	entries, _ := os.ReadDir(state)
	keys := 0
	for _, e := range entries {
		if !e.IsDir() {
			keys++
		}
	}
	if keys != 2 {
		t.Fatalf("the issuer holds %d credentials after three mints of two requests, want 2", keys)
	}

	dir := t.TempDir()
	rec := newProvider(t, 10*time.Second, script(t, fmt.Sprintf(`cat > %[1]s/stdin
env > %[1]s/env
echo '{"version":2,"value":"minted-value-1234"}'
`, dir)))
	if _, err := rec.Mint(ctx, provider.MintRequest{Secret: "db-password", RequestID: "req-42", Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	var sent map[string]any
	if err := json.Unmarshal(b, &sent); err != nil || sent["request_id"] != "req-42" || sent["version"] != 2.0 {
		t.Fatalf("mint request = %s (%v), want version 2 with request_id req-42", b, err)
	}
	if env, _ := os.ReadFile(filepath.Join(dir, "env")); !strings.Contains(string(env), "ROTOR_REQUEST_ID=req-42\n") {
		t.Error("environment lacks ROTOR_REQUEST_ID")
	}
}

// TestMintErrorAnswerMintedNothing: the protocol makes an error answer to
// mint a promise that nothing was created, so rotor can end the rotation;
// a crash of the command (non-zero exit) leaves it unknown.
func TestMintErrorAnswerMintedNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	answered := newProvider(t, 10*time.Second, script(t, `cat >/dev/null; echo '{"version":2,"error":"quota exceeded"}'`+"\n"))
	if _, err := answered.Mint(ctx, provider.MintRequest{RequestID: "r"}); !errors.Is(err, provider.ErrNotMinted) {
		t.Fatalf("Mint with an error answer = %v, want ErrNotMinted", err)
	}
	crashed := newProvider(t, 10*time.Second, script(t, "cat >/dev/null; exit 3\n"))
	if _, err := crashed.Mint(ctx, provider.MintRequest{RequestID: "r"}); err == nil || errors.Is(err, provider.ErrNotMinted) {
		t.Fatalf("Mint of a command that exited 3 = %v, want an error that does not claim nothing was minted", err)
	}
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Record stdin, argv and the environment, then answer.
	p := newProvider(t, 10*time.Second, script(t, fmt.Sprintf(`cat > %[1]s/stdin
echo "$@" > %[1]s/argv
env > %[1]s/env
echo '{"version":2}'
`, dir)))
	const value = "s3cret-value-for-revoke"
	key := store.Key{Value: value, ID: "kid-9", Meta: map[string]string{"issuer_id": "u-17"}}
	if err := p.Revoke(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	var req map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"version": 2.0, "action": "revoke", "secret": "db-password", "value": value,
		"key_id": "kid-9", "meta": map[string]any{"issuer_id": "u-17"}}
	if fmt.Sprint(req) != fmt.Sprint(want) {
		t.Errorf("request = %v\nwant      %v", req, want)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
	if strings.Contains(string(env)+string(argv), value) {
		t.Error("the value reached argv or the environment")
	}
	for _, kv := range []string{"ROTOR_SECRET=db-password", "ROTOR_ACTION=revoke", "ROTOR_KEY_ID=kid-9"} {
		if !strings.Contains(string(env), kv+"\n") {
			t.Errorf("environment lacks %s", kv)
		}
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	const sent = "candidate-value-0123456789"
	tests := map[string]struct {
		script  string
		action  string // mint or test
		want    string
		timeout time.Duration
		reject  bool
	}{
		"non-zero exit": {
			script: "cat >&2\necho 'boom' >&2\nexit 4\n", action: "test",
			want: "exec: test: command " /* then the path */},
		"bad json echoing the value": {
			script: "v=$(cat)\necho \"here you go: $v\"\n", action: "test",
			want: "invalid response: not valid JSON"},
		"truncated json": {
			script: "printf '{\"version\":2,\"value\":\"abc'\n", action: "mint", want: "truncated JSON"},
		"empty stdout": {script: "exit 0\n", action: "test", want: "empty stdout"},
		"unknown field": {
			script: `echo '{"version":2,"value":"x1234567","extra":true}'` + "\n", action: "mint",
			want: `unknown field "extra"`},
		"unknown field shaped like a secret": {
			script: `echo '{"version":2,"` + sent + `":true}'` + "\n", action: "test",
			want: "unknown field"},
		"wrong version": {script: `echo '{"version":3}'` + "\n", action: "test", want: "unsupported protocol version 3"},
		"version 1":     {script: `echo '{"version":1}'` + "\n", action: "test", want: "protocol version 1; rotor speaks version 2"},
		"no version":    {script: `echo '{}'` + "\n", action: "test", want: "no version"},
		"two objects": {
			script: `echo '{"version":2} {"version":2}'` + "\n", action: "test", want: "more than one JSON value"},
		"value in a test answer": {
			script: `echo '{"version":2,"value":"` + sent + `"}'` + "\n", action: "test",
			want: "must not carry a value"},
		"mint without value": {script: `echo '{"version":2}'` + "\n", action: "mint", want: "without a value"},
		"numeric value": {
			script: `echo '{"version":2,"value":98765432123456789}'` + "\n", action: "mint",
			want: `field "value" has the wrong type (got number, want string)`},
		"secret in meta": {
			script: `echo '{"version":2,"value":"new-value-abcdef","meta":{"copy":"x-new-value-abcdef"}}'` + "\n",
			action: "mint", want: `meta "copy" contains the secret value`},
		"error naming the value": {
			script: `echo '{"version":2,"error":"bad ` + sent + `"}'` + "\n", action: "test",
			want: "failed: bad [redacted]"},
		"rejected": {
			script: `echo '{"version":2,"error":"expired","rejected":true}'` + "\n", action: "test",
			want: "expired", reject: true},
		"timeout": {
			script: "echo $$ > PGIDFILE\nsleep 30\n", action: "test", timeout: 200 * time.Millisecond,
			want: "timed out after 200ms"},
		"timeout with a child holding stdout": {
			script: "echo $$ > PGIDFILE\n(sleep 30; echo late) &\nsleep 30\n", action: "mint", timeout: 200 * time.Millisecond,
			want: "timed out after 200ms"},
		"huge stdout": {
			script: "head -c 2000000 /dev/zero | tr '\\0' a\n", action: "test", want: "more than 1 MiB"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			pgidFile := filepath.Join(t.TempDir(), "pgid")
			p := newProvider(t, timeout, script(t, strings.ReplaceAll(tt.script, "PGIDFILE", pgidFile)))
			var err error
			cur := &store.Key{Value: sent, ID: "kid-c"}
			switch tt.action {
			case "mint":
				_, err = p.Mint(t.Context(), provider.MintRequest{Current: cur})
			default:
				err = p.Test(t.Context(), sent)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%s = %v, want an error containing %q", tt.action, err, tt.want)
			}
			if errors.Is(err, provider.ErrRejected) != tt.reject {
				t.Errorf("errors.Is(ErrRejected) = %v, want %v", !tt.reject, tt.reject)
			}
			if !strings.Contains(err.Error(), "cmd.sh") || !strings.Contains(err.Error(), "exec: "+tt.action) {
				t.Errorf("error %q does not name the command and the action", err)
			}
			noLeak(t, err, sent, "new-value-abcdef", "98765432123456789")
			if tt.timeout != 0 {
				// The provider runs the command in its own process group
				// (the script's pid); a timeout must kill all of it.
				waitGroupGone(t, pgidFile)
			}
		})
	}
}

// waitGroupGone fails the test unless every process of the process group
// whose id the script wrote to pgidFile has exited (zombies count as
// exited). SIGKILL takes effect asynchronously, so it waits for that, up to
// a deadline far shorter than the scripts' 30-second sleeps.
func waitGroupGone(t *testing.T, pgidFile string) {
	t.Helper()
	b, err := os.ReadFile(pgidFile)
	if err != nil {
		t.Fatalf("the script did not record its process group: %v", err)
	}
	pgid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(10 * time.Second)
	for {
		live := liveInGroup(t, pgid)
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of the command's group %s still run after the timeout: the command was not stopped", live, pgid)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}

// liveInGroup lists the pids of non-zombie processes in process group pgid.
func liveInGroup(t *testing.T, pgid string) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited while we looked
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces, so split after ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) >= 3 && fields[2] == pgid && fields[0] != "Z" && fields[0] != "X" {
			live = append(live, filepath.Base(filepath.Dir(f)))
		}
	}
	return live
}

func TestStderrIsQuotedRedacted(t *testing.T) {
	t.Parallel()
	const sent = "candidate-value-0123456789"
	p := newProvider(t, 10*time.Second, script(t, "cat >&2\necho 'db said: no' >&2\nexit 1\n"))
	err := p.Test(t.Context(), sent)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(err.Error(), "db said: no") ||
		!strings.Contains(err.Error(), `"value":"[redacted]"`) {
		t.Fatalf("Test = %v, want the exit status and redacted stderr", err)
	}
	noLeak(t, err, sent)
}

func TestMissingCommand(t *testing.T) {
	t.Parallel()
	p := newProvider(t, time.Second, filepath.Join(t.TempDir(), "nope"))
	err := p.Test(context.Background(), "v-123456")
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Test = %v, want an error naming the command", err)
	}
	if _, err := exec.New("x", exec.Options{}); err == nil {
		t.Error("New accepted an empty command")
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	if got := (exec.Options{}).WithDefaults().Timeout; got != exec.DefaultTimeout {
		t.Errorf("default timeout = %s, want %s", got, exec.DefaultTimeout)
	}
	err := exec.Options{Command: []string{""}, Timeout: -time.Second}.Validate()
	var list field.List
	if !errors.As(err, &list) || len(list) != 2 || list[0].Path.String() != "command" || list[1].Path.String() != "timeout" {
		t.Fatalf("Validate = %v, want problems at command and timeout", err)
	}
	resolved := exec.Options{Command: []string{"./bin/rotate", "./arg"}}.ResolvePaths("/etc/rotor")
	if got := resolved.Command; got[0] != "/etc/rotor/bin/rotate" || got[1] != "./arg" {
		t.Errorf("ResolvePaths = %q, want the program resolved against the directory and the arguments untouched", got)
	}
	if got := (exec.Options{Command: []string{"rotate-db"}}).ResolvePaths("/etc/rotor").Command[0]; got != "rotate-db" {
		t.Errorf("ResolvePaths(bare name) = %q, want it left for PATH", got)
	}
}
