//go:build !nolab

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ingressHost waits for an Ingress's load balancer address on the host.
func ingressHost(t *testing.T, ns, name string) string {
	t.Helper()
	var host string
	waitFor(t, 30*time.Second, ns+"/"+name+": the Ingress load balancer address", func() (bool, error) {
		ing, err := shared.client.NetworkingV1().Ingresses(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil || len(ing.Status.LoadBalancer.Ingress) == 0 || len(ing.Status.LoadBalancer.Ingress[0].Ports) == 0 {
			return false, err
		}
		lb := ing.Status.LoadBalancer.Ingress[0]
		host = fmt.Sprintf("%s:%d", lb.IP, lb.Ports[0].Port)
		return true, nil
	})
	return host
}

func TestIngressInstanceModeGoesThroughNodes(t *testing.T) {
	ns := "instmode"
	shared.namespace(t, ns)
	svc := strings.Replace(albIngress(ns, "web", 5), "  selector: {app: web}", "  type: NodePort\n  selector: {app: web}", 1)
	svc = strings.Replace(svc, "target-type: ip", "target-type: instance", 1)
	// No preStop and an immediate shutdown: the pod stops the moment it is
	// told, with requests in flight (each takes 50-150 ms of work).
	shared.apply(t, serveDeployment(ns, "web", 3, "0", `0s", "--shutdown", "immediate", "--work", "50ms-150ms`, 30)+svc)
	shared.waitReady(t, ns, "app=web", 3, 60*time.Second)
	host := ingressHost(t, ns, "web")
	svcObj, err := shared.client.CoreV1().Services(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodePort := svcObj.Spec.Ports[0].NodePort
	var health string
	waitFor(t, 60*time.Second, "the nodes healthy as targets", func() (bool, error) {
		out, err := execCommand(binary, "lab", "describe-target-health", "--dir", shared.dir, ns+"/web").CombinedOutput()
		health = string(out)
		return strings.Count(health, " healthy ") >= 3, fmt.Errorf("%v %s", err, out)
	})
	// The targets are the nodes on the NodePort, not the pods.
	if !strings.Contains(health, fmt.Sprintf(".1:%d", nodePort)) || strings.Contains(health, ":8000") {
		t.Errorf("instance-mode targets should be node addresses on node port %d:\n%s", nodePort, health)
	}
	pods := shared.pods(t, ns, "app=web")
	// 16 users with a request always in flight: the chance that none of
	// them is on the deleted pod's connections at that moment is (2/3)^16.
	codes, errs := trafficDuring(host, "/logistics/orders/today?limit=1", 16, func() {
		if out, err := shared.kubectl(t, "", "-n", ns, "delete", "pod", pods[0].Name, "--wait=false"); err != nil {
			t.Fatalf("delete: %v %s", err, out)
		}
		waitGone(t, ns, pods[0].Name, 60*time.Second)
		time.Sleep(2 * time.Second)
	})
	failed := len(errs)
	for code, n := range codes {
		if code != 200 {
			failed += n
		}
	}
	t.Logf("instance mode, a pod deleted with no preStop: codes %v, transport errors %d", codes, len(errs))
	if codes[200] == 0 {
		t.Fatalf("no request went through the nodes' kube-proxy twin: %v %v", codes, first(errs))
	}
	if failed == 0 {
		t.Errorf("a pod that stops at once behind kube-proxy failed no request")
	}
}
