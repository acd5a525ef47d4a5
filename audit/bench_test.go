package audit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends from one goroutine, one after
// the other: every Append waits for its own fsync.
func BenchmarkAppend(b *testing.B) {
	l := newBenchLog(b)
	e := event(1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Append(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendParallel measures durable appends from 16 goroutines per
// CPU at once, the load group commit is for.
func BenchmarkAppendParallel(b *testing.B) {
	l := newBenchLog(b)
	e := event(1)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(b.Context(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerify measures Verify over logs of growing size; one op is a
// whole Verify, and ns/record is what one record costs.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			l := newBenchLog(b)
			b.SetBytes(writeChain(b, l, n))
			cpu := processCPU(b)
			b.ResetTimer()
			for b.Loop() {
				rep, err := l.Verify(b.Context())
				if err != nil || rep.Records != uint64(n) {
					b.Fatalf("Verify = %+v, %v", rep, err)
				}
			}
			records := float64(b.N) * float64(n)
			perRecord := float64(b.Elapsed().Nanoseconds()) / records
			b.ReportMetric(perRecord, "ns/record")
			b.ReportMetric(1e9/perRecord, "records/s")
			// On a shared machine the wall clock includes waiting for a
			// core; CPU time is what verifying costs.
			b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/records, "cpu-ns/record")
		})
	}
}

// BenchmarkVerifySections checks one log of 1,000,000 records in one
// pass and in as many sections as there are cores, back to back, so that
// both see the same machine: what checking sections in parallel gains.
func BenchmarkVerifySections(b *testing.B) {
	l := newBenchLog(b)
	size := writeChain(b, l, 1_000_000)
	f, err := os.Open(l.path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, k := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("sections=%d", k), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				n, _, _, err := walkSections(b.Context(), f, size, k, testSalt, 0)
				if err != nil || n != 1_000_000 {
					b.Fatalf("walkSections = %d, %v", n, err)
				}
			}
		})
	}
}

// processCPU returns the CPU time (user and system) this process used so
// far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newBenchLog(b *testing.B) testLog {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "audit.log")
	anchor := filepath.Join(dir, "audit.head")
	l, err := Open(path, anchor, testSalt)
	if err != nil {
		b.Fatal(err)
	}
	return testLog{Log: l, path: path, anchor: anchor}
}

// writeChain writes a valid log of n records and its anchor directly,
// without an fsync per record, and returns the log's size.
func writeChain(tb testing.TB, l testLog, n int) int64 {
	tb.Helper()
	f, err := os.Create(l.path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	prev, ts := GenesisHash, fixedTime()
	var size int64
	for i := range n {
		r := Record{Seq: uint64(i + 1), Timestamp: ts.Add(durationOf(i)), Event: event(i), PrevHash: prev}
		r.Hash = recordHash(testSalt, &r)
		line, err := encodeRecord(r)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(line)
		size += int64(len(line))
		prev = r.Hash
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := l.writeAnchor(uint64(n), prev); err != nil {
		tb.Fatal(err)
	}
	return size
}

func durationOf(i int) time.Duration { return time.Duration(i) * 1234567 * time.Nanosecond }

// BenchmarkQuery measures a filtered query over a year of records: 1M
// records (10,000 secrets rotated monthly at about 8 records a rotation),
// of which the filter keeps one secret's.
func BenchmarkQuery(b *testing.B) {
	const n = 1_000_000
	l := newBenchLog(b)
	b.SetBytes(writeChain(b, l, n))
	f := Filter{Secret: "clerk", Since: fixedTime(), Initiator: "user:"}
	cpu := processCPU(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Query(b.Context(), f, 100); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
	b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/float64(b.N)/n, "cpu-ns/record")
}
