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
	// ErrNoRotation means --abort found no rotation to abort.
	ErrNoRotation = errors.New("no rotation in progress")
	// ErrNothingToRollBack means previous is empty, revoked or expired.
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
)

// InProgressError describes the rotation that blocks an operation.
type InProgressError struct {
	Secret         string
	ID             string
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
	return fmt.Sprintf("%s: rotation %s in progress for %s (last step %s, started %s by %s, %s until %s)",
		e.Secret, e.ID, e.Age.Round(time.Second), step, e.StartedAt.UTC().Format(time.RFC3339), e.Initiator, holder,
		e.LeaseExpiresAt.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrRotationInProgress) true.
func (e *InProgressError) Is(target error) bool { return target == ErrRotationInProgress }

func inProgress(s *store.Secret, now time.Time) *InProgressError {
	r := s.Rotation
	return &InProgressError{
		Secret: s.Name, ID: r.ID, Step: r.Step, Initiator: r.Initiator, Holder: r.Holder,
		StartedAt: r.StartedAt, LeaseExpiresAt: r.LeaseExpiresAt, Age: now.Sub(r.StartedAt),
	}
}
