package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/binding"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/internal/childenv"
	"github.com/rotor-dev/rotor/metrics"
	"github.com/rotor-dev/rotor/notify"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/awssm"
	"github.com/rotor-dev/rotor/store/file"
	"github.com/rotor-dev/rotor/store/vault"
	"github.com/rotor-dev/rotor/supervisor"
	"github.com/rotor-dev/rotor/trigger"
	"github.com/rotor-dev/rotor/trigger/kubernetes"
)

// app is everything a command needs, wired from the config.
type app struct {
	g     *globals
	cfg   *config.Config
	store store.Store
	// bound is store bound to the audit chain: what the engine loads
	// and saves through (see package binding).
	bound  *binding.Store
	audit  trail
	salt   []byte
	now    func() time.Time
	engine *rotation.Engine
	// metrics, when set (daemon, serve), counts what the engine records.
	metrics *metrics.Metrics
	// progress, when set (rotate, rollback), reports reload hooks and
	// verify checks on stderr while they run.
	progress *progress
	// notifier, when the notify block has targets, hears what the engine
	// records (notifications.go).
	notifier *notify.Notifier
}

// recorderFor returns the audit recorder for initiator, counted by the
// metrics when they are on.
func (a *app) recorderFor(initiator string) rotation.Recorder {
	var r rotation.Recorder = &recorder{trail: a.audit, initiator: initiator}
	if a.metrics != nil {
		r = a.metrics.Recorder(r)
	}
	return a.notifying(r, initiator)
}

// open loads the config and wires the store, audit log and engine.
func (g *globals) open(ctx context.Context) (*app, error) {
	cfg, err := config.Load(g.config)
	if err != nil {
		return nil, err
	}
	now, err := g.clock()
	if err != nil {
		return nil, err
	}
	salt, err := audit.LoadSalt(cfg.Audit.SaltFile)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, g.initiatorName())
	if err != nil {
		return nil, err
	}
	if c, ok := st.(io.Closer); ok {
		g.closers = append(g.closers, c)
	}
	tr, err := openTrail(ctx, cfg, st, salt, now, g.env.stderr)
	if err != nil {
		return nil, err
	}
	if tr, err = withSinks(ctx, tr, cfg.Audit.Sinks, g); err != nil {
		return nil, err
	}
	a := &app{g: g, cfg: cfg, store: st, audit: tr, salt: salt, now: now}
	if a.notifier, err = g.openNotifications(a); err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(g.env.stderr, "rotor: warning: %s\n", w)
	}
	// A one-shot command writes the events of an operation in a few
	// batches; serve and the daemon replace this recorder.
	rec := &recorder{trail: tr, initiator: g.initiatorName(), batch: true}
	g.flush = append(g.flush, rec.Flush)
	// The engine reads and writes through the binding to the audit
	// chain, so that a store put back from an older copy is refused, and
	// through the notifier, so that every change of a watched key set
	// reaches the configured rotor serve at once.
	fault, err := g.faultHook()
	if err != nil {
		return nil, err
	}
	bo := binding.Options{Store: st, Saves: tr.Saves(), Appender: tr, Salt: salt, Initiator: g.initiatorName()}
	if rec.batch && !g.serving {
		// A one-shot command: the record of each save waits with the
		// operation's step records (see heldAppender). serve and the
		// daemon replace rec and append each save's record at once.
		bo.Appender = heldAppender{rec}
	}
	if fault != nil {
		bo.AfterSave = func(name string) { fault(name, binding.SavedPoint) }
	}
	bound, err := binding.New(bo)
	if err != nil {
		return nil, err
	}
	a.bound = bound
	es := newNotifier(bound, cfg.Server.Notify, g.env.getenv, func(format string, args ...any) {
		fmt.Fprintf(g.env.stderr, "rotor: warning: "+format+"\n", args...)
	})
	if n, ok := es.(*notifier); ok {
		g.closers = append(g.closers, n)
	}
	a.engine = &rotation.Engine{
		Store:     es,
		Audit:     a.notifying(rec, g.initiatorName()),
		Salt:      salt,
		Initiator: g.initiatorName(),
		Now:       now,
	}
	if fault != nil {
		a.engine.OnStep = func(name string, step store.Step, _ *store.Secret) { fault(name, step) }
	}
	return a, nil
}

