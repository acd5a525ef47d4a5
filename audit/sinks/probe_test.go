package sinks_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/audit/sinks"
	"github.com/rotor-dev/rotor/internal/otlpfake"
)

// TestOTLPProbe: a probe is one log record with the probe's event name and
// none of the audit attributes, accepted by a receiver that is up; a
// receiver that is down or answers 503 makes the probe fail.
func TestOTLPProbe(t *testing.T) {
	rcv := otlpfake.Start(t)
	s := newOTLP(t, rcv.URL())
	if err := s.Probe(t.Context()); err != nil {
		t.Fatalf("probe of a receiver that is up = %v", err)
	}
	logs := rcv.Logs()
	if len(logs) != 1 {
		t.Fatalf("the receiver holds %d records after a probe, want 1", len(logs))
	}
	if got := logs[0].Record.GetEventName(); got != sinks.ProbeEventName {
		t.Errorf("probe event name %q, want %q", got, sinks.ProbeEventName)
	}
	for _, kv := range logs[0].Record.GetAttributes() {
		if strings.HasPrefix(kv.GetKey(), "rotor.audit.") {
			t.Errorf("the probe carries the audit attribute %s", kv.GetKey())
		}
	}

	rcv.Fail(503)
	if err := s.Probe(t.Context()); err == nil {
		t.Error("probe of a receiver answering 503 succeeded")
	}
	rcv.Fail(0)
	if err := rcv.SetDown(true); err != nil {
		t.Fatal(err)
	}
	// A kept-alive connection may end in EOF rather than a refusal.
	if err := s.Probe(t.Context()); err == nil {
		t.Error("probe of a receiver that is down succeeded")
	}
}

// TestSyslogProbe: over TCP a probe connects and sends nothing, and fails
// when nothing listens; over UDP it cannot be confirmed.
func TestSyslogProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the probe closes
		got <- b
	}()
	s := &sinks.Syslog{Network: "tcp", Addr: addr}
	if err := s.Probe(t.Context()); err != nil {
		t.Fatalf("probe of a listening syslog server = %v", err)
	}
	if b := <-got; b == nil || len(b) != 0 {
		t.Errorf("the probe sent %q; it must connect and send nothing", b)
	}
	ln.Close()
	if err := s.Probe(t.Context()); err == nil {
		t.Error("probe with nothing listening succeeded")
	}
	u := &sinks.Syslog{Network: "udp", Addr: addr}
	if err := u.Probe(t.Context()); !errors.Is(err, sinks.ErrUnconfirmable) {
		t.Errorf("UDP probe = %v, want ErrUnconfirmable", err)
	}
}
