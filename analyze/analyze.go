// Package analyze turns Application Load Balancer access logs into the
// result model of package results: a timeline of requests by status code
// (ALB-made responses told apart from the targets'), latency from the
// logged processing times, the windows in which failures clustered with
// the targets involved and their likely cause, and Kubernetes events on the
// same timeline.
//
// It streams: memory grows with the time span the logs cover (one small
// record per bucket) and the number of targets, not with the number of
// lines.
package analyze

import (
	"context"
	"fmt"
	"sort"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
	"zerodrop.dev/zerodrop/results"
)

// Options tune an analysis.
type Options struct {
	// Bucket is the timeline bucket width (default one second).
	Bucket time.Duration
	// Gap joins failing stretches less than Gap apart into one failure
	// window (default 5 s).
	Gap time.Duration
	// Lead is how long before a failure window an event is listed with it
	// as a possible cause (default 60 s).
	Lead time.Duration
	// Version is the producing program's version, written into the result.
	Version string
}

// lookBack is how far before the first entry seen the timeline may reach:
// logs of several ALB nodes interleave, and a later file may hold earlier
// requests. Entries earlier still are counted in the first bucket.
const lookBack = 6 * time.Hour

// flushGrace is how long a bucket stays open for late entries before its
// latency is finalised (the span of one 5-minute log file of another ALB
// node, plus long requests).
const flushGrace = 15 * time.Minute

// Analyzer aggregates access-log entries. It is not safe for concurrent
// use.
type Analyzer struct {
	o        Options
	rec      *results.Recorder
	start    time.Time // the recorder's start (first entry - lookBack)
	first    time.Time // earliest request start seen
	last     time.Time // latest response time seen
	n        int64
	early    int64 // entries before start, counted in the first bucket
	untimed  int64 // entries without a time, not counted
	elbs     map[string]bool
	lastELB  string
	targets  map[string]*targetStats
	failures map[int64]map[string]int64 // bucket index -> target -> failed requests
	reasons  map[int64]map[string]int64 // bucket index -> failure kind -> count
	keys     [1000]string               // outcome keys of status codes, made once
}

type targetStats struct {
	group       string
	first, last time.Time
	requests    int64
	errors      int64
}

// New returns an empty Analyzer.
func New(o Options) *Analyzer {
	if o.Bucket <= 0 {
		o.Bucket = time.Second
	}
	if o.Gap <= 0 {
		o.Gap = 5 * time.Second
	}
	if o.Lead <= 0 {
		o.Lead = time.Minute
	}
	return &Analyzer{
		o: o, elbs: map[string]bool{}, targets: map[string]*targetStats{},
		failures: map[int64]map[string]int64{}, reasons: map[int64]map[string]int64{},
	}
}

// Entries returns the number of entries added.
func (a *Analyzer) Entries() int64 { return a.n }

// Add counts one entry. The entry is not kept. An entry with neither time
// nor request_creation_time cannot be placed and is only counted (the
// result's config "entries_without_time").
func (a *Analyzer) Add(e *accesslog.Entry) {
	if e.Time.IsZero() && e.RequestCreationTime.IsZero() {
		a.untimed++
		return
	}
	lat := latency(e)
	begin := e.RequestCreationTime
	if begin.IsZero() {
		begin = e.Time.Add(-lat)
	}
	if a.rec == nil {
		a.start = begin.Add(-lookBack).Truncate(a.o.Bucket)
		a.rec = results.NewRecorder(a.start, results.RecorderOptions{
			Source: results.SourceAnalyze, Bucket: a.o.Bucket, Grace: flushGrace,
			Meta: results.Meta{Version: a.o.Version, Workload: "alb-access-log"},
		})
		a.first, a.last = begin, e.Time
	}
	if begin.Before(a.start) {
		a.early++
	}
	a.first = minTime(a.first, begin)
	if e.Time.After(a.last) {
		a.last = e.Time
	}
	a.n++
	if a.n%65536 == 0 {
		a.rec.Flush(a.last)
	}
	if e.ELB != "" && e.ELB != a.lastELB && len(a.elbs) < 64 {
		a.elbs[e.ELB] = true
		a.lastELB = e.ELB
	}
	outcome := string(results.Other)
	if c := e.ELBStatusCode; c >= 100 && c <= 999 {
		if a.keys[c] == "" {
			a.keys[c] = results.StatusKey(c)
		}
		outcome = a.keys[c]
	}
	a.rec.Record(results.Sample{Start: begin, Latency: lat, Outcome: outcome, FromLB: e.ELBGenerated()})

	failed := results.IsError(outcome)
	if e.Target != "" {
		ts := a.targets[e.Target]
		if ts == nil {
			ts = &targetStats{group: accesslog.TargetGroupName(e.TargetGroupARN), first: begin, last: begin}
			a.targets[e.Target] = ts
		}
		ts.first, ts.last = minTime(ts.first, begin), maxTime(ts.last, begin)
		ts.requests++
		if failed {
			ts.errors++
		}
	}
	if failed {
		idx := int64(max(begin.Sub(a.start), 0) / a.o.Bucket)
		tgt := e.Target
		if tgt == "" {
			tgt = "-"
		}
		bump(a.failures, idx, tgt)
		bump(a.reasons, idx, failureKind(e))
	}
}

