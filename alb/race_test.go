package alb

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
)

// keepAliveTraffic sends rounds of concurrent bursts (8 clients × 5
// requests) separated by idle gaps, so the pooled target connections sit
// idle for each gap before they are reused. It returns the status counts.
func keepAliveTraffic(t *testing.T, tl *testLB, gaps []time.Duration) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	for _, gap := range gaps {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 5 {
					resp, err := tl.client.Get(tl.URL() + "/")
					if err != nil {
						t.Errorf("client: %v", err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					counts[resp.StatusCode]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		time.Sleep(gap)
	}
	return counts
}

// TestKeepAliveRace: a target whose keep-alive (idle) timeout is shorter
// than the load balancer's closes pooled connections the load balancer
// still holds; the next request sent on one gets a 502. A target that keeps
// connections longer than the load balancer never does.
func TestKeepAliveRace(t *testing.T) {
	lbIdle := 60 * time.Second // 600 ms scaled
	cases := []struct {
		name       string
		targetIdle time.Duration
		want502    bool
	}{
		{"target keep-alive shorter than LB idle timeout", 100 * time.Millisecond, true},
		{"target keep-alive longer than LB idle timeout", 2 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := startBackend(t, nameHandler("a", nil), tc.targetIdle)
			cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr)
			cfg.IdleTimeout = Duration(lbIdle)
			tl := startLB(t, cfg)
			// Gaps around the short target idle timeout (100 ms), shorter
			// than the LB's 600 ms (so the LB keeps its pooled connections),
			// and one longer than the LB's (it closes them itself).
			ms := time.Millisecond
			counts := keepAliveTraffic(t, tl, []time.Duration{60 * ms, 150 * ms, 80 * ms, 200 * ms, 700 * ms, 120 * ms, 0})
			total := 7 * 8 * 5
			t.Logf("status counts: %v", counts)
			if tc.want502 {
				if counts[http.StatusBadGateway] == 0 {
					t.Fatalf("no 502s with target keep-alive %v < LB idle timeout %v", tc.targetIdle, tl.idle)
				}
				for _, e := range tl.seen.all() {
					if e.ELBStatusCode == 502 && (e.TargetStatusCode != 0 || accesslog.TransportClass(e.ErrorReason) != accesslog.ClassEOF && accesslog.TransportClass(e.ErrorReason) != accesslog.ClassReset) {
						t.Fatalf("502 not classified as a target close: %s", fmtEntry(e))
					}
				}
			} else if counts[http.StatusOK] != total {
				t.Fatalf("status counts %v, want %d×200 with target keep-alive %v > LB idle timeout %v", counts, total, tc.targetIdle, tl.idle)
			}
		})
	}
}

// TestCheckIdleConnectionsNarrowsRace: with CheckIdleConnections the load
// balancer notices connections the target closed while idle and does not
// send on them, so the same traffic against the same short keep-alive
// yields far fewer 502s (only closes that cross a request on the wire).
func TestCheckIdleConnectionsNarrowsRace(t *testing.T) {
	ms := time.Millisecond
	gaps := []time.Duration{150 * ms, 200 * ms, 300 * ms, 0}
	run := func(check bool) int {
		be := startBackend(t, nameHandler("a", nil), 100*ms)
		cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr)
		cfg.CheckIdleConnections = check
		tl := startLB(t, cfg)
		counts := keepAliveTraffic(t, tl, gaps)
		t.Logf("check=%v: status counts %v", check, counts)
		return counts[http.StatusBadGateway]
	}
	without, with := run(false), run(true)
	if without == 0 {
		t.Fatal("no 502s without the check: the traffic does not reach the race")
	}
	if with*4 > without {
		t.Fatalf("502s with the idle check %d, without %d: want far fewer", with, without)
	}
}
