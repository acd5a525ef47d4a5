package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Hostile input to the CLI: what a user (or a script fed by an attacker)
// passes on stdin, in the environment or as arguments, and what rotor
// must do with it.

// rotorIn runs rotor in dir with stdin.
func rotorIn(t *testing.T, dir string, stdin []byte, env []string, args ...string) procResult {
	t.Helper()
	cmd := exec.Command(rotorBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"ROTOR_INITIATOR=user:tester"}, env...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := procResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run rotor %v: %v", args, err)
	}
	return r
}

// TestHostileStagedValues: rotor stage refuses, with a usage error and
// before anything is tested or stored, every value that is not one line
// of UTF-8 without NUL. Before, x\xff\xfe was tested as it was and stored
// as x followed by U+FFFD, and a NUL reached the store, from where no
// environment variable could carry it.
func TestHostileStagedValues(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	mustRotor(t, dir, "rotate", "demo")
	good := "exRMA4j6sRBEldB7GMd3XAHknXo9JxSeMrjyW1CWiVs"
	tests := []struct {
		name  string
		stdin string
		env   string // staged with --from-env when set
	}{
		{"invalid UTF-8", good[:20] + "\xff\xfe" + good[22:], ""},
		{"NUL", good[:20] + "\x00" + good[21:], ""},
		{"two lines", good + "\n" + good + "\n", ""},
		{"carriage return inside", good[:20] + "\r" + good[21:], ""},
		{"empty", "\n", ""},
		{"newline from the environment", "", good[:20] + "\n" + good[21:]},
		{"invalid UTF-8 from the environment", "", good[:20] + "\xff" + good[21:]},
	}
	var outputs []procResult
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r procResult
			if tt.env != "" {
				r = rotorIn(t, dir, nil, []string{"HOSTILE_KEY=" + tt.env}, "stage", "demo", "--from-env", "HOSTILE_KEY")
			} else {
				r = rotorIn(t, dir, []byte(tt.stdin), nil, "stage", "demo", "--from-stdin")
			}
			outputs = append(outputs, r)
			if r.code != exitUsage || !strings.Contains(r.stderr, "invalid key value") {
				t.Fatalf("exit %d, want %d with the rule in the message\n%s", r.code, exitUsage, r.stderr)
			}
			if s := status(t, dir); s.Next != nil {
				t.Fatal("a refused value was staged")
			}
		})
	}
	// One trailing line ending frames the value and is not part of it.
	r := rotorIn(t, dir, []byte(good+"\r\n"), nil, "stage", "demo", "--from-stdin")
	if r.code != 0 {
		t.Fatalf("stage with a CRLF line ending: exit %d\n%s", r.code, r.stderr)
	}
	if got := reveal(t, dir, "next"); got != good {
		t.Fatal("the staged value is not the line without its line ending")
	}
	leakCheck(t, dir, outputs, good)
}

// TestHostileTokenHash: rotor token hash refuses tokens a person would
// choose, which the server would refuse anyway; before, `echo admin |
// rotor token hash` printed a hash that made "admin" an API token.
func TestHostileTokenHash(t *testing.T) {
	dir := t.TempDir()
	for _, weak := range []string{"admin", "changeme123", "rtr_deploy-bot-2026", strings.Repeat("ab", 40)} {
		r := rotorIn(t, dir, []byte(weak+"\n"), nil, "token", "hash")
		if r.code != exitUsage || !strings.Contains(r.stderr, "too weak") || strings.Contains(r.stdout, "sha256:") {
			t.Errorf("%d-character weak token: exit %d, stdout %q, stderr %q", len(weak), r.code, r.stdout, r.stderr)
		}
	}
	r := rotorIn(t, dir, nil, nil, "token", "new")
	tok, _, _ := strings.Cut(strings.TrimPrefix(r.stdout, "token: "), "\n")
	if r = rotorIn(t, dir, []byte(tok+"\n"), nil, "token", "hash"); r.code != 0 || !strings.HasPrefix(r.stdout, "sha256:") {
		t.Fatalf("a token from rotor token new: exit %d %s", r.code, r.stderr)
	}
}

