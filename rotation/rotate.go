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

// Result summarises a completed operation.
type Result struct {
	Secret   string
	Rotation string // rotation id, for rotate
	Resumed  bool   // the rotation was taken over from an earlier run
	Current  string // key id of current afterwards
	Previous string // key id of previous afterwards
}

// run is one rotation in flight: the secret as last saved and its version.
type run struct {
	e   *Engine
	sec Secret
	s   *store.Secret
	ver store.Version
}

// Rotate runs a rotation of sec to completion: it starts one, or resumes an
// abandoned one. It returns an error wrapping ErrRotationInProgress when
// another live rotator holds the lease, ErrTestFailed when the new key was
// rejected (nothing promoted), and ErrRolledBack when reload or verify
// failed after promote and the rotation was undone.
func (e *Engine) Rotate(ctx context.Context, sec Secret) (Result, error) {
	r, resumed, err := e.acquire(ctx, sec)
	if err != nil {
		return Result{Secret: sec.Name}, err
	}
	res := Result{Secret: sec.Name, Rotation: r.s.Rotation.ID, Resumed: resumed}
	err = r.advance(ctx)
	if r.s.Current != nil {
		res.Current = r.s.Current.ID
	}
	if r.s.Previous != nil {
		res.Previous = r.s.Previous.ID
	}
	return res, err
}

// acquire starts a rotation or takes over an abandoned one, saving the
// lease with compare-and-swap so that exactly one rotator wins.
func (e *Engine) acquire(ctx context.Context, sec Secret) (*run, bool, error) {
	for attempt := 0; ; attempt++ {
		s, ver, err := e.load(ctx, sec.Name)
		if err != nil {
			return nil, false, err
		}
		now := e.now()
		resumed := false
		if rot := s.Rotation; rot != nil {
			if now.Before(rot.LeaseExpiresAt) && rot.Holder != e.holder() && e.alive(rot.Holder) {
				return nil, false, inProgress(s, e.now())
			}
			resumed = true
			rot.Holder = e.holder()
			rot.LeaseExpiresAt = now.Add(sec.Lease)
		} else {
			s.Rotation = &store.Rotation{
				ID:             newRotationID(now),
				StartedAt:      now,
				Initiator:      e.Initiator,
				Holder:         e.holder(),
				LeaseExpiresAt: now.Add(sec.Lease),
			}
		}
		action, detail := "rotate.start", "rotation "+s.Rotation.ID
		if resumed {
			action, detail = "rotate.resume", fmt.Sprintf("rotation %s from step %s", s.Rotation.ID, stepName(s.Rotation.Step))
		}
		nv, err := e.Store.Save(ctx, s, ver)
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			// Somebody else wrote first; look again: they either hold
			// the lease now (in progress) or finished something else.
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("start rotation of %s: %w", sec.Name, err)
		}
		r := &run{e: e, sec: sec, s: s, ver: nv}
		if err := e.record(ctx, Event{Action: action, Secret: sec.Name, KeyID: store.KeyID(s.Current), Status: StatusStarted, Detail: detail}); err != nil {
			return nil, false, errors.Join(err, r.release(ctx))
		}
		e.log().Info("rotation acquired", "secret", sec.Name, "rotation", s.Rotation.ID, "resumed", resumed)
		return r, resumed, nil
	}
}

func newRotationID(now time.Time) string {
	return now.Format("20060102T150405Z") + "-" + randomID(4)
}

func stepName(s store.Step) string {
	if s == "" {
		return "start"
	}
	return string(s)
}

// save writes r.s with compare-and-swap, renewing the lease.
func (r *run) save(ctx context.Context) error {
	if r.s.Rotation != nil {
		r.s.Rotation.LeaseExpiresAt = r.e.now().Add(r.sec.Lease)
	}
	nv, err := r.e.Store.Save(ctx, r.s, r.ver)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("save %s: %w (the secret was changed by someone else, e.g. an abort)", r.s.Name, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", r.s.Name, err)
	}
	r.ver = nv
	return nil
}

// release gives the lease up after a failure that left the rotation
// resumable, so the next run need not wait for the lease to expire.
func (r *run) release(ctx context.Context) error {
	if r.s.Rotation == nil {
		return nil
	}
	r.s.Rotation.Holder = ""
	r.s.Rotation.LeaseExpiresAt = r.e.now()
	nv, err := r.e.Store.Save(ctx, r.s, r.ver)
	if err != nil {
		return fmt.Errorf("release lease on %s: %w", r.s.Name, err)
	}
	r.ver = nv
	return nil
}

