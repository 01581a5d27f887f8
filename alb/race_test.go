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

// raceScale is the time scale of the keep-alive race tests. The load
// balancer's idle timeout is also its client idle timeout and its response
// timeout; at 0.05 the default 60 s is 3 s, so a loaded machine that stalls
// the test process for a moment (seen: > 600 ms under -race with other
// suites running) turns neither a target response into a 504 nor a client
// connection into a keep-alive race of its own on the client side.
const raceScale = 0.05

// robustTimeouts sets raceScale and a connect timeout of 3 s (60 s
// unscaled), keeping the 60 s default idle timeout unless cfg sets one.
func robustTimeouts(cfg *Config) {
	cfg.TimeScale = raceScale
	cfg.ConnectTimeout = Duration(60 * time.Second)
}

// sweep is a traffic pattern for the true keep-alive race: rounds of conc
// concurrent requests (one per client connection, so the load balancer
// holds about conc pooled target connections that all went idle within the
// same fraction of a millisecond), each round after an idle gap. The gaps
// run from lo to hi in steps of step, pass after pass, until maxRequests
// requests were sent, budget has passed, or stopAt 502s were seen (0:
// never stop early).
type sweep struct {
	conc          int
	lo, hi, step  time.Duration
	maxRequests   int
	budget        time.Duration
	stopAt        int
	roundsRun     int
	requestsSent  int
	statusCounts  map[int]int
	clientFailure int
}

func (s *sweep) run(t *testing.T, tl *testLB) {
	t.Helper()
	var mu sync.Mutex
	s.statusCounts = map[int]int{}
	round := func() {
		var wg sync.WaitGroup
		for range s.conc {
			wg.Go(func() {
				resp, err := tl.client.Get(tl.URL() + "/")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("client: %v", err)
					s.clientFailure++
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				s.statusCounts[resp.StatusCode]++
			})
		}
		wg.Wait()
		s.roundsRun++
		s.requestsSent += s.conc
	}
	deadline := time.Now().Add(s.budget)
	for gap := s.lo; s.requestsSent < s.maxRequests && time.Now().Before(deadline); gap += s.step {
		if gap > s.hi {
			gap = s.lo
		}
		round()
		if s.stopAt > 0 && s.statusCounts[http.StatusBadGateway] >= s.stopAt {
			break
		}
		time.Sleep(gap)
	}
}

