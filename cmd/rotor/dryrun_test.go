package main

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/internal/clerkfake"
)

// TestDryRunChangesNothing: rotate, rollback and revoke with --dry-run, on
// a Clerk instance key in manual mode against the Clerk emulator, say
// what they would do (staged key or a refusal asking for one, the hooks,
// the key to restore, the key to delete in the Dashboard) and exit as the
// real command would; afterwards every file of the store and the audit
// log is byte for byte the same, no hook ran, and the emulator saw no
// request at all.
func TestDryRunChangesNothing(t *testing.T) {
	fake := clerkfake.New(t)
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	writeConfigWithout(t, dir, `  - name: clerk-secret-key
    provider: clerk
    clerk: {api_url: `+fake.URL()+`}
    reload:
      - command: [touch, reloaded]
    verify:
      - command: [touch, verified]
`)
	const name = "clerk-secret-key"
	var outs []procResult
	do := func(env []string, args ...string) procResult {
		t.Helper()
		r := rotor(t, dir, env, args...)
		outs = append(outs, r)
		return r
	}
	stage := func(key string) {
		t.Helper()
		if r := do([]string{"NEW_KEY=" + key}, "stage", name, "--from-env", "NEW_KEY", "--dashboard-name", "rotor-next"); r.code != 0 {
			t.Fatalf("stage: exit %d\n%s", r.code, r.stderr)
		}
	}
	k0, k1, k2 := fake.Key(), fake.AddKey(), fake.AddKey()
	stage(k0)
	do(nil, "rotate", name)
	stage(k1)
	do(nil, "rotate", name)
	id := func(slot string) string {
		t.Helper()
		return strings.TrimSpace(do(nil, "get", name, "--slot", slot).stdout)
	}
	prev, cur := id("previous"), id("current")

	before, requests := snapshot(t, dir), fake.AllRequests()
	for _, m := range []string{"reloaded", "verified"} {
		if err := os.Remove(filepath.Join(dir, m)); err != nil {
			t.Fatalf("setup: the %s hook did not run: %v", m, err)
		}
	}
	unchanged := func() {
		t.Helper()
		if after := snapshot(t, dir); !maps.Equal(before, after) {
			t.Errorf("a dry run changed the store or the audit log")
		}
		if got := fake.AllRequests(); !maps.Equal(requests, got) {
			t.Errorf("a dry run called Clerk: requests %v, then %v", requests, got)
		}
		for _, m := range []string{"reloaded", "verified"} {
			if _, err := os.Stat(filepath.Join(dir, m)); err == nil {
				t.Errorf("a dry run ran the %s hook", m)
			}
		}
	}
	want := func(r procResult, code int, what ...string) {
		t.Helper()
		if r.code != code {
			t.Fatalf("exit %d, want %d\n%s%s", r.code, code, r.stdout, r.stderr)
		}
		for _, w := range what {
			if !strings.Contains(r.stdout+r.stderr, w) {
				t.Errorf("output lacks %q:\n%s%s", w, r.stdout, r.stderr)
			}
		}
	}

	// Nothing staged: manual mode cannot mint, so the rotation would stop
	// and ask for a key (exit 6, the hint says how).
	want(do(nil, "rotate", name, "--dry-run"), exitActionRequired,
		"dry run: rotate would stop", "create a secret key in the Clerk Dashboard")
	// Previous is within its grace period: revoke would refuse (exit 7).
	want(do(nil, "revoke", name, "--dry-run"), exitRefused,
		"dry run: revoke would refuse", "previous key "+prev, "still within its grace period")
	// A day later it would ask to delete previous in the Dashboard, named
	// by what the Dashboard shows.
	want(do([]string{"ROTOR_CLOCK_SKEW=25h"}, "revoke", name, "--dry-run"), exitOK,
		"would revoke key "+prev, "delete it in the Clerk Dashboard", "sk_test_…"+k0[len(k0)-4:], `named "rotor-next"`)
	want(do(nil, "revoke", "--expired", "--dry-run"), exitOK, "would skip key "+prev)
	want(do(nil, "rollback", name, "--dry-run"), exitOK,
		"would roll back: test previous key "+prev, "current "+cur+" set aside for revocation",
		"reload (after the restored key is current): run touch reloaded", "verify: run touch verified")

	unchanged()

	// With a staged key the rotation would promote it.
	stage(k2)
	before, requests = snapshot(t, dir), fake.AllRequests()
	want(do(nil, "rotate", name, "--dry-run"), exitOK,
		"would rotate: promote staged key", "(current "+cur+" becomes previous until",
		"reload (after promote): run touch reloaded", "on a failed reload or verify: roll back to "+cur)
	want(do(nil, "rotate", "--all", "--dry-run"), exitOK, "would rotate: promote staged key")

	unchanged()
	leakCheck(t, dir, outs, k0, k1, k2)
}

