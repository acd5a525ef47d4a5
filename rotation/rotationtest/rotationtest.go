// Package rotationtest runs the rotation engine's scenarios against any
// store.Store: a full cycle, rollback, a crash at every step boundary, a
// verification failure, and twenty concurrent rotators. Every store
// implementation runs them in addition to the storetest conformance suite,
// because the engine's guarantees are only as good as the store's
// compare-and-swap.
//
//	func TestEngineScenarios(t *testing.T) {
//		rotationtest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
//	}
//
// A provider whose issuer can be asked whether a key works (a database, an
// API) runs [RunProvider] as well: the same engine operations, judged by
// what the issuer accepts, including a run killed between saving a prepared
// key and applying it (see [provider.Preparer]).
package rotationtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// Clock is a settable clock for tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to a fixed instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Provider is a provider.Provider that mints numbered values, rejects the
// values it is told to, and records revocations. Its Mint is idempotent on
// the request id ([provider.IdempotentMinter]).
type Provider struct {
	mu        sync.Mutex
	n         int
	reject    map[string]bool
	revoked   map[string]int
	minted    []string
	byRequest map[string]string
}

var (
	_ provider.Provider         = (*Provider)(nil)
	_ provider.IdempotentMinter = (*Provider)(nil)
)

// NewProvider returns a test provider.
func NewProvider() *Provider {
	return &Provider{reject: map[string]bool{}, revoked: map[string]int{}, byRequest: map[string]string{}}
}

// Mint returns a new unique value, or the value it returned before for
// the same request id.
func (p *Provider) Mint(_ context.Context, req provider.MintRequest) (provider.Credential, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.byRequest[req.RequestID]; ok && req.RequestID != "" {
		return provider.Credential{Value: v}, nil
	}
	p.n++
	v := fmt.Sprintf("test-secret-%d-%d", time.Now().UnixNano(), p.n)
	p.minted = append(p.minted, v)
	if req.RequestID != "" {
		p.byRequest[req.RequestID] = v
	}
	return provider.Credential{Value: v}, nil
}

// IdempotentMint reports true: Mint answers a request id it has seen with
// the same value.
func (p *Provider) IdempotentMint() bool { return true }

// Test rejects values passed to Reject.
func (p *Provider) Test(_ context.Context, v string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reject[v] {
		return fmt.Errorf("test provider: %w", provider.ErrRejected)
	}
	return nil
}

// Revoke records the revocation; it is idempotent.
func (p *Provider) Revoke(_ context.Context, k store.Key) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked[k.Value]++
	return nil
}

// Reject makes Test reject v.
func (p *Provider) Reject(v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reject[v] = true
}

// Revoked reports whether v was revoked.
func (p *Provider) Revoked(v string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.revoked[v] > 0
}

// MintedFor returns the value Mint answered for requestID.
func (p *Provider) MintedFor(requestID string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.byRequest[requestID]
	return v, ok
}

// Minted returns every value minted so far.
func (p *Provider) Minted() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.minted...)
}

// Recorder collects audit events in memory.
type Recorder struct {
	mu     sync.Mutex
	events []rotation.Event
}

// Record appends e.
func (r *Recorder) Record(_ context.Context, e rotation.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// Events returns the recorded events.
func (r *Recorder) Events() []rotation.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rotation.Event(nil), r.events...)
}

// Open returns the operations with no terminal record among the recorded
// events (see [rotation.OpenOperations]).
func (r *Recorder) Open() []rotation.OpenOperation {
	var recs []rotation.AuditRecord
	for i, ev := range r.Events() {
		recs = append(recs, rotation.AuditRecord{Seq: uint64(i + 1), Action: ev.Action, Secret: ev.Secret, Status: ev.Status, Detail: ev.AuditDetail()})
	}
	return rotation.OpenOperations(recs)
}

// Has reports whether an event with action and status was recorded.
func (r *Recorder) Has(action, status string) bool {
	for _, e := range r.Events() {
		if e.Action == action && e.Status == status {
			return true
		}
	}
	return false
}

// HookFunc adapts a function to rotation.Reloader and rotation.Verifier.
type HookFunc func(ctx context.Context, s *store.Secret) error

// Reload calls f.
func (f HookFunc) Reload(ctx context.Context, s *store.Secret) error { return f(ctx, s) }