// advance runs the steps after the last recorded one.
func (r *run) advance(ctx context.Context) error {
	steps := store.Steps
	if last := r.s.Rotation.Step; last != "" {
		i := slices.Index(steps, last)
		if i < 0 {
			return fmt.Errorf("%s: unknown recorded step %q", r.s.Name, last)
		}
		steps = steps[i+1:]
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return errors.Join(fmt.Errorf("%s: rotation interrupted before %s: %w", r.s.Name, step, err), r.release(context.WithoutCancel(ctx)))
		}
		if r.e.Stopping != nil && r.e.Stopping() {
			return errors.Join(fmt.Errorf("%s: rotation parked before %s: %w", r.s.Name, step, ErrParked), r.release(ctx))
		}
		if err := r.do(ctx, step); err != nil {
			return err
		}
		if r.e.OnStep != nil {
			r.e.OnStep(r.s.Name, step, r.s)
		}
	}
	return nil
}

func (r *run) do(ctx context.Context, step store.Step) error {
	switch step {
	case store.StepCreate:
		return r.create(ctx)
	case store.StepTest:
		return r.test(ctx)
	case store.StepPromote:
		return r.promote(ctx)
	case store.StepReload:
		return r.check(ctx, step, func(ctx context.Context) error {
			if r.sec.Reload == nil {
				return nil
			}
			return r.sec.Reload.Reload(ctx, r.s)
		})
	case store.StepVerify:
		return r.check(ctx, step, func(ctx context.Context) error {
			if r.sec.Verify == nil {
				return nil
			}
			return r.sec.Verify.Verify(ctx, r.s)
		})
	case store.StepFinish:
		return r.finish(ctx)
	}
	return fmt.Errorf("unknown step %q", step)
}

// stepDone records step as completed, saves and audits it.
func (r *run) stepDone(ctx context.Context, step store.Step, keyID, detail string) error {
	r.s.Rotation.Step = step
	if err := r.save(ctx); err != nil {
		return err
	}
	return r.e.record(ctx, Event{Action: "rotate." + string(step), Secret: r.s.Name, KeyID: keyID, Status: StatusSucceeded, Detail: detail})
}

func (r *run) fail(ctx context.Context, step store.Step, keyID string, err error) error {
	return r.e.recordAll(ctx, err, Event{Action: "rotate." + string(step), Secret: r.s.Name, KeyID: keyID, Status: StatusFailed, Detail: err.Error()})
}

// create fills pending: a pending key left by a crashed run is kept, then
// the staged next key is taken, else the provider mints one. A provider
// that is a [provider.Preparer] prepares the value, which is saved as
// pending before Apply changes the issuer; a run that finds such a pending
// key with create not yet recorded applies it again.
func (r *run) create(ctx context.Context) error {
	s := r.s
	prep, _ := r.sec.Provider.(provider.Preparer)
	resumed := s.Pending != nil
	if s.Pending == nil {
		var k *store.Key
		switch {
		case s.Next != nil:
			k = s.Next.Clone()
			k.Source = store.SourceStaged
			s.Next = nil
		default:
			mint := r.sec.Provider.Mint
			if prep != nil {
				mint = prep.Prepare
			}
			cred, err := mint(ctx, r.mintRequest())
			if err != nil {
				err = fmt.Errorf("%s: create: %w", s.Name, err)
				return errors.Join(r.fail(ctx, store.StepCreate, "", err), r.abandon(ctx))
			}
			if err := store.ValidateValue(cred.Value); err != nil {
				err = fmt.Errorf("%s: create: the provider minted an unusable key: %w", s.Name, err)
				return errors.Join(r.fail(ctx, store.StepCreate, "", err), r.abandon(ctx))
			}
			k = &store.Key{Value: cred.Value, ID: r.e.keyID(cred.Value), CreatedAt: r.e.now(), Source: store.SourceMinted, Meta: cred.Meta}
		}
		s.Pending = k
	}
	if err := r.checkCandidate(ctx, s.Pending); err != nil {
		return err
	}
	if prep != nil && s.Pending.Source == store.SourceMinted {
		if err := r.apply(ctx, prep, resumed); err != nil {
			return err
		}
	}
	return r.stepDone(ctx, store.StepCreate, s.Pending.ID, "pending key "+s.Pending.Source)
}

