package trigger

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/store"
)

func secret() *store.Secret {
	return &store.Secret{
		Name:     "demo",
		Current:  &store.Key{Value: "cur-secret-value-123", ID: "aaaa"},
		Previous: &store.Key{Value: "prev-secret-value-456", ID: "bbbb"},
	}
}

func TestCommandEnvironment(t *testing.T) {
	out := t.TempDir() + "/env"
	c := &Command{Argv: []string{"sh", "-c", `printf '%s %s %s %s' "$ROTOR_SECRET" "$ROTOR_STEP" "$ROTOR_KEY_ID" "$ROTOR_PREVIOUS_KEY_ID" > ` + out}}
	if err := c.Verify(t.Context(), secret()); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, out)
	if got != "demo verify aaaa bbbb" {
		t.Fatalf("command saw %q", got)
	}
}

func TestCommandFailureRedactsValues(t *testing.T) {
	c := &Command{Argv: []string{"sh", "-c", `echo "leaked cur-secret-value-123"; exit 3`}}
	err := c.Reload(t.Context(), secret())
	if err == nil {
		t.Fatal("failing command returned nil")
	}
	if strings.Contains(err.Error(), "cur-secret-value-123") {
		t.Fatalf("error leaks the value: %v", err)
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("error = %v, want exit status and redacted output", err)
	}
}

func TestCommandTimeoutKillsChildren(t *testing.T) {
	c := &Command{Argv: []string{"sh", "-c", "sleep 30 & sleep 30"}, Timeout: 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := c.Verify(ctx, secret())
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if ctx.Err() != nil {
		t.Fatal("timeout did not stop the command promptly")
	}
}

func TestChainStopsAtFirstFailure(t *testing.T) {
	marker := t.TempDir() + "/ran"
	ch := Verifiers{
		&Command{Argv: []string{"false"}},
		&Command{Argv: []string{"touch", marker}},
	}
	if err := ch.Verify(t.Context(), secret()); err == nil {
		t.Fatal("chain with a failing command succeeded")
	}
	if fileExists(marker) {
		t.Fatal("chain ran a command after a failure")
	}
}
