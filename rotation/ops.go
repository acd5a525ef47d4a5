package rotation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// Rollback makes previous current again and sets the current key aside
// (retired for revocation, or kept as previous when the secret says so),
// then reloads and verifies. It refuses with ErrNothingToRollBack when
// previous is empty, revoked or expired, and with ErrRotationInProgress
// while a rotation is unfinished (abort that instead).
func (e *Engine) Rollback(ctx context.Context, sec Secret) (Result, error) {
	s, ver, err := e.load(ctx, sec.Name)
	if err != nil {
		return Result{Secret: sec.Name}, err
	}
	res := Result{Secret: sec.Name}
	if err := e.checkIdle(s); err != nil {
		return res, err
	}
	if err := e.canRollBack(s); err != nil {
		return res, e.recordAll(ctx, err, Event{Action: "rollback", Secret: sec.Name, KeyID: store.KeyID(s.Current), Status: StatusFailed, Detail: err.Error()})
	}
	if err := e.record(ctx, Event{Action: "rollback", Secret: sec.Name, KeyID: s.Previous.ID, Status: StatusStarted, Detail: "restore previous as current"}); err != nil {
		return res, err
	}
	_, err = e.rollbackLocked(ctx, sec, s, ver, "requested")
	res.Current, res.Previous = store.KeyID(s.Current), store.KeyID(s.Previous)
	return res, err
}

