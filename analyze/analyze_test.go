package analyze

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
	"zerodrop.dev/zerodrop/alb"
	"zerodrop.dev/zerodrop/results"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const tgARN = "arn:aws:elasticloadbalancing:us-east-2:210987654321:targetgroup/orders/0a1b2c3d4e5f6a7b"

// entry makes a log entry of a request that began at off and took 10 ms.
func entry(off time.Duration, target string, elb, tgt int) *accesslog.Entry {
	e := &accesslog.Entry{
		Type: "http", ELB: "app/orders-alb/1", Client: "198.51.100.7:4000", Target: target,
		RequestCreationTime: t0.Add(off), Time: t0.Add(off + 10*time.Millisecond),
		RequestProcessingTime: 0, TargetProcessingTime: 0.010, ResponseProcessingTime: 0,
		ELBStatusCode: elb, TargetStatusCode: tgt, Request: "GET http://orders:80/ HTTP/1.1",
		TargetGroupARN: tgARN,
	}
	if tgt == 0 {
		e.TargetProcessingTime, e.ResponseProcessingTime = -1, -1
	}
	return e
}

// scenarioLog writes a minute of traffic to three targets, 10 requests a
// second each: target A (10.1.2.30) gets SIGTERM at 20 s, answers ALB-made
// 502s from 23 s to 27 s and nothing after; at 40–41 s no target is
// registered (ALB 503); at 50 s target C answers 500 once.
func scenarioLog(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := accesslog.NewWriter(&buf)
	targets := []string{"10.1.2.30:8000", "10.1.2.31:8000", "10.1.2.32:8000"}
	for ms := 0; ms < 60_000; ms += 100 {
		off := time.Duration(ms) * time.Millisecond
		for i, tg := range targets {
			var e *accesslog.Entry
			switch {
			case ms >= 40_000 && ms < 42_000:
				e = entry(off, "", 503, 0)
				e.TargetGroupARN = ""
			case i == 0 && ms >= 27_000:
				continue // deregistered
			case i == 0 && ms >= 23_000:
				e = entry(off, tg, 502, 0)
			case i == 2 && ms == 50_000:
				e = entry(off, tg, 500, 500)
			default:
				e = entry(off, tg, 200, 200)
			}
			if err := w.Write(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf.Bytes()
}

const kubeEvents = `{
  "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
  "items": [
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "orders-a.1", "namespace": "shop", "creationTimestamp": "2026-03-02T10:00:20Z"},
     "involvedObject": {"kind": "Pod", "name": "orders-a", "namespace": "shop"},
     "reason": "Killing", "message": "Stopping container orders", "type": "Normal",
     "source": {"component": "kubelet", "host": "node-1"},
     "firstTimestamp": "2026-03-02T10:00:20Z", "lastTimestamp": "2026-03-02T10:00:20Z", "count": 1},
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "orders.2", "namespace": "shop"},
     "involvedObject": {"kind": "Deployment", "name": "orders", "namespace": "shop"},
     "reason": "ScalingReplicaSet", "message": "Scaled down replica set orders-7d9f to 2", "type": "Normal",
     "eventTime": "2026-03-02T10:00:19.500000Z", "reportingController": "deployment-controller"},
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "old.3", "namespace": "shop"},
     "involvedObject": {"kind": "Pod", "name": "orders-old", "namespace": "shop"},
     "reason": "Pulled", "message": "long before the logs",
     "firstTimestamp": "2026-03-01T09:00:00Z"}
  ]
}`

func TestAnalyzeScenario(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "alb.log")
	if err := os.WriteFile(logPath, scenarioLog(t), 0o644); err != nil {
		t.Fatal(err)
	}
	events, err := ParseKubeEvents([]byte(kubeEvents))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[1].Event.Kind != results.EventScale || events[2].Event.Kind != results.EventSIGTERM || events[2].Event.Object != "pod/orders-a" {
		t.Fatalf("events = %+v", events)
	}
	sum, err := Files(context.Background(), []string{logPath}, events, Options{Version: "test"}, accesslog.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Result
	if err := r.Validate(); err != nil {
		t.Fatalf("invalid result: %v", err)
	}
	if !r.Meta.Start.Equal(t0) || r.Source != results.SourceAnalyze {
		t.Errorf("start %v source %s, want %v analyze", r.Meta.Start, r.Source, t0)
	}
	c := r.Totals.Counts
	// 600 slots x 3 targets, less A's 330 slots after 27 s (20 of them in
	// the 503 stretch, where every target slot is a 503 anyway).
	if c["502"] != 40 || c["503"] != 60 || c["500"] != 1 || r.Totals.FromLB["502"] != 40 || r.Totals.FromLB["503"] != 60 || r.Totals.FromLB["500"] != 0 {
		t.Errorf("counts %v from_lb %v", c, r.Totals.FromLB)
	}
	if r.Totals.Requests != 1800-310 {
		t.Errorf("requests = %d, want %d", r.Totals.Requests, 1800-310)
	}
	if got := r.Timeline[23].Counts["502"]; got != 10 || r.Timeline[23].OffsetMS != 23_000 {
		t.Errorf("bucket 23 = %+v", r.Timeline[23])
	}
	if r.Timeline[5].Latency.P50MS < 9.9 || r.Timeline[5].Latency.P50MS > 10.1 {
		t.Errorf("bucket latency = %+v, want 10 ms", r.Timeline[5].Latency)
	}
	if len(r.Failures) != 3 {
		t.Fatalf("failures = %+v, want 3 windows", r.Failures)
	}
	f := r.Failures[0]
	if f.StartMS != 23_000 || f.EndMS != 27_000 || f.Totals.Errors != 40 || len(f.Targets) != 1 || f.Targets[0] != "10.1.2.30:8000" {
		t.Errorf("first window = %+v", f)
	}
	if !strings.Contains(f.Cause, "ALB-made 502") || !strings.Contains(f.Cause, "3.0 s after sigterm pod/orders-a") {
		t.Errorf("first window cause = %q", f.Cause)
	}
	if g := r.Failures[1]; g.StartMS != 40_000 || g.Targets[0] != "-" || !strings.Contains(g.Cause, "no registered targets") {
		t.Errorf("second window = %+v", g)
	}
	if g := r.Failures[2]; g.StartMS != 50_000 || g.Targets[0] != "10.1.2.32:8000" || !strings.Contains(g.Cause, "answered 500 themselves") {
		t.Errorf("third window = %+v", g)
	}
	// A target that stopped getting requests is an event, and the serving
	// series drops from 3 to 2 after its last request.
	var dereg *results.Event
	for i, e := range r.Events {
		if e.Kind == results.EventDeregister && e.Object == "target/10.1.2.30:8000" {
			dereg = &r.Events[i]
		}
	}
	if dereg == nil || dereg.AtMS != 26_900 {
		t.Errorf("deregister event = %+v", dereg)
	}
	if r.Config["events_outside_logs"] != "1" {
		t.Errorf("config = %v, want one event outside the logs", r.Config)
	}
	if len(r.Series) != 1 || r.Series[0].Group != "orders" {
		t.Fatalf("series = %+v", r.Series)
	}
	pts := r.Series[0].Points
	if pts[0].Value != 3 || pts[1].AtMS != 27_000 || pts[1].Value != 2 {
		t.Errorf("serving series = %+v", pts)
	}
	var buf bytes.Buffer
	if err := results.Encode(&buf, r); err != nil {
		t.Fatalf("result does not encode: %v", err)
	}
	if err := results.ValidateSchema(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func TestAnalyzeBadLinesAndGzipDirectory(t *testing.T) {
	dir := t.TempDir()
	day := filepath.Join(dir, "AWSLogs", "210987654321", "elasticloadbalancing", "us-east-2", "2026", "03", "02")
	os.MkdirAll(day, 0o755)
	data := scenarioLog(t)
	lines := bytes.SplitAfter(data, []byte("\n"))
	half := len(lines) / 2
	first := append(bytes.Join(lines[:half], nil), []byte("truncated line \"\n")...)
	os.WriteFile(filepath.Join(day, "a_20260302T1000Z.log"), first, 0o644)
	os.WriteFile(filepath.Join(day, "b_20260302T1005Z.log"), bytes.Join(lines[half:], nil), 0o644)
	files, err := accesslog.Files([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Files(context.Background(), files, nil, Options{}, accesslog.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Stats.Bad != 1 || len(sum.Bad) != 1 || !strings.Contains(sum.Bad[0], fmt.Sprintf("a_20260302T1000Z.log:%d:", half+1)) {
		t.Fatalf("bad lines = %d %q", sum.Stats.Bad, sum.Bad)
	}
	if sum.Result.Totals.Requests != 1800-310 || sum.Result.Config["malformed_lines"] != "1" {
		t.Fatalf("requests = %d, config %v", sum.Result.Totals.Requests, sum.Result.Config)
	}
}

func TestAnalyzeNothing(t *testing.T) {
	if r := New(Options{}).Result(nil); r != nil {
		t.Fatalf("empty analysis gave %+v", r)
	}
}

func TestParseKubeEventsErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":    `kubectl: error`,
		"wrong kind":  `{"kind":"PodList","items":[]}`,
		"no time":     `{"kind":"List","items":[{"kind":"Event","reason":"Killing","involvedObject":{"kind":"Pod","name":"p"}}]}`,
		"bad item":    `{"kind":"List","items":[{"kind":"Event","count":"many"}]}`,
		"bad time":    `{"kind":"List","items":[{"kind":"Event","firstTimestamp":"yesterday"}]}`,
		"array items": `{"kind":"List","items":{}}`,
	} {
		if _, err := ParseKubeEvents([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	one := `{"kind":"Event","metadata":{"name":"x"},"involvedObject":{"kind":"Node","name":"n1"},"reason":"NodeNotReady","lastTimestamp":"2026-03-02T10:00:00Z"}`
	evs, err := ParseKubeEvents([]byte(one))
	if err != nil || len(evs) != 1 || evs[0].Event.Kind != results.EventNodeLost || evs[0].Event.Object != "node/n1" {
		t.Fatalf("single event: %+v, %v", evs, err)
	}
}

// The emulator's own access log reads back into the counts its clients
// saw: every request the client sent through the ALB emulator (a live
// target and one that refuses connections) is in the analysis with the
// same status, and the refused ones are ALB-made 502s whose cause is the
// refused connection.
func TestEmulatorAccessLogRoundTrip(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer live.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	var logBuf syncBuffer
	off := false
	cfg := alb.Config{
		Listen: "127.0.0.1:0", Admin: "off", TimeScale: 1,
		TargetGroups: []alb.TargetGroupConfig{{Name: "app", HealthCheck: alb.HealthCheckConfig{Enabled: &off}, Targets: []string{strings.TrimPrefix(live.URL, "http://"), dead}}},
		Rules:        []alb.RuleConfig{{Priority: 1, Forward: []alb.WeightedTargetGroup{{TargetGroup: "app"}}}},
	}
	lb, err := alb.New(cfg, alb.Options{AccessLog: &logBuf})
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	seen := map[int]int64{}
	for range 40 {
		resp, err := client.Get(lb.URL() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen[resp.StatusCode]++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if seen[200] == 0 || seen[502] == 0 {
		t.Fatalf("client saw %v, want both 200 and 502", seen)
	}
	a := New(Options{})
	rd, err := accesslog.NewReader(strings.NewReader(logBuf.String()))
	if err != nil {
		t.Fatal(err)
	}
	var e accesslog.Entry
	for {
		if err := rd.Read(&e); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		a.Add(&e)
	}
	r := a.Result(nil)
	if r.Totals.Counts["200"] != seen[200] || r.Totals.Counts["502"] != seen[502] || r.Totals.FromLB["502"] != seen[502] || r.Totals.Requests != 40 {
		t.Fatalf("analysis counts %v (from LB %v), client saw %v", r.Totals.Counts, r.Totals.FromLB, seen)
	}
	if len(r.Failures) == 0 || !strings.Contains(r.Failures[0].Cause, "connection refused") || r.Failures[0].Targets[0] != dead {
		t.Fatalf("failures = %+v", r.Failures)
	}
}

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

// Progress over many files: on a terminal one line rewritten in place and
// cleared at the end; otherwise plain lines, at most one per plainEvery,
// and a closing count. One file shows nothing.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, n: 3}
	p.file(0, 3, "a.log")
	p.file(1, 3, "b.log") // within plainEvery of the first: no line
	p.done(accesslog.Stats{Files: 3, Entries: 10, Bad: 1})
	if got := buf.String(); got != "analyze: file 1/3 a.log\nanalyze: read 3 files, 10 entries, 1 malformed lines\n" {
		t.Errorf("plain progress = %q", got)
	}
	buf.Reset()
	p = &progress{w: &buf, tty: true, n: 2}
	p.file(0, 2, "a.log")
	p.file(1, 2, "b.log")
	p.done(accesslog.Stats{Files: 2})
	if got := buf.String(); got != "\ranalyze: file 1/2 a.log\x1b[K\ranalyze: file 2/2 b.log\x1b[K\r\x1b[K" {
		t.Errorf("terminal progress = %q", got)
	}
	buf.Reset()
	p = &progress{w: &buf, n: 1}
	p.file(0, 1, "a.log")
	p.done(accesslog.Stats{Files: 1})
	if buf.Len() != 0 {
		t.Errorf("one file printed progress %q", buf.String())
	}
}

// An entry without any time cannot go on the timeline: it is counted
// apart instead of dragging the timeline's start to year 1.
func TestEntryWithoutTime(t *testing.T) {
	a := New(Options{})
	a.Add(&accesslog.Entry{ELBStatusCode: 200})
	a.Add(entry(0, "10.1.2.30:8000", 200, 200))
	r := a.Result(nil)
	if !r.Meta.Start.Equal(t0) || r.Totals.Requests != 1 || r.Config["entries_without_time"] != "1" {
		t.Fatalf("start %v, requests %d, config %v", r.Meta.Start, r.Totals.Requests, r.Config)
	}
}
