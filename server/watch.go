package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/store"
)

// writeTimeout bounds each write to a watch stream, so a client that stops
// reading cannot hold a stream (and its goroutine) forever.
const writeTimeout = 30 * time.Second

func toWire(k *keyring.Key) *keyring.WatchKey {
	if k == nil {
		return nil
	}
	return &keyring.WatchKey{ID: k.ID, Value: k.Value, ExpiresAt: k.ExpiresAt}
}

// watch streams the key set of c.secret as server-sent events: the current
// set at once, then every change, with heartbeat comments in between.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, c call) {
	if r.Method == http.MethodHead {
		// The mux routes HEAD to GET patterns; a HEAD opens no stream.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	if !s.secure(r) {
		s.refuse(w, r, authz.ActionWatch, c.secret, c.p.Subject, http.StatusForbidden,
			ErrorDetail{Code: CodeTLSRequired, Message: "watch streams secret values: use https"}, "plain HTTP from a non-loopback peer")
		return
	}
	t := s.hub.join(c.secret)
	defer s.hub.leave(t)
	ks, changed, err := t.current(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Values leave rotor here: every stream is audited before it starts,
	// and does not start if it cannot be.
	_, err = s.audit.Append(r.Context(), audit.Event{
		Initiator: c.p.Subject, Action: "api." + string(authz.ActionWatch), Secret: c.secret,
		Status: audit.StatusSucceeded,
		Detail: fmt.Sprintf("watch stream opened from %s at version %s", remoteHost(r), clipTo(ks.Set.Version, 100)),
	})
	if err != nil {
		s.fail(w, r, fmt.Errorf("audit watch stream: %w", err))
		return
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	send := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(event(c.secret, ks)) {
		return
	}
	sent := ks
	beat := time.NewTicker(s.opts.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-beat.C:
			if !send([]byte(": heartbeat\n\n")) {
				return
			}
		case <-changed:
			var next KeySet
			next, changed = t.snapshot()
			if newer(next, sent) {
				if !send(event(c.secret, next)) {
					return
				}
				sent = next
			}
		}
	}
}

// event encodes ks as a "keys" event. Its id is the sequence number, so a
// client can tell which set it has.
func event(name string, ks KeySet) []byte {
	set := ks.Set
	ws := keyring.WatchEvent{
		Secret: name, Version: set.Version, Seq: ks.Seq,
		Current: *toWire(&set.Current), Previous: toWire(set.Previous), Next: toWire(set.Next),
	}
	data, err := json.Marshal(ws)
	if err != nil {
		// Strings, numbers and times only: cannot happen.
		panic("server: encode key set: " + err.Error())
	}
	b := make([]byte, 0, len(data)+64)
	b = append(b, "event: keys\nid: "...)
	b = strconv.AppendUint(b, ks.Seq, 10)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// newer reports whether a should replace b for a watcher that has b.
func newer(a, b KeySet) bool {
	if a.Set.Version == b.Set.Version && a.Seq == b.Seq {
		return false
	}
	if a.Seq != 0 && b.Seq != 0 {
		return a.Seq > b.Seq
	}
	return true
}

// hub shares one reader of the backend among all the watchers of a secret.
type hub struct {
	ctx      context.Context
	backend  Backend
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu     sync.Mutex
	topics map[string]*topic
	closed bool           // no new pollers once wait has begun
	wg     sync.WaitGroup // pollers
}

func newHub(ctx context.Context, b Backend, interval time.Duration, now func() time.Time, log *slog.Logger) *hub {
	return &hub{ctx: ctx, backend: b, interval: interval, now: now, log: log, topics: map[string]*topic{}}
}

// topic is the key set of one watched secret, read by one poller while it
// has watchers.
type topic struct {
	name    string
	backend Backend
	now     func() time.Time
	wake    chan struct{} // buffered 1: a pending notification
	subs    int           // guarded by hub.mu
	stop    context.CancelFunc

	fetchMu sync.Mutex // serialises reads, so that last only moves forward

	mu      sync.Mutex
	have    bool
	last    KeySet
	changed chan struct{} // closed and replaced when last changes
}

// join registers a watcher of name, starting the secret's poller for the
// first one.
func (h *hub) join(name string) *topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		ctx, cancel := context.WithCancel(h.ctx)
		t = &topic{name: name, backend: h.backend, now: h.now, wake: make(chan struct{}, 1), stop: cancel, changed: make(chan struct{})}
		h.topics[name] = t
		if !h.closed {
			h.wg.Go(func() { h.poll(ctx, t) })
		}
	}
	t.subs++
	return t
}

// leave unregisters a watcher, stopping the poller with the last one.
func (h *hub) leave(t *topic) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.subs--
	if t.subs == 0 {
		t.stop()
		delete(h.topics, t.name)
	}
}

// notify makes the poller of name read at once.
func (h *hub) notify(name string) {
	h.mu.Lock()
	t := h.topics[name]
	h.mu.Unlock()
	if t != nil {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// wait waits for every poller to stop; call it after the hub's context is
// done. No poller starts afterwards.
func (h *hub) wait() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *hub) poll(ctx context.Context, t *topic) {
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.wake:
		}
		if err := t.refresh(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("watch: read key set", "secret", t.name, "err", err)
		}
	}
}

// refresh reads the key set and publishes it if it is newer. With a
// [Versioner] backend it reads the version first, and the keys only when
// the version moved or a key it holds has expired (the new set leaves it
// out). A version that cannot be read is no reason not to read the keys.
func (t *topic) refresh(ctx context.Context) error {
	t.fetchMu.Lock()
	defer t.fetchMu.Unlock()
	if v, ok := t.backend.(Versioner); ok {
		t.mu.Lock()
		have, last := t.have, t.last.Set
		t.mu.Unlock()
		if have && !expired(last, t.now()) {
			if ver, err := v.Version(ctx, t.name); err == nil && ver != store.NoVersion && string(ver) == last.Version {
				return nil
			}
		}
	}
	ks, err := t.backend.KeySet(ctx, t.name)
	if err != nil {
		return err
	}
	if ks.Set.Current.Value == "" {
		return fmt.Errorf("secret %s: %w", t.name, keyring.ErrNoCurrentKey)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.have || newer(ks, t.last):
		t.last, t.have = ks, true
		close(t.changed)
		t.changed = make(chan struct{})
	case ks.Set.Version == t.last.Set.Version && ks.Seq == t.last.Seq:
		// The same version, judged again: a key that expired since is
		// left out for the watchers that connect from now on. Those
		// connected already drop it by their own clock.
		t.last = ks
	}
	return nil
}

// expired reports whether a key of set has expired at now.
func expired(set keyring.Set, now time.Time) bool {
	return set.Previous != nil && set.Previous.Expired(now) || set.Next != nil && set.Next.Expired(now)
}

// snapshot returns the latest key set and a channel closed when it changes.
func (t *topic) snapshot() (KeySet, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last, t.changed
}

// current returns the key set for a new watcher, reading it when the topic
// has none yet.
func (t *topic) current(ctx context.Context) (KeySet, <-chan struct{}, error) {
	t.mu.Lock()
	have := t.have
	t.mu.Unlock()
	if !have {
		if err := t.refresh(ctx); err != nil {
			return KeySet{}, nil, err
		}
	}
	ks, ch := t.snapshot()
	if ks.Set.Current.Value == "" {
		return KeySet{}, nil, errors.New("watch: no key set")
	}
	return ks, ch, nil
}
