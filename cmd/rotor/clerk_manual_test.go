package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/clerkfake"
)

// fakeTTY is an operator at a terminal who types answer.
type fakeTTY struct {
	io.Reader
	asked bytes.Buffer
}

func (f *fakeTTY) Write(p []byte) (int, error) { return f.asked.Write(p) }
func (f *fakeTTY) Close() error                { return nil }

// TestStageAsksForTheDashboardName: staged from a terminal without
// --dashboard-name, a Clerk instance key (manual mode) gets the name the
// operator types, and revoke's instructions name it together with the
// start and end the Dashboard shows; without a terminal nothing is asked.
func TestStageAsksForTheDashboardName(t *testing.T) {
	fake := clerkfake.New(t)
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	writeConfigWithout(t, dir, `  - name: clerk-secret-key
    provider: clerk
    clerk: {api_url: `+fake.URL()+`}
`)
	k0, k1 := fake.Key(), fake.AddKey()
	stage := func(key string, tty *fakeTTY) (int, string) {
		var out, errb bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, now: time.Now,
			getenv: func(k string) string {
				return map[string]string{"NEW_KEY": key, "ROTOR_INITIATOR": "user:tester"}[k]
			}}
		if tty != nil {
			e.tty = func() io.ReadWriteCloser { return tty }
		}
		code := run([]string{"--config", filepath.Join(dir, "rotor.yaml"), "stage", "clerk-secret-key", "--from-env", "NEW_KEY"}, e)
		return code, out.String() + errb.String()
	}
	if code, out := stage(k0, nil); code != 0 {
		t.Fatalf("stage without a terminal: exit %d\n%s", code, out)
	}
	mustRotor(t, dir, "rotate", "clerk-secret-key")
	tty := &fakeTTY{Reader: strings.NewReader("rotor-2026-12-01\n")}
	if code, out := stage(k1, tty); code != 0 {
		t.Fatalf("stage on a terminal: exit %d\n%s", code, out)
	}
	if !strings.Contains(tty.asked.String(), "Name of this key in the Clerk Dashboard") {
		t.Fatalf("stage did not ask for the Dashboard name: %q", tty.asked.String())
	}
	mustRotor(t, dir, "rotate", "clerk-secret-key")
	if code, out := stage(fake.AddKey(), &fakeTTY{Reader: strings.NewReader("sk_test_pasted_the_key_instead\n")}); code != exitUsage || strings.Contains(out, "pasted_the_key") {
		t.Fatalf("a key typed as the name: exit %d, want %d without echoing it\n%s", code, exitUsage, out)
	}

	// k0 is previous: revoke names it by the start and end the Dashboard
	// shows; after the next rotation k1, now named, is previous.
	skew := []string{"ROTOR_CLOCK_SKEW=25h"}
	r := rotor(t, dir, skew, "revoke", "clerk-secret-key")
	if r.code != exitActionRequired || !strings.Contains(r.stderr, "sk_test_…"+k0[len(k0)-4:]) {
		t.Fatalf("revoke of the unnamed key: exit %d\n%s", r.code, r.stderr)
	}
	fake.DeleteKey(k0)
	if r := rotor(t, dir, skew, "revoke", "clerk-secret-key"); r.code != 0 {
		t.Fatalf("revoke after the deletion: exit %d\n%s", r.code, r.stderr)
	}
	k2 := fake.AddKey()
	if code, out := stage(k2, &fakeTTY{Reader: strings.NewReader("\n")}); code != 0 {
		t.Fatalf("stage, name skipped: exit %d\n%s", code, out)
	}
	if r := rotor(t, dir, skew, "rotate", "clerk-secret-key"); r.code != 0 {
		t.Fatalf("rotate: exit %d\n%s", r.code, r.stderr)
	}
	r = rotor(t, dir, []string{"ROTOR_CLOCK_SKEW=50h"}, "revoke", "clerk-secret-key")
	if r.code != exitActionRequired || !strings.Contains(r.stderr, `"rotor-2026-12-01", shown as sk_test_…`+k1[len(k1)-4:]) {
		t.Fatalf("revoke of the named key does not give its name and ending: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, k1[len(k1)-5:]) {
		t.Fatal("revoke shows more of the key than the Dashboard does")
	}
}
