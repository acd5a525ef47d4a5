package keyring

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the options of [New].
const (
	// DefaultInterval is how often [Keyring.Run] polls by default.
	DefaultInterval = 30 * time.Second
	// DefaultTimeout bounds a load by [New] or [Keyring.Run] by default.
	DefaultTimeout = 10 * time.Second
)

// Option configures a [Keyring].
type Option func(*config)

type config struct {
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time
	onError  func(error)
}

// WithInterval sets how often [Keyring.Run] polls the source (default
// [DefaultInterval]). It must be positive.
func WithInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithTimeout bounds each load [New] and [Keyring.Run] make, within the
// context they are given (default [DefaultTimeout]). It must be positive.
// [Keyring.Refresh] uses the context it is given as it is.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithClock sets the clock used to decide whether a previous key has
// expired and to time-stamp refreshes (default [time.Now]). It is called
// concurrently and must be safe for that.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithErrorHandler sets a function [Keyring.Run] calls with every failed
// refresh, for logging or metrics. The keyring keeps its last good set
// either way. The handler runs on the polling goroutine.
func WithErrorHandler(f func(error)) Option { return func(c *config) { c.onError = f } }

// Keyring holds the key set of one secret and keeps it fresh. Create one
// with [New]; the zero value is not usable. A Keyring is safe for
// concurrent use; reading the current key is lock-free and does not
// allocate.
type Keyring struct {
	src Source
	cfg config

	state  atomic.Pointer[state]
	status atomic.Pointer[status]

	// mu serialises refreshes and updates, so sets are swapped and
	// callbacks fired in the order the sets were obtained.
	mu sync.Mutex

	cbMu      sync.Mutex
	callbacks []func(old, new Set)
}

// status is the outcome of the last refresh.
type status struct {
	lastRefresh time.Time // last successful refresh or update
	err         error     // error of the last attempt, nil if it succeeded
}

// state is an immutable, validated set together with what signing and
// verification precompute from it.
type state struct {
	set  Set
	keys []*entry // current first, then previous and next if present
}

// entry is one key of a state with a pool of keyed MACs, so that signing
// and verifying do not allocate a MAC per call.
type entry struct {
	key     *Key
	current bool
	macs    sync.Pool // of *macBuf
}

// macBuf is a keyed HMAC-SHA256 with the scratch space one signature needs.
type macBuf struct {
	h   hash.Hash
	sum [sha256.Size]byte
	b64 [macB64Len]byte
}

func newState(set Set) (*state, error) {
	set, err := normalize(set)
	if err != nil {
		return nil, err
	}
	st := &state{set: set}
	st.add(&st.set.Current, true)
	st.add(st.set.Previous, false)
	st.add(st.set.Next, false)
	return st, nil
}

func (st *state) add(k *Key, current bool) {
	if k == nil {
		return
	}
	secret := []byte(k.Value)
	e := &entry{key: k, current: current}
	e.macs.New = func() any { return &macBuf{h: hmac.New(sha256.New, secret)} }
	st.keys = append(st.keys, e)
}

// valid reports whether e may be used at now: the current key always is,
// the others until they expire.
func (e *entry) valid(now time.Time) bool { return e.current || !e.key.Expired(now) }

// mac computes e's MAC of msg into a pooled buffer; the caller must give the
// buffer back with e.macs.Put.
func (e *entry) mac(msg []byte) *macBuf {
	b := e.macs.Get().(*macBuf)
	b.h.Reset()
	b.h.Write(msg)
	b.h.Sum(b.sum[:0])
	return b
}

// fallback returns the previous key if it is valid at now and differs from
// the current one.
func (st *state) fallback(now time.Time) (Key, bool) {
	p := st.set.Previous
	if p == nil || p.Value == st.set.Current.Value || p.Expired(now) {
		return Key{}, false
	}
	return *p, true
}

// New returns a keyring over src after loading it once with ctx, bounded
// by the timeout ([WithTimeout]). It fails if that load fails (including
// when ctx is cancelled or its deadline passes) or yields no current key.
// ctx is used for that first load only; call [Keyring.Run] or
// [Keyring.Start] to keep the set fresh.
func New(ctx context.Context, src Source, opts ...Option) (*Keyring, error) {
	if src == nil {
		return nil, errors.New("new keyring: nil source")
	}
	k := &Keyring{src: src, cfg: config{interval: DefaultInterval, timeout: DefaultTimeout, now: time.Now}}
	for _, o := range opts {
		o(&k.cfg)
	}
	switch {
	case k.cfg.interval <= 0:
		return nil, fmt.Errorf("new keyring: interval %v is not positive", k.cfg.interval)
	case k.cfg.timeout <= 0:
		return nil, fmt.Errorf("new keyring: timeout %v is not positive", k.cfg.timeout)
	case k.cfg.now == nil:
		return nil, errors.New("new keyring: nil clock")
	}
	ctx, cancel := context.WithTimeout(ctx, k.cfg.timeout)
	defer cancel()
	set, err := src.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("new keyring: %w", err)
	}
	st, err := newState(set)
	if err != nil {
		return nil, fmt.Errorf("new keyring: %w", err)
	}
	k.state.Store(st)
	k.status.Store(&status{lastRefresh: k.cfg.now()})
	return k, nil
}

