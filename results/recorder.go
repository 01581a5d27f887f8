package results

import (
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1 µs to one
// hour; longer values are clamped to the maximum.
const (
	histMinUS     = 1
	histMaxUS     = int64(time.Hour / time.Microsecond)
	histTotalSigs = 3 // overall and per-mark histograms
	histBucketSig = 2 // per-bucket histograms (smaller; p99 to 1%)
)

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	// Source is written into the result (default SourceLoad).
	Source Source
	// Meta is copied into the result; Meta.Start is set by NewRecorder.
	Meta Meta
	// Bucket is the timeline bucket width (default one second).
	Bucket time.Duration
	// Grace is how long after its end a bucket stays open for requests
	// that started in it but finish later. Set it to at least the longest
	// possible request (connect + response timeout). Default 30 s.
	Grace time.Duration
}

// Recorder counts classified requests into a timeline with bounded memory:
// one small record per bucket, HDR histograms for the open buckets, the
// whole run and each mark, and nothing per request. It is safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	opts    RecorderOptions
	start   time.Time
	bucket  time.Duration
	buckets map[int64]*bucketState // by bucket index
	total   Totals
	hist    *hdrhistogram.Histogram
	marks   []*markState
	events  []Event
	series  []*Series // in order of first sample
	windows []Window  // predicted
	config  map[string]string
	pool    []*hdrhistogram.Histogram
	// lag is the open model's dispatch lag (nil until the first arrival);
	// waited counts the arrivals that waited for the in-flight cap.
	lag    *hdrhistogram.Histogram
	waited int64
	// flushed is the highest bucket index whose latency was finalised.
	flushed int64
}

type bucketState struct {
	counts map[string]int64
	fromLB map[string]int64
	hist   *hdrhistogram.Histogram // nil once finalised
	lat    Latency
}

type markState struct {
	name       string
	start, end time.Time // end zero while open
	totals     Totals
	hist       *hdrhistogram.Histogram
}

// Sample is one classified request.
type Sample struct {
	// Start is when the request started, or was meant to start in an open
	// model (so that queueing delay counts).
	Start time.Time
	// Latency is from Start to the end of the response (or the failure).
	Latency time.Duration
	// Outcome is the outcome key: a status code or a transport class.
	Outcome string
	// FromLB is true when a load balancer, not a target, made the status.
	FromLB bool
}

// NewRecorder starts recording a run that begins at start.
func NewRecorder(start time.Time, opts RecorderOptions) *Recorder {
	if opts.Source == "" {
		opts.Source = SourceLoad
	}
	if opts.Bucket <= 0 {
		opts.Bucket = time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.Meta.Tool == "" {
		opts.Meta.Tool = "zerodrop"
	}
	opts.Meta.Start = start
	return &Recorder{
		opts:    opts,
		start:   start,
		bucket:  opts.Bucket,
		buckets: map[int64]*bucketState{},
		total:   Totals{Counts: map[string]int64{}},
		hist:    hdrhistogram.New(histMinUS, histMaxUS, histTotalSigs),
		flushed: -1,
	}
}

// Start returns the time the run began.
func (r *Recorder) Start() time.Time { return r.start }

// Record counts one request.
func (r *Recorder) Record(s Sample) {
	us := clampUS(s.Latency)
	idx := int64(0)
	if d := s.Start.Sub(r.start); d > 0 {
		idx = int64(d / r.bucket)
	}
	fromLB := s.FromLB && IsStatus(s.Outcome)

	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[idx]
	if b == nil {
		b = &bucketState{counts: make(map[string]int64, 4)}
		if idx > r.flushed {
			b.hist = r.newBucketHist()
		}
		r.buckets[idx] = b
	}
	b.counts[s.Outcome]++
	if fromLB {
		if b.fromLB == nil {
			b.fromLB = map[string]int64{}
		}
		b.fromLB[s.Outcome]++
	}
	if b.hist != nil {
		_ = b.hist.RecordValue(us)
	}
	r.total.add(s.Outcome, 1, false)
	if fromLB {
		r.total.add(s.Outcome, 1, true)
	}
	_ = r.hist.RecordValue(us)
	for _, m := range r.marks {
		if s.Start.Before(m.start) || (!m.end.IsZero() && !s.Start.Before(m.end)) {
			continue
		}
		m.totals.add(s.Outcome, 1, false)
		if fromLB {
			m.totals.add(s.Outcome, 1, true)
		}
		_ = m.hist.RecordValue(us)
	}
}

// RecordDispatch counts one paced (open-model) arrival: lag is how late it
// was dispatched after its scheduled start, waited whether it found every
// in-flight slot busy. The result carries a Generator once any arrival was
// recorded. Memory stays bounded: one histogram for the whole run.
func (r *Recorder) RecordDispatch(lag time.Duration, waited bool) {
	us := clampUS(lag)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lag == nil {
		r.lag = hdrhistogram.New(histMinUS, histMaxUS, histTotalSigs)
	}
	_ = r.lag.RecordValue(us)
	if waited {
		r.waited++
	}
}

// clampUS converts d to microseconds within the histograms' range.
func clampUS(d time.Duration) int64 {
	return min(max(d.Microseconds(), histMinUS), histMaxUS)
}

func (r *Recorder) newBucketHist() *hdrhistogram.Histogram {
	if n := len(r.pool); n > 0 {
		h := r.pool[n-1]
		r.pool = r.pool[:n-1]
		return h
	}
	return hdrhistogram.New(histMinUS, histMaxUS, histBucketSig)
}

// AddMark opens a named window from start. end may be the zero time for a
// window still open; close it with EndMark (or it ends with the run).
// Requests count in the window by their start time; requests recorded before
// the mark was added are not counted in it (add marks before their start,
// or use Result.Window afterwards).
func (r *Recorder) AddMark(name string, start, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks = append(r.marks, &markState{
		name: name, start: start, end: end,
		totals: Totals{Counts: map[string]int64{}},
		hist:   hdrhistogram.New(histMinUS, histMaxUS, histTotalSigs),
	})
}

// EndMark closes the most recent open window called name at end. It reports
// whether such a window was open.
func (r *Recorder) EndMark(name string, end time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.marks) - 1; i >= 0; i-- {
		if m := r.marks[i]; m.name == name && m.end.IsZero() {
			m.end = end
			return true
		}
	}
	return false
}

