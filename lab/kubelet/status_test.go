package kubelet

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const gate corev1.PodConditionType = "target-health.elbv2.k8s.aws/web"

// Case 7: a pod with a readiness gate is Ready only once the gate's
// condition is True; ContainersReady is True meanwhile, and the kubelet's
// status writes leave the gate's condition (another component's) alone.
func TestReadinessGate(t *testing.T) {
	pod := newPod("gated", func(p *corev1.Pod) {
		p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: gate}}
	})
	h := start(t, harnessConfig{objects: objs(pod)})
	h.waitFor("ContainersReady posted", h.conditionIs("gated", corev1.ContainersReady, corev1.ConditionTrue))
	ready, _ := h.condition("gated", corev1.PodReady)
	if ready.Status != corev1.ConditionFalse || ready.Reason != "ReadinessGatesNotReady" || !strings.Contains(ready.Message, "does not exist") {
		t.Errorf("Ready %s (%s: %s), want False, ReadinessGatesNotReady, the gate's condition missing", ready.Status, ready.Reason, ready.Message)
	}

	h.setPodCondition("gated", gate, corev1.ConditionFalse)
	h.waitFor("Ready names the False gate", func() bool {
		c, _ := h.condition("gated", corev1.PodReady)
		return strings.Contains(c.Message, `is not "True", but False`)
	})
	h.advance(2 * time.Second) // status resyncs in between must not flip it
	if c, _ := h.condition("gated", corev1.PodReady); c.Status != corev1.ConditionFalse || c.Reason != "ReadinessGatesNotReady" {
		t.Errorf("Ready %s (%s) with the gate False", c.Status, c.Reason)
	}

	h.setPodCondition("gated", gate, corev1.ConditionTrue)
	h.waitFor("Ready=True after the gate", h.conditionIs("gated", corev1.PodReady, corev1.ConditionTrue))
	// The Ready=True write was the kubelet's: the gate's condition must
	// have survived it (and every later one).
	h.advance(2 * time.Second)
	if c, ok := h.condition("gated", gate); !ok || c.Status != corev1.ConditionTrue {
		t.Errorf("gate condition after the kubelet's status writes: %+v (present %v), want True", c, ok)
	}
	if c, _ := h.condition("gated", corev1.PodReady); c.Status != corev1.ConditionTrue {
		t.Errorf("Ready %s after the gate turned True", c.Status)
	}
	st := h.pod("gated").Status
	if st.Phase != corev1.PodRunning || st.PodIP == "" || st.HostIP != h.k.NodeIP().String() {
		t.Errorf("status phase %s podIP %q hostIP %q", st.Phase, st.PodIP, st.HostIP)
	}
}

// Case 8: an image the lab does not know fails as a pull does:
// ErrImagePull with a Warning event, then ImagePullBackOff.
func TestUnknownImage(t *testing.T) {
	pod := newPod("ghost", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "registry.example/nope:v1" })
	h := start(t, harnessConfig{step: 500 * time.Millisecond, objects: objs(pod)})
	h.waitFor("ErrImagePull posted", func() bool { return h.waitingReason("ghost", "app") == "ErrImagePull" })
	h.waitFor("pull failure event", h.hasKubeEvent("ghost", corev1.EventTypeWarning, "Failed", `Failed to pull image "registry.example/nope:v1"`))
	h.waitFor("ErrImagePull event", h.hasKubeEvent("ghost", corev1.EventTypeWarning, "Failed", "ErrImagePull"))
	if p := h.pod("ghost"); p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}

	h.advanceUntil("ImagePullBackOff", 15*time.Second, func() bool { return h.waitingReason("ghost", "app") == "ImagePullBackOff" })
	if d := h.since(epoch); d < 10*time.Second-h.step {
		t.Errorf("ImagePullBackOff after %v, want the 10 s back-off first", d)
	}
	h.waitFor("BackOff event", h.hasKubeEvent("ghost", corev1.EventTypeNormal, "BackOff", "Back-off pulling image"))
	if n := len(h.rt.started("")); n != 0 {
		t.Errorf("%d processes started for an image that does not exist", n)
	}
	cs, _ := h.containerStatus("ghost", "app")
	if cs.Ready || cs.RestartCount != 0 {
		t.Errorf("container ready=%v restarts=%d, want not ready, 0", cs.Ready, cs.RestartCount)
	}
}
