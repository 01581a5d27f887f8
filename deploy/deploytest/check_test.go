package deploytest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"zerodrop.dev/zerodrop/check"
	"zerodrop.dev/zerodrop/manifest"
)

func checkOverlay(t *testing.T, dir string) *check.Report {
	t.Helper()
	m, err := manifest.Load(context.Background(), manifest.Sources{Kustomize: []string{dir}})
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	return check.Run(m, check.DefaultConfig())
}

func ruleIDs(r *check.Report, sev string) []string {
	var ids []string
	for _, f := range r.All() {
		if sev == "" || f.Severity.String() == sev {
			ids = append(ids, f.RuleID)
		}
	}
	slices.Sort(ids)
	return ids
}

// The after overlay has no error and no warning: every link of the chain
// is in order.
func TestCheckAfterIsClean(t *testing.T) {
	r := checkOverlay(t, "../overlays/after")
	if r.HasErrors() || len(ruleIDs(r, "warning")) > 0 {
		t.Fatalf("deploy/overlays/after: errors %v, warnings %v; want none", ruleIDs(r, "error"), ruleIDs(r, "warning"))
	}
}

// The before overlay is the seed's setup, and the checker finds each of
// its problems.
func TestCheckBeforeHasTheSeedsProblems(t *testing.T) {
	r := checkOverlay(t, "../overlays/before")
	if !r.HasErrors() {
		t.Fatal("deploy/overlays/before: no error-level finding")
	}
	got := ruleIDs(r, "")
	for _, id := range []string{
		"ZD006", // stops accepting at the delete, no preStop, no delay
		"ZD004", // the ALB health-checks a user path
		"ZD011", // ip targets without the readiness-gate label
		"ZD012", // success codes 200-301
		"ZD014", // default 300 s deregistration delay
		"ZD019", // no PodDisruptionBudget
	} {
		if !slices.Contains(got, id) {
			t.Errorf("deploy/overlays/before: no %s among %v", id, got)
		}
	}
}

// The base alone is not enough: without the after overlay's preStop and
// delay it drops requests.
func TestCheckBaseNeedsTheOverlay(t *testing.T) {
	r := checkOverlay(t, "../base")
	if !slices.Contains(ruleIDs(r, "error"), "ZD006") {
		t.Errorf("deploy/base: errors %v, want ZD006", ruleIDs(r, "error"))
	}
}

// The canary overlays: canary-after (scaleDownDelaySeconds 75 ≥ the
// weight-change lag, the after overlay's chain) is clean; canary-before is
// seed 004's dynamicStableScale, and the checker says so.
func TestCheckCanaryOverlays(t *testing.T) {
	r := checkOverlay(t, "../overlays/canary-after")
	if r.HasErrors() || len(ruleIDs(r, "warning")) > 0 {
		t.Errorf("deploy/overlays/canary-after: errors %v, warnings %v; want none", ruleIDs(r, "error"), ruleIDs(r, "warning"))
	}
	rolloutServed := false
	for _, w := range r.Workloads {
		rolloutServed = rolloutServed || w.Served && strings.HasPrefix(w.Object, "Rollout/zerodrop/logistics")
	}
	if !rolloutServed {
		t.Errorf("deploy/overlays/canary-after: no served Rollout zerodrop/logistics among %d workloads", len(r.Workloads))
	}
	r = checkOverlay(t, "../overlays/canary-before")
	if got := ruleIDs(r, "error"); !slices.Equal(got, []string{"ZD015"}) {
		t.Errorf("deploy/overlays/canary-before: errors %v, want exactly ZD015 (dynamicStableScale)", got)
	}
	if got := ruleIDs(r, "warning"); len(got) > 0 {
		t.Errorf("deploy/overlays/canary-before: warnings %v; the only difference from canary-after is the scale-down", got)
	}
}

// keepalive-before is the before overlay with the app's idle timeout at
// 5 s, under the ALB's 60 s: the checker adds ZD020 to the seed's findings.
func TestCheckKeepaliveBefore(t *testing.T) {
	r := checkOverlay(t, "../overlays/keepalive-before")
	if !slices.Contains(ruleIDs(r, "error"), "ZD020") {
		t.Errorf("deploy/overlays/keepalive-before: errors %v, want ZD020 (idle timeout)", ruleIDs(r, "error"))
	}
	if slices.Contains(ruleIDs(checkOverlay(t, "../overlays/before"), ""), "ZD020") {
		t.Errorf("deploy/overlays/before already has ZD020: keepalive-before would show nothing new")
	}
}
