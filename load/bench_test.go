package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkMaxThroughput measures sustained requests per second of the get
// workload in the closed model (64 sessions, no think time) against a
// trivial loopback server sharing the same cores, with one shared
// connection pool and with a pool per session. Reported as req/s and the
// p99 latency of the last run.
func BenchmarkMaxThroughput(b *testing.B) {
	for _, c := range []Connections{Shared, PerSession} {
		b.Run(string(c), func(b *testing.B) { benchThroughput(b, c) })
	}
}

func benchThroughput(b *testing.B, conns Connections) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	g, _ := NewGet([]string{srv.URL}, "", nil, nil)
	d := 2 * time.Second
	var total int64
	var elapsed time.Duration
	var p99 float64
	for b.Loop() {
		r, err := NewRunner(Config{Workload: g, Model: Closed, Profile: Constant{64}, Duration: d, Connections: conns})
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.Run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		total += res.Totals.Counts["200"]
		elapsed += res.Duration()
		p99 = res.Latency.P99MS
		if res.Totals.Errors > 0 {
			b.Fatalf("errors: %v", res.Totals.Counts)
		}
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "req/s")
	b.ReportMetric(p99, "p99-ms")
}

// BenchmarkLongRunMemory runs the open model for a while and reports the
// live heap after it: with no per-request storage it stays flat however
// many requests were sent. It also reports the latency tail next to the
// generator's own dispatch lag, and how many arrivals waited for the cap.
func BenchmarkLongRunMemory(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	g, _ := NewGet([]string{srv.URL}, "", nil, nil)
	for b.Loop() {
		r, err := NewRunner(Config{Workload: g, Model: Open, Profile: Constant{5000}, Duration: 10 * time.Second, MaxInFlight: 64})
		if err != nil {
			b.Fatal(err)
		}
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			defer close(done)
			<-r.Started()
			for range 10 {
				time.Sleep(time.Second)
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak.Store(max(peak.Load(), ms.HeapInuse))
			}
		}()
		res, err := r.Run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		<-done
		b.ReportMetric(float64(res.Totals.Requests), "requests")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(res.Latency.P50MS, "p50-ms")
		b.ReportMetric(res.Latency.P99MS, "p99-ms")
		if g := res.Generator; g != nil {
			b.ReportMetric(g.DispatchLag.P50MS, "lag-p50-ms")
			b.ReportMetric(g.DispatchLag.P99MS, "lag-p99-ms")
			b.ReportMetric(float64(g.WaitedForCap), "waited")
		}
	}
}
