// Package results is the one result model of zerodrop: a per-bucket timeline
// of request outcomes (exact HTTP status codes and transport classes), latency
// summaries, marked disruption windows, events and totals, with metadata
// telling who produced it. The load simulator, the lab and the access-log
// analyzer write it; the report reads it.
//
// A Result is encoded as versioned JSON (see SchemaVersion and the embedded
// JSON Schema returned by Schema). Decode validates what it reads and
// still reads version 1 documents (written before events carried a
// source and before series, predicted and failure windows and the run's
// configuration existed), upgrading them in memory.
package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"
)

// SchemaVersion is the version of the result format written by this package.
// Decode also reads every older version down to MinSchemaVersion.
//
// Version 2 added Event.Source, Series, Predicted, Failures and Config; a
// version 1 document is a version 2 document without them.
const SchemaVersion = 2

// MinSchemaVersion is the oldest schema version Decode reads.
const MinSchemaVersion = 1

// Source tells which part of zerodrop produced a result.
type Source string

// Known sources.
const (
	SourceLoad    Source = "load"    // the load simulator (client side)
	SourceALB     Source = "alb"     // the ALB emulator's own counts
	SourceAnalyze Source = "analyze" // real ALB access logs
	SourceLab     Source = "lab"     // a lab run (load through the emulated ALB, with cluster events and series)
)

// Result is one run's outcome: what was sent, what came back, when.
type Result struct {
	// SchemaVersion is always SchemaVersion when written by this package.
	SchemaVersion int `json:"schema_version"`
	// Source is who counted the requests.
	Source Source `json:"source"`
	// Meta describes the run.
	Meta Meta `json:"meta"`
	// BucketMS is the width of one timeline bucket in milliseconds (1000
	// for the usual per-second timeline; smaller in time-scaled labs).
	BucketMS int64 `json:"bucket_ms"`
	// Timeline holds one bucket per BucketMS from Meta.Start, in order.
	// Buckets with no requests may be omitted.
	Timeline []Bucket `json:"timeline"`
	// Totals sums the whole run.
	Totals Totals `json:"totals"`
	// Latency summarises every request of the run.
	Latency Latency `json:"latency"`
	// Marks are the disruption windows (a scale-down, a rollout step, a
	// pod deleted), each with its own totals.
	Marks []Mark `json:"marks,omitempty"`
	// Events are points in time worth showing (a pod killed, a scale step),
	// in any order.
	Events []Event `json:"events,omitempty"`
	// Series are sampled values over the run: healthy targets per target
	// group, pods ready, nodes (version 2).
	Series []Series `json:"series,omitempty"`
	// Predicted are the windows in which a static analysis of the run's
	// manifests (zerodrop check) expects requests to fail (version 2).
	Predicted []Window `json:"predicted,omitempty"`
	// Failures are the windows in which failed requests clustered, found
	// after the run (FindFailures), with the targets involved and the
	// likely cause when the producer knows them (version 2).
	Failures []Failure `json:"failures,omitempty"`
	// Config is the run's configuration as the producer saw it: timings,
	// flags, manifest values, one string per key (version 2).
	Config map[string]string `json:"config,omitempty"`
	// Verify is the lost-write check, when one ran.
	Verify *Verification `json:"verify,omitempty"`
	// Generator is the load generator's own pacing, when it paced arrivals
	// (the open model); nil otherwise.
	Generator *Generator `json:"generator,omitempty"`
}

// Generator describes how punctually the load generator itself dispatched
// open-model arrivals. Latency counts from each arrival's scheduled start,
// so it includes this lag; reported apart, it tells generator lag from
// service latency.
type Generator struct {
	// DispatchLag summarises, per arrival, how late it was dispatched: from
	// its scheduled start to when a worker began it (its first request is
	// sent right after). Timer granularity, scheduler stalls and waiting for
	// a free in-flight slot all show here.
	DispatchLag Latency `json:"dispatch_lag"`
	// WaitedForCap counts the arrivals that found every in-flight slot
	// (--max-in-flight) busy when they were due and had to wait for one.
	WaitedForCap int64 `json:"waited_for_cap"`
}

