package sinks_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/sinks"
)

func records(n int) []audit.Record {
	var recs []audit.Record
	for i := range n {
		status := audit.StatusSucceeded
		if i%2 == 1 {
			status = audit.StatusDenied
		}
		recs = append(recs, audit.Record{
			Seq: uint64(i + 1), Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			Event:    audit.Event{Initiator: "user:ana", Action: "rotate.promote", Secret: "clerk", Status: status, Detail: "d " + strconv.Itoa(i)},
			PrevHash: audit.GenesisHash, Hash: strings.Repeat(strconv.Itoa(i%10), 64),
		})
	}
	return recs
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	want := records(3)
	if err := (&sinks.JSONLines{W: &buf}).Ship(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var got []audit.Record
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	if len(got) != 3 || got[2].Seq != 3 || got[1].Detail != "d 1" {
		t.Fatalf("decoded %+v", got)
	}
}

// readFrames reads n octet-counted syslog messages (RFC 6587) from c.
func readFrames(t *testing.T, c net.Conn, n int) []string {
	t.Helper()
	br := bufio.NewReader(c)
	var msgs []string
	for range n {
		l, err := br.ReadString(' ')
		if err != nil {
			t.Fatal(err)
		}
		size, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil {
			t.Fatalf("frame length %q: %v", l, err)
		}
		m := make([]byte, size)
		if _, err := io.ReadFull(br, m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, string(m))
	}
	return msgs
}

func TestSyslogRFC5424OverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := &sinks.Syslog{Network: "tcp", Addr: ln.Addr().String(), Hostname: "ci runner", AppName: "rotor"}
	defer s.Close()
	errc := make(chan error, 1)
	go func() { errc <- s.Ship(t.Context(), records(2)) }()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := readFrames(t, c, 2)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	tests := []struct{ prefix string }{
		{"<109>1 2026-01-02T03:04:05.000000006Z ci_runner rotor "}, // log audit, notice
		{"<108>1 2026-01-02T03:04:05.000000006Z ci_runner rotor "}, // denied: warning
	}
	for i, tt := range tests {
		if !strings.HasPrefix(msgs[i], tt.prefix) {
			t.Errorf("message %d = %q, want prefix %q", i, msgs[i], tt.prefix)
		}
		_, rest, _ := strings.Cut(strings.TrimPrefix(msgs[i], tt.prefix), " ") // PROCID
		msgid, rest, _ := strings.Cut(rest, " ")
		sd, body, _ := strings.Cut(rest, " ")
		var r audit.Record
		if msgid != "rotate.promote" || sd != "-" || json.Unmarshal([]byte(body), &r) != nil || r.Seq != uint64(i+1) {
			t.Errorf("message %d: MSGID %q, SD %q, MSG %q", i, msgid, sd, body)
		}
	}
}

// flakySink fails until up is closed, then delivers to got.
type flakySink struct {
	up   chan struct{}
	mu   sync.Mutex
	got  []audit.Record
	seen chan int // receives the number delivered after each success
}

func (f *flakySink) Ship(_ context.Context, recs []audit.Record) error {
	select {
	case <-f.up:
	default:
		return errors.New("connection refused")
	}
	f.mu.Lock()
	f.got = append(f.got, recs...)
	n := len(f.got)
	f.mu.Unlock()
	f.seen <- n
	return nil
}

func TestShipperDownSinkNeverBlocksAndCatchesUp(t *testing.T) {
	sink := &flakySink{up: make(chan struct{}), seen: make(chan int, 100)}
	sh := audit.NewShipper("flaky", sink, audit.ShipperOptions{Buffer: 10, Batch: 4, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	recs := records(25)
	for _, r := range recs {
		sh.Offer([]audit.Record{r}) // returns at once, sink down or not
	}
	st := sh.State()
	if st.Dropped != 15 || st.Pending != 10 {
		t.Fatalf("state with the sink down = %+v, want 15 dropped and 10 pending", st)
	}
	close(sink.up)
	for n := range sink.seen {
		if n == 10 {
			break
		}
	}
	if err := sh.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	st = sh.State()
	if !st.Up || st.Shipped != 10 || st.Pending != 0 || st.LastError != "" {
		t.Fatalf("state after recovery = %+v", st)
	}
	for i, r := range sink.got {
		if r.Seq != uint64(16+i) {
			t.Fatalf("delivered seq %d at %d, want the newest 10 records (16-25) in order", r.Seq, i)
		}
	}
}

func TestShipperCloseGivesUp(t *testing.T) {
	sink := &flakySink{up: make(chan struct{}), seen: make(chan int, 1)}
	sh := audit.NewShipper("down", sink, audit.ShipperOptions{MinBackoff: time.Millisecond})
	sh.Offer(records(3))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sh.Close(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Close of a down sink = %v, want its last error", err)
	}
	if st := sh.State(); st.Up || st.Dropped != 3 || st.Shipped != 0 {
		t.Fatalf("state = %+v, want down with 3 dropped", st)
	}
}
