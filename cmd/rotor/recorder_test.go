package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/rotation"
)

// batchTrail is a trail that records the batches written to it. Its
// first AppendAll announces itself on entered and waits for release, and
// fails when failFirst is set.
type batchTrail struct {
	trail // only AppendAll is used

	entered, release chan struct{}
	failFirst        bool

	mu      sync.Mutex
	calls   int
	batches [][]audit.Event
}

func (b *batchTrail) AppendAll(ctx context.Context, es []audit.Event) ([]audit.Record, error) {
	b.mu.Lock()
	b.calls++
	first := b.calls == 1
	b.mu.Unlock()
	if first {
		close(b.entered)
		<-b.release
		if b.failFirst {
			return nil, errors.New("backend unavailable")
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, append([]audit.Event(nil), es...))
	return make([]audit.Record, len(es)), nil
}

// written counts each secret's events across all batches.
func (b *batchTrail) written() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := map[string]int{}
	for _, batch := range b.batches {
		for _, e := range batch {
			n[e.Secret]++
		}
	}
	return n
}

// startTogether runs one "started" Record for s0 and, once its write is
// in flight, one for each of s1…s(k-1); it releases the first write when
// all of them are queued behind it, and returns every Record's error.
func startTogether(t *testing.T, tr *batchTrail, k int) []error {
	t.Helper()
	r := &recorder{trail: tr, initiator: "user:test", batch: true}
	record := func(i int) error {
		return r.Record(t.Context(), rotation.Event{Action: "rotate.start", Secret: fmt.Sprintf("s%d", i), Status: rotation.StatusStarted})
	}
	errs := make([]error, k)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = record(0) })
	<-tr.entered
	for i := 1; i < k; i++ {
		wg.Go(func() { errs[i] = record(i) })
	}
	// Bounded wait on the condition (a guard against a hang, not a timing).
	deadline := time.Now().Add(time.Minute)
	for {
		r.mu.Lock()
		queued := r.queued
		r.mu.Unlock()
		if queued == uint64(k) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events queued", queued, k)
		}
		runtime.Gosched()
	}
	close(tr.release)
	wg.Wait()
	return errs
}

// TestRecorderGroupCommit: rotations started while a chain write is in
// flight share the next write instead of writing one each, and each
// Record returns only once its event is written.
func TestRecorderGroupCommit(t *testing.T) {
	const k = 8
	tr := &batchTrail{entered: make(chan struct{}), release: make(chan struct{})}
	for i, err := range startTogether(t, tr, k) {
		if err != nil {
			t.Errorf("Record s%d: %v", i, err)
		}
	}
	if len(tr.batches) != 2 || len(tr.batches[0]) != 1 || len(tr.batches[1]) != k-1 {
		t.Errorf("batches of %v events, want 2 writes: 1, then the %d queued behind it", batchSizes(tr.batches), k-1)
	}
	for i := range k {
		if n := tr.written()[fmt.Sprintf("s%d", i)]; n != 1 {
			t.Errorf("s%d written %d times, want once", i, n)
		}
	}
}

// TestRecorderGroupCommitFailure: when the write in flight fails, its
// caller gets the error, and the events queued behind it are written by
// the next write, with the failed ones (as a lone Record's retry would).
func TestRecorderGroupCommitFailure(t *testing.T) {
	const k = 4
	tr := &batchTrail{entered: make(chan struct{}), release: make(chan struct{}), failFirst: true}
	errs := startTogether(t, tr, k)
	if errs[0] == nil {
		t.Error("the failed write's Record returned no error")
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("Record s%d: %v", i+1, err)
		}
	}
	if len(tr.batches) != 1 || len(tr.batches[0]) != k {
		t.Errorf("batches of %v events, want one write of all %d", batchSizes(tr.batches), k)
	}
}

func batchSizes(bs [][]audit.Event) []int {
	var n []int
	for _, b := range bs {
		n = append(n, len(b))
	}
	return n
}
