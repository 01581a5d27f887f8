package alb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
)

// testScale runs every ALB duration 100 times faster: a 5 s health-check
// interval is 50 ms, the 10 s connect timeout 100 ms, the 60 s idle
// timeout 600 ms.
const testScale = 0.01

// backend is a real net/http target on a loopback port.
type backend struct {
	addr string
	srv  *http.Server
}

// startBackend serves h on 127.0.0.1:0 with the given keep-alive idle
// timeout (0 = net/http's default, which is "no idle timeout").
func startBackend(t testing.TB, h http.Handler, idle time.Duration) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, IdleTimeout: idle, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &backend{addr: ln.Addr().String(), srv: srv}
}

// nameHandler answers 200 with its name on every path, and the health
// path with health().
func nameHandler(name string, health func() int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			code := http.StatusOK
			if health != nil {
				code = health()
			}
			w.WriteHeader(code)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	})
}

// entries collects access-log entries from Options.OnRequest.
type entries struct {
	mu   sync.Mutex
	list []accesslog.Entry
}

func (c *entries) add(e *accesslog.Entry) {
	c.mu.Lock()
	c.list = append(c.list, *e)
	c.mu.Unlock()
}

func (c *entries) all() []accesslog.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]accesslog.Entry(nil), c.list...)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testLB struct {
	*LoadBalancer
	log    *syncBuffer
	seen   *entries
	client *http.Client
	admin  *Client
}

// startLB starts a load balancer on loopback ephemeral ports with the test
// time scale, unless cfg sets its own.
func startLB(t *testing.T, cfg Config) *testLB {
	t.Helper()
	cfg.Listen, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.TimeScale == 0 {
		cfg.TimeScale = testScale
	}
	tl := &testLB{log: &syncBuffer{}, seen: &entries{}}
	lb, err := New(cfg, Options{AccessLog: tl.log, OnRequest: tl.seen.add, Logf: func(f string, a ...any) { t.Logf("alb: "+f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := lb.Close(ctx); err != nil {
			t.Errorf("closing load balancer: %v", err)
		}
	})
	tl.LoadBalancer = lb
	tl.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(tl.client.CloseIdleConnections)
	tl.admin = NewClient(lb.AdminURL(), cfg.AdminToken, nil)
	return tl
}

// get sends GET path and returns status, body and the X-Backend header.
func (tl *testLB) get(t *testing.T, path string) (int, string, string) {
	t.Helper()
	resp, err := tl.client.Get(tl.URL() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("X-Backend")
}

// state returns the target's state and reason from DescribeTargetHealth.
func (tl *testLB) state(t *testing.T, group, addr string) (string, string) {
	t.Helper()
	out, err := tl.DescribeTargetHealth(DescribeTargetHealthInput{TargetGroupName: group, Targets: []TargetDescription{desc(addr)}})
	if err != nil {
		t.Fatal(err)
	}
	th := out.TargetHealthDescriptions[0].TargetHealth
	return th.State, th.Reason
}

// waitState polls until addr reaches state or the deadline passes.
func (tl *testLB) waitState(t *testing.T, group, addr, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s, r := tl.state(t, group, addr)
		if s == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("target %s: state %s (%s), want %s within %v", addr, s, r, want, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func desc(addr string) TargetDescription {
	return targetDescription(addr)
}

// metric returns the value of a metric series from the registry.
func metricValue(t *testing.T, lb *LoadBalancer, name, group string) float64 {
	t.Helper()
	mfs, err := lb.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target_group" && l.GetValue() == group {
					switch {
					case m.Counter != nil:
						return m.Counter.GetValue()
					case m.Gauge != nil:
						return m.Gauge.GetValue()
					case m.Histogram != nil:
						return float64(m.Histogram.GetSampleCount())
					}
				}
			}
		}
	}
	return 0
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func intp(n int) *int { return &n }

func boolp(b bool) *bool { return &b }

func durp(d time.Duration) *Duration { x := Duration(d); return &x }

// oneGroup is a config with one target group "app" behind a catch-all rule.
func oneGroup(hc HealthCheckConfig, targets ...string) Config {
	if hc.Path == "" {
		hc.Path = "/health"
	}
	return Config{
		TargetGroups: []TargetGroupConfig{{Name: "app", HealthCheck: hc, Targets: targets, DeregistrationDelay: durp(30 * time.Second)}},
		Rules:        []RuleConfig{{Priority: 1, Forward: []WeightedTargetGroup{{TargetGroup: "app"}}}},
	}
}

func lastEntry(t *testing.T, tl *testLB) accesslog.Entry {
	t.Helper()
	// The entry is recorded right after the response is written; give the
	// handler a moment to finish.
	deadline := time.Now().Add(2 * time.Second)
	for {
		all := tl.seen.all()
		if len(all) > 0 {
			return all[len(all)-1]
		}
		if time.Now().After(deadline) {
			t.Fatal("no access-log entry recorded")
		}
		time.Sleep(time.Millisecond)
	}
}

func fmtEntry(e accesslog.Entry) string {
	return strings.TrimSpace(string(accesslog.AppendLine(nil, &e)))
}

var _ = fmt.Sprintf

// waitEntries waits until n access-log entries were recorded and returns them.
func (tl *testLB) waitEntries(t *testing.T, n int) []accesslog.Entry {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		all := tl.seen.all()
		if len(all) >= n {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d access-log entries recorded, want %d", len(all), n)
		}
		time.Sleep(time.Millisecond)
	}
}