// mintRequest describes the rotation to the provider.
func (r *run) mintRequest() provider.MintRequest {
	req := provider.MintRequest{Secret: r.s.Name, Current: r.s.Current.Clone(), Grace: r.sec.Grace}
	if p := r.s.Previous; p != nil && !p.Expired(r.e.now()) {
		req.Previous = p.Clone()
	}
	return req
}

// apply saves a freshly prepared pending key (the intent), then has the
// issuer accept it. A definite refusal of a fresh key ends the rotation with
// nothing changed; any other failure keeps the key for the next run.
func (r *run) apply(ctx context.Context, prep provider.Preparer, resumed bool) error {
	s := r.s
	k := s.Pending
	if !resumed {
		if err := r.save(ctx); err != nil {
			return err
		}
		r.e.point(s, StepPrepared)
	}
	if err := prep.Apply(ctx, *k); err != nil {
		err = fmt.Errorf("%s: create: apply key %s: %w", s.Name, k.ID, err)
		if !resumed && errors.Is(err, provider.ErrNotApplied) {
			s.Pending = nil
			return errors.Join(r.fail(ctx, store.StepCreate, k.ID, err), r.abandon(ctx))
		}
		return errors.Join(r.fail(ctx, store.StepCreate, k.ID, err), r.release(context.WithoutCancel(ctx)))
	}
	r.e.point(s, StepApplied)
	return nil
}

// checkCandidate refuses a pending key that equals a live key or that the
// provider will not promote over current.
func (r *run) checkCandidate(ctx context.Context, k *store.Key) error {
	s := r.s
	for _, live := range []*store.Key{s.Current, s.Previous} {
		if live != nil && live.Value == k.Value {
			return r.reject(ctx, store.StepCreate, fmt.Errorf("%s: create: pending key %s: %w", s.Name, k.ID, ErrSameKey))
		}
	}
	if pc, ok := r.sec.Provider.(provider.PromoteChecker); ok {
		if err := pc.CheckPromote(s.Current.Clone(), k.Value); err != nil {
			return r.reject(ctx, store.StepCreate, fmt.Errorf("%s: create: key %s: %w: %w", s.Name, k.ID, ErrPromoteRefused, err))
		}
	}
	return nil
}

// abandon ends a rotation that failed before anything was written to a
// slot: the lease is dropped and the secret is as it was.
func (r *run) abandon(ctx context.Context) error {
	r.s.Rotation = nil
	return r.save(context.WithoutCancel(ctx))
}

func (r *run) test(ctx context.Context) error {
	k := r.s.Pending
	if k == nil {
		return fmt.Errorf("%s: test: no pending key recorded after create", r.s.Name)
	}
	if err := r.sec.Provider.Test(ctx, k.Value); err != nil {
		err = fmt.Errorf("%s: test key %s: %w", r.s.Name, k.ID, err)
		if errors.Is(err, provider.ErrRejected) {
			return r.reject(ctx, store.StepTest, fmt.Errorf("%w: %w", ErrTestFailed, err))
		}
		// Unknown answer (network, 5xx): keep the rotation for a retry.
		return errors.Join(r.fail(ctx, store.StepTest, k.ID, err), r.release(context.WithoutCancel(ctx)))
	}
	return r.stepDone(ctx, store.StepTest, k.ID, "issuer accepted the pending key")
}

// reject drops a pending key that must never be promoted (rejected by its
// issuer or refused by the provider) and ends the rotation. A rejected key
// is not retired: its issuer does not accept it, so there is nothing to
// revoke.
func (r *run) reject(ctx context.Context, step store.Step, cause error) error {
	id := store.KeyID(r.s.Pending)
	r.s.Pending = nil
	r.s.Rotation = nil
	err := r.save(context.WithoutCancel(ctx))
	return r.fail(ctx, step, id, errors.Join(cause, err))
}

