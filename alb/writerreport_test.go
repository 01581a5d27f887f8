package alb

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A request's writer that has sent the whole request but is slow to report
// it (a loaded machine runs the goroutine late) must not make a complete
// exchange look like an early answer: the target connection goes back to
// the pool and the client's stays open. The hook holds every writer until
// the response head was read, the order the scheduler sometimes picks.
func TestLateWriterReportKeepsConnection(t *testing.T) {
	var conns atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: nameHandler("a", nil), ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, ln.Addr().String())
	cfg.Listen, cfg.Admin, cfg.TimeScale = "127.0.0.1:0", "127.0.0.1:0", testScale
	lb, err := New(cfg, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Int32
	lb.testHookWriterDone = func(headRead <-chan struct{}) {
		<-headRead
		held.Add(1)
	}
	if err := lb.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lb.Close(ctx)
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	send := func(method, body string) {
		t.Helper()
		req, err := http.NewRequest(method, lb.URL()+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body == "" {
			req.Body = http.NoBody
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("%s: %d, Connection: close %v; want 200 on a kept connection", method, resp.StatusCode, resp.Close)
		}
	}
	send("GET", "")
	send("POST", "a small body")
	send("GET", "")
	if held.Load() != 3 {
		t.Fatalf("writer hook ran %d times, want 3", held.Load())
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("target saw %d connections for 3 requests, want 1 (the pooled one reused)", n)
	}
}
