// Package audittest is the conformance suite every [audit.Backend] must
// pass, and an in-memory backend ([Memory]) for tests.
//
// # Usage
//
// A backend package calls [Run] from one of its tests, with a constructor
// that returns a fresh, empty backend for every subtest:
//
//	func TestConformance(t *testing.T) {
//		audittest.Run(t, func(t *testing.T) audit.Backend {
//			return newTestBackend(t) // empty; cleaned up with t.Cleanup
//		})
//	}
//
// Backends on a real server (Vault, a DynamoDB emulator) give each subtest
// its own namespace, e.g. a prefix derived from t.Name().
//
// A backend on a server that other processes can reach also calls
// [RunProcesses] from a top-level test: writers in several processes
// extend one chain, and writers killed with SIGKILL mid-append leave it
// verifiable. Its TestMain must not start the server again in a writer
// ([InChild]).
//
// # What it checks
//
// The contract written on [audit.Backend]: ErrNotExist for a key never
// written; create-only Puts with [audit.NoVersion]; compare-and-swap on
// versions, with exactly one winner among concurrent writers; values
// returned byte for byte up to [audit.MaxBackendValue], and copied in and
// out; keys that differ only in a suffix kept apart. Then it runs a
// [audit.Shared] chain on the backend: writers on several chains at once
// must build one gap-free chain that verifies, and a record changed through
// the backend without the salt must fail verification. Last, [audit.Saves]
// on the chain write their checkpoint there, overwrite it, and start
// from it: a fresh one reads a few values, not the whole chain, and
// finds what a full read finds.
//
// # Cost
//
// The suite never sleeps. Its concurrent subtests run 8 goroutines at most;
// the checkpoint subtest writes two histories of 90 batches, and the
// suite makes about a thousand calls in all.
package audittest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rotor-dev/rotor/audit"
)

const writers = 8

// Salt is the salt the suite's chains are keyed with.
var Salt = bytes.Repeat([]byte{0x42}, audit.SaltSize)

// Run runs the conformance suite as subtests of t. newBackend must return
// a fresh, empty backend each time it is called; it is called once per
// subtest with that subtest's t.
func Run(t *testing.T, newBackend func(t *testing.T) audit.Backend) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, b audit.Backend)
	}{
		{"GetUnknownKeyIsNotExist", testGetUnknown},
		{"CreateTwiceConflicts", testCreateTwice},
		{"StaleVersionConflicts", testStaleVersion},
		{"PutMissingKeyWithVersionConflicts", testPutMissingWithVersion},
		{"ConcurrentCreatesOneWins", testConcurrentCreates},
		{"ConcurrentSwapsOneWins", testConcurrentSwaps},
		{"ValuesRoundTrip", testValuesRoundTrip},
		{"ValuesAreCopied", testValuesCopied},
		{"KeysAreDistinct", testKeysDistinct},
		{"ChainWritersDoNotFork", testChainWriters},
		{"ChainWritersRaceForOneBatch", testChainRace},
		{"ChainTamperingDetected", testChainTampering},
		{"SavesStartFromACheckpoint", testSavesCheckpoint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newBackend(t))
		})
	}
}

func testGetUnknown(t *testing.T, b audit.Backend) {
	if _, _, err := b.Get(t.Context(), "records/1"); !errors.Is(err, audit.ErrNotExist) {
		t.Fatalf("Get of a key never written = %v, want ErrNotExist", err)
	}
}

func put(t *testing.T, b audit.Backend, key, value string, expected audit.Version) audit.Version {
	t.Helper()
	v, err := b.Put(t.Context(), key, []byte(value), expected)
	if err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	if v == audit.NoVersion {
		t.Fatalf("Put(%s) returned NoVersion", key)
	}
	return v
}

func get(t *testing.T, b audit.Backend, key string) (string, audit.Version) {
	t.Helper()
	data, v, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return string(data), v
}

