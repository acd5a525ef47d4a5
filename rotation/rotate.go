package rotation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// Result summarises a completed operation.
type Result struct {
	Secret   string
	Rotation string // operation id
	// Kind is what ran: a rotation, or a rollback that a rotate resumed.
	Kind     store.OpKind
	Resumed  bool   // the operation was taken over from an earlier run
	Current  string // key id of current afterwards
	Previous string // key id of previous afterwards
}

// run is one operation in flight: the secret as last saved and its
// version, with the lease held.
type run struct {
	e   *Engine
	sec Secret
	s   *store.Secret
	ver store.Version
	op  string // the operation's id, kept when s.Rotation is cleared
	// resumed is set when the operation was taken over from another run.
	resumed bool
	// cause is why an automatic rollback runs: the failed reload or verify
	// of the rotation it undoes.
	cause error
	// ownIntent is set while the mint intent in s is the one this run's
	// start saved, with nothing asked of the provider yet: there is
	// nothing to reconcile.
	ownIntent bool
	// unsaved are the records of steps that completed but are saved
	// with the next save (see stepLater), in step order; they are
	// recorded after that save.
	unsaved []Event
}

// Rotate runs a rotation of sec to completion: it starts one, or resumes an
// abandoned one. An interrupted revoke or stage is finished first; an
// interrupted rollback is resumed instead of rotating (Result.Kind says
// so). It returns an error wrapping ErrRotationInProgress when another live
// rotator holds the lease, ErrTestFailed when the new key was rejected
// (nothing promoted), and ErrRolledBack when reload or verify failed after
// promote and the rotation was undone.
func (e *Engine) Rotate(ctx context.Context, sec Secret) (Result, error) {
	return e.rotate(ctx, sec, nil, "", nil)
}

// RotateLoaded is [Engine.Rotate] starting from s at ver, as
// [Engine.Load] just returned them; s is the engine's from then on. The
// store's compare-and-swap refuses a save over ver if the secret changed
// since, and the rotation then loads it afresh, as after any lost race.
func (e *Engine) RotateLoaded(ctx context.Context, sec Secret, s *store.Secret, ver store.Version) (Result, error) {
	return e.rotate(ctx, sec, s, ver, nil)
}

// RotateDue is [Engine.RotateLoaded] for a secret that is to be rotated
// only when it is due at now ([Engine.Due]): a caller that loaded it to
// see whether it is due need not load it again. The check is made again
// on every load after a lost race, so that a secret another rotator
// rotated meanwhile is not rotated twice; it then returns an error
// wrapping [ErrNotDue], as it does when s itself is not due.
func (e *Engine) RotateDue(ctx context.Context, sec Secret, s *store.Secret, ver store.Version, now time.Time) (Result, error) {
	return e.rotate(ctx, sec, s, ver, func(s *store.Secret) bool { return e.Due(s, sec, now) })
}

// rotate runs a rotation from s at ver (nil: loaded), if due (nil: any)
// says so of every state it starts from.
func (e *Engine) rotate(ctx context.Context, sec Secret, s *store.Secret, ver store.Version, due func(*store.Secret) bool) (Result, error) {
	res := Result{Secret: sec.Name, Kind: store.OpRotate}
	for attempt := 0; ; attempt++ {
		if attempt > 0 || s == nil {
			var err error
			if s, ver, err = e.load(ctx, sec.Name); err != nil {
				return res, err
			}
		}
		if due != nil && !due(s) {
			return res, fmt.Errorf("%s: %w", sec.Name, ErrNotDue)
		}
		if rot := s.Rotation; rot != nil {
			if e.live(rot) {
				return res, inProgress(s, e.now())
			}
			r, err := e.takeover(ctx, sec, s, ver)
			if errors.Is(err, store.ErrConflict) && attempt < 3 {
				continue
			}
			if err != nil {
				return res, err
			}
			switch kind := rot.OpKind(); {
			case kind == store.OpRotate && rot.Step != store.StepAborted, kind == store.OpRollback:
				err := r.advance(ctx)
				return r.result(kind), err
			}
			if err := r.complete(ctx); err != nil {
				return res, err
			}
			continue
		}
		r, err := e.start(ctx, sec, s, ver, store.OpRotate, mintIntent(sec), "rotate.start", store.KeyID(s.Current), "")
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			// Somebody else wrote first; look again: they either hold
			// the lease now (in progress) or finished something else.
			continue
		}
		if err != nil {
			return res, err
		}
		r.ownIntent = r.s.Rotation.Intent != nil
		err = r.advance(ctx)
		return r.result(store.OpRotate), err
	}
}

