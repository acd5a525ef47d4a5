package audit

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// gatedBackend holds the next read of the head until it is let go, and
// counts the reads of the head.
type gatedBackend struct {
	Backend
	heads   atomic.Int32
	gate    chan struct{} // closed: reads go through
	entered chan struct{} // receives when a read waits at the gate
}

func (g *gatedBackend) Get(ctx context.Context, key string) ([]byte, Version, error) {
	if key == headKey {
		g.heads.Add(1)
		select {
		case <-g.gate:
		default:
			g.entered <- struct{}{}
			<-g.gate
		}
	}
	return g.Backend.Get(ctx, key)
}

// TestSavesConcurrentLatestShareARead: a Latest that waits while another
// reads the chain takes that read's answer instead of reading again.
func TestSavesConcurrentLatestShareARead(t *testing.T) {
	m := newMemBackend()
	sh, err := NewShared(m, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sh.Append(t.Context(), Event{Initiator: "user:ana", Action: "store.save", Secret: "clerk", Status: StatusSucceeded, StoreVersion: 1, StateDigest: strings.Repeat("d", 64)}); err != nil {
		t.Fatal(err)
	}
	g := &gatedBackend{Backend: m, gate: make(chan struct{}), entered: make(chan struct{})}
	reader, err := NewShared(g, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	x := reader.Saves()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { _, _, _, errs[0] = x.Latest(t.Context(), "clerk") })
	<-g.entered // the first caller reads the head, holding the Saves
	wg.Go(func() { _, _, _, errs[1] = x.Latest(t.Context(), "clerk") })
	for x.calls.Load() < 2 { // the second caller waits for the first
		runtime.Gosched()
	}
	close(g.gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := g.heads.Load(); n != 1 {
		t.Errorf("two concurrent Latest calls read the head %d times, want 1", n)
	}
	// A call after both reads again.
	if _, _, _, err := x.Latest(t.Context(), "clerk"); err != nil {
		t.Fatal(err)
	}
	if n := g.heads.Load(); n != 2 {
		t.Errorf("a later Latest: %d reads of the head in all, want 2", n)
	}
}