// TestKeepAliveRace reproduces the keep-alive race under the default
// configuration, where the load balancer (like the ALB) looks for a FIN on
// an idle pooled connection before reusing it and so never sends on a
// connection the target closed a while ago. What is left is the true race:
// the target's idle timer fires at the instant a request is on its way.
// The target is a plain net/http server with IdleTimeout set: when the
// timer fires its connection goroutine stops reading and closes the socket
// a moment later. A request the load balancer sends on that connection
// after its FIN check found it alive, and that reaches the target after
// the timer fired, gets a 502: it lands on a socket nobody reads any more
// and the close answers it with an RST (the usual case), or the FIN
// crosses it on the wire.
//
// To land requests in that window the traffic is 16 concurrent
// connections, all reused together after an idle gap, and the gap sweeps
// in 50 µs steps across the target's idle timeout (20 ms): each round puts
// 16 requests at slightly different offsets around the close, so some
// cross it. On this 2-core machine 2–6% of the requests hit it (about 1 in
// 50 with -race under load, 1 in 20 without); the sweep stops after
// 3 502s, at 1,000 requests or after 4 s, so it is bounded and a run that
// saw none fails. With a target keep-alive longer than the load balancer's
// idle timeout (60 s, 3 s at this test's scale) the same traffic yields no
// 502 at all.
func TestKeepAliveRace(t *testing.T) {
	const (
		shortIdle = 20 * time.Millisecond // target keep-alive in the racy case
		lbIdle    = 60 * time.Second      // 3 s at raceScale
	)
	cases := []struct {
		name       string
		targetIdle time.Duration
		want502    bool
	}{
		{"target keep-alive shorter than LB idle timeout", shortIdle, true},
		{"target keep-alive longer than LB idle timeout", 5 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := startBackend(t, nameHandler("a", nil), tc.targetIdle)
			cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr)
			cfg.IdleTimeout = Duration(lbIdle)
			robustTimeouts(&cfg)
			tl := startLB(t, cfg)
			if cfg.ReuseClosedIdleConnections {
				t.Fatal("the race must be shown with the default pool model")
			}
			s := &sweep{
				conc: 16, lo: shortIdle - 3*time.Millisecond, hi: shortIdle + time.Millisecond, step: 50 * time.Microsecond,
				maxRequests: 1000, budget: 4 * time.Second,
			}
			if tc.want502 {
				s.stopAt = 3
			}
			start := time.Now()
			s.run(t, tl)
			t.Logf("%d rounds, %d requests in %v: status counts %v", s.roundsRun, s.requestsSent, time.Since(start).Round(time.Millisecond), s.statusCounts)
			if s.clientFailure > 0 {
				t.Fatalf("%d client-side failures", s.clientFailure)
			}
			if !tc.want502 {
				if s.statusCounts[http.StatusOK] != s.requestsSent {
					t.Fatalf("status counts %v, want %d×200 with target keep-alive %v > LB idle timeout %v", s.statusCounts, s.requestsSent, tc.targetIdle, tl.idle)
				}
				return
			}
			if s.statusCounts[http.StatusBadGateway] == 0 {
				t.Fatalf("no 502s in %d requests with target keep-alive %v < LB idle timeout %v", s.requestsSent, tc.targetIdle, tl.idle)
			}
			for code, n := range s.statusCounts {
				if code != http.StatusOK && code != http.StatusBadGateway {
					t.Errorf("%d× status %d: only 200 and the race's 502 are expected", n, code)
				}
			}
			for _, e := range tl.seen.all() {
				if e.ELBStatusCode != http.StatusBadGateway {
					continue
				}
				if c := accesslog.TransportClass(e.ErrorReason); e.TargetStatusCode != 0 || c != accesslog.ClassEOF && c != accesslog.ClassReset {
					t.Fatalf("502 not classified as a target close: %s", fmtEntry(e))
				}
			}
		})
	}
}

// TestReuseClosedIdleConnectionsWidensRace: with the pessimistic pool
// model (ReuseClosedIdleConnections) the load balancer reuses connections
// the target closed while idle without looking, so traffic whose idle gaps
// all exceed the target's keep-alive (100 ms) gets a 502 on every such
// reuse. The default model drops those connections before reuse; the same
// traffic then gets far fewer (in practice none: no gap is near the
// target's idle timeout, so no close crosses a request).
func TestReuseClosedIdleConnectionsWidensRace(t *testing.T) {
	ms := time.Millisecond
	gaps := []time.Duration{150 * ms, 200 * ms, 300 * ms, 0}
	run := func(reuseClosed bool) int {
		be := startBackend(t, nameHandler("a", nil), 100*ms)
		cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr)
		robustTimeouts(&cfg)
		cfg.ReuseClosedIdleConnections = reuseClosed
		tl := startLB(t, cfg)
		counts := keepAliveTraffic(t, tl, gaps)
		t.Logf("reuseClosedIdleConnections=%v: status counts %v", reuseClosed, counts)
		return counts[http.StatusBadGateway]
	}
	pessimistic, faithful := run(true), run(false)
	if pessimistic == 0 {
		t.Fatal("no 502s with ReuseClosedIdleConnections: the traffic does not reuse closed connections")
	}
	if faithful*4 > pessimistic {
		t.Fatalf("502s by default %d, with ReuseClosedIdleConnections %d: want far fewer by default", faithful, pessimistic)
	}
}