// Verify calls f.
func (f HookFunc) Verify(ctx context.Context, s *store.Secret) error { return f(ctx, s) }

// env is one scenario's world.
type env struct {
	t     *testing.T
	store store.Store
	clock *Clock
	prov  *Provider
	// provider, when set, replaces prov as the secret's provider (the
	// scenarios of RunProvider).
	provider provider.Provider
	audit    *Recorder
	name     string
	dead     *sync.Map // holders that "crashed"
}

func newEnv(t *testing.T, st store.Store) *env {
	return &env{t: t, store: st, clock: NewClock(), prov: NewProvider(), audit: &Recorder{}, dead: &sync.Map{},
		name: strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())}
}

func (e *env) engine() *rotation.Engine {
	return &rotation.Engine{
		Store:     e.store,
		Audit:     e.audit,
		Salt:      []byte("rotationtest-salt"),
		Initiator: "user:test",
		Holder:    rotation.NewHolder(),
		Now:       e.clock.Now,
		HolderAlive: func(h string) bool {
			_, dead := e.dead.Load(h)
			return !dead
		},
	}
}

func (e *env) secret() rotation.Secret {
	var p provider.Provider = e.prov
	if e.provider != nil {
		p = e.provider
	}
	return rotation.Secret{Name: e.name, Provider: p, Every: 720 * time.Hour, Grace: 24 * time.Hour, Lease: 10 * time.Minute}
}

// sub returns e for a subtest t with its own secret name.
func (e *env) sub(t *testing.T, suffix string) *env {
	c := *e
	c.t, c.name = t, e.name+"-"+suffix
	return &c
}

func (e *env) load() *store.Secret {
	e.t.Helper()
	s, _, err := e.store.Load(context.Background(), e.name)
	if err != nil {
		e.t.Fatalf("load: %v", err)
	}
	return s
}

func (e *env) rotate() rotation.Result {
	e.t.Helper()
	res, err := e.engine().Rotate(context.Background(), e.secret())
	if err != nil {
		e.t.Fatalf("rotate: %v", err)
	}
	return res
}

// Run runs every engine scenario against stores made by newStore. Each
// scenario gets a fresh store (or at least a fresh secret name).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	scenarios := []struct {
		name string
		fn   func(*env)
	}{
		{"FirstRotationIssuesCurrent", firstRotation},
		{"FullCycle", fullCycle},
		{"StagedKeyIsPromoted", stagedKeyIsPromoted},
		{"RejectedKeyIsNeverPromoted", rejectedKeyNeverPromoted},
		{"VerifyFailureRollsBack", verifyFailureRollsBack},
		{"RollbackRefusals", rollbackRefusals},
		{"RevokeBeforeGraceRefused", revokeBeforeGraceRefused},
		{"RevokeRefusedWhileConsumerUsesKey", revokeRefusedWhileInUse},
		{"CrashAtEveryStepResumes", crashAtEveryStepResumes},
		{"CrashAtEveryStepAborts", crashAtEveryStepAborts},
		{"LiveLeaseBlocksOthers", liveLeaseBlocksOthers},
		{"TwentyConcurrentRotatorsOneWins", concurrentRotators},
		{"CrashAroundMintResumesToTheMintedKey", crashAroundMintResumes},
		{"CrashAroundMintThenAbortRetiresTheKey", crashAroundMintAborts},
		{"UnreconcilableMintIsReportedOrphaned", unreconcilableMintIsReported},
		{"RecoverableMintIsRecovered", recoverableMintIsRecovered},
		{"InterruptedRevokeNeverComesBack", interruptedRevokeNeverComesBack},
		{"RollbackRetestsPrevious", rollbackRetestsPrevious},
		{"InterruptedRollbackIsResumed", interruptedRollbackIsResumed},
		{"RevokeWaitsForReload", revokeWaitsForReload},
		{"FirstRotationAbortAfterPromoteRefused", firstRotationAbortAfterPromote},
		{"InterruptedStageIsClosed", interruptedStageIsClosed},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.fn(newEnv(t, newStore(t))) })
	}
}

