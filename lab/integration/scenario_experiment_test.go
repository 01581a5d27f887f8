//go:build !nolab

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/lab/experiment"
)

// TestAfterSurvivesDrainAndRollout runs zerodrop lab run on the after
// overlay with a scenario file of its own: a node drained under load,
// then a rolling update. The corrected setup must fail no request and
// lose no write through either (the seed's setup fails both: see
// docs/experiment.md).
func TestAfterSurvivesDrainAndRollout(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "drain-then-roll.yaml")
	if err := os.WriteFile(sc, []byte(`name: drain-then-roll
description: A node drained, then a rolling update, under steady load.
warmup: 10s
duration: 150s
replicas: 6
steps:
  - at: 5s
    drain: busiest
    window: 60s
  - at: 75s
    rollout: restart
    window: 70s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "lab", "run", "-k", "../../deploy/overlays/after", "--scenario", sc,
		"--out", filepath.Join(dir, "out"), "-o", "json", "--time-scale", "0.5")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zerodrop lab run: %v\n%s", err, tailLines(stderr.String(), 40))
	}
	var sum experiment.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || len(sum.Variants) != 1 {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	v := sum.Variants[0]
	t.Logf("%d requests, %d failed, ALB %v, transport %v, writes lost %d of %d, windows %+v", v.Requests, v.Failed, v.ALB, v.Transport, v.Lost, v.Checked, v.Windows)
	if v.Failed != 0 || v.Lost != 0 || v.VerifyError != "" || len(v.StepErrors) != 0 {
		t.Errorf("after: %d failed, %d lost, verify %q, step errors %v; want none", v.Failed, v.Lost, v.VerifyError, v.StepErrors)
	}
	var drained, rolled bool
	for _, w := range v.Windows {
		drained = drained || strings.HasPrefix(w.Name, "drain ")
		rolled = rolled || w.Name == "rollout"
	}
	if !drained || !rolled || v.Requests < 20000 || v.Checked < 1000 {
		t.Errorf("windows %+v, %d requests, %d writes checked: want a drain and a rollout under ≥ 20,000 requests", v.Windows, v.Requests, v.Checked)
	}
}
