package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/server/servertest"
	"github.com/rotor-dev/rotor/store"
)

// statusOf reads the key ids and version through the API.
func statusOf(t *testing.T, e *env) statusIDs {
	t.Helper()
	resp := e.do("GET", "/v1/secrets/clerk", tokViewer, "")
	var v api.Status
	if resp.status != 200 || json.Unmarshal([]byte(resp.body), &v) != nil || v.Current == nil {
		t.Fatalf("status: %d %s", resp.status, resp.body)
	}
	ids := statusIDs{Current: v.Current.KeyID, Version: v.Version}
	if v.Previous != nil {
		ids.Previous = v.Previous.KeyID
	}
	return ids
}

// statusIDs are the key ids and store version of a status.
type statusIDs struct{ Current, Previous, Version string }

func TestWatchRotateThroughAPI(t *testing.T) {
	e := newEnv(t)
	s, resp := e.watch("clerk", tokApp)
	if s == nil {
		t.Fatalf("watch: %d %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	first := s.next(t)
	st := statusOf(t, e)
	if first.Current.ID != st.Current || first.Previous == nil || first.Previous.ID != st.Previous || first.Version != st.Version {
		t.Fatalf("first event %s/%v at %s, status %s/%s at %s", first.Current.ID, first.Previous, first.Version, st.Current, st.Previous, st.Version)
	}

	// The watch interval is an hour: the event can only come from the
	// server's own notification after the rotation.
	if r := e.do("POST", "/v1/secrets/clerk/rotate", tokCI, ""); r.status != 200 {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	got := s.next(t)
	st = statusOf(t, e)
	if got.Current.ID != st.Current || got.Current.ID == first.Current.ID || got.Seq <= first.Seq {
		t.Fatalf("after rotate: event current %s seq %d, status current %s; first was %s seq %d", got.Current.ID, got.Seq, st.Current, first.Current.ID, first.Seq)
	}
	if got.Previous == nil || got.Previous.Value != first.Current.Value || got.Previous.ExpiresAt.IsZero() {
		t.Fatal("the old current key must be previous, with an expiry")
	}

	// Exactly one audit record for the stream, however many events.
	n := 0
	for _, r := range e.records() {
		if r.Action == "api.watch" {
			n++
			if r.Initiator != "token:web" || r.Status != audit.StatusSucceeded || r.Secret != "clerk" {
				t.Errorf("watch record %+v", r.Event)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d api.watch records, want 1", n)
	}
	e.checkNoLeaks()
}

func TestWatchNotify(t *testing.T) {
	e := newEnv(t)
	s, _ := e.watch("clerk", tokAdmin)
	s2, _ := e.watch("clerk", tokApp) // shares the reader
	first := s.next(t)
	s2.next(t)
	// A change made behind the server's back (a scheduled rotation in
	// the daemon) reaches watchers when the daemon calls Notify.
	if _, err := e.b.Rotate(t.Context(), "clerk", "system"); err != nil {
		t.Fatal(err)
	}
	e.api.Notify("clerk")
	for _, st := range []*stream{s, s2} {
		if got := st.next(t); got.Seq <= first.Seq {
			t.Fatalf("seq %d after notify, first %d", got.Seq, first.Seq)
		}
	}
}

// TestWatchNotifyEndpoint: a rotation by another process (the CLI)
// reaches watchers when that process sends POST .../notify, not at the
// next poll (the test server polls once an hour).
func TestWatchNotifyEndpoint(t *testing.T) {
	e := newEnv(t)
	s, _ := e.watch("clerk", tokApp)
	first := s.next(t)
	if _, err := e.b.Rotate(t.Context(), "clerk", "user:cli"); err != nil {
		t.Fatal(err)
	}
	resp := e.do("POST", "/v1/secrets/clerk/notify", tokCI, "")
	if resp.status != http.StatusAccepted || !strings.Contains(resp.body, `"secret":"clerk"`) {
		t.Fatalf("notify: %d %s", resp.status, resp.body)
	}
	if got := s.next(t); got.Seq <= first.Seq {
		t.Fatalf("seq %d after notify, first %d", got.Seq, first.Seq)
	}
	e.checkNoLeaks()
}

// versionedBackend counts what the watch reader asks a backend that can
// tell a secret's version without its keys.
type versionedBackend struct {
	*servertest.Backend
	versions, sets atomic.Int64
}

func (v *versionedBackend) Version(ctx context.Context, name string) (store.Version, error) {
	v.versions.Add(1)
	_, ver, err := v.Store.Load(ctx, name)
	return ver, err
}

func (v *versionedBackend) KeySet(ctx context.Context, name string) (server.KeySet, error) {
	v.sets.Add(1)
	return v.Backend.KeySet(ctx, name)
}

// TestWatchPollsVersionsOnly: a reader polling a Versioner backend reads
// the keys only when the version moved.
func TestWatchPollsVersionsOnly(t *testing.T) {
	var vb *versionedBackend
	e := newEnvWith(t, func(b *servertest.Backend) server.Backend {
		vb = &versionedBackend{Backend: b}
		return vb
	}, server.WithWatchInterval(time.Millisecond))
	s, _ := e.watch("clerk", tokApp)
	first := s.next(t)
	deadline := time.Now().Add(10 * time.Second)
	for vb.versions.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d version reads in 10s", vb.versions.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if n := vb.sets.Load(); n != 1 {
		t.Fatalf("%d key set reads for an unchanged secret, want 1 (the first)", n)
	}
	if _, err := e.b.Rotate(t.Context(), "clerk", "user:cli"); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t); got.Seq <= first.Seq {
		t.Fatalf("seq %d after a rotation, first %d", got.Seq, first.Seq)
	}
}

// TestWatchLeavesExpiredKeysOut: once the previous key's grace period is
// over, a watcher that connects gets the set without it, even though the
// stored version did not move.
func TestWatchLeavesExpiredKeysOut(t *testing.T) {
	var vb *versionedBackend
	e := newEnvWith(t, func(b *servertest.Backend) server.Backend {
		vb = &versionedBackend{Backend: b}
		return vb
	})
	s, _ := e.watch("clerk", tokApp)
	if first := s.next(t); first.Previous == nil {
		t.Fatal("setup: clerk has no previous key")
	}
	e.b.Clock.Advance(48 * time.Hour)
	e.api.Notify("clerk")
	// The reader reads again in the background; new watchers get the set
	// without the expired key once it has.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s2, _ := e.watch("clerk", tokApp)
		got := s2.next(t)
		s2.close()
		if got.Previous == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new watchers still get the expired previous key %s", got.Previous.ID)
		}
	}
	if n := vb.versions.Load(); n != 0 {
		t.Errorf("%d version reads: an expired key must make the reader read the keys without asking", n)
	}
}

func TestWatchPolls(t *testing.T) {
	e := newEnv(t, server.WithWatchInterval(5*time.Millisecond))
	s, _ := e.watch("clerk", tokApp)
	first := s.next(t)
	if _, err := e.b.Rotate(t.Context(), "clerk", "system"); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t); got.Seq <= first.Seq {
		t.Fatalf("seq %d, first %d", got.Seq, first.Seq)
	}
}

