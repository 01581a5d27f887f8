package alb

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// loadResult is one measured run.
type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// keepAliveLoad sends total GET requests to addr from conc clients, each
// on one keep-alive connection with a minimal HTTP/1.1 client (so the
// client costs little CPU), and records each request's latency.
func keepAliveLoad(tb testing.TB, addr string, conc, total int) loadResult {
	tb.Helper()
	hist := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	var mu sync.Mutex
	var errs int
	var wg sync.WaitGroup
	start := time.Now()
	for c := range conc {
		n := total / conc
		if c < total%conc {
			n++
		}
		wg.Go(func() {
			local := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				tb.Error(err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Minute))
			br := bufio.NewReader(conn)
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			bad := 0
			for range n {
				t0 := time.Now()
				if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
					tb.Error(err)
					return
				}
				resp, err := http.ReadResponse(br, req)
				if err != nil {
					tb.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad++
				}
				local.RecordValue(time.Since(t0).Microseconds())
			}
			mu.Lock()
			hist.Merge(local)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(start)
	return loadResult{
		rps:    float64(total) / el.Seconds(),
		p50:    time.Duration(hist.ValueAtQuantile(50)) * time.Microsecond,
		p99:    time.Duration(hist.ValueAtQuantile(99)) * time.Microsecond,
		errors: errs,
	}
}

// BenchmarkThroughput measures, in the same run, requests/s and latency
// direct to a net/http target and through the emulator to the same target,
// on loopback, and reports the latency the emulator adds. Run it with a
// fixed count, e.g. -bench Throughput -benchtime 40000x.
func BenchmarkThroughput(b *testing.B) {
	for _, bc := range []struct {
		name        string
		conc        int
		accessLog   bool
		reuseClosed bool // the pessimistic pool model, without the FIN check before reuse
	}{{"c1", 1, false, false}, {"c16", 16, false, false}, {"c16-accesslog", 16, true, false}, {"c16-reuseclosed", 16, false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			body := make([]byte, 512)
			be := startBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write(body)
			}), time.Minute)
			logPath := ""
			if bc.accessLog {
				logPath = filepath.Join(b.TempDir(), "access.log")
			}
			lb := startBenchLB(b, be.addr, logPath, bc.reuseClosed)
			keepAliveLoad(b, be.addr, bc.conc, 2000) // warm up both paths
			keepAliveLoad(b, lb.Addr(), bc.conc, 2000)
			b.ResetTimer()
			direct := keepAliveLoad(b, be.addr, bc.conc, b.N)
			via := keepAliveLoad(b, lb.Addr(), bc.conc, b.N)
			b.StopTimer()
			if direct.errors+via.errors > 0 {
				b.Fatalf("non-200 responses: direct %d, via alb %d", direct.errors, via.errors)
			}
			us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
			b.ReportMetric(direct.rps, "direct-req/s")
			b.ReportMetric(via.rps, "alb-req/s")
			b.ReportMetric(us(direct.p50), "direct-p50-µs")
			b.ReportMetric(us(via.p50), "alb-p50-µs")
			b.ReportMetric(us(direct.p99), "direct-p99-µs")
			b.ReportMetric(us(via.p99), "alb-p99-µs")
			b.ReportMetric(us(via.p50-direct.p50), "added-p50-µs")
			b.ReportMetric(us(via.p99-direct.p99), "added-p99-µs")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func startBenchLB(b *testing.B, target, accessLog string, reuseClosed bool) *LoadBalancer {
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, target)
	cfg.ReuseClosedIdleConnections = reuseClosed
	cfg.Listen, cfg.Admin, cfg.AccessLog = "127.0.0.1:0", "off", accessLog
	lb, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := lb.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lb.Close(context.Background()) })
	return lb
}
