package experiment

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// Summary is an experiment's outcome: one entry per variant.
type Summary struct {
	Scenario  string          `json:"scenario"`
	Preset    string          `json:"scale"`
	TimeScale float64         `json:"timeScale"`
	Out       string          `json:"out"`
	Started   time.Time       `json:"started"`
	Finished  time.Time       `json:"finished"`
	Variants  []VariantResult `json:"variants"`
}

// VariantResult is what users saw with one variant.
type VariantResult struct {
	Name string `json:"name"`
	// Dir holds everything of the variant; Results is its results JSON,
	// AccessLogs the ALB's access logs, Events the lab's event stream.
	Dir        string   `json:"dir"`
	Results    string   `json:"results"`
	AccessLogs []string `json:"accessLogs"`
	Events     string   `json:"events"`

	Requests  int64   `json:"requests"`
	Failed    int64   `json:"failed"`
	ErrorRate float64 `json:"errorRate"`
	// ALB counts the 5xx the load balancer made itself, by code.
	ALB map[string]int64 `json:"alb"`
	// Target5xx counts 5xx the app returned.
	Target5xx int64 `json:"target5xx"`
	// Transport counts requests with no HTTP answer, by class.
	Transport map[string]int64 `json:"transport"`
	// Windows are the disruption windows with their own counts.
	Windows []WindowResult `json:"windows"`
	// Checked acknowledged writes were read back; Lost were missing or
	// older than acknowledged.
	Checked     int64  `json:"writesChecked"`
	Lost        int    `json:"lostWrites"`
	Duplicates  int    `json:"duplicateWrites"`
	VerifyError string `json:"verifyError,omitempty"`
	// Causes and Pods say where the failures came from (the access log).
	Causes []Cause       `json:"causes"`
	Pods   []PodFailures `json:"pods"`
	// CheckFindings are zerodrop check's findings on the manifests.
	CheckFindings    []string `json:"checkFindings"`
	PredictedWindows int      `json:"predictedWindows"`
	StepErrors       []string `json:"stepErrors,omitempty"`
	Duration         float64  `json:"durationSeconds"`
}

// WindowResult is one disruption window.
type WindowResult struct {
	Name      string  `json:"name"`
	StartS    float64 `json:"startSeconds"`
	EndS      float64 `json:"endSeconds"`
	Requests  int64   `json:"requests"`
	Failed    int64   `json:"failed"`
	ErrorRate float64 `json:"errorRate"`
	// Pods is how many app pods began terminating in this window (and in
	// no window that started later).
	Pods int `json:"pods,omitempty"`
	// PodsFailed is how many failed requests the ALB sent to those pods
	// from the moment each began terminating (access log).
	PodsFailed int64 `json:"podsFailed,omitempty"`
	// Predicted is check's failure windows for the window's pods (for a
	// node-loss window, the health checks' detection), relative to the
	// window's start ("" when none).
	Predicted string `json:"predicted"`
	// Measured spans the failed requests to the window's pods, from when
	// the first was sent to when the last was, relative to the window's
	// start: the same clock as check's prediction, which says when a
	// request sent to the pod fails (a 504 answers 10 s later). In a
	// window without pods of its own (node loss) it spans the failure
	// windows of the run's timeline that overlap it. "" when none failed.
	Measured string `json:"measured"`
	// WithinPrediction tells, for a window with both a prediction and
	// failures, whether the measured span lies inside the predicted one
	// widened by Tolerance on each side.
	WithinPrediction *bool `json:"withinPrediction,omitempty"`
	// Tolerance is how far, in seconds, the measured span may pass the
	// predicted one (see Tolerances).
	Tolerance float64 `json:"toleranceSeconds,omitempty"`
	// ToleranceOf says what Tolerance is ("1 health-check interval (5s)",
	// "0.5s").
	ToleranceOf string `json:"toleranceOf,omitempty"`
}

// Tolerances bound how far a measured failure span may pass check's
// prediction and still count as predicted.
type Tolerances struct {
	// NodeLoss is one ALB health-check interval: when the first failing
	// check falls after a node's loss is chance.
	NodeLoss time.Duration
	// PodDeletion covers the watch and scheduling delays that check's
	// lag estimates leave out (the lab uses 1 s, time-scaled).
	PodDeletion time.Duration
}

