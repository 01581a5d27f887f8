//go:build !nolab

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
)

// Seed 004: a canary with ALB traffic routing and dynamicStableScale
// shrinks the stable ReplicaSet as the canary's weight grows, while the
// ALB's weights still lag behind (ModifyRule lag 4 s + propagation 3 s in
// the shared lab): at the last step requests still sent to the stable
// target group fail. Keeping the stable pods for scaleDownDelaySeconds ≥
// the lag instead loses nothing.
func TestArgoRolloutsSeed004LastStep(t *testing.T) {
	dynamic := seed004Run(t, "seed004-dynamic", "dynamicStableScale: true")
	if dynamic == 0 {
		t.Errorf("dynamicStableScale with the ALB's weight lag failed no request: the test cannot tell")
	}
	delayed := seed004Run(t, "seed004-delay", "scaleDownDelaySeconds: 15")
	if delayed != 0 {
		t.Errorf("%d requests failed with scaleDownDelaySeconds 15 ≥ the 7 s lag", delayed)
	}
}

// seed004Run runs one canary rollout (setWeight 50, pause, setWeight 100)
// under steady traffic and returns how many requests failed.
func seed004Run(t *testing.T, ns, option string) int {
	shared.namespace(t, ns)
	services, rollout := argoCanary(ns, option, `      - setWeight: 50
      - pause: {duration: 10s}
      - setWeight: 100
      - pause: {duration: 2s}
`, "    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=5")
	shared.apply(t, services)
	shared.apply(t, rollout)
	shared.waitReady(t, ns, "app=web", 2, 90*time.Second)
	host := ingressHost(t, ns, "web")
	waitHealthyTargets(t, ns+"/web", 2)
	codes, errs := trafficDuring(host, "/logistics/orders/today?limit=1", 4, func() {
		if out, err := shared.kubectl(t, "", "-n", ns, "patch", "rollout", "web", "--type", "merge", "-p",
			`{"spec":{"template":{"metadata":{"annotations":{"version":"2"}}}}}`); err != nil {
			t.Fatalf("patch rollout: %v %s", err, out)
		}
		waitFor(t, 120*time.Second, ns+": the rollout to finish", func() (bool, error) {
			out, err := shared.kubectl(t, "", "-n", ns, "get", "rollout", "web", "-o", "jsonpath={.status.phase} {.status.currentStepIndex}")
			return err == nil && strings.HasPrefix(out, "Healthy 4"), fmt.Errorf("%v %s", err, out)
		})
		time.Sleep(20 * time.Second) // past the scale-down delay and the lag
	})
	failed := len(errs)
	for code, n := range codes {
		if code != 200 {
			failed += n
		}
	}
	albMade := albMadeErrors(t, filepath.Join(shared.dir, "alb", ns+"_web.log"))
	t.Logf("%s (%s): codes %v, transport errors %d; ALB-made in the access log %v", ns, option, codes, len(errs), albMade)
	made := 0
	for _, n := range albMade {
		made += n
	}
	if failed > 0 && made == 0 {
		t.Errorf("%d failures, none made by the ALB", failed)
	}
	return failed
}

// albMadeErrors counts the 5xx the ALB made itself (no target status), by
// code, in an access log.
func albMadeErrors(t *testing.T, path string) map[int]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := accesslog.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for {
		e, err := r.Next()
		if err != nil {
			return out
		}
		if e.ELBStatusCode >= 500 && e.TargetStatusCode == 0 {
			out[e.ELBStatusCode]++
		}
	}
}
