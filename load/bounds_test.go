package load

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// hangingServer accepts requests and never answers them (until the test
// ends); it counts the requests it received.
func hangingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, &n
}

// --duration is a bound: against a target that accepts and never answers,
// a closed-model orders session used to go on step after step (each
// waiting for its response timeout) long past the duration, and the result
// claimed the configured duration. Now no request starts after the
// duration: exactly the one request in flight at the end is counted (its
// timeout), and the result's window is the real elapsed time.
func TestDurationBoundsTheRun(t *testing.T) {
	srv, got := hangingServer(t)
	w, err := NewOrders([]string{srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Workload: w, Model: Closed, Profile: Constant{1}, Duration: 200 * time.Millisecond,
		ConnectTimeout: time.Second, ResponseTimeout: 400 * time.Millisecond}
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	res, err := r.Run(ctx)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Requests != 1 || res.Totals.Counts[string(results.TimeoutResponse)] != 1 || got.Load() != 1 {
		t.Fatalf("requests after the duration: counted %+v, server saw %d; want the one in flight at the end", res.Totals, got.Load())
	}
	// The window covers the in-flight tail (the 400 ms response timeout),
	// not the 200 ms of load, and is the time Run took.
	if d := res.Duration(); d < 400*time.Millisecond || d > took {
		t.Fatalf("result window %v, Run took %v: want the real elapsed time", d, took)
	}
	var out bytes.Buffer
	if err := WriteSummary(&out, res, cfg.Duration); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "load sent for 200ms, ") {
		t.Errorf("summary does not tell the load time from the elapsed time:\n%s", out.String())
	}
}

// A run that measured nothing does not pass: every request refused is a
// gate failure (--min-successes, default 1 in the command), also with
// --verify, and --verify fails when read-backs fail or nothing was
// acknowledged.
func TestRunThatMeasuredNothingFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more: every connect is refused

	var gate *GateError
	o := Options{URLs: []string{refused}, Workload: "orders", Concurrency: 2, Duration: 200 * time.Millisecond,
		MaxErrors: -1, MaxErrorRate: -1, MinSuccesses: 1, Verify: true, Stdout: io.Discard, Stderr: io.Discard}
	err = Main(context.Background(), o)
	if !errors.As(err, &gate) || !strings.Contains(err.Error(), "--min-successes 1") || !strings.Contains(err.Error(), "--verify") {
		t.Fatalf("refused everything with --verify: err = %v, want a gate naming --min-successes and --verify", err)
	}

	g := Gates{MaxErrors: -1, MaxErrorRate: -1, Verify: true}
	ok := &results.Result{Totals: results.Totals{Requests: 5, Counts: map[string]int64{"201": 5}}}
	for name, v := range map[string]*results.Verification{
		"unreadable":   {Checked: 4, Errors: 1},
		"nothing":      {},
		"not verified": nil,
	} {
		ok.Verify = v
		if err := g.Check(ok); err == nil {
			t.Errorf("verify %s: the gate passed", name)
		}
	}
	ok.Verify = &results.Verification{Checked: 5}
	if err := g.Check(ok); err != nil {
		t.Errorf("a clean verification failed: %v", err)
	}
	g = Gates{MaxErrors: -1, MaxErrorRate: -1, MinSuccesses: 1}
	if err := g.Check(&results.Result{Totals: results.Totals{Requests: 3, Counts: map[string]int64{"404": 3}}}); err == nil {
		t.Error("a run of 404s passed --min-successes 1")
	}
}

// Output files are opened before the run: a path that cannot be written
// is a usage error naming the flag, and no request is sent.
func TestOutputFilesCheckedBeforeTheRun(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	missing := filepath.Join(t.TempDir(), "no-such-dir", "file")
	for _, flag := range []string{"out", "csv", "emf", "raw"} {
		o := Options{URLs: []string{srv.URL}, Rate: "50", Duration: 300 * time.Millisecond, MaxErrors: -1, MaxErrorRate: -1}
		switch flag {
		case "out":
			o.Out = missing
		case "csv":
			o.CSV = missing
		case "emf":
			o.EMF = missing
		case "raw":
			o.Raw = missing
		}
		err := Main(context.Background(), o)
		if !IsUsage(err) || !strings.HasPrefix(err.Error(), "--"+flag+": ") {
			t.Errorf("--%s to a missing directory: err = %v, want a usage error naming --%s", flag, err, flag)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests were sent before the bad output path was reported", n)
	}
}

// Ctrl-C: the summary is written and the error says the run was
// interrupted (the command exits 130), not that a gate failed.
func TestInterruptedRunIsNotAGateFailure(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(503)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	var stdout bytes.Buffer
	o := Options{URLs: []string{srv.URL}, Rate: "100", Duration: time.Minute, MaxErrors: 0, MaxErrorRate: -1,
		MinSuccesses: 1, Stdout: &stdout, Stderr: io.Discard}
	done := make(chan error, 1)
	go func() { done <- Main(ctx, o) }()
	// Stop it once requests have failed (the --max-errors 0 gate would fire).
	for deadline := time.Now().Add(20 * time.Second); hits.Load() < 5 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel(errors.New("interrupt signal received"))
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Main did not return after the cancel")
	}
	var intr *InterruptedError
	var gate *GateError
	if !errors.As(err, &intr) || errors.As(err, &gate) {
		t.Fatalf("err = %v (%T), want an InterruptedError", err, err)
	}
	if !strings.Contains(stdout.String(), "requests ") {
		t.Errorf("no summary after the interrupt:\n%s", stdout.String())
	}
}