func bump(m map[int64]map[string]int64, idx int64, key string) {
	inner := m[idx]
	if inner == nil {
		inner = map[string]int64{}
		m[idx] = inner
	}
	inner[key]++
}

// latency is the time the load balancer spent on the request: the sum of
// the processing times it logged (those it could not measure are -1 and
// left out).
func latency(e *accesslog.Entry) time.Duration {
	var s float64
	for _, v := range []float64{e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime} {
		if v > 0 {
			s += v
		}
	}
	return time.Duration(s * float64(time.Second))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Result finishes the analysis: the timeline from the first request to the
// last response, the events (absolute times; those more than Lead outside
// the logs' span are dropped and counted in the result's config), the
// failure windows with their targets and likely cause, and a series of the
// targets serving per target group. It returns nil when no entry was added.
func (a *Analyzer) Result(events []TimedEvent) *results.Result {
	if a.rec == nil {
		return nil
	}
	var dropped int
	for _, ev := range events {
		if ev.At.Before(a.first.Add(-a.o.Lead)) || ev.At.After(a.last.Add(a.o.Lead)) {
			dropped++
			continue
		}
		a.rec.Event(ev.At, ev.Event)
	}
	a.addTargetEvents()
	a.rec.SetConfig("bucket", a.o.Bucket.String())
	a.rec.SetConfig("entries", fmt.Sprint(a.n))
	if a.early > 0 {
		a.rec.SetConfig("entries_before_timeline", fmt.Sprint(a.early))
	}
	if a.untimed > 0 {
		a.rec.SetConfig("entries_without_time", fmt.Sprint(a.untimed))
	}
	if len(events) > 0 {
		a.rec.SetConfig("events_outside_logs", fmt.Sprint(dropped))
	}
	r := a.rec.Finish(a.last)
	for elb := range a.elbs {
		r.Meta.Targets = append(r.Meta.Targets, elb)
	}
	sort.Strings(r.Meta.Targets)
	shift := rebase(r, a.first.Sub(a.start).Truncate(a.o.Bucket))
	sort.SliceStable(r.Events, func(i, j int) bool { return r.Events[i].AtMS < r.Events[j].AtMS })
	r.Series = a.servingSeries(r.Meta.Start)
	r.Failures = r.FindFailures(results.FailureOptions{Gap: a.o.Gap, Lead: a.o.Lead})
	for i := range r.Failures {
		f := &r.Failures[i]
		from := (f.StartMS + shift.Milliseconds()) / a.o.Bucket.Milliseconds()
		to := (f.EndMS + shift.Milliseconds()) / a.o.Bucket.Milliseconds()
		f.Targets = a.windowTargets(from, to)
		f.Cause = cause(r, f, a.windowKinds(from, to))
	}
	return r
}

// rebase moves the result's start from the recorder's (lookBack early) to
// the bucket of the first request and shifts every offset to match.
func rebase(r *results.Result, shift time.Duration) time.Duration {
	if shift <= 0 {
		return 0
	}
	ms := shift.Milliseconds()
	r.Meta.Start = r.Meta.Start.Add(shift)
	for i := range r.Timeline {
		r.Timeline[i].OffsetMS -= ms
	}
	for i := range r.Events {
		r.Events[i].AtMS -= ms
	}
	for i := range r.Marks {
		r.Marks[i].StartMS -= ms
		r.Marks[i].EndMS -= ms
	}
	// Entries counted early sit in the recorder's first bucket, which is
	// now before the start: fold it into the first bucket that remains.
	if len(r.Timeline) > 1 && r.Timeline[0].OffsetMS < 0 && r.Timeline[1].OffsetMS >= 0 {
		b0 := r.Timeline[0]
		r.Timeline = r.Timeline[1:]
		first := &r.Timeline[0]
		for k, n := range b0.Counts {
			first.Counts[k] += n
		}
		for k, n := range b0.FromLB {
			if first.FromLB == nil {
				first.FromLB = map[string]int64{}
			}
			first.FromLB[k] += n
		}
	} else if len(r.Timeline) > 0 && r.Timeline[0].OffsetMS < 0 {
		r.Timeline[0].OffsetMS = 0
	}
	return shift
}

// addTargetEvents marks, for every target, the first and the last request
// it received when those lie inside the logs (not at their edges): a
// target that stops getting requests was deregistered or failed its
// health checks, one that starts was registered.
func (a *Analyzer) addTargetEvents() {
	edge := 2 * a.o.Bucket
	names := make([]string, 0, len(a.targets))
	for t := range a.targets {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		ts := a.targets[t]
		attrs := map[string]string{"target_group": ts.group, "requests": fmt.Sprint(ts.requests), "failed": fmt.Sprint(ts.errors)}
		if ts.first.Sub(a.first) > edge {
			a.rec.Event(ts.first, results.Event{Kind: results.EventRegister, Source: "analyze", Object: "target/" + t,
				Message: fmt.Sprintf("target %s (%s) received its first request", t, ts.group), Attrs: attrs})
		}
		if a.last.Sub(ts.last) > edge {
			a.rec.Event(ts.last, results.Event{Kind: results.EventDeregister, Source: "analyze", Object: "target/" + t,
				Message: fmt.Sprintf("target %s (%s) received its last request", t, ts.group), Attrs: attrs})
		}
	}
}

// servingSeries counts, per target group, the targets between the bucket
// of their first request and the end of the bucket of their last: the
// targets the ALB was routing to. A target still served at the end of the
// logs is counted to the end.
func (a *Analyzer) servingSeries(start time.Time) []results.Series {
	type change struct {
		at    int64
		delta float64
	}
	byGroup := map[string][]change{}
	width := a.o.Bucket.Milliseconds()
	for _, ts := range a.targets {
		g := ts.group
		from := ts.first.Sub(start).Milliseconds()
		byGroup[g] = append(byGroup[g], change{from - from%width, 1})
		if a.last.Sub(ts.last) > 2*a.o.Bucket { // stopped before the logs end
			to := ts.last.Sub(start).Milliseconds()
			byGroup[g] = append(byGroup[g], change{to - to%width + width, -1})
		}
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var out []results.Series
	for _, g := range groups {
		cs := byGroup[g]
		sort.Slice(cs, func(i, j int) bool { return cs[i].at < cs[j].at })
		s := results.Series{Name: "targets-serving", Group: g, Unit: "targets"}
		v := 0.0
		for i, c := range cs {
			v += c.delta
			if i+1 < len(cs) && cs[i+1].at == c.at {
				continue
			}
			s.Points = append(s.Points, results.Point{AtMS: max(c.at, 0), Value: v})
		}
		if s.Name != "" && g == "" {
			s.Group = "(no target group)"
		}
		out = append(out, s)
	}
	return out
}

// windowTargets lists the targets with failed requests in buckets
// [from, to), most failures first; "-" stands for failures no target took.
func (a *Analyzer) windowTargets(from, to int64) []string {
	count := map[string]int64{}
	for i := from; i < to; i++ {
		for t, n := range a.failures[i] {
			count[t] += n
		}
	}
	return rankKeys(count)
}

func (a *Analyzer) windowKinds(from, to int64) map[string]int64 {
	count := map[string]int64{}
	for i := from; i < to; i++ {
		for k, n := range a.reasons[i] {
			count[k] += n
		}
	}
	return count
}

func rankKeys(count map[string]int64) []string {
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if count[keys[i]] != count[keys[j]] {
			return count[keys[i]] > count[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// Summary is what an analysis of files read, next to its result.
type Summary struct {
	// Result is the timeline; nil when the files held no entry.
	Result *results.Result
	// Stats count files, entries and malformed lines.
	Stats accesslog.Stats
	// Bad holds the first malformed lines (file:line: reason), at most
	// MaxBadShown.
	Bad []string
}

// MaxBadShown bounds Summary.Bad.
const MaxBadShown = 20

// Files analyzes the access-log files named (see accesslog.Files) with
// events from Kubernetes on the same timeline. ro's OnBad, when set, is
// called besides collecting the first malformed lines.
func Files(ctx context.Context, names []string, events []TimedEvent, o Options, ro accesslog.ReadOptions) (*Summary, error) {
	a := New(o)
	sum := &Summary{}
	onBad := ro.OnBad
	ro.OnBad = func(pe *accesslog.ParseError) {
		if len(sum.Bad) < MaxBadShown {
			sum.Bad = append(sum.Bad, pe.Error())
		}
		if onBad != nil {
			onBad(pe)
		}
	}
	st, err := accesslog.ReadFiles(ctx, names, ro, func(e *accesslog.Entry) error {
		a.Add(e)
		return nil
	})
	sum.Stats = st
	if err != nil {
		return sum, err
	}
	sum.Result = a.Result(events)
	if r := sum.Result; r != nil {
		r.Config["files"] = fmt.Sprint(st.Files)
		r.Config["malformed_lines"] = fmt.Sprint(st.Bad)
	}
	return sum, nil
}
