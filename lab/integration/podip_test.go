//go:build !nolab

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"zerodrop.dev/zerodrop/accesslog"
	"zerodrop.dev/zerodrop/lab"
)

// pinnedPod is a bare pod of zerodrop serve bound to node, with no preStop
// and no shutdown delay.
func pinnedPod(ns, name, node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %[2]s, namespace: %[1]s, labels: {app: podip}}
spec:
  nodeName: %[3]s
  tolerations: [{key: zerodrop.dev/podnet, operator: Exists}]
  terminationGracePeriodSeconds: 10
  containers:
  - name: app
    image: zerodrop.dev/zerodrop:lab
    args: ["serve", "--addr", "$(POD_IP):8000", "--db", "sqlite:orders.db", "--shutdown-delay", "0s"]
    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    readinessProbe: {httpGet: {path: /logistics/health, port: 8000}, periodSeconds: 1}
`, ns, name, node)
}

func (l *testLab) waitPodReady(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, 60*time.Second, "pod "+name+" ready", func() (bool, error) {
		p, err := l.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return podReady(p) && p.Status.PodIP != "", nil
	})
	return pod
}

// connectOutcome dials addr in the lab network with a timeout and says how
// it ended: connected, refused or timeout.
func connectOutcome(addr string, timeout time.Duration) (string, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	c, err := shared.podDial(ctx, "tcp", addr)
	took := time.Since(start)
	if err == nil {
		c.Close()
		return "connected", took
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "refused", took
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout", took
	}
	return err.Error(), took
}

// On a VPC a deleted pod's address stops answering: a connect to it times
// out instead of being refused, while live pods answer; the address is
// given to a new pod later and answers again.
func TestDeletedPodAddressTimesOutUntilReused(t *testing.T) {
	ns := "podip"
	shared.namespace(t, ns)
	// A node of its own (tainted, so no other test's pod lands there), so
	// the addresses its pods get are known: .2, .3, then .2 again.
	ctl, err := lab.Connect(shared.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.AddNode(lab.NodeSpec{Name: "podnet", Taints: []corev1.Taint{{Key: "zerodrop.dev/podnet", Effect: corev1.TaintEffectNoSchedule}}}); err != nil {
		t.Fatalf("adding node podnet: %v", err)
	}
	defer func() {
		_, _ = shared.kubectl(t, "", "delete", "namespace", ns, "--wait=false")
		if err := ctl.RemoveNode("podnet"); err != nil {
			t.Errorf("removing node podnet: %v", err)
		}
	}()
	shared.apply(t, pinnedPod(ns, "victim", "podnet"))
	victim := shared.waitPodReady(t, ns, "victim")
	shared.apply(t, pinnedPod(ns, "live", "podnet"))
	live := shared.waitPodReady(t, ns, "live")
	vAddr, lAddr := victim.Status.PodIP+":8000", live.Status.PodIP+":8000"
	if got, _ := connectOutcome(vAddr, 2*time.Second); got != "connected" {
		t.Fatalf("victim %s before its deletion: %s", vAddr, got)
	}

	if out, err := shared.kubectl(t, "", "-n", ns, "delete", "pod", "victim", "--wait=false"); err != nil {
		t.Fatalf("delete: %v %s", err, out)
	}
	waitGone(t, ns, "victim", 60*time.Second)
	got, took := connectOutcome(vAddr, 2*time.Second)
	t.Logf("connect to the deleted pod's address %s: %s after %s", vAddr, got, took.Round(time.Millisecond))
	if got != "timeout" {
		t.Errorf("connect to a deleted pod's address: %s, want a timeout (no RST, as on a VPC)", got)
	}
	if got, _ := connectOutcome(lAddr, 2*time.Second); got != "connected" {
		t.Errorf("the live pod %s: %s, want connected", lAddr, got)
	}
	if code, err := shared.get(context.Background(), "http://"+lAddr+"/logistics/health"); err != nil || code != 200 {
		t.Errorf("the live pod answers %d, %v", code, err)
	}
	ev := labEvents(t, ns+"/victim")
	down, deleted := eventTime(t, ev, "PodNetworkTornDown"), eventTime(t, ev, "PodDeleted")
	exited := eventTime(t, ev, "ContainerExited")
	if down.Before(exited) || down.After(deleted) {
		t.Errorf("address torn down at %s, want between the container's exit (%s) and the final delete (%s)", down, exited, deleted)
	}

	// The address goes to the next pod on the node and answers again.
	shared.apply(t, pinnedPod(ns, "successor", "podnet"))
	succ := shared.waitPodReady(t, ns, "successor")
	if succ.Status.PodIP != victim.Status.PodIP {
		t.Fatalf("successor got %s, want the freed %s", succ.Status.PodIP, victim.Status.PodIP)
	}
	if code, err := shared.get(context.Background(), "http://"+vAddr+"/logistics/health"); err != nil || code != 200 {
		t.Errorf("the reused address %s answers %d, %v", vAddr, code, err)
	}
}

// Through the ALB: a pod deleted with no preStop and no shutdown delay
// stops while the ALB still routes to it (1.5 s lag + 3 s propagation);
// requests sent to its silent address end as ALB-made 504s after the
// target connect timeout (10 s), not 502s.
func TestDeletedPodTargetGives504AfterConnectTimeout(t *testing.T) {
	ns := "alb504"
	shared.namespace(t, ns)
	// Deregistration delay 30 s: longer than the connect timeout, so the
	// drain does not cut the connects under way first.
	shared.apply(t, serveDeployment(ns, "web", 3, "0", "0s", 30)+albIngress(ns, "web", 30))
	pods := shared.waitReady(t, ns, "app=web", 3, 60*time.Second)
	var host string
	waitFor(t, 30*time.Second, ns+": the Ingress load balancer address", func() (bool, error) {
		ing, err := shared.client.NetworkingV1().Ingresses(ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil || len(ing.Status.LoadBalancer.Ingress) == 0 || len(ing.Status.LoadBalancer.Ingress[0].Ports) == 0 {
			return false, err
		}
		lb := ing.Status.LoadBalancer.Ingress[0]
		host = fmt.Sprintf("%s:%d", lb.IP, lb.Ports[0].Port)
		t.Logf("Ingress status: ip %s, hostname %s, port %d", lb.IP, lb.Hostname, lb.Ports[0].Port)
		if lb.Hostname == "" {
			t.Errorf("the Ingress status has no hostname")
		}
		return true, nil
	})
	if out, err := shared.kubectl(t, "", "-n", ns, "get", "ingress", "web"); err != nil || !strings.Contains(out, strings.Split(host, ":")[0]) {
		t.Errorf("kubectl get ingress does not show the address %s: %v\n%s", host, err, out)
	} else {
		t.Logf("kubectl get ingress:\n%s", out)
	}
	waitHealthyTargets(t, ns+"/web", 3)
	victim := pods[0]
	// Requests stuck on the silent address end within the connect timeout,
	// before trafficDuring returns.
	codes, errs := trafficDuring(host, "/logistics/health", 8, func() {
		if out, err := shared.kubectl(t, "", "-n", ns, "delete", "pod", victim.Name, "--wait=false"); err != nil {
			t.Fatalf("delete: %v %s", err, out)
		}
		waitGone(t, ns, victim.Name, 60*time.Second)
		time.Sleep(6 * time.Second) // past the lag and the propagation
	})
	t.Logf("requests through the ALB: codes %v, transport errors %d %v", codes, len(errs), first(errs))

	target := victim.Status.PodIP + ":8000"
	down := eventTime(t, labEvents(t, ns+"/"+victim.Name), "PodNetworkTornDown")
	reasons, early := map[string]int{}, map[string]int{}
	var timeouts []time.Duration
	f, err := os.Open(filepath.Join(shared.dir, "alb", ns+"_web.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := accesslog.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		if e.Target != target {
			continue
		}
		if e.ELBStatusCode == 504 && e.ErrorReason == accesslog.ReasonTargetConnectTimeout {
			timeouts = append(timeouts, e.Time.Sub(e.RequestCreationTime))
		}
		if e.RequestCreationTime.Before(down) {
			// Before the address went silent: the stopping pod refuses.
			early[fmt.Sprintf("%d %s", e.ELBStatusCode, e.ErrorReason)]++
			continue
		}
		reasons[fmt.Sprintf("%d %s", e.ELBStatusCode, e.ErrorReason)]++
	}
	t.Logf("requests to the deleted pod %s before its address went silent: %v; after: %v; times to the 504: %v", target, early, reasons, timeouts)
	if len(timeouts) == 0 {
		t.Fatalf("no 504 TargetConnectTimeout to %s (before its address went silent: %v; after: %v)", target, early, reasons)
	}
	for k, n := range reasons {
		if !strings.HasPrefix(k, "504 "+accesslog.ReasonTargetConnectTimeout) {
			t.Errorf("%d requests to the silent address ended as %s, want all 504 %s", n, k, accesslog.ReasonTargetConnectTimeout)
		}
	}
	for _, d := range timeouts {
		if d < 9500*time.Millisecond || d > 11*time.Second {
			t.Errorf("a 504 came %s after its request, want the 10 s connect timeout", d)
		}
	}
	if codes[504] == 0 {
		t.Errorf("the clients saw no 504: %v", codes)
	}
}
