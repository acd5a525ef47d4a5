// Package metrics exposes rotor's Prometheus metrics.
//
// # Metrics
//
//	rotor_rotations_total{secret,result}            result: success, failure, rolled_back
//	rotor_rotation_step_duration_seconds{secret,step}
//	rotor_verification_failures_total{secret}
//	rotor_rollbacks_total{secret}
//	rotor_key_age_seconds{secret}                   age of the current key
//	rotor_rotation_interval_seconds{secret}         the configured interval
//	rotor_next_rotation_seconds{secret}             until the next rotation is due (negative: overdue)
//	rotor_previous_expires_seconds{secret}          until previous expires (absent without previous)
//	rotor_last_success_timestamp_seconds{secret}    when the last rotation finished
//	rotor_audit_chain_valid                          1 when the last audit verification passed, else 0
//	rotor_api_denied_total{outcome}                 refused API requests (401, 403, 429); outcome:
//	                                                recorded, coalesced (counted in a summary record),
//	                                                rate_limited (answered 429)
//
// Counters are fed by the audit events the engine records (wrap its
// recorder with [Metrics.Recorder]) and by step timing ([Metrics.OnStep]),
// so API, daemon and CLI rotations are all counted the same way. Gauges
// are computed at scrape time from the store, so every replica reports the
// same truth. Refused API requests are counted one by one ([Metrics.Denied])
// even when the audit log sums them up. Values never appear in metrics:
// labels are secret names.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// SecretStatus is what the gauges are computed from.
type SecretStatus struct {
	Name          string
	Current       *store.Key
	Previous      *store.Key
	LastRotatedAt time.Time
	NextRotation  time.Time
	Interval      time.Duration
}

// StatusFunc loads the status of every managed secret.
type StatusFunc func(ctx context.Context) ([]SecretStatus, error)

// Metrics holds rotor's collectors in their own registry.
type Metrics struct {
	reg       *prometheus.Registry
	rotations *prometheus.CounterVec
	steps     *prometheus.HistogramVec
	verifyErr *prometheus.CounterVec
	rollbacks *prometheus.CounterVec
	auditOK   prometheus.Gauge
	denied    *prometheus.CounterVec

	mu       sync.Mutex
	lastStep map[string]time.Time
	now      func() time.Time
}

// New registers rotor's metrics; status feeds the gauges at scrape time.
func New(status StatusFunc, now func() time.Time, log *slog.Logger) *Metrics {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_rotations_total", Help: "Rotations by secret and result (success, failure, rolled_back).",
		}, []string{"secret", "result"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rotor_rotation_step_duration_seconds", Help: "Duration of each rotation step.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 15, 60, 300},
		}, []string{"secret", "step"}),
		verifyErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_verification_failures_total", Help: "Reload or verification failures after promote.",
		}, []string{"secret"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_rollbacks_total", Help: "Rollbacks, automatic and requested.",
		}, []string{"secret"}),
		auditOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rotor_audit_chain_valid", Help: "1 when the last verification of the audit hash chain passed, else 0.",
		}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_api_denied_total", Help: "Refused API requests by how the audit log kept them (recorded, coalesced, rate_limited).",
		}, []string{"outcome"}),
		lastStep: map[string]time.Time{},
		now:      now,
	}
	m.reg.MustRegister(m.rotations, m.steps, m.verifyErr, m.rollbacks, m.auditOK, m.denied, &gauges{status: status, now: now, log: log})
	return m
}

// Register adds c to the metrics served by Handler: collectors of what
// other packages own (the audit sinks).
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Recorder wraps next so that the events it records also feed the counters.
func (m *Metrics) Recorder(next rotation.Recorder) rotation.Recorder {
	return recorderFunc(func(ctx context.Context, e rotation.Event) error {
		m.observe(e)
		if next == nil {
			return nil
		}
		return next.Record(ctx, e)
	})
}

type recorderFunc func(context.Context, rotation.Event) error

func (f recorderFunc) Record(ctx context.Context, e rotation.Event) error { return f(ctx, e) }

