//go:build !nolab

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReadinessGatesHoldPodsUntilTargetsAreHealthy(t *testing.T) {
	ns := "gated"
	shared.apply(t, `apiVersion: v1
kind: Namespace
metadata: {name: gated, labels: {elbv2.k8s.aws/pod-readiness-gate-inject: enabled}}
`)
	// The Service, Ingress (so the TargetGroupBinding) first: the webhook
	// injects gates only when the binding exists at pod creation.
	shared.apply(t, strings.TrimPrefix(albIngress(ns, "gate", 5), "---\n"))
	waitFor(t, 30*time.Second, "the TargetGroupBinding", func() (bool, error) {
		out, err := shared.kubectl(t, "", "-n", ns, "get", "targetgroupbindings", "-o", "name")
		return err == nil && strings.Contains(out, "targetgroupbinding"), fmt.Errorf("%v %s", err, out)
	})
	shared.apply(t, serveDeployment(ns, "gate", 2, "1", "1s", 30))
	pods := shared.waitReady(t, ns, "app=gate", 2, 90*time.Second)
	for _, p := range pods {
		if len(p.Spec.ReadinessGates) != 1 || !strings.HasPrefix(string(p.Spec.ReadinessGates[0].ConditionType), "target-health.elbv2.k8s.aws/k8s-gated-gate-") {
			t.Fatalf("pod %s: readiness gates %+v, want the webhook's target-health gate", p.Name, p.Spec.ReadinessGates)
		}
		var ready, gate time.Time
		for _, c := range p.Status.Conditions {
			switch {
			case c.Type == corev1.PodReady:
				ready = c.LastTransitionTime.Time
			case c.Type == p.Spec.ReadinessGates[0].ConditionType && c.Status == corev1.ConditionTrue:
				gate = c.LastTransitionTime.Time
			}
		}
		healthy := findEvent(t, p.CreationTimestamp.Time, "ALBtarget_state", p.Status.PodIP+":8000", "healthy")
		t.Logf("pod %s: target healthy %s after creation, gate True, pod Ready %s after creation",
			p.Name, healthy.Sub(p.CreationTimestamp.Time).Round(10*time.Millisecond), ready.Sub(p.CreationTimestamp.Time).Round(time.Second))
		// Kubernetes stores condition times to the second.
		if gate.IsZero() || ready.Before(healthy.Truncate(time.Second)) {
			t.Errorf("pod %s Ready at %s, before its target was healthy at %s (gate %s)", p.Name, ready, healthy, gate)
		}
	}
	// A new version that does not answer the ALB's health check: its
	// containers are ready (no probe), the gate stays False, and a rolling
	// update with maxUnavailable 0 stalls with the old pods serving — as on EKS.
	patch := `{"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":0,"maxSurge":1}},
"template":{"spec":{"containers":[{"name":"app","image":"shell","args":["-c","while :; do sleep 1; done"],
"env":null,"readinessProbe":null,"lifecycle":null}]}}}}`
	if out, err := shared.kubectl(t, "", "-n", ns, "patch", "deployment", "gate", "--type", "strategic", "-p", patch); err != nil {
		t.Fatalf("patch: %v %s", err, out)
	}
	var stuck *corev1.Pod
	waitFor(t, 40*time.Second, "a new pod held back by its gate", func() (bool, error) {
		for _, p := range shared.pods(t, ns, "app=gate") {
			if p.Spec.Containers[0].Image != "shell" {
				continue
			}
			containersReady, ready := false, false
			for _, c := range p.Status.Conditions {
				containersReady = containersReady || (c.Type == corev1.ContainersReady && c.Status == corev1.ConditionTrue)
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && c.Reason == "ReadinessGatesNotReady" {
					ready = true
				}
			}
			if containersReady && ready {
				stuck = &p
				return true, nil
			}
		}
		return false, nil
	})
	// Well past the health check's interval × healthy threshold (10 s).
	time.Sleep(15 * time.Second)
	p, err := shared.client.CoreV1().Pods(ns).Get(context.Background(), stuck.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if podReady(p) {
		t.Errorf("pod %s became Ready although its target never passed the ALB health check", p.Name)
	}
	if out, err := shared.kubectl(t, "", "-n", ns, "rollout", "status", "deployment/gate", "--timeout=3s"); err == nil {
		t.Errorf("the rollout finished although the new pod never became Ready:\n%s", out)
	}
	old := 0
	for _, p := range shared.pods(t, ns, "app=gate") {
		if p.Spec.Containers[0].Image != "shell" && podReady(&p) && p.DeletionTimestamp == nil {
			old++
		}
	}
	if old != 2 {
		t.Errorf("%d old pods still Ready, want 2 (maxUnavailable 0)", old)
	}
	out, _ := execCommand(binary, "lab", "describe-target-health", "--dir", shared.dir, ns+"/gate").CombinedOutput()
	t.Logf("target health during the stalled rollout:\n%s", out)
	if !strings.Contains(string(out), "unhealthy") && !strings.Contains(string(out), "initial") {
		t.Errorf("the new pod's target is neither unhealthy nor initial:\n%s", out)
	}
}
