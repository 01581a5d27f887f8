package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleResult(t *testing.T) *Result {
	t.Helper()
	rec := NewRecorder(t0, RecorderOptions{Meta: Meta{Version: "test", Workload: "get", Model: "open", Targets: []string{"http://127.0.0.1:1/"}}})
	// What a lab run adds: events with their source, series, predictions,
	// configuration.
	rec.Event(t0.Add(1900*time.Millisecond), Event{Kind: EventSIGTERM, Source: EventSourceLab, Object: "pod/orders-1", Message: "SIGTERM to orders"})
	rec.Point(SeriesHealthyTargets, "orders-tg", "targets", t0, 3)
	rec.Point(SeriesHealthyTargets, "orders-tg", "targets", t0.Add(2500*time.Millisecond), 2)
	rec.Point(SeriesNodes, "", "nodes", t0, 2)
	rec.Predict(t0.Add(2*time.Second), t0.Add(2500*time.Millisecond), Window{Name: "orders-1 deleted", Source: "check", Rule: "ZD003", Reason: "the app stops before the ALB deregisters it"})
	rec.SetConfig("deregistration_delay", "30s")
	rec.AddMark("scale-down", t0.Add(2*time.Second), t0.Add(3*time.Second))
	for i := range 10 {
		rec.Record(Sample{Start: t0.Add(time.Duration(i) * 500 * time.Millisecond), Latency: time.Duration(i+1) * time.Millisecond, Outcome: "200"})
	}
	rec.Record(Sample{Start: t0.Add(2100 * time.Millisecond), Latency: 5 * time.Second, Outcome: "502", FromLB: true})
	rec.Record(Sample{Start: t0.Add(2200 * time.Millisecond), Latency: time.Millisecond, Outcome: string(Reset)})
	rec.Record(Sample{Start: t0.Add(3500 * time.Millisecond), Latency: time.Millisecond, Outcome: "409"})
	rec.AddEvent(t0.Add(2*time.Second), "scale", "replicas 4 -> 2", map[string]string{"replicas": "2"})
	// The open model's pacing: three arrivals on time, one 40 ms late
	// because every in-flight slot was busy.
	for _, lag := range []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, 300 * time.Microsecond} {
		rec.RecordDispatch(lag, false)
	}
	rec.RecordDispatch(40*time.Millisecond, true)
	r := rec.Finish(t0.Add(5 * time.Second))
	r.Failures = r.FindFailures(FailureOptions{})
	return r
}

