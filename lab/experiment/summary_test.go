package experiment

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/load"
	"zerodrop.dev/zerodrop/results"
)

func TestSummarizeSplitsALBTargetAndTransport(t *testing.T) {
	res := &results.Result{
		Meta:   results.Meta{Start: time.Unix(1000, 0), End: time.Unix(1100, 0)},
		Totals: results.Totals{Requests: 1000, Errors: 40, ErrorRate: 0.04, Counts: map[string]int64{"200": 960, "502": 10, "504": 20, "500": 3, "refused": 2, "timeout-response": 5}, FromLB: map[string]int64{"502": 8, "504": 20}},
		Marks: []results.Mark{
			{Name: "scale-down 3→2", StartMS: 10000, EndMS: 30000, Totals: results.Totals{Requests: 300, Errors: 30, ErrorRate: 0.1}},
			{Name: "kill node lab-node-1", StartMS: 50000, EndMS: 90000, Totals: results.Totals{Requests: 200, Errors: 10, ErrorRate: 0.05}},
			{Name: "kill node lab-node-2", StartMS: 91000, EndMS: 99000, Totals: results.Totals{Requests: 50, Errors: 1, ErrorRate: 0.02}},
		},
		Predicted: []results.Window{
			{StartMS: 10500, EndMS: 21000}, {StartMS: 12000, EndMS: 25000},
			{StartMS: 50100, EndMS: 62100},
			{StartMS: 91100, EndMS: 93000},
		},
		Failures: []results.Failure{{StartMS: 14000, EndMS: 40000}, {StartMS: 50000, EndMS: 66000}, {StartMS: 95000, EndMS: 97000}},
		Verify:   &results.Verification{Checked: 77, Lost: []results.LostWrite{{ID: "1"}}},
	}
	vr := summarize("before", res, Tolerances{NodeLoss: 5 * time.Second}, nil)
	if vr.ALB["502"] != 8 || vr.ALB["504"] != 20 || vr.Target5xx != 5 {
		t.Errorf("ALB %v, target 5xx %d; want 502:8 504:20 and 2 target 502s + 3 target 500s", vr.ALB, vr.Target5xx)
	}
	if vr.Transport["refused"] != 2 || vr.Transport["timeout-response"] != 5 || len(vr.Transport) != 2 {
		t.Errorf("transport %v", vr.Transport)
	}
	if vr.Checked != 77 || vr.Lost != 1 {
		t.Errorf("writes %d/%d", vr.Lost, vr.Checked)
	}
	w := vr.Windows
	if w[0].Predicted != "0.5–15.0s" || w[0].Measured != "4.0–30.0s" || w[0].WithinPrediction != nil {
		t.Errorf("scale-down window %+v", w[0])
	}
	// Node loss: failures 50.0-66.0 s against a prediction of 50.1-62.1 s
	// widened by 5 s: inside; widened by 1 s only: outside.
	if w[1].WithinPrediction == nil || !*w[1].WithinPrediction {
		t.Errorf("node loss within ±5s: %+v", w[1])
	}
	tight := summarize("before", res, Tolerances{NodeLoss: time.Second}, nil)
	if tight.Windows[1].WithinPrediction == nil || *tight.Windows[1].WithinPrediction {
		t.Errorf("node loss outside ±1s (failures end at 66 s, prediction at 62.1 s): %+v", tight.Windows[1])
	}

	var buf bytes.Buffer
	(&Summary{Scenario: "scale-down", Preset: "small", TimeScale: 0.5, Out: "/tmp/x", Variants: []VariantResult{*vr, *summarize("after", &results.Result{Totals: results.Totals{Requests: 900, Counts: map[string]int64{"200": 900}}}, Tolerances{}, nil)}}).WriteText(&buf)
	out := buf.String()
	for _, want := range []string{"before", "after", "ALB 504", "1 of 77", "0 of 0", "check predicts", "0.5–15.0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "within ± 1 health-check interval (5s)") {
		t.Errorf("table lacks the node-loss verdict:\n%s", out)
	}
}

func TestAttributionNamesPodsAndSteps(t *testing.T) {
	start := time.Unix(1000, 0)
	res := &results.Result{Meta: results.Meta{Start: start, End: start.Add(time.Minute)}}
	att := &attribution{entries: []failedEntry{
		{at: start.Add(10 * time.Second), key: "ALB 504 (TargetConnectTimeout)", pod: "p1", before: "PodDeleted"},
		{at: start.Add(11 * time.Second), key: "ALB 504 (TargetConnectTimeout)", pod: "p1", before: "PodDeleted"},
		{at: start.Add(12 * time.Second), key: "ALB 502 (TargetConnectionRefused)", pod: "p2", before: "SIGTERM"},
		{at: start.Add(40 * time.Second), key: "target 500", target: "10.244.1.9:8000"},
	}}
	causes := att.causes()
	if len(causes) != 3 || causes[0].Count != 2 || causes[0].After != "PodDeleted" || causes[2].After != "running" {
		t.Errorf("causes %+v", causes)
	}
	pods := att.pods()
	if pods[0].Pod != "p1" || pods[0].Count != 2 || pods[1].Pod != "10.244.1.9:8000" {
		t.Errorf("pods %+v", pods)
	}
	targets, cause := att.inWindow(res, 9000, 20000)
	if strings.Join(targets, ",") != "p1,p2" || cause != "ALB 504 (TargetConnectTimeout) after PodDeleted" {
		t.Errorf("window: %v %q", targets, cause)
	}
}

func TestPresetsAreValidCycles(t *testing.T) {
	// The peaks each preset's doc comment promises: replicas and sessions
	// at demand 1, and the floor at demand 0.
	want := map[string]struct{ peakReplicas, peakSessions int }{
		"small": {9, 49},
		"seed":  {101, 1001},
	}
	for name, p := range Presets {
		if p.Name != name {
			t.Errorf("preset %q is named %q", name, p.Name)
		}
		if p.Nodes <= 0 || p.Sessions <= 0 || p.Think <= 0 {
			t.Errorf("%s: nodes %d, sessions %d, think %s; want all positive", name, p.Nodes, p.Sessions, p.Think)
		}
		c := p.cycle(load.HalfSine{Min: 0, Max: 1, Period: 20 * time.Second, Step: time.Second}, time.Second)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		peak, floor := c.PointAt(10), c.PointAt(0)
		if w, ok := want[name]; !ok {
			t.Errorf("preset %s has no expected peak in this test", name)
		} else if peak.Demand != 1 || peak.Replicas != w.peakReplicas || peak.Sessions != w.peakSessions {
			t.Errorf("%s at demand %g: %d replicas, %d sessions; want %d and %d", name, peak.Demand, peak.Replicas, peak.Sessions, w.peakReplicas, w.peakSessions)
		}
		if floor.Replicas != p.AppMin || floor.Sessions != p.SessionMin || floor.Replicas < 1 {
			t.Errorf("%s at demand 0: %d replicas, %d sessions; want at least one pod", name, floor.Replicas, floor.Sessions)
		}
	}
}
