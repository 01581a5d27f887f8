package load

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"zerodrop.dev/zerodrop/results"
)

// EMFNamespace is the CloudWatch namespace the seed's simulator published to.
const EMFNamespace = "appsimulator"

// TransportErrorMetric is the EMF metric that sums the requests that got
// no HTTP response (refused, reset, eof, timeouts, other): curl's status
// "000", the name the seed's simulator published such requests under.
const TransportErrorMetric = "000"

// EMF writes CloudWatch Embedded Metric Format lines while the run goes on:
// one line per second in which requests completed, one Count metric per
// outcome key (each status code, each transport class), namespace
// appsimulator. A request counts in the second it completed (as a
// service's own metrics count it), so a second's line is final as soon as
// that second is over and is written at the next tick.
//
// The seed's simulator published one metric per request named by its
// status code ("200", "502", "504"; curl's "000" when no response came) in
// namespace appsimulator without dimensions, and its dashboards graph
// those. So every metric goes out twice: without dimensions (the seed's
// names) and with the dimension workload. Transport classes are counted
// by their own names and also summed as TransportErrorMetric.
type EMF struct {
	mu       sync.Mutex
	w        io.Writer
	workload string
	err      error
	// pending holds counts by completion second (Unix seconds) not yet
	// written.
	pending map[int64]map[string]int64
}

// NewEMF writes EMF lines to w.
func NewEMF(w io.Writer, workload string) *EMF {
	return &EMF{w: w, workload: workload, pending: map[int64]map[string]int64{}}
}

// Request implements Sink: it counts the request in the second it completed.
func (e *EMF) Request(_ *Call, s results.Sample) {
	sec := s.Start.Add(s.Latency).Unix()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.pending[sec]
	if c == nil {
		c = map[string]int64{}
		e.pending[sec] = c
	}
	c[s.Outcome]++
	if !results.IsStatus(s.Outcome) {
		c[TransportErrorMetric]++
	}
}

// Bucket implements Sink (EMF lines follow completions, not buckets).
func (e *EMF) Bucket(results.Bucket, time.Time) {}

// Tick implements Ticker: it writes the line of every second before now's
// (every pending second when final).
func (e *EMF) Tick(now time.Time, final bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := now.Unix()
	secs := make([]int64, 0, len(e.pending))
	for sec := range e.pending {
		if final || sec < cur {
			secs = append(secs, sec)
		}
	}
	slices.Sort(secs)
	for _, sec := range secs {
		e.writeLocked(sec, e.pending[sec])
		delete(e.pending, sec)
	}
}

func (e *EMF) writeLocked(sec int64, counts map[string]int64) {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	results.SortKeys(keys)
	metrics := make([]map[string]string, 0, len(keys))
	doc := map[string]any{"workload": e.workload}
	for _, k := range keys {
		metrics = append(metrics, map[string]string{"Name": k, "Unit": "Count"})
		doc[k] = counts[k]
	}
	doc["_aws"] = map[string]any{
		"Timestamp": time.Unix(sec, 0).UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace": EMFNamespace,
			// The empty set publishes the metrics without dimensions too.
			"Dimensions": [][]string{{"workload"}, {}},
			"Metrics":    metrics,
		}},
	}
	line, err := json.Marshal(doc)
	if err == nil && e.err == nil {
		_, e.err = e.w.Write(append(line, '\n'))
	}
}

// Err returns the first write error.
func (e *EMF) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Metrics exposes live Prometheus metrics of a run:
// zerodrop_load_requests_total{outcome}, zerodrop_load_errors_total and
// zerodrop_load_request_duration_seconds.
type Metrics struct {
	requests *prometheus.CounterVec
	errs     prometheus.Counter
	latency  prometheus.Histogram
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zerodrop_load_requests_total", Help: "Requests sent, by outcome (status code or transport class)."}, []string{"outcome"}),
		errs:     prometheus.NewCounter(prometheus.CounterOpts{Name: "zerodrop_load_errors_total", Help: "Requests that failed (transport class or 5xx)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "zerodrop_load_request_duration_seconds", Help: "Request latency from the intended start.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.errs, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering load metrics: %w", err)
		}
	}
	return m, nil
}