func firstRotation(e *env) {
	res := e.rotate()
	s := e.load()
	if s.Current == nil || s.Current.ID != res.Current {
		e.t.Fatalf("current = %v, want key %s", s.Current, res.Current)
	}
	if s.Previous != nil || s.Pending != nil || s.Rotation != nil {
		e.t.Fatalf("after first rotation: previous=%v pending=%v rotation=%v, want all empty", s.Previous, s.Pending, s.Rotation)
	}
	if !s.LastRotatedAt.Equal(e.clock.Now()) {
		e.t.Fatalf("last_rotated_at = %v, want %v", s.LastRotatedAt, e.clock.Now())
	}
	for _, step := range store.Steps {
		if !e.audit.Has("rotate."+string(step), rotation.StatusSucceeded) {
			e.t.Errorf("no audit record for step %s", step)
		}
	}
}

func fullCycle(e *env) {
	ctx := context.Background()
	e.rotate()
	c0 := e.load().Current
	e.clock.Advance(time.Hour)
	e.rotate()
	s := e.load()
	if s.Previous == nil || s.Previous.Value != c0.Value {
		e.t.Fatalf("previous = %v, want the old current %s", s.Previous, c0.ID)
	}
	if want := e.clock.Now().Add(24 * time.Hour); !s.Previous.ExpiresAt.Equal(want) {
		e.t.Fatalf("previous expires %v, want now+grace %v", s.Previous.ExpiresAt, want)
	}
	c1 := s.Current

	// Rollback: c0 current again, c1 set aside for revocation.
	if _, err := e.engine().Rollback(ctx, e.secret()); err != nil {
		e.t.Fatalf("rollback: %v", err)
	}
	s = e.load()
	if s.Current.Value != c0.Value || s.Previous != nil {
		e.t.Fatalf("after rollback current=%s previous=%v, want %s and none", s.Current.ID, s.Previous, c0.ID)
	}
	if len(s.Retired) != 1 || s.Retired[0].Value != c1.Value {
		e.t.Fatalf("retired = %v, want the rolled-back key %s", s.Retired, c1.ID)
	}

	// Rotate again; then the grace period passes and revoke --expired
	// revokes previous (c0) and the retired key (c1).
	e.rotate()
	e.clock.Advance(25 * time.Hour)
	res, err := e.engine().Revoke(ctx, e.secret(), rotation.RevokeOptions{ExpiredOnly: true})
	if err != nil {
		e.t.Fatalf("revoke: %v", err)
	}
	if len(res.Revoked) != 2 {
		e.t.Fatalf("revoked %v, want previous and the retired key", res.Revoked)
	}
	s = e.load()
	if s.Previous != nil || len(s.Retired) != 0 || s.Current == nil {
		e.t.Fatalf("after revoke previous=%v retired=%v current=%v", s.Previous, s.Retired, s.Current)
	}
	if !e.prov.Revoked(c0.Value) || !e.prov.Revoked(c1.Value) {
		e.t.Fatal("provider did not revoke both keys")
	}
	if e.prov.Revoked(s.Current.Value) {
		e.t.Fatal("current key was revoked")
	}
	e.noOpenOperations()
}

func stagedKeyIsPromoted(e *env) {
	ctx := context.Background()
	e.rotate()
	staged := fmt.Sprintf("staged-%d", time.Now().UnixNano())
	if _, err := e.engine().Stage(ctx, e.secret(), staged, nil); err != nil {
		e.t.Fatalf("stage: %v", err)
	}
	if n := e.load().Next; n == nil || n.Value != staged {
		e.t.Fatalf("next = %v, want the staged key", n)
	}
	minted := len(e.prov.Minted())
	e.rotate()
	s := e.load()
	if s.Current.Value != staged || s.Next != nil {
		e.t.Fatalf("current = %s next = %v, want the staged key promoted", s.Current.ID, s.Next)
	}
	if len(e.prov.Minted()) != minted {
		e.t.Fatal("provider minted although a key was staged")
	}
	if _, err := e.engine().Stage(ctx, e.secret(), staged, nil); !errors.Is(err, rotation.ErrSameKey) {
		e.t.Fatalf("staging the current key again = %v, want ErrSameKey", err)
	}
	bad := "rejected-" + staged
	e.prov.Reject(bad)
	if _, err := e.engine().Stage(ctx, e.secret(), bad, nil); !errors.Is(err, provider.ErrRejected) {
		e.t.Fatalf("staging a rejected key = %v, want ErrRejected", err)
	}
	if e.load().Next != nil {
		e.t.Fatal("a rejected key was staged")
	}
}