// Current returns the current key. It is lock-free and does not allocate,
// so call it for every use rather than caching the key.
func (k *Keyring) Current() Key { return k.state.Load().set.Current }

// Set returns a copy of the key set in use.
func (k *Keyring) Set() Set { return k.state.Load().set.clone() }

// Err returns the error of the last refresh or update, or nil if it
// succeeded. While it is non-nil the keyring keeps using its last good set.
func (k *Keyring) Err() error { return k.status.Load().err }

// OnChange registers f to be called after every change of the key set, with
// copies of the old and the new set. Callbacks run one at a time, in the
// order they were registered, on the goroutine that made the change, after
// the new set is in use. They must not call [Keyring.Refresh] or
// [Keyring.Update], which would deadlock.
func (k *Keyring) OnChange(f func(old, new Set)) {
	k.cbMu.Lock()
	defer k.cbMu.Unlock()
	k.callbacks = append(k.callbacks, f)
}

// Refresh asks the source for the key set and swaps it in if it changed.
// When the source implements [Versioner] and reports the version already in
// use, Refresh does not load at all; when the version cannot be read, it
// loads. On failure (including a set without a
// current key) the keyring keeps its set, and the error is returned and
// reported by [Keyring.Err].
func (k *Keyring) Refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	notify, err := k.refresh(ctx)
	k.record(err)
	notify()
	return err
}

func (k *Keyring) refresh(ctx context.Context) (notify func(), err error) {
	if v, ok := k.src.(Versioner); ok {
		// The version check only saves a load: when it fails (e.g. a
		// Vault token that may read data but not metadata), load anyway.
		if ver, err := v.Version(ctx); err == nil && ver != "" && ver == k.state.Load().set.Version {
			return noChange, nil
		}
	}
	set, err := k.src.Load(ctx)
	if err != nil {
		return noChange, fmt.Errorf("refresh: %w", err)
	}
	notify, err = k.swap(set)
	if err != nil {
		return noChange, fmt.Errorf("refresh: %w", err)
	}
	return notify, nil
}

// Update validates set and, if it differs from the set in use, swaps it in
// and fires the [Keyring.OnChange] callbacks, exactly as a refresh would. It
// is the entry point for sources that push rather than being polled (such
// as a client of rotor's watch endpoint). An invalid set is refused: the
// keyring keeps its set and [Keyring.Err] reports the error. Update does not
// order versions; a pushing client must not deliver an older set after a
// newer one.
func (k *Keyring) Update(set Set) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	notify, err := k.swap(set)
	if err != nil {
		err = fmt.Errorf("update: %w", err)
	}
	k.record(err)
	notify()
	return err
}

func noChange() {}

// swap installs set if it is valid and differs from the set in use, and
// returns the function that fires the OnChange callbacks for the change.
// The caller holds k.mu, records the outcome first and then calls notify,
// so that a callback already sees [Keyring.Err] of this change.
func (k *Keyring) swap(set Set) (notify func(), err error) {
	st, err := newState(set)
	if err != nil {
		return noChange, err
	}
	old := k.state.Load()
	if old.set.equal(st.set) {
		return noChange, nil
	}
	k.state.Store(st)
	k.cbMu.Lock()
	cbs := k.callbacks[:len(k.callbacks):len(k.callbacks)]
	k.cbMu.Unlock()
	return func() {
		for _, f := range cbs {
			f(old.set.clone(), st.set.clone())
		}
	}, nil
}

func (k *Keyring) record(err error) {
	s := *k.status.Load()
	s.err = err
	if err == nil {
		s.lastRefresh = k.cfg.now()
	}
	k.status.Store(&s)
}

// Run refreshes the key set every interval (see [WithInterval]) until ctx
// is done. A failed refresh is passed to the [WithErrorHandler] handler and
// retried at the next tick; the keyring keeps its last good set meanwhile.
func (k *Keyring) Run(ctx context.Context) {
	t := time.NewTicker(k.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, k.cfg.timeout)
		err := k.Refresh(rctx)
		cancel()
		if err != nil && ctx.Err() == nil && k.cfg.onError != nil {
			k.cfg.onError(err)
		}
	}
}

// Start runs [Keyring.Run] on a new goroutine and returns a function that
// stops it and waits for it to return.
func (k *Keyring) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
