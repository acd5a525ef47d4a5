package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// TestCountersFollowTheEngine rotates through a real engine whose recorder
// is wrapped by the metrics: a success, a verification failure that rolls
// back, and a rollback must show up in the counters.
func TestCountersFollowTheEngine(t *testing.T) {
	clock := rotationtest.NewClock()
	st := memstore.New()
	sec := rotation.Secret{Name: "demo", Provider: rotationtest.NewProvider(), Every: 720 * time.Hour, Grace: 24 * time.Hour, Lease: time.Minute}
	m := New(func(context.Context) ([]SecretStatus, error) { return nil, nil }, clock.Now, nil)
	eng := &rotation.Engine{Store: st, Salt: []byte("s"), Audit: m.Recorder(&rotationtest.Recorder{}), Now: clock.Now,
		OnStep: func(name string, step store.Step, _ *store.Secret) { clock.Advance(time.Second); m.OnStep(name, step) }}
	ctx := t.Context()
	for range 2 {
		if _, err := eng.Rotate(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	failing := sec
	failing.Verify = rotationtest.HookFunc(func(context.Context, *store.Secret) error { return io.ErrUnexpectedEOF })
	if _, err := eng.Rotate(ctx, failing); err == nil {
		t.Fatal("verify failure did not fail the rotation")
	}
	if got := testutil.ToFloat64(m.rotations.WithLabelValues("demo", "success")); got != 2 {
		t.Errorf("successes = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.rotations.WithLabelValues("demo", "rolled_back")); got != 1 {
		t.Errorf("rolled back = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.verifyErr.WithLabelValues("demo")); got != 1 {
		t.Errorf("verification failures = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.rollbacks.WithLabelValues("demo")); got != 1 {
		t.Errorf("rollbacks = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.steps); n == 0 {
		t.Error("no step durations observed")
	}
}

func TestGaugesAndExposition(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	status := func(context.Context) ([]SecretStatus, error) {
		return []SecretStatus{{
			Name:          "clerk-secret-key",
			Current:       &store.Key{Value: "sk_test_never_exported", ID: "aaaa", CreatedAt: now.Add(-48 * time.Hour)},
			Previous:      &store.Key{Value: "sk_test_old_value", ID: "bbbb", ExpiresAt: now.Add(6 * time.Hour)},
			LastRotatedAt: now.Add(-48 * time.Hour),
			NextRotation:  now.Add(-time.Hour),
			Interval:      720 * time.Hour,
		}}, nil
	}
	m := New(status, func() time.Time { return now }, nil)
	m.AuditVerified(nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`rotor_key_age_seconds{secret="clerk-secret-key"} 172800`,
		`rotor_rotation_interval_seconds{secret="clerk-secret-key"} 2.592e+06`,
		`rotor_next_rotation_seconds{secret="clerk-secret-key"} -3600`,
		`rotor_previous_expires_seconds{secret="clerk-secret-key"} 21600`,
		`rotor_last_success_timestamp_seconds{secret="clerk-secret-key"} 1.7954352e+09`,
		"rotor_audit_chain_valid 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s\n%s", want, body)
		}
	}
	if strings.Contains(body, "never_exported") || strings.Contains(body, "old_value") {
		t.Fatal("a key value appears in the metrics")
	}
}

// TestDeniedCountsEveryRefusal: refusals are counted by outcome, each one,
// and exposed.
func TestDeniedCountsEveryRefusal(t *testing.T) {
	m := New(func(context.Context) ([]SecretStatus, error) { return nil, nil }, nil, nil)
	for _, o := range []string{"recorded", "coalesced", "coalesced", "rate_limited"} {
		m.Denied(o)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`rotor_api_denied_total{outcome="recorded"} 1`, `rotor_api_denied_total{outcome="coalesced"} 2`, `rotor_api_denied_total{outcome="rate_limited"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
}