func openStore(ctx context.Context, cfg *config.Config, initiator string) (store.Store, error) {
	switch cfg.Store.Type {
	case "file":
		return file.New(cfg.Store.File.Dir, cfg.Store.File.Identity)
	case "vault":
		return vault.New(ctx, *cfg.Store.Vault, vault.WithWriter(initiator))
	case "awssm":
		return awssm.New(ctx, *cfg.Store.AWSSM)
	}
	return nil, fmt.Errorf("unknown store type %q", cfg.Store.Type)
}

// secret builds the engine's view of the configured secret name.
func (a *app) secret(name string) (rotation.Secret, error) {
	sc, err := a.cfg.Secret(name)
	if err != nil {
		return rotation.Secret{}, err
	}
	p, err := sc.NewProvider()
	if err != nil {
		return rotation.Secret{}, fmt.Errorf("secret %s: %w", name, err)
	}
	// A provider that reads another secret (postgres admin_secret) reads
	// it from this store.
	if r, ok := p.(interface{ ReadSecretsFrom(store.Store) }); ok {
		r.ReadSecretsFrom(a.store)
	}
	pol := a.cfg.Policy(sc)
	sec := rotation.Secret{
		Name:                 sc.Name,
		Provider:             p,
		Every:                pol.Every,
		Grace:                pol.Grace,
		Lease:                pol.Lease,
		KeepFailedAsPrevious: sc.KeepFailedAsPrevious,
		Schedule:             a.cfg.Schedule(sc),
	}
	var reload trigger.Reloaders
	for _, h := range sc.Reload {
		r, err := a.reloader(h)
		if err != nil {
			return rotation.Secret{}, fmt.Errorf("secret %s: %w", name, err)
		}
		if a.progress != nil {
			r = trackedReloader{r, a.progress, name + ": reload: " + describeHook(h, true)}
		}
		reload = append(reload, r)
	}
	var verify trigger.Verifiers
	for _, h := range sc.Verify {
		v := a.verifier(h)
		if a.progress != nil {
			v = trackedVerifier{v, a.progress, name + ": verify: " + describeHook(h, false)}
		}
		verify = append(verify, v)
	}
	if len(sc.Consumers) > 0 {
		c := &trigger.Consumers{URLs: sc.Consumers, Timeout: time.Duration(sc.ConsumerTimeout)}
		var v rotation.Verifier = c
		if a.progress != nil {
			v = trackedVerifier{c, a.progress, name + ": verify: waiting for the consumers to report the new key id"}
		}
		verify = append(verify, v)
		sec.Usage = c
	}
	if len(reload) > 0 {
		sec.Reload = reload
	}
	if len(verify) > 0 {
		sec.Verify = verify
	}
	return sec, nil
}

func (a *app) reloader(h config.Hook) (rotation.Reloader, error) {
	switch {
	case h.HTTP != nil:
		return &trigger.HTTPReload{URL: h.HTTP.URL, Token: a.g.env.getenv(h.HTTP.TokenEnv), Timeout: time.Duration(h.Timeout)}, nil
	case h.Signal != nil:
		sig := syscall.SIGHUP
		if h.Signal.Signal != "" {
			var err error
			if sig, err = supervisor.ParseSignal(h.Signal.Signal); err != nil {
				return nil, err
			}
		}
		return &trigger.Signal{PIDFile: h.Signal.PIDFile, Sig: sig}, nil
	case h.Kubernetes != nil:
		return kubernetes.New(*h.Kubernetes, time.Duration(h.Timeout))
	}
	return &trigger.Command{Argv: h.Command, Timeout: time.Duration(h.Timeout), Dir: a.cfg.Dir, Env: a.childEnv(h.PassEnv)}, nil
}

// childEnv is the environment of a process rotor starts: rotor's own
// without the variables it consumed (config.Config.ConsumedEnv), except
// those in pass.
func (a *app) childEnv(pass []string) []string {
	return childenv.Filter(a.g.env.environ(), a.cfg.ConsumedEnv(), pass)
}

