//go:build !nolab

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/lab/experiment"
)

// TestCanaryExperimentAfter runs the canary scenario on
// deploy/overlays/canary-after with zerodrop lab run (its own lab, time
// scale 0.5, the ModifyRule lag at its 70 s default, 35 s scaled): the
// real Argo Rollouts controller moves the ALB's weights to the canary
// (20, then 100) under steady orders sessions, and with the old pods kept
// past the weight lag no request fails and no acknowledged write is lost.
func TestCanaryExperimentAfter(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "lab", "run", "-k", "../../deploy/overlays/canary-after",
		"--scenario", "canary", "--out", out, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("zerodrop lab run: %v\n%s", err, tailLines(stderr.String(), 40))
	}
	var sum experiment.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	if sum.Scenario != "canary" || len(sum.Variants) != 1 || sum.Variants[0].Name != "canary-after" {
		t.Fatalf("scenario %q, variants %+v", sum.Scenario, sum.Variants)
	}
	v := sum.Variants[0]
	t.Logf("%s in %s: %d requests, %d failed, ALB %v, target 5xx %d, transport %v, writes lost %d of %d",
		v.Name, time.Since(start).Round(time.Second), v.Requests, v.Failed, v.ALB, v.Target5xx, v.Transport, v.Lost, v.Checked)

	if v.Failed != 0 || v.Lost != 0 || v.VerifyError != "" || len(v.StepErrors) > 0 {
		t.Errorf("%d failed, %d lost writes (verify error %q, step errors %v); want none", v.Failed, v.Lost, v.VerifyError, v.StepErrors)
	}
	if v.Requests < 20000 || v.Checked < 1000 {
		t.Errorf("%d requests, %d writes checked; the run is too small to mean anything", v.Requests, v.Checked)
	}
	if len(v.CheckFindings) != 0 {
		t.Errorf("check findings on canary-after: %v", v.CheckFindings)
	}

	// The rollout really moved the ALB's weights: the controller twin saw
	// Argo's setWeight 20 and 100 on the Ingress's actions annotation and
	// issued a ModifyRule for each, after its lag.
	seen, modified := weightChanges(t, v.Events)
	t.Logf("canary weights seen %v, ModifyRule %v", seen, modified)
	for _, w := range []int{20, 100} {
		if !seen[w] || !modified[w] {
			t.Errorf("canary weight %d: seen by the controller twin %v, ModifyRule %v; want both", w, seen[w], modified[w])
		}
	}
}

// weightChanges reads a lab's events.jsonl and returns the weights some
// canary target group got (the group that started at 0), as the controller
// twin saw them in the annotation and as it applied them with ModifyRule.
func weightChanges(t *testing.T, path string) (seen, modified map[int]bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the lab's events: %v", err)
	}
	defer f.Close()
	seen, modified = map[int]bool{}, map[int]bool{}
	canary := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Kind   string `json:"kind"`
			Fields struct {
				Weights map[string]int `json:"weights"`
			} `json:"fields"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || (e.Kind != "WeightChangeSeen" && e.Kind != "ModifyRule") {
			continue
		}
		if canary == "" {
			// The first change moves weight to the canary group: the one
			// below half.
			for tg, w := range e.Fields.Weights {
				if w > 0 && w < 50 && strings.HasPrefix(tg, "k8s-") {
					canary = tg
				}
			}
		}
		w, ok := e.Fields.Weights[canary]
		if !ok {
			continue
		}
		if e.Kind == "WeightChangeSeen" {
			seen[w] = true
		} else {
			modified[w] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return seen, modified
}
