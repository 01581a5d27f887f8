//go:build !nolab

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"zerodrop.dev/zerodrop/accesslog"
)

func albIngress(ns, svc string, deregSeconds int) string {
	return fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {app: %[2]s}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: %[2]s
  namespace: %[1]s
  annotations:
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/healthcheck-path: /logistics/health
    alb.ingress.kubernetes.io/healthcheck-interval-seconds: "5"
    alb.ingress.kubernetes.io/healthcheck-timeout-seconds: "2"
    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=%[3]d
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: %[2]s, port: {number: 80}}}}
`, ns, svc, deregSeconds)
}

// The lab's shared lab runs the load balancer controller twin with a
// reconcile lag of 1 s, an API latency of 0.5 s and a propagation of 3 s.
const lbLag = 1500 * time.Millisecond

func TestIngressIPModeDeregistersBeforeSIGTERM(t *testing.T) {
	// First the failure: no preStop and no shutdown delay, so the pod stops
	// listening while the ALB still routes to it (1.5 s lag + 3 s
	// propagation): requests fail.
	if failed := ipModeDeletion(t, "ipmode-naive", "0", "0s", false); failed == 0 {
		t.Errorf("a pod that stops at once behind the ALB failed no request: the test cannot tell")
	}
	// preStop 7 s > 1.5 s lag + 3 s propagation: the ALB stops sending to
	// the pod before it gets SIGTERM, and nothing fails.
	if failed := ipModeDeletion(t, "ipmode", "7", "1s", true); failed != 0 {
		t.Errorf("%d requests failed although the pod outlived the deregistration", failed)
	}
}

// ipModeDeletion deletes one pod of three behind an ip-mode Ingress under
// steady traffic and returns how many requests failed; with check it also
// checks the timeline of the deregistration.
func ipModeDeletion(t *testing.T, ns, preStop, delay string, check bool) int {
	shared.namespace(t, ns)
	shared.apply(t, serveDeployment(ns, "web", 3, preStop, delay, 30)+albIngress(ns, "web", 5))
	pods := shared.waitReady(t, ns, "app=web", 3, 60*time.Second)
	var host string
	waitFor(t, 30*time.Second, ns+": the Ingress load balancer address", func() (bool, error) {
		ing, err := shared.client.NetworkingV1().Ingresses(ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil || len(ing.Status.LoadBalancer.Ingress) == 0 || len(ing.Status.LoadBalancer.Ingress[0].Ports) == 0 {
			return false, err
		}
		lb := ing.Status.LoadBalancer.Ingress[0]
		host = fmt.Sprintf("%s:%d", lb.IP, lb.Ports[0].Port)
		return true, nil
	})
	waitHealthyTargets(t, ns+"/web", 3)
	// Steady traffic from the host through the ALB while one pod is deleted.
	victim := pods[0]
	codes, errs := trafficDuring(host, "/logistics/health", 4, func() {
		if out, err := shared.kubectl(t, "", "-n", ns, "delete", "pod", victim.Name, "--wait=false"); err != nil {
			t.Fatalf("delete: %v %s", err, out)
		}
		waitGone(t, ns, victim.Name, 60*time.Second)
		time.Sleep(time.Second)
	})
	failed := len(errs)
	for code, n := range codes {
		if code != 200 {
			failed += n
		}
	}
	t.Logf("%s: requests through the ALB while a pod went away: codes %v, transport errors %d %v", ns, codes, len(errs), first(errs))
	if !check {
		return failed
	}
	target := victim.Status.PodIP + ":8000"
	ev := labEvents(t, ns+"/"+victim.Name)
	terminating := eventTime(t, ev, "PodTerminating")
	sigterm := eventTime(t, ev, "SIGTERM")
	dereg := findEvent(t, terminating, "DeregisterTargets", target)
	draining := findEvent(t, terminating, "ALBdraining", target)
	t.Logf("deletion→DeregisterTargets %s, →draining %s, →SIGTERM %s",
		dereg.Sub(terminating).Round(time.Millisecond), draining.Sub(terminating).Round(time.Millisecond), sigterm.Sub(terminating).Round(time.Millisecond))
	if d := dereg.Sub(terminating); d < lbLag || d > lbLag+3*time.Second {
		t.Errorf("DeregisterTargets %s after the deletion, want the controller's lag of %s", d, lbLag)
	}
	if d := draining.Sub(dereg); d < 3*time.Second || d > 5*time.Second {
		t.Errorf("target draining %s after DeregisterTargets, want the 3s propagation", d)
	}
	// The access log: the victim's last request was dispatched before
	// draining began and answered before SIGTERM.
	last := lastRequestTo(t, filepath.Join(shared.dir, "alb", ns+"_web.log"), target)
	if last.IsZero() {
		t.Fatalf("the access log shows no request to %s", target)
	}
	if !last.Before(sigterm) {
		t.Errorf("last request to the deleted pod at %s, after its SIGTERM at %s", last, sigterm)
	}
	if last.After(draining.Add(500 * time.Millisecond)) {
		t.Errorf("requests still sent to %s at %s, after it was draining at %s", target, last, draining)
	}
	return failed
}

// waitHealthyTargets waits until describe-target-health shows n healthy
// targets for an Ingress group.
func waitHealthyTargets(t *testing.T, group string, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d healthy targets of %s", n, group), func() (bool, error) {
		out, err := execCommand(binary, "lab", "describe-target-health", "--dir", shared.dir, group).CombinedOutput()
		return strings.Count(string(out), " healthy ") >= n, fmt.Errorf("%v %s", err, out)
	})
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// findEvent finds the first lab event of kind about target (in Fields or
// Object) at or after since (pod addresses are reused), optionally in a
// given state.
func findEvent(t *testing.T, since time.Time, kind, target string, state ...string) time.Time {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shared.dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `"kind":"`+kind+`"`) || !strings.Contains(line, target) {
			continue
		}
		if len(state) > 0 && !strings.Contains(line, `"state":"`+state[0]+`"`) {
			continue
		}
		var e struct{ Time time.Time }
		if err := jsonUnmarshal([]byte(line), &e); err == nil && !e.Time.Before(since) {
			return e.Time
		}
	}
	t.Fatalf("no %s %v event for %s in the lab's event stream", kind, state, target)
	return time.Time{}
}

func lastRequestTo(t *testing.T, path, target string) time.Time {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("access log: %v", err)
	}
	defer f.Close()
	r, err := accesslog.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		if e.Target == target && e.RequestCreationTime.After(last) {
			last = e.Time
		}
	}
	return last
}