func (a *app) verifier(h config.Hook) rotation.Verifier {
	if h.HTTP != nil {
		return &trigger.HTTPCheck{URL: h.HTTP.URL, RequireKeyID: h.HTTP.RequireKeyID, Timeout: time.Duration(h.Timeout), Interval: time.Duration(h.HTTP.Interval)}
	}
	return &trigger.Command{Argv: h.Command, Timeout: time.Duration(h.Timeout), Dir: a.cfg.Dir, Env: a.childEnv(h.PassEnv)}
}

// names returns the configured secret names, in config order.
func (a *app) names() []string {
	ns := make([]string, len(a.cfg.Secrets))
	for i, s := range a.cfg.Secrets {
		ns[i] = s.Name
	}
	return ns
}

// recorder adapts the audit trail to the engine's Recorder.
//
// With batch set, it holds back events other than "started" ones and
// writes them with the next "started" event, with an operation's terminal
// event, or at Flush: an operation's records then cost a few writes (a
// group commit with its fsync on the local log, a batch and a head move on
// a shared chain), not one each; a change is still never made before the
// chain holds the "started" record that announces it, and an operation
// never releases its lease before the chain holds its terminal record (see
// package rotation, "Audit records"). A process killed mid-operation loses
// the held-back step records of that operation, not its "started" or
// terminal record.
//
// Writes are group commits: while one is in flight, the events of
// operations running beside it (rotate --due --parallel) queue up, and
// the next write carries all of them, so N rotations started together
// cost about two chain writes, not N. Record returns only once its
// "started" or terminal event is written (or with the error of the last
// attempt).
type recorder struct {
	trail     trail
	initiator string
	batch     bool

	mu       sync.Mutex
	done     sync.Cond     // a write ended; L is mu, set on first use
	held     []audit.Event // events queued[written:], oldest first
	flushing bool          // a write is in flight (mu released)
	queued   uint64        // events ever queued
	written  uint64        // events the trail holds, in queue order
}

func (r *recorder) Record(ctx context.Context, e rotation.Event) error {
	ev := audit.Event{
		Initiator: r.initiator, Action: e.Action, Secret: e.Secret,
		KeyID: e.KeyID, Status: e.Status, Detail: e.AuditDetail(),
	}
	if !r.batch {
		_, err := r.trail.Append(ctx, ev)
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = append(r.held, ev)
	r.queued++
	if e.Status != rotation.StatusStarted && e.End == "" {
		return nil
	}
	return r.writeLocked(ctx, r.queued)
}

// hold queues e with the held-back events, to be written with them.
func (r *recorder) hold(e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = append(r.held, e)
	r.queued++
}

// heldAppender is the binding's Appender when the recorder batches (a
// one-shot command): the record of a save is queued
// with the operation's held-back step records and written with the next
// "started" or terminal record or at Flush, instead of costing a write
// of its own. A process killed
// mid-operation then leaves the store some saves ahead of the chain,
// which binding accepts as it accepts a kill between a save and its
// record; the next save's record, or the next operation's, catches up.
type heldAppender struct{ r *recorder }

// Append implements binding.Appender. The record is not written yet, so
// the zero Record is returned; binding does not use it.
func (h heldAppender) Append(_ context.Context, e audit.Event) (audit.Record, error) {
	h.r.hold(e)
	return audit.Record{}, nil
}

// Flush writes the held-back events.
func (r *recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writeLocked(ctx, r.queued)
}

// writeLocked returns once the first upto queued events are written: by
// a write in flight, which it waits for, or by one it makes itself with
// every event queued so far. r.mu is held, and released during a write.
func (r *recorder) writeLocked(ctx context.Context, upto uint64) error {
	if r.done.L == nil {
		r.done.L = &r.mu
	}
	for r.written < upto {
		if r.flushing {
			r.done.Wait()
			continue
		}
		batch := r.held
		r.held, r.flushing = nil, true
		r.mu.Unlock()
		_, err := r.trail.AppendAll(ctx, batch)
		r.mu.Lock()
		r.flushing = false
		if err != nil {
			// Kept for the next write, as before: a write that failed
			// after the records were stored may repeat them.
			r.held = append(batch, r.held...)
		} else {
			r.written += uint64(len(batch))
		}
		r.done.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}
