package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

func TestOpenCreatesPrivateFiles(t *testing.T) {
	l := newTestLog(t)
	for path, want := range map[string]os.FileMode{
		l.path:               0o600,
		filepath.Dir(l.path): 0o700 | os.ModeDir,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}
	appendN(t, l, 1)
	fi, err := os.Stat(l.anchor)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("anchor has mode %v, want 0600", fi.Mode())
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	tests := []struct {
		name         string
		path, anchor string
		salt         []byte
		want         string
	}{
		{"anchor is the log", log, log, testSalt, "separate file"},
		{"anchor is the lock file", log, log + ".lock", testSalt, "separate file"},
		{"no anchor", log, "", testSalt, "must be set"},
		{"short salt", log, filepath.Join(dir, "head"), testSalt[:MinSaltSize-1], "salt is 15 bytes"},
		{"log is a directory", dir, filepath.Join(dir, "head"), testSalt, "open audit log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.path, tt.anchor, tt.salt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestAppendChainsRecords(t *testing.T) {
	base := time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.FixedZone("CET", 3600))
	var calls int
	l := newTestLog(t, WithClock(func() time.Time {
		calls++
		return base.Add(time.Duration(calls) * time.Second)
	}))
	recs := appendN(t, l, 3)
	prev := GenesisHash
	for i, r := range recs {
		wantTime := base.Add(time.Duration(i+1) * time.Second).UTC()
		if r.Seq != uint64(i+1) || r.PrevHash != prev || !r.Timestamp.Equal(wantTime) || r.Timestamp.Location() != time.UTC {
			t.Errorf("record %d = seq %d prev %s time %v, want seq %d prev %s time %v UTC", i, r.Seq, r.PrevHash, r.Timestamp, i+1, prev, wantTime)
		}
		if r.Event != event(i) {
			t.Errorf("record %d holds %+v, want %+v", i, r.Event, event(i))
		}
		if r.Hash != recordHash(testSalt, &r) {
			t.Errorf("record %d hash is not the keyed hash of its content", i)
		}
		prev = r.Hash
	}
	lines := readLines(t, l.path)
	for i, line := range lines {
		if got := mustParse(t, line); got != recs[i] {
			t.Errorf("line %d parses to %+v, Append returned %+v", i+1, got, recs[i])
		}
	}
	if !bytes.Contains(lines[0], []byte(`"timestamp":"2025-03-04T04:06:08.890123456Z"`)) {
		t.Errorf("line 1 = %s, want an RFC 3339 UTC timestamp", lines[0])
	}
	if !bytes.HasPrefix(lines[0], []byte(`{"seq":1,"timestamp":`)) {
		t.Errorf("line 1 = %s, want seq and timestamp first", lines[0])
	}
}

func TestAppendDependsOnSalt(t *testing.T) {
	dir := t.TempDir()
	other := bytes.Repeat([]byte{7}, SaltSize)
	a, _ := Open(filepath.Join(dir, "a.log"), filepath.Join(dir, "a.head"), testSalt, WithClock(fixedTime))
	b, _ := Open(filepath.Join(dir, "b.log"), filepath.Join(dir, "b.head"), other, WithClock(fixedTime))
	ra, err := a.Append(t.Context(), event(0))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Append(t.Context(), event(0))
	if err != nil {
		t.Fatal(err)
	}
	if ra.Hash == rb.Hash {
		t.Fatal("the same record has the same hash under different salts")
	}
	// A log verifies only under the salt it was written with.
	c, _ := Open(filepath.Join(dir, "a.log"), filepath.Join(dir, "a.head"), other)
	if _, err := c.Verify(t.Context()); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("Verify with another salt = %v, want ErrChainBroken", err)
	}
}

func fixedTime() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

func TestAppendValidatesEvent(t *testing.T) {
	const secret = "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	valid := event(0)
	tests := []struct {
		name   string
		edit   func(*Event)
		want   string
		reason string
	}{
		{"no initiator", func(e *Event) { e.Initiator = "" }, "initiator is empty", "every record says who"},
		{"no action", func(e *Event) { e.Action = "" }, "action is empty", "every record says what"},
		{"no status", func(e *Event) { e.Status = "" }, "status is not one of", "status is required"},
		{"unknown status", func(e *Event) { e.Status = "ok" }, "status is not one of", "only the four statuses exist"},
		{"secret value as key id", func(e *Event) { e.KeyID = secret }, "key_id is not a key id", "a value must never be logged"},
		{"uppercase key id", func(e *Event) { e.KeyID = strings.ToUpper(valid.KeyID) }, "key_id is not a key id", "key ids are lowercase hex"},
		{"short key id", func(e *Event) { e.KeyID = valid.KeyID[:8] }, "key_id is not a key id", "key ids have a fixed length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t)
			e := valid
			tt.edit(&e)
			_, err := l.Append(t.Context(), e)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Append = %v, want an error containing %q (%s)", err, tt.want, tt.reason)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q repeats the secret value", err)
			}
			if data := readFile(t, l.path); len(data) != 0 {
				t.Errorf("log holds %q after a rejected event", data)
			}
		})
	}
	t.Run("optional fields empty", func(t *testing.T) {
		l := newTestLog(t)
		e := Event{Initiator: InitiatorSystem, Action: "daemon.start", Status: StatusStarted}
		if _, err := l.Append(t.Context(), e); err != nil {
			t.Fatalf("Append(%+v): %v", e, err)
		}
	})
}