func TestRecorderCountsTimelineAndMarks(t *testing.T) {
	r := sampleResult(t)
	if r.Totals.Requests != 13 || r.Totals.Errors != 2 {
		t.Fatalf("totals = %d requests, %d errors; want 13, 2", r.Totals.Requests, r.Totals.Errors)
	}
	if len(r.Events) != 2 || r.Events[0].AtMS != 1900 || r.Events[0].Source != EventSourceLab || r.Events[0].Object != "pod/orders-1" {
		t.Fatalf("events = %+v", r.Events)
	}
	if len(r.Series) != 2 || r.Series[0].Group != "orders-tg" || len(r.Series[0].Points) != 2 || r.Series[0].Points[1] != (Point{AtMS: 2500, Value: 2}) {
		t.Fatalf("series = %+v", r.Series)
	}
	if len(r.Predicted) != 1 || r.Predicted[0].StartMS != 2000 || r.Predicted[0].EndMS != 2500 || r.Config["deregistration_delay"] != "30s" {
		t.Fatalf("predicted = %+v, config = %v", r.Predicted, r.Config)
	}
	if r.Totals.Requests != 13 || r.Totals.Errors != 2 {
		t.Fatalf("totals = %d requests, %d errors; want 13, 2", r.Totals.Requests, r.Totals.Errors)
	}
	if r.Totals.FromLB["502"] != 1 {
		t.Errorf("from_lb 502 = %d, want 1", r.Totals.FromLB["502"])
	}
	// Buckets by start time: second 0 has 2 (0, 0.5s), 1 has 2, 2 has 2+2, 3 has 2+1, 4 has 2.
	want := map[int64]int64{0: 2, 1000: 2, 2000: 4, 3000: 3, 4000: 2}
	got := map[int64]int64{}
	for _, b := range r.Timeline {
		for _, n := range b.Counts {
			got[b.OffsetMS] += n
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timeline = %v, want %v", got, want)
	}
	if len(r.Marks) != 1 {
		t.Fatalf("marks = %d, want 1", len(r.Marks))
	}
	m := r.Marks[0]
	// In [2s,3s): the 200s at 2.0s and 2.5s, the 502 and the reset.
	if m.Totals.Requests != 4 || m.Totals.Errors != 2 || m.Totals.ErrorRate != 0.5 {
		t.Errorf("mark totals = %+v, want 4 requests, 2 errors, rate 0.5", m.Totals)
	}
	if m.Latency.MaxMS < 4900 {
		t.Errorf("mark max latency = %v ms, want about 5000", m.Latency.MaxMS)
	}
	w := r.Window(2*time.Second, 3*time.Second)
	if w.Requests != 4 || w.Errors != 2 {
		t.Errorf("Window(2s,3s) = %+v, want 4 requests 2 errors", w)
	}
	if r.Latency.Count != 13 || r.Latency.MaxMS < 4900 || r.Latency.MinMS > 1.01 {
		t.Errorf("latency = %+v", r.Latency)
	}
	if got := r.Keys(); !reflect.DeepEqual(got, []string{"200", "409", "502", "reset"}) {
		t.Errorf("Keys() = %v", got)
	}
	g := r.Generator
	if g == nil {
		t.Fatal("no generator summary after RecordDispatch")
	}
	if g.DispatchLag.Count != 4 || g.WaitedForCap != 1 {
		t.Errorf("generator = %d arrivals, %d waited; want 4, 1", g.DispatchLag.Count, g.WaitedForCap)
	}
	if g.DispatchLag.P50MS < 0.19 || g.DispatchLag.P50MS > 0.21 || g.DispatchLag.MaxMS < 39.9 || g.DispatchLag.MaxMS > 40.1 {
		t.Errorf("dispatch lag = %+v, want p50 0.2 ms, max 40 ms", g.DispatchLag)
	}
	// Service latency is not touched by the pacing record.
	if r.Latency.Count != 13 {
		t.Errorf("latency count = %d after dispatch records, want 13", r.Latency.Count)
	}
}

// A recorder that paced no arrivals (the closed model, the analyzer) writes
// no generator section, so older readers see the same document.
func TestNoGeneratorWithoutDispatch(t *testing.T) {
	rec := NewRecorder(t0, RecorderOptions{})
	rec.Record(Sample{Start: t0, Latency: time.Millisecond, Outcome: "200"})
	r := rec.Finish(t0.Add(time.Second))
	if r.Generator != nil {
		t.Fatalf("generator = %+v, want none", r.Generator)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "generator") {
		t.Fatalf("encoded result mentions generator:\n%s", buf.String())
	}
}

func TestRoundTripAndSchema(t *testing.T) {
	r := sampleResult(t)
	r.Verify = &Verification{Checked: 3, Lost: []LostWrite{{ID: "7", AckedVersion: 3, FoundVersion: -1}}, Duplicates: []Duplicate{{Key: "k", IDs: []string{"1", "2"}}}}
	var buf bytes.Buffer
	if err := Encode(&buf, r); err != nil {
		t.Fatal(err)
	}
	if err := ValidateSchema(buf.Bytes()); err != nil {
		t.Fatalf("encoded result does not match the schema: %v\n%s", err, buf.String())
	}
	back, err := Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Fatalf("round trip changed the result:\nbefore %+v\nafter  %+v", r, back)
	}
}

