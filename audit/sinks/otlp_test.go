package sinks_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/sinks"
	"github.com/rotor-dev/rotor/internal/otlpfake"
)

func newOTLP(t *testing.T, endpoint string) *sinks.OTLP {
	t.Helper()
	s, err := sinks.NewOTLP(t.Context(), sinks.OTLPOptions{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// TestOTLPLogRecords ships records to a receiver that decodes the OTLP/HTTP
// request with the official protobuf types, and checks each log record as
// the sink documents it, in the terms of the OpenTelemetry logs data model
// (https://opentelemetry.io/docs/specs/otel/logs/data-model/): Timestamp,
// SeverityNumber/Text, EventName, Body, Attributes, Resource and scope.
func TestOTLPLogRecords(t *testing.T) {
	rcv := otlpfake.Start(t)
	// Without a path the sink posts to the specification's /v1/logs.
	s := newOTLP(t, strings.TrimSuffix(rcv.URL(), "/v1/logs"))
	recs := records(3)
	recs[0].KeyID = "0123456789abcdef"
	if err := s.Ship(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if n := rcv.Requests(); n != 1 {
		t.Errorf("one Ship made %d requests, want one", n)
	}
	logs := rcv.Logs()
	if len(logs) != len(recs) {
		t.Fatalf("the receiver holds %d records, want %d", len(logs), len(recs))
	}
	for i, l := range logs {
		want := recs[i]
		lr := l.Record
		sev, text := logspb.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
		if want.Status == audit.StatusDenied {
			sev, text = logspb.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
		}
		if lr.GetSeverityNumber() != sev || lr.GetSeverityText() != text {
			t.Errorf("record %d: severity %v %q, want %v %q", i, lr.GetSeverityNumber(), lr.GetSeverityText(), sev, text)
		}
		if got := time.Unix(0, int64(lr.GetTimeUnixNano())); !got.Equal(want.Timestamp) {
			t.Errorf("record %d: time %v, want the record's %v", i, got, want.Timestamp)
		}
		if lr.GetObservedTimeUnixNano() == 0 || lr.GetEventName() != "rotor.audit" {
			t.Errorf("record %d: observed time %d, event name %q", i, lr.GetObservedTimeUnixNano(), lr.GetEventName())
		}
		var body audit.Record
		if err := json.Unmarshal([]byte(lr.GetBody().GetStringValue()), &body); err != nil || body != want {
			t.Errorf("record %d: body %q (%v), want the record as JSON", i, lr.GetBody().GetStringValue(), err)
		}
		for key, v := range map[string]string{
			"rotor.audit.seq": strconv.FormatUint(want.Seq, 10), "rotor.audit.hash": want.Hash, "rotor.audit.prev_hash": want.PrevHash,
			"rotor.audit.initiator": want.Initiator, "rotor.audit.action": want.Action, "rotor.audit.secret": want.Secret,
			"rotor.audit.key_id": want.KeyID, "rotor.audit.status": want.Status,
		} {
			if got, ok := l.Attr(key); !ok || got != v {
				t.Errorf("record %d: attribute %s = %q (%v), want %q", i, key, got, ok, v)
			}
		}
		if l.Resource["service.name"] != "rotor" || l.Resource["host.name"] == "" {
			t.Errorf("record %d: resource %v, want service.name rotor and host.name", i, l.Resource)
		}
		if l.Scope != "github.com/rotor-dev/rotor/audit/sinks" {
			t.Errorf("record %d: scope %q", i, l.Scope)
		}
	}
}

// TestOTLPRefused: a receiver that answers with a failure status (503, a
// retryable code in the specification) makes Ship fail, so that the
// Shipper retries; once it accepts again, Ship succeeds.
func TestOTLPRefused(t *testing.T) {
	rcv := otlpfake.Start(t)
	s := newOTLP(t, rcv.URL())
	rcv.Fail(503)
	if err := s.Ship(t.Context(), records(2)); err == nil || !strings.Contains(err.Error(), "told to fail") {
		t.Fatalf("Ship to a receiver answering 503 = %v, want an error with the receiver's message", err)
	}
	if len(rcv.Logs()) != 0 {
		t.Fatal("the receiver kept records it refused")
	}
	rcv.Fail(0)
	if err := s.Ship(t.Context(), records(2)); err != nil {
		t.Fatal(err)
	}
	if len(rcv.Logs()) != 2 {
		t.Fatalf("the receiver holds %d records, want 2", len(rcv.Logs()))
	}
}

// reporting passes Ship calls to a sink and reports each outcome.
type reporting struct {
	audit.Sink
	outcomes chan error
}

func (r *reporting) Ship(ctx context.Context, recs []audit.Record) error {
	err := r.Sink.Ship(ctx, recs)
	r.outcomes <- err
	return err
}

// TestOTLPReceiverDownThenBack: behind a Shipper, records offered while
// the receiver is down (connection refused) wait in the buffer, the sink
// shows down with the error in its state, and once the receiver is back
// every record arrives, once and in order.
func TestOTLPReceiverDownThenBack(t *testing.T) {
	rcv := otlpfake.Start(t)
	if err := rcv.SetDown(true); err != nil {
		t.Fatal(err)
	}
	sink := &reporting{Sink: newOTLP(t, rcv.URL()), outcomes: make(chan error, 1000)}
	sh := audit.NewShipper("otlp", sink, audit.ShipperOptions{Batch: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	recs := records(7)
	sh.Offer(recs) // returns at once, receiver down or not
	// The Shipper records an outcome before it ships again: after the
	// second attempt its state shows the first.
	for range 2 {
		if err := <-sink.outcomes; err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Ship with the receiver down = %v, want connection refused", err)
		}
	}
	if st := sh.State(); st.Up || st.Pending != len(recs) || st.Dropped != 0 || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("state with the receiver down = %+v, want down, all 7 pending, none dropped", st)
	}
	if err := rcv.SetDown(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := rcv.Wait(ctx, len(recs)); err != nil {
		t.Fatal(err)
	}
	if err := sh.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := sh.State(); !st.Up || st.Shipped != uint64(len(recs)) || st.Pending != 0 || st.Dropped != 0 {
		t.Fatalf("state after the receiver came back = %+v", st)
	}
	logs := rcv.Logs()
	if len(logs) != len(recs) {
		t.Fatalf("the receiver holds %d records, want each of the %d once", len(logs), len(recs))
	}
	for i, l := range logs {
		if seq, _ := l.Attr("rotor.audit.seq"); seq != strconv.Itoa(i+1) {
			t.Fatalf("record %d has seq %s: not in order", i, seq)
		}
	}
}

// TestOTLPEndpoint: an endpoint that is not an http(s) URL is refused when
// the sink is made, not at the first record.
func TestOTLPEndpoint(t *testing.T) {
	for _, ep := range []string{"collector:4318", "ftp://collector/v1/logs", "https://user:pw@collector/v1/logs", "http://"} {
		if _, err := sinks.NewOTLP(t.Context(), sinks.OTLPOptions{Endpoint: ep}); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("NewOTLP(%q) = %v, want an invalid endpoint error", ep, err)
		}
	}
}
