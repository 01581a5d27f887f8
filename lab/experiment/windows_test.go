package experiment

import (
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// Overlapping scale-down windows: each failure counts for the window in
// which its pod began terminating, not for every window it falls in.
func TestWindowPodsTiesFailuresToTheirDeletion(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int64) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	res := &results.Result{
		Meta: results.Meta{Start: start, End: at(120_000)},
		Marks: []results.Mark{
			{Name: "scale-down 5→4", StartMS: 10_000, EndMS: 50_000},
			{Name: "scale-down 4→2", StartMS: 20_000, EndMS: 60_000},
			{Name: "kill node lab-node-1", StartMS: 21_000, EndMS: 90_000},
			{Name: "scale-down 2→1", StartMS: 100_000, EndMS: 140_000},
		},
	}
	pods := []podEvent{
		{at: at(10_100), kind: "PodTerminating", pod: "a"},
		{at: at(20_200), kind: "PodTerminating", pod: "b"},
		{at: at(25_000), kind: "PodTerminating", pod: "c"}, // inside the node-loss window too: still the scale-down's
		{at: at(22_000), kind: "SIGTERM", pod: "b"},
		{at: at(95_000), kind: "PodTerminating", pod: "outside"},
		{at: at(100_500), kind: "PodTerminating", pod: "late"},
	}
	predicted := map[string][]results.Window{
		"a":    {{StartMS: 10_300, EndMS: 14_000}},
		"b":    {{StartMS: 20_400, EndMS: 24_000}},
		"c":    {{StartMS: 25_200, EndMS: 30_000}},
		"late": {{StartMS: 100_600, EndMS: 103_000}},
	}
	att := &attribution{entries: []failedEntry{
		{at: at(5_000), end: at(5_010), pod: "a"},   // before its deletion: not this window's doing
		{at: at(10_000), end: at(10_200), pod: "a"}, // in flight when the deletion began
		{at: at(12_000), end: at(22_000), pod: "a"}, // a 504 answered inside the next window
		{at: at(21_000), end: at(21_001), pod: "b"},
		{at: at(30_000), end: at(30_001), pod: "c"},
		{at: at(31_000), end: at(31_001), pod: ""}, // no target
		{at: at(101_000), end: at(111_000), pod: "late"},
		{at: at(104_500), end: at(114_500), pod: "late"}, // 1.5 s past the prediction
	}}
	own := windowPods(res, pods, predicted, att)
	if len(own) != 3 || own[2] != nil || own[3] == nil {
		t.Fatalf("windows with pods: %v; want the three scale-downs", keys(own))
	}
	first, second := own[0], own[1]
	if first.pods != 1 || first.failed != 2 || first.measLo != 10_000 || first.measHi != 12_000 || first.predLo != 10_300 || first.predHi != 14_000 {
		t.Errorf("first window: %+v; want pod a, 2 failures sent from 10.0 s to 12.0 s, predicted 10.3–14.0 s", *first)
	}
	if second.pods != 2 || second.failed != 2 || second.measLo != 21_000 || second.measHi != 30_000 || second.predLo != 20_400 || second.predHi != 30_000 {
		t.Errorf("second window: %+v; want pods b and c, 2 failures sent from 21.0 s to 30.0 s, predicted 20.4–30.0 s", *second)
	}

	vr := summarize("before", res, Tolerances{PodDeletion: time.Second}, own)
	w := vr.Windows[0]
	if w.Pods != 1 || w.PodsFailed != 2 || w.Predicted != "0.3–4.0s" || w.Measured != "0.0–2.0s" {
		t.Errorf("first window in the summary: %+v", w)
	}
	if w := vr.Windows[1]; w.Predicted != "0.4–10.0s" || w.Measured != "1.0–10.0s" {
		t.Errorf("second window in the summary: %+v", w)
	}
	for i, want := range map[int]bool{0: true, 1: true, 3: false} {
		if w := vr.Windows[i]; w.WithinPrediction == nil || *w.WithinPrediction != want || w.Tolerance != 1 {
			t.Errorf("window %s: within the prediction ± 1 s %v, want %v (%+v)", w.Name, w.WithinPrediction, want, w)
		}
	}
	if w := vr.Windows[2]; w.WithinPrediction != nil {
		t.Errorf("node-loss window without a prediction got a verdict: %+v", w)
	}
}

func keys(m map[int]*ownPods) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A deleted pod's address goes to a new pod while the ALB still sends the
// old target requests: each failure belongs to the pod that held the
// address when the request was sent.
func TestIPHoldersFollowAddressReuse(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := ipHolders{}
	h.add("10.0.0.5", "old", t0)
	h.add("10.0.0.5", "old", t0.Add(20*time.Second)) // torn down: still old's
	h.add("10.0.0.5", "new", t0.Add(21*time.Second))
	h.add("10.0.0.5", "new", t0.Add(22*time.Second))
	h.add("10.0.0.6", "other", t0.Add(5*time.Second))
	for _, tc := range []struct {
		ip   string
		at   time.Duration
		want string
	}{
		{"10.0.0.5", -time.Second, "old"},
		{"10.0.0.5", 10 * time.Second, "old"},
		{"10.0.0.5", 20500 * time.Millisecond, "old"},
		{"10.0.0.5", 21 * time.Second, "new"},
		{"10.0.0.5", time.Minute, "new"},
		{"10.0.0.6", time.Minute, "other"},
		{"10.0.0.7", time.Minute, ""},
	} {
		if got := h.at(tc.ip, t0.Add(tc.at)); got != tc.want {
			t.Errorf("%s at +%s: %q, want %q", tc.ip, tc.at, got, tc.want)
		}
	}
	if n := len(h["10.0.0.5"]); n != 2 {
		t.Errorf("10.0.0.5 has %d holders, want 2: %+v", n, h["10.0.0.5"])
	}
}

// The failure window holding the first failures after a node's loss is
// made of whole timeline buckets and may start just before the step: it
// still counts for the step's window.
func TestNodeLossCountsTheBucketOfTheLoss(t *testing.T) {
	res := &results.Result{
		Marks:     []results.Mark{{Name: "kill node default-x", StartMS: 10_001, EndMS: 55_001}},
		Predicted: []results.Window{{StartMS: 10_012, EndMS: 16_012}},
		Failures:  []results.Failure{{StartMS: 10_000, EndMS: 11_000}, {StartMS: 15_000, EndMS: 16_000}, {StartMS: 60_000, EndMS: 61_000}},
	}
	w := summarize("after", res, Tolerances{NodeLoss: 2500 * time.Millisecond}, nil).Windows[0]
	if w.Measured != "0.0–6.0s" || w.Predicted != "0.0–6.0s" || w.WithinPrediction == nil || !*w.WithinPrediction {
		t.Errorf("node loss: %+v; want measured 0.0–6.0s within the prediction", w)
	}
}
