// Package report renders result files (package results) for people: a
// terminal comparison table with a sparkline of failures per run, and one
// self-contained HTML file with SVG charts (gonum/plot) of requests and
// failures by class, healthy targets, pods and nodes, latency, events and
// disruption, predicted and measured failure windows, runs side by side on
// the same axes. It also gives the comparison as JSON for machines.
package report

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// Run is one result with the name it is shown under.
type Run struct {
	Name   string
	Result *results.Result
}

// Load reads result files of any supported schema version. Each run is
// named by its "name" or "variant" label, else by its file name without
// .json; duplicate names get a "#2" suffix.
func Load(paths []string) ([]Run, error) {
	runs := make([]Run, 0, len(paths))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("reading result: %w", err)
		}
		r, err := results.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		runs = append(runs, Run{Name: runName(p, r), Result: r})
	}
	Dedupe(runs)
	return runs, nil
}

func runName(path string, r *results.Result) string {
	for _, k := range []string{"name", "variant"} {
		if v := r.Meta.Labels[k]; v != "" {
			return v
		}
	}
	return strings.TrimSuffix(filepath.Base(path), ".json")
}

// Dedupe makes run names unique by suffixing repeats with #2, #3...
func Dedupe(runs []Run) {
	seen := map[string]int{}
	for i := range runs {
		n := runs[i].Name
		if n == "" {
			n = "run"
		}
		seen[n]++
		if seen[n] > 1 {
			n = fmt.Sprintf("%s #%d", n, seen[n])
		}
		runs[i].Name = n
	}
}

// Summary is one run's figures in a comparison.
type Summary struct {
	Name      string           `json:"name"`
	Source    results.Source   `json:"source"`
	Workload  string           `json:"workload,omitempty"`
	Start     time.Time        `json:"start"`
	DurationS float64          `json:"duration_s"`
	Totals    results.Totals   `json:"totals"`
	Classes   map[string]int64 `json:"classes"`
	// Disruption sums the requests inside the disruption windows (marks);
	// nil when the run has none.
	Disruption *results.Totals `json:"disruption,omitempty"`
	// Failures are the windows where failures clustered: the result's
	// own, or found by the report when it has none.
	Failures []results.Failure `json:"failures"`
	// LostWrites and Duplicates are from the lost-write check; nil when
	// none ran.
	LostWrites *int            `json:"lost_writes,omitempty"`
	Duplicates *int            `json:"duplicates,omitempty"`
	Latency    results.Latency `json:"latency"`
}

// Comparison is the machine-readable form of a report.
type Comparison struct {
	Runs []Summary `json:"runs"`
}

// Compare summarises every run.
func Compare(runs []Run) Comparison {
	c := Comparison{Runs: make([]Summary, 0, len(runs))}
	for _, run := range runs {
		c.Runs = append(c.Runs, summarize(run))
	}
	return c
}

func summarize(run Run) Summary {
	r := run.Result
	s := Summary{
		Name: run.Name, Source: r.Source, Workload: r.Meta.Workload, Start: r.Meta.Start,
		DurationS: r.Duration().Seconds(), Totals: r.Totals, Classes: Classes(r.Totals),
		Failures: failures(r), Latency: r.Latency,
	}
	if len(r.Marks) > 0 {
		d := sumMarks(r.Marks)
		s.Disruption = &d
	}
	if v := r.Verify; v != nil {
		lost, dup := len(v.Lost), len(v.Duplicates)
		s.LostWrites, s.Duplicates = &lost, &dup
	}
	return s
}

// failures returns the result's failure windows, or finds them.
func failures(r *results.Result) []results.Failure {
	if len(r.Failures) > 0 {
		return r.Failures
	}
	f := r.FindFailures(results.FailureOptions{})
	if f == nil {
		f = []results.Failure{}
	}
	return f
}

