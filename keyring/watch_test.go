package keyring_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/keyring"
)

// appToken is the token the scripted endpoints accept.
const appToken = "rtr_watch_app_0123456789"

// changes collects a keyring's changes.
func changes(k *keyring.Keyring) <-chan keyring.Set {
	ch := make(chan keyring.Set, 16)
	k.OnChange(func(_, n keyring.Set) { ch <- n })
	return ch
}

// waitChange returns the next set from changes. It has no deadline of its
// own: a watch that never delivers fails the test by go test's -timeout,
// with every goroutine's stack, not by a guess at how slow a busy machine
// may be.
func waitChange(t *testing.T, ch <-chan keyring.Set) keyring.Set {
	t.Helper()
	return <-ch
}

// errorLog collects errors from a handler, safe for concurrent use.
type errorLog struct {
	mu   sync.Mutex
	errs []string
	ch   chan struct{}
}

func newErrorLog() *errorLog { return &errorLog{ch: make(chan struct{}, 64)} }

func (l *errorLog) handle(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err.Error())
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

func (l *errorLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.errs, "\n")
}

// script is a fake watch endpoint: the handler for the n-th connection
// (from 1), which may write events with send.
type script func(n int, w http.ResponseWriter, r *http.Request)

func fakeServer(t *testing.T, s script) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+appToken {
			http.Error(w, "no", 401)
			return
		}
		s(int(n.Add(1)), w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	w.(http.Flusher).Flush()
}

// send writes a keys event whose current key is "value-<seq>".
func send(w http.ResponseWriter, seq int) {
	fmt.Fprintf(w, "event: keys\nid: %d\ndata: {\"secret\":\"s\",\"version\":\"v%d\",\"seq\":%d,\"current\":{\"id\":\"k%d\",\"value\":\"value-%d\"}}\n\n", seq, seq, seq, seq, seq)
	w.(http.Flusher).Flush()
}

func newKeyring(t *testing.T) *keyring.Keyring {
	k, err := keyring.New(t.Context(), keyring.StaticSource(keyring.Set{Current: keyring.Key{Value: "value-0", ID: "k0"}}))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func run(t *testing.T, k *keyring.Keyring, url string, opts ...keyring.WatchOption) {
	t.Helper()
	opts = append([]keyring.WatchOption{keyring.WithWatchBackoff(time.Millisecond, 4*time.Millisecond)}, opts...)
	w, err := keyring.NewWatcher(url, appToken, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, k)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestWatchNeverGoesBack makes the server send older sets, within a
// stream and after a reconnection (a lagging replica).
func TestWatchNeverGoesBack(t *testing.T) {
	release := make(chan struct{})
	srv := fakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		switch n {
		case 1:
			send(w, 5)
			send(w, 3) // older: skipped
			// then the connection drops
		case 2:
			send(w, 4) // a lagging replica: skipped
			send(w, 7)
			select {
			case <-r.Context().Done():
			case <-release:
			}
		default:
			<-r.Context().Done()
		}
	})
	defer close(release)
	k := newKeyring(t)
	ch := changes(k)
	run(t, k, srv.URL)
	if got := waitChange(t, ch); got.Current.ID != "k5" {
		t.Fatalf("first change to %s, want k5", got.Current)
	}
	if got := waitChange(t, ch); got.Current.ID != "k7" {
		t.Fatalf("second change to %s, want k7 (3 and 4 are older than 5)", got.Current)
	}
	if k.Current().Value != "value-7" {
		t.Fatalf("current %s", k.Current())
	}
}

