package rotationtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// ProviderCase describes a provider to [RunProvider].
type ProviderCase struct {
	// New returns the provider for one scenario. Scenarios use distinct
	// secret names; a provider that keeps issuer-side state per secret
	// (database roles) should still give each scenario its own.
	New func(t *testing.T) provider.Provider
	// NewStore returns an empty store; default an in-memory one.
	NewStore func(t *testing.T) store.Store
	// SingleCredential says the issuer accepts one credential at a time
	// (one database role): previous stops working when its successor is
	// applied, so the scenarios do not expect it to work during grace.
	SingleCredential bool
}

// RunProvider runs the engine's scenarios against a real provider and
// judges them only by what the provider's Test says its issuer accepts:
// current works after every operation, previous works until it is revoked
// (unless the issuer holds a single credential), a revoked key does not,
// and a run killed at any step, or between saving a prepared key and
// applying it ([rotation.StepPrepared], [rotation.StepApplied]), resumes to
// the very value that was saved as pending, or aborts back to a working
// current key.
//
// Its Test must answer from the issuer (a revoked key is rejected with
// [provider.ErrRejected]), so it cannot run against providers whose issuer
// keeps no state, such as the reference [Provider]; the suite's self-test
// runs it against [Issuer].
func RunProvider(t *testing.T, pc ProviderCase) {
	scenarios := []struct {
		name string
		fn   func(*env, ProviderCase)
	}{
		{"RotationsKeepCurrentAccepted", providerRotations},
		{"PendingSavedBeforeApply", providerIntentFirst},
		{"PreviousAcceptedUntilItsGraceEnds", providerGrace},
		{"RevokeAfterLateRotationSparesCurrent", providerLateRevoke},
		{"RevokeIsIdempotent", providerRevokeTwice},
		{"VerifyFailureRollsBackToWorkingKey", providerRollback},
		{"CrashAtEveryPointResumesToPending", providerCrashResumes},
		{"CrashAtEveryPointAbortsToWorkingKey", providerCrashAborts},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			st := memstore.New()
			e := newEnv(t, st)
			if pc.NewStore != nil {
				e.store = pc.NewStore(t)
			}
			e.provider = pc.New(t)
			sc.fn(e, pc)
		})
	}
}

func (e *env) accepted(what string, k *store.Key) {
	e.t.Helper()
	if err := e.provider.Test(context.Background(), k.Value); err != nil {
		e.t.Fatalf("%s key %s is not accepted by its issuer: %v", what, k.ID, err)
	}
}

func (e *env) rejected(what string, k *store.Key) {
	e.t.Helper()
	if err := e.provider.Test(context.Background(), k.Value); !errors.Is(err, provider.ErrRejected) {
		e.t.Fatalf("%s key %s: test = %v, want rejected by its issuer", what, k.ID, err)
	}
}

// revokeExpired passes the grace period and revokes what expired.
func (e *env) revokeExpired() rotation.RevokeResult {
	e.t.Helper()
	e.clock.Advance(25 * time.Hour)
	res, err := e.engine().Revoke(context.Background(), e.secret(), rotation.RevokeOptions{ExpiredOnly: true})
	if err != nil {
		e.t.Fatalf("revoke --expired: %v", err)
	}
	return res
}

func providerRotations(e *env, pc ProviderCase) {
	for range 3 {
		e.rotate()
		s := e.load()
		e.accepted("current", s.Current)
		if s.Previous != nil && !pc.SingleCredential {
			e.accepted("previous within its grace period", s.Previous)
		}
		e.revokeExpired()
		e.accepted("current after revoke", s.Current)
		if s.Previous != nil {
			e.rejected("revoked previous", s.Previous)
		}
	}
}

// providerGrace rotates a third time while previous is still within its
// grace period: the provider may refuse, but must not break previous.
func providerGrace(e *env, pc ProviderCase) {
	e.rotate()
	e.rotate()
	before := e.load()
	_, err := e.engine().Rotate(context.Background(), e.secret())
	s := e.load()
	if s.Rotation != nil {
		e.t.Fatalf("rotation left in progress (step %q) after rotate = %v", s.Rotation.Step, err)
	}
	e.accepted("current", s.Current)
	if err != nil && s.Current.Value != before.Current.Value {
		e.t.Fatalf("rotate failed (%v) but current changed", err)
	}
	if !pc.SingleCredential {
		e.accepted("previous within its grace period", before.Previous)
	}
}

// providerLateRevoke rotates after previous expired but before it was
// revoked, then revokes: revoking the old key must not touch the issuer
// account the new rotation may have reused.
func providerLateRevoke(e *env, _ ProviderCase) {
	e.rotate()
	e.rotate()
	e.clock.Advance(25 * time.Hour)
	e.rotate()
	e.revokeExpired()
	s := e.load()
	e.accepted("current after revoking keys from before it", s.Current)
}

func providerRevokeTwice(e *env, _ ProviderCase) {
	ctx := context.Background()
	e.rotate()
	e.rotate()
	prev := e.load().Previous
	for i := range 2 {
		if err := e.provider.Revoke(ctx, *prev); err != nil {
			e.t.Fatalf("revoke #%d of key %s: %v", i+1, prev.ID, err)
		}
	}
	e.rejected("revoked", prev)
	e.accepted("current", e.load().Current)
}

