package keyring

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func getHealth(t *testing.T, k *Keyring) (raw string, h map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	k.HealthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/keyring/health", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	raw = rec.Body.String()
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		t.Fatalf("health is not JSON: %v: %s", err, raw)
	}
	return raw, h
}

func TestHealthHandler(t *testing.T) {
	sec := newSecrets(t)
	c := newClock()
	cur, prev, next := sec.key(), sec.key(), sec.key()
	src := &fakeSource{set: Set{Current: cur, Previous: expiring(prev, epoch.Add(time.Hour)), Next: ptr(next), Version: "42"}}
	k := mustNew(t, src, c)

	raw, h := getHealth(t, k)
	sec.checkNoValue("health", raw)
	ids, _ := h["key_ids"].(map[string]any)
	if h["status"] != "ok" || ids["current"] != cur.ID || ids["previous"] != prev.ID || ids["next"] != next.ID ||
		h["version"] != "42" || h["last_refresh"] != "2026-11-25T23:32:13Z" || h["last_error"] != "" ||
		h["refresh_interval_seconds"] != 30.0 {
		t.Errorf("health = %s", raw)
	}

	// Degraded after a failed refresh; the expired previous key is gone.
	c.Advance(2 * time.Hour)
	src.put(Set{}, errors.New("permission denied reading secret/data/clerk"))
	if err := k.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded")
	}
	raw, h = getHealth(t, k)
	sec.checkNoValue("health", raw)
	ids, _ = h["key_ids"].(map[string]any)
	if h["status"] != "degraded" || ids["current"] != cur.ID || ids["previous"] != "" ||
		h["last_error"] != "refresh: permission denied reading secret/data/clerk" || h["last_refresh"] != "2026-11-25T23:32:13Z" {
		t.Errorf("health after a failed refresh = %s", raw)
	}
}

func TestHealthHandlerMethods(t *testing.T) {
	sec := newSecrets(t)
	k := mustNew(t, StaticSource(Set{Current: sec.key()}), newClock())
	for _, tt := range []struct {
		method   string
		code     int
		wantBody bool
	}{
		{http.MethodGet, 200, true},
		{http.MethodHead, 200, false},
		{http.MethodPost, 405, false},
	} {
		rec := httptest.NewRecorder()
		k.HealthHandler().ServeHTTP(rec, httptest.NewRequest(tt.method, "/", nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != tt.code || tt.wantBody != (len(body) > 0 && tt.code == 200) {
			t.Errorf("%s: status %d, body %q", tt.method, rec.Code, body)
		}
		sec.checkNoValue(tt.method, string(body))
	}
}

func TestHealthFieldNamesAreStable(t *testing.T) {
	// Rotor's verify step decodes key_ids.current; renaming a field breaks
	// every deployed consumer.
	b, err := json.Marshal(Health{})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"status":"","key_ids":{"current":"","previous":"","next":""},"version":"","last_refresh":"0001-01-01T00:00:00Z","last_error":"","refresh_interval_seconds":0}`
	if string(b) != want {
		t.Errorf("Health encodes as\n%s\nwant\n%s", b, want)
	}
}

func TestHealthReportsRefreshInterval(t *testing.T) {
	// Rotor's verify step waits for a consumer at least this long.
	sec := newSecrets(t)
	for _, tt := range []struct {
		opts []Option
		want float64
	}{
		{nil, DefaultInterval.Seconds()},
		{[]Option{WithInterval(100 * time.Millisecond)}, 0.1},
		{[]Option{WithInterval(2 * time.Minute)}, 120},
	} {
		k, err := New(t.Context(), StaticSource(Set{Current: sec.key()}), tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, h := getHealth(t, k)
		if h["refresh_interval_seconds"] != tt.want {
			t.Errorf("refresh_interval_seconds = %v, want %v", h["refresh_interval_seconds"], tt.want)
		}
	}
}