// mutate decodes the sample to a generic map, applies f, and re-encodes.
func mutate(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, sampleResult(t)); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeAndSchemaRejectBadDocuments(t *testing.T) {
	totals := func(m map[string]any) map[string]any { return m["totals"].(map[string]any) }
	gen := func(m map[string]any) map[string]any { return m["generator"].(map[string]any) }
	cases := []struct {
		name       string
		mutate     func(m map[string]any)
		wantErr    string
		schemaFail bool // the schema alone catches it (shape, not consistency)
	}{
		{"version", func(m map[string]any) { m["schema_version"] = 3 }, "schema_version", true},
		{"series unordered", func(m map[string]any) {
			pts := m["series"].([]any)[0].(map[string]any)["points"].([]any)
			pts[0], pts[1] = pts[1], pts[0]
		}, "series[0].points[1].at_ms", false},
		{"series without name", func(m map[string]any) { delete(m["series"].([]any)[0].(map[string]any), "name") }, "series[0].name", true},
		{"predicted ends first", func(m map[string]any) { m["predicted"].([]any)[0].(map[string]any)["end_ms"] = -1 }, "predicted[0].end_ms", false},
		{"failure event index", func(m map[string]any) { m["failures"].([]any)[0].(map[string]any)["events"] = []any{7} }, "failures[0].events", false},
		{"failure totals", func(m map[string]any) {
			m["failures"].([]any)[0].(map[string]any)["totals"].(map[string]any)["requests"] = 1000
		}, "failures[0].totals.requests", false},
		{"no version", func(m map[string]any) { delete(m, "schema_version") }, "schema_version", true},
		{"source", func(m map[string]any) { m["source"] = "guess" }, "source", true},
		{"unknown field", func(m map[string]any) { m["extra"] = 1 }, "extra", true},
		{"bad outcome key", func(m map[string]any) { totals(m)["counts"].(map[string]any)["teapot"] = 1 }, "teapot", true},
		{"negative count", func(m map[string]any) { totals(m)["counts"].(map[string]any)["200"] = -1 }, "counts", true},
		{"sum mismatch", func(m map[string]any) { totals(m)["requests"] = 99 }, "totals.requests", false},
		{"error mismatch", func(m map[string]any) { totals(m)["errors"] = 0 }, "totals.errors", false},
		{"bucket order", func(m map[string]any) {
			tl := m["timeline"].([]any)
			tl[0], tl[1] = tl[1], tl[0]
		}, "timeline[1].offset_ms", false},
		{"bucket width", func(m map[string]any) { m["bucket_ms"] = 0 }, "bucket_ms", true},
		{"mark ends first", func(m map[string]any) { m["marks"].([]any)[0].(map[string]any)["end_ms"] = -5 }, "marks[0].end_ms", false},
		{"wrong type", func(m map[string]any) { m["bucket_ms"] = "1000" }, "bucket_ms", true},
		{"latency order", func(m map[string]any) { m["latency"].(map[string]any)["p50_ms"] = 1e9 }, "percentiles", false},
		{"waited beyond arrivals", func(m map[string]any) { gen(m)["waited_for_cap"] = 5 }, "generator.waited_for_cap", false},
		{"negative waited", func(m map[string]any) { gen(m)["waited_for_cap"] = -1 }, "generator.waited_for_cap", true},
		{"generator without lag", func(m map[string]any) { delete(gen(m), "dispatch_lag") }, "generator", true},
		{"generator unknown field", func(m map[string]any) { gen(m)["lag"] = 1 }, "lag", true},
		{"lag order", func(m map[string]any) {
			gen(m)["dispatch_lag"].(map[string]any)["p99_ms"] = 1e9
		}, "generator.dispatch_lag", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := mutate(t, tc.mutate)
			_, err := Unmarshal(doc)
			if err == nil {
				t.Fatalf("Unmarshal accepted a bad document")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not name %q", err, tc.wantErr)
			}
			if serr := ValidateSchema(doc); (serr != nil) != tc.schemaFail {
				t.Errorf("ValidateSchema error = %v, want failure %v", serr, tc.schemaFail)
			}
		})
	}
}