// TestHostileHookEnvironment: hooks and rotor run children get rotor's
// environment without what rotor consumed for itself (ROTOR_* settings,
// an HTTP hook's token), unless the config passes a variable on; the rest
// (PORT, KUBECONFIG) passes through. Before, they got everything.
func TestHostileHookEnvironment(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(hook.Close)
	cfg := strings.Replace(defaultConfig, "      encoding: base64url\n", "      encoding: base64url\n"+
		"    reload:\n"+
		"      - command: [sh, -c, 'env > hook.env']\n"+
		"      - command: [sh, -c, 'env > passed.env']\n"+
		"        pass_env: [DEPLOY_HOOK_TOKEN]\n"+
		"      - http: {url: '"+hook.URL+"', token_env: DEPLOY_HOOK_TOKEN}\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"DEPLOY_HOOK_TOKEN=hook-token-of-rotor-only", "PORT=3000", "KUBECONFIG=/etc/kube", "ROTOR_CONFIG=rotor.yaml"}
	if r := rotorIn(t, dir, nil, env, "rotate", "demo"); r.code != 0 {
		t.Fatalf("rotate: exit %d\n%s", r.code, r.stderr)
	}
	check := func(file string, want, not []string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %s", file, w)
			}
		}
		for _, n := range not {
			if strings.Contains(string(b), n) {
				t.Errorf("%s has %s", file, n)
			}
		}
	}
	check("hook.env", []string{"PORT=3000", "KUBECONFIG=/etc/kube", "ROTOR_SECRET=demo"},
		[]string{"DEPLOY_HOOK_TOKEN", "ROTOR_CONFIG", "ROTOR_INITIATOR"})
	check("passed.env", []string{"DEPLOY_HOOK_TOKEN=hook-token-of-rotor-only"}, []string{"ROTOR_INITIATOR"})

	for _, tt := range []struct {
		args      []string
		want, not []string
	}{
		{nil, []string{"PORT=3000", "DEMO_PRIMARY="}, []string{"DEPLOY_HOOK_TOKEN", "ROTOR_CONFIG", "ROTOR_INITIATOR"}},
		{[]string{"--pass-env", "DEPLOY_HOOK_TOKEN"}, []string{"DEPLOY_HOOK_TOKEN=hook-token-of-rotor-only"}, []string{"ROTOR_INITIATOR"}},
	} {
		args := append(append([]string{"run"}, tt.args...), "--", "sh", "-c", "env > run.env")
		if r := rotorIn(t, dir, nil, env, args...); r.code != 0 {
			t.Fatalf("rotor run: exit %d\n%s", r.code, r.stderr)
		}
		check("run.env", tt.want, tt.not)
	}
}

// TestHostileTerminalOutput: fields rotor prints but does not control (an
// initiator, which for API calls may be an unverified token's claim) cannot
// drive the terminal: bidi and other format characters and escape
// sequences come out as \u escapes, in tables and in JSON (which stays
// valid and decodes to the original text). Before, audit tail printed
// U+202E as it was, so "user:evil\u202eretsiger" read as another name.
func TestHostileTerminalOutput(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	hostile := "user:mallory\u202e\u2066nimda\x1b[2J\u200b"
	if r := rotorIn(t, dir, nil, []string{"ROTOR_INITIATOR=" + hostile}, "rotate", "demo"); r.code != 0 {
		t.Fatalf("rotate: %d %s", r.code, r.stderr)
	}
	table := mustRotor(t, dir, "audit", "tail").stdout
	js := mustRotor(t, dir, "audit", "tail", "-o", "json").stdout
	for _, out := range []string{table, js} {
		for _, bad := range []string{"\u202e", "\u2066", "\x1b", "\u200b"} {
			if strings.Contains(out, bad) {
				t.Fatalf("output holds %+q:\n%s", bad, out)
			}
		}
	}
	if !strings.Contains(table, `mallory\u202e\u2066nimda`) {
		t.Fatalf("table does not show the escapes:\n%s", table)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(js), "\n") {
		var rec struct{ Initiator string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("JSON output does not parse: %v\n%s", err, line)
		}
		found = found || rec.Initiator == hostile
	}
	if !found {
		t.Fatalf("no JSON record decodes to the original initiator:\n%s", js)
	}
	// get --reveal prints the value byte for byte.
	if v := reveal(t, dir, "current"); len(v) != 43 {
		t.Fatalf("revealed value of %d bytes", len(v))
	}
}

// TestHostileReplayedStoreFile: somebody who can write the store directory
// puts back an older copy of a secret's file, whose revoked key would be
// current again. Every command that loads it exits 5 and writes nothing:
// the file stays as it was put back. Before, rotor used it, and audit
// verify passed.
func TestHostileReplayedStoreFile(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	mustRotor(t, dir, "rotate", "demo")
	file := filepath.Join(dir, ".rotor", "store", "demo.age")
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	mustRotor(t, dir, "rotate", "demo")
	mustRotor(t, dir, "rotate", "demo")
	mustRotor(t, dir, "revoke", "demo", "--force")
	if err := os.WriteFile(file, old, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"status", "demo"}, {"get", "demo"}, {"get", "demo", "--reveal"}, {"rotate", "demo"},
		{"rotate", "--due"}, {"rollback", "demo"}, {"revoke", "demo", "--force"},
		{"stage", "demo", "--from-stdin"}, {"run", "--secret", "demo", "--", "true"}, {"audit", "verify"},
	} {
		r := rotorIn(t, dir, []byte("replayed-stage-value-0123456789\n"), nil, args...)
		if r.code != 5 {
			t.Errorf("rotor %s on a replayed store file: exit %d, want 5\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		if now, err := os.ReadFile(file); err != nil || !bytes.Equal(now, old) {
			t.Fatalf("rotor %s wrote over the replayed store file (%v)", strings.Join(args, " "), err)
		}
	}
}
