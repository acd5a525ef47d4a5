package rotation

import (
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/store"
)

// Sentinel errors returned (wrapped) by the [Engine].
var (
	// ErrRotationInProgress means another rotator holds a live lease on
	// the secret. The error is an *InProgressError with the details.
	ErrRotationInProgress = errors.New("rotation in progress")
	// ErrNotDue means [Engine.RotateDue] found the secret not due (any
	// more: another rotator rotated it since the caller's load).
	ErrNotDue = errors.New("not due")
	// ErrNoRotation means --abort found no rotation to abort.
	ErrNoRotation = errors.New("no rotation in progress")
	// ErrNothingToRollBack means previous is empty, expired, revoked or
	// being revoked, or rejected by its issuer when tested again; or, for
	// an abort after promote, that the rotation is the secret's first.
	ErrNothingToRollBack = errors.New("nothing to roll back to")
	// ErrRolledBack means reload or verification failed after promote and
	// the rotation was rolled back: current is the key it was before.
	ErrRolledBack = errors.New("verification failed; rotation rolled back")
	// ErrTestFailed means the new key was rejected by its issuer; nothing
	// was promoted.
	ErrTestFailed = errors.New("new key failed its test; nothing was promoted")
	// ErrNotExpired means revoke was asked for a key still in its grace
	// period, without force.
	ErrNotExpired = errors.New("key is still within its grace period")
	// ErrParked means the rotation stopped between steps because the
	// process is shutting down; the next run resumes it.
	ErrParked = errors.New("rotation parked for shutdown")
	// ErrKeyInUse means revoke found consumers still using the key.
	ErrKeyInUse = errors.New("key is still in use by consumers")
	// ErrLeaseLost means the secret changed under a running rotation (an
	// abort, or a takeover after the lease expired). The rotation stops
	// without writing.
	ErrLeaseLost = errors.New("rotation lease lost")
	// ErrPromoteRefused means the provider refuses the candidate over the
	// current key (e.g. a Clerk key of another environment).
	ErrPromoteRefused = errors.New("provider refuses this key over the current one")
	// ErrSameKey means a staged value is already in use.
	ErrSameKey = errors.New("value is already in use by this secret")
	// ErrKeyRevoked means a key to stage or promote was revoked, or is
	// being revoked, by this secret: it never comes back.
	ErrKeyRevoked = errors.New("key was revoked")
	// ErrReloadPending means revoke was asked for the key consumers were
	// last reloaded with, while the reload of its successor has not
	// completed: consumers may still be using it.
	ErrReloadPending = errors.New("consumers may still use this key: the reload of its successor has not completed")
	// ErrNoOrphan means no possibly orphaned key has that request id.
	ErrNoOrphan = errors.New("no possibly orphaned key with that request id")
)

// InProgressError describes the operation (a rotation, or a rollback,
// revoke or stage) that blocks another.
type InProgressError struct {
	Secret         string
	ID             string
	Kind           store.OpKind // empty: a rotation
	Step           store.Step
	Initiator      string
	Holder         string
	StartedAt      time.Time
	LeaseExpiresAt time.Time
	// Age is how long the rotation has been going, when it was reported.
	Age time.Duration
}

func (e *InProgressError) Error() string {
	step := string(e.Step)
	if step == "" {
		step = "start"
	}
	holder := "lease held by " + e.Holder
	if e.Holder == "" {
		holder = "lease released"
	}
	kind := "rotation"
	if e.Kind != "" && e.Kind != store.OpRotate {
		kind = string(e.Kind)
	}
	return fmt.Sprintf("%s: %s %s in progress for %s (last step %s, started %s by %s, %s until %s)",
		e.Secret, kind, e.ID, e.Age.Round(time.Second), step, e.StartedAt.UTC().Format(time.RFC3339), e.Initiator, holder,
		e.LeaseExpiresAt.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrRotationInProgress) true.
func (e *InProgressError) Is(target error) bool { return target == ErrRotationInProgress }

func inProgress(s *store.Secret, now time.Time) *InProgressError {
	r := s.Rotation
	return &InProgressError{
		Secret: s.Name, ID: r.ID, Kind: r.OpKind(), Step: r.Step, Initiator: r.Initiator, Holder: r.Holder,
		StartedAt: r.StartedAt, LeaseExpiresAt: r.LeaseExpiresAt, Age: now.Sub(r.StartedAt),
	}
}