// mintIntent returns the setup of a rotation's first save: when create
// will have the provider mint (no staged key, a provider that does not
// prepare), the mint intent goes with the start instead of in a save of
// its own, since nothing outside the store happens between the two.
func mintIntent(sec Secret) func(*store.Secret) {
	return func(s *store.Secret) {
		if _, prep := sec.Provider.(provider.Preparer); prep || s.Next != nil || s.Pending != nil {
			return
		}
		rot := s.Rotation
		rot.Intent = &store.Intent{ID: newRequestID(rot.ID), Action: store.IntentMint, At: rot.StartedAt}
	}
}

func (r *run) result(kind store.OpKind) Result {
	return Result{
		Secret: r.sec.Name, Rotation: r.op, Kind: kind, Resumed: r.resumed,
		Current: store.KeyID(r.s.Current), Previous: store.KeyID(r.s.Previous),
	}
}

// start takes the lease of s (loaded at ver, with no operation in flight)
// for a new operation of kind, with setup (if any) making the changes the
// first save carries. It saves, then records the start as action. When the
// start cannot be recorded, the secret is put back as it was loaded, so
// that nothing happens unaudited. A lost race returns an error wrapping
// store.ErrConflict.
func (e *Engine) start(ctx context.Context, sec Secret, s *store.Secret, ver store.Version, kind store.OpKind, setup func(*store.Secret), action, keyID, detail string) (*run, error) {
	orig := s.Clone()
	now := e.now()
	s.Rotation = &store.Rotation{
		ID:             newOperationID(now),
		Kind:           kind,
		StartedAt:      now,
		Initiator:      e.Initiator,
		Holder:         e.holder(),
		LeaseExpiresAt: now.Add(sec.Lease),
	}
	if setup != nil {
		setup(s)
	}
	nv, err := e.Store.Save(ctx, s, ver)
	if err != nil {
		return nil, fmt.Errorf("start %s of %s: %w", kind, sec.Name, err)
	}
	r := &run{e: e, sec: sec, s: s, ver: nv, op: s.Rotation.ID}
	if detail == "" {
		detail = string(kind) + " " + r.op
	}
	if err := r.rec(ctx, action, StatusStarted, keyID, detail); err != nil {
		r.s = orig
		return nil, errors.Join(err, r.save(context.WithoutCancel(ctx)))
	}
	e.log().Info("operation started", "secret", sec.Name, "kind", kind, "operation", r.op)
	return r, nil
}

// takeover takes the lease of an operation whose holder is gone (or is
// this process) and records that it is resumed.
func (e *Engine) takeover(ctx context.Context, sec Secret, s *store.Secret, ver store.Version) (*run, error) {
	rot := s.Rotation
	rot.Holder = e.holder()
	rot.LeaseExpiresAt = e.now().Add(sec.Lease)
	nv, err := e.Store.Save(ctx, s, ver)
	if err != nil {
		return nil, fmt.Errorf("take over %s %s of %s: %w", rot.OpKind(), rot.ID, sec.Name, err)
	}
	r := &run{e: e, sec: sec, s: s, ver: nv, op: rot.ID, resumed: true}
	detail := fmt.Sprintf("%s %s from step %s", rot.OpKind(), rot.ID, stepName(rot.Step))
	if err := r.rec(ctx, string(rot.OpKind())+".resume", StatusStarted, store.KeyID(s.Current), detail); err != nil {
		return nil, err
	}
	e.log().Info("operation resumed", "secret", sec.Name, "kind", rot.OpKind(), "operation", r.op, "step", stepName(rot.Step))
	return r, nil
}