func TestAppendReplacesInvalidUTF8(t *testing.T) {
	l := newTestLog(t)
	e := event(0)
	e.Detail = "exit status 1: \xff\xfe garbage"
	r, err := l.Append(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	if want := "exit status 1: \uFFFD garbage"; r.Detail != want {
		t.Errorf("Detail = %q, want %q", r.Detail, want)
	}
	got, err := l.Tail(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != r {
		t.Errorf("Tail = %+v, want the record Append returned %+v", got, r)
	}
}

func TestAppendRejectsOversizedRecord(t *testing.T) {
	l := newTestLog(t)
	appendN(t, l, 1)
	before := readFile(t, l.path)
	e := event(1)
	e.Detail = strings.Repeat("x", maxLineSize)
	if _, err := l.Append(t.Context(), e); err == nil || !strings.Contains(err.Error(), "shorten the detail") {
		t.Fatalf("Append = %v, want a size error", err)
	}
	if after := readFile(t, l.path); !bytes.Equal(before, after) {
		t.Error("a rejected record changed the log")
	}
	e.Detail = strings.Repeat("x", maxLineSize/2)
	if _, err := l.Append(t.Context(), e); err != nil {
		t.Fatalf("Append of a large record within the limit: %v", err)
	}
	if _, err := l.Verify(t.Context()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestAppendRecoversFromIncompleteLine(t *testing.T) {
	l := newTestLog(t)
	appendN(t, l, 5)
	partial := appendPartialLine(t, l)

	r, err := l.Append(t.Context(), event(5))
	if err != nil {
		t.Fatalf("Append after an interrupted write: %v", err)
	}
	if r.Seq != 7 {
		t.Errorf("Append wrote seq %d, want 7 (after the recovery record)", r.Seq)
	}
	rep, err := l.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify after recovery: %v", err)
	}
	if rep.Records != 7 || rep.Anchored != 7 {
		t.Errorf("Verify = %+v, want 7 records, anchored at 7", rep)
	}
	recs, err := l.Tail(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	rec := recs[0]
	wantDetail := fmt.Sprintf("discarded an incomplete last line of %d bytes", partial)
	if rec.Action != ActionRecover || rec.Initiator != InitiatorSystem || rec.Status != StatusSucceeded || !strings.Contains(rec.Detail, wantDetail) {
		t.Errorf("record 6 = %+v, want a recovery record saying %q", rec, wantDetail)
	}
	if recs[1] != r {
		t.Errorf("record 7 = %+v, want %+v", recs[1], r)
	}
}

func TestAppendRefusesBrokenTail(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(*testing.T, testLog)
	}{
		{"truncated tail", func(t *testing.T, l testLog) {
			lines := readLines(t, l.path)
			writeLines(t, l.path, lines[:len(lines)-1])
		}},
		{"deleted log", func(t *testing.T, l testLog) {
			if err := os.Remove(l.path); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted anchor", func(t *testing.T, l testLog) {
			if err := os.Remove(l.anchor); err != nil {
				t.Fatal(err)
			}
		}},
		{"forged last line", func(t *testing.T, l testLog) {
			lines := readLines(t, l.path)
			r := mustParse(t, lines[len(lines)-1])
			r.Status = StatusSucceeded
			r.Hash = plainHash(&r)
			lines[len(lines)-1] = mustEncode(t, r)
			writeLines(t, l.path, lines)
		}},
		{"garbage last line", func(t *testing.T, l testLog) {
			lines := readLines(t, l.path)
			writeLines(t, l.path, append(lines, []byte("rm -rf /")))
		}},
		{"edited anchor", func(t *testing.T, l testLog) {
			data := bytes.Replace(readFile(t, l.anchor), []byte(`"seq":4`), []byte(`"seq":3`), 1)
			if err := os.WriteFile(l.anchor, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"incomplete line after a truncated tail", func(t *testing.T, l testLog) {
			data := readFile(t, l.path)
			if err := os.WriteFile(l.path, data[:len(data)-10], 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"first records deleted, anchor stale", func(t *testing.T, l testLog) {
			// With the anchor behind the log, Append walks back; the
			// walk must notice that the log no longer starts the chain.
			lines := readLines(t, l.path)
			if err := l.writeAnchor(0, GenesisHash); err != nil {
				t.Fatal(err)
			}
			writeLines(t, l.path, lines[2:])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t)
			appendN(t, l, 4)
			tt.tamper(t, l)
			logBefore, _ := os.ReadFile(l.path)
			anchorBefore, _ := os.ReadFile(l.anchor)

			_, err := l.Append(t.Context(), event(4))
			if !errors.Is(err, ErrChainBroken) {
				t.Fatalf("Append = %v, want ErrChainBroken", err)
			}
			logAfter, _ := os.ReadFile(l.path)
			anchorAfter, _ := os.ReadFile(l.anchor)
			if !bytes.Equal(logBefore, logAfter) || !bytes.Equal(anchorBefore, anchorAfter) {
				t.Error("Append changed the log or the anchor of a broken log")
			}
		})
	}
}

func TestAppendHonoursContext(t *testing.T) {
	l := newTestLog(t)
	// Another process holds the lock.
	other := flock.New(l.path + ".lock")
	if err := other.Lock(); err != nil {
		t.Fatal(err)
	}
	defer other.Unlock()

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Append(ctx, event(0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append while the lock is held elsewhere = %v, want context.DeadlineExceeded", err)
	}
	if _, err := l.Verify(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with an expired context = %v, want context.DeadlineExceeded", err)
	}
	if data := readFile(t, l.path); len(data) != 0 {
		t.Errorf("log holds %q after a cancelled Append", data)
	}
}

func TestAppendConcurrentGoroutines(t *testing.T) {
	const logs, goroutines, each = 2, 8, 25
	base := newTestLog(t)
	// Several *Log values on the same files, as several subsystems of one
	// process would have, plus several goroutines on each.
	ls := []*Log{base.Log}
	for range logs - 1 {
		l, err := Open(base.path, base.anchor, testSalt)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs []uint64
	)
	for li, l := range ls {
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					e := event(i)
					e.Detail = fmt.Sprintf("log %d goroutine %d append %d", li, g, i)
					r, err := l.Append(t.Context(), e)
					if err != nil {
						t.Errorf("Append: %v", err)
						return
					}
					mu.Lock()
					seqs = append(seqs, r.Seq)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	const total = logs * goroutines * each
	checkLogHolds(t, base, total, func(li, g, i int) string {
		return fmt.Sprintf("log %d goroutine %d append %d", li, g, i)
	}, logs, goroutines, each)
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("Append returned seqs %v, want 1..%d each once", seqs, total)
		}
	}
}

// checkLogHolds verifies the log and checks that it holds exactly the
// details name(a, b, c) for every a < na, b < nb, c < nc, each writer's in
// order.
func checkLogHolds(t *testing.T, l testLog, total int, name func(a, b, c int) string, na, nb, nc int) {
	t.Helper()
	rep, err := l.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != uint64(total) || rep.Anchored != uint64(total) {
		t.Fatalf("Verify = %+v, want %d records, all anchored", rep, total)
	}
	recs, err := l.Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pos := make(map[string]uint64, len(recs))
	for _, r := range recs {
		if _, dup := pos[r.Detail]; dup {
			t.Fatalf("%q logged twice", r.Detail)
		}
		pos[r.Detail] = r.Seq
	}
	for a := range na {
		for b := range nb {
			var last uint64
			for c := range nc {
				seq, ok := pos[name(a, b, c)]
				if !ok {
					t.Fatalf("%q missing from the log", name(a, b, c))
				}
				if seq <= last {
					t.Fatalf("%q logged out of order", name(a, b, c))
				}
				last = seq
			}
		}
	}
}

const (
	childEnv       = "ROTOR_AUDIT_TEST_CHILD"
	childLogEnv    = "ROTOR_AUDIT_TEST_LOG"
	childAnchorEnv = "ROTOR_AUDIT_TEST_ANCHOR"
	crossProcesses = 10
	crossAppends   = 20
)

func crossDetail(_, proc, i int) string { return fmt.Sprintf("process %d append %d", proc, i) }

func TestAppendCrossProcess(t *testing.T) {
	if id := os.Getenv(childEnv); id != "" {
		appendChild(t, id)
		return
	}
	l := newTestLog(t)
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   bytes.Buffer
	}
	children := make([]*child, crossProcesses)
	for i := range children {
		c := &child{cmd: exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestAppendCrossProcess$", "-test.count=1")}
		c.cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(i), childLogEnv+"="+l.path, childAnchorEnv+"="+l.anchor)
		c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
		var err error
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = c
	}
	// Every child waits for its stdin to close: closing them all releases
	// the children together, so their appends overlap.
	for _, c := range children {
		c.stdin.Close()
	}
	for i, c := range children {
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, c.out.String())
		}
	}
	checkLogHolds(t, l, crossProcesses*crossAppends, crossDetail, 1, crossProcesses, crossAppends)
}

func appendChild(t *testing.T, id string) {
	proc, err := strconv.Atoi(id)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(os.Getenv(childLogEnv), os.Getenv(childAnchorEnv), testSalt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		t.Fatal(err)
	}
	for i := range crossAppends {
		e := event(i)
		e.Detail = crossDetail(0, proc, i)
		if _, err := l.Append(t.Context(), e); err != nil {
			t.Fatalf("process %d: Append: %v", proc, err)
		}
	}
}

func TestTail(t *testing.T) {
	l := newTestLog(t)
	if recs, err := l.Tail(t.Context(), 5); err != nil || len(recs) != 0 {
		t.Fatalf("Tail of an empty log = %v, %v; want nothing", recs, err)
	}
	var all []Record
	for i := range 30 {
		e := event(i)
		if i%7 == 3 {
			// Lines longer than Tail's read buffer.
			e.Detail = strings.Repeat("long ", 2000) + strconv.Itoa(i)
		}
		r, err := l.Append(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	tests := []struct {
		n    int
		want []Record
	}{
		{n: 1, want: all[29:]},
		{n: 5, want: all[25:]},
		{n: 12, want: all[18:]},
		{n: 30, want: all},
		{n: 100, want: all},
		{n: 0, want: all},
		{n: -1, want: all},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("n=%d", tt.n), func(t *testing.T) {
			got, err := l.Tail(t.Context(), tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tail(%d) returned seqs %v, want %v", tt.n, seqsOf(got), seqsOf(tt.want))
			}
		})
	}
	t.Run("incomplete last line is skipped", func(t *testing.T) {
		appendPartialLine(t, l)
		for _, n := range []int{3, 0} {
			got, err := l.Tail(t.Context(), n)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[len(got)-1] != all[29] {
				t.Errorf("Tail(%d) ends with seqs %v, want it to end at seq 30", n, seqsOf(got))
			}
		}
	})
}

func TestTailRejectsForgedRecords(t *testing.T) {
	for _, n := range []int{3, 0} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			l := newTestLog(t)
			appendN(t, l, 6)
			lines := readLines(t, l.path)
			r := mustParse(t, lines[4])
			r.Status = StatusSucceeded
			r.Hash = plainHash(&r)
			lines[4] = mustEncode(t, r)
			writeLines(t, l.path, lines)
			if got, err := l.Tail(t.Context(), n); !errors.Is(err, ErrChainBroken) {
				t.Fatalf("Tail(%d) = %v, %v; want ErrChainBroken", n, seqsOf(got), err)
			}
		})
	}
}

func seqsOf(recs []Record) []uint64 {
	var s []uint64
	for _, r := range recs {
		s = append(s, r.Seq)
	}
	return s
}

// TestAppendRechecksWhatOthersChanged: a Log remembers the anchor and
// the last line it wrote, so that its next commit need not check them
// again; when another writer (here another Log on the same files, as
// another process would be) or a tamperer changed them, it must read and
// check them again, not continue from what it remembers.
func TestAppendRechecksWhatOthersChanged(t *testing.T) {
	l := newTestLog(t)
	appendN(t, l, 2)
	other, err := Open(l.path, l.anchor, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(t.Context(), event(2)); err != nil {
		t.Fatal(err)
	}
	r, err := l.Append(t.Context(), event(3))
	if err != nil {
		t.Fatalf("Append after another writer: %v", err)
	}
	if r.Seq != 4 {
		t.Fatalf("Append after another writer wrote seq %d, want 4", r.Seq)
	}
	if _, err := l.Verify(t.Context()); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// The last record edited in place, same length: the hash no longer
	// matches.
	lines := readLines(t, l.path)
	last := lines[len(lines)-1]
	i := bytes.Index(last, []byte("event 3"))
	last[i+len("event ")] = '9'
	writeLines(t, l.path, lines)
	if _, err := l.Append(t.Context(), event(4)); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("Append after the last line was edited: err = %v, want ErrChainBroken", err)
	}
	last[i+len("event ")] = '3'
	writeLines(t, l.path, lines)

	// The anchor replaced by one with a wrong MAC.
	data, err := os.ReadFile(l.anchor)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(data, []byte(`"seq":4`), []byte(`"seq":3`), 1)
	if bytes.Equal(forged, data) {
		t.Fatalf("anchor %q does not name seq 4", data)
	}
	if err := os.WriteFile(l.anchor, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), event(4)); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("Append after the anchor was forged: err = %v, want ErrChainBroken", err)
	}
}