func (m *Metrics) observe(e rotation.Event) {
	switch {
	case e.Action == "rotate.start" || e.Action == "rotate.resume":
		m.mu.Lock()
		m.lastStep[e.Secret] = m.now()
		m.mu.Unlock()
	case e.Action == "rotate.finish" && e.Status == rotation.StatusSucceeded:
		m.rotations.WithLabelValues(e.Secret, "success").Inc()
	case (e.Action == "rotate.verify" || e.Action == "rotate.reload") && e.Status == rotation.StatusFailed:
		m.verifyErr.WithLabelValues(e.Secret).Inc()
		m.rotations.WithLabelValues(e.Secret, "rolled_back").Inc()
	case strings.HasPrefix(e.Action, "rotate.") && e.Status == rotation.StatusFailed:
		m.rotations.WithLabelValues(e.Secret, "failure").Inc()
	case e.Action == "rollback.promote" && e.Status == rotation.StatusSucceeded:
		// Previous is current again (what a rollback is, whatever its
		// reload and verify do next).
		m.rollbacks.WithLabelValues(e.Secret).Inc()
	}
}

// AuditVerified records the outcome of an audit chain verification.
func (m *Metrics) AuditVerified(err error) {
	if err != nil {
		m.auditOK.Set(0)
		return
	}
	m.auditOK.Set(1)
}

// Denied counts a refused API request; outcome is its
// server.RequestInfo.Denial. Chain it into the server's observer.
func (m *Metrics) Denied(outcome string) {
	m.denied.WithLabelValues(outcome).Inc()
}

// OnStep records the duration of the step that just completed; chain it
// into the engine's OnStep.
func (m *Metrics) OnStep(name string, step store.Step) {
	now := m.now()
	m.mu.Lock()
	start, ok := m.lastStep[name]
	m.lastStep[name] = now
	m.mu.Unlock()
	if ok {
		m.steps.WithLabelValues(name, string(step)).Observe(now.Sub(start).Seconds())
	}
}

// gauges computes the per-secret gauges at scrape time.
type gauges struct {
	status StatusFunc
	now    func() time.Time
	log    *slog.Logger
}

var (
	keyAge       = prometheus.NewDesc("rotor_key_age_seconds", "Age of the current key.", []string{"secret"}, nil)
	interval     = prometheus.NewDesc("rotor_rotation_interval_seconds", "Configured rotation interval.", []string{"secret"}, nil)
	nextRotation = prometheus.NewDesc("rotor_next_rotation_seconds", "Seconds until the next rotation is due (negative when overdue).", []string{"secret"}, nil)
	prevExpires  = prometheus.NewDesc("rotor_previous_expires_seconds", "Seconds until the previous key expires.", []string{"secret"}, nil)
	lastSuccess  = prometheus.NewDesc("rotor_last_success_timestamp_seconds", "When the last rotation finished.", []string{"secret"}, nil)
)

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{keyAge, interval, nextRotation, prevExpires, lastSuccess} {
		ch <- d
	}
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sts, err := g.status(ctx)
	if err != nil {
		g.log.Warn("metrics: cannot load secret status", "err", err)
		return
	}
	now := g.now()
	for _, s := range sts {
		if s.Interval > 0 {
			ch <- prometheus.MustNewConstMetric(interval, prometheus.GaugeValue, s.Interval.Seconds(), s.Name)
		}
		if s.Current == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(keyAge, prometheus.GaugeValue, now.Sub(s.Current.CreatedAt).Seconds(), s.Name)
		if !s.NextRotation.IsZero() {
			ch <- prometheus.MustNewConstMetric(nextRotation, prometheus.GaugeValue, s.NextRotation.Sub(now).Seconds(), s.Name)
		}
		if s.Previous != nil && !s.Previous.ExpiresAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(prevExpires, prometheus.GaugeValue, s.Previous.ExpiresAt.Sub(now).Seconds(), s.Name)
		}
		if !s.LastRotatedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastSuccess, prometheus.GaugeValue, float64(s.LastRotatedAt.Unix()), s.Name)
		}
	}
}
