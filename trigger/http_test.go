package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestHTTPReloadSendsKeyIDsAndToken(t *testing.T) {
	var got map[string]string
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got)
	}))
	defer srv.Close()
	h := &HTTPReload{URL: srv.URL + "/deploy?token=abc", Token: "hook-token"}
	if err := h.Reload(t.Context(), secret()); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer hook-token" || got["key_id"] != "aaaa" || got["previous_key_id"] != "bbbb" || got["secret"] != "demo" {
		t.Fatalf("request: auth %q body %v", auth, got)
	}
	for _, v := range got {
		if strings.Contains(v, "secret-value") {
			t.Fatal("reload request carries a secret value")
		}
	}
}

func TestHTTPReloadFailureRedactsQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	err := (&HTTPReload{URL: srv.URL + "/hook?token=s3cr3t"}).Reload(t.Context(), secret())
	if err == nil || !strings.Contains(err.Error(), "status 500") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err = %v, want status 500 without the query", err)
	}
}

// health serves a consumer health answer reporting current, switchable.
func health(current *atomic.Value) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"status":"ok","key_ids":{"current":%q}}`, current.Load())
	}))
}

func TestHTTPCheckWaitsForKeyID(t *testing.T) {
	var cur atomic.Value
	cur.Store("old")
	calls := atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 3 {
			cur.Store("aaaa") // the consumer adopts the new key on the third poll
		}
		fmt.Fprintf(w, `{"key_ids":{"current":%q}}`, cur.Load())
	}))
	defer srv.Close()
	c := &HTTPCheck{URL: srv.URL, RequireKeyID: true, Interval: time.Millisecond, Timeout: 10 * time.Second}
	if err := c.Verify(t.Context(), secret()); err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 3 {
		t.Fatalf("verify passed after %d polls, before the consumer adopted the key", calls.Load())
	}
}

func TestHTTPCheckTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	err := (&HTTPCheck{URL: srv.URL, Interval: time.Millisecond, Timeout: 50 * time.Millisecond}).Verify(t.Context(), secret())
	if err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("err = %v, want a timeout naming status 503", err)
	}
}

func TestConsumersVerifyAndInUse(t *testing.T) {
	var a, b atomic.Value
	a.Store("aaaa")
	b.Store("bbbb")
	sa, sb := health(&a), health(&b)
	defer sa.Close()
	defer sb.Close()
	c := &Consumers{URLs: []string{sa.URL, sb.URL}, Interval: time.Millisecond, Timeout: 50 * time.Millisecond}
	if err := c.Verify(t.Context(), secret()); err == nil || !strings.Contains(err.Error(), sb.URL) {
		t.Fatalf("verify with one consumer on the old key = %v, want an error naming it", err)
	}
	users, _ := c.InUse(t.Context(), "bbbb")
	if len(users) != 1 || users[0] != sb.URL {
		t.Fatalf("InUse(bbbb) = %v, want %s", users, sb.URL)
	}
	b.Store("aaaa")
	if err := c.Verify(t.Context(), secret()); err != nil {
		t.Fatal(err)
	}
	if users, _ := c.InUse(t.Context(), "bbbb"); len(users) != 0 {
		t.Fatalf("InUse after adoption = %v", users)
	}
	sb.Close()
	if users, _ := c.InUse(t.Context(), "bbbb"); len(users) != 1 {
		t.Fatalf("an unreachable consumer must count as in use, got %v", users)
	}
}

func TestSignalReload(t *testing.T) {
	got := make(chan os.Signal, 1)
	signal.Notify(got, syscall.SIGUSR2)
	defer signal.Stop(got)
	pidFile := t.TempDir() + "/app.pid"
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	if err := (&Signal{PIDFile: pidFile, Sig: syscall.SIGUSR2}).Reload(t.Context(), secret()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("signal not delivered")
	}
	os.WriteFile(pidFile, []byte("nonsense"), 0o600)
	if err := (&Signal{PIDFile: pidFile, Sig: syscall.SIGUSR2}).Reload(t.Context(), secret()); err == nil {
		t.Fatal("a pid file without a pid was accepted")
	}
	if err := (&Signal{PIDFile: pidFile + ".missing"}).Reload(t.Context(), secret()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing pid file: %v", err)
	}
}

// fakeClock is a clock that moves only when Verify waits.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) wait(_ context.Context, d time.Duration) error {
	c.t = c.t.Add(d)
	return nil
}

// TestConsumersWaitForReportedRefreshInterval: a consumer polling every
// 30s adopts the new key 35s after promote. With consumer_timeout 30s,
// rotor still waits for it when it reports its interval (30s + the
// margin), and gives up at 30s when it does not.
func TestConsumersWaitForReportedRefreshInterval(t *testing.T) {
	for _, tt := range []struct {
		name     string
		report   string // refresh_interval_seconds in the answer, or none
		wantPass bool
	}{
		{"reported", `,"refresh_interval_seconds":30`, true},
		{"not reported (older consumer)", ``, false},
		{"reported shorter than the timeout", `,"refresh_interval_seconds":5`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
			adoptAt := clock.t.Add(35 * time.Second)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cur := "old"
				if !clock.now().Before(adoptAt) {
					cur = "aaaa"
				}
				fmt.Fprintf(w, `{"status":"ok","key_ids":{"current":%q}%s}`, cur, tt.report)
			}))
			defer srv.Close()
			c := &Consumers{URLs: []string{srv.URL}, Timeout: 30 * time.Second, Interval: time.Second, now: clock.now, wait: clock.wait}
			err := c.Verify(t.Context(), secret())
			if tt.wantPass != (err == nil) {
				t.Fatalf("Verify = %v at +%s, want pass %v", err, clock.t.Sub(adoptAt.Add(-35*time.Second)), tt.wantPass)
			}
			if err != nil && !strings.Contains(err.Error(), "after 30s") {
				t.Errorf("error %q does not say how long rotor waited", err)
			}
		})
	}
}

func TestConsumersReportedIntervalIsCapped(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
	start := clock.t
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"key_ids":{"current":"old"},"refresh_interval_seconds":86400}`)
	}))
	defer srv.Close()
	c := &Consumers{URLs: []string{srv.URL}, Timeout: time.Minute, Interval: 10 * time.Second, now: clock.now, wait: clock.wait}
	err := c.Verify(t.Context(), secret())
	if err == nil || !strings.Contains(err.Error(), "reported refresh interval of 10m0s") {
		t.Fatalf("Verify = %v, want a failure naming the capped interval", err)
	}
	if waited := clock.t.Sub(start); waited != maxReportedInterval+AdoptionMargin {
		t.Fatalf("waited %s, want the cap %s", waited, maxReportedInterval+AdoptionMargin)
	}
}
