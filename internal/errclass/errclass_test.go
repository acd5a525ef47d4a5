package errclass

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/binding"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

func TestOf(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   Class
		reason string
	}{
		{"nil", nil, Other, "no error is no class"},
		{"plain", errors.New("disk on fire"), Other, "unclassified errors are internal"},
		{"rolled back", fmt.Errorf("demo: %w", rotation.ErrRolledBack), RolledBack, ""},
		{"in progress", &rotation.InProgressError{Secret: "demo"}, InProgress, "InProgressError.Is"},
		{"audit", fmt.Errorf("verify: %w", audit.ErrChainBroken), AuditBroken, ""},
		{"store replayed", fmt.Errorf("load: %w", &binding.Error{Secret: "demo", Reason: "older"}), AuditBroken, "a store older than the chain is tampering (exit 5)"},
		{"action required", &provider.ActionRequiredError{Action: "stage a key"}, ActionRequired, "ActionRequiredError.Is"},
		{"nothing to roll back", rotation.ErrNothingToRollBack, NothingToRollBack, ""},
		{"test failed", fmt.Errorf("%w: %w", rotation.ErrTestFailed, provider.ErrRejected), KeyRejected, ""},
		{"promote refused", rotation.ErrPromoteRefused, KeyRejected, ""},
		{"rejected", provider.ErrRejected, KeyRejected, ""},
		{"same key", rotation.ErrSameKey, SameKey, ""},
		{"not expired", rotation.ErrNotExpired, NotExpired, ""},
		{"in use", rotation.ErrKeyInUse, KeyInUse, ""},
		{"not found", fmt.Errorf("load: %w", store.ErrNotFound), NotFound, ""},
		{"no current key", keyring.ErrNoCurrentKey, NotFound, ""},
		{"conflict", store.ErrConflict, Conflict, ""},
		{"lease lost", rotation.ErrLeaseLost, Conflict, ""},
		{"no rotation", rotation.ErrNoRotation, NoRotation, ""},
		{"timeout", fmt.Errorf("verify: %w", context.DeadlineExceeded), Timeout, ""},
		{"rollback after a timed-out verify", errors.Join(rotation.ErrRolledBack, context.DeadlineExceeded), RolledBack,
			"what happened to the keys comes before why"},
		{"revoke of two keys", errors.Join(rotation.ErrNotExpired, &provider.ActionRequiredError{Action: "delete a key"}), ActionRequired,
			"the operator's action is what unblocks the run"},
		{"several secrets", errors.Join(store.ErrNotFound, &rotation.InProgressError{}), InProgress,
			"a live rotation matters more than a missing secret"},
	}
	for _, tt := range tests {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("%s: Of = %d, want %d (%s)", tt.name, got, tt.want, tt.reason)
		}
	}
}

func TestRefused(t *testing.T) {
	for c := Other; c <= Timeout; c++ {
		want := c == NothingToRollBack || c == KeyRejected || c == SameKey || c == NotExpired || c == KeyInUse
		if c.Refused() != want {
			t.Errorf("class %d: Refused = %v, want %v", c, c.Refused(), want)
		}
	}
}
