//go:build !nolab

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/lab/experiment"
)

// TestMainJob runs the README's main command, zerodrop lab with no
// arguments (at time scale 0.5), end to end: each variant in its own lab,
// the seed's scale-down under orders sessions through the ALB. The seed's
// setup must fail users, with the ALB's errors attributed to causes in its
// access log; the corrected one must fail none and lose no write.
func TestMainJob(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "lab", "--out", out, "-o", "json", "--time-scale", "0.5")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("zerodrop lab: %v\n%s", err, tailLines(stderr.String(), 40))
	}
	var sum experiment.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	if len(sum.Variants) != 2 || sum.Variants[0].Name != "before" || sum.Variants[1].Name != "after" {
		t.Fatalf("variants %+v", sum.Variants)
	}
	before, after := sum.Variants[0], sum.Variants[1]
	t.Logf("%s in %s", sum.Scenario, time.Since(start).Round(time.Second))
	for _, v := range sum.Variants {
		var inWin, failWin int64
		for _, w := range v.Windows {
			inWin, failWin = inWin+w.Requests, failWin+w.Failed
		}
		t.Logf("%s: %d requests, %d failed (%.2f%%), ALB %v, target 5xx %d, transport %v, %d windows (%d of %d failed inside), writes lost %d of %d, causes %v",
			v.Name, v.Requests, v.Failed, 100*v.ErrorRate, v.ALB, v.Target5xx, v.Transport, len(v.Windows), failWin, inWin, v.Lost, v.Checked, v.Causes)
	}

	// Before: the seed's failure, made by the ALB and explained by its log.
	if before.Failed == 0 {
		t.Errorf("before: no failed request; the seed's setup should fail users during the scale-down")
	}
	if before.ALB["502"]+before.ALB["504"] == 0 {
		t.Errorf("before: no ALB-made 502 or 504 (ALB %v)", before.ALB)
	}
	attributed := false
	for _, c := range before.Causes {
		if strings.HasPrefix(c.What, "ALB 50") && c.After != "running" {
			attributed = true
		}
	}
	if !attributed {
		t.Errorf("before: no ALB error attributed to a pod's termination step: %v", before.Causes)
	}
	var scaleDowns int
	for _, w := range before.Windows {
		if strings.HasPrefix(w.Name, "scale-down") {
			scaleDowns++
		}
	}
	if scaleDowns < 3 || before.PredictedWindows == 0 {
		t.Errorf("before: %d scale-down windows, %d predicted windows; want the cycle's steps and check's predictions", scaleDowns, before.PredictedWindows)
	}
	// Each window's own pods: check's prediction for them next to the
	// failed requests the ALB sent them.
	var podWindows int
	var podsFailed int64
	for _, w := range before.Windows {
		if w.Pods == 0 {
			continue
		}
		podWindows++
		podsFailed += w.PodsFailed
		if w.Predicted == "" {
			t.Errorf("before: window %s has %d pods of its own and no prediction", w.Name, w.Pods)
		}
		if w.PodsFailed > 0 && w.WithinPrediction == nil {
			t.Errorf("before: window %s: failures to its pods and a prediction, but no verdict", w.Name)
		}
		verdict := "-"
		if w.WithinPrediction != nil {
			verdict = fmt.Sprintf("within ± %s: %v", w.ToleranceOf, *w.WithinPrediction)
		}
		t.Logf("before: %s: %d pods, %d failed to them, check predicts %s, measured %s, %s", w.Name, w.Pods, w.PodsFailed, w.Predicted, w.Measured, verdict)
	}
	if podWindows == 0 || podsFailed == 0 {
		t.Errorf("before: %d windows with pods of their own, %d failed requests to those pods; want the scale-downs' pods and their failures", podWindows, podsFailed)
	}

	// After: nothing lost.
	if after.Failed != 0 || after.Lost != 0 || after.VerifyError != "" {
		t.Errorf("after: %d failed, %d lost writes (verify error %q); want none", after.Failed, after.Lost, after.VerifyError)
	}
	if after.Checked == 0 || after.Requests < 10000 {
		t.Errorf("after: %d requests, %d writes checked; the run is too small to mean anything", after.Requests, after.Checked)
	}
	if len(after.CheckFindings) != 0 {
		t.Errorf("after: check findings %v", after.CheckFindings)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
