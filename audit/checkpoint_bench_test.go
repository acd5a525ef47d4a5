package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// The chains of BenchmarkSavesFirstLoad: 10,000 secrets, a third of the
// records saves (a rotation writes about as many other events as saves),
// and the checkpoint cpTail records before the end, as a cron run finds
// the chain a few rotations after the last checkpoint.
const (
	benchSecrets = 10_000
	cpTail       = 500
)

// benchSavesEvent is record i of a chain of the benchmark.
func benchSavesEvent(i int) Event {
	if i%3 != 0 {
		return event(i)
	}
	return Event{Initiator: "ci:github:acme/app", Action: "store.save", Secret: fmt.Sprintf("s%05d", (i/3)%benchSecrets),
		Status: StatusSucceeded, StoreVersion: uint64(i/3/benchSecrets + 1), StateDigest: strings.Repeat("0123456789abcdef"[i%16:i%16+1], 64)}
}

// BenchmarkSavesFirstLoad measures a one-shot command's first load: a
// new Log or Shared and its Saves' first read, over chains of 10k, 100k
// and 1M records, from the checkpoint (cpTail records before the end)
// and with a full read (what every first load did before checkpoints,
// and what Scan still does). A log reports CPU time and the bytes of the
// log and checkpoint read; a shared chain (in memory, batches of 10
// records, as rotations write them) the values read, each a request to
// Vault or DynamoDB.
func BenchmarkSavesFirstLoad(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("log/records=%d", n), func(b *testing.B) {
			l := newBenchLog(b)
			writeSavesChain(b, l, 0, n-cpTail)
			if _, _, err := l.Saves().All(b.Context()); err != nil {
				b.Fatal(err)
			}
			cp, err := os.Stat(l.checkpointPath())
			if err != nil {
				b.Fatalf("no checkpoint: %v", err)
			}
			start := writeSavesChain(b, l, n-cpTail, n)
			size := start
			if fi, err := os.Stat(l.path); err == nil {
				size = fi.Size()
			}
			for _, from := range []string{"checkpoint", "full"} {
				b.Run(from, func(b *testing.B) {
					read := size
					if from == "checkpoint" {
						read = cp.Size() + size - start
					}
					benchFirstLoads(b, from, func() *Saves {
						l, err := Open(l.path, l.anchor, testSalt)
						if err != nil {
							b.Fatal(err)
						}
						return l.Saves()
					})
					b.ReportMetric(float64(read), "read-bytes/op")
				})
			}
		})
	}
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("shared/records=%d", n), func(b *testing.B) {
			m := newMemBackend()
			sh, err := NewShared(m, testSalt)
			if err != nil {
				b.Fatal(err)
			}
			appendSaves(b, sh, 0, n-cpTail)
			if _, _, err := sh.Saves().All(b.Context()); err != nil {
				b.Fatal(err)
			}
			if _, _, err := m.Get(b.Context(), checkpointKey); err != nil {
				b.Fatalf("no checkpoint: %v", err)
			}
			appendSaves(b, sh, n-cpTail, n)
			for _, from := range []string{"checkpoint", "full"} {
				b.Run(from, func(b *testing.B) {
					c := &countingGets{Backend: m}
					benchFirstLoads(b, from, func() *Saves {
						sh, err := NewShared(c, testSalt)
						if err != nil {
							b.Fatal(err)
						}
						return sh.Saves()
					})
					b.ReportMetric(float64(c.gets.Load())/float64(b.N), "gets/op")
				})
			}
		})
	}
}

// benchFirstLoads runs first loads of new Saves, from the checkpoint
// (Latest) or reading the whole chain (Scan), and reports their CPU
// time: on a shared machine the wall clock includes waiting for a core.
func benchFirstLoads(b *testing.B, from string, open func() *Saves) {
	cpu := processCPU(b)
	for b.Loop() {
		x := open()
		var err error
		if from == "checkpoint" {
			_, _, _, err = x.Latest(b.Context(), "s00000")
		} else {
			_, err = x.Scan(b.Context(), nil)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// writeSavesChain appends records from+1 to to of the benchmark's chain
// to l's file directly, without an fsync per record, moves the anchor to
// the last, and returns the log's size before.
func writeSavesChain(tb testing.TB, l testLog, from, to int) int64 {
	tb.Helper()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	prev := GenesisHash
	if from > 0 {
		recs, err := l.Tail(tb.Context(), 1)
		if err != nil || len(recs) != 1 {
			tb.Fatalf("Tail = %d records, %v", len(recs), err)
		}
		prev = recs[0].Hash
	}
	w := bufio.NewWriter(f)
	for i := from; i < to; i++ {
		r := Record{Seq: uint64(i + 1), Timestamp: fixedTime().Add(durationOf(i)), Event: benchSavesEvent(i), PrevHash: prev}
		r.Hash = recordHash(testSalt, &r)
		line, err := encodeRecord(r)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(line)
		prev = r.Hash
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := l.writeAnchor(uint64(to), prev); err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// appendSaves appends records from+1 to to of the benchmark's chain to
// sh, 10 a batch.
func appendSaves(tb testing.TB, sh *Shared, from, to int) {
	tb.Helper()
	for i := from; i < to; i += 10 {
		var es []Event
		for j := i; j < min(i+10, to); j++ {
			es = append(es, benchSavesEvent(j))
		}
		if _, err := sh.AppendAll(context.Background(), es); err != nil {
			tb.Fatal(err)
		}
	}
}

// countingGets counts the reads of a backend.
type countingGets struct {
	Backend
	gets atomic.Int64
}

func (c *countingGets) Get(ctx context.Context, key string) ([]byte, Version, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, key)
}
