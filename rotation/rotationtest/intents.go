package rotationtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// The scenarios of this file cover what happens outside the store: keys
// minted and revoked at the issuer, and reloads at the consumers, when a
// run dies between its call and the save after it.

// forgetfulProvider is a Provider whose Mint is not idempotent and that
// cannot look a minted key up: an interrupted mint can only be reported.
type forgetfulProvider struct{ *Provider }

func (p forgetfulProvider) IdempotentMint() bool { return false }

func (p forgetfulProvider) Mint(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	req.RequestID = "" // every call mints anew
	return p.Provider.Mint(ctx, req)
}

// recoveringProvider is a Provider whose issuer can be asked what a
// request minted ([provider.Recoverer]); its Mint is not idempotent.
type recoveringProvider struct {
	*Provider
	mu        sync.Mutex
	recovered int
}

func (p *recoveringProvider) IdempotentMint() bool { return false }

func (p *recoveringProvider) Recover(_ context.Context, req provider.MintRequest) (provider.Credential, error) {
	p.mu.Lock()
	p.recovered++
	p.mu.Unlock()
	if v, ok := p.MintedFor(req.RequestID); ok {
		return provider.Credential{Value: v}, nil
	}
	return provider.Credential{}, fmt.Errorf("no key for request %s: %w", req.RequestID, provider.ErrNotMinted)
}

// mintPoints are where a run can die around a mint.
var mintPoints = []store.Step{rotation.StepIntent, rotation.StepMinted}

// crashAroundMintResumes: a run dies after saving its mint intent, or
// after the provider answered; the next run ends with the very key the
// provider minted for that intent, and nothing else was minted.
func crashAroundMintResumes(e *env) {
	for _, point := range mintPoints {
		e.t.Run(string(point), func(t *testing.T) {
			e := e.sub(t, string(point))
			e.rotate()
			minted := len(e.prov.Minted())
			e.rotateUntilCrash(point)
			mid := e.load()
			if mid.Rotation == nil || mid.Rotation.Intent == nil || mid.Pending != nil {
				t.Fatalf("after a crash at %s: rotation %+v pending %v, want a saved mint intent and no pending key", point, mid.Rotation, mid.Pending)
			}
			if res := e.rotate(); !res.Resumed {
				t.Fatal("the next run did not resume the rotation")
			}
			s := e.load()
			want, ok := e.prov.MintedFor(mid.Rotation.Intent.ID)
			if !ok || s.Current.Value != want {
				t.Fatalf("current %s is not the key minted for request %s", s.Current.ID, mid.Rotation.Intent.ID)
			}
			if n := len(e.prov.Minted()) - minted; n != 1 {
				t.Fatalf("the issuer minted %d keys for one rotation, want 1", n)
			}
			if len(s.Orphans) != 0 {
				t.Fatalf("orphans %v reported although the provider mints idempotently", s.Orphans)
			}
			e.noOpenOperations()
		})
	}
}

// crashAroundMintAborts: an abort of a rotation that died around its mint
// retires whatever the mint created, so that revoke reaches it.
func crashAroundMintAborts(e *env) {
	ctx := context.Background()
	for _, point := range mintPoints {
		e.t.Run(string(point), func(t *testing.T) {
			e := e.sub(t, string(point))
			e.rotate()
			c0 := e.load().Current
			e.rotateUntilCrash(point)
			in := e.load().Rotation.Intent
			if _, err := e.engine().Abort(ctx, e.secret()); err != nil {
				t.Fatalf("abort: %v", err)
			}
			s := e.load()
			if s.Rotation != nil || s.Current.Value != c0.Value || len(s.Orphans) != 0 {
				t.Fatalf("after abort: rotation %+v current %s orphans %v", s.Rotation, s.Current.ID, s.Orphans)
			}
			v, _ := e.prov.MintedFor(in.ID)
			if !slices.ContainsFunc(s.Retired, func(k store.Key) bool { return k.Value == v }) {
				t.Fatalf("the key minted for request %s is not retired: %v", in.ID, s.Retired)
			}
			if _, err := e.engine().Revoke(ctx, e.secret(), rotation.RevokeOptions{ExpiredOnly: true}); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if !e.prov.Revoked(v) {
				t.Fatal("the key minted by the aborted rotation was never revoked")
			}
			e.noOpenOperations()
		})
	}
}