func TestWatchReconnects(t *testing.T) {
	srv := fakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"code":"not_ready","message":"the store does not answer"}}`)
			return
		}
		startStream(w)
		send(w, 1)
		<-r.Context().Done()
	})
	errs := newErrorLog()
	k := newKeyring(t)
	ch := changes(k)
	run(t, k, srv.URL, keyring.WithWatchErrorHandler(errs.handle))
	if got := waitChange(t, ch); got.Current.ID != "k1" {
		t.Fatalf("got %s", got.Current)
	}
	if text := errs.text(); !strings.Contains(text, "503") || !strings.Contains(text, "not_ready") {
		t.Fatalf("errors %q lack the refusal", text)
	}
	if strings.Contains(errs.text(), appToken) {
		t.Fatal("an error contains the token")
	}
	if k.Err() != nil {
		t.Fatalf("Err after reconnecting = %v", k.Err())
	}
}

func TestWatchIdleTimeout(t *testing.T) {
	srv := fakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		if n > 1 {
			send(w, 2)
		}
		<-r.Context().Done() // silent: no heartbeats
	})
	errs := newErrorLog()
	k := newKeyring(t)
	ch := changes(k)
	run(t, k, srv.URL, keyring.WithWatchIdleTimeout(20*time.Millisecond), keyring.WithWatchErrorHandler(errs.handle))
	if got := waitChange(t, ch); got.Current.ID != "k2" {
		t.Fatalf("got %s", got.Current)
	}
	if !strings.Contains(errs.text(), "silent") {
		t.Fatalf("errors %q", errs.text())
	}
}

// TestWatchBadEvents sends events that must be refused, full of values
// that must not appear in any error.
func TestWatchBadEvents(t *testing.T) {
	srv := fakeServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		io.WriteString(w, "event: keys\ndata: {\"current\":{\"id\":\"k1\",\"value\":\"leak-one\"},\"seq\":\"oops\"}\n\n")
		io.WriteString(w, "event: keys\ndata: {\"seq\":2,\"current\":{\"id\":\"k2\",\"value\":\"\"},\"previous\":{\"id\":\"p\",\"value\":\"leak-two\"}}\n\n")
		io.WriteString(w, ": heartbeat\n\nevent: other\ndata: {}\n\n")
		send(w, 3)
		<-r.Context().Done()
	})
	errs := newErrorLog()
	k := newKeyring(t)
	ch := changes(k)
	run(t, k, srv.URL, keyring.WithWatchErrorHandler(errs.handle))
	if got := waitChange(t, ch); got.Current.ID != "k3" {
		t.Fatalf("got %s", got.Current)
	}
	text := errs.text()
	if !strings.Contains(text, "malformed") {
		t.Fatalf("errors %q", text)
	}
	for _, v := range []string{"leak-one", "leak-two", "value-3"} {
		if strings.Contains(text, v) {
			t.Fatalf("errors contain the value %s: %q", v, text)
		}
	}
}

func TestNewWatcherValidates(t *testing.T) {
	tests := []struct {
		name  string
		url   string
		token string
		opts  []keyring.WatchOption
		want  string
	}{
		{"plain http to a remote host", "http://rotor.example/v1/watch/x", "t", nil, "https"},
		{"relative", "/v1/watch/x", "t", nil, "absolute"},
		{"no token", "https://rotor.example/v1/watch/x", "", nil, "token"},
		{"bad backoff", "https://rotor.example/v1/watch/x", "t", []keyring.WatchOption{keyring.WithWatchBackoff(time.Second, time.Millisecond)}, "backoff"},
		{"bad idle", "https://rotor.example/v1/watch/x", "t", []keyring.WatchOption{keyring.WithWatchIdleTimeout(0)}, "idle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyring.NewWatcher(tt.url, tt.token, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := keyring.NewWatcher("http://rotor.internal/v1/watch/x", "t", keyring.WithWatchAllowHTTP()); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.NewWatcher("http://127.0.0.1:8700/v1/watch/x", "t"); err != nil {
		t.Fatal(err)
	}
}

// ExampleNewWatcher keeps an application's keys in step with rotor's
// watch endpoint.
func ExampleNewWatcher() {
	ctx := context.Background()
	w, err := keyring.NewWatcher("https://rotor.internal:8700/v1/watch/clerk", "<app token>")
	if err != nil {
		panic(err)
	}
	k, err := keyring.New(ctx, w) // the set as it is now
	if err != nil {
		panic(err)
	}
	go w.Run(ctx, k) // every change from now on
	_ = k.Current()
}
