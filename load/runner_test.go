package load

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

func slowServer(t *testing.T, d time.Duration, code int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func run(t *testing.T, cfg Config) *results.Result {
	t.Helper()
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	return res
}

// An overloaded service seen through the open model: arrivals keep their
// schedule, so the wait for a free slot is part of the latency. The closed
// model against the same service shows only the service time: that is the
// coordinated omission the open model avoids.
func TestOpenModelLatencyIncludesQueueing(t *testing.T) {
	srv := slowServer(t, 50*time.Millisecond, 200)
	g, _ := NewGet([]string{srv.URL}, "", nil, nil)
	open := run(t, Config{Workload: g, Model: Open, Profile: Constant{40}, MaxInFlight: 1, Duration: 500 * time.Millisecond})
	// 40/s for 0.5 s = ~20 arrivals, served one at a time at 50 ms: the
	// last waits ~0.5 s.
	if n := open.Totals.Counts["200"]; n < 15 || n > 21 {
		t.Fatalf("open model sent %d requests, want about 20", n)
	}
	if open.Latency.MaxMS < 300 {
		t.Fatalf("open-model max latency %.1f ms: the queueing delay is missing", open.Latency.MaxMS)
	}
	closed := run(t, Config{Workload: g, Model: Closed, Profile: Constant{1}, Duration: 500 * time.Millisecond})
	if closed.Latency.MaxMS > 250 {
		t.Fatalf("closed-model max latency %.1f ms, want about the 50 ms service time", closed.Latency.MaxMS)
	}
}

// With one in-flight slot and a 50 ms service, arrivals at 40/s queue up
// behind each other: their dispatch lag grows to hundreds of milliseconds
// and they are counted as waiting for the cap, while latency minus that lag
// stays the service time. Against a fast service at a modest rate, the lag
// stays small and nothing waits. The closed model paces nothing and reports
// no generator.
func TestOpenModelReportsDispatchLag(t *testing.T) {
	srv := slowServer(t, 50*time.Millisecond, 200)
	g, _ := NewGet([]string{srv.URL}, "", nil, nil)
	res := run(t, Config{Workload: g, Model: Open, Profile: Constant{40}, MaxInFlight: 1, Duration: 500 * time.Millisecond})
	gen := res.Generator
	if gen == nil {
		t.Fatal("open-model result has no generator section")
	}
	lag := gen.DispatchLag
	if lag.Count != res.Totals.Requests {
		t.Errorf("dispatch lag counts %d arrivals, %d requests were sent", lag.Count, res.Totals.Requests)
	}
	// ~20 arrivals served one at a time at 50 ms: the last waits ~0.5 s.
	if lag.MaxMS < 300 {
		t.Errorf("max dispatch lag %.1f ms: the wait for the single slot is missing", lag.MaxMS)
	}
	// All but the first (and any that happened to come as the slot freed)
	// found the slot busy.
	if gen.WaitedForCap < lag.Count/2 || gen.WaitedForCap > lag.Count {
		t.Errorf("%d of %d arrivals waited for the cap, want most", gen.WaitedForCap, lag.Count)
	}
	// Every request's latency is its lag plus a >= 50 ms service, so the
	// maxima differ by about the service time, not by the queueing.
	service := res.Latency.MaxMS - lag.MaxMS
	if service < 45 || service > 250 {
		t.Errorf("max latency %.1f ms - max lag %.1f ms = %.1f ms, want about the 50 ms service time", res.Latency.MaxMS, lag.MaxMS, service)
	}

	fast := slowServer(t, 0, 204)
	gf, _ := NewGet([]string{fast.URL}, "", nil, nil)
	res = run(t, Config{Workload: gf, Model: Open, Profile: Constant{50}, MaxInFlight: 50, Duration: 500 * time.Millisecond})
	gen = res.Generator
	if gen == nil {
		t.Fatal("open-model result has no generator section")
	}
	if gen.DispatchLag.Count != res.Totals.Requests || gen.DispatchLag.Count < 15 {
		t.Errorf("dispatch lag counts %d arrivals for %d requests", gen.DispatchLag.Count, res.Totals.Requests)
	}
	// Loose: only timer and scheduler delay, far below the slow case.
	if gen.DispatchLag.P50MS > 100 {
		t.Errorf("median dispatch lag %.1f ms against a fast service at 50/s", gen.DispatchLag.P50MS)
	}
	if gen.WaitedForCap > gen.DispatchLag.Count/5 {
		t.Errorf("%d of %d arrivals waited for the cap with 50 slots and a fast service", gen.WaitedForCap, gen.DispatchLag.Count)
	}

	closed := run(t, Config{Workload: gf, Model: Closed, Profile: Constant{1}, Duration: 200 * time.Millisecond})
	if closed.Generator != nil {
		t.Errorf("closed-model result has a generator section: %+v", closed.Generator)
	}
}

func TestClosedModelFollowsProfile(t *testing.T) {
	var inflight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inflight.Add(-1)
	}))
	defer srv.Close()
	g, _ := NewGet([]string{srv.URL}, "", nil, nil)
	var demand []float64
	res := run(t, Config{Workload: g, Model: Closed, Duration: 800 * time.Millisecond,
		Profile:  Steps{Steps: []Step{{Value: 2, For: 400 * time.Millisecond}, {Value: 6, For: time.Second}}},
		Progress: func(p Progress) { demand = append(demand, p.Demand) }, ProgressEvery: 100 * time.Millisecond})
	if p := peak.Load(); p != 6 {
		t.Fatalf("peak concurrency %d, want 6 sessions", p)
	}
	if res.Totals.Requests < 50 || len(demand) == 0 {
		t.Fatalf("requests %d, progress calls %d", res.Totals.Requests, len(demand))
	}
}