// unreconcilableMintIsReported: with a provider that can neither look a
// key up nor mint idempotently, a run that died after the provider answered
// leaves a key only the issuer knows. The next run says so in the secret
// and in the audit log, then rotates with a new key; the operator dismisses
// the report once the issuer was checked.
func unreconcilableMintIsReported(e *env) {
	ctx := context.Background()
	e.provider = forgetfulProvider{e.prov}
	e.rotate()
	e.rotateUntilCrash(rotation.StepMinted)
	in := e.load().Rotation.Intent
	e.rotate()
	s := e.load()
	if len(s.Orphans) != 1 || s.Orphans[0].RequestID != in.ID || s.Orphans[0].Check == "" {
		e.t.Fatalf("orphans = %+v, want one for request %s saying what to check", s.Orphans, in.ID)
	}
	reported := false
	for _, ev := range e.audit.Events() {
		reported = reported || ev.Secret == e.name && ev.Action == "rotate.create" && ev.Status == rotation.StatusFailed &&
			strings.Contains(ev.Detail, "possibly orphaned") && strings.Contains(ev.Detail, in.ID)
	}
	if !reported {
		e.t.Fatal("the possibly orphaned key is not in the audit log")
	}
	if s.Rotation != nil || s.Current == nil {
		e.t.Fatal("the rotation did not complete after reporting the orphan")
	}
	if err := e.engine().DismissOrphan(ctx, e.secret(), in.ID); err != nil {
		e.t.Fatalf("dismiss: %v", err)
	}
	if err := e.engine().DismissOrphan(ctx, e.secret(), in.ID); !errors.Is(err, rotation.ErrNoOrphan) {
		e.t.Fatalf("second dismiss = %v, want ErrNoOrphan", err)
	}
	if s := e.load(); len(s.Orphans) != 0 {
		e.t.Fatalf("orphans after dismissal: %v", s.Orphans)
	}
	if !e.audit.Has("orphan.dismiss", rotation.StatusSucceeded) {
		e.t.Fatal("the dismissal is not audited")
	}
	e.noOpenOperations()
}

// recoverableMintIsRecovered: a provider that can ask its issuer gets the
// interrupted mint's key back instead of minting another.
func recoverableMintIsRecovered(e *env) {
	p := &recoveringProvider{Provider: e.prov}
	e.provider = p
	e.rotate()
	minted := len(e.prov.Minted())
	e.rotateUntilCrash(rotation.StepMinted)
	in := e.load().Rotation.Intent
	e.rotate()
	want, _ := e.prov.MintedFor(in.ID)
	if s := e.load(); s.Current.Value != want || len(s.Orphans) != 0 {
		e.t.Fatalf("current %s orphans %v, want the recovered key and no orphan", s.Current.ID, s.Orphans)
	}
	if n := len(e.prov.Minted()) - minted; n != 1 || p.recovered != 1 {
		e.t.Fatalf("minted %d, recovered %d; want 1 and 1", n, p.recovered)
	}
	e.noOpenOperations()
}

// interruptedRevokeNeverComesBack: a forced revoke dies after the issuer
// revoked previous, or right after previous was marked; rollback must not
// make it current, and it cannot be staged again.
func interruptedRevokeNeverComesBack(e *env) {
	ctx := context.Background()
	for _, point := range []store.Step{rotation.StepRevoking, rotation.StepRevoked} {
		e.t.Run(string(point), func(t *testing.T) {
			e := e.sub(t, string(point))
			e.rotate()
			e.rotate()
			before := e.load()
			prev := before.Previous
			e.crashAt(point, func(eng *rotation.Engine) error {
				_, err := eng.Revoke(ctx, e.secret(), rotation.RevokeOptions{Force: true})
				return err
			})
			if mid := e.load(); !mid.Previous.Revoking() {
				t.Fatalf("previous %s is not marked revoking after a crash at %s", prev.ID, point)
			}
			_, err := e.engine().Rollback(ctx, e.secret())
			if !errors.Is(err, rotation.ErrNothingToRollBack) {
				t.Fatalf("rollback = %v, want ErrNothingToRollBack", err)
			}
			s := e.load()
			if s.Current.Value != before.Current.Value {
				t.Fatal("rollback made the key being revoked current")
			}
			if !e.prov.Revoked(prev.Value) || s.Previous != nil || !s.IsRevoked(prev.ID) {
				t.Fatalf("the interrupted revoke was not finished: previous %v revoked ids %v", s.Previous, s.Revoked)
			}
			if _, err := e.engine().Stage(ctx, e.secret(), prev.Value, nil); !errors.Is(err, rotation.ErrKeyRevoked) {
				t.Fatalf("staging the revoked key = %v, want ErrKeyRevoked", err)
			}
			e.noOpenOperations()
		})
	}
}