// sumMarks adds up the totals of the disruption windows. Overlapping marks
// would count a request twice; marks of one run rarely overlap.
func sumMarks(marks []results.Mark) results.Totals {
	t := results.Totals{Counts: map[string]int64{}}
	for _, m := range marks {
		for k, n := range m.Totals.Counts {
			t.Counts[k] += n
			t.Requests += n
			if results.IsError(k) {
				t.Errors += n
			}
		}
		for k, n := range m.Totals.FromLB {
			if t.FromLB == nil {
				t.FromLB = map[string]int64{}
			}
			t.FromLB[k] += n
		}
	}
	if t.Requests > 0 {
		t.ErrorRate = float64(t.Errors) / float64(t.Requests)
	}
	return t
}

// The outcome classes of the comparison table and the charts.
const (
	Class2xx       = "2xx"
	Class3xx       = "3xx"
	Class4xx       = "4xx"
	ClassALB5xx    = "5xx ALB-made"
	ClassTarget5xx = "5xx from targets"
	ClassTransport = "no response" // refused, reset, eof, timeouts, other
)

// ClassOrder lists the classes in display order.
func ClassOrder() []string {
	return []string{Class2xx, Class3xx, Class4xx, ClassALB5xx, ClassTarget5xx, ClassTransport}
}

// Classes groups totals into the outcome classes.
func Classes(t results.Totals) map[string]int64 {
	out := map[string]int64{}
	for k, n := range t.Counts {
		if !results.IsStatus(k) {
			out[ClassTransport] += n
			continue
		}
		switch k[0] {
		case '1', '2':
			out[Class2xx] += n
		case '3':
			out[Class3xx] += n
		case '4':
			out[Class4xx] += n
		default:
			lb := t.FromLB[k]
			out[ClassALB5xx] += lb
			out[ClassTarget5xx] += n - lb
		}
	}
	return out
}