// Meta describes a run.
type Meta struct {
	// Tool is the producing program, "zerodrop".
	Tool string `json:"tool"`
	// Version is the producing program's version.
	Version string `json:"version"`
	// Workload names what was sent ("orders", "get", a lab scenario).
	Workload string `json:"workload,omitempty"`
	// Model is the arrival model: "open" or "closed".
	Model string `json:"model,omitempty"`
	// Targets are the URLs traffic went to.
	Targets []string `json:"targets,omitempty"`
	// Start is when the run began; every offset in the result is from here.
	Start time.Time `json:"start"`
	// End is when the run ended.
	End time.Time `json:"end"`
	// Labels are free-form key/value pairs (scenario, variant, git revision).
	Labels map[string]string `json:"labels,omitempty"`
}

// Bucket counts the requests that started within one timeline bucket.
type Bucket struct {
	// OffsetMS is the bucket's start, in milliseconds from Meta.Start.
	OffsetMS int64 `json:"offset_ms"`
	// Counts maps an outcome key (Outcome) to its number of requests.
	Counts map[string]int64 `json:"counts"`
	// FromLB counts, per status code, the responses the load balancer made
	// itself (no target answered). A subset of Counts.
	FromLB map[string]int64 `json:"from_lb,omitempty"`
	// Latency summarises the bucket's requests.
	Latency Latency `json:"latency"`
}

