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
	for range sink.seen {
		sink.mu.Lock()
		last := sink.got[len(sink.got)-1].Seq
		sink.mu.Unlock()
		if last == 25 {
			break
		}
	}
	if err := sh.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A batch taken before the drops, in flight when the sink came up,
	// is delivered too: its records count as shipped, not dropped.
	st = sh.State()
	got := sink.got
	if !st.Up || st.Pending != 0 || st.LastError != "" || st.Shipped != uint64(len(got)) || st.Shipped+st.Dropped != 25 {
		t.Fatalf("state after recovery = %+v with %d delivered; want up, every record shipped or dropped, never both", st, len(got))
	}
	for i, r := range got {
		if i > 0 && r.Seq <= got[i-1].Seq {
			t.Fatalf("delivered seq %d after %d: out of order or twice", r.Seq, got[i-1].Seq)
		}
	}
	if len(got) < 10 || got[len(got)-10].Seq != 16 {
		t.Fatalf("delivered %d records, want the newest 10 (16-25) at the end", len(got))
	}
}

// heldSink holds each Ship until released, and records what it got.
type heldSink struct {
	entered, release chan struct{}
	mu               sync.Mutex
	got              []audit.Record
}

func (h *heldSink) Ship(_ context.Context, recs []audit.Record) error {
	h.entered <- struct{}{}
	<-h.release
	h.mu.Lock()
	h.got = append(h.got, recs...)
	h.mu.Unlock()
	return nil
}

// TestShipperDropWhileInFlightIsShipped: records Offer drops from a full
// queue while they are in flight to the sink are delivered all the same,
// and so count as shipped, not dropped; every record is one or the other.
func TestShipperDropWhileInFlightIsShipped(t *testing.T) {
	sink := &heldSink{entered: make(chan struct{}), release: make(chan struct{})}
	sh := audit.NewShipper("held", sink, audit.ShipperOptions{Buffer: 4, Batch: 4})
	recs := records(8)
	sh.Offer(recs[:4])
	<-sink.entered // records 1-4 in flight
	sh.Offer(recs[4:])
	if st := sh.State(); st.Dropped != 4 || st.Pending != 4 {
		t.Fatalf("state with 1-4 in flight and 5-8 offered = %+v, want 4 dropped (the oldest) and 4 pending", st)
	}
	go func() {
		for range sink.entered {
		}
	}()
	close(sink.release)
	if err := sh.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(sink.entered)
	st := sh.State()
	if len(sink.got) != 8 || st.Shipped != 8 || st.Dropped != 0 || st.Pending != 0 {
		t.Fatalf("after delivery: %d delivered, state %+v; want all 8 shipped and none dropped", len(sink.got), st)
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