func testCreateTwice(t *testing.T, b audit.Backend) {
	v := put(t, b, "records/1", "first\n", audit.NoVersion)
	if _, err := b.Put(t.Context(), "records/1", []byte("second\n"), audit.NoVersion); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
	if got, gv := get(t, b, "records/1"); got != "first\n" || gv != v {
		t.Fatalf("after a refused create: %q version %q, want the first value, version %q", got, gv, v)
	}
}

func testStaleVersion(t *testing.T, b audit.Backend) {
	v1 := put(t, b, "head", "one", audit.NoVersion)
	v2 := put(t, b, "head", "two", v1)
	if v2 == v1 {
		t.Fatalf("version %q did not change on Put", v1)
	}
	if _, err := b.Put(t.Context(), "head", []byte("three"), v1); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("Put with a stale version = %v, want ErrConflict", err)
	}
	if got, gv := get(t, b, "head"); got != "two" || gv != v2 {
		t.Fatalf("after a refused Put: %q version %q, want \"two\" version %q", got, gv, v2)
	}
}

func testPutMissingWithVersion(t *testing.T, b audit.Backend) {
	v := put(t, b, "head", "x", audit.NoVersion)
	if _, err := b.Put(t.Context(), "other", []byte("y"), v); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("Put of a missing key with a version = %v, want ErrConflict", err)
	}
	if _, _, err := b.Get(t.Context(), "other"); !errors.Is(err, audit.ErrNotExist) {
		t.Fatalf("Get after a refused Put = %v, want ErrNotExist", err)
	}
}

