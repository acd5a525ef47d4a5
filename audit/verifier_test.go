package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
)

// appendN appends n events, one batch each.
func appendN(t *testing.T, s *audit.Shared, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Append(t.Context(), sharedEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// forge rewrites the stored batch key as somebody who may write the
// backend but does not hold the salt: another initiator in its first
// record, hashes left as they were.
func forge(t *testing.T, m *audittest.Memory, key string) {
	t.Helper()
	data, v, err := m.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(data, []byte("ci:github:acme/app"), []byte("ci:github:evil/app"), 1)
	if _, err := m.Put(t.Context(), key, forged, v); err != nil {
		t.Fatal(err)
	}
}

func wantBroken(t *testing.T, what string, err error, reason string) {
	t.Helper()
	if !errors.Is(err, audit.ErrChainBroken) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("%s = %v, want ErrChainBroken saying %q", what, err, reason)
	}
}

// TestVerifierReadsOnlyWhatIsNew: after the full check at start, a check
// reads the head, the batch verified last, the new batches and one key
// past the end, however long the chain is.
func TestVerifierReadsOnlyWhatIsNew(t *testing.T) {
	m := &audittest.Memory{}
	s := newShared(t, m)
	appendN(t, s, 200)
	c := &countingBackend{Backend: m}
	v := newShared(t, c).NewVerifier()
	if rep, err := v.Check(t.Context()); err != nil || rep.Records != 200 {
		t.Fatalf("first Check = %+v, %v; want the 200 records", rep, err)
	}
	if c.gets < 200 {
		t.Fatalf("the first Check read %d keys: it did not read the whole chain", c.gets)
	}
	tests := []struct {
		name      string
		appended  int
		wantReads int
	}{
		{"nothing new", 0, 3},   // head, last batch, records/201 (absent)
		{"three batches", 3, 6}, // and the three new ones
	}
	for _, tt := range tests {
		c.gets = 0
		appendN(t, s, tt.appended)
		if _, err := v.Check(t.Context()); err != nil {
			t.Fatalf("%s: Check: %v", tt.name, err)
		}
		if c.gets != tt.wantReads {
			t.Errorf("%s: Check read %d keys, want %d", tt.name, c.gets, tt.wantReads)
		}
	}
}

// TestVerifierCatchesTamperingWithNewRecords: what was appended since the
// last check is checked as a full verification checks it.
func TestVerifierCatchesTamperingWithNewRecords(t *testing.T) {
	tests := []struct {
		name string
		// attack runs after records/6 was appended; head3 is the head
		// as it was at seq 3.
		attack func(t *testing.T, m *audittest.Memory, head3 []byte)
		reason string
	}{
		{"forged new record", func(t *testing.T, m *audittest.Memory, _ []byte) { forge(t, m, "records/6") }, "modified or forged"},
		{"new batch not linked", func(t *testing.T, m *audittest.Memory, _ []byte) {
			// Record 6 of another chain (same salt) in place of ours.
			other := &audittest.Memory{}
			appendN(t, newShared(t, other), 6)
			data, _, _ := other.Get(t.Context(), "records/6")
			m.Delete("records/6")
			if _, err := m.Put(t.Context(), "records/6", data, audit.NoVersion); err != nil {
				t.Fatal(err)
			}
		}, "prev_hash is not the hash of the record before"},
		{"last verified batch rewritten", func(t *testing.T, m *audittest.Memory, _ []byte) { forge(t, m, "records/5") }, "changed since it was verified"},
		{"last verified batch deleted", func(t *testing.T, m *audittest.Memory, _ []byte) { m.Delete("records/5") }, "is gone"},
		{"head deleted", func(t *testing.T, m *audittest.Memory, _ []byte) { m.Delete("head") }, "head is missing"},
		{"older head put back", func(t *testing.T, m *audittest.Memory, head3 []byte) {
			_, v, _ := m.Get(t.Context(), "head")
			if _, err := m.Put(t.Context(), "head", head3, v); err != nil {
				t.Fatal(err)
			}
		}, "moved back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &audittest.Memory{}
			s := newShared(t, m)
			appendN(t, s, 3)
			head3, _, err := m.Get(t.Context(), "head")
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, s, 2)
			v := s.NewVerifier()
			if _, err := v.Check(t.Context()); err != nil {
				t.Fatal(err)
			}
			appendN(t, s, 1) // records/6
			tt.attack(t, m, head3)
			_, err = v.Check(t.Context())
			wantBroken(t, "Check", err, tt.reason)
		})
	}
}

