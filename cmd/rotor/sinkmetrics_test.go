package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rotor-dev/rotor/audit"
)

type downSink struct{}

func (downSink) Ship(context.Context, []audit.Record) error { return errors.New("connection refused") }

// TestSinkMetrics: a sink that is down shows as rotor_audit_sink_up 0,
// with its dropped records counted.
func TestSinkMetrics(t *testing.T) {
	sh := audit.NewShipper("syslog tcp://127.0.0.1:1", downSink{}, audit.ShipperOptions{Buffer: 2})
	sh.Offer([]audit.Record{{Seq: 1}, {Seq: 2}, {Seq: 3}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_ = sh.Close(ctx) // drops what is left: 2 more
	reg := prometheus.NewRegistry()
	reg.MustRegister(sinkCollector{shippers: []*audit.Shipper{sh}})
	want := `
# HELP rotor_audit_sink_dropped_total Audit records dropped because the sink's buffer was full (the chain still holds them).
# TYPE rotor_audit_sink_dropped_total counter
rotor_audit_sink_dropped_total{sink="syslog tcp://127.0.0.1:1"} 3
# HELP rotor_audit_sink_up 1 while the audit sink accepts records, 0 from a failed delivery to the next success.
# TYPE rotor_audit_sink_up gauge
rotor_audit_sink_up{sink="syslog tcp://127.0.0.1:1"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rotor_audit_sink_up", "rotor_audit_sink_dropped_total"); err != nil {
		t.Fatal(err)
	}
}
