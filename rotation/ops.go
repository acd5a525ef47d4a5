package rotation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// settle looks at the operation in flight on s before a stage, revoke or
// dismissal: a rotation or rollback blocks them (ErrRotationInProgress), as
// does any operation whose holder may be alive; any other operation left by
// a dead run is finished. It returns true when it changed the secret and
// the caller must load it again.
func (e *Engine) settle(ctx context.Context, sec Secret, s *store.Secret, ver store.Version) (bool, error) {
	rot := s.Rotation
	if rot == nil {
		return false, nil
	}
	kind := rot.OpKind()
	if e.live(rot) || kind == store.OpRollback || kind == store.OpRotate && rot.Step != store.StepAborted {
		return false, inProgress(s, e.now())
	}
	r, err := e.takeover(ctx, sec, s, ver)
	if err != nil {
		return false, err
	}
	return true, r.complete(ctx)
}

// single runs an operation of one save: s (loaded at ver) already holds
// the change; the lease is taken with it, the outcome recorded, and the
// lease released. A run that dies before the release leaves an operation
// the next run closes ([EndRecovered]).
func (e *Engine) single(ctx context.Context, sec Secret, s *store.Secret, ver store.Version, kind store.OpKind, keyID, action, detail string, point store.Step) error {
	now := e.now()
	s.Rotation = &store.Rotation{
		ID: newOperationID(now), Kind: kind, StartedAt: now, Initiator: e.Initiator,
		Holder: e.holder(), LeaseExpiresAt: now.Add(sec.Lease), KeyID: keyID,
	}
	nv, err := e.Store.Save(ctx, s, ver)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, sec.Name, err)
	}
	r := &run{e: e, sec: sec, s: s, ver: nv, op: s.Rotation.ID}
	if point != "" {
		e.point(s, point)
	}
	return r.close(ctx, EndSucceeded, action, StatusSucceeded, keyID, detail)
}

// Stage tests value and stores it as the secret's next key, which the next
// rotation promotes instead of minting. A key already staged is replaced
// and retired. meta is kept with the key (never secret: e.g. the name the
// key has in the issuer's dashboard, for revoke instructions). A value
// that fails [store.ValidateValue] is refused (an error wrapping
// store.ErrInvalidValue) before anything is loaded or tested; providers
// check their own shape (Clerk's sk_live_/sk_test_ form) in CheckPromote
// or Test before they contact the issuer. A key this secret revoked, or
// is revoking, is refused with ErrKeyRevoked.
func (e *Engine) Stage(ctx context.Context, sec Secret, value string, meta map[string]string) (string, error) {
	if err := store.ValidateValue(value); err != nil {
		return "", fmt.Errorf("%s: stage: %w", sec.Name, err)
	}
	id := e.keyID(value)
	fail := func(err error) (string, error) {
		return id, e.recordAll(ctx, err, Event{Action: "stage", Secret: sec.Name, KeyID: id, Status: StatusFailed, Detail: err.Error()})
	}
	for attempt := 0; ; attempt++ {
		s, ver, err := e.load(ctx, sec.Name)
		if err != nil {
			return "", err
		}
		if again, err := e.settle(ctx, sec, s, ver); err != nil {
			return "", err
		} else if again && attempt < 3 {
			continue
		}
		for _, sl := range []store.Slot{store.SlotCurrent, store.SlotPrevious, store.SlotNext} {
			if k := s.Slot(sl); k != nil && k.Value == value {
				return fail(fmt.Errorf("%s: stage key %s: %w (slot %s)", sec.Name, id, ErrSameKey, sl))
			}
		}
		if s.IsRevoked(id) {
			return fail(fmt.Errorf("%s: stage key %s: %w", sec.Name, id, ErrKeyRevoked))
		}
		if pc, ok := sec.Provider.(provider.PromoteChecker); ok {
			if err := pc.CheckPromote(s.Current.Clone(), value); err != nil {
				return fail(fmt.Errorf("%s: stage key %s: %w: %w", sec.Name, id, ErrPromoteRefused, err))
			}
		}
		if err := sec.Provider.Test(ctx, value); err != nil {
			return fail(fmt.Errorf("%s: stage key %s: test: %w", sec.Name, id, err))
		}
		now := e.now()
		detail := "staged as next"
		if old := s.Next; old != nil {
			old.ExpiresAt = now
			s.Retired = append(s.Retired, *old)
			detail = "staged as next, replacing " + old.ID
		}
		s.Next = &store.Key{Value: value, ID: id, CreatedAt: now, Source: store.SourceStaged, Meta: maps.Clone(meta)}
		if err := e.single(ctx, sec, s, ver, store.OpStage, id, "stage", detail, StepStaged); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fail(fmt.Errorf("stage %s: %w", sec.Name, err))
			}
			return id, err
		}
		return id, nil
	}
}

