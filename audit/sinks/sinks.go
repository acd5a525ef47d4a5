// Package sinks ships audit records to where logs go, as they are written:
// JSON lines on a writer (stdout, for log collectors), syslog (RFC 5424)
// and OpenTelemetry logs over OTLP/HTTP ([OTLP], with the official Go
// SDK). Each is an [audit.Sink]; an [audit.Shipper] feeds it from a
// bounded buffer with retries, so a sink that is down never blocks or
// breaks the audit chain.
package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/audit"
)

// Prober is a sink that can check, without sending an audit record,
// that it could deliver one now: `rotor doctor` probes every configured
// sink. Probe returns nil when the sink answered, or the reason it did not.
type Prober interface {
	Probe(ctx context.Context) error
}

// JSONLines writes each record as one JSON line, the record's fields as
// `rotor audit tail -o json` prints them.
type JSONLines struct {
	W  io.Writer
	mu sync.Mutex
}

var _ audit.Sink = (*JSONLines)(nil)

// Ship implements [audit.Sink]: one write for the batch.
func (j *JSONLines) Ship(_ context.Context, recs []audit.Record) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, err := j.W.Write(buf.Bytes())
	return err
}

// Probe implements [Prober]: a writer has nothing to reach.
func (j *JSONLines) Probe(context.Context) error { return nil }

// Syslog sends each record as an RFC 5424 message, facility 13 ("log
// audit"), severity notice (warning for failed and denied events), with
// the action as MSGID and the record as JSON in MSG. Over TCP messages are
// framed by octet counting (RFC 6587); over UDP each is one datagram.
type Syslog struct {
	// Network is "tcp" or "udp"; Addr is host:port.
	Network, Addr string
	// Hostname and AppName fill those header fields; defaults: the host
	// name and "rotor".
	Hostname, AppName string
	// Dial, when set, replaces net.Dialer.DialContext (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	conn net.Conn
}

var _ audit.Sink = (*Syslog)(nil)

const (
	facilityLogAudit = 13
	severityWarning  = 4
	severityNotice   = 5
)

// Ship implements [audit.Sink]. A connection is kept between calls and
// dialled again after an error.
func (s *Syslog) Ship(ctx context.Context, recs []audit.Record) error {
	var buf bytes.Buffer
	msgs := make([][]byte, 0, len(recs))
	for _, r := range recs {
		m, err := s.format(r)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		dial := s.Dial
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		c, err := dial(ctx, s.Network, s.Addr)
		if err != nil {
			return fmt.Errorf("syslog %s: %w", s.Addr, err)
		}
		s.conn = c
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.conn.SetWriteDeadline(dl)
	}
	fail := func(err error) error {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("syslog %s: %w", s.Addr, err)
	}
	if s.Network == "udp" {
		for _, m := range msgs {
			if _, err := s.conn.Write(m); err != nil {
				return fail(err)
			}
		}
		return nil
	}
	for _, m := range msgs {
		buf.WriteString(strconv.Itoa(len(m)))
		buf.WriteByte(' ')
		buf.Write(m)
	}
	if _, err := s.conn.Write(buf.Bytes()); err != nil {
		return fail(err)
	}
	return nil
}

// ErrUnconfirmable is what [Syslog.Probe] returns over UDP once the
// address resolves: a datagram is never acknowledged, so whether a
// receiver listens cannot be known.
var ErrUnconfirmable = errors.New("UDP gives no acknowledgement: delivery cannot be confirmed")

// Probe implements [Prober]. Over TCP it opens a connection to the
// receiver and closes it without sending a message; over UDP it only
// resolves the address and returns [ErrUnconfirmable].
func (s *Syslog) Probe(ctx context.Context) error {
	if s.Network == "udp" {
		if _, err := net.DefaultResolver.LookupHost(ctx, hostOf(s.Addr)); err != nil {
			return fmt.Errorf("syslog %s: %w", s.Addr, err)
		}
		return ErrUnconfirmable
	}
	dial := s.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(ctx, s.Network, s.Addr)
	if err != nil {
		return fmt.Errorf("syslog %s: %w", s.Addr, err)
	}
	return c.Close()
}

// hostOf is addr's host part, or addr when it has no port.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// format renders r as an RFC 5424 message.
func (s *Syslog) format(r audit.Record) ([]byte, error) {
	sev := severityNotice
	if r.Status == audit.StatusFailed || r.Status == audit.StatusDenied {
		sev = severityWarning
	}
	host, app := s.Hostname, s.AppName
	if host == "" {
		host, _ = os.Hostname()
	}
	if app == "" {
		app = "rotor"
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	// PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
	return fmt.Appendf(nil, "<%d>1 %s %s %s %d %s - %s",
		facilityLogAudit*8+sev, r.Timestamp.UTC().Format(time.RFC3339Nano),
		header(host, 255), header(app, 48), os.Getpid(), header(r.Action, 32), body), nil
}

// header makes s a valid RFC 5424 header field: printable US-ASCII without
// spaces, at most n characters, "-" when empty.
func header(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return '_'
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	if s == "" {
		return "-"
	}
	return s
}

// Close closes the connection, if any.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
