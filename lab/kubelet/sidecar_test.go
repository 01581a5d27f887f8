package kubelet

import (
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// procOf returns the first process whose argv ends with tag (the tests
// give each container's process a distinct last argument).
func (h *harness) procOf(tag string) *fakeProc {
	h.t.Helper()
	for _, p := range h.rt.started("fake:app") {
		if p.spec.Argv[len(p.spec.Argv)-1] == tag {
			return p
		}
	}
	h.t.Fatalf("no process for %s", tag)
	return nil
}

func sidecarPod(name string, mainArgs ...string) *corev1.Pod {
	return newPod(name, func(p *corev1.Pod) {
		sleep := func(s int64) *corev1.Lifecycle {
			return &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: s}}}
		}
		p.Spec.InitContainers = []corev1.Container{
			{Name: "proxy", Image: appImage, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Args: []string{"term-delay=0s", "proxy"}, Lifecycle: sleep(3)},
			{Name: "logs", Image: appImage, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Args: []string{"term-delay=1s", "logs"}},
		}
		c := &p.Spec.Containers[0]
		c.Args = append(mainArgs, "main")
		c.Lifecycle = sleep(5)
	})
}

// Native sidecars, as the kubelet's termination ordering has them: every
// preStop hook starts at the deletion; a sidecar gets SIGTERM only once
// the main containers, then the sidecars declared after it, have exited.
func TestSidecarTerminationOrder(t *testing.T) {
	h := start(t, harnessConfig{objects: objs(sidecarPod("side", "term-delay=2s"))})
	h.advanceUntil("all three started", 5*time.Second, h.hasN("ContainerStarted", 3))
	t0 := h.deletePod("side", 30)
	h.waitFor("preStop started", h.has("PreStopStarted"))
	h.advanceUntil("pod deleted", 40*time.Second, h.has("PodDeleted"))

	for _, e := range h.all("PreStopStarted") {
		h.near(e.Container+" preStop start", e.Time.Sub(t0), 0)
	}
	if n := h.count("PreStopStarted"); n != 2 {
		t.Errorf("%d preStop hooks ran, want 2 (main, proxy)", n)
	}
	term := func(tag string) time.Duration {
		at, ok := h.procOf(tag).firstSignal(syscall.SIGTERM)
		if !ok {
			t.Fatalf("%s never got SIGTERM:\n%s", tag, h.timeline())
		}
		return at.Sub(t0)
	}
	h.near("main SIGTERM (after its 5 s preStop)", term("main"), 5*time.Second)
	h.near("logs SIGTERM (main exited at 7 s)", term("logs"), 7*time.Second)
	h.near("proxy SIGTERM (logs, declared after it, exited at 8 s)", term("proxy"), 8*time.Second)
	h.near("pod deleted", h.first("PodDeleted").Time.Sub(t0), 8*time.Second)
	for _, tag := range []string{"main", "logs", "proxy"} {
		if _, killed := h.procOf(tag).firstSignal(syscall.SIGKILL); killed {
			t.Errorf("%s SIGKILLed", tag)
		}
	}
}

// A sidecar waits for its turn only within the grace period: when the main
// container outlives it, the sidecars get SIGTERM at its end and the 2 s
// minimum before SIGKILL.
func TestSidecarTurnBoundedByGrace(t *testing.T) {
	pod := sidecarPod("late", "ignore-term")
	pod.Spec.InitContainers[0].Args = []string{"ignore-term", "proxy"}
	h := start(t, harnessConfig{objects: objs(pod)})
	h.advanceUntil("all three started", 5*time.Second, h.hasN("ContainerStarted", 3))
	t0 := h.deletePod("late", 10)
	h.waitFor("preStop started", h.has("PreStopStarted"))
	h.advanceUntil("pod deleted", 20*time.Second, h.has("PodDeleted"))

	kill, _ := h.procOf("main").firstSignal(syscall.SIGKILL)
	h.near("main SIGKILL at the grace period", kill.Sub(t0), 10*time.Second)
	pt, _ := h.procOf("proxy").firstSignal(syscall.SIGTERM)
	h.near("proxy SIGTERM when the grace period ends", pt.Sub(t0), 10*time.Second)
	pk, killed := h.procOf("proxy").firstSignal(syscall.SIGKILL)
	if !killed {
		t.Fatalf("proxy ignoring SIGTERM never SIGKILLed:\n%s", h.timeline())
	}
	h.near("proxy SIGKILL 2 s later", pk.Sub(t0), 12*time.Second)
}