// race runs writers goroutines released together and returns how many of
// their calls succeeded and the errors of the others.
func race(t *testing.T, call func(i int) error) (wins int) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		start = make(chan struct{})
	)
	for i := range writers {
		wg.Go(func() {
			<-start
			err := call(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, audit.ErrConflict):
				t.Errorf("writer %d: %v, want success or ErrConflict", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return wins
}

func testConcurrentCreates(t *testing.T, b audit.Backend) {
	for round := range 3 {
		key := fmt.Sprintf("records/%d", round+1)
		wins := race(t, func(i int) error {
			_, err := b.Put(t.Context(), key, []byte(fmt.Sprintf("writer %d\n", i)), audit.NoVersion)
			return err
		})
		if wins != 1 {
			t.Fatalf("round %d: %d of %d concurrent creates succeeded, want exactly 1", round, wins, writers)
		}
	}
}

func testConcurrentSwaps(t *testing.T, b audit.Backend) {
	v := put(t, b, "head", "start", audit.NoVersion)
	for round := range 3 {
		wins := race(t, func(i int) error {
			_, err := b.Put(t.Context(), "head", []byte(fmt.Sprintf("round %d writer %d", round, i)), v)
			return err
		})
		if wins != 1 {
			t.Fatalf("round %d: %d of %d concurrent swaps succeeded, want exactly 1", round, wins, writers)
		}
		_, v = get(t, b, "head")
	}
}

func testValuesRoundTrip(t *testing.T, b audit.Backend) {
	line := `{"seq":1,"detail":"ünïcode \"quoted\" <tag> & \u2028"}` + "\n"
	values := map[string]string{
		"records/1": line,
		"records/2": strings.Repeat(line, audit.MaxBackendValue/len(line)),
		"records/3": "no newline at the end",
		"head":      `{"seq":2}`,
	}
	for key, want := range values {
		put(t, b, key, want, audit.NoVersion)
	}
	for key, want := range values {
		if got, _ := get(t, b, key); got != want {
			t.Errorf("Get(%s) returned %d bytes that differ from the %d stored", key, len(got), len(want))
		}
	}
}

func testValuesCopied(t *testing.T, b audit.Backend) {
	in := []byte("original\n")
	if _, err := b.Put(t.Context(), "records/1", in, audit.NoVersion); err != nil {
		t.Fatal(err)
	}
	copy(in, "CHANGED!")
	out, _, err := b.Get(t.Context(), "records/1")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "original\n" {
		t.Fatalf("Get = %q after the caller changed the slice it passed to Put", out)
	}
	copy(out, "CHANGED!")
	if again, _ := get(t, b, "records/1"); again != "original\n" {
		t.Fatalf("Get = %q after the caller changed the slice an earlier Get returned", again)
	}
}

func testKeysDistinct(t *testing.T, b audit.Backend) {
	for _, k := range []string{"records/1", "records/10", "records/100"} {
		put(t, b, k, k, audit.NoVersion)
	}
	for _, k := range []string{"records/1", "records/10", "records/100"} {
		if got, _ := get(t, b, k); got != k {
			t.Errorf("Get(%s) = %q", k, got)
		}
	}
}

// testChainWriters appends from several Shared chains on the backend at
// once, as several machines would, and checks one chain results.
func testChainWriters(t *testing.T, b audit.Backend) {
	const chains, perChain, each = 4, 2, 6
	var wg sync.WaitGroup
	for c := range chains {
		sh, err := audit.NewShared(b, Salt)
		if err != nil {
			t.Fatal(err)
		}
		for g := range perChain {
			wg.Go(func() {
				for i := range each {
					e := audit.Event{Initiator: fmt.Sprintf("user:c%d", c), Action: "test.append", Status: audit.StatusSucceeded, Detail: fmt.Sprintf("c%d g%d #%d", c, g, i)}
					if _, err := sh.Append(t.Context(), e); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	sh, rep := verifyShared(t, b)
	const total = chains * perChain * each
	if rep.Records != total || rep.Anchored != total {
		t.Fatalf("Verify = %+v, want %d records, the head at the last", rep, total)
	}
	recs, err := sh.Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Detail] {
			t.Fatalf("%q is in the chain twice", r.Detail)
		}
		seen[r.Detail] = true
	}
	if len(seen) != total {
		t.Fatalf("the chain holds %d distinct events, want %d", len(seen), total)
	}
}

// testChainRace makes two chains on the backend write their first batch
// at the same moment, whatever the scheduler does: the backend holds each
// chain's create of records/1 until the other's has arrived. One create
// must win and the other chain append after it, so the chain holds both
// events; a backend that lets both creates succeed loses one.
func testChainRace(t *testing.T, b audit.Backend) {
	gate := &rendezvous{Backend: b, key: "records/1", all: make(chan struct{})}
	var wg sync.WaitGroup
	for c := range 2 {
		sh, err := audit.NewShared(gate, Salt)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			e := audit.Event{Initiator: fmt.Sprintf("user:c%d", c), Action: "test.append", Status: audit.StatusSucceeded, Detail: fmt.Sprintf("c%d", c)}
			if _, err := sh.Append(t.Context(), e); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Wait()
	if _, rep := verifyShared(t, b); rep.Records != 2 || rep.Anchored != 2 {
		t.Fatalf("Verify = %+v, want both chains' events and the head at the second: a create that lost was not refused", rep)
	}
}

// verifyShared opens the chain on b afresh, as another machine would, and
// verifies it; it fails t if the chain does not verify.
func verifyShared(t *testing.T, b audit.Backend) (*audit.Shared, audit.Report) {
	t.Helper()
	sh, err := audit.NewShared(b, Salt)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sh.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return sh, rep
}

// rendezvous holds the first two creates of key until both have arrived,
// then lets them through together.
type rendezvous struct {
	audit.Backend
	key  string
	mu   sync.Mutex
	seen int
	all  chan struct{}
}

func (r *rendezvous) Put(ctx context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	if key == r.key && expected == audit.NoVersion {
		r.mu.Lock()
		r.seen++
		n := r.seen
		r.mu.Unlock()
		if n <= 2 {
			if n == 2 {
				close(r.all)
			}
			select {
			case <-r.all:
			case <-ctx.Done():
				return audit.NoVersion, ctx.Err()
			}
		}
	}
	return r.Backend.Put(ctx, key, value, expected)
}

// testChainTampering changes a record through the backend, as someone who
// can write the store but does not hold the salt, and checks Verify and
// the next append notice.
func testChainTampering(t *testing.T, b audit.Backend) {
	sh, err := audit.NewShared(b, Salt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := sh.Append(t.Context(), audit.Event{Initiator: "user:ana", Action: "rotate", Status: audit.StatusSucceeded, Detail: fmt.Sprintf("event %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	data, v, err := b.Get(t.Context(), "records/3")
	if err != nil {
		t.Fatalf("the last record is not under records/3: %v", err)
	}
	forged := bytes.Replace(data, []byte("user:ana"), []byte("user:bob"), 1)
	if _, err := b.Put(t.Context(), "records/3", forged, v); err != nil {
		t.Fatal(err)
	}
	fresh, err := audit.NewShared(b, Salt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Verify(t.Context()); !errors.Is(err, audit.ErrChainBroken) {
		t.Fatalf("Verify of a forged record = %v, want ErrChainBroken", err)
	}
	if _, err := fresh.Append(t.Context(), audit.Event{Initiator: "user:ana", Action: "rotate", Status: audit.StatusStarted}); !errors.Is(err, audit.ErrChainBroken) {
		t.Fatalf("Append after a forged record = %v, want ErrChainBroken", err)
	}
}

// testSavesCheckpoint appends a history long enough for a checkpoint to
// be due, lets a fresh [audit.Saves] read it (and write the checkpoint),
// appends as much again and lets another fresh one read on from the
// checkpoint (and overwrite it), then checks that a third reads the
// checkpoint and the batches after it only and finds what a full read
// finds.
func testSavesCheckpoint(t *testing.T, b audit.Backend) {
	sh, err := audit.NewShared(b, Salt)
	if err != nil {
		t.Fatal(err)
	}
	history := func(round uint64) {
		// 90 batches of 8 saves of 40 secrets: about 300 KB, more than
		// a checkpoint of 40 secrets and than the least a Saves reads
		// before it writes one.
		for i := range 90 {
			var es []audit.Event
			for j := range 8 {
				n := i*8 + j
				es = append(es, audit.Event{Initiator: "user:ana", Action: "store.save", Secret: fmt.Sprintf("s%02d", n%40),
					Status: audit.StatusSucceeded, StoreVersion: round*100 + uint64(n/40) + 1, StateDigest: strings.Repeat("0123456789abcdef"[n%16:n%16+1], 64)})
			}
			if _, err := sh.AppendAll(t.Context(), es); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := func(b audit.Backend) (audit.ChainHead, map[string]audit.Save) {
		t.Helper()
		sh, err := audit.NewShared(b, Salt)
		if err != nil {
			t.Fatal(err)
		}
		head, saves, err := sh.Saves().All(t.Context())
		if err != nil {
			t.Fatalf("Saves.All: %v", err)
		}
		return head, saves
	}
	history(0)
	all(b) // reads all, writes the checkpoint
	history(1)
	all(b) // reads on from the checkpoint, overwrites it
	if _, err := sh.Append(t.Context(), audit.Event{Initiator: "user:ana", Action: "rotate", Status: audit.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}

	full, err := audit.NewShared(b, Salt)
	if err != nil {
		t.Fatal(err)
	}
	scan, err := full.Saves().Scan(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingGets{Backend: b}
	head, saves := all(c)
	if head != scan.Head || !maps.Equal(saves, scan.Saves) {
		t.Fatalf("a Saves starting from the checkpoint found head %+v and %d saves, a full read head %+v and %d saves", head, len(saves), scan.Head, len(scan.Saves))
	}
	// The head, the checkpoint (its header and one part), the batch of
	// its record and, before reading the batch appended since, that one
	// again: one value per batch would be 182.
	if n := c.gets.Load(); n > 6 {
		t.Errorf("a fresh Saves read %d values of a chain of 181 batches with a checkpoint at the 180th, want at most 6", n)
	}
}

// countingGets counts the reads of a backend.
type countingGets struct {
	audit.Backend
	gets atomic.Int32
}

func (c *countingGets) Get(ctx context.Context, key string) ([]byte, audit.Version, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, key)
}
