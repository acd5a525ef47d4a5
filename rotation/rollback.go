package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// reasonRequested is the Reason of a rollback an operator asked for.
const reasonRequested = "requested"

// Rollback makes previous current again and sets the current key aside
// (retired for revocation, or kept as previous when the secret says so),
// then reloads and verifies: a resumable operation whose steps are test
// (previous is tested with its issuer again), promote, reload, verify and
// finish. An interrupted rollback is resumed instead of starting another,
// and an interrupted revoke or stage is finished first.
//
// It refuses with ErrNothingToRollBack when previous is empty, expired,
// revoked or being revoked, or rejected by its issuer, and with
// ErrRotationInProgress while a rotation is unfinished (abort that
// instead).
func (e *Engine) Rollback(ctx context.Context, sec Secret) (Result, error) {
	res := Result{Secret: sec.Name, Kind: store.OpRollback}
	for attempt := 0; ; attempt++ {
		s, ver, err := e.load(ctx, sec.Name)
		if err != nil {
			return res, err
		}
		if rot := s.Rotation; rot != nil {
			if e.live(rot) || rot.OpKind() == store.OpRotate && rot.Step != store.StepAborted {
				return res, inProgress(s, e.now())
			}
			r, err := e.takeover(ctx, sec, s, ver)
			if errors.Is(err, store.ErrConflict) && attempt < 3 {
				continue
			}
			if err != nil {
				return res, err
			}
			if rot.OpKind() == store.OpRollback {
				err := r.advance(ctx)
				return r.result(store.OpRollback), err
			}
			if err := r.complete(ctx); err != nil {
				return res, err
			}
			continue
		}
		if err := e.canRollBack(s); err != nil {
			return res, e.recordAll(ctx, err, Event{Action: "rollback", Secret: sec.Name, KeyID: store.KeyID(s.Current), Status: StatusFailed, Detail: err.Error()})
		}
		setup := func(s *store.Secret) {
			s.Rotation.Reason = reasonRequested
			s.Rotation.KeyID = s.Current.ID
		}
		r, err := e.start(ctx, sec, s, ver, store.OpRollback, setup, "rollback", s.Previous.ID, "restore previous as current ("+reasonRequested+")")
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue
		}
		if err != nil {
			return res, err
		}
		err = r.advance(ctx)
		return r.result(store.OpRollback), err
	}
}