// DismissOrphan removes the possibly orphaned key of requestID from the
// secret, once the operator has checked its issuer (and revoked the key
// there if it existed). Audited. ErrNoOrphan when there is none.
func (e *Engine) DismissOrphan(ctx context.Context, sec Secret, requestID string) error {
	for attempt := 0; ; attempt++ {
		s, ver, err := e.load(ctx, sec.Name)
		if err != nil {
			return err
		}
		if again, err := e.settle(ctx, sec, s, ver); err != nil {
			return err
		} else if again && attempt < 3 {
			continue
		}
		i := slices.IndexFunc(s.Orphans, func(o store.Orphan) bool { return o.RequestID == requestID })
		if i < 0 {
			return fmt.Errorf("%s: %w %q (see `rotor status %s`)", sec.Name, ErrNoOrphan, requestID, sec.Name)
		}
		o := s.Orphans[i]
		s.Orphans = slices.Delete(s.Orphans, i, i+1)
		detail := fmt.Sprintf("possibly orphaned key of %s %s (operation %s, %s) checked at the issuer by the operator",
			o.Action, o.RequestID, o.Operation, o.At.Format("2006-01-02T15:04:05Z07:00"))
		return e.single(ctx, sec, s, ver, store.OpDismiss, "", "orphan.dismiss", detail, "")
	}
}

// Abort ends an unfinished rotation of sec, whoever holds it. Before
// promote the pending key is set aside (a staged key goes back to next, a
// minted one is retired for revocation) and an interrupted mint is
// reconciled, so that a key it created is retired or reported as possibly
// orphaned; after promote the rotation becomes a rollback. A live holder's
// next save then fails with ErrLeaseLost.
//
// The first rotation of a secret cannot be aborted after promote: there is
// no key to go back to, so Abort refuses with ErrNothingToRollBack and
// leaves the rotation for `rotor rotate` to finish (reload, verify). An
// interrupted rollback (an earlier abort's) is resumed; an interrupted
// revoke or stage is finished and ErrNoRotation returned.
func (e *Engine) Abort(ctx context.Context, sec Secret) (Result, error) {
	s, ver, err := e.load(ctx, sec.Name)
	if err != nil {
		return Result{Secret: sec.Name}, err
	}
	rot := s.Rotation
	if rot == nil {
		return Result{Secret: sec.Name}, fmt.Errorf("%s: %w", sec.Name, ErrNoRotation)
	}
	res := Result{Secret: sec.Name, Rotation: rot.ID, Kind: rot.OpKind()}
	if rot.OpKind() != store.OpRotate || rot.Step == store.StepAborted {
		if e.live(rot) {
			return res, inProgress(s, e.now())
		}
		r, err := e.takeover(ctx, sec, s, ver)
		if err != nil {
			return res, err
		}
		if rot.OpKind() == store.OpRollback {
			err := r.advance(ctx)
			return r.result(store.OpRollback), err
		}
		if err := r.complete(ctx); err != nil || rot.OpKind() == store.OpRotate {
			return r.result(store.OpRotate), err
		}
		return res, fmt.Errorf("%s: %w (finished an interrupted %s)", sec.Name, ErrNoRotation, rot.OpKind())
	}
	r := &run{e: e, sec: sec, s: s, ver: ver, op: rot.ID}
	if err := r.rec(ctx, "rotate.abort", StatusStarted, store.KeyID(s.Pending), "rotation "+rot.ID+" at step "+stepName(rot.Step)); err != nil {
		return res, err
	}
	rot.Holder = e.holder()
	rot.LeaseExpiresAt = e.now().Add(sec.Lease)
	if slices.Index(store.Steps, rot.Step) >= slices.Index(store.Steps, store.StepPromote) {
		if err := e.canRollBack(s); err != nil {
			err = fmt.Errorf("abort rotation %s of %s after promote: %w; run `rotor rotate %s` to finish it", rot.ID, sec.Name, err, sec.Name)
			return res, r.recErr(ctx, "rotate.abort", store.KeyID(s.Current), err)
		}
		rot.Kind, rot.Step, rot.Reason, rot.KeyID = store.OpRollback, "", "abort of rotation "+rot.ID, s.Current.ID
		if err := r.save(ctx); err != nil {
			return res, r.recErr(ctx, "rotate.abort", store.KeyID(s.Current), fmt.Errorf("abort rotation of %s: %w", sec.Name, err))
		}
		if err := r.rec(ctx, "rollback", StatusStarted, s.Previous.ID, "restore previous as current ("+rot.Reason+")"); err != nil {
			return res, err
		}
		err := r.advance(ctx)
		return r.result(store.OpRollback), err
	}
	if p := s.Pending; p != nil {
		if err := e.reapplyCurrent(ctx, sec, s); err != nil {
			err = fmt.Errorf("abort rotation of %s: %w", sec.Name, err)
			return res, r.recErr(ctx, "rotate.abort", store.KeyID(s.Current), err)
		}
		switch {
		case p.Source == store.SourceStaged && s.Next == nil:
			s.Next = p
		default:
			p.ExpiresAt = e.now()
			s.Retired = append(s.Retired, *p)
		}
		s.Pending = nil
	} else if in := rot.Intent; in != nil && in.Action == store.IntentMint {
		if err := r.reconcileAbort(ctx); err != nil {
			return res, err
		}
	}
	rot.Step, rot.Intent = store.StepAborted, nil
	if err := r.save(ctx); err != nil {
		return res, r.recErr(ctx, "rotate.abort", store.KeyID(s.Current), fmt.Errorf("abort rotation of %s: %w", sec.Name, err))
	}
	e.point(s, StepAborted)
	res.Current = store.KeyID(s.Current)
	return res, r.close(ctx, EndAborted, "rotate.abort", StatusSucceeded, res.Current, "pending key set aside; nothing was promoted")
}

