package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// TestExitCode pins the exit codes of the errors issue 11 classified.
func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   int
		reason string
	}{
		{"lost save race", fmt.Errorf("start rollback of demo: %w", store.ErrConflict), exitInProgress, "another rotor saved first: the same as finding it in progress, for every command"},
		{"lease lost", fmt.Errorf("save demo: %w: %w", rotation.ErrLeaseLost, store.ErrConflict), exitInProgress, "an abort or a takeover changed the secret under the operation"},
		{"in progress", &rotation.InProgressError{Secret: "demo"}, exitInProgress, ""},
		{"reload pending", fmt.Errorf("revoke: %w", rotation.ErrReloadPending), exitRefused, "revoking the key consumers may still use is a safety refusal"},
		{"key revoked", fmt.Errorf("stage: %w", rotation.ErrKeyRevoked), exitRefused, "a revoked key never comes back"},
		{"nothing to roll back to", fmt.Errorf("abort: %w", rotation.ErrNothingToRollBack), exitRefused, "first-rotation abort after promote"},
		{"other", errors.New("disk on fire"), exitError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d (%s)", tt.err, got, tt.want, tt.reason)
			}
		})
	}
}