func summarize(name string, res *results.Result, tol Tolerances, own map[int]*ownPods) *VariantResult {
	vr := &VariantResult{Name: name, ALB: map[string]int64{}, Transport: map[string]int64{},
		Requests: res.Totals.Requests, Failed: res.Totals.Errors, ErrorRate: res.Totals.ErrorRate,
		Duration: res.Duration().Seconds()}
	for k, n := range res.Totals.Counts {
		switch {
		case results.IsStatus(k) && k[0] == '5':
			lb := res.Totals.FromLB[k]
			if lb > 0 {
				vr.ALB[k] += lb
			}
			vr.Target5xx += n - lb
		case !results.IsStatus(k):
			vr.Transport[k] += n
		}
	}
	if v := res.Verify; v != nil {
		vr.Checked, vr.Lost, vr.Duplicates = v.Checked, len(v.Lost), len(v.Duplicates)
	}
	for i, m := range res.Marks {
		w := WindowResult{Name: m.Name, StartS: float64(m.StartMS) / 1000, EndS: float64(m.EndMS) / 1000,
			Requests: m.Totals.Requests, Failed: m.Totals.Errors, ErrorRate: m.Totals.ErrorRate}
		var plo, phi, flo, fhi int64
		var slack time.Duration
		if o := own[i]; o != nil {
			w.Pods, w.PodsFailed = o.pods, o.failed
			plo, phi, flo, fhi = o.predLo, o.predHi, o.measLo, o.measHi
			slack = tol.PodDeletion
		} else {
			plo, phi = bounds(res.Predicted, m.StartMS, m.EndMS, func(p results.Window) (int64, int64) { return p.StartMS, p.EndMS })
			flo, fhi = failureBounds(res.Failures, m.StartMS, m.EndMS)
			slack = tol.NodeLoss
		}
		w.Predicted, w.Measured = relSpan(plo, phi, m.StartMS), relSpan(flo, fhi, m.StartMS)
		// A verdict where both sides exist: for node loss (the health
		// checks bound its failures) and for a window's own pods.
		if plo >= 0 && flo >= 0 && (w.Pods > 0 || strings.HasPrefix(m.Name, "kill node")) && slack > 0 {
			ok := flo >= plo-slack.Milliseconds() && fhi <= phi+slack.Milliseconds()
			w.WithinPrediction, w.Tolerance = &ok, slack.Seconds()
			if w.Pods > 0 {
				w.ToleranceOf = fmt.Sprintf("%gs", slack.Seconds())
			} else {
				w.ToleranceOf = fmt.Sprintf("1 health-check interval (%gs)", slack.Seconds())
			}
		}
		vr.Windows = append(vr.Windows, w)
	}
	return vr
}

// relSpan describes [lo, hi] relative to from ("" when lo < 0).
func relSpan(lo, hi, from int64) string {
	if lo < 0 {
		return ""
	}
	return fmt.Sprintf("%.1f–%.1fs", float64(lo-from)/1000, float64(hi-from)/1000)
}

// failureBounds is the earliest start and latest end of the failure
// windows that overlap [from, to), the start clamped to from; lo is -1
// when there is none. Failure windows are made of whole timeline buckets,
// so the one holding the first failures after a step starts up to a
// bucket before it.
func failureBounds(fs []results.Failure, from, to int64) (lo, hi int64) {
	lo = -1
	for _, f := range fs {
		if f.EndMS <= from || f.StartMS >= to || f.EndMS <= f.StartMS {
			continue
		}
		if s := max(f.StartMS, from); lo < 0 || s < lo {
			lo = s
		}
		hi = max(hi, f.EndMS)
	}
	return lo, hi
}

// bounds is the earliest start and latest end of the windows that start
// inside [from, to); lo is -1 when there is none.
func bounds[T any](items []T, from, to int64, of func(T) (int64, int64)) (lo, hi int64) {
	lo = -1
	for _, it := range items {
		s, e := of(it)
		if s < from || s >= to || e <= s {
			continue
		}
		if lo < 0 || s < lo {
			lo = s
		}
		if e > hi {
			hi = e
		}
	}
	return lo, hi
}

