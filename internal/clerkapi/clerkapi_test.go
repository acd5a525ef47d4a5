package clerkapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func noWait(context.Context, time.Duration) error { return nil }

func TestNonIdempotentCallsAreNotRetriedOnAmbiguousFailures(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		reason     string
		status     int
		idempotent bool
		wantCalls  int32
	}{
		"503 POST": {reason: "the server may have rotated: never send it again", status: 503, wantCalls: 1},
		"500 POST": {reason: "same", status: 500, wantCalls: 1},
		"429 POST": {reason: "a rate limit means nothing was done", status: 429, wantCalls: 3},
		"503 GET":  {reason: "reads are safe to repeat", status: 503, idempotent: true, wantCalls: 3},
		"404 GET":  {reason: "a definite answer", status: 404, idempotent: true, wantCalls: 1},
		"401 GET":  {reason: "a definite answer", status: 401, idempotent: true, wantCalls: 1},
		"422 POST": {reason: "a definite answer", status: 422, wantCalls: 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(tt.status)
			}))
			t.Cleanup(srv.Close)
			c, err := New(Config{URL: srv.URL, MaxAttempts: 3, Wait: noWait})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Do(t.Context(), Call{Method: http.MethodPost, Path: "/x", Key: "k", Idempotent: tt.idempotent}, nil)
			if StatusOf(err) != tt.status {
				t.Fatalf("Do = %v, want status %d", err, tt.status)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d: %s", got, tt.wantCalls, tt.reason)
			}
		})
	}
}

func TestRefusedConnectionIsRetriedEvenForPOST(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	var waits atomic.Int32
	c, err := New(Config{URL: url, MaxAttempts: 3, Wait: func(context.Context, time.Duration) error { waits.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Do(t.Context(), Call{Method: http.MethodPost, Path: "/x", Key: "k"}, nil)
	if err == nil || StatusOf(err) != 0 || waits.Load() != 2 {
		t.Fatalf("Do = %v after %d waits, want a transport error after 2 waits", err, waits.Load())
	}
	if strings.Contains(err.Error(), url) {
		t.Errorf("error repeats the URL: %v", err)
	}
}

func TestLongRetryAfterEndsTheCall(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	c, _ := New(Config{URL: srv.URL, Wait: func(context.Context, time.Duration) error {
		t.Error("waited for an hour-long Retry-After")
		return nil
	}})
	err := c.Do(t.Context(), Call{Method: http.MethodGet, Path: "/x", Key: "k", Idempotent: true}, nil)
	var e *Error
	if !errors.As(err, &e) || e.RetryAfter != time.Hour || e.Attempts != 1 {
		t.Fatalf("Do = %#v", err)
	}
}

func TestCancelledWaitStops(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	c, _ := New(Config{URL: srv.URL, Wait: func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleep(ctx, time.Hour)
	}})
	err := c.Do(ctx, Call{Method: http.MethodGet, Path: "/x", Key: "k", Idempotent: true}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
}

func TestErrorTextScrubsTheKey(t *testing.T) {
	t.Parallel()
	const key = "sk_test_abcdefghijklmnopqrstuvwxyz0123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
		}
		w.Header().Set("Clerk-Trace-Id", "tr_1")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"clerk_key_invalid","message":"key ` + key + ` is\ninvalid"}]}`))
	}))
	t.Cleanup(srv.Close)
	c, _ := New(Config{URL: srv.URL + "/v1/"})
	err := c.Do(t.Context(), Call{Method: http.MethodGet, Path: "/jwks", Key: key, Idempotent: true}, nil)
	want := "clerk api: GET /v1/jwks: 401 Unauthorized (clerk_key_invalid: key [redacted] is invalid) [trace tr_1]"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %q\nwant     %q", err, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in   string
		want time.Duration
	}{
		"seconds":   {"7", 7 * time.Second},
		"http date": {now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		"past date": {now.Add(-time.Minute).Format(http.TimeFormat), 0},
		"negative":  {"-3", 0},
		"garbage":   {"soon", 0},
		"absent":    {"", 0},
	}
	for name, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("%s: parseRetryAfter(%q) = %s, want %s", name, tt.in, got, tt.want)
		}
	}
}

func TestDefaultBackoffIsBounded(t *testing.T) {
	t.Parallel()
	for n := 1; n < 40; n++ {
		if d := defaultBackoff(n); d <= 0 || d > 8*time.Second {
			t.Fatalf("defaultBackoff(%d) = %s", n, d)
		}
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"ftp://x", "api.clerk.com", "https://"} {
		if _, err := New(Config{URL: u}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	c, err := New(Config{})
	if err != nil || c.URL() != DefaultURL {
		t.Fatalf("New(default) = %v, %v", c, err)
	}
}

// TestNotActedOn: only a 4xx answer or a refused connection prove that a
// call changed nothing.
func TestNotActedOn(t *testing.T) {
	for name, tt := range map[string]struct {
		err  error
		want bool
	}{
		"401":         {&Error{StatusCode: 401}, true},
		"429":         {&Error{StatusCode: 429}, true},
		"503":         {&Error{StatusCode: 503}, false},
		"refused":     {&Error{Err: syscall.ECONNREFUSED}, true},
		"timeout":     {&Error{Err: context.DeadlineExceeded}, false},
		"not clerk's": {errors.New("x"), false},
	} {
		if got := NotActedOn(tt.err); got != tt.want {
			t.Errorf("%s: NotActedOn = %v, want %v", name, got, tt.want)
		}
	}
}