// Request implements Sink.
func (m *Metrics) Request(_ *Call, s results.Sample) {
	m.requests.WithLabelValues(s.Outcome).Inc()
	if results.IsError(s.Outcome) {
		m.errs.Inc()
	}
	m.latency.Observe(s.Latency.Seconds())
}

// Bucket implements Sink.
func (m *Metrics) Bucket(results.Bucket, time.Time) {}

// Raw writes one CSV line per request (the only per-request output; it
// streams, so memory stays bounded): start time in Unix microseconds,
// latency µs, outcome, from_lb, method, url.
type Raw struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

// NewRaw writes per-request lines to w.
func NewRaw(w io.Writer) *Raw {
	r := &Raw{w: bufio.NewWriterSize(w, 64<<10)}
	_, r.err = r.w.WriteString("start_unix_us,latency_us,outcome,from_lb,method,url\n")
	return r
}

// Request implements Sink.
func (r *Raw) Request(call *Call, s results.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	var b []byte
	b = strconv.AppendInt(b, s.Start.UnixMicro(), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, s.Latency.Microseconds(), 10)
	b = append(b, ',')
	b = append(b, s.Outcome...)
	b = append(b, ',')
	b = strconv.AppendBool(b, s.FromLB)
	b = append(b, ',')
	b = append(b, call.Method...)
	b = append(b, ',')
	b = append(b, csvField(call.URL)...)
	b = append(b, '\n')
	_, r.err = r.w.Write(b)
}

func csvField(s string) string {
	if !strings.ContainsAny(s, ",\"\n\r") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Bucket implements Sink.
func (r *Raw) Bucket(results.Bucket, time.Time) {}

// Flush writes buffered lines and returns the first error.
func (r *Raw) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = r.w.Flush()
	}
	return r.err
}