// snapshot reads every file under dir/.rotor (the store, the audit log,
// its anchor).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join(dir, ".rotor")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("snapshot: no files")
	}
	return files
}

// TestDryRunUnderLiveLease: while another rotor is in the middle of a
// rotation (its reload hook blocks on a FIFO, so its lease is live),
// rotate --dry-run says the secret is busy, names the lease's holder and
// expiry as the real command's error does, and exits 3 as the real
// command would, in text and in JSON; rollback and revoke dry runs too.
// Once the rotor holding the lease was killed, the dry run says rotate
// would resume its rotation.
func TestDryRunUnderLiveLease(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	mustRotor(t, dir, "rotate", "demo")
	writeConfigWithout(t, dir, `  - name: demo
    provider: random
    reload:
      - command: [sh, -c, 'cat gate.fifo > /dev/null']
        timeout: 5m
`)
	fifo := filepath.Join(dir, "gate.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan procResult, 1)
	go func() { done <- rotor(t, dir, nil, "rotate", "demo") }()
	// The open returns once the reload hook opened the FIFO: the rotation
	// is then in its reload step, under a live lease.
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			f = nil
		}
		opened <- f
	}()
	var gate *os.File
	select {
	case gate = <-opened:
		if gate == nil {
			t.Fatal("cannot open the FIFO")
		}
	case r := <-done:
		t.Fatalf("rotate ended before its reload hook ran: exit %d\n%s", r.code, r.stderr)
	}
	defer gate.Close()

	var st struct {
		Rotation struct {
			ID             string    `json:"id"`
			Holder         string    `json:"holder"`
			LeaseExpiresAt time.Time `json:"lease_expires_at"`
		} `json:"rotation"`
	}
	if err := json.Unmarshal([]byte(mustRotor(t, dir, "status", "demo", "-o", "json").stdout), &st); err != nil || st.Rotation.Holder == "" {
		t.Fatalf("status shows no lease holder: %v", err)
	}
	lease := st.Rotation.Holder + " until " + st.Rotation.LeaseExpiresAt.UTC().Format(time.RFC3339)

	r := rotor(t, dir, nil, "rotate", "demo", "--dry-run")
	if r.code != exitInProgress {
		t.Fatalf("rotate --dry-run under a live lease: exit %d, want %d\n%s%s", r.code, exitInProgress, r.stdout, r.stderr)
	}
	for _, w := range []string{
		"demo: busy: rotation " + st.Rotation.ID + " (last step promote) is held by " + lease,
		"rotate would change nothing and exit 3",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
		}
	}
	for _, w := range []string{
		"rotor: error: dry run: rotate would stop: demo: rotation " + st.Rotation.ID + " in progress",
		"lease held by " + lease,
		"rotor: hint: wait for it to finish",
	} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "resume") {
		t.Errorf("the dry run would resume a rotation another rotor holds:\n%s", r.stdout)
	}

	r = rotor(t, dir, nil, "rotate", "demo", "--dry-run", "-o", "json")
	var doc api.RotateRun
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Secrets) != 1 {
		t.Fatalf("rotate --dry-run -o json: %v\n%s", err, r.stdout)
	}
	it := doc.Secrets[0]
	if r.code != exitInProgress || it.Outcome != api.OutcomeFailed || it.Error == nil ||
		it.Error.Code != api.CodeRotationInProgress || it.Error.ExitCode != exitInProgress || !strings.Contains(it.Plan, "busy: rotation "+st.Rotation.ID) {
		t.Fatalf("rotate --dry-run -o json: exit %d, %+v (error %+v)", r.code, it, it.Error)
	}

	for _, op := range []string{"rollback", "revoke"} {
		r := rotor(t, dir, nil, op, "demo", "--dry-run")
		if r.code != exitInProgress || !strings.Contains(r.stderr, "lease held by "+lease) {
			t.Errorf("%s --dry-run under a live lease: exit %d, want %d naming the lease\n%s", op, r.code, exitInProgress, r.stderr)
		}
	}

	gate.Close()
	if r := <-done; r.code != 0 {
		t.Fatalf("the rotation holding the lease: exit %d\n%s", r.code, r.stderr)
	}

	// A rotor killed mid-rotation leaves an unexpired lease whose holder
	// is gone: rotate would take the rotation over.
	if r := rotor(t, dir, []string{"ROTOR_FAULT=crash-after:create"}, "rotate", "demo"); !r.killed {
		t.Fatalf("ROTOR_FAULT=crash-after:create did not kill rotor: exit %d\n%s", r.code, r.stderr)
	}
	r = rotor(t, dir, nil, "rotate", "demo", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "demo: would rotate: resume rotation ") || !strings.Contains(r.stdout, "is no longer live") {
		t.Fatalf("rotate --dry-run after the holder died: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestDryRunSteps: with -o json, the dry runs of rotate, rollback and
// revoke give their plan step by step, each step naming the keys it acts
// on by id, next to the plan's text.
func TestDryRunSteps(t *testing.T) {
	dir := t.TempDir()
	const staged = "Z29sZGVuLXN0YWdlZC12YWx1ZS0wMTIzNDU2Nzg5YWI"
	mustRotor(t, dir, "init")
	mustRotor(t, dir, "rotate", "demo")
	mustRotor(t, dir, "rotate", "demo")
	var st struct {
		Current, Previous struct {
			KeyID string `json:"key_id"`
		}
	}
	if err := json.Unmarshal([]byte(mustRotor(t, dir, "status", "demo", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	cur, prev := st.Current.KeyID, st.Previous.KeyID
	r := rotor(t, dir, []string{"NEW_KEY=" + staged}, "stage", "demo", "--from-env", "NEW_KEY", "-o", "json")
	var sg api.Staged
	if err := json.Unmarshal([]byte(r.stdout), &sg); err != nil || sg.KeyID == "" {
		t.Fatalf("stage: %v\n%s", err, r.stderr)
	}
	next := sg.KeyID

	type step struct{ name, keys string }
	steps := func(ps []api.PlanStep) []step {
		var s []step
		for _, p := range ps {
			if p.Action == "" || p.KeyIDs == nil {
				t.Errorf("step %+v has no action or a null key_ids", p)
			}
			s = append(s, step{p.Name, strings.Join(p.KeyIDs, " ")})
		}
		return s
	}
	tests := []struct {
		name string
		env  []string
		args []string
		want []step
	}{
		{"rotate promotes the staged key", nil, []string{"rotate", "demo"}, []step{
			{api.PlanCreate, next}, {api.PlanTest, next}, {api.PlanPromote, next + " " + cur},
			{api.PlanReload, ""}, {api.PlanVerify, ""}, {api.PlanFinish, ""}, {api.PlanRollBackOnFailure, cur},
		}},
		{"rollback restores previous", nil, []string{"rollback", "demo"}, []step{
			{api.PlanTest, prev}, {api.PlanPromote, prev + " " + cur}, {api.PlanReload, ""}, {api.PlanVerify, ""}, {api.PlanFinish, ""},
		}},
		{"revoke after the grace period", []string{"ROTOR_CLOCK_SKEW=25h"}, []string{"revoke", "demo"}, []step{{api.PlanRevoke, prev}}},
		{"revoke --expired skips previous", nil, []string{"revoke", "--expired"}, []step{{api.PlanSkip, prev}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rotor(t, dir, tt.env, append(tt.args, "--dry-run", "-o", "json")...)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			var plan, text string
			var got []step
			if tt.args[0] == "rotate" {
				var doc api.RotateRun
				if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Secrets) != 1 {
					t.Fatalf("%v\n%s", err, r.stdout)
				}
				plan, got = doc.Secrets[0].Plan, steps(doc.Secrets[0].Steps)
			} else {
				var doc api.DryRun
				if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Secrets) != 1 {
					t.Fatalf("%v\n%s", err, r.stdout)
				}
				plan, got = doc.Secrets[0].Plan, steps(doc.Secrets[0].Steps)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("steps %v, want %v", got, tt.want)
			}
			text = rotor(t, dir, tt.env, append(tt.args, "--dry-run")...).stdout
			// The two runs compute "previous until" a moment apart.
			anyTime := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
			if plan == "" || anyTime.ReplaceAllString(plan, "<time>") != anyTime.ReplaceAllString(text, "<time>") {
				t.Errorf("plan %q, want the text output %q", plan, text)
			}
		})
	}
}