// --emf writes a line per second while the run goes on, not everything at
// the end.
func TestEMFStreamsWhileRunning(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	var buf bytes.Buffer
	e := NewEMF(&buf, "get")
	e.Request(&Call{}, results.Sample{Start: base.Add(100 * time.Millisecond), Latency: time.Millisecond, Outcome: "200"})
	e.Request(&Call{}, results.Sample{Start: base.Add(900 * time.Millisecond), Latency: 200 * time.Millisecond, Outcome: "502", FromLB: true})
	e.Tick(base.Add(800*time.Millisecond), false)
	if buf.Len() != 0 {
		t.Fatalf("a second still running was written: %s", buf.String())
	}
	e.Tick(base.Add(1500*time.Millisecond), false)
	if got := strings.Count(buf.String(), "\n"); got != 1 || !strings.Contains(buf.String(), `"200":1`) || strings.Contains(buf.String(), `"502"`) {
		t.Fatalf("after the first second: %q, want one line with the 200", buf.String())
	}
	e.Tick(base.Add(1600*time.Millisecond), true)
	if got := strings.Count(buf.String(), "\n"); got != 2 || !strings.Contains(buf.String(), `"502":1`) {
		t.Fatalf("final tick: %q, want the 502 (completed in second 1) on a second line", buf.String())
	}

	// Through a run: lines arrive before Run returns.
	srv := slowServer(t, 0, 200)
	g, _ := NewGet([]string{srv.URL}, "", nil, nil)
	w := &watchWriter{}
	const d = 2500 * time.Millisecond
	r, err := NewRunner(Config{Workload: g, Model: Open, Profile: Constant{50}, Duration: d,
		Sinks: []Sink{NewEMF(w, "get")}})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	during := 0
	for _, at := range w.at {
		if at.Before(began.Add(d)) {
			during++
		}
	}
	if during == 0 || len(w.at) < 2 {
		t.Fatalf("EMF lines written while the load ran: %d of %d", during, len(w.at))
	}
}

// watchWriter records when each write happened.
type watchWriter struct {
	mu sync.Mutex
	at []time.Time
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at = append(w.at, time.Now())
	return len(p), nil
}

// Progress and summary words: think time is not idleness, and the (lb N)
// abbreviation is explained.
func TestProgressAndSummaryWording(t *testing.T) {
	line := FormatProgress(Progress{Elapsed: 3 * time.Second, Remaining: 42 * time.Second, Sessions: 3, Thinking: 17})
	if !strings.Contains(line, "users 20 (3 in a session, 17 thinking)") {
		t.Errorf("progress: %q", line)
	}
	line = FormatProgress(Progress{Elapsed: 47 * time.Second, Duration: 45 * time.Second, InFlight: 2, Finishing: true})
	if !strings.Contains(line, "load over after 45s, waiting for 2 requests in flight") {
		t.Errorf("progress after the end: %q", line)
	}
	res := &results.Result{Meta: results.Meta{Workload: "orders", Model: "closed", Start: time.Unix(0, 0), End: time.Unix(45, 0)},
		Totals: results.Totals{Requests: 10, Errors: 2, Counts: map[string]int64{"200": 8, "502": 2}, FromLB: map[string]int64{"502": 2}}}
	var out bytes.Buffer
	if err := WriteSummary(&out, res, 45*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "502=2 (lb 2)") || !strings.Contains(out.String(), "(lb N): N of them made by the load balancer itself") {
		t.Errorf("summary does not explain (lb N):\n%s", out.String())
	}
}