func rejectedKeyNeverPromoted(e *env) {
	ctx := context.Background()
	e.rotate()
	before := e.load()
	// Stage a key the issuer accepts now but rejects by rotation time.
	staged := fmt.Sprintf("revoked-later-%d", time.Now().UnixNano())
	if _, err := e.engine().Stage(ctx, e.secret(), staged, nil); err != nil {
		e.t.Fatal(err)
	}
	e.prov.Reject(staged)
	_, err := e.engine().Rotate(ctx, e.secret())
	if !errors.Is(err, rotation.ErrTestFailed) {
		e.t.Fatalf("rotate = %v, want ErrTestFailed", err)
	}
	s := e.load()
	if s.Current.Value != before.Current.Value || s.Pending != nil || s.Rotation != nil {
		e.t.Fatalf("after rejected test: current=%s pending=%v rotation=%v, want untouched", s.Current.ID, s.Pending, s.Rotation)
	}
	if !e.audit.Has("rotate.test", rotation.StatusFailed) {
		e.t.Fatal("failed test was not audited")
	}
}

func verifyFailureRollsBack(e *env) {
	ctx := context.Background()
	e.rotate()
	c0 := e.load().Current
	sec := e.secret()
	sec.Verify = HookFunc(func(_ context.Context, s *store.Secret) error {
		if s.Current.Value != c0.Value {
			return errors.New("health check failed with the new key")
		}
		return nil
	})
	_, err := e.engine().Rotate(ctx, sec)
	if !errors.Is(err, rotation.ErrRolledBack) {
		e.t.Fatalf("rotate = %v, want ErrRolledBack", err)
	}
	s := e.load()
	if s.Current.Value != c0.Value || s.Rotation != nil || s.Previous != nil {
		e.t.Fatalf("after rollback current=%s previous=%v rotation=%v, want %s alone", s.Current.ID, s.Previous, s.Rotation, c0.ID)
	}
	if len(s.Retired) != 1 {
		e.t.Fatalf("retired = %v, want the failed key", s.Retired)
	}
	if !e.audit.Has("rotate.verify", rotation.StatusFailed) || !e.audit.Has("rollback", rotation.StatusSucceeded) {
		e.t.Fatal("verify failure and rollback were not both audited")
	}
}

func rollbackRefusals(e *env) {
	ctx := context.Background()
	e.rotate()
	if _, err := e.engine().Rollback(ctx, e.secret()); !errors.Is(err, rotation.ErrNothingToRollBack) {
		e.t.Fatalf("rollback with no previous = %v, want ErrNothingToRollBack", err)
	}
	e.rotate()
	e.clock.Advance(24 * time.Hour)
	if _, err := e.engine().Rollback(ctx, e.secret()); !errors.Is(err, rotation.ErrNothingToRollBack) {
		e.t.Fatalf("rollback to expired previous = %v, want ErrNothingToRollBack", err)
	}
	if e.load().Previous == nil {
		e.t.Fatal("refused rollback changed the secret")
	}
}

func revokeBeforeGraceRefused(e *env) {
	ctx := context.Background()
	e.rotate()
	e.rotate()
	prev := e.load().Previous
	_, err := e.engine().Revoke(ctx, e.secret(), rotation.RevokeOptions{})
	if !errors.Is(err, rotation.ErrNotExpired) {
		e.t.Fatalf("revoke before grace = %v, want ErrNotExpired", err)
	}
	if e.prov.Revoked(prev.Value) || e.load().Previous == nil {
		e.t.Fatal("previous was revoked before its grace period ended")
	}
	res, err := e.engine().Revoke(ctx, e.secret(), rotation.RevokeOptions{Force: true})
	if err != nil || len(res.Revoked) != 1 || !e.prov.Revoked(prev.Value) {
		e.t.Fatalf("forced revoke = %v, %v", res, err)
	}
	forced := false
	for _, ev := range e.audit.Events() {
		if ev.Action == "revoke" && ev.Status == rotation.StatusSucceeded && strings.Contains(ev.Detail, "forced") {
			forced = true
		}
	}
	if !forced {
		e.t.Fatal("forced revoke not audited as forced")
	}
}