func (r *run) promote(ctx context.Context) error {
	s := r.s
	if s.Pending == nil {
		return fmt.Errorf("%s: promote: no pending key", s.Name)
	}
	now := r.e.now()
	if s.Previous != nil {
		// Still possibly valid at its issuer: keep it for revocation.
		s.Retired = append(s.Retired, *s.Previous)
	}
	s.Previous = nil
	if s.Current != nil {
		prev := s.Current.Clone()
		prev.ExpiresAt = now.Add(r.sec.Grace)
		s.Previous = prev
	}
	s.Current = s.Pending
	s.Current.ExpiresAt = time.Time{}
	s.Pending = nil
	detail := "current is the new key"
	if s.Previous != nil {
		detail = fmt.Sprintf("previous %s valid until %s", s.Previous.ID, s.Previous.ExpiresAt.Format(time.RFC3339))
	}
	return r.stepDone(ctx, store.StepPromote, s.Current.ID, detail)
}

// check runs reload or verify; a failure rolls the promotion back.
func (r *run) check(ctx context.Context, step store.Step, fn func(context.Context) error) error {
	if err := fn(ctx); err != nil {
		cause := fmt.Errorf("%s: %s key %s: %w", r.s.Name, step, r.s.Current.ID, err)
		failErr := r.fail(ctx, step, r.s.Current.ID, cause)
		done, rbErr := r.e.rollbackLocked(context.WithoutCancel(ctx), r.sec, r.s, r.ver, "automatic after failed "+string(step))
		if rbErr != nil {
			rbErr = fmt.Errorf("automatic rollback: %w", rbErr)
		}
		if !done {
			return errors.Join(failErr, rbErr)
		}
		return errors.Join(ErrRolledBack, failErr, rbErr)
	}
	return r.stepDone(ctx, step, r.s.Current.ID, "")
}

func (r *run) finish(ctx context.Context) error {
	id := r.s.Rotation.ID
	r.s.Rotation = nil
	r.s.LastRotatedAt = r.e.now()
	if err := r.save(ctx); err != nil {
		return err
	}
	return r.e.record(ctx, Event{Action: "rotate.finish", Secret: r.s.Name, KeyID: r.s.Current.ID, Status: StatusSucceeded, Detail: "rotation " + id + " complete"})
}

// Abort ends an unfinished rotation of sec, whoever holds it: before
// promote the pending key is discarded (a staged key goes back to next, a
// minted one is retired for revocation); after promote the rotation is
// rolled back. A live holder's next save then fails with ErrLeaseLost.
func (e *Engine) Abort(ctx context.Context, sec Secret) (Result, error) {
	s, ver, err := e.load(ctx, sec.Name)
	if err != nil {
		return Result{Secret: sec.Name}, err
	}
	if s.Rotation == nil {
		return Result{Secret: sec.Name}, fmt.Errorf("%s: %w", sec.Name, ErrNoRotation)
	}
	res := Result{Secret: sec.Name, Rotation: s.Rotation.ID}
	if err := e.record(ctx, Event{Action: "rotate.abort", Secret: sec.Name, KeyID: store.KeyID(s.Pending), Status: StatusStarted, Detail: "rotation " + s.Rotation.ID + " at step " + stepName(s.Rotation.Step)}); err != nil {
		return res, err
	}
	promoted := slices.Index(store.Steps, s.Rotation.Step) >= slices.Index(store.Steps, store.StepPromote)
	if promoted {
		_, err := e.rollbackLocked(ctx, sec, s, ver, "abort of rotation "+s.Rotation.ID)
		res.Current = store.KeyID(s.Current)
		return res, err
	}
	if p := s.Pending; p != nil {
		if err := e.reapplyCurrent(ctx, sec, s); err != nil {
			err = fmt.Errorf("abort rotation of %s: %w", sec.Name, err)
			return res, e.recordAll(ctx, err, Event{Action: "rotate.abort", Secret: sec.Name, KeyID: store.KeyID(s.Current), Status: StatusFailed, Detail: err.Error()})
		}
		switch {
		case p.Source == store.SourceStaged && s.Next == nil:
			s.Next = p
		default:
			p.ExpiresAt = e.now()
			s.Retired = append(s.Retired, *p)
		}
		s.Pending = nil
	}
	s.Rotation = nil
	if _, err := e.Store.Save(ctx, s, ver); err != nil {
		err = fmt.Errorf("abort rotation of %s: %w", sec.Name, err)
		return res, e.recordAll(ctx, err, Event{Action: "rotate.abort", Secret: sec.Name, Status: StatusFailed, Detail: err.Error()})
	}
	res.Current = store.KeyID(s.Current)
	return res, e.record(ctx, Event{Action: "rotate.abort", Secret: sec.Name, KeyID: res.Current, Status: StatusSucceeded, Detail: "pending key discarded; nothing was promoted"})
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