// Totals sums counts over a run or a window.
type Totals struct {
	// Requests is the number of requests classified.
	Requests int64 `json:"requests"`
	// Errors is the number of requests whose outcome is an error (IsError).
	Errors int64 `json:"errors"`
	// ErrorRate is Errors/Requests (0 when there were no requests).
	ErrorRate float64 `json:"error_rate"`
	// Counts maps an outcome key to its number of requests.
	Counts map[string]int64 `json:"counts"`
	// FromLB counts the responses the load balancer made itself.
	FromLB map[string]int64 `json:"from_lb,omitempty"`
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MinMS  float64 `json:"min_ms"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Mark is a named window of the run, typically a disruption (a scale-down,
// a rollout step). Totals count the requests that started inside it.
type Mark struct {
	// Name labels the window.
	Name string `json:"name"`
	// StartMS is the window's start in milliseconds from Meta.Start.
	StartMS int64 `json:"start_ms"`
	// EndMS is the window's end in milliseconds from Meta.Start (exclusive).
	EndMS int64 `json:"end_ms"`
	// Totals counts the requests that started in [StartMS, EndMS).
	Totals Totals `json:"totals"`
	// Latency summarises those requests.
	Latency Latency `json:"latency"`
}

// Event is a point in time worth showing on the timeline.
type Event struct {
	// AtMS is the event's time in milliseconds from Meta.Start.
	AtMS int64 `json:"at_ms"`
	// Kind groups events: one of the Event* constants or a free word
	// ("kill", "gate").
	Kind string `json:"kind"`
	// Message says what happened.
	Message string `json:"message"`
	// Source says who saw the event: one of the EventSource* constants or
	// a free word (version 2; empty in version 1 documents).
	Source string `json:"source,omitempty"`
	// Object names what the event is about ("pod/orders-7d9f-abcde",
	// "node/lab-2", "target/127.0.1.3:8000"), when there is one (version 2).
	Object string `json:"object,omitempty"`
	// Attrs hold details (replicas, old and new state, weight).
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Event kinds a lab run, the analyzer and load write. Kind is free text;
// these are the ones the report knows how to draw.
const (
	EventScale        = "scale"         // replicas changed (attrs: from, to)
	EventSIGTERM      = "sigterm"       // a container got SIGTERM (or its preStop began)
	EventKill         = "kill"          // a process was killed or a pod deleted
	EventDeregister   = "deregister"    // a target was deregistered from a target group
	EventRegister     = "register"      // a target was registered
	EventTargetState  = "target-state"  // a target's health state changed (attrs: from, to, reason)
	EventNodeDrain    = "node-drain"    // a node was cordoned and drained
	EventNodeLost     = "node-lost"     // a node went away without a drain
	EventWeightChange = "weight-change" // a weighted forward changed (attrs: weights)
	EventKubernetes   = "kubernetes"    // any other Kubernetes event (attrs: reason, type)
)

// Event sources.
const (
	EventSourceLab        = "lab"        // the lab's own twins (kubelet, LB controller, autoscaler)
	EventSourceKubernetes = "kubernetes" // Kubernetes Event objects (kubectl get events)
	EventSourceALB        = "alb"        // the ALB emulator
	EventSourceLoad       = "load"       // the load generator
	EventSourceUser       = "user"       // given by hand (--mark, --event)
)

// Series is one quantity sampled over the run, drawn as a step line: each
// point's value holds until the next point.
type Series struct {
	// Name is what is measured: one of the Series* constants or a free word.
	Name string `json:"name"`
	// Group tells apart several series of the same name (the target
	// group of healthy-targets, the deployment of pods-ready).
	Group string `json:"group,omitempty"`
	// Unit is what a value counts ("targets", "pods", "nodes", "ms").
	Unit string `json:"unit"`
	// Points are the samples in time order.
	Points []Point `json:"points"`
}

// Known series names.
const (
	SeriesHealthyTargets = "healthy-targets" // healthy targets of one target group (Group)
	SeriesPodsReady      = "pods-ready"      // ready pods of one workload (Group)
	SeriesNodes          = "nodes"           // Ready nodes of the cluster
)

// Point is one sample of a Series.
type Point struct {
	// AtMS is the sample's time in milliseconds from Meta.Start.
	AtMS int64 `json:"at_ms"`
	// Value is the sampled value.
	Value float64 `json:"value"`
}

// Window is a span of the run with a reason, such as a window a static
// analysis predicts requests to fail in.
type Window struct {
	// Name labels the window ("pod orders-1 deleted").
	Name string `json:"name"`
	// StartMS is the window's start in milliseconds from Meta.Start.
	StartMS int64 `json:"start_ms"`
	// EndMS is the window's end in milliseconds from Meta.Start (exclusive).
	EndMS int64 `json:"end_ms"`
	// Source says who predicted it ("check").
	Source string `json:"source,omitempty"`
	// Rule is the rule or reasoning that gives the window ("ZD003").
	Rule string `json:"rule,omitempty"`
	// Reason says in words why requests fail in it.
	Reason string `json:"reason,omitempty"`
}

// Failure is a measured window in which failed requests clustered.
type Failure struct {
	// StartMS is the window's start in milliseconds from Meta.Start.
	StartMS int64 `json:"start_ms"`
	// EndMS is the window's end in milliseconds from Meta.Start (exclusive).
	EndMS int64 `json:"end_ms"`
	// Totals counts the requests that started in the window.
	Totals Totals `json:"totals"`
	// Targets lists the targets that took part in the failures (those that
	// answered 5xx or behind an ALB-made error), most failures first.
	Targets []string `json:"targets,omitempty"`
	// Cause is the likely cause in words, from the failure mix and the
	// events around the window.
	Cause string `json:"cause,omitempty"`
	// Events lists the indexes into Result.Events of the events that fall
	// shortly before or inside the window.
	Events []int `json:"events,omitempty"`
}

// Verification is the outcome of reading acknowledged writes back.
type Verification struct {
	// Checked is the number of acknowledged records read back.
	Checked int64 `json:"checked"`
	// Lost lists acknowledged writes that are missing or older than acknowledged.
	Lost []LostWrite `json:"lost"`
	// Duplicates lists idempotency keys that produced more than one record.
	Duplicates []Duplicate `json:"duplicates"`
	// Scanned is the number of records listed while looking for duplicates.
	Scanned int64 `json:"scanned"`
	// Errors counts read-backs that failed (transport errors, 5xx), so the
	// record's state is unknown.
	Errors int64 `json:"errors"`
}

// LostWrite is an acknowledged write the service no longer has.
type LostWrite struct {
	ID           string `json:"id"`
	AckedVersion int64  `json:"acked_version"`
	// FoundVersion is the version read back, or -1 when the record is missing.
	FoundVersion int64 `json:"found_version"`
}

// Duplicate is an idempotency key that produced several records.
type Duplicate struct {
	Key string   `json:"key"`
	IDs []string `json:"ids"`
}

// Offset returns t as milliseconds from the run's start.
func (r *Result) Offset(t time.Time) int64 { return t.Sub(r.Meta.Start).Milliseconds() }

// Duration is the run's wall-clock length.
func (r *Result) Duration() time.Duration { return r.Meta.End.Sub(r.Meta.Start) }

// Window sums the timeline buckets that overlap [from, to) (offsets from the
// start). It works at bucket resolution, for windows chosen after the run;
// marks known during the run carry exact totals instead.
func (r *Result) Window(from, to time.Duration) Totals {
	t := Totals{Counts: map[string]int64{}}
	for _, b := range r.Timeline {
		bs := time.Duration(b.OffsetMS) * time.Millisecond
		be := bs + time.Duration(r.BucketMS)*time.Millisecond
		if be <= from || bs >= to {
			continue
		}
		for k, n := range b.Counts {
			t.add(k, n, false)
		}
		for k, n := range b.FromLB {
			t.add(k, n, true)
		}
	}
	t.finish()
	return t
}

func (t *Totals) add(key string, n int64, fromLB bool) {
	if fromLB {
		if t.FromLB == nil {
			t.FromLB = map[string]int64{}
		}
		t.FromLB[key] += n
		return
	}
	if t.Counts == nil {
		t.Counts = map[string]int64{}
	}
	t.Counts[key] += n
	t.Requests += n
	if IsError(key) {
		t.Errors += n
	}
}

func (t *Totals) finish() {
	if t.Counts == nil {
		t.Counts = map[string]int64{}
	}
	t.ErrorRate = 0
	if t.Requests > 0 {
		t.ErrorRate = float64(t.Errors) / float64(t.Requests)
	}
}

// Keys returns every outcome key present in the result's totals and
// timeline, status codes first in numeric order, then transport classes.
func (r *Result) Keys() []string {
	seen := map[string]bool{}
	for k := range r.Totals.Counts {
		seen[k] = true
	}
	for _, b := range r.Timeline {
		for k := range b.Counts {
			seen[k] = true
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	SortKeys(keys)
	return keys
}

// SortKeys orders outcome keys: status codes numerically, then transport
// classes in the order of TransportClasses.
func SortKeys(keys []string) {
	rank := func(k string) (int, int) {
		if c, err := strconv.Atoi(k); err == nil {
			return 0, c
		}
		for i, tc := range TransportClasses {
			if string(tc) == k {
				return 1, i
			}
		}
		return 2, 0
	}
	sort.Slice(keys, func(i, j int) bool {
		gi, ri := rank(keys[i])
		gj, rj := rank(keys[j])
		if gi != gj {
			return gi < gj
		}
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
}

// Encode writes r as indented JSON. It validates r first, so what it writes
// always decodes.
func Encode(w io.Writer, r *Result) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("encoding result: %w", err)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encoding result: %w", err)
	}
	return nil
}

// Decode reads one result from JSON, rejecting unknown fields, other schema
// versions and inconsistent content (see Validate). Errors name the byte
// offset or the field at fault.
func Decode(rd io.Reader) (*Result, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("reading result: %w", err)
	}
	return Unmarshal(data)
}

// Unmarshal is Decode for a byte slice.
func Unmarshal(data []byte) (*Result, error) {
	var probe struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("decoding result: %w", describeJSONError(data, err))
	}
	if probe.SchemaVersion == nil {
		return nil, errors.New("decoding result: field schema_version: missing")
	}
	version := *probe.SchemaVersion
	if version < MinSchemaVersion || version > SchemaVersion {
		return nil, fmt.Errorf("decoding result: field schema_version: version %d is not supported (want %d to %d)", version, MinSchemaVersion, SchemaVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Result
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding result: %w", describeJSONError(data, err))
	}
	if dec.More() {
		return nil, errors.New("decoding result: trailing data after the result object")
	}
	if version == 1 {
		if err := r.upgradeV1(); err != nil {
			return nil, fmt.Errorf("decoding result: %w", err)
		}
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("decoding result: %w", err)
	}
	return &r, nil
}

// upgradeV1 turns a decoded version 1 document into the current version.
// Version 1 had none of the fields added since, so a document that carries
// them is not a version 1 document.
func (r *Result) upgradeV1() error {
	v2 := map[string]bool{
		"series": len(r.Series) > 0, "predicted": len(r.Predicted) > 0,
		"failures": len(r.Failures) > 0, "config": len(r.Config) > 0,
	}
	for i, e := range r.Events {
		if e.Source != "" || e.Object != "" {
			v2[fmt.Sprintf("events[%d].source/object", i)] = true
		}
	}
	for f, set := range v2 {
		if set {
			return fmt.Errorf("field %s: not part of schema version 1", f)
		}
	}
	if r.Source == SourceLab {
		return errors.New("field source: lab is not part of schema version 1")
	}
	r.SchemaVersion = SchemaVersion
	return nil
}

// describeJSONError adds a line and column to a JSON syntax or type error.
func describeJSONError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
		if te.Field != "" {
			err = fmt.Errorf("field %s: %w", te.Field, err)
		}
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// Validate checks that r is internally consistent: current version and
// known source, valid outcome keys, non-negative counts, ordered buckets,
// totals that match their counts, marks and windows that end after they
// start, series points in time order with finite values, failure windows
// whose event indexes exist, no more arrivals waiting for the in-flight cap
// than were dispatched.
func (r *Result) Validate() error {
	if r.SchemaVersion != SchemaVersion {
		return fmt.Errorf("field schema_version: %d is not supported (want %d)", r.SchemaVersion, SchemaVersion)
	}
	switch r.Source {
	case SourceLoad, SourceALB, SourceAnalyze, SourceLab:
	default:
		return fmt.Errorf("field source: %q is not one of load, alb, analyze, lab", r.Source)
	}
	if r.Meta.Tool == "" {
		return errors.New("field meta.tool: missing")
	}
	if r.Meta.Start.IsZero() {
		return errors.New("field meta.start: missing")
	}
	if r.Meta.End.Before(r.Meta.Start) {
		return errors.New("field meta.end: before meta.start")
	}
	if r.BucketMS <= 0 {
		return fmt.Errorf("field bucket_ms: %d must be positive", r.BucketMS)
	}
	last := int64(math.MinInt64)
	for i, b := range r.Timeline {
		where := fmt.Sprintf("timeline[%d]", i)
		if b.OffsetMS <= last {
			return fmt.Errorf("field %s.offset_ms: %d is not after the previous bucket", where, b.OffsetMS)
		}
		if b.OffsetMS%r.BucketMS != 0 {
			return fmt.Errorf("field %s.offset_ms: %d is not a multiple of bucket_ms %d", where, b.OffsetMS, r.BucketMS)
		}
		last = b.OffsetMS
		if err := validateCounts(where+".counts", b.Counts, b.FromLB); err != nil {
			return err
		}
		if err := b.Latency.validate(where + ".latency"); err != nil {
			return err
		}
	}
	if err := r.Totals.validate("totals"); err != nil {
		return err
	}
	if err := r.Latency.validate("latency"); err != nil {
		return err
	}
	for i, m := range r.Marks {
		where := fmt.Sprintf("marks[%d]", i)
		if m.Name == "" {
			return fmt.Errorf("field %s.name: missing", where)
		}
		if m.EndMS < m.StartMS {
			return fmt.Errorf("field %s.end_ms: %d is before start_ms %d", where, m.EndMS, m.StartMS)
		}
		if err := m.Totals.validate(where + ".totals"); err != nil {
			return err
		}
		if err := m.Latency.validate(where + ".latency"); err != nil {
			return err
		}
	}
	for i, e := range r.Events {
		if e.Kind == "" {
			return fmt.Errorf("field events[%d].kind: missing", i)
		}
	}
	for i, s := range r.Series {
		where := fmt.Sprintf("series[%d]", i)
		if s.Name == "" {
			return fmt.Errorf("field %s.name: missing", where)
		}
		last := int64(math.MinInt64)
		for j, p := range s.Points {
			if p.AtMS < last {
				return fmt.Errorf("field %s.points[%d].at_ms: %d is before the previous point", where, j, p.AtMS)
			}
			last = p.AtMS
			if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				return fmt.Errorf("field %s.points[%d].value: not a finite number", where, j)
			}
		}
	}
	for i, w := range r.Predicted {
		where := fmt.Sprintf("predicted[%d]", i)
		if w.Name == "" {
			return fmt.Errorf("field %s.name: missing", where)
		}
		if w.EndMS < w.StartMS {
			return fmt.Errorf("field %s.end_ms: %d is before start_ms %d", where, w.EndMS, w.StartMS)
		}
	}
	for i, f := range r.Failures {
		where := fmt.Sprintf("failures[%d]", i)
		if f.EndMS < f.StartMS {
			return fmt.Errorf("field %s.end_ms: %d is before start_ms %d", where, f.EndMS, f.StartMS)
		}
		if err := f.Totals.validate(where + ".totals"); err != nil {
			return err
		}
		for _, e := range f.Events {
			if e < 0 || e >= len(r.Events) {
				return fmt.Errorf("field %s.events: index %d is not within 0..%d", where, e, len(r.Events)-1)
			}
		}
	}
	if g := r.Generator; g != nil {
		if err := g.DispatchLag.validate("generator.dispatch_lag"); err != nil {
			return err
		}
		if g.WaitedForCap < 0 || g.WaitedForCap > g.DispatchLag.Count {
			return fmt.Errorf("field generator.waited_for_cap: %d is not within 0..%d (dispatch_lag.count)", g.WaitedForCap, g.DispatchLag.Count)
		}
	}
	if v := r.Verify; v != nil {
		if v.Checked < 0 || v.Scanned < 0 || v.Errors < 0 {
			return errors.New("field verify: negative count")
		}
		for i, d := range v.Duplicates {
			if len(d.IDs) < 2 {
				return fmt.Errorf("field verify.duplicates[%d].ids: a duplicate needs at least two ids", i)
			}
		}
	}
	return nil
}

func validateCounts(where string, counts, fromLB map[string]int64) error {
	for k, n := range counts {
		if _, err := ParseOutcome(k); err != nil {
			return fmt.Errorf("field %s: %w", where, err)
		}
		if n < 0 {
			return fmt.Errorf("field %s[%q]: negative count %d", where, k, n)
		}
	}
	for k, n := range fromLB {
		if !IsStatus(k) {
			return fmt.Errorf("field %s from_lb: %q is not a status code", where, k)
		}
		if n < 0 || n > counts[k] {
			return fmt.Errorf("field %s from_lb[%q]: %d is not within 0..%d", where, k, n, counts[k])
		}
	}
	return nil
}

func (t Totals) validate(where string) error {
	if err := validateCounts(where+".counts", t.Counts, t.FromLB); err != nil {
		return err
	}
	var sum, errs int64
	for k, n := range t.Counts {
		sum += n
		if IsError(k) {
			errs += n
		}
	}
	if sum != t.Requests {
		return fmt.Errorf("field %s.requests: %d does not match the sum of counts %d", where, t.Requests, sum)
	}
	if errs != t.Errors {
		return fmt.Errorf("field %s.errors: %d does not match the error counts %d", where, t.Errors, errs)
	}
	want := 0.0
	if sum > 0 {
		want = float64(errs) / float64(sum)
	}
	if math.Abs(t.ErrorRate-want) > 1e-9 {
		return fmt.Errorf("field %s.error_rate: %g does not match errors/requests %g", where, t.ErrorRate, want)
	}
	return nil
}

func (l Latency) validate(where string) error {
	vals := []float64{l.MinMS, l.MeanMS, l.P50MS, l.P90MS, l.P99MS, l.P999MS, l.MaxMS}
	for _, v := range vals {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("field %s: latency %g is not a non-negative number", where, v)
		}
	}
	if l.Count < 0 {
		return fmt.Errorf("field %s.count: negative", where)
	}
	if l.Count > 0 && !(l.MinMS <= l.P50MS && l.P50MS <= l.P90MS && l.P90MS <= l.P99MS && l.P99MS <= l.P999MS && l.P999MS <= l.MaxMS) {
		return fmt.Errorf("field %s: percentiles are not in order (min <= p50 <= p90 <= p99 <= p999 <= max)", where)
	}
	return nil
}
