package main

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
