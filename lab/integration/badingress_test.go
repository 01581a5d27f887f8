//go:build !nolab

package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An annotation the controller would reject gets a FailedBuildModel event
// on the Ingress, and the ALB keeps serving its last good configuration.
func TestBadIngressAnnotationKeepsTheLastGoodALB(t *testing.T) {
	ns := "badann"
	shared.namespace(t, ns)
	shared.apply(t, serveDeployment(ns, "web", 2, "1", "1s", 30)+albIngress(ns, "web", 5))
	shared.waitReady(t, ns, "app=web", 2, 60*time.Second)
	host := ingressHost(t, ns, "web")
	waitHealthyTargets(t, ns+"/web", 2)
	// 400 s is outside the 5-300 s range of health-check intervals.
	if out, err := shared.kubectl(t, "", "-n", ns, "annotate", "--overwrite", "ingress", "web",
		"alb.ingress.kubernetes.io/healthcheck-interval-seconds=400"); err != nil {
		t.Fatalf("annotate: %v %s", err, out)
	}
	waitFor(t, 30*time.Second, "a FailedBuildModel event on the Ingress", func() (bool, error) {
		out, err := shared.kubectl(t, "", "-n", ns, "get", "events", "--field-selector", "involvedObject.kind=Ingress,reason=FailedBuildModel", "-o", "jsonpath={.items[*].message}")
		return err == nil && strings.Contains(out, "400"), fmt.Errorf("%v %q", err, out)
	})
	time.Sleep(2 * time.Second)
	if got := ingressHost(t, ns, "web"); got != host {
		t.Errorf("the load balancer moved from %s to %s after a rejected change", host, got)
	}
	resp, err := http.Get("http://" + host + "/logistics/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the ALB stopped serving after a rejected change: %v %v", err, resp)
	}
	resp.Body.Close()
}
