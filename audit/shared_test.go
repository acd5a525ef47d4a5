package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
)

func sharedEvent(i int) audit.Event {
	return audit.Event{Initiator: "ci:github:acme/app", Action: "rotate.promote", Secret: "clerk", Status: audit.StatusSucceeded, Detail: fmt.Sprintf("event %d", i)}
}

func newShared(t testing.TB, b audit.Backend) *audit.Shared {
	t.Helper()
	s, err := audit.NewShared(b, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSharedBatchesAnOperation(t *testing.T) {
	m := &audittest.Memory{}
	s := newShared(t, m)
	es := []audit.Event{sharedEvent(0), sharedEvent(1), sharedEvent(2)}
	recs, err := s.AppendAll(t.Context(), es)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[2].Seq != 3 {
		t.Fatalf("AppendAll returned %d records, want seqs 1-3", len(recs))
	}
	data, _, err := m.Get(t.Context(), "records/1")
	if err != nil || strings.Count(string(data), "\n") != 3 {
		t.Fatalf("records/1 = %q, %v; want the three records in one batch", data, err)
	}
	if _, _, err := m.Get(t.Context(), "records/2"); !errors.Is(err, audit.ErrNotExist) {
		t.Fatalf("records/2 exists: one operation took more than one batch")
	}
}

// stopAfterBatch is a backend whose writer stops (is killed) after storing
// a batch, before it moves the head.
type stopAfterBatch struct {
	*audittest.Memory
	stopped bool
}

var errKilled = errors.New("killed")

func (b *stopAfterBatch) Put(ctx context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	if b.stopped {
		return audit.NoVersion, errKilled
	}
	v, err := b.Memory.Put(ctx, key, value, expected)
	if err == nil && strings.HasPrefix(key, "records/") {
		b.stopped = true
	}
	return v, err
}

func TestSharedWriterStoppedBeforeHeadContinues(t *testing.T) {
	m := &audittest.Memory{}
	if _, err := newShared(t, m).AppendAll(t.Context(), []audit.Event{sharedEvent(0), sharedEvent(1)}); err != nil {
		t.Fatal(err)
	}
	dying := newShared(t, &stopAfterBatch{Memory: m})
	if _, err := dying.Append(t.Context(), sharedEvent(2)); !errors.Is(err, errKilled) {
		t.Fatalf("Append by the dying writer = %v, want it stopped after its batch", err)
	}
	s := newShared(t, m)
	rep, err := s.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify with the head behind the chain: %v", err)
	}
	if rep.Records != 3 || rep.Anchored != 2 {
		t.Fatalf("Verify = %+v, want 3 records, the head at 2", rep)
	}
	r, err := s.Append(t.Context(), sharedEvent(3))
	if err != nil || r.Seq != 4 {
		t.Fatalf("next Append = seq %d, %v; want seq 4", r.Seq, err)
	}
	if rep, err := s.Verify(t.Context()); err != nil || rep.Records != 4 || rep.Anchored != 4 {
		t.Fatalf("Verify = %+v, %v; want 4 records, all anchored", rep, err)
	}
}

func TestSharedDetectsDeletion(t *testing.T) {
	tests := []struct {
		name   string
		delete string
		want   string
		// Like the log's, appends check only the end of the chain.
		appendFails bool
	}{
		{"last batch", "records/3", "records were deleted from the end", true},
		{"middle batch", "records/2", "records were deleted from the end", false},
		{"head", "head", "head is missing", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &audittest.Memory{}
			s := newShared(t, m)
			for i := range 3 {
				if _, err := s.Append(t.Context(), sharedEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			m.Delete(tt.delete)
			fresh := newShared(t, m)
			_, err := fresh.Verify(t.Context())
			if !errors.Is(err, audit.ErrChainBroken) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify = %v, want ErrChainBroken saying %q", err, tt.want)
			}
			if _, err := fresh.Append(t.Context(), sharedEvent(9)); tt.appendFails && !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("Append = %v, want ErrChainBroken", err)
			}
		})
	}
}

func TestSharedTail(t *testing.T) {
	s := newShared(t, &audittest.Memory{})
	for i := range 10 {
		if _, err := s.Append(t.Context(), sharedEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.Tail(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Seq != 8 || recs[2].Seq != 10 {
		t.Fatalf("Tail(3) = %d records, want seqs 8-10", len(recs))
	}
}

// countingBackend counts the calls a chain makes.
type countingBackend struct {
	audit.Backend
	gets, puts int
}

func (c *countingBackend) Get(ctx context.Context, key string) ([]byte, audit.Version, error) {
	c.gets++
	return c.Backend.Get(ctx, key)
}

func (c *countingBackend) Put(ctx context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	c.puts++
	return c.Backend.Put(ctx, key, value, expected)
}

// TestSharedRotationCost counts the backend calls of a rotation as a
// one-shot command records it: the started event alone, then the other
// events of the operation as one batch. Two batches, each one create and
// one head swap: four writes.
func TestSharedRotationCost(t *testing.T) {
	m := &audittest.Memory{}
	if _, err := newShared(t, m).Append(t.Context(), sharedEvent(0)); err != nil {
		t.Fatal(err)
	}
	c := &countingBackend{Backend: m}
	s := newShared(t, c)
	start := sharedEvent(1)
	start.Status = audit.StatusStarted
	if _, err := s.AppendAll(t.Context(), []audit.Event{start}); err != nil {
		t.Fatal(err)
	}
	var rest []audit.Event
	for i := range 7 { // create, test, promote, reload, verify, finish, and one more
		rest = append(rest, sharedEvent(2+i))
	}
	if _, err := s.AppendAll(t.Context(), rest); err != nil {
		t.Fatal(err)
	}
	// The reads locate the chain at the first append (the head, its
	// batch, and no batch after it); the head is then moved by
	// compare-and-swap at the version last seen, without reading it.
	if c.puts != 4 || c.gets != 3 {
		t.Fatalf("a rotation cost %d writes and %d reads, want 4 writes and 3 reads", c.puts, c.gets)
	}
	t.Logf("a rotation: %d writes, %d reads", c.puts, c.gets)
}

// TestSharedClockBehind: a machine whose clock is an hour behind the one
// that appended last dates its record like that one, not earlier, so the
// shared chain's timestamps never go backwards and it verifies.
func TestSharedClockBehind(t *testing.T) {
	m := &audittest.Memory{}
	ahead := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	a, err := audit.NewShared(m, audittest.Salt, audit.WithClock(func() time.Time { return ahead }))
	if err != nil {
		t.Fatal(err)
	}
	b, err := audit.NewShared(m, audittest.Salt, audit.WithClock(func() time.Time { return ahead.Add(-time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Append(t.Context(), sharedEvent(0))
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.Append(t.Context(), sharedEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq != 2 || !second.Timestamp.Equal(first.Timestamp) {
		t.Fatalf("record %d from the machine behind is dated %s, want seq 2 dated %s", second.Seq, second.Timestamp, first.Timestamp)
	}
	if _, err := b.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
}
