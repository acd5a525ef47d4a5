package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/rotor-dev/rotor/audit"
)

// OTLPOptions say where an [OTLP] sink sends records.
type OTLPOptions struct {
	// Endpoint is the URL of the OTLP/HTTP logs receiver, e.g.
	// https://collector.example.com:4318/v1/logs; without a path, the
	// specification's /v1/logs is used. Empty: the exporter's standard
	// environment (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
	// OTEL_EXPORTER_OTLP_ENDPOINT), else https://localhost:4318/v1/logs.
	// Headers (OTEL_EXPORTER_OTLP_HEADERS), TLS certificates and
	// compression come from that environment too, so that a collector's
	// credentials stay out of rotor.yaml.
	Endpoint string
	// ServiceName is the service.name resource attribute; default "rotor".
	ServiceName string
}

// OTLP ships records as OpenTelemetry log records over OTLP/HTTP
// (protobuf), with the official Go SDK (go.opentelemetry.io/otel/sdk/log
// and its otlploghttp exporter).
//
// Each record is one log record: its timestamp is the record's, its
// severity INFO (WARN for failed and denied events), its event name
// "rotor.audit", its body the record as JSON (as `rotor audit tail -o
// json` prints it), and its attributes the fields a collector filters on:
// rotor.audit.seq, .hash, .prev_hash, .initiator, .action, .secret,
// .key_id and .status. The resource carries service.name and host.name.
//
// Ship exports synchronously and returns the receiver's verdict, so the
// [audit.Shipper] that feeds the sink owns buffering and retries: the
// exporter's own retries are off. One Ship is one OTLP request.
type OTLP struct {
	provider *sdklog.LoggerProvider
	logger   otellog.Logger
	exporter *otlploghttp.Exporter
	took     *taker

	mu sync.Mutex // serialises Ship: took collects one call's records
}

var _ audit.Sink = (*OTLP)(nil)

// otlpScope is the instrumentation scope of the records.
const otlpScope = "github.com/rotor-dev/rotor/audit/sinks"

// NewOTLP returns the sink o describes. It does not connect: the first
// Ship does.
func NewOTLP(ctx context.Context, o OTLPOptions) (*OTLP, error) {
	opts := []otlploghttp.Option{
		// The Shipper retries with backoff and counts failures; retries
		// inside one Ship would hide them.
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("otlp sink: invalid endpoint %q (want e.g. https://collector:4318/v1/logs)", o.Endpoint)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/v1/logs"
		}
		opts = append(opts, otlploghttp.WithEndpointURL(u.String()))
	}
	exp, err := otlploghttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp sink: %w", err)
	}
	name := o.ServiceName
	if name == "" {
		name = "rotor"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if host, err := os.Hostname(); err == nil {
		attrs = append(attrs, attribute.String("host.name", host))
	}
	t := &taker{}
	p := sdklog.NewLoggerProvider(sdklog.WithResource(resource.NewSchemaless(attrs...)), sdklog.WithProcessor(t))
	return &OTLP{provider: p, logger: p.Logger(otlpScope), exporter: exp, took: t}, nil
}

// Ship implements [audit.Sink]: one OTLP export request for recs.
func (s *OTLP) Ship(ctx context.Context, recs []audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.took.recs = s.took.recs[:0]
	now := time.Now()
	for _, r := range recs {
		lr, err := logRecord(r, now)
		if err != nil {
			return fmt.Errorf("otlp sink: %w", err)
		}
		s.logger.Emit(ctx, lr)
	}
	if len(s.took.recs) != len(recs) {
		return fmt.Errorf("otlp sink: %d of %d records reached the exporter (the logger provider is shut down)", len(s.took.recs), len(recs))
	}
	if err := s.exporter.Export(ctx, s.took.recs); err != nil {
		return fmt.Errorf("otlp sink: %w", err)
	}
	return nil
}

// ProbeEventName is the event name of the one log record [OTLP.Probe]
// sends; it is not an audit record, and carries none of the
// rotor.audit.* attributes.
const ProbeEventName = "rotor.doctor.probe"

// Probe implements [Prober]: it exports one log record with the event
// name [ProbeEventName] and the body "rotor doctor: connectivity check",
// through the same exporter, endpoint, headers and TLS settings as the
// audit records, and returns the receiver's verdict. (An export of zero
// records sends no request, so a real record is the only end-to-end
// check.) Collectors that route on the event name see it as distinct.
func (s *OTLP) Probe(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.took.recs = s.took.recs[:0]
	var lr otellog.Record
	now := time.Now()
	lr.SetEventName(ProbeEventName)
	lr.SetTimestamp(now)
	lr.SetObservedTimestamp(now)
	lr.SetSeverity(otellog.SeverityInfo)
	lr.SetSeverityText("INFO")
	lr.SetBody(attribute.StringValue("rotor doctor: connectivity check"))
	s.logger.Emit(ctx, lr)
	if len(s.took.recs) != 1 {
		return errors.New("otlp sink: the probe did not reach the exporter (the logger provider is shut down)")
	}
	if err := s.exporter.Export(ctx, s.took.recs); err != nil {
		return fmt.Errorf("otlp sink: %w", err)
	}
	return nil
}

// logRecord maps r to a log record (see [OTLP]).
func logRecord(r audit.Record, observed time.Time) (otellog.Record, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return otellog.Record{}, err
	}
	var lr otellog.Record
	lr.SetEventName("rotor.audit")
	lr.SetTimestamp(r.Timestamp)
	lr.SetObservedTimestamp(observed)
	lr.SetSeverity(otellog.SeverityInfo)
	lr.SetSeverityText("INFO")
	if r.Status == audit.StatusFailed || r.Status == audit.StatusDenied {
		lr.SetSeverity(otellog.SeverityWarn)
		lr.SetSeverityText("WARN")
	}
	lr.SetBody(attribute.StringValue(string(body)))
	lr.AddAttributes(
		attribute.Int64("rotor.audit.seq", int64(r.Seq)),
		attribute.String("rotor.audit.hash", r.Hash),
		attribute.String("rotor.audit.prev_hash", r.PrevHash),
		attribute.String("rotor.audit.initiator", r.Initiator),
		attribute.String("rotor.audit.action", r.Action),
		attribute.String("rotor.audit.secret", r.Secret),
		attribute.String("rotor.audit.key_id", r.KeyID),
		attribute.String("rotor.audit.status", r.Status),
	)
	return lr, nil
}

// Close shuts the logger provider and the exporter down.
func (s *OTLP) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.provider.Shutdown(ctx), s.exporter.Shutdown(ctx))
}

// taker is the logger provider's processor: it keeps what is emitted,
// with the resource and scope the SDK filled in, for Ship to export
// itself and so learn whether the receiver took it. (The SDK's own
// processors export in the background or report errors to a global
// handler; a Sink must return them.)
type taker struct {
	recs []sdklog.Record // guarded by OTLP.mu
}

// Enabled implements sdklog.Processor.
func (t *taker) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

// OnEmit implements sdklog.Processor.
func (t *taker) OnEmit(_ context.Context, r *sdklog.Record) error {
	t.recs = append(t.recs, r.Clone())
	return nil
}

// Shutdown implements sdklog.Processor.
func (t *taker) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdklog.Processor.
func (t *taker) ForceFlush(context.Context) error { return nil }