// AddEvent records a point-in-time event.
func (r *Recorder) AddEvent(at time.Time, kind, message string, attrs map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, Event{AtMS: at.Sub(r.start).Milliseconds(), Kind: kind, Message: message, Attrs: attrs})
}

// Event records e at time at (its AtMS is set from at), keeping its kind,
// source, object and attributes.
func (r *Recorder) Event(at time.Time, e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.AtMS = at.Sub(r.start).Milliseconds()
	r.events = append(r.events, e)
}

// Point adds a sample at time at to the series called name in group (for
// example SeriesHealthyTargets of one target group), creating the series
// with unit on its first sample. Samples should come in time order; one
// that comes earlier than the series' last is moved back to it.
func (r *Recorder) Point(name, group, unit string, at time.Time, value float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s *Series
	for _, x := range r.series {
		if x.Name == name && x.Group == group {
			s = x
			break
		}
	}
	if s == nil {
		s = &Series{Name: name, Group: group, Unit: unit}
		r.series = append(r.series, s)
	}
	ms := at.Sub(r.start).Milliseconds()
	if n := len(s.Points); n > 0 && ms < s.Points[n-1].AtMS {
		ms = s.Points[n-1].AtMS
	}
	s.Points = append(s.Points, Point{AtMS: ms, Value: value})
}

// Predict records a window in which a static analysis expects requests to
// fail, from start to end; w's offsets are set from them.
func (r *Recorder) Predict(start, end time.Time, w Window) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.StartMS = start.Sub(r.start).Milliseconds()
	w.EndMS = max(end.Sub(r.start).Milliseconds(), w.StartMS)
	r.windows = append(r.windows, w)
}

// SetConfig records one configuration value of the run (a timing, a flag).
func (r *Recorder) SetConfig(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.config == nil {
		r.config = map[string]string{}
	}
	r.config[key] = value
}

// Flush finalises the latency of every bucket that ended more than Grace
// before now and returns those buckets in order (for live sinks such as
// EMF). A request recorded later in a finalised bucket still counts, but not
// in that bucket's latency.
func (r *Recorder) Flush(now time.Time) []Bucket {
	r.mu.Lock()
	defer r.mu.Unlock()
	limit := int64((now.Sub(r.start)-r.opts.Grace)/r.bucket) - 1
	return r.flushLocked(limit)
}

