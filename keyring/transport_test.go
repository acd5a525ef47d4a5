package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// issuer is an HTTP server that accepts one bearer token, the way Clerk
// does after a key was deleted in its dashboard, and records every request.
type issuer struct {
	accept string
	mu     sync.Mutex
	seen   []seenRequest
}

type seenRequest struct {
	method, auth, body, idemKey string
}

func (is *issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	is.mu.Lock()
	is.seen = append(is.seen, seenRequest{r.Method, r.Header.Get("Authorization"), string(body), r.Header.Get("Idempotency-Key")})
	is.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+is.accept {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintln(w, `{"errors":[{"code":"clerk_key_invalid"}]}`)
		return
	}
	fmt.Fprint(w, "ok")
}

func (is *issuer) requests() []seenRequest {
	is.mu.Lock()
	defer is.mu.Unlock()
	return append([]seenRequest(nil), is.seen...)
}

// oneShot is a request body that cannot be recreated.
type oneShot struct{ io.Reader }

func (oneShot) Close() error { return nil }

func TestTransport(t *testing.T) {
	sec := newSecrets(t)
	cur, prev := sec.key(), sec.key()
	grace := epoch.Add(time.Hour)
	valid := Set{Current: cur, Previous: expiring(prev, grace)}
	const payload = `{"name":"x"}`

	tests := []struct {
		name      string
		reason    string
		set       Set
		accept    string // the key the issuer accepts
		advance   time.Duration
		method    string
		body      func() io.Reader // nil: no body
		oneShot   bool             // hide the body's type from http.NewRequest so GetBody stays nil
		idemKey   string
		wantAuths []string // the keys sent, in order
		wantCode  int
	}{
		{name: "current accepted", reason: "no retry when the current key works",
			set: valid, accept: cur.Value, method: http.MethodGet, wantAuths: []string{cur.Value}, wantCode: 200},
		{name: "GET falls back", reason: "GET is safe to replay",
			set: valid, accept: prev.Value, method: http.MethodGet, wantAuths: []string{cur.Value, prev.Value}, wantCode: 200},
		{name: "HEAD falls back", reason: "HEAD is safe",
			set: valid, accept: prev.Value, method: http.MethodHead, wantAuths: []string{cur.Value, prev.Value}, wantCode: 200},
		{name: "DELETE falls back", reason: "DELETE is idempotent",
			set: valid, accept: prev.Value, method: http.MethodDelete, wantAuths: []string{cur.Value, prev.Value}, wantCode: 200},
		{name: "PUT with body falls back", reason: "PUT is idempotent and its body can be recreated",
			set: valid, accept: prev.Value, method: http.MethodPut, body: func() io.Reader { return strings.NewReader(payload) },
			wantAuths: []string{cur.Value, prev.Value}, wantCode: 200},
		{name: "PUT with one-shot body", reason: "a body that cannot be recreated cannot be resent",
			set: valid, accept: prev.Value, method: http.MethodPut, body: func() io.Reader { return strings.NewReader(payload) }, oneShot: true,
			wantAuths: []string{cur.Value}, wantCode: 401},
		{name: "POST without idempotency key", reason: "a POST may have taken effect; never replay it",
			set: valid, accept: prev.Value, method: http.MethodPost, body: func() io.Reader { return strings.NewReader(payload) },
			wantAuths: []string{cur.Value}, wantCode: 401},
		{name: "POST with idempotency key", reason: "the server deduplicates it",
			set: valid, accept: prev.Value, method: http.MethodPost, body: func() io.Reader { return strings.NewReader(payload) }, idemKey: "req-1",
			wantAuths: []string{cur.Value, prev.Value}, wantCode: 200},
		{name: "POST with idempotency key and one-shot body", reason: "the body cannot be recreated",
			set: valid, accept: prev.Value, method: http.MethodPost, body: func() io.Reader { return strings.NewReader(payload) }, oneShot: true, idemKey: "req-2",
			wantAuths: []string{cur.Value}, wantCode: 401},
		{name: "expired previous", reason: "a key past its grace period is not used",
			set: valid, accept: prev.Value, advance: time.Hour, method: http.MethodGet, wantAuths: []string{cur.Value}, wantCode: 401},
		{name: "no previous", reason: "nothing to fall back to",
			set: Set{Current: cur}, accept: prev.Value, method: http.MethodGet, wantAuths: []string{cur.Value}, wantCode: 401},
		{name: "both rejected", reason: "only one retry",
			set: valid, accept: "neither", method: http.MethodGet, wantAuths: []string{cur.Value, prev.Value}, wantCode: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := &issuer{accept: tt.accept}
			srv := httptest.NewServer(is)
			defer srv.Close()
			c := newClock()
			k := mustNew(t, StaticSource(tt.set), c)
			c.Advance(tt.advance)
			client := &http.Client{Transport: k.Transport(srv.Client().Transport)}

			var body io.Reader
			if tt.body != nil {
				body = tt.body()
				if tt.oneShot {
					body = oneShot{body}
				}
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/v1/jwks", body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.idemKey != "" {
				req.Header.Set("Idempotency-Key", tt.idemKey)
			}
			before := req.Header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				sec.checkErr(err)
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			if resp.StatusCode != tt.wantCode {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tt.wantCode, tt.reason)
			}
			seen := is.requests()
			var auths []string
			for _, r := range seen {
				auths = append(auths, strings.TrimPrefix(r.auth, "Bearer "))
				if tt.body != nil && r.body != payload {
					t.Errorf("request %d carried body %q, want %q", len(auths), r.body, payload)
				}
				if r.idemKey != tt.idemKey {
					t.Errorf("request %d carried Idempotency-Key %q, want %q", len(auths), r.idemKey, tt.idemKey)
				}
			}
			if fmt.Sprint(ids(auths)) != fmt.Sprint(ids(tt.wantAuths)) {
				t.Errorf("keys sent %v, want %v (%s)", ids(auths), ids(tt.wantAuths), tt.reason)
			}
			if len(req.Header) != len(before) || req.Header.Get("Authorization") != "" {
				t.Errorf("Transport changed the caller's request headers: %v", req.Header)
			}
		})
	}
}