// complete finishes an interrupted operation that is short and already
// decided (a revoke, a stage, a dismissal, an abort whose changes were
// saved), so that the caller can go on with its own.
func (r *run) complete(ctx context.Context) error {
	rot := r.s.Rotation
	switch {
	case rot.OpKind() == store.OpRevoke:
		_, err := r.revoke(ctx, rot.KeyID)
		return err
	case rot.OpKind() == store.OpRotate && rot.Step == store.StepAborted:
		return r.close(ctx, EndAborted, "rotate.abort", StatusSucceeded, store.KeyID(r.s.Current), "abort saved by an interrupted run; lease released")
	}
	return r.close(ctx, EndRecovered, string(rot.OpKind()), StatusSucceeded, rot.KeyID, "saved by an interrupted run; outcome recorded and lease released")
}

func newOperationID(now time.Time) string {
	return now.Format("20060102T150405Z") + "-" + randomID(4)
}

func newRequestID(op string) string { return op + "-mint-" + randomID(4) }

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
		return fmt.Errorf("save %s: %w: %w (the secret was changed by someone else, e.g. an abort)", r.s.Name, ErrLeaseLost, err)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", r.s.Name, err)
	}
	r.ver = nv
	return r.recUnsaved(ctx)
}

// stepLater records step as completed without saving it: a step after
// which nothing outside the store happens before the next save (see
// savedAlone) is saved with that save, and its audit record follows it.
// A run that dies before then repeats the step, which changed nothing
// outside the store.
func (r *run) stepLater(step store.Step, keyID, detail string) {
	r.s.Rotation.Step = step
	action := string(r.s.Rotation.OpKind()) + "." + string(step)
	r.unsaved = append(r.unsaved, Event{Action: action, Secret: r.s.Name, KeyID: keyID, Status: StatusSucceeded, Detail: detail, Op: r.op})
}