func (r *Recorder) flushLocked(limit int64) []Bucket {
	var idxs []int64
	for idx, b := range r.buckets {
		if idx <= limit && b.hist != nil {
			idxs = append(idxs, idx)
		}
	}
	sort.Slice(idxs, func(i, j int) bool { return idxs[i] < idxs[j] })
	out := make([]Bucket, 0, len(idxs))
	for _, idx := range idxs {
		b := r.buckets[idx]
		b.lat = summarize(b.hist)
		b.hist.Reset()
		r.pool = append(r.pool, b.hist)
		b.hist = nil
		out = append(out, r.bucketOut(idx, b))
	}
	if limit > r.flushed {
		r.flushed = limit
	}
	return out
}

func (r *Recorder) bucketOut(idx int64, b *bucketState) Bucket {
	out := Bucket{
		OffsetMS: idx * r.bucket.Milliseconds(),
		Counts:   make(map[string]int64, len(b.counts)),
		Latency:  b.lat,
	}
	for k, n := range b.counts {
		out.Counts[k] = n
	}
	if len(b.fromLB) > 0 {
		out.FromLB = make(map[string]int64, len(b.fromLB))
		for k, n := range b.fromLB {
			out.FromLB[k] = n
		}
	}
	return out
}

// Snapshot is a live view of a run for progress lines and metrics.
type Snapshot struct {
	Totals  Totals
	Latency Latency
}

// Snapshot returns the totals and latency so far.
func (r *Recorder) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.total
	t.Counts = make(map[string]int64, len(r.total.Counts))
	for k, n := range r.total.Counts {
		t.Counts[k] = n
	}
	t.FromLB = nil
	t.finish()
	return Snapshot{Totals: t, Latency: summarize(r.hist)}
}

// Finish ends the run at end and returns the complete result. The recorder
// must not be used afterwards.
func (r *Recorder) Finish(end time.Time) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked(1 << 62)
	res := &Result{
		SchemaVersion: SchemaVersion,
		Source:        r.opts.Source,
		Meta:          r.opts.Meta,
		BucketMS:      r.bucket.Milliseconds(),
		Latency:       summarize(r.hist),
		Events:        r.events,
		Predicted:     r.windows,
		Config:        r.config,
	}
	for _, s := range r.series {
		res.Series = append(res.Series, *s)
	}
	if res.BucketMS <= 0 {
		res.BucketMS = 1
	}
	if r.lag != nil {
		res.Generator = &Generator{DispatchLag: summarize(r.lag), WaitedForCap: r.waited}
	}
	res.Meta.End = end
	if end.Before(res.Meta.Start) {
		res.Meta.End = res.Meta.Start
	}
	idxs := make([]int64, 0, len(r.buckets))
	for idx := range r.buckets {
		idxs = append(idxs, idx)
	}
	sort.Slice(idxs, func(i, j int) bool { return idxs[i] < idxs[j] })
	res.Timeline = make([]Bucket, 0, len(idxs))
	for _, idx := range idxs {
		res.Timeline = append(res.Timeline, r.bucketOut(idx, r.buckets[idx]))
	}
	res.Totals = r.total
	res.Totals.finish()
	for _, m := range r.marks {
		mend := m.end
		if mend.IsZero() || mend.After(end) {
			mend = end
		}
		t := m.totals
		t.finish()
		mk := Mark{
			Name:    m.name,
			StartMS: m.start.Sub(r.start).Milliseconds(),
			EndMS:   mend.Sub(r.start).Milliseconds(),
			Totals:  t,
			Latency: summarize(m.hist),
		}
		if mk.EndMS < mk.StartMS {
			mk.EndMS = mk.StartMS
		}
		res.Marks = append(res.Marks, mk)
	}
	return res
}

func summarize(h *hdrhistogram.Histogram) Latency {
	n := h.TotalCount()
	if n == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	l := Latency{
		Count:  n,
		MinMS:  ms(h.Min()),
		MeanMS: h.Mean() / 1000,
		P50MS:  ms(h.ValueAtQuantile(50)),
		P90MS:  ms(h.ValueAtQuantile(90)),
		P99MS:  ms(h.ValueAtQuantile(99)),
		P999MS: ms(h.ValueAtQuantile(99.9)),
		MaxMS:  ms(h.Max()),
	}
	// HDR reports bucket-equivalent values; keep the summary monotonic.
	if l.MaxMS < l.P999MS {
		l.MaxMS = l.P999MS
	}
	if l.MinMS > l.P50MS {
		l.MinMS = l.P50MS
	}
	return l
}
