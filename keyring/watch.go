package keyring

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Defaults of the watch options.
const (
	// DefaultWatchMinBackoff is the first delay before reconnecting.
	DefaultWatchMinBackoff = 500 * time.Millisecond
	// DefaultWatchMaxBackoff caps the delay between reconnections.
	DefaultWatchMaxBackoff = 30 * time.Second
	// DefaultWatchIdleTimeout is how long a stream may stay silent before
	// it is presumed dead; rotor sends a heartbeat every 15 seconds.
	DefaultWatchIdleTimeout = time.Minute
)

// maxEventSize bounds one line of the event stream.
const maxEventSize = 1 << 20

// WatchOption configures a [Watcher].
type WatchOption func(*watchConfig)

type watchConfig struct {
	client     *http.Client
	minBackoff time.Duration
	maxBackoff time.Duration
	idle       time.Duration
	onError    func(error)
	allowHTTP  bool
}

// WithWatchClient sets the HTTP client (for a custom CA, say). It must not
// have a Timeout, which would cut every stream short; the watcher has its
// own idle timeout. Default: a client with http.DefaultTransport.
func WithWatchClient(c *http.Client) WatchOption { return func(w *watchConfig) { w.client = c } }

// WithWatchBackoff sets the delays between reconnections: min after a
// failure that follows a working stream, doubling up to max (defaults
// [DefaultWatchMinBackoff], [DefaultWatchMaxBackoff]), with jitter.
func WithWatchBackoff(min, max time.Duration) WatchOption {
	return func(w *watchConfig) { w.minBackoff, w.maxBackoff = min, max }
}

// WithWatchIdleTimeout sets how long a stream may stay silent, heartbeats
// included, before the watcher drops it and reconnects (default
// [DefaultWatchIdleTimeout]).
func WithWatchIdleTimeout(d time.Duration) WatchOption { return func(w *watchConfig) { w.idle = d } }

// WithWatchErrorHandler sets a function called with every connection
// failure and every refused set (default: the keyring's
// [WithErrorHandler] handler). It runs on the watching goroutine.
func WithWatchErrorHandler(f func(error)) WatchOption { return func(w *watchConfig) { w.onError = f } }

// WithWatchAllowHTTP permits a plain http URL to a host that is not
// loopback. The bearer token and the keys would travel in the clear.
func WithWatchAllowHTTP() WatchOption { return func(w *watchConfig) { w.allowHTTP = true } }

// Watcher is a client of rotor's watch endpoint (GET /v1/watch/{name}),
// which pushes a secret's key set as server-sent events. It is a [Source]
// (Load reads the set once), so a keyring can start from it, and
// [Watcher.Run] keeps a keyring up to date with every set the server
// pushes, reconnecting with backoff when the stream breaks:
//
//	w, err := keyring.NewWatcher("https://rotor.internal:8700/v1/watch/clerk", token)
//	k, err := keyring.New(ctx, w)
//	go w.Run(ctx, k)
//
// The server numbers sets (seq) in the order they were stored; a Watcher
// never delivers a set older than one it delivered before, even when a
// reconnection lands on a server replica that lags behind.
type Watcher struct {
	url   string
	token string
	cfg   watchConfig

	mu      sync.Mutex
	lastSeq uint64 // highest seq delivered
}

var _ Source = (*Watcher)(nil)

