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
)

// The real Argo Rollouts controller drives a canary through ALB traffic
// routing: each setWeight rewrites the Ingress's actions annotation, and
// the load balancer controller twin applies it with ModifyRule after its
// lag (4 s in the shared lab).
func TestArgoRolloutsCanaryMovesALBWeights(t *testing.T) {
	ns := "canary"
	shared.namespace(t, ns)
	services, rollout := argoCanary(ns, "", `      - setWeight: 20
      - pause: {duration: 8s}
      - setWeight: 100
      - pause: {duration: 2s}
`, "")
	shared.apply(t, services)
	shared.apply(t, rollout)
	shared.waitReady(t, ns, "app=web", 2, 90*time.Second)
	waitFor(t, 60*time.Second, "Argo Rollouts to write the actions annotation", func() (bool, error) {
		out, err := shared.kubectl(t, "", "-n", ns, "get", "ingress", "web", "-o", "jsonpath={.metadata.annotations}")
		return err == nil && strings.Contains(out, "actions.web-stable"), fmt.Errorf("%v %s", err, out)
	})
	// A new version: the canary steps begin.
	started := time.Now()
	if out, err := shared.kubectl(t, "", "-n", ns, "patch", "rollout", "web", "--type", "merge", "-p",
		`{"spec":{"template":{"metadata":{"annotations":{"version":"2"}}}}}`); err != nil {
		t.Fatalf("patch rollout: %v %s", err, out)
	}
	var seen20, modify20 time.Time
	waitFor(t, 90*time.Second, "a ModifyRule giving the canary weight 20", func() (bool, error) {
		seen20, modify20 = weightEvents(t, started, 20)
		return !modify20.IsZero(), nil
	})
	t.Logf("setWeight 20 seen by the controller twin %s after the update; ModifyRule %s later",
		seen20.Sub(started).Round(10*time.Millisecond), modify20.Sub(seen20).Round(10*time.Millisecond))
	if d := modify20.Sub(seen20); d < 4*time.Second-100*time.Millisecond || d > 5*time.Second {
		t.Errorf("ModifyRule %s after the weight change, want the 4 s lag", d)
	}
	waitFor(t, 120*time.Second, "the rollout to finish", func() (bool, error) {
		out, err := shared.kubectl(t, "", "-n", ns, "get", "rollout", "web", "-o", "jsonpath={.status.phase}")
		return err == nil && out == "Healthy" && !weightModify(t, started, 100).IsZero(), fmt.Errorf("%v %s", err, out)
	})
}

// argoCanary returns the Services and ALB Ingress (first, so the Rollout
// finds them) and a Rollout of two zerodrop serve pods whose canary uses ALB
// traffic routing; option is an extra line of the canary strategy, steps
// its steps, annotations extra Ingress annotation lines.
func argoCanary(ns, option, steps, annotations string) (services, rollout string) {
	pod := serveDeployment(ns, "web", 2, "1", "1s", 30)
	tmpl := pod[strings.Index(pod, "  template:"):] // the Deployment's template becomes the Rollout's
	rollout = fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
%s  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      %s
      trafficRouting:
        alb: {ingress: web, servicePort: 80}
      steps:
%s`, ns, tmpl, option, steps)
	for _, name := range []string{"web-stable", "web-canary"} {
		services += fmt.Sprintf("---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: http}]\n", name, ns)
	}
	services += fmt.Sprintf(`---
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
%s
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web-stable, port: {name: use-annotation}}}}
`, ns, annotations)
	return services, rollout
}

// weightEvents finds, after since, the first WeightChangeSeen and
// ModifyRule events in which some target group gets weight w.
func weightEvents(t *testing.T, since time.Time, w int) (seen, modify time.Time) {
	data, err := os.ReadFile(filepath.Join(shared.dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		var e struct {
			Time   time.Time
			Kind   string
			Object string
			Fields struct{ Weights map[string]int }
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Time.Before(since) || e.Object != "canary/web" {
			continue
		}
		has := false
		for tg, v := range e.Fields.Weights {
			has = has || (v == w && strings.Contains(tg, "web-cana"))
		}
		if !has {
			continue
		}
		switch {
		case e.Kind == "WeightChangeSeen" && seen.IsZero():
			seen = e.Time
		case e.Kind == "ModifyRule" && modify.IsZero():
			modify = e.Time
		}
	}
	return seen, modify
}

func weightModify(t *testing.T, since time.Time, w int) time.Time {
	_, m := weightEvents(t, since, w)
	return m
}