// ids maps key values to their ids so failure messages never show a value.
func ids(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = unsaltedID(v)
	}
	return out
}

// fakeRT answers from a list of responses and records the requests.
type fakeRT struct {
	responses []*http.Response
	reqs      []*http.Request
}

func (f *fakeRT) RoundTrip(r *http.Request) (*http.Response, error) {
	f.reqs = append(f.reqs, r)
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	resp := f.responses[0]
	f.responses = f.responses[1:]
	return resp, nil
}

// trackedBody records whether it was read to the end and closed.
type trackedBody struct {
	*strings.Reader
	closed bool
}

func (b *trackedBody) Close() error { b.closed = true; return nil }

func TestTransportDrainsAndClosesTheRejectedResponse(t *testing.T) {
	sec := newSecrets(t)
	k := mustNew(t, StaticSource(Set{Current: sec.key(), Previous: ptr(sec.key())}), newClock())
	first := &trackedBody{Reader: strings.NewReader(`{"errors":[]}`)}
	rt := &fakeRT{responses: []*http.Response{
		{StatusCode: 401, Body: first},
		{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok"))},
	}}
	req := httptest.NewRequest(http.MethodGet, "https://api.example/v1/jwks", nil)
	resp, err := k.Transport(rt).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !first.closed || first.Len() != 0 {
		t.Errorf("status %d; first body closed %v with %d bytes unread", resp.StatusCode, first.closed, first.Len())
	}
	if len(rt.reqs) != 2 || rt.reqs[0] == req || rt.reqs[1] == req || rt.reqs[0] == rt.reqs[1] {
		t.Errorf("Transport must send clones, one per attempt")
	}
}

func TestTransportKeepsFirstAnswerWhenBodyCannotBeRecreated(t *testing.T) {
	sec := newSecrets(t)
	k := mustNew(t, StaticSource(Set{Current: sec.key(), Previous: ptr(sec.key())}), newClock())
	rt := &fakeRT{responses: []*http.Response{{StatusCode: 401, Body: io.NopCloser(strings.NewReader("no"))}}}
	req := httptest.NewRequest(http.MethodPut, "https://api.example/x", strings.NewReader("body"))
	req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
	resp, err := k.Transport(rt).RoundTrip(req)
	if err != nil || resp.StatusCode != 401 || len(rt.reqs) != 1 {
		t.Errorf("RoundTrip = %v, %v after %d requests; want the first 401 untouched", resp, err, len(rt.reqs))
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "no" {
		t.Errorf("the first response body was consumed: %q", b)
	}
}

func TestReplayable(t *testing.T) {
	body := func() io.ReadCloser { return io.NopCloser(bytes.NewReader([]byte("x"))) }
	getBody := func() (io.ReadCloser, error) { return body(), nil }
	tests := []struct {
		name    string
		method  string
		body    io.ReadCloser
		getBody func() (io.ReadCloser, error)
		header  string
		want    bool
	}{
		{name: "GET", method: "GET", want: true},
		{name: "empty method is GET", method: "", want: true},
		{name: "OPTIONS", method: "OPTIONS", want: true},
		{name: "TRACE", method: "TRACE", want: true},
		{name: "PUT with GetBody", method: "PUT", body: body(), getBody: getBody, want: true},
		{name: "PUT with NoBody", method: "PUT", body: http.NoBody, want: true},
		{name: "GET with one-shot body", method: "GET", body: body(), want: false},
		{name: "POST", method: "POST", body: body(), getBody: getBody, want: false},
		{name: "POST without body", method: "POST", want: false},
		{name: "PATCH", method: "PATCH", body: body(), getBody: getBody, want: false},
		{name: "POST with Idempotency-Key", method: "POST", body: body(), getBody: getBody, header: "Idempotency-Key", want: true},
		{name: "PATCH with X-Idempotency-Key", method: "PATCH", body: body(), getBody: getBody, header: "X-Idempotency-Key", want: true},
		{name: "POST with Idempotency-Key and one-shot body", method: "POST", body: body(), header: "Idempotency-Key", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &http.Request{Method: tt.method, Header: http.Header{}, Body: tt.body, GetBody: tt.getBody}
			if tt.header != "" {
				req.Header.Set(tt.header, "k1")
			}
			if got := replayable(req); got != tt.want {
				t.Errorf("replayable() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDo(t *testing.T) {
	sec := newSecrets(t)
	cur, prev := sec.key(), sec.key()
	valid := Set{Current: cur, Previous: expiring(prev, epoch.Add(time.Hour))}
	errDown := errors.New("connection refused")
	errCustom := errors.New("clerk_key_invalid")
	tests := []struct {
		name     string
		reason   string
		set      Set
		advance  time.Duration
		accept   string // the key fn accepts
		failWith error  // what fn returns for other keys
		opts     []DoOption
		cancel   bool
		wantKeys []string
		wantErr  error
	}{
		{name: "current works", reason: "one call", set: valid, accept: cur.Value, failWith: ErrUnauthorized,
			wantKeys: []string{cur.Value}},
		{name: "falls back on ErrUnauthorized", reason: "the default predicate", set: valid, accept: prev.Value, failWith: ErrUnauthorized,
			wantKeys: []string{cur.Value, prev.Value}},
		{name: "other errors are final", reason: "a network error fails with every key", set: valid, accept: prev.Value, failWith: errDown,
			wantKeys: []string{cur.Value}, wantErr: errDown},
		{name: "custom predicate", reason: "callers map their client's errors", set: valid, accept: prev.Value, failWith: errCustom,
			opts:     []DoOption{WithAuthFailure(func(err error) bool { return errors.Is(err, errCustom) })},
			wantKeys: []string{cur.Value, prev.Value}},
		{name: "expired previous", reason: "not used past its grace period", set: valid, advance: 2 * time.Hour, accept: prev.Value, failWith: ErrUnauthorized,
			wantKeys: []string{cur.Value}, wantErr: ErrUnauthorized},
		{name: "no previous", reason: "nothing to fall back to", set: Set{Current: cur}, accept: prev.Value, failWith: ErrUnauthorized,
			wantKeys: []string{cur.Value}, wantErr: ErrUnauthorized},
		{name: "both rejected", reason: "the second error is returned", set: valid, accept: "none", failWith: ErrUnauthorized,
			wantKeys: []string{cur.Value, prev.Value}, wantErr: ErrUnauthorized},
		{name: "context done", reason: "no second call after cancellation", set: valid, accept: prev.Value, failWith: ErrUnauthorized, cancel: true,
			wantKeys: []string{cur.Value}, wantErr: ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			k := mustNew(t, StaticSource(tt.set), c)
			c.Advance(tt.advance)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var used []string
			err := k.Do(ctx, func(ctx context.Context, key Key) error {
				used = append(used, key.Value)
				if tt.cancel {
					cancel()
				}
				if key.Value == tt.accept {
					return nil
				}
				return fmt.Errorf("call with key %s: %w", key, tt.failWith)
			}, tt.opts...)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Do() = %v, want %v (%s)", err, tt.wantErr, tt.reason)
			}
			if fmt.Sprint(ids(used)) != fmt.Sprint(ids(tt.wantKeys)) {
				t.Errorf("keys used %v, want %v (%s)", ids(used), ids(tt.wantKeys), tt.reason)
			}
			sec.checkErr(err)
		})
	}
}