// usageFunc adapts a function to rotation.UsageChecker.
type usageFunc func(ctx context.Context, keyID string) ([]string, error)

func (f usageFunc) InUse(ctx context.Context, keyID string) ([]string, error) { return f(ctx, keyID) }

func revokeRefusedWhileInUse(e *env) {
	ctx := context.Background()
	e.rotate()
	e.rotate()
	prev := e.load().Previous
	e.clock.Advance(25 * time.Hour)
	sec := e.secret()
	sec.Usage = usageFunc(func(_ context.Context, id string) ([]string, error) {
		if id == prev.ID {
			return []string{"http://app-1/healthz"}, nil
		}
		return nil, nil
	})
	_, err := e.engine().Revoke(ctx, sec, rotation.RevokeOptions{ExpiredOnly: true})
	if !errors.Is(err, rotation.ErrKeyInUse) || !strings.Contains(err.Error(), "app-1") {
		e.t.Fatalf("revoke of a key a consumer still uses = %v, want ErrKeyInUse naming the consumer", err)
	}
	if e.prov.Revoked(prev.Value) || e.load().Previous == nil {
		e.t.Fatal("key revoked while a consumer used it")
	}
	if _, err := e.engine().Revoke(ctx, sec, rotation.RevokeOptions{Force: true}); err != nil || !e.prov.Revoked(prev.Value) {
		e.t.Fatalf("forced revoke = %v", err)
	}
}

// crash is panicked by OnStep to stop a rotation right after a step was
// saved, exactly as a killed process would.
type crash struct{ step store.Step }

func (e *env) rotateUntilCrash(step store.Step) {
	e.t.Helper()
	e.crashAt(step, func(eng *rotation.Engine) error {
		_, err := eng.Rotate(context.Background(), e.secret())
		return err
	})
}

// crashAt runs op with an engine that "dies" (panics, and its holder is
// then known dead) when it reaches point.
func (e *env) crashAt(point store.Step, op func(*rotation.Engine) error) {
	e.t.Helper()
	eng := e.engine()
	eng.OnStep = func(_ string, s store.Step, _ *store.Secret) {
		if s == point {
			panic(crash{point})
		}
	}
	defer func() {
		r := recover()
		if _, ok := r.(crash); !ok {
			e.t.Fatalf("operation did not stop at %s (recovered %v)", point, r)
		}
		e.dead.Store(eng.Holder, true)
	}()
	err := op(eng)
	e.t.Fatalf("operation returned %v instead of crashing at %s", err, point)
}

// noOpenOperations fails the test if an operation on e's secret has no
// terminal audit record.
func (e *env) noOpenOperations() {
	e.t.Helper()
	for _, op := range e.audit.Open() {
		if op.Secret == e.name {
			e.t.Errorf("operation %s (%s, last record %s %s) has no terminal audit record", op.ID, op.First.Action, op.Last.Action, op.Last.Status)
		}
	}
}

func crashAtEveryStepResumes(e *env) {
	for _, step := range store.Steps {
		e.t.Run(string(step), func(t *testing.T) {
			e := e.sub(t, string(step))
			e.rotate()
			c0 := e.load().Current
			e.rotateUntilCrash(step)
			mid := e.load()
			if mid.Current == nil {
				t.Fatal("current empty after crash")
			}
			if e.prov.Revoked(c0.Value) {
				t.Fatal("previous revoked early")
			}
			res := e.rotate()
			s := e.load()
			if s.Rotation != nil || s.Pending != nil {
				t.Fatalf("rotation not finished: %+v", s.Rotation)
			}
			if step != store.StepFinish && !res.Resumed {
				t.Fatalf("rotation after crash at %s started afresh, want resumed", step)
			}
			if step == store.StepFinish {
				// The crashed run had completed; this was a new rotation.
				return
			}
			if s.Previous == nil || s.Previous.Value != c0.Value || s.Current.Value == c0.Value {
				t.Fatalf("after resume current=%s previous=%v, want new key over %s", s.Current.ID, s.Previous, c0.ID)
			}
			e.noOpenOperations()
		})
	}
}