// rollbackRetestsPrevious: previous is tested with its issuer before it is
// promoted back; a rejected one is refused and nothing changes.
func rollbackRetestsPrevious(e *env) {
	ctx := context.Background()
	e.rotate()
	e.rotate()
	before := e.load()
	e.prov.Reject(before.Previous.Value)
	_, err := e.engine().Rollback(ctx, e.secret())
	if !errors.Is(err, rotation.ErrNothingToRollBack) || !errors.Is(err, provider.ErrRejected) {
		e.t.Fatalf("rollback to a rejected previous = %v, want ErrNothingToRollBack and ErrRejected", err)
	}
	s := e.load()
	if s.Current.Value != before.Current.Value || s.Previous == nil || s.Rotation != nil {
		e.t.Fatalf("refused rollback changed the secret: current %s previous %v rotation %v", s.Current.ID, s.Previous, s.Rotation)
	}
	if !e.audit.Has("rollback.test", rotation.StatusFailed) {
		e.t.Fatal("the rejected test of previous is not audited")
	}
	e.noOpenOperations()
}

// reloadRecorder is a Reloader that records the key id of every reload
// that completed, and fails while fail is set.
type reloadRecorder struct {
	mu   sync.Mutex
	ids  []string
	fail bool
}

func (r *reloadRecorder) Reload(_ context.Context, s *store.Secret) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("reload hook failed")
	}
	r.ids = append(r.ids, s.Current.ID)
	return nil
}

func (r *reloadRecorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) == 0 {
		return ""
	}
	return r.ids[len(r.ids)-1]
}

// interruptedRollbackIsResumed: a rollback killed once its swap is saved
// has not reloaded consumers. It stays in progress, revoke refuses to run,
// and the next rotate finishes it: reload, verify, finish. Only then is the
// key set aside revocable.
func interruptedRollbackIsResumed(e *env) {
	ctx := context.Background()
	rl := &reloadRecorder{}
	sec := e.secret()
	sec.Reload = rl
	for range 2 {
		if _, err := e.engine().Rotate(ctx, sec); err != nil {
			e.t.Fatal(err)
		}
	}
	before := e.load()
	e.crashAt(rotation.RollbackStep(store.StepPromote), func(eng *rotation.Engine) error {
		_, err := eng.Rollback(ctx, sec)
		return err
	})
	mid := e.load()
	if mid.Rotation == nil || mid.Rotation.OpKind() != store.OpRollback || mid.Current.Value != before.Previous.Value {
		e.t.Fatalf("after the crash: rotation %+v current %s, want a rollback in progress with previous current", mid.Rotation, mid.Current.ID)
	}
	if rl.last() != before.Current.ID {
		e.t.Fatal("test setup: consumers were not last reloaded with the rolled-back key")
	}
	e.clock.Advance(time.Minute)
	if _, err := e.engine().Revoke(ctx, sec, rotation.RevokeOptions{ExpiredOnly: true}); !errors.Is(err, rotation.ErrRotationInProgress) {
		e.t.Fatalf("revoke during an unfinished rollback = %v, want ErrRotationInProgress", err)
	}
	if e.prov.Revoked(before.Current.Value) {
		e.t.Fatal("the key consumers were last reloaded with was revoked before its successor's reload")
	}
	res, err := e.engine().Rotate(ctx, sec)
	if err != nil || res.Kind != store.OpRollback || !res.Resumed {
		e.t.Fatalf("rotate after the crash = %+v, %v; want the rollback resumed", res, err)
	}
	if rl.last() != before.Previous.ID {
		e.t.Fatal("the resumed rollback did not reload consumers with the restored key")
	}
	rr, err := e.engine().Revoke(ctx, sec, rotation.RevokeOptions{ExpiredOnly: true})
	if err != nil || !slices.Contains(rr.Revoked, before.Current.ID) {
		e.t.Fatalf("revoke after the rollback finished = %+v, %v; want the set-aside key revoked", rr, err)
	}
	e.noOpenOperations()
}