func (e *Engine) canRollBack(s *store.Secret) error {
	switch p := s.Previous; {
	case p == nil:
		return fmt.Errorf("%s: %w: there is no previous key (never rotated, already rolled back, or revoked)", s.Name, ErrNothingToRollBack)
	case p.Expired(e.now()):
		return fmt.Errorf("%s: %w: previous key %s expired at %s and its issuer may no longer accept it", s.Name, ErrNothingToRollBack, p.ID, p.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// rollbackLocked swaps current and previous in s (loaded at ver) and
// clears any rotation, then reloads and verifies. It reports whether the
// swap was saved; an error after that comes from reload or verify.
func (e *Engine) rollbackLocked(ctx context.Context, sec Secret, s *store.Secret, ver store.Version, reason string) (bool, error) {
	if err := e.canRollBack(s); err != nil {
		// Nothing to go back to (first issue): keep the key, end the rotation.
		s.Rotation = nil
		if _, serr := e.Store.Save(ctx, s, ver); serr != nil {
			err = errors.Join(err, fmt.Errorf("save %s: %w", s.Name, serr))
		}
		return false, e.recordAll(ctx, err, Event{Action: "rollback", Secret: s.Name, KeyID: store.KeyID(s.Current), Status: StatusFailed, Detail: reason + ": " + err.Error()})
	}
	if prep, ok := sec.Provider.(provider.Preparer); ok {
		// An issuer that holds one credential at a time takes previous back.
		if err := prep.Apply(ctx, *s.Previous); err != nil {
			err = fmt.Errorf("roll back %s: apply previous key %s again: %w", s.Name, s.Previous.ID, err)
			return false, e.recordAll(ctx, err, Event{Action: "rollback", Secret: s.Name, KeyID: s.Previous.ID, Status: StatusFailed, Detail: reason + ": " + err.Error()})
		}
	}
	now := e.now()
	failed := s.Current.Clone()
	s.Current = s.Previous
	s.Current.ExpiresAt = time.Time{}
	s.Previous = nil
	if sec.KeepFailedAsPrevious {
		failed.ExpiresAt = now.Add(sec.Grace)
		s.Previous = failed
	} else {
		failed.ExpiresAt = now
		s.Retired = append(s.Retired, *failed)
	}
	s.Rotation = nil
	if _, err := e.Store.Save(ctx, s, ver); err != nil {
		err = fmt.Errorf("roll back %s: %w", s.Name, err)
		if errors.Is(err, store.ErrConflict) {
			err = fmt.Errorf("%w (changed concurrently; check `rotor status %s` and retry)", err, s.Name)
		}
		return false, e.recordAll(ctx, err, Event{Action: "rollback", Secret: s.Name, KeyID: failed.ID, Status: StatusFailed, Detail: reason + ": " + err.Error()})
	}
	detail := fmt.Sprintf("%s: current is %s again; %s set aside", reason, s.Current.ID, failed.ID)
	if err := e.record(ctx, Event{Action: "rollback", Secret: s.Name, KeyID: s.Current.ID, Status: StatusSucceeded, Detail: detail}); err != nil {
		return true, err
	}
	// Consumers that already picked up the failed key must come back.
	if sec.Reload != nil {
		if err := sec.Reload.Reload(ctx, s); err != nil {
			err = fmt.Errorf("%s: reload after rollback: %w", s.Name, err)
			return true, e.recordAll(ctx, err, Event{Action: "rollback.reload", Secret: s.Name, KeyID: s.Current.ID, Status: StatusFailed, Detail: err.Error()})
		}
	}
	if sec.Verify != nil {
		if err := sec.Verify.Verify(ctx, s); err != nil {
			err = fmt.Errorf("%s: verify after rollback: %w", s.Name, err)
			return true, e.recordAll(ctx, err, Event{Action: "rollback.verify", Secret: s.Name, KeyID: s.Current.ID, Status: StatusFailed, Detail: err.Error()})
		}
	}
	return true, nil
}

// Stage tests value and stores it as the secret's next key, which the next
// rotation promotes instead of minting. A key already staged is replaced
// and retired. meta is kept with the key (never secret: e.g. the name the
// key has in the issuer's dashboard, for revoke instructions). A value
// that fails [store.ValidateValue] is refused (an error wrapping
// store.ErrInvalidValue) before anything is loaded or tested; providers
// check their own shape (Clerk's sk_live_/sk_test_ form) in CheckPromote
// or Test before they contact the issuer.
func (e *Engine) Stage(ctx context.Context, sec Secret, value string, meta map[string]string) (string, error) {
	if err := store.ValidateValue(value); err != nil {
		return "", fmt.Errorf("%s: stage: %w", sec.Name, err)
	}
	s, ver, err := e.load(ctx, sec.Name)
	if err != nil {
		return "", err
	}
	if err := e.checkIdle(s); err != nil {
		return "", err
	}
	id := e.keyID(value)
	fail := func(err error) (string, error) {
		return id, e.recordAll(ctx, err, Event{Action: "stage", Secret: sec.Name, KeyID: id, Status: StatusFailed, Detail: err.Error()})
	}
	for _, sl := range []store.Slot{store.SlotCurrent, store.SlotPrevious, store.SlotNext} {
		if k := s.Slot(sl); k != nil && k.Value == value {
			return fail(fmt.Errorf("%s: stage key %s: %w (slot %s)", sec.Name, id, ErrSameKey, sl))
		}
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
	if _, err := e.Store.Save(ctx, s, ver); err != nil {
		return fail(fmt.Errorf("stage %s: %w", sec.Name, err))
	}
	return id, e.record(ctx, Event{Action: "stage", Secret: sec.Name, KeyID: id, Status: StatusSucceeded, Detail: detail})
}

// RevokeOptions selects what Revoke revokes.
type RevokeOptions struct {
	// Force revokes previous (and retired keys) before their grace period
	// ends. Audited as forced.
	Force bool
	// ExpiredOnly skips unexpired keys silently instead of failing with
	// ErrNotExpired (for `revoke --expired` runs over every secret).
	ExpiredOnly bool
}

// RevokeResult lists what Revoke did.
type RevokeResult struct {
	Secret  string
	Revoked []string // key ids revoked and cleared
	Waiting []string // key ids skipped because they have not expired
}

// Revoke revokes previous and retired keys at their issuer and then clears
// them from the secret, one key per save, so a crash in between only
// repeats an idempotent revoke. Without Force it refuses (ErrNotExpired)
// a previous key still within its grace period. A provider that needs the
// operator to act (Clerk instance keys) returns *provider.ActionRequiredError
// and the key is kept until a later revoke confirms it is gone.
func (e *Engine) Revoke(ctx context.Context, sec Secret, opts RevokeOptions) (RevokeResult, error) {
	res := RevokeResult{Secret: sec.Name}
	s, ver, err := e.load(ctx, sec.Name)
	if err != nil {
		return res, err
	}
	if err := e.checkIdle(s); err != nil {
		return res, err
	}
	now := e.now()
	var errs []error
	if p := s.Previous; p != nil {
		if !opts.Force && !p.Expired(now) {
			res.Waiting = append(res.Waiting, p.ID)
			if !opts.ExpiredOnly {
				err := fmt.Errorf("%s: revoke previous key %s: %w until %s (use --force to revoke it now)", sec.Name, p.ID, ErrNotExpired, p.ExpiresAt.Format(time.RFC3339))
				errs = append(errs, e.recordAll(ctx, err, Event{Action: "revoke", Secret: sec.Name, KeyID: p.ID, Status: StatusFailed, Detail: err.Error()}))
			}
		} else {
			ver, err = e.revokeOne(ctx, sec, s, ver, *p, opts.Force, func(s *store.Secret) { s.Previous = nil })
			if err != nil {
				errs = append(errs, err)
			} else {
				res.Revoked = append(res.Revoked, p.ID)
			}
		}
	}
	for _, k := range slices.Clone(s.Retired) {
		if !opts.Force && !k.Expired(now) {
			res.Waiting = append(res.Waiting, k.ID)
			continue
		}
		id := k.ID
		ver, err = e.revokeOne(ctx, sec, s, ver, k, opts.Force, func(s *store.Secret) {
			s.Retired = slices.DeleteFunc(s.Retired, func(r store.Key) bool { return r.ID == id })
		})
		if err != nil {
			errs = append(errs, err)
		} else {
			res.Revoked = append(res.Revoked, id)
		}
	}
	return res, errors.Join(errs...)
}

// revokeOne revokes k at its issuer, then applies clear to s and saves.
// Without force it first makes sure no consumer still uses k.
func (e *Engine) revokeOne(ctx context.Context, sec Secret, s *store.Secret, ver store.Version, k store.Key, force bool, clear func(*store.Secret)) (store.Version, error) {
	detail := ""
	if force && !k.Expired(e.now()) {
		detail = "forced before expiry"
		if !k.ExpiresAt.IsZero() {
			detail += " (" + k.ExpiresAt.Format(time.RFC3339) + ")"
		}
	}
	if sec.Usage != nil && !force {
		users, err := sec.Usage.InUse(ctx, k.ID)
		if err == nil && len(users) > 0 {
			err = fmt.Errorf("%s: revoke key %s: %w: %s", sec.Name, k.ID, ErrKeyInUse, strings.Join(users, ", "))
		}
		if err != nil {
			return ver, e.recordAll(ctx, err, Event{Action: "revoke", Secret: sec.Name, KeyID: k.ID, Status: StatusFailed, Detail: err.Error()})
		}
	}
	if err := e.record(ctx, Event{Action: "revoke", Secret: sec.Name, KeyID: k.ID, Status: StatusStarted, Detail: detail}); err != nil {
		return ver, err
	}
	if err := sec.Provider.Revoke(ctx, k); err != nil {
		err = fmt.Errorf("%s: revoke key %s: %w", sec.Name, k.ID, err)
		return ver, e.recordAll(ctx, err, Event{Action: "revoke", Secret: sec.Name, KeyID: k.ID, Status: StatusFailed, Detail: err.Error()})
	}
	clear(s)
	nv, err := e.Store.Save(ctx, s, ver)
	if err != nil {
		err = fmt.Errorf("%s: clear revoked key %s: %w", sec.Name, k.ID, err)
		return ver, e.recordAll(ctx, err, Event{Action: "revoke", Secret: sec.Name, KeyID: k.ID, Status: StatusFailed, Detail: err.Error()})
	}
	if detail == "" {
		detail = "revoked at issuer and cleared"
	}
	return nv, e.record(ctx, Event{Action: "revoke", Secret: sec.Name, KeyID: k.ID, Status: StatusSucceeded, Detail: detail})
}