func crashAtEveryStepAborts(e *env) {
	ctx := context.Background()
	for _, step := range store.Steps[:len(store.Steps)-1] {
		e.t.Run(string(step), func(t *testing.T) {
			e := e.sub(t, string(step))
			e.rotate()
			c0 := e.load().Current
			e.rotateUntilCrash(step)
			if _, err := e.engine().Abort(ctx, e.secret()); err != nil {
				t.Fatalf("abort: %v", err)
			}
			s := e.load()
			if s.Rotation != nil || s.Pending != nil || s.Current == nil || s.Current.Value != c0.Value {
				t.Fatalf("after abort at %s: current=%v pending=%v rotation=%v, want untouched %s", step, s.Current, s.Pending, s.Rotation, c0.ID)
			}
			if e.prov.Revoked(c0.Value) {
				t.Fatal("current key revoked")
			}
			if len(s.Retired) != 1 {
				t.Fatalf("retired = %v, want the discarded new key kept for revocation", s.Retired)
			}
			e.noOpenOperations()
		})
	}
}

func liveLeaseBlocksOthers(e *env) {
	ctx := context.Background()
	e.rotate()
	holderStep := make(chan struct{})
	release := make(chan struct{})
	sec := e.secret()
	sec.Reload = HookFunc(func(context.Context, *store.Secret) error {
		close(holderStep)
		<-release
		return nil
	})
	done := make(chan error)
	go func() {
		_, err := e.engine().Rotate(ctx, sec)
		done <- err
	}()
	<-holderStep
	_, err := e.engine().Rotate(ctx, e.secret())
	var ipe *rotation.InProgressError
	if !errors.As(err, &ipe) || ipe.Step != store.StepPromote {
		e.t.Fatalf("second rotator = %v, want InProgressError at step promote", err)
	}
	for name, op := range map[string]func() error{
		"rollback": func() error { _, err := e.engine().Rollback(ctx, e.secret()); return err },
		"stage":    func() error { _, err := e.engine().Stage(ctx, e.secret(), "x-staged-value", nil); return err },
		"revoke": func() error {
			_, err := e.engine().Revoke(ctx, e.secret(), rotation.RevokeOptions{Force: true})
			return err
		},
	} {
		if err := op(); !errors.Is(err, rotation.ErrRotationInProgress) {
			e.t.Errorf("%s during rotation = %v, want ErrRotationInProgress", name, err)
		}
	}
	// After the lease expires, a crashed holder's rotation can be taken over.
	e.clock.Advance(11 * time.Minute)
	close(release)
	if err := <-done; !errors.Is(err, rotation.ErrLeaseLost) && err != nil {
		e.t.Fatalf("holder = %v", err)
	}
}

func concurrentRotators(e *env) {
	ctx := context.Background()
	e.rotate()
	before := e.load()
	const n = 20
	var wins, inProgress atomic.Int32
	gate := make(chan struct{})
	var others sync.WaitGroup
	others.Add(n - 1)
	sec := e.secret()
	sec.Reload = HookFunc(func(context.Context, *store.Secret) error {
		// The winner waits in reload until every other rotator has given up,
		// so they all contend with a rotation in flight.
		<-gate
		return nil
	})
	errs := make(chan error, n)
	var all sync.WaitGroup
	for range n {
		all.Add(1)
		go func() {
			defer all.Done()
			_, err := e.engine().Rotate(ctx, sec)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, rotation.ErrRotationInProgress):
				inProgress.Add(1)
				others.Done()
			default:
				errs <- err
				others.Done()
			}
		}()
	}
	others.Wait()
	close(gate)
	all.Wait()
	close(errs)
	for err := range errs {
		e.t.Errorf("rotator failed: %v", err)
	}
	if wins.Load() != 1 || inProgress.Load() != n-1 {
		e.t.Fatalf("wins=%d in-progress=%d, want 1 and %d", wins.Load(), inProgress.Load(), n-1)
	}
	s := e.load()
	if s.Previous == nil || s.Previous.Value != before.Current.Value || s.Current.Value == before.Current.Value {
		e.t.Fatal("the winning rotation did not complete")
	}
	if len(s.Retired) != 0 {
		e.t.Fatalf("retired = %v: a rotation was lost", s.Retired)
	}
}