func providerRollback(e *env, _ ProviderCase) {
	e.rotate()
	e.revokeExpired()
	c0 := e.load().Current
	sec := e.secret()
	sec.Verify = HookFunc(func(context.Context, *store.Secret) error { return errors.New("health check failed") })
	if _, err := e.engine().Rotate(context.Background(), sec); !errors.Is(err, rotation.ErrRolledBack) {
		e.t.Fatalf("rotate = %v, want ErrRolledBack", err)
	}
	s := e.load()
	if s.Current.Value != c0.Value {
		e.t.Fatalf("after rollback current = %s, want %s", s.Current.ID, c0.ID)
	}
	e.accepted("rolled-back-to current", s.Current)
}

// points returns where a run can die: inside create for a Preparer, and
// after every step.
func (e *env) points() []store.Step {
	var ps []store.Step
	if _, ok := e.provider.(provider.Preparer); ok {
		ps = append(ps, rotation.StepPrepared, rotation.StepApplied)
	}
	return append(ps, store.Steps...)
}

func providerCrashResumes(e *env, pc ProviderCase) {
	for _, point := range e.points() {
		e.t.Run(string(point), func(t *testing.T) {
			e := e.sub(t, string(point))
			e.rotate()
			e.revokeExpired()
			c0 := e.load().Current
			e.rotateUntilCrash(point)
			mid := e.load()
			if point == store.StepFinish {
				if mid.Rotation != nil {
					t.Fatal("rotation unfinished after a crash past finish")
				}
				e.accepted("current", mid.Current)
				return
			}
			res := e.rotate()
			if !res.Resumed {
				t.Fatalf("rotation after a crash at %s started afresh, want resumed", point)
			}
			s := e.load()
			e.accepted("current", s.Current)
			if s.Previous == nil || s.Previous.Value != c0.Value {
				t.Fatalf("previous = %v, want the old current %s", s.Previous, c0.ID)
			}
			if !pc.SingleCredential {
				e.accepted("previous", s.Previous)
			}
			if mid.Pending != nil && s.Current.Value != mid.Pending.Value {
				t.Fatalf("current = %s, want the pending key %s saved before the crash", s.Current.ID, mid.Pending.ID)
			}
		})
	}
}

func providerCrashAborts(e *env, _ ProviderCase) {
	ctx := context.Background()
	points := e.points()
	points = slices.DeleteFunc(points, func(p store.Step) bool { return p == store.StepFinish })
	for _, point := range points {
		e.t.Run(string(point), func(t *testing.T) {
			e := e.sub(t, string(point))
			e.rotate()
			e.revokeExpired()
			c0 := e.load().Current
			e.rotateUntilCrash(point)
			discarded := e.load().Pending
			if _, err := e.engine().Abort(ctx, e.secret()); err != nil {
				t.Fatalf("abort: %v", err)
			}
			s := e.load()
			if s.Current.Value != c0.Value || s.Rotation != nil {
				t.Fatalf("after abort current = %s rotation = %v, want %s and none", s.Current.ID, s.Rotation, c0.ID)
			}
			e.accepted("current after abort", s.Current)
			e.revokeExpired()
			e.accepted("current after revoking the discarded key", s.Current)
			if discarded != nil {
				e.rejected("discarded and revoked", discarded)
			}
			// The issuer account of the discarded key is taken again.
			e.rotate()
			e.accepted("current of the next rotation", e.load().Current)
		})
	}
}

// intentChecker wraps a Preparer and checks, on every Apply of a key that
// is not current, that the store already holds it as pending.
type intentChecker struct {
	provider.Preparer
	e    *env
	seen int
}

func (c *intentChecker) Test(ctx context.Context, v string) error {
	return c.e.provider.Test(ctx, v)
}

func (c *intentChecker) Revoke(ctx context.Context, k store.Key) error {
	return c.e.provider.Revoke(ctx, k)
}

func (c *intentChecker) Mint(context.Context, provider.MintRequest) (provider.Credential, error) {
	return provider.Credential{}, errors.New("the engine must prepare, not mint")
}

func (c *intentChecker) Apply(ctx context.Context, k store.Key) error {
	s, _, err := c.e.store.Load(ctx, c.e.name)
	if err == nil && (s.Current == nil || s.Current.Value != k.Value) {
		c.seen++
		if s.Pending == nil || s.Pending.Value != k.Value {
			c.e.t.Errorf("Apply of key %s before it was saved as pending", k.ID)
		}
	}
	return c.Preparer.Apply(ctx, k)
}

func providerIntentFirst(e *env, _ ProviderCase) {
	prep, ok := e.provider.(provider.Preparer)
	if !ok {
		return // Mint has no intent to save first.
	}
	c := &intentChecker{Preparer: prep, e: e}
	sec := e.secret()
	sec.Provider = c
	for range 2 {
		if _, err := e.engine().Rotate(context.Background(), sec); err != nil {
			e.t.Fatalf("rotate: %v", err)
		}
		e.revokeExpired()
	}
	if c.seen != 2 {
		e.t.Fatalf("Apply called for %d new keys, want 2", c.seen)
	}
}