// recUnsaved records, in order, the steps stepLater left once they are
// saved.
func (r *run) recUnsaved(ctx context.Context) error {
	evs := r.unsaved
	r.unsaved = nil
	for _, ev := range evs {
		if err := r.e.record(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// savedAlone reports whether a rotation's step is saved before the next
// one starts, rather than with a later save (stepLater). Test and verify
// never are: they only ask, and the step after them changes only the
// store. Promote is, when a reload or verify hook follows, since those
// act on (or observe) consumers that read the promoted key from the
// store; reload is when it ran a hook, so that a resumed run does not
// signal the consumers again. For a secret without hooks, promote, reload
// and verify are saved with finish: one save where there were three.
func (r *run) savedAlone(step store.Step) bool {
	switch step {
	case store.StepTest, store.StepVerify:
		return false
	case store.StepPromote:
		return r.sec.Reload != nil || r.sec.Verify != nil
	case store.StepReload:
		return r.sec.Reload != nil
	}
	return true
}

// completed ends a rotation's step: saved and audited now, or with the
// next save (see savedAlone).
func (r *run) completed(ctx context.Context, step store.Step, keyID, detail string) error {
	if !r.savedAlone(step) {
		r.stepLater(step, keyID, detail)
		return nil
	}
	return r.stepDone(ctx, step, keyID, detail)
}

// release gives the lease up after a failure that left the operation
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
	return r.recUnsaved(ctx)
}

// rec records an event of the operation.
func (r *run) rec(ctx context.Context, action, status, keyID, detail string) error {
	return r.e.record(ctx, Event{Action: action, Secret: r.s.Name, KeyID: keyID, Status: status, Detail: detail, Op: r.op})
}

// recErr records a failure of the operation and returns err with any
// audit error joined.
func (r *run) recErr(ctx context.Context, action, keyID string, err error) error {
	ev := Event{Action: action, Secret: r.s.Name, KeyID: keyID, Status: StatusFailed, Detail: err.Error(), Op: r.op, Err: err}
	if aerr := r.e.record(ctx, ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// close records the operation's terminal event, then ends the operation:
// the lease is dropped with whatever else the caller changed in r.s (and
// a step stepLater left is saved with it, its record first). The
// record comes first so that a run dying in between leaves an operation
// the next run closes again, never one without a terminal record.
func (r *run) close(ctx context.Context, end Outcome, action, status, keyID, detail string) error {
	return r.closeEvent(ctx, Event{Action: action, Secret: r.s.Name, KeyID: keyID, Status: status, Detail: detail, Op: r.op, End: end})
}

// closeEvent is close with the terminal event made by the caller.
func (r *run) closeEvent(ctx context.Context, ev Event) error {
	if err := r.recUnsaved(ctx); err != nil {
		return err
	}
	err := r.e.record(ctx, ev)
	if err != nil {
		return err
	}
	r.s.Rotation = nil
	return r.save(context.WithoutCancel(ctx))
}

// closeErr is close for a failure: it records cause and returns it, with
// any error of the close joined.
func (r *run) closeErr(ctx context.Context, action, keyID string, cause error) error {
	ev := Event{Action: action, Secret: r.s.Name, KeyID: keyID, Status: StatusFailed, Detail: cause.Error(), Op: r.op, End: EndFailed, Err: cause}
	if err := r.closeEvent(ctx, ev); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// steps returns the steps of r's operation after the last recorded one.
func (r *run) steps() ([]store.Step, error) {
	steps := store.Steps
	if r.s.Rotation.OpKind() == store.OpRollback {
		steps = rollbackSteps
	}
	if last := r.s.Rotation.Step; last != "" {
		i := slices.Index(steps, last)
		if i < 0 {
			return nil, fmt.Errorf("%s: unknown recorded step %q of %s %s", r.s.Name, last, r.s.Rotation.OpKind(), r.op)
		}
		steps = steps[i+1:]
	}
	return steps, nil
}

// advance runs the steps of a rotation or rollback after the last
// recorded one. A rotation whose reload or verify fails becomes a rollback
// and advance goes on with its steps.
func (r *run) advance(ctx context.Context) error {
	for r.s.Rotation != nil {
		steps, err := r.steps()
		if err != nil {
			return err
		}
		if len(steps) == 0 {
			return nil
		}
		step := steps[0]
		kind := r.s.Rotation.OpKind()
		if err := ctx.Err(); err != nil {
			return errors.Join(fmt.Errorf("%s: %s interrupted before %s: %w", r.s.Name, kind, step, err), r.release(context.WithoutCancel(ctx)))
		}
		if r.e.Stopping != nil && r.e.Stopping() {
			return errors.Join(fmt.Errorf("%s: %s parked before %s: %w", r.s.Name, kind, step, ErrParked), r.release(ctx))
		}
		var stepErr error
		if kind == store.OpRollback {
			stepErr = r.rollbackStep(ctx, step)
			step = RollbackStep(step)
		} else {
			stepErr = r.do(ctx, step)
		}
		if errors.Is(stepErr, errBecameRollback) {
			continue
		}
		if stepErr != nil {
			return stepErr
		}
		r.e.point(r.s, step)
	}
	if r.cause != nil {
		// An automatic rollback completed.
		return errors.Join(ErrRolledBack, r.cause)
	}
	return nil
}

// errBecameRollback tells advance that a rotation turned into a rollback
// and the rollback's steps follow.
var errBecameRollback = errors.New("rotation became a rollback")

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
	action := string(r.s.Rotation.OpKind()) + "." + string(step)
	return r.rec(ctx, action, StatusSucceeded, keyID, detail)
}

// create fills pending: a pending key left by a crashed run is kept, then
// the staged next key is taken, else the provider mints one (see mint). A
// provider that is a [provider.Preparer] prepares the value, which is
// saved as pending before Apply changes the issuer; a run that finds such
// a pending key with create not yet recorded applies it again.
func (r *run) create(ctx context.Context) error {
	s := r.s
	prep, _ := r.sec.Provider.(provider.Preparer)
	resumed := s.Pending != nil
	if s.Pending == nil {
		switch {
		case s.Next != nil:
			k := s.Next.Clone()
			k.Source = store.SourceStaged
			s.Next = nil
			s.Pending = k
		case prep != nil:
			cred, err := prep.Prepare(ctx, r.mintRequest(nil))
			if err != nil {
				return r.closeErr(ctx, "rotate.create", "", fmt.Errorf("%s: create: %w", s.Name, err))
			}
			if err := store.ValidateValue(cred.Value); err != nil {
				return r.closeErr(ctx, "rotate.create", "", fmt.Errorf("%s: create: the provider prepared an unusable key: %w", s.Name, err))
			}
			s.Pending = r.newKey(cred)
		default:
			k, err := r.mint(ctx)
			if err != nil {
				return err
			}
			s.Pending = k
			r.e.point(s, StepMinted)
		}
	}
	if err := r.checkCandidate(ctx, s.Pending); err != nil {
		return err
	}
	if prep != nil && s.Pending.Source == store.SourceMinted {
		if err := r.apply(ctx, prep, resumed); err != nil {
			return err
		}
	}
	s.Rotation.Intent = nil
	k := *s.Pending
	err := r.stepDone(ctx, store.StepCreate, k.ID, "pending key "+k.Source)
	if errors.Is(err, ErrLeaseLost) && !resumed && k.Source == store.SourceMinted && prep == nil {
		// An abort or a takeover got in between: the key this run minted
		// must not be lost with the lease.
		return errors.Join(err, r.salvage(context.WithoutCancel(ctx), k))
	}
	return err
}

// salvage retires a key this run minted but could not save as pending,
// because the operation was aborted or taken over meanwhile, so that it is
// revoked like any other key set aside.
func (r *run) salvage(ctx context.Context, k store.Key) error {
	for attempt := 0; attempt < 5; attempt++ {
		s, ver, err := r.e.load(ctx, r.s.Name)
		if err != nil {
			return fmt.Errorf("retire minted key %s: %w", k.ID, err)
		}
		if slices.Contains(s.Values(), k.Value) {
			return nil
		}
		k.ExpiresAt = r.e.now()
		s.Retired = append(s.Retired, k)
		if _, err := r.e.Store.Save(ctx, s, ver); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return fmt.Errorf("retire minted key %s: %w", k.ID, err)
		}
		return r.rec(ctx, "rotate.create", StatusFailed, k.ID, "the rotation was aborted or taken over before the minted key was saved; key retired for revocation")
	}
	return r.recErr(ctx, "rotate.create", k.ID, fmt.Errorf("%s: minted key %s could not be retired (the secret kept changing): %w", r.s.Name, k.ID, store.ErrConflict))
}

func (r *run) newKey(cred provider.Credential) *store.Key {
	return &store.Key{Value: cred.Value, ID: r.e.keyID(cred.Value), CreatedAt: r.e.now(), Source: store.SourceMinted, Meta: cred.Meta}
}

// mintRequest describes the rotation to the provider, for the intent in
// (nil when preparing).
func (r *run) mintRequest(in *store.Intent) provider.MintRequest {
	req := provider.MintRequest{Secret: r.s.Name, Current: r.s.Current.Clone(), Grace: r.sec.Grace, Initiator: r.e.Initiator}
	if rot := r.s.Rotation; rot != nil && rot.Initiator != "" {
		req.Initiator = rot.Initiator // who started it, when another run resumes it
	}
	if p := r.s.Previous; p != nil && !p.Expired(r.e.now()) && !p.Revoking() {
		req.Previous = p.Clone()
	}
	if in != nil {
		req.RequestID, req.RequestedAt = in.ID, in.At
	}
	return req
}

// mint has the provider mint the pending key, with the intent saved
// first (by the rotation's start, see mintIntent, or here). A run that
// finds the intent of an earlier one reconciles it (see reconcile) before
// minting again.
func (r *run) mint(ctx context.Context) (*store.Key, error) {
	rot := r.s.Rotation
	switch in := rot.Intent; {
	case r.ownIntent:
		r.ownIntent = false
		r.e.point(r.s, StepIntent)
	case in != nil && in.Action == store.IntentMint:
		cred, err := r.reconcile(ctx)
		if err != nil {
			err = fmt.Errorf("%s: create: reconcile mint %s: %w", r.s.Name, in.ID, err)
			return nil, errors.Join(r.recErr(ctx, "rotate.create", "", err), r.release(context.WithoutCancel(ctx)))
		}
		if cred != nil {
			if err := r.usable(ctx, *cred); err != nil {
				return nil, err
			}
			k := r.newKey(*cred)
			return k, r.rec(ctx, "rotate.create", StatusSucceeded, k.ID, fmt.Sprintf("recovered the key minted for request %s", in.ID))
		}
	default:
		rot.Intent = &store.Intent{ID: newRequestID(r.op), Action: store.IntentMint, At: r.e.now()}
		if err := r.save(ctx); err != nil {
			return nil, err
		}
		r.e.point(r.s, StepIntent)
	}
	cred, err := r.sec.Provider.Mint(ctx, r.mintRequest(rot.Intent))
	if err != nil {
		return nil, r.mintFailed(ctx, fmt.Errorf("%s: create: %w", r.s.Name, err))
	}
	if err := r.usable(ctx, cred); err != nil {
		return nil, err
	}
	return r.newKey(cred), nil
}

// usable checks a key the issuer minted against [store.ValidateValue].
// One that fails it exists at the issuer but cannot be stored or handed
// to consumers: it is recorded as possibly orphaned and the rotation ends.
func (r *run) usable(ctx context.Context, cred provider.Credential) error {
	verr := store.ValidateValue(cred.Value)
	if verr == nil {
		return nil
	}
	err := fmt.Errorf("%s: create: the provider minted an unusable key: %w", r.s.Name, verr)
	if oerr := r.orphan(ctx, r.s.Rotation.Intent); oerr != nil {
		err = errors.Join(err, oerr)
	}
	return r.closeErr(ctx, "rotate.create", "", err)
}

// reconcile learns what became of the mint intent of an interrupted run:
// the credential it minted, or nil when none exists and Mint is to be
// called for the intent (which may have been replaced by a new one). An
// error means the issuer could not tell; the intent is kept.
func (r *run) reconcile(ctx context.Context) (*provider.Credential, error) {
	in := r.s.Rotation.Intent
	switch p := r.sec.Provider.(type) {
	case provider.Recoverer:
		cred, err := p.Recover(ctx, r.mintRequest(in))
		switch {
		case errors.Is(err, provider.ErrNotMinted):
			return nil, nil
		case err != nil:
			return nil, err
		}
		return &cred, nil
	case provider.IdempotentMinter:
		if p.IdempotentMint() {
			return nil, nil // Mint with the same request id answers it
		}
	}
	// The provider can neither look the key up nor mint idempotently:
	// report what may exist at the issuer and mint afresh.
	if err := r.orphan(ctx, in); err != nil {
		return nil, err
	}
	r.s.Rotation.Intent = &store.Intent{ID: newRequestID(r.op), Action: store.IntentMint, At: r.e.now()}
	if err := r.save(ctx); err != nil {
		return nil, err
	}
	r.e.point(r.s, StepIntent)
	return nil, nil
}

// orphan records in the secret and in the audit log that the call of
// intent in may have created a key rotor never saw.
func (r *run) orphan(ctx context.Context, in *store.Intent) error {
	o := store.Orphan{
		RequestID: in.ID, Operation: r.op, Action: in.Action, At: in.At,
		Check: fmt.Sprintf("a %s for %s was interrupted at %s and its provider cannot say whether it created a key: look at the issuer for a key created from %s on that no slot of %s holds, revoke it there, then run `rotor revoke %s --orphan-checked %s`",
			in.Action, r.s.Name, in.At.Format(time.RFC3339), in.At.Format(time.RFC3339), r.s.Name, r.s.Name, in.ID),
	}
	r.s.Orphans = append(r.s.Orphans, o)
	return r.rec(ctx, "rotate.create", StatusFailed, "", "possibly orphaned key at the issuer: "+o.Check)
}

// mintFailed ends or parks a rotation whose Mint failed. A provider that
// definitely minted nothing leaves nothing to remember; one that can be
// reconciled keeps the intent for the next run; any other may have created
// a key, which is reported as possibly orphaned.
func (r *run) mintFailed(ctx context.Context, err error) error {
	in := r.s.Rotation.Intent
	if errors.Is(err, provider.ErrCannotMint) || errors.Is(err, provider.ErrNotMinted) {
		return r.closeErr(ctx, "rotate.create", "", err)
	}
	if reconcilable(r.sec.Provider) {
		return errors.Join(r.recErr(ctx, "rotate.create", "", fmt.Errorf("%w (the next run asks the issuer what request %s created)", err, in.ID)),
			r.release(context.WithoutCancel(ctx)))
	}
	if oerr := r.orphan(ctx, in); oerr != nil {
		err = errors.Join(err, oerr)
	}
	return r.closeErr(ctx, "rotate.create", "", err)
}

// reconcilable reports whether p can tell what an interrupted mint created.
func reconcilable(p provider.Provider) bool {
	if _, ok := p.(provider.Recoverer); ok {
		return true
	}
	im, ok := p.(provider.IdempotentMinter)
	return ok && im.IdempotentMint()
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
			return r.closeErr(ctx, "rotate.create", k.ID, err)
		}
		return errors.Join(r.recErr(ctx, "rotate.create", k.ID, err), r.release(context.WithoutCancel(ctx)))
	}
	r.e.point(s, StepApplied)
	return nil
}

// checkCandidate refuses a pending key that equals a live key, was
// revoked, or that the provider will not promote over current.
func (r *run) checkCandidate(ctx context.Context, k *store.Key) error {
	s := r.s
	for _, live := range []*store.Key{s.Current, s.Previous} {
		if live != nil && live.Value == k.Value {
			return r.reject(ctx, store.StepCreate, fmt.Errorf("%s: create: pending key %s: %w", s.Name, k.ID, ErrSameKey), false)
		}
	}
	if s.IsRevoked(k.ID) {
		return r.reject(ctx, store.StepCreate, fmt.Errorf("%s: create: pending key %s: %w", s.Name, k.ID, ErrKeyRevoked), false)
	}
	if pc, ok := r.sec.Provider.(provider.PromoteChecker); ok {
		if err := pc.CheckPromote(s.Current.Clone(), k.Value); err != nil {
			return r.reject(ctx, store.StepCreate, fmt.Errorf("%s: create: key %s: %w: %w", s.Name, k.ID, ErrPromoteRefused, err), true)
		}
	}
	return nil
}

func (r *run) test(ctx context.Context) error {
	k := r.s.Pending
	if k == nil {
		return fmt.Errorf("%s: test: no pending key recorded after create", r.s.Name)
	}
	if err := r.sec.Provider.Test(ctx, k.Value); err != nil {
		err = fmt.Errorf("%s: test key %s: %w", r.s.Name, k.ID, err)
		if errors.Is(err, provider.ErrRejected) {
			return r.reject(ctx, store.StepTest, fmt.Errorf("%w: %w", ErrTestFailed, err), false)
		}
		// Unknown answer (network, 5xx): keep the rotation for a retry.
		return errors.Join(r.recErr(ctx, "rotate.test", k.ID, err), r.release(context.WithoutCancel(ctx)))
	}
	return r.completed(ctx, store.StepTest, k.ID, "issuer accepts the pending key")
}

// reject drops a pending key that must never be promoted and ends the
// rotation. A key its issuer rejected, or that equals a live key, is not
// kept: there is nothing to revoke. A minted key refused for another
// reason may work at its issuer, so it is retired (when retire is set).
func (r *run) reject(ctx context.Context, step store.Step, cause error, retire bool) error {
	k := r.s.Pending
	if retire && k.Source == store.SourceMinted {
		k.ExpiresAt = r.e.now()
		r.s.Retired = append(r.s.Retired, *k)
	}
	r.s.Pending = nil
	return r.closeErr(ctx, "rotate."+string(step), k.ID, cause)
}

func (r *run) promote(ctx context.Context) error {
	s := r.s
	if s.Pending == nil {
		return fmt.Errorf("%s: promote: no pending key", s.Name)
	}
	if s.IsRevoked(s.Pending.ID) {
		return r.reject(ctx, store.StepPromote, fmt.Errorf("%s: promote: pending key %s: %w", s.Name, s.Pending.ID, ErrKeyRevoked), false)
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
		markIssuerExpiry(prev, s.Pending)
		s.Previous = prev
	}
	s.Current = s.Pending
	s.Current.ExpiresAt = time.Time{}
	s.Pending = nil
	detail := "current is the new key"
	if s.Previous != nil {
		detail = fmt.Sprintf("previous %s valid until %s", s.Previous.ID, s.Previous.ExpiresAt.Format(time.RFC3339))
	}
	return r.completed(ctx, store.StepPromote, s.Current.ID, detail)
}

// markIssuerExpiry records on replaced when its issuer deletes it, if the
// provider of successor said so ([provider.MetaReplacedKeyTTL], counted
// from when successor was minted, right after the issuer acted).
func markIssuerExpiry(replaced, successor *store.Key) {
	secs, err := strconv.Atoi(successor.Meta[provider.MetaReplacedKeyTTL])
	if err != nil || secs < 0 {
		return
	}
	at := successor.CreatedAt.Add(time.Duration(secs) * time.Second)
	if cur := replaced.IssuerExpiresAt(); !cur.IsZero() && cur.Before(at) {
		return // an earlier deadline stands
	}
	replaced.Meta = maps.Clone(replaced.Meta)
	if replaced.Meta == nil {
		replaced.Meta = map[string]string{}
	}
	replaced.Meta[store.MetaIssuerExpiresAt] = at.UTC().Format(time.RFC3339)
}

// check runs reload or verify; a failure turns the rotation into a
// rollback (see rollback.go), unless there is nothing to roll back to.
func (r *run) check(ctx context.Context, step store.Step, fn func(context.Context) error) error {
	if err := fn(ctx); err != nil {
		cause := fmt.Errorf("%s: %s key %s: %w", r.s.Name, step, r.s.Current.ID, err)
		failErr := r.recErr(ctx, "rotate."+string(step), r.s.Current.ID, cause)
		return r.becomeRollback(ctx, "automatic after failed "+string(step), failErr)
	}
	if step == store.StepReload {
		r.s.ReloadedKeyID = r.s.Current.ID
	}
	return r.completed(ctx, step, r.s.Current.ID, "")
}

func (r *run) finish(ctx context.Context) error {
	r.s.LastRotatedAt = r.e.now()
	return r.close(ctx, EndSucceeded, "rotate.finish", StatusSucceeded, r.s.Current.ID, "rotation "+r.op+" complete")
}