// unionKeys returns every outcome key of the runs in display order.
func unionKeys(runs []Run) []string {
	seen := map[string]bool{}
	for _, r := range runs {
		for _, k := range r.Result.Keys() {
			seen[k] = true
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	results.SortKeys(keys)
	return keys
}

// pct formats a rate as a percentage with enough digits for small rates.
func pct(rate float64) string {
	switch {
	case rate == 0:
		return "0%"
	case rate < 0.0001:
		return strconv.FormatFloat(100*rate, 'f', 4, 64) + "%"
	case rate < 0.01:
		return strconv.FormatFloat(100*rate, 'f', 3, 64) + "%"
	}
	return strconv.FormatFloat(100*rate, 'f', 2, 64) + "%"
}

// msText formats milliseconds for a table.
func msText(v float64) string {
	switch {
	case v >= 10000:
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + " s"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
}

// Row is one line of the comparison table: a label and one cell per run.
type Row struct {
	Label string
	Cells []string
	// Head marks a section heading row.
	Head bool
}

// Table builds the seed-style comparison: requests, counts by status code
// (with the ALB-made share) and by class, errors and error rate overall
// and inside disruption windows, failure windows, lost writes, latency.
func Table(runs []Run) []Row {
	c := Compare(runs)
	cells := func(f func(s Summary) string) []string {
		out := make([]string, len(c.Runs))
		for i, s := range c.Runs {
			out[i] = f(s)
		}
		return out
	}
	rows := []Row{
		{Label: "source", Cells: cells(func(s Summary) string { return string(s.Source) })},
		{Label: "duration", Cells: cells(func(s Summary) string {
			return time.Duration(s.DurationS * float64(time.Second)).Round(time.Second).String()
		})},
		{Label: "requests", Cells: cells(func(s Summary) string { return strconv.FormatInt(s.Totals.Requests, 10) })},
		{Label: "by status code", Head: true},
	}
	for _, k := range unionKeys(runs) {
		rows = append(rows, Row{Label: k, Cells: cells(func(s Summary) string {
			n := s.Totals.Counts[k]
			if n == 0 {
				return "-"
			}
			out := strconv.FormatInt(n, 10)
			if lb := s.Totals.FromLB[k]; lb > 0 {
				if lb == n {
					out += " (ALB)"
				} else {
					out += fmt.Sprintf(" (ALB %d)", lb)
				}
			}
			return out
		})})
	}
	rows = append(rows, Row{Label: "by class", Head: true})
	for _, cl := range ClassOrder() {
		rows = append(rows, Row{Label: cl, Cells: cells(func(s Summary) string {
			if n := s.Classes[cl]; n > 0 {
				return strconv.FormatInt(n, 10)
			}
			return "-"
		})})
	}
	rows = append(rows,
		Row{Label: "failures", Head: true},
		Row{Label: "errors (5xx + no response)", Cells: cells(func(s Summary) string { return strconv.FormatInt(s.Totals.Errors, 10) })},
		Row{Label: "error rate", Cells: cells(func(s Summary) string { return pct(s.Totals.ErrorRate) })},
		Row{Label: "error rate in disruption windows", Cells: cells(func(s Summary) string {
			if s.Disruption == nil {
				return "no windows"
			}
			return fmt.Sprintf("%s (%d/%d)", pct(s.Disruption.ErrorRate), s.Disruption.Errors, s.Disruption.Requests)
		})},
		Row{Label: "failure windows", Cells: cells(func(s Summary) string {
			var ms int64
			for _, f := range s.Failures {
				ms += f.EndMS - f.StartMS
			}
			if len(s.Failures) == 0 {
				return "none"
			}
			return fmt.Sprintf("%d (%s)", len(s.Failures), (time.Duration(ms) * time.Millisecond).String())
		})},
		Row{Label: "lost writes", Cells: cells(func(s Summary) string {
			if s.LostWrites == nil {
				return "not checked"
			}
			return strconv.Itoa(*s.LostWrites)
		})},
		Row{Label: "duplicate writes", Cells: cells(func(s Summary) string {
			if s.Duplicates == nil {
				return "not checked"
			}
			return strconv.Itoa(*s.Duplicates)
		})},
		Row{Label: "latency", Head: true},
		Row{Label: "p50", Cells: cells(func(s Summary) string { return msText(s.Latency.P50MS) })},
		Row{Label: "p99", Cells: cells(func(s Summary) string { return msText(s.Latency.P99MS) })},
		Row{Label: "max", Cells: cells(func(s Summary) string { return msText(s.Latency.MaxMS) })},
	)
	return rows
}

// offsetText formats an offset from a run's start.
func offsetText(ms int64) string {
	return "+" + strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s"
}

// sortedKeys returns a map's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Mix says what failed in a window, most first: "502 (ALB) ×160, reset ×65".
func Mix(t results.Totals) string {
	type kv struct {
		k string
		n int64
	}
	var kvs []kv
	for k, n := range t.Counts {
		if results.IsError(k) && n > 0 {
			kvs = append(kvs, kv{k, n})
		}
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].n != kvs[j].n {
			return kvs[i].n > kvs[j].n
		}
		return kvs[i].k < kvs[j].k
	})
	parts := make([]string, 0, len(kvs))
	for _, x := range kvs {
		label := x.k
		switch lb := t.FromLB[x.k]; {
		case lb == x.n:
			label += " (ALB)"
		case lb > 0:
			label += fmt.Sprintf(" (%d ALB)", lb)
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", label, x.n))
	}
	return strings.Join(parts, ", ")
}

// explain returns a failure window's cause, or, when its producer gave
// none, the event that most likely started it: the last event that can
// cause a disruption before the window or in its first two seconds
// (requests in flight when a pod is killed started earlier).
func explain(r *results.Result, f results.Failure) string {
	if f.Cause != "" {
		return f.Cause
	}
	slack := max(2*r.BucketMS, 2000)
	var last *results.Event
	for _, i := range f.Events {
		if i < 0 || i >= len(r.Events) {
			continue
		}
		e := &r.Events[i]
		if keyKind(e.Kind) && e.AtMS <= f.StartMS+slack {
			last = e
		}
	}
	if last == nil {
		return ""
	}
	what := last.Kind
	if last.Object != "" {
		what += " " + last.Object
	}
	if d := f.StartMS - last.AtMS; d >= 0 {
		return fmt.Sprintf("began %.1f s after %s (%s)", float64(d)/1000, what, last.Message)
	}
	return fmt.Sprintf("began within %.1f s of %s (%s)", float64(last.AtMS-f.StartMS)/1000, what, last.Message)
}