// revokeWaitsForReload: when a rollback's reload fails, consumers may still
// use the key it set aside; revoke refuses that key, even forced, until a
// later reload completes.
func revokeWaitsForReload(e *env) {
	ctx := context.Background()
	rl := &reloadRecorder{}
	sec := e.secret()
	sec.Reload = rl
	for range 2 {
		if _, err := e.engine().Rotate(ctx, sec); err != nil {
			e.t.Fatal(err)
		}
	}
	failed := e.load().Current
	rl.fail = true
	if _, err := e.engine().Rollback(ctx, sec); err == nil {
		e.t.Fatal("rollback with a failing reload succeeded")
	}
	if s := e.load(); s.Rotation != nil || s.ReloadedKeyID != failed.ID {
		e.t.Fatalf("after the failed reload: rotation %+v reloaded %s, want no rotation and %s", s.Rotation, s.ReloadedKeyID, failed.ID)
	}
	_, err := e.engine().Revoke(ctx, sec, rotation.RevokeOptions{Force: true})
	if !errors.Is(err, rotation.ErrReloadPending) || e.prov.Revoked(failed.Value) {
		e.t.Fatalf("forced revoke of the last reloaded key = %v, want ErrReloadPending and no revocation", err)
	}
	rl.fail = false
	if _, err := e.engine().Rotate(ctx, sec); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.engine().Revoke(ctx, sec, rotation.RevokeOptions{Force: true}); err != nil || !e.prov.Revoked(failed.Value) {
		e.t.Fatalf("revoke after a later reload completed = %v", err)
	}
	e.noOpenOperations()
}

// firstRotationAbortAfterPromote: there is nothing to roll back to, so the
// abort is refused (ErrNothingToRollBack) and the rotation is left for the
// next run, which runs its reload instead of skipping it.
func firstRotationAbortAfterPromote(e *env) {
	ctx := context.Background()
	rl := &reloadRecorder{}
	e.crashAt(store.StepPromote, func(eng *rotation.Engine) error {
		sec := e.secret()
		sec.Reload = rl
		_, err := eng.Rotate(ctx, sec)
		return err
	})
	_, err := e.engine().Abort(ctx, e.secret())
	if !errors.Is(err, rotation.ErrNothingToRollBack) {
		e.t.Fatalf("abort of a first rotation after promote = %v, want ErrNothingToRollBack", err)
	}
	s := e.load()
	if s.Rotation == nil || s.Current == nil {
		e.t.Fatal("the refused abort changed the rotation")
	}
	sec := e.secret()
	sec.Reload = rl
	if _, err := e.engine().Rotate(ctx, sec); err != nil {
		e.t.Fatal(err)
	}
	if rl.last() != s.Current.ID {
		e.t.Fatal("the first key was never reloaded")
	}
	e.noOpenOperations()
}

// interruptedStageIsClosed: a stage saved by a run that died before
// recording it is closed by the next run, which records it.
func interruptedStageIsClosed(e *env) {
	ctx := context.Background()
	e.rotate()
	staged := fmt.Sprintf("staged-%d", time.Now().UnixNano())
	e.crashAt(rotation.StepStaged, func(eng *rotation.Engine) error {
		_, err := eng.Stage(ctx, e.secret(), staged, nil)
		return err
	})
	mid := e.load()
	if mid.Rotation == nil || mid.Rotation.OpKind() != store.OpStage || mid.Next == nil {
		e.t.Fatalf("after the crash: rotation %+v next %v, want the stage saved and its lease held", mid.Rotation, mid.Next)
	}
	e.rotate()
	if s := e.load(); s.Current.Value != staged || s.Rotation != nil {
		e.t.Fatalf("current %s rotation %+v, want the staged key promoted", s.Current.ID, s.Rotation)
	}
	closed := false
	for _, ev := range e.audit.Events() {
		closed = closed || ev.Op == mid.Rotation.ID && ev.Action == "stage" && ev.End == rotation.EndRecovered
	}
	if !closed {
		e.t.Fatal("the interrupted stage has no record closing it")
	}
	e.noOpenOperations()
}