func TestOpenModelRate(t *testing.T) {
	srv := slowServer(t, 0, 204)
	g, _ := NewGet([]string{srv.URL}, "", nil, nil)
	for _, poisson := range []bool{false, true} {
		res := run(t, Config{Workload: g, Model: Open, Profile: Constant{200}, Poisson: poisson, Duration: time.Second, Seed: 7})
		n := res.Totals.Counts["204"]
		if math.Abs(float64(n)-200) > 40 {
			t.Errorf("poisson=%v: %d requests in 1 s at 200/s", poisson, n)
		}
	}
}

// slotted is a test workload: one GET per session carrying its scheduled
// start, as an offset from the run's start, in the X-Slot header. A test
// server can then fail by schedule rather than by wall time: the runner
// places an open-model request in marks and buckets by its scheduled start,
// and on a loaded host the request may go out long after it.
type slotted struct {
	url string
	run *Runner // set before Run; its start is read only during the run
}

func (w *slotted) Name() string                   { return "slotted" }
func (w *slotted) Think(*rand.Rand) time.Duration { return 0 }
func (w *slotted) Session(ctx context.Context, s *Session) {
	h := http.Header{"X-Slot": {strconv.FormatInt(int64(s.start.Sub(w.run.start)), 10)}}
	s.Do(ctx, Call{Method: http.MethodGet, URL: w.url, Header: h})
}