func TestDecodeSyntaxErrorHasLine(t *testing.T) {
	_, err := Unmarshal([]byte("{\n  \"schema_version\": 1,\n  \"source\": ]\n}"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("error = %v, want one naming line 3", err)
	}
}

func TestOutcomeKeys(t *testing.T) {
	for _, k := range []string{"200", "502", "999", "refused", "timeout-connect"} {
		if _, err := ParseOutcome(k); err != nil {
			t.Errorf("ParseOutcome(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "20", "0200", "1000", "timeout", "REFUSED", "-1"} {
		if _, err := ParseOutcome(k); err == nil {
			t.Errorf("ParseOutcome(%q) accepted", k)
		}
	}
	if IsError("404") || IsError("200") || !IsError("500") || !IsError("eof") {
		t.Error("IsError: 4xx and 2xx are not errors; 5xx and transport classes are")
	}
}

func TestClassifyErrorWrapped(t *testing.T) {
	// Deadline errors carry no dial/response hint: the connected flag decides.
	if c := ClassifyError(errors.Join(errors.New("x"), contextDeadline()), false); c != TimeoutConnect {
		t.Errorf("deadline before connect = %s", c)
	}
	if c := ClassifyError(contextDeadline(), true); c != TimeoutResponse {
		t.Errorf("deadline after connect = %s", c)
	}
	if c := ClassifyError(errors.New("tls: bad certificate"), true); c != Other {
		t.Errorf("unknown error = %s", c)
	}
}

func TestFlushFinalisesOldBuckets(t *testing.T) {
	rec := NewRecorder(t0, RecorderOptions{Grace: time.Second})
	rec.Record(Sample{Start: t0, Latency: time.Millisecond, Outcome: "200"})
	rec.Record(Sample{Start: t0.Add(3 * time.Second), Latency: time.Millisecond, Outcome: "200"})
	got := rec.Flush(t0.Add(3500 * time.Millisecond)) // buckets ending before 2.5s
	if len(got) != 1 || got[0].OffsetMS != 0 || got[0].Latency.Count != 1 {
		t.Fatalf("Flush = %+v, want the first bucket only", got)
	}
	if again := rec.Flush(t0.Add(3500 * time.Millisecond)); len(again) != 0 {
		t.Fatalf("second Flush returned %d buckets again", len(again))
	}
	// A late request in a finalised bucket still counts.
	rec.Record(Sample{Start: t0.Add(100 * time.Millisecond), Latency: time.Millisecond, Outcome: "503"})
	r := rec.Finish(t0.Add(4 * time.Second))
	if r.Timeline[0].Counts["503"] != 1 || r.Totals.Requests != 3 {
		t.Fatalf("late request lost: %+v", r.Timeline[0])
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The errors of the sample (a 502 and a reset at 2.1 s and 2.2 s) make one
// failure window, [2 s, 3 s), listing the SIGTERM and the scale event that
// came shortly before.
func TestFindFailures(t *testing.T) {
	r := sampleResult(t)
	fs := r.Failures
	if len(fs) != 1 {
		t.Fatalf("failures = %+v, want one window", fs)
	}
	f := fs[0]
	if f.StartMS != 2000 || f.EndMS != 3000 || f.Totals.Errors != 2 || f.Totals.Requests != 4 {
		t.Errorf("failure window = %+v", f)
	}
	if len(f.Events) != 2 || r.Events[f.Events[0]].Kind != EventSIGTERM {
		t.Errorf("failure events = %v, want the SIGTERM first, then the scale", f.Events)
	}
	// Errors further apart than the gap make two windows; closer, one.
	rec := NewRecorder(t0, RecorderOptions{})
	for _, s := range []int{0, 3, 10, 30} {
		rec.Record(Sample{Start: t0.Add(time.Duration(s) * time.Second), Latency: time.Millisecond, Outcome: "504"})
	}
	r2 := rec.Finish(t0.Add(31 * time.Second))
	got := r2.FindFailures(FailureOptions{Gap: 5 * time.Second})
	want := [][2]int64{{0, 4000}, {10000, 11000}, {30000, 31000}}
	if len(got) != len(want) {
		t.Fatalf("windows = %+v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].StartMS != w[0] || got[i].EndMS != w[1] {
			t.Errorf("window %d = [%d, %d), want %v", i, got[i].StartMS, got[i].EndMS, w)
		}
	}
	if n := len(r2.FindFailures(FailureOptions{Gap: 25 * time.Second})); n != 1 {
		t.Errorf("with a 25 s gap: %d windows, want 1", n)
	}
}

// A result written by zerodrop load before schema version 2 still reads:
// it validates against the version 1 schema, decodes, and comes out as the
// current version with the same counts.
func TestDecodeVersion1(t *testing.T) {
	data, err := os.ReadFile("testdata/v1-load.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateSchema(data); err != nil {
		t.Fatalf("v1 document fails the v1 schema: %v", err)
	}
	r, err := Unmarshal(data)
	if err != nil {
		t.Fatalf("decoding a v1 result: %v", err)
	}
	if r.SchemaVersion != SchemaVersion || r.Source != SourceLoad || r.Totals.Requests != 1536 || r.Verify == nil || r.Verify.Checked != 384 || len(r.Marks) != 1 {
		t.Fatalf("decoded v1 result = version %d, source %s, %d requests, verify %+v, %d marks", r.SchemaVersion, r.Source, r.Totals.Requests, r.Verify, len(r.Marks))
	}
	var buf bytes.Buffer
	if err := Encode(&buf, r); err != nil {
		t.Fatal(err)
	}
	if err := ValidateSchema(buf.Bytes()); err != nil {
		t.Fatalf("upgraded result fails the current schema: %v", err)
	}
	// A version 1 document cannot carry what version 2 added.
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["series"] = []any{map[string]any{"name": "nodes", "unit": "nodes", "points": []any{}}}
	bad, _ := json.Marshal(m)
	if _, err := Unmarshal(bad); err == nil || !strings.Contains(err.Error(), "series") {
		t.Fatalf("v1 document with series: error %v, want one naming series", err)
	}
	if err := ValidateSchema(bad); err == nil {
		t.Fatal("the v1 schema accepted series")
	}
}