// canRollBack says why previous cannot become current again, if it cannot.
func (e *Engine) canRollBack(s *store.Secret) error {
	switch p := s.Previous; {
	case p == nil:
		return fmt.Errorf("%s: %w: there is no previous key (never rotated, already rolled back, or revoked)", s.Name, ErrNothingToRollBack)
	case p.Revoking() || s.IsRevoked(p.ID):
		return fmt.Errorf("%s: %w: previous key %s is being revoked", s.Name, ErrNothingToRollBack, p.ID)
	case p.Expired(e.now()):
		return fmt.Errorf("%s: %w: previous key %s expired at %s and its issuer may no longer accept it", s.Name, ErrNothingToRollBack, p.ID, p.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// becomeRollback turns the rotation in flight, whose reload or verify
// failed (cause), into a rollback; the rollback is saved with its first
// step. With nothing to roll back to (the secret's first rotation, an
// expired or revoked previous), the rotation ends and its key stays.
func (r *run) becomeRollback(ctx context.Context, reason string, cause error) error {
	r.cause = cause
	if err := r.e.canRollBack(r.s); err != nil {
		return errors.Join(cause, r.closeErr(ctx, "rollback", store.KeyID(r.s.Current), fmt.Errorf("%s: %w", reason, err)))
	}
	rot := r.s.Rotation
	rot.Kind, rot.Step, rot.Reason, rot.KeyID = store.OpRollback, "", reason, r.s.Current.ID
	if err := r.rec(ctx, "rollback", StatusStarted, r.s.Previous.ID, "restore previous as current ("+reason+")"); err != nil {
		return errors.Join(cause, err)
	}
	return errBecameRollback
}

// restored reports whether the rollback in flight has promoted previous
// back.
func (r *run) restored() bool {
	return slices.Index(rollbackSteps, r.s.Rotation.Step) >= slices.Index(rollbackSteps, store.StepPromote)
}

// rollbackErr adds to err what a caller must know of the rollback: for an
// automatic one, the failure that caused it and, once previous is back,
// ErrRolledBack.
func (r *run) rollbackErr(err error, restored bool) error {
	if err == nil || r.cause == nil {
		return err
	}
	if restored {
		return errors.Join(ErrRolledBack, r.cause, err)
	}
	return errors.Join(r.cause, err)
}

func (r *run) rollbackStep(ctx context.Context, step store.Step) error {
	s := r.s
	rot := s.Rotation
	switch step {
	case store.StepTest:
		if err := r.e.canRollBack(s); err != nil {
			return r.rollbackErr(r.closeErr(ctx, "rollback", store.KeyID(s.Current), fmt.Errorf("%s: %w", rot.Reason, err)), false)
		}
		p := s.Previous
		prep, _ := r.sec.Provider.(provider.Preparer)
		err := error(nil)
		if prep != nil {
			// An issuer that holds one credential at a time accepts
			// previous only once it has it back.
			if aerr := prep.Apply(ctx, *p); aerr != nil {
				err = fmt.Errorf("apply previous key %s again: %w", p.ID, aerr)
			}
		}
		if err == nil {
			err = r.sec.Provider.Test(ctx, p.Value)
		}
		if err == nil {
			return r.stepDone(ctx, store.StepTest, p.ID, "issuer accepts previous key "+p.ID)
		}
		if prep != nil && s.Current != nil {
			// Whatever the issuer holds now, current must work again.
			if aerr := prep.Apply(ctx, *s.Current); aerr != nil {
				err = errors.Join(err, fmt.Errorf("apply current key %s again: %w", s.Current.ID, aerr))
			}
		}
		if errors.Is(err, provider.ErrRejected) {
			err = fmt.Errorf("%s: %w: previous key %s is rejected by its issuer: %w", s.Name, ErrNothingToRollBack, p.ID, err)
			return r.rollbackErr(r.closeErr(ctx, "rollback.test", p.ID, err), false)
		}
		err = fmt.Errorf("%s: roll back: test previous key %s: %w", s.Name, p.ID, err)
		if rot.Reason == reasonRequested {
			// Nothing changed: the operator may simply ask again.
			return r.closeErr(ctx, "rollback.test", p.ID, err)
		}
		return r.rollbackErr(errors.Join(r.recErr(ctx, "rollback.test", p.ID, err), r.release(context.WithoutCancel(ctx))), false)
	case store.StepPromote:
		now := r.e.now()
		failed := s.Current.Clone()
		s.Current = s.Previous
		s.Current.ExpiresAt = time.Time{}
		s.Previous = nil
		if r.sec.KeepFailedAsPrevious {
			failed.ExpiresAt = now.Add(r.sec.Grace)
			s.Previous = failed
		} else {
			failed.ExpiresAt = now
			s.Retired = append(s.Retired, *failed)
		}
		rot.KeyID = failed.ID
		detail := fmt.Sprintf("current is %s again; %s set aside", s.Current.ID, failed.ID)
		if err := r.stepDone(ctx, store.StepPromote, s.Current.ID, detail); err != nil {
			return r.rollbackErr(err, r.restored())
		}
		return nil
	case store.StepReload:
		// Consumers that already picked up the failed key must come back.
		if r.sec.Reload != nil {
			if err := r.sec.Reload.Reload(ctx, s); err != nil {
				err = fmt.Errorf("%s: reload after rollback: %w", s.Name, err)
				return r.rollbackErr(r.closeErr(ctx, "rollback.reload", s.Current.ID, err), true)
			}
		}
		s.ReloadedKeyID = s.Current.ID
		return r.rollbackErr(r.stepDone(ctx, store.StepReload, s.Current.ID, ""), true)
	case store.StepVerify:
		if r.sec.Verify != nil {
			if err := r.sec.Verify.Verify(ctx, s); err != nil {
				err = fmt.Errorf("%s: verify after rollback: %w", s.Name, err)
				return r.rollbackErr(r.closeErr(ctx, "rollback.verify", s.Current.ID, err), true)
			}
		}
		return r.rollbackErr(r.stepDone(ctx, store.StepVerify, s.Current.ID, ""), true)
	case store.StepFinish:
		detail := fmt.Sprintf("%s: current is %s again; %s set aside", rot.Reason, s.Current.ID, rot.KeyID)
		return r.rollbackErr(r.close(ctx, EndSucceeded, "rollback", StatusSucceeded, s.Current.ID, detail), true)
	}
	return fmt.Errorf("unknown rollback step %q", step)
}
