package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/store"
)

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

// Revoke revokes previous and retired keys at their issuer and clears
// them from the secret, one revoke operation per key: the key is marked
// [store.KeyRevoking] and saved, the issuer is asked, then the key is
// cleared and its id remembered in the secret's Revoked list. A run that
// dies in between leaves the mark, and the next run (of any command)
// repeats the idempotent revoke instead of forgetting it; a marked key is
// never promoted or rolled back to again, and is revoked by the next
// Revoke whatever its expiry.
//
// Without Force it refuses (ErrNotExpired) a previous key still within its
// grace period, and (ErrKeyInUse) a key consumers report using. It always
// refuses (ErrReloadPending) the key consumers were last reloaded with,
// until a reload of a later key has completed, and does nothing while a
// rotation or rollback is unfinished (ErrRotationInProgress). A provider
// that needs the operator to act (Clerk instance keys) returns
// *provider.ActionRequiredError; the key stays marked until a later revoke
// confirms it is gone.
func (e *Engine) Revoke(ctx context.Context, sec Secret, opts RevokeOptions) (RevokeResult, error) {
	res := RevokeResult{Secret: sec.Name}
	var errs []error
	tried := map[string]bool{}
	for conflicts := 0; conflicts < 4; {
		s, ver, err := e.load(ctx, sec.Name)
		if err != nil {
			return res, errors.Join(append(errs, err)...)
		}
		if rot := s.Rotation; rot != nil {
			kind := rot.OpKind()
			if e.live(rot) || kind == store.OpRollback || kind == store.OpRotate && rot.Step != store.StepAborted {
				return res, errors.Join(append(errs, inProgress(s, e.now()))...)
			}
			r, err := e.takeover(ctx, sec, s, ver)
			if errors.Is(err, store.ErrConflict) {
				conflicts++
				continue
			}
			if err != nil {
				return res, errors.Join(append(errs, err)...)
			}
			if kind != store.OpRevoke {
				if err := r.complete(ctx); err != nil {
					return res, errors.Join(append(errs, err)...)
				}
				continue
			}
			tried[rot.KeyID] = true
			done, err := r.revoke(ctx, rot.KeyID)
			if done {
				res.Revoked = append(res.Revoked, rot.KeyID)
			}
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		k := e.nextToRevoke(ctx, sec, s, opts, tried, &res, &errs)
		if k == nil {
			break
		}
		detail := ""
		if !k.Revoking() && !k.Expired(e.now()) {
			detail = "forced before expiry"
			if !k.ExpiresAt.IsZero() {
				detail += " (" + k.ExpiresAt.Format(time.RFC3339) + ")"
			}
		}
		id := k.ID
		mark := func(s *store.Secret) {
			s.Rotation.KeyID = id
			if k := findRevocable(s, id); k != nil {
				k.State = store.KeyRevoking
			}
		}
		r, err := e.start(ctx, sec, s, ver, store.OpRevoke, mark, "revoke", id, detail)
		if errors.Is(err, store.ErrConflict) {
			delete(tried, id)
			conflicts++
			continue
		}
		if err != nil {
			return res, errors.Join(append(errs, err)...)
		}
		e.point(r.s, StepRevoking)
		done, err := r.revoke(ctx, id)
		if done {
			res.Revoked = append(res.Revoked, id)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// nextToRevoke returns the next key of s to revoke and marks it tried:
// keys already marked revoking first, then previous, then retired keys.
// Keys it must skip are noted as waiting, or refused with the refusal
// recorded in errs.
func (e *Engine) nextToRevoke(ctx context.Context, sec Secret, s *store.Secret, opts RevokeOptions, tried map[string]bool, res *RevokeResult, errs *[]error) *store.Key {
	var candidates []*store.Key
	if s.Previous != nil {
		candidates = append(candidates, s.Previous)
	}
	for i := range s.Retired {
		candidates = append(candidates, &s.Retired[i])
	}
	// Decided earlier: finish them whatever their expiry.
	for _, k := range candidates {
		if k.Revoking() && !tried[k.ID] {
			tried[k.ID] = true
			return k
		}
	}
	for _, k := range candidates {
		if tried[k.ID] {
			continue
		}
		tried[k.ID] = true
		waiting, err := e.revocable(ctx, sec, s, k, opts)
		if waiting {
			res.Waiting = append(res.Waiting, k.ID)
		}
		if err != nil {
			*errs = append(*errs, e.recordAll(ctx, err, Event{Action: "revoke", Secret: sec.Name, KeyID: k.ID, Status: StatusFailed, Detail: err.Error()}))
		}
		if waiting || err != nil {
			continue
		}
		return k
	}
	return nil
}

// revocable decides whether Revoke may revoke k, a key of s not yet
// marked revoking: it reports whether k is waiting for its grace period
// to end, and the error Revoke refuses k with, if it does. It changes
// nothing and records nothing; it asks consumers (sec.Usage) whether they
// still use k.
func (e *Engine) revocable(ctx context.Context, sec Secret, s *store.Secret, k *store.Key, opts RevokeOptions) (waiting bool, refusal error) {
	switch {
	case !opts.Force && !k.Expired(e.now()):
		if k == s.Previous && !opts.ExpiredOnly {
			return true, fmt.Errorf("%s: revoke previous key %s: %w until %s (use --force to revoke it now)", sec.Name, k.ID, ErrNotExpired, k.ExpiresAt.Format(time.RFC3339))
		}
		return true, nil
	case k.ID == s.ReloadedKeyID:
		return false, fmt.Errorf("%s: revoke key %s: %w; run `rotor rotate %s` (or `rotor rollback %s`) until its reload succeeds", sec.Name, k.ID, ErrReloadPending, sec.Name, sec.Name)
	}
	if sec.Usage != nil && !opts.Force {
		users, err := sec.Usage.InUse(ctx, k.ID)
		if err == nil && len(users) > 0 {
			err = fmt.Errorf("%s: revoke key %s: %w: %s", sec.Name, k.ID, ErrKeyInUse, strings.Join(users, ", "))
		}
		return false, err
	}
	return false, nil
}

// revoke asks the issuer to revoke the key with id (marked revoking, in
// previous or the retired list), then clears it and remembers its id. It
// reports whether the key is gone. A failure ends the operation with the
// key still marked, for the next revoke to try again.
func (r *run) revoke(ctx context.Context, id string) (bool, error) {
	s := r.s
	k := findRevocable(s, id)
	if k == nil {
		return true, r.close(ctx, EndRecovered, "revoke", StatusSucceeded, id, "key already cleared by an interrupted run")
	}
	k.State = store.KeyRevoking
	if err := r.sec.Provider.Revoke(ctx, *k); err != nil {
		err = fmt.Errorf("%s: revoke key %s: %w", s.Name, id, err)
		return false, r.closeErr(ctx, "revoke", id, err)
	}
	r.e.point(s, StepRevoked)
	detail := "revoked at issuer and cleared"
	if !k.Expired(r.e.now()) {
		detail = "forced before expiry; " + detail
	}
	if r.resumed {
		detail += " (resumed after an interrupted run)"
	}
	if s.Previous != nil && s.Previous.ID == id {
		s.Previous = nil
	} else {
		s.Retired = slices.DeleteFunc(s.Retired, func(k store.Key) bool { return k.ID == id })
	}
	s.AddRevoked(id, r.e.now())
	return true, r.close(ctx, EndSucceeded, "revoke", StatusSucceeded, id, detail)
}

// findRevocable returns the key with id in previous or the retired list
// of s, or nil.
func findRevocable(s *store.Secret, id string) *store.Key {
	if s.Previous != nil && s.Previous.ID == id {
		return s.Previous
	}
	for i := range s.Retired {
		if s.Retired[i].ID == id {
			return &s.Retired[i]
		}
	}
	return nil
}