// TestVerifierOldRecordsNeedAFullCheck: a record that was verified before
// is not read again by an incremental check (that is what makes it cheap),
// so tampering with it is caught by the full verification a Verifier
// starts with, by Full and by Verify (`rotor audit verify`).
func TestVerifierOldRecordsNeedAFullCheck(t *testing.T) {
	m := &audittest.Memory{}
	s := newShared(t, m)
	appendN(t, s, 5)
	v := s.NewVerifier()
	if _, err := v.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	forge(t, m, "records/2")
	appendN(t, s, 1)
	if _, err := v.Check(t.Context()); err != nil {
		t.Fatalf("incremental Check = %v; it should not have read records/2 again", err)
	}
	_, err := newShared(t, m).NewVerifier().Check(t.Context())
	wantBroken(t, "the first Check of a new Verifier (a daemon starting)", err, "modified or forged")
	_, err = v.Full(t.Context())
	wantBroken(t, "Full", err, "modified or forged")
	_, err = newShared(t, m).Verify(t.Context())
	wantBroken(t, "Verify", err, "modified or forged")
	// After a failure the next Check is a full one, and fails again.
	_, err = v.Check(t.Context())
	wantBroken(t, "Check after a failure", err, "modified or forged")
}

// TestVerifierLaggingHead: a writer stopped between its batch and the head
// leaves the head behind; the next check finds it moved forward onto
// records verified earlier, and checks it against their hashes.
func TestVerifierLaggingHead(t *testing.T) {
	m := &audittest.Memory{}
	s := newShared(t, m)
	appendN(t, s, 2)
	dying := newShared(t, &stopAfterBatch{Memory: m})
	if _, err := dying.Append(t.Context(), sharedEvent(2)); !errors.Is(err, errKilled) {
		t.Fatalf("Append by the dying writer = %v", err)
	}
	v := newShared(t, m).NewVerifier()
	rep, err := v.Check(t.Context())
	if err != nil || rep.Records != 3 || rep.Anchored != 2 {
		t.Fatalf("Check = %+v, %v; want 3 records, the head at 2", rep, err)
	}
	// Another writer moves the head past the record verified unheaded.
	if _, err := newShared(t, m).Append(t.Context(), sharedEvent(3)); err != nil {
		t.Fatal(err)
	}
	if rep, err := v.Check(t.Context()); err != nil || rep.Records != 4 || rep.Anchored != 4 {
		t.Fatalf("Check = %+v, %v; want 4 records, all headed", rep, err)
	}
}

// TestVerifierEmptyChain: a chain nobody wrote verifies, and so does its
// first record once written.
func TestVerifierEmptyChain(t *testing.T) {
	m := &audittest.Memory{}
	v := newShared(t, m).NewVerifier()
	for i := range 2 {
		if _, err := v.Check(t.Context()); err != nil {
			t.Fatalf("Check %d of the empty chain: %v", i, err)
		}
	}
	appendN(t, newShared(t, m), 1)
	if rep, err := v.Check(t.Context()); err != nil || rep.Records != 1 || rep.Anchored != 1 {
		t.Fatalf("Check = %+v, %v; want the one record, headed", rep, err)
	}
}

// BenchmarkVerifierCheck compares what the daemon's periodic check of a
// shared chain costs in full (Shared.Verify, what it did before) and
// incrementally (Verifier.Check after one new batch), on chains of 100,
// 1,000 and 10,000 batches. gets/op is the backend reads, each a round
// trip to Vault or DynamoDB; the in-memory backend makes the time the
// CPU's.
func BenchmarkVerifierCheck(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		m := &audittest.Memory{}
		s := newShared(b, m)
		for i := range n {
			if _, err := s.Append(b.Context(), sharedEvent(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("batches=%d/full", n), func(b *testing.B) {
			c := &countingBackend{Backend: m}
			v := newShared(b, c)
			for b.Loop() {
				if _, err := v.Verify(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.gets)/float64(b.N), "gets/op")
		})
		b.Run(fmt.Sprintf("batches=%d/incremental", n), func(b *testing.B) {
			c := &countingBackend{Backend: m}
			v := newShared(b, c).NewVerifier()
			if _, err := v.Check(b.Context()); err != nil {
				b.Fatal(err)
			}
			c.gets = 0
			for b.Loop() {
				b.StopTimer()
				if _, err := s.Append(b.Context(), sharedEvent(0)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := v.Check(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.gets)/float64(b.N), "gets/op")
		})
	}
}