// NewWatcher returns a watcher of the watch URL rawURL (ending in
// /v1/watch/<secret>) that authenticates with token, an API token or OIDC
// token of role app (or admin). rawURL must be https, or http to a
// loopback host (see [WithWatchAllowHTTP]).
func NewWatcher(rawURL, token string, opts ...WatchOption) (*Watcher, error) {
	cfg := watchConfig{minBackoff: DefaultWatchMinBackoff, maxBackoff: DefaultWatchMaxBackoff, idle: DefaultWatchIdleTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("watch: %q is not an absolute URL", rawURL)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (cfg.allowHTTP || loopback(u.Hostname())):
	default:
		return nil, fmt.Errorf("watch: %s: want https (http only to loopback; see WithWatchAllowHTTP)", u.Redacted())
	}
	switch {
	case token == "":
		return nil, errors.New("watch: empty token")
	case cfg.minBackoff <= 0 || cfg.maxBackoff < cfg.minBackoff:
		return nil, fmt.Errorf("watch: backoff %v..%v: want 0 < min <= max", cfg.minBackoff, cfg.maxBackoff)
	case cfg.idle <= 0:
		return nil, fmt.Errorf("watch: idle timeout %v is not positive", cfg.idle)
	}
	if cfg.client == nil {
		cfg.client = &http.Client{}
	}
	return &Watcher{url: u.String(), token: token, cfg: cfg}, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Watch runs [Watcher.Run] for k with a new watcher of rawURL; see
// [NewWatcher]. It returns an error at once when the arguments are
// invalid, and otherwise when ctx is done.
func (k *Keyring) Watch(ctx context.Context, rawURL, token string, opts ...WatchOption) error {
	w, err := NewWatcher(rawURL, token, opts...)
	if err != nil {
		return err
	}
	return w.Run(ctx, k)
}

// Load connects, reads the current key set and disconnects. It is for
// starting a keyring ([New]); keep the keyring fresh with [Watcher.Run]
// rather than by polling, since every connection is audited by the server.
func (w *Watcher) Load(ctx context.Context) (Set, error) {
	var set Set
	got, stale := false, false
	err := w.stream(ctx, func(data []byte) (bool, error) {
		ws, err := decodeEvent(data)
		if err != nil {
			return false, err
		}
		s, ok, err := w.accept(ws)
		if err != nil {
			return false, err
		}
		if ok {
			set, got = s, true
			// The keyring Load starts holds this set from now on.
			w.delivered(ws.Seq)
		} else {
			stale = true
		}
		return false, nil // one event is enough
	})
	switch {
	case got:
		return set, nil
	case stale:
		return Set{}, errors.New("watch: the server sent a key set older than the one in use")
	case err == nil:
		err = errors.New("watch: the stream ended before sending a key set")
	}
	return Set{}, err
}

// Run streams key sets into k until ctx is done, then returns ctx.Err().
// Each new set goes to [Keyring.Update], so [Keyring.OnChange] callbacks
// fire as for any refresh; a set older than one already delivered is
// skipped. When the stream fails (refused, unreachable, silent for longer
// than the idle timeout) Run reports the error to the error handler and
// through [Keyring.Err], keeps the last good set, and reconnects after a
// backoff. Run must not be called twice at once on one Watcher.
func (w *Watcher) Run(ctx context.Context, k *Keyring) error {
	onError := w.cfg.onError
	if onError == nil {
		onError = k.cfg.onError
	}
	report := func(err error) {
		if onError != nil {
			onError(err)
		}
	}
	delay := w.cfg.minBackoff
	for {
		delivered := false
		err := w.stream(ctx, func(data []byte) (bool, error) {
			ws, err := decodeEvent(data)
			if err != nil {
				report(err)
				return true, nil // a bad event is not a bad stream
			}
			set, ok, err := w.accept(ws)
			if err != nil {
				report(err)
				return true, nil
			}
			delivered = true
			if !ok {
				k.noteWatch(nil) // connected; we already have newer keys
				return true, nil
			}
			if err := k.Update(set); err != nil {
				report(fmt.Errorf("watch: %w", err))
				return true, nil
			}
			w.delivered(ws.Seq)
			return true, nil
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			err = errors.New("watch: stream closed by the server")
		}
		k.noteWatch(err)
		report(err)
		if delivered {
			delay = w.cfg.minBackoff
		}
		// Full jitter over the upper half, so that every consumer of a
		// restarted server does not reconnect at the same instant.
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, w.cfg.maxBackoff)
	}
}

// noteWatch records the outcome of a watch connection as the keyring's
// last refresh outcome.
func (k *Keyring) noteWatch(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.record(err)
}

// accept turns an event into a set, reporting false for one older than a
// set already delivered.
func (w *Watcher) accept(ws WatchEvent) (Set, bool, error) {
	set, err := ws.set()
	if err != nil {
		return Set{}, false, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ws.Seq != 0 && ws.Seq < w.lastSeq {
		return Set{}, false, nil
	}
	return set, true, nil
}

// delivered notes that the set numbered seq is in use.
func (w *Watcher) delivered(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastSeq = max(w.lastSeq, seq)
}

// WatchKey is one key of a [WatchEvent].
type WatchKey struct {
	ID        string    `json:"id"`
	Value     string    `json:"value"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// WatchEvent is the JSON data of a "keys" event on rotor's watch stream
// (GET /v1/watch/{name}): the wire format package server sends and
// [Watcher] reads. Seq orders sets across reconnections.
type WatchEvent struct {
	Secret   string    `json:"secret"`
	Version  string    `json:"version"`
	Seq      uint64    `json:"seq"`
	Current  WatchKey  `json:"current"`
	Previous *WatchKey `json:"previous,omitempty"`
	Next     *WatchKey `json:"next,omitempty"`
}

func (k *WatchKey) key() *Key {
	if k == nil {
		return nil
	}
	return &Key{Value: k.Value, ID: k.ID, ExpiresAt: k.ExpiresAt}
}

// set converts ws, checking it the way a keyring would. Errors name key
// ids, never values.
func (ws WatchEvent) set() (Set, error) {
	s := Set{Current: *ws.Current.key(), Previous: ws.Previous.key(), Next: ws.Next.key(), Version: ws.Version}
	if _, err := normalize(s); err != nil {
		return Set{}, fmt.Errorf("watch: refused key set seq %d: %w", ws.Seq, err)
	}
	return s, nil
}

// decodeEvent decodes the data of a keys event. The data holds key
// values: the error never quotes it.
func decodeEvent(data []byte) (WatchEvent, error) {
	var ws WatchEvent
	if err := json.Unmarshal(data, &ws); err != nil {
		return WatchEvent{}, errors.New("watch: malformed keys event")
	}
	return ws, nil
}

// stream connects once and calls fn with the data of every "keys" event
// until fn returns false or an error, the stream ends or fails, or ctx is
// done. A nil error means fn stopped or the server closed the stream
// cleanly.
func (w *Watcher) stream(ctx context.Context, fn func(data []byte) (bool, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	w.mu.Lock()
	if w.lastSeq > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(w.lastSeq, 10))
	}
	w.mu.Unlock()

	// The idle timer cancels the request when nothing arrives in time;
	// it is armed before the request so a server that never answers is
	// caught too.
	idle := time.AfterFunc(w.cfg.idle, cancel)
	defer idle.Stop()
	resp, err := w.cfg.client.Do(req)
	if err != nil {
		if ctx.Err() != nil && idleFired(idle) {
			return fmt.Errorf("watch: no answer within %v", w.cfg.idle)
		}
		return fmt.Errorf("watch: %w", scrubURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fmt.Errorf("watch: server answered %q, not an event stream", mt)
	}

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxEventSize)
	var typ string
	var data []byte
	for sc.Scan() {
		idle.Reset(w.cfg.idle)
		line := sc.Bytes()
		if len(line) == 0 {
			if typ == "keys" && len(data) > 0 {
				more, err := fn(data)
				if err != nil {
					return err
				}
				if !more {
					return nil
				}
			}
			typ, data = "", data[:0]
			continue
		}
		if line[0] == ':' {
			continue // comment: heartbeat
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			typ = string(value)
		case "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, value...)
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil && idleFired(idle) {
			return fmt.Errorf("watch: stream silent for %v", w.cfg.idle)
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("watch: event line longer than %d bytes", maxEventSize)
		}
		return fmt.Errorf("watch: %w", err)
	}
	return nil
}

// idleFired reports whether the idle timer went off (Stop returns false
// once it has).
func idleFired(t *time.Timer) bool { return !t.Stop() }

// scrubURLError drops the URL from a *url.Error: it is ours, not news,
// and keeps messages short.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError describes a refused connection with the server's error code
// and message (which never carry values).
func statusError(resp *http.Response) error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		return fmt.Errorf("watch: %s: %s: %s", resp.Status, body.Error.Code, body.Error.Message)
	}
	return fmt.Errorf("watch: %s", resp.Status)
}
