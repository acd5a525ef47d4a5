package server_test

import (
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/server"
)

// BenchmarkServedUnderFlood measures what a valid client gets from the API
// while 8 goroutines flood it, over HTTP on loopback, with requests that
// carry no or unknown credentials, under the default denial limits: b.N
// valid GET /v1/secrets one after the other. It reports the valid requests
// served per second, the flood's requests per second, and the audit
// records the flood added. BenchmarkServedIdle is the same without the
// flood, and BenchmarkServedUnderFloodUnlimited the same flood with every
// refusal recorded on its own (rotor before denial limits). See
// BENCHMARKS.md.
func BenchmarkServedUnderFlood(b *testing.B) { benchmarkServed(b, 8, server.DefaultDenialRate) }

// BenchmarkServedIdle is BenchmarkServedUnderFlood without the flood.
func BenchmarkServedIdle(b *testing.B) { benchmarkServed(b, 0, server.DefaultDenialRate) }

// BenchmarkServedUnderFloodUnlimited is BenchmarkServedUnderFlood without
// denial limits: every refusal is answered 401 and recorded.
func BenchmarkServedUnderFloodUnlimited(b *testing.B) { benchmarkServed(b, 8, 0) }

// benchmarkServed runs the benchmark with the default denial limits at
// perSecond refusals a second, or none when perSecond is 0.
func benchmarkServed(b *testing.B, flooders int, perSecond float64) {
	var f *floodAPI
	if perSecond == 0 {
		f = newFloodAPIWith(b, server.WithDenialLimits(1e9, 1<<30, time.Nanosecond))
	} else {
		f = newFloodAPI(b, perSecond)
	}
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var flood atomic.Int64
	for i := range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := srv.Client()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				if code := f.get(b, c, srv.URL, floodToken(i, j)); code != 401 && code != 429 {
					b.Errorf("flood answered %d", code)
					return
				}
				flood.Add(1)
			}
		}()
	}
	c := srv.Client()
	start := time.Now()
	for b.Loop() {
		if code := f.get(b, c, srv.URL, tokAdmin); code != 200 {
			b.Fatalf("valid request answered %d", code)
		}
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	srv.Close()
	f.api.Close()
	recs, err := f.b.Log.Tail(b.Context(), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "valid_req/s")
	b.ReportMetric(float64(flood.Load())/elapsed.Seconds(), "flood_req/s")
	b.ReportMetric(float64(len(recs)), "audit_records")
}

// BenchmarkRefusalsFromManyClients sends refusals (no credential) from 100,
// 1,000 and 10,000 addresses in turn, straight to the handler, within one
// denial window, and reports the audit records they added: bounded by the
// per-window cap whatever the number of clients or requests.
func BenchmarkRefusalsFromManyClients(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			f := newFloodAPI(b, server.DefaultDenialRate)
			i := 0
			for b.Loop() {
				if code := f.serve(fmt.Sprintf("10.%d.%d.1:1234", i%n/250, i%n%250), ""); code != 401 && code != 429 {
					b.Fatalf("answered %d", code)
				}
				i++
			}
			f.api.Close()
			recs, err := f.b.Log.Tail(b.Context(), 0)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(recs)), "audit_records")
		})
	}
}