func TestWatchHeartbeat(t *testing.T) {
	e := newEnv(t, server.WithHeartbeat(5*time.Millisecond))
	s, _ := e.watch("clerk", tokApp)
	s.next(t)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if ev.comment == "heartbeat" {
				return
			}
		case <-deadline:
			t.Fatal("no heartbeat within 10s")
		}
	}
}

func TestWatchUnknownSecret(t *testing.T) {
	e := newEnv(t)
	_, resp := e.watch("nope", tokAdmin)
	if resp.status != 404 || resp.errorCode() != server.CodeNotFound {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	e := newEnv(t)
	s, _ := e.watch("clerk", tokApp)
	s.next(t)
	e.api.Close()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream still open 10s after Close")
		}
	}
}

// TestValuesNeedTLS sends the two requests that carry values as if from a
// remote peer over plain HTTP.
func TestValuesNeedTLS(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/watch/clerk", ""},
		{"POST", "/v1/secrets/clerk/stage", `{"value":"remote-staged-value-123"}`},
	} {
		req := httptest.NewRequestWithContext(t.Context(), tc.method, tc.path, strings.NewReader(tc.body))
		req.RemoteAddr = "203.0.113.7:40000"
		req.Header.Set("Authorization", "Bearer "+tokAdmin)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		var body server.ErrorBody
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusForbidden || body.Error.Code != server.CodeTLSRequired {
			t.Errorf("%s %s from a remote peer: %d %s", tc.method, tc.path, rec.Code, rec.Body)
		}
		recs := e.records()
		if r := recs[len(recs)-1]; r.Status != audit.StatusDenied || r.Initiator != "token:admin" || !strings.Contains(r.Detail, "203.0.113.7") {
			t.Errorf("%s: record %+v", tc.path, r.Event)
		}
	}

	// Behind a TLS-terminating proxy, the operator says so.
	e2 := newEnv(t, server.WithPlaintextValues())
	req := httptest.NewRequestWithContext(t.Context(), "POST", "/v1/secrets/clerk/stage", strings.NewReader(`{"value":"proxied-staged-value-123"}`))
	req.RemoteAddr = "203.0.113.7:40000"
	req.Header.Set("Authorization", "Bearer "+tokAdmin)
	rec := httptest.NewRecorder()
	e2.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("with WithPlaintextValues: %d %s", rec.Code, rec.Body)
	}
}
