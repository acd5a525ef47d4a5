package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/internal/clerkfake"
)

// TestClerkSecretKeyEndToEnd walks the CLERK_SECRET_KEY runbook of the
// README through the real CLI against the local Clerk Backend API server:
// stage → rotate → the old key keeps working during the grace period →
// revoke asks for the dashboard deletion → after it, revoke confirms the
// old key is rejected and clears it. Along the way: rotate with nothing
// staged stops with instructions, a rejected key is never staged or
// promoted, a live key is refused over a test key, and rollback returns to
// a key that is still active.
func TestClerkSecretKeyEndToEnd(t *testing.T) {
	fake := clerkfake.New(t)
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	cfg := strings.Replace(defaultConfig, `secrets:
  - name: demo
    provider: random   # app-owned key: 32 random bytes
    random:
      bytes: 32
      encoding: base64url
`, `secrets:
  - name: clerk-secret-key
    provider: clerk
    clerk:
      api_url: `+fake.URL()+`
      timeout: 5s
`, 1)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	const name = "clerk-secret-key"
	var outs []procResult
	run := func(wantCode int, env []string, args ...string) procResult {
		t.Helper()
		r := rotor(t, dir, env, args...)
		outs = append(outs, r)
		if r.code != wantCode {
			t.Fatalf("rotor %s: exit %d, want %d\n%s%s", strings.Join(args, " "), r.code, wantCode, r.stdout, r.stderr)
		}
		return r
	}
	stage := func(wantCode int, key string, extra ...string) procResult {
		t.Helper()
		return run(wantCode, []string{"NEW_CLERK_KEY=" + key}, append([]string{"stage", name, "--from-env", "NEW_CLERK_KEY"}, extra...)...)
	}
	keyWorks := func(key string) bool {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, fake.URL()+"/v1/jwks", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := fake.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	current := func() string {
		t.Helper()
		return strings.TrimSpace(run(0, nil, "get", name).stdout)
	}

	// Bring the instance's existing key under rotor.
	k0 := fake.Key()
	stage(0, k0)
	run(0, nil, "rotate", name)
	id0 := current()

	// Nothing staged: rotate stops before changing anything and says what to do.
	r := run(exitActionRequired, nil, "rotate", name)
	if !strings.Contains(r.stderr, "Dashboard") || !strings.Contains(r.stderr, "rotor stage "+name) {
		t.Fatalf("no instructions for the operator:\n%s", r.stderr)
	}
	if current() != id0 || strings.Contains(run(0, nil, "status", name, "-o", "json").stdout, `"rotation": {`) {
		t.Fatal("rotate with nothing staged changed the secret")
	}

	// A key Clerk rejects is never staged.
	dead := fake.AddKey()
	fake.DeleteKey(dead)
	r = stage(exitRefused, dead)
	if !strings.Contains(r.stderr, "rejected") {
		t.Fatalf("stage of a deleted key: %s", r.stderr)
	}
	// A live key over a test key is refused.
	r = stage(exitRefused, "sk_live_"+strings.Repeat("Q", 40))
	if !strings.Contains(r.stderr, "live") || !strings.Contains(r.stderr, "test") {
		t.Fatalf("live over test not explained: %s", r.stderr)
	}
	// A staged key deleted at Clerk before the rotation is never promoted.
	gone := fake.AddKey()
	stage(0, gone)
	fake.DeleteKey(gone)
	run(exitRefused, nil, "rotate", name)
	if current() != id0 {
		t.Fatal("a key rejected by Clerk was promoted")
	}

	// The real rotation: the new key is current, the old one still works.
	_, k1 := fake.AddNamedKey("rotor-2026-11-25")
	stage(0, k1, "--dashboard-name", "rotor-2026-11-25")
	run(0, nil, "rotate", name)
	id1 := current()
	if id1 == id0 || strings.TrimSpace(run(0, nil, "get", name, "--slot", "previous").stdout) != id0 {
		t.Fatal("rotation did not move the old key to previous")
	}
	if !keyWorks(k0) || !keyWorks(k1) {
		t.Fatal("both keys must work during the grace period")
	}

	// Revoke: refused before the grace period ends…
	run(exitRefused, nil, "revoke", name)
	// …then tells the operator which key to delete, and keeps it…
	skew := []string{"ROTOR_CLOCK_SKEW=25h"}
	r = run(exitActionRequired, skew, "revoke", name)
	if !strings.Contains(r.stderr, id0) {
		t.Fatalf("revoke instructions do not name key %s:\n%s", id0, r.stderr)
	}
	if strings.TrimSpace(run(0, skew, "get", name, "--slot", "previous").stdout) != id0 {
		t.Fatal("previous was cleared before the key was deleted at Clerk")
	}
	// …and after the deletion confirms Clerk rejects it, then clears it.
	fake.DeleteKey(k0)
	run(0, skew, "revoke", name)
	run(1, skew, "get", name, "--slot", "previous")
	if keyWorks(k0) {
		t.Fatal("old key still accepted by Clerk")
	}

	// Rollback returns to a key that is still active at Clerk.
	k2 := fake.AddKey()
	stage(0, k2)
	run(0, nil, "rotate", name)
	run(0, nil, "rollback", name)
	if current() != id1 || !keyWorks(k1) {
		t.Fatal("rollback did not return to the still-active previous key")
	}

	outs = append(outs, run(0, nil, "audit", "tail", "-n", "0", "-o", "json"), run(0, nil, "audit", "verify"))
	leakCheck(t, dir, outs, k0, k1, k2, dead, gone)
}
