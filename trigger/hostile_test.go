package trigger

import (
	"strings"
	"testing"
)

// Hostile hooks: what a hook's author (or a hook that misbehaves) can do
// with what rotor gives it and with what it prints. The wiring of the
// environment from the configuration is tested through the CLI
// (cmd/rotor/hostile_test.go, TestHostileHookEnvironment).

// TestHostileHookOutput: a hook that prints part of a live value (half of
// it, a piece split across words) does not get it into the error, and so
// not into the audit log. Before, only whole values were redacted.
func TestHostileHookOutput(t *testing.T) {
	s := secret()
	cur, prev := s.Current.Value, s.Previous.Value
	for _, out := range []string{
		cur[:len(cur)/2+1],        // the first half and a bit
		cur[4:12],                 // 8 bytes from the middle
		cur[:10] + " " + cur[10:], // split by a space
		"x" + prev[2:] + "y",      // the previous key, trimmed
		strings.ToValidUTF8(cur, "") + "\n" + strings.Repeat("noise\n", 10),
	} {
		c := &Command{Argv: []string{"sh", "-c", `printf '%s' "$1"; exit 1`, "sh", out}}
		err := c.Reload(t.Context(), s)
		if err == nil {
			t.Fatal("failing hook returned nil")
		}
		for _, v := range []string{cur, prev} {
			for i := 0; i+8 <= len(v); i++ {
				if strings.Contains(err.Error(), v[i:i+8]) {
					t.Fatalf("error quotes 8 bytes of a live value: %v", err)
				}
			}
		}
	}
}

// TestHostileHookEnv: a command gets the environment it is given, not
// rotor's: a credential in rotor's environment that the caller left out
// does not reach it, whatever the hook does.
func TestHostileHookEnv(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "hvs.rotors-own-token")
	out := t.TempDir() + "/env"
	c := &Command{Argv: []string{"sh", "-c", `env > ` + out}, Env: []string{"PATH=/usr/bin:/bin", "PORT=3000"}}
	if err := c.Reload(t.Context(), secret()); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, out)
	if strings.Contains(got, "VAULT_TOKEN") || !strings.Contains(got, "PORT=3000") || !strings.Contains(got, "ROTOR_SECRET=demo") {
		t.Fatalf("hook environment:\n%s", got)
	}
}