// WriteCSV writes the timeline as CSV: offset_s, requests, errors,
// error_rate, p50_ms, p99_ms, max_ms, then one column per outcome key.
func WriteCSV(w io.Writer, res *results.Result) error {
	cw := csv.NewWriter(w)
	keys := res.Keys()
	header := append([]string{"offset_s", "requests", "errors", "error_rate", "p50_ms", "p99_ms", "max_ms"}, keys...)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, b := range res.Timeline {
		var n, errs int64
		for k, c := range b.Counts {
			n += c
			if results.IsError(k) {
				errs += c
			}
		}
		rate := 0.0
		if n > 0 {
			rate = float64(errs) / float64(n)
		}
		row := []string{f(float64(b.OffsetMS) / 1000), strconv.FormatInt(n, 10), strconv.FormatInt(errs, 10), f(rate), f(b.Latency.P50MS), f(b.Latency.P99MS), f(b.Latency.MaxMS)}
		for _, k := range keys {
			row = append(row, strconv.FormatInt(b.Counts[k], 10))
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("writing CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	return nil
}

// WriteSummary writes a short human summary of a result. loadFor is how
// long load was sent (the run's --duration, or less when it was stopped);
// the result's own window is the real elapsed time, requests in flight at
// the end included, and every rate is computed on it.
func WriteSummary(w io.Writer, res *results.Result, loadFor time.Duration) error {
	t := res.Totals
	bw := bufio.NewWriter(w)
	elapsed := res.Duration()
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(t.Requests) / s
	}
	fmt.Fprintf(bw, "%s load (%s model) against %s: ", res.Meta.Workload, res.Meta.Model, strings.Join(res.Meta.Targets, ", "))
	if loadFor > 0 && elapsed-loadFor > 100*time.Millisecond {
		fmt.Fprintf(bw, "load sent for %s, %s elapsed (requests in flight at the end ran to completion or their timeouts)\n",
			loadFor.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	} else {
		fmt.Fprintf(bw, "%s elapsed\n", elapsed.Round(time.Millisecond))
	}
	fmt.Fprintf(bw, "requests  %d (%.1f/s over %s)   2xx/3xx %d   errors %d (%.3f%%)\n", t.Requests, rate,
		elapsed.Round(time.Millisecond), Successes(t), t.Errors, 100*t.ErrorRate)
	l := res.Latency
	fmt.Fprintf(bw, "latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", ms(l.P50MS), ms(l.P90MS), ms(l.P99MS), ms(l.P999MS), ms(l.MaxMS))
	if g := res.Generator; g != nil {
		d := g.DispatchLag
		fmt.Fprintf(bw, "generator lag p50 %s  p99 %s  max %s; %d arrivals waited for --max-in-flight\n", ms(d.P50MS), ms(d.P99MS), ms(d.MaxMS), g.WaitedForCap)
	}
	keys := res.Keys()
	fmt.Fprint(bw, "outcomes ")
	anyLB := false
	for _, k := range keys {
		fmt.Fprintf(bw, "  %s=%d", k, t.Counts[k])
		if n := t.FromLB[k]; n > 0 {
			fmt.Fprintf(bw, " (lb %d)", n)
			anyLB = true
		}
	}
	fmt.Fprintln(bw)
	if anyLB {
		fmt.Fprintln(bw, "          (lb N): N of them made by the load balancer itself (Server: awselb), not by the service")
	}
	for _, m := range res.Marks {
		fmt.Fprintf(bw, "mark %-12s %6.1fs..%6.1fs  requests %d  errors %d (%.3f%%)  p99 %s\n", m.Name, float64(m.StartMS)/1000, float64(m.EndMS)/1000, m.Totals.Requests, m.Totals.Errors, 100*m.Totals.ErrorRate, ms(m.Latency.P99MS))
	}
	if v := res.Verify; v != nil {
		fmt.Fprintf(bw, "verify    %d writes read back: %d lost, %d duplicated keys, %d unreadable (%d recent orders scanned)\n", v.Checked, len(v.Lost), len(v.Duplicates), v.Errors, v.Scanned)
		for i, lw := range v.Lost {
			if i == 10 {
				fmt.Fprintf(bw, "  ... %d more\n", len(v.Lost)-10)
				break
			}
			found := "missing"
			if lw.FoundVersion >= 0 {
				found = fmt.Sprintf("version %d", lw.FoundVersion)
			}
			fmt.Fprintf(bw, "  lost order %s: acknowledged version %d, found %s\n", lw.ID, lw.AckedVersion, found)
		}
		for i, d := range v.Duplicates {
			if i == 10 {
				fmt.Fprintf(bw, "  ... %d more\n", len(v.Duplicates)-10)
				break
			}
			fmt.Fprintf(bw, "  duplicate key %s: orders %s\n", d.Key, strings.Join(d.IDs, ", "))
		}
	}
	return bw.Flush()
}

func ms(v float64) string {
	return (time.Duration(v * float64(time.Millisecond))).Round(10 * time.Microsecond).String()
}

// Successes counts the 2xx and 3xx responses of t.
func Successes(t results.Totals) int64 {
	var n int64
	for k, c := range t.Counts {
		if code, err := strconv.Atoi(k); err == nil && code >= 200 && code < 400 {
			n += c
		}
	}
	return n
}

// FormatProgress renders one progress line: elapsed/total, request rate
// since the last line, sessions running (in the closed model, when users
// think between sessions: users, in a session or thinking), requests in flight, totals, p99. Once the load
// is over it says so and counts the requests still awaited.
func FormatProgress(p Progress) string {
	total := (p.Elapsed + p.Remaining).Round(time.Second)
	if p.Finishing {
		return fmt.Sprintf("%s  load over after %s, waiting for %d requests in flight (each bounded by its timeouts)  requests %d  errors %d (%.2f%%)  p99 %s",
			p.Elapsed.Round(time.Second), p.Duration.Round(time.Millisecond), p.InFlight, p.Totals.Requests, p.Totals.Errors, 100*p.Totals.ErrorRate, ms(p.Latency.P99MS))
	}
	sessions := fmt.Sprintf("sessions %d", p.Sessions)
	if p.Thinking > 0 {
		sessions = fmt.Sprintf("users %d (%d in a session, %d thinking)", p.Sessions+p.Thinking, p.Sessions, p.Thinking)
	}
	return fmt.Sprintf("%s/%s  %7.1f req/s  %s  in-flight %d  requests %d  errors %d (%.2f%%)  p99 %s",
		p.Elapsed.Round(time.Second), total, p.Rate, sessions, p.InFlight,
		p.Totals.Requests, p.Totals.Errors, 100*p.Totals.ErrorRate, ms(p.Latency.P99MS))
}
