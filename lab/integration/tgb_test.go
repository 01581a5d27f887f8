//go:build !nolab

package integration

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A user-made TargetGroupBinding sharing an Ingress's target group (both in
// multi-cluster mode) puts its own Service's pods behind the Ingress's ALB:
// registered after the lag, served through the ALB, status.observedGeneration
// written, deregistered when the binding goes. One naming a target group
// the lab does not have gets a Warning event.
func TestUserTargetGroupBindingAddsTargets(t *testing.T) {
	ns := "tgb"
	shared.namespace(t, ns)
	ing := strings.Replace(albIngress(ns, "web", 5), "    alb.ingress.kubernetes.io/target-type: ip\n",
		"    alb.ingress.kubernetes.io/target-type: ip\n    alb.ingress.kubernetes.io/multi-cluster-target-group: \"true\"\n", 1)
	extraSvc := fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: extra, namespace: %s}
spec:
  selector: {app: extra}
  ports: [{port: 80, targetPort: http}]
`, ns)
	shared.apply(t, serveDeployment(ns, "web", 2, "1", "1s", 30)+ing)
	shared.apply(t, serveDeployment(ns, "extra", 1, "1", "1s", 30)+extraSvc)
	shared.waitReady(t, ns, "app=web", 2, 60*time.Second)
	extra := shared.waitReady(t, ns, "app=extra", 1, 60*time.Second)[0]
	waitHealthyTargets(t, ns+"/web", 2)
	var arn string
	waitFor(t, 30*time.Second, "the Ingress's own TargetGroupBinding", func() (bool, error) {
		out, err := shared.kubectl(t, "", "-n", ns, "get", "tgb", "-l", "ingress.k8s.aws/stack", "-o", "jsonpath={.items[0].spec.targetGroupARN}")
		arn = strings.TrimSpace(out)
		return err == nil && strings.HasPrefix(arn, "arn:"), fmt.Errorf("%v %s", err, out)
	})
	shared.apply(t, fmt.Sprintf(`apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata: {name: extra, namespace: %[1]s}
spec:
  targetGroupARN: %[2]s
  targetType: ip
  multiClusterTargetGroup: true
  serviceRef: {name: extra, port: 80}
---
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata: {name: nowhere, namespace: %[1]s}
spec:
  targetGroupARN: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/elsewhere/0123456789abcdef
  targetType: ip
  serviceRef: {name: extra, port: 80}
`, ns, arn))
	bound := time.Now()
	target := extra.Status.PodIP + ":8000"
	waitHealthyTargets(t, ns+"/web", 3)
	reg := findEvent(t, bound.Add(-time.Second), "RegisterTargets", target)
	t.Logf("the user binding's target %s registered %s after the binding was applied", target, reg.Sub(bound).Round(time.Millisecond))

	// The ALB sends requests to it.
	ingObj, err := shared.client.NetworkingV1().Ingresses(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || len(ingObj.Status.LoadBalancer.Ingress) == 0 || len(ingObj.Status.LoadBalancer.Ingress[0].Ports) == 0 {
		t.Fatalf("Ingress status: %v %+v", err, ingObj)
	}
	lb := ingObj.Status.LoadBalancer.Ingress[0]
	url := fmt.Sprintf("http://%s:%d/logistics/health", lb.IP, lb.Ports[0].Port)
	client := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, 30*time.Second, "a request through the ALB served by the extra pod", func() (bool, error) {
		for i := 0; i < 10; i++ {
			resp, err := client.Get(url)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
		}
		return !lastRequestTo(t, filepath.Join(shared.dir, "alb", ns+"_web.log"), target).IsZero(), nil
	})
	out, err := shared.kubectl(t, "", "-n", ns, "get", "tgb", "extra", "-o", "jsonpath={.metadata.generation} {.status.observedGeneration}")
	if f := strings.Fields(out); err != nil || len(f) != 2 || f[0] != f[1] {
		t.Errorf("generation and status.observedGeneration of the bound binding: %q %v", out, err)
	}
	waitFor(t, 30*time.Second, "a Warning event on the binding with an unknown target group", func() (bool, error) {
		evs, err := shared.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=nowhere"})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Type == "Warning" && e.Reason == "TargetGroupNotFound" {
				t.Logf("event on TargetGroupBinding nowhere: %s %s", e.Reason, e.Message)
				return true, nil
			}
		}
		return false, nil
	})

	// The binding goes: its target is deregistered (and drains).
	gone := time.Now()
	if out, err := shared.kubectl(t, "", "-n", ns, "delete", "tgb", "extra"); err != nil {
		t.Fatalf("delete tgb: %v %s", err, out)
	}
	waitFor(t, 30*time.Second, "deregistration of the binding's target", func() (bool, error) {
		out, err := execCommand(binary, "lab", "describe-target-health", "--dir", shared.dir, ns+"/web").CombinedOutput()
		line := ""
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, target) {
				line = l
			}
		}
		return line == "" || strings.Contains(line, "draining"), fmt.Errorf("%v %s", err, out)
	})
	dereg := findEvent(t, gone, "DeregisterTargets", target)
	t.Logf("deregistered %s after the binding was deleted", dereg.Sub(gone).Round(time.Millisecond))
}