// The target fails exactly the requests scheduled in [300 ms, 600 ms) of the
// run, whenever they are actually sent, and the outage mark covers that same
// slot range: every error lands in the outage window, none in the windows
// before and after it. Deciding by wall time instead flaked on a busy host,
// where sends fall behind schedule and a request due before the outage was
// sent during it.
func TestMarksCountErrorsInsideTheWindow(t *testing.T) {
	const outFrom, outTo = 300 * time.Millisecond, 600 * time.Millisecond
	var unslotted atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns, err := strconv.ParseInt(r.Header.Get("X-Slot"), 10, 64)
		if err != nil {
			unslotted.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if at := time.Duration(ns); at >= outFrom && at < outTo {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	wl := &slotted{url: srv.URL}
	r, err := NewRunner(Config{Workload: wl, Model: Open, Profile: Constant{100}, Duration: 900 * time.Millisecond,
		Marks: []MarkSpec{
			{Name: "before", Offset: 0, Duration: outFrom},
			{Name: "after", Offset: outTo, Duration: 900*time.Millisecond - outTo},
		}})
	if err != nil {
		t.Fatal(err)
	}
	wl.run = r
	go func() {
		// As the lab does: open the window, close it, note the event.
		// The times are the run's slots, not the moment of the call.
		<-r.Started()
		t0 := r.start
		r.AddMark("outage", t0.Add(outFrom), time.Time{})
		r.EndMark("outage", t0.Add(outTo))
		r.AddEvent(t0.Add(outFrom), "kill", "target killed", nil)
	}()
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := unslotted.Load(); n > 0 {
		t.Fatalf("%d requests carried no scheduled slot", n)
	}
	by := map[string]results.Mark{}
	for _, m := range res.Marks {
		by[m.Name] = m
	}
	for _, name := range []string{"before", "after"} {
		if tot := by[name].Totals; tot.Errors != 0 || tot.Requests < 20 {
			t.Errorf("window %s the outage: %+v, want no errors", name, tot)
		}
	}
	out := by["outage"].Totals
	if out.ErrorRate != 1 || out.Counts["502"] != out.Requests || out.Requests < 20 {
		t.Errorf("outage window: %+v, want all 502", out)
	}
	if res.Totals.Errors != out.Errors || res.Totals.Requests < out.Requests+40 {
		t.Errorf("overall: %+v, outage: %+v; want every error inside the outage", res.Totals, out)
	}
	if len(res.Events) != 1 {
		t.Errorf("events %v", res.Events)
	}
}

func TestMainGatesAndOutputs(t *testing.T) {
	ok := slowServer(t, 0, 200)
	bad := slowServer(t, 0, 503)
	slow := slowServer(t, 60*time.Millisecond, 200)
	dir := t.TempDir()
	base := func(url string) Options {
		return Options{URLs: []string{url}, Workload: "get", Rate: "50/s", Duration: 300 * time.Millisecond,
			MaxErrors: -1, MaxErrorRate: -1, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	}
	ctx := context.Background()

	o := base(ok.URL)
	o.MaxErrors, o.MaxErrorRate, o.MaxP99 = 0, 0, time.Second
	o.Out, o.CSV, o.EMF, o.Raw = filepath.Join(dir, "r.json"), filepath.Join(dir, "t.csv"), filepath.Join(dir, "e.jsonl"), filepath.Join(dir, "raw.csv")
	o.Marks = []string{"w@100ms+100ms"}
	if err := Main(ctx, o); err != nil {
		t.Fatalf("a clean run failed: %v", err)
	}
	data, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if err := results.ValidateSchema(data); err != nil {
		t.Fatal(err)
	}
	res, err := results.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Counts["200"] < 10 || len(res.Marks) != 1 {
		t.Fatalf("result %+v", res.Totals)
	}
	if res.Generator == nil || res.Generator.DispatchLag.Count != res.Totals.Requests {
		t.Errorf("result file's generator = %+v for %d requests", res.Generator, res.Totals.Requests)
	}
	summary := o.Stdout.(*bytes.Buffer).String()
	if !regexp.MustCompile(`(?m)^generator lag p50 \S+  p99 \S+  max \S+; \d+ arrivals waited for --max-in-flight$`).MatchString(summary) {
		t.Errorf("summary has no generator line:\n%s", summary)
	}
	csvData, _ := os.ReadFile(o.CSV)
	if !strings.HasPrefix(string(csvData), "offset_s,requests,errors,error_rate,p50_ms,p99_ms,max_ms,200\n") {
		t.Errorf("csv header: %q", strings.SplitN(string(csvData), "\n", 2)[0])
	}
	emf, _ := os.ReadFile(o.EMF)
	if !strings.Contains(string(emf), `"Namespace":"appsimulator"`) || !strings.Contains(string(emf), `"Name":"200"`) {
		t.Errorf("emf: %s", emf)
	}
	raw, _ := os.ReadFile(o.Raw)
	if lines := strings.Count(string(raw), "\n"); int64(lines) != res.Totals.Requests+1 {
		t.Errorf("raw has %d lines for %d requests", lines, res.Totals.Requests)
	}

	var gate *GateError
	o = base(bad.URL)
	o.MaxErrors = 3
	if err := Main(ctx, o); !errors.As(err, &gate) || !strings.Contains(err.Error(), "--max-errors 3") {
		t.Errorf("--max-errors: err = %v", err)
	}
	o = base(bad.URL)
	o.MaxErrorRate = 0.5
	if err := Main(ctx, o); !errors.As(err, &gate) || !strings.Contains(err.Error(), "--max-error-rate") {
		t.Errorf("--max-error-rate: err = %v", err)
	}
	o = base(slow.URL)
	o.MaxP99 = 20 * time.Millisecond
	if err := Main(ctx, o); !errors.As(err, &gate) || !strings.Contains(err.Error(), "--max-p99") {
		t.Errorf("--max-p99: err = %v", err)
	}
	if strings.Contains(gate.Error(), "\n") {
		t.Errorf("gate reason is not one line: %q", gate.Error())
	}

	for name, mod := range map[string]func(*Options){
		"no duration":   func(o *Options) { o.Duration = 0 },
		"both models":   func(o *Options) { o.Concurrency = 3 },
		"bad rate":      func(o *Options) { o.Rate = "fast" },
		"bad workload":  func(o *Options) { o.Workload = "post" },
		"bad url":       func(o *Options) { o.URLs = []string{"127.0.0.1:80"} },
		"bad mark":      func(o *Options) { o.Marks = []string{"oops"} },
		"bad profile":   func(o *Options) { o.Profile = "sine:min=1" },
		"verify on get": func(o *Options) { o.Verify = true },
		"bad output":    func(o *Options) { o.Output = "yaml" },
		"bad header":    func(o *Options) { o.Headers = []string{"nocolon"} },
		"bad conns":     func(o *Options) { o.Connections = "pooled" },
		"bad idle":      func(o *Options) { o.IdleTimeout = -time.Second },
		"mark past end": func(o *Options) { o.Marks = []string{"late@1s"} },
		"mark too long": func(o *Options) { o.Marks = []string{"long@100ms+1s"} },
		"metrics port":  func(o *Options) { o.MetricsAddr = "127.0.0.1:70000" },
		"url port":      func(o *Options) { o.URLs = []string{"http://127.0.0.1:99999/"} },
		"min successes": func(o *Options) { o.MinSuccesses = -1 },
	} {
		o := base(ok.URL)
		mod(&o)
		if err := Main(ctx, o); !IsUsage(err) {
			t.Errorf("%s: err = %v, want a usage error", name, err)
		}
	}
}