func (s *Summary) write(out string) error {
	return writeJSON(filepath.Join(out, "summary.json"), s)
}

// WriteText prints the seed-style table: each variant side by side.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\nscenario %s, scale %s, time scale %g\n\n", s.Scenario, s.Preset, s.TimeScale)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, f func(v VariantResult) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, v := range s.Variants {
			fmt.Fprintf(tw, "%s\t", f(v))
		}
		fmt.Fprintln(tw)
	}
	row("", func(v VariantResult) string { return v.Name })
	row("requests", func(v VariantResult) string { return fmt.Sprint(v.Requests) })
	row("failed", func(v VariantResult) string { return fmt.Sprint(v.Failed) })
	row("error rate", func(v VariantResult) string { return pct(v.ErrorRate) })
	for _, code := range []string{"502", "503", "504"} {
		row("ALB "+code, func(v VariantResult) string { return fmt.Sprint(v.ALB[code]) })
	}
	row("target 5xx", func(v VariantResult) string { return fmt.Sprint(v.Target5xx) })
	row("transport failures", func(v VariantResult) string { return fmt.Sprint(sum(v.Transport)) })
	row("in disruption windows", func(v VariantResult) string {
		var req, fail int64
		for _, x := range v.Windows {
			req, fail = req+x.Requests, fail+x.Failed
		}
		if req == 0 {
			return "-"
		}
		return pct(float64(fail) / float64(req))
	})
	row("lost acknowledged writes", func(v VariantResult) string {
		if v.VerifyError != "" {
			return "unknown"
		}
		return fmt.Sprintf("%d of %d", v.Lost, v.Checked)
	})
	tw.Flush()

	for _, v := range s.Variants {
		if len(v.Windows) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: disruption windows (times from the window's start)\n", v.Name)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  window\tat\trequests\tfailed\trate\tits pods\tfailed to them\tcheck predicts\tmeasured")
		for _, x := range v.Windows {
			pods, podsFailed := "-", "-"
			if x.Pods > 0 {
				pods, podsFailed = fmt.Sprint(x.Pods), fmt.Sprint(x.PodsFailed)
			}
			line := fmt.Sprintf("  %s\t%.0fs\t%d\t%d\t%s\t%s\t%s\t%s\t%s", x.Name, x.StartS, x.Requests, x.Failed, pct(x.ErrorRate), pods, podsFailed, orDash(x.Predicted), orDash(x.Measured))
			if x.WithinPrediction != nil {
				if *x.WithinPrediction {
					line += "\twithin ± " + x.ToleranceOf
				} else {
					line += "\tOUTSIDE the prediction ± " + x.ToleranceOf
				}
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
	}
	for _, v := range s.Variants {
		if len(v.Causes) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: where the failures came from (ALB access log; the pod's last step before the request)\n", v.Name)
		for i, c := range v.Causes {
			if i == 8 {
				fmt.Fprintf(w, "  … %d more kinds in %s\n", len(v.Causes)-i, v.Results)
				break
			}
			fmt.Fprintf(w, "  %6d  %s after %s\n", c.Count, c.What, c.After)
		}
		var pods []string
		for i, p := range v.Pods {
			if i == 5 {
				break
			}
			pods = append(pods, fmt.Sprintf("%s (%d)", p.Pod, p.Count))
		}
		fmt.Fprintf(w, "  pods: %s\n", strings.Join(pods, ", "))
	}
	for _, v := range s.Variants {
		for _, e := range v.StepErrors {
			fmt.Fprintf(w, "\n%s: step failed: %s\n", v.Name, e)
		}
		if v.VerifyError != "" {
			fmt.Fprintf(w, "\n%s: reading writes back failed: %s\n", v.Name, v.VerifyError)
		}
	}
	fmt.Fprintf(w, "\nresults, ALB access logs and lab events: %s\n", s.Out)
	fmt.Fprintf(w, "HTML report: zerodrop report %s\n", strings.Join(resultPaths(s), " "))
}

func resultPaths(s *Summary) []string {
	var out []string
	for _, v := range s.Variants {
		out = append(out, v.Results)
	}
	return out
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