// reconcileAbort settles the mint intent of a rotation being aborted
// before it saved a pending key: the key the mint created, if the provider
// can find it, is retired for revocation; when the provider cannot tell,
// the key is reported as possibly orphaned.
func (r *run) reconcileAbort(ctx context.Context) error {
	in := r.s.Rotation.Intent
	var cred provider.Credential
	var err error
	switch p := r.sec.Provider.(type) {
	case provider.Recoverer:
		cred, err = p.Recover(ctx, r.mintRequest(in))
		if errors.Is(err, provider.ErrNotMinted) {
			return nil
		}
	case provider.IdempotentMinter:
		if !p.IdempotentMint() {
			return r.orphan(ctx, in)
		}
		// The same request id answers the key an interrupted mint
		// created (or creates it now): either way it is retired.
		cred, err = r.sec.Provider.Mint(ctx, r.mintRequest(in))
	default:
		return r.orphan(ctx, in)
	}
	if err != nil {
		if rerr := r.rec(ctx, "rotate.abort", StatusFailed, "", fmt.Sprintf("reconcile mint %s: %v", in.ID, err)); rerr != nil {
			return rerr
		}
		return r.orphan(ctx, in)
	}
	k := r.newKey(cred)
	k.ExpiresAt = r.e.now()
	r.s.Retired = append(r.s.Retired, *k)
	return r.rec(ctx, "rotate.abort", StatusSucceeded, k.ID, fmt.Sprintf("key minted for request %s retired for revocation", in.ID))
}

// reapplyCurrent has the issuer accept current again after a prepared
// pending key may have been applied in its place (see [provider.Preparer]).
func (e *Engine) reapplyCurrent(ctx context.Context, sec Secret, s *store.Secret) error {
	prep, ok := sec.Provider.(provider.Preparer)
	if !ok || s.Current == nil || s.Pending == nil || s.Pending.Source != store.SourceMinted {
		return nil
	}
	if err := prep.Apply(ctx, *s.Current); err != nil {
		return fmt.Errorf("apply current key %s again: %w", s.Current.ID, err)
	}
	return nil
}
