//go:build !nolab

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
)

func splitAnnotation(stable, canary int) string {
	return fmt.Sprintf(`{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"stable","servicePort":"80","weight":%d},{"serviceName":"canary","servicePort":"80","weight":%d}]}}`, stable, canary)
}

// An actions.NAME weight change (what Argo Rollouts' setWeight writes)
// reaches the ALB as a ModifyRule after the controller's lag (4 s in the
// shared lab) plus propagation (3 s): requests keep going to the old
// target group until then.
func TestIngressWeightsChangeAfterTheModifyRuleLag(t *testing.T) {
	ns := "weights"
	shared.namespace(t, ns)
	svc := func(name string) string {
		return fmt.Sprintf("---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec:\n  selector: {app: %s}\n  ports: [{port: 80, targetPort: http}]\n", name, ns, name)
	}
	ingress := fmt.Sprintf(`---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: %s
  annotations:
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/healthcheck-path: /logistics/health
    alb.ingress.kubernetes.io/healthcheck-interval-seconds: "5"
    alb.ingress.kubernetes.io/healthcheck-timeout-seconds: "2"
    alb.ingress.kubernetes.io/actions.split: '%s'
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: split, port: {name: use-annotation}}}}
`, ns, splitAnnotation(100, 0))
	shared.apply(t, serveDeployment(ns, "stable", 2, "1", "1s", 30)+"---\n"+serveDeployment(ns, "canary", 1, "1", "1s", 30)+svc("stable")+svc("canary")+ingress)
	shared.waitReady(t, ns, "app=stable", 2, 60*time.Second)
	canary := shared.waitReady(t, ns, "app=canary", 1, 60*time.Second)
	canaryTarget := canary[0].Status.PodIP + ":8000"
	host := ingressHost(t, ns, "web")
	waitHealthyTargets(t, ns+"/web", 3)
	var changed time.Time
	codes, errs := trafficDuring(host, "/logistics/health", 4, func() {
		time.Sleep(time.Second)
		changed = time.Now()
		if out, err := shared.kubectl(t, "", "-n", ns, "annotate", "--overwrite", "ingress", "web",
			"alb.ingress.kubernetes.io/actions.split="+splitAnnotation(0, 100)); err != nil {
			t.Fatalf("annotate: %v %s", err, out)
		}
		time.Sleep(12 * time.Second)
	})
	if len(errs) > 0 || codes[200] == 0 || len(codes) != 1 {
		t.Errorf("requests during the weight change: %v, errors %v", codes, first(errs))
	}
	modify := findModifyRule(t, changed)
	effective := modify.effectiveAt
	t.Logf("annotation changed → ModifyRule %s → weights in effect %s", modify.at.Sub(changed).Round(10*time.Millisecond), effective.Sub(changed).Round(10*time.Millisecond))
	if d := modify.at.Sub(changed); d < 4*time.Second || d > 7*time.Second {
		t.Errorf("ModifyRule %s after the annotation changed, want the 4 s lag", d)
	}
	f, err := os.Open(filepath.Join(shared.dir, "alb", ns+"_web.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := accesslog.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var toCanaryEarly, toStableLate, toCanaryLate int
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		switch {
		case e.Time.Before(effective.Add(-200*time.Millisecond)) && e.Target == canaryTarget:
			toCanaryEarly++
		case e.RequestCreationTime.After(effective.Add(500 * time.Millisecond)):
			if e.Target == canaryTarget {
				toCanaryLate++
			} else {
				toStableLate++
			}
		}
	}
	t.Logf("to canary before the change took effect: %d; after: %d to canary, %d to stable", toCanaryEarly, toCanaryLate, toStableLate)
	if toCanaryEarly > 0 {
		t.Errorf("%d requests reached the canary (weight 0) before the ModifyRule took effect", toCanaryEarly)
	}
	if toCanaryLate == 0 || toStableLate > 0 {
		t.Errorf("after the change took effect: %d to canary, %d to stable; want all to canary", toCanaryLate, toStableLate)
	}
}

type modifyRule struct{ at, effectiveAt time.Time }

func findModifyRule(t *testing.T, since time.Time) modifyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shared.dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `"kind":"ModifyRule"`) || !strings.Contains(line, "weights/web") {
			continue
		}
		var e struct {
			Time   time.Time
			Fields struct {
				EffectiveAt string `json:"effectiveAt"`
			}
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Time.Before(since) {
			continue
		}
		eff, err := time.Parse(time.RFC3339Nano, e.Fields.EffectiveAt)
		if err != nil {
			t.Fatalf("ModifyRule event without effectiveAt: %s", line)
		}
		return modifyRule{at: e.Time, effectiveAt: eff}
	}
	t.Fatalf("no ModifyRule event for weights/web after %s", since)
	return modifyRule{}
}
