package kubelet

import (
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func httpProbe(path string, mutate func(*corev1.Probe)) *corev1.Probe {
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")},
	}}
	if mutate != nil {
		mutate(p)
	}
	return p
}

// readyChanges returns the container's readiness transitions (time since
// t0 and the new value).
func (h *harness) readyChanges(t0 time.Time) (at []time.Duration, ready []bool) {
	for _, e := range h.all("ReadinessChanged") {
		at = append(at, e.Time.Sub(t0))
		ready = append(ready, e.Fields["ready"] == true)
	}
	return at, ready
}

func (h *harness) readyBecame(v bool) func() bool {
	return func() bool {
		for _, e := range h.all("ReadinessChanged") {
			if e.Fields["ready"] == v {
				return true
			}
		}
		return false
	}
}

// Case 4: readiness thresholds, initial delay and the probe target.
// initialDelaySeconds 5, periodSeconds 10, successThreshold 2,
// failureThreshold 3: probes at 5, 15, 25, ...; Ready after the second
// success (15 s); after the endpoint fails from 20 s, not ready only after
// the third failure (45 s).
func TestReadinessThresholdsAndInitialDelay(t *testing.T) {
	pod := newPod("ready", func(p *corev1.Pod) {
		p.Spec.Containers[0].ReadinessProbe = httpProbe("/ready", func(p *corev1.Probe) {
			p.InitialDelaySeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold = 5, 10, 2, 3
		})
	})
	h := start(t, harnessConfig{step: 250 * time.Millisecond, objects: objs(pod)})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.first("ContainerStarted").Time
	h.waitFor("pod status posted", h.conditionIs("ready", corev1.PodReady, corev1.ConditionFalse))

	h.advanceUntil("ready", 30*time.Second, h.readyBecame(true))
	at, _ := h.readyChanges(t0)
	h.near("ready after 2 successes from 5 s", at[0], 15*time.Second)
	reqs := h.requests("/ready")
	if len(reqs) == 0 {
		t.Fatal("no readiness request")
	}
	h.near("first readiness probe (initialDelaySeconds 5)", reqs[0].at.Sub(t0), 5*time.Second)
	ip := h.pod("ready").Status.PodIP
	for _, d := range h.dials() {
		if d != ip+":8000" {
			t.Errorf("probe dialed %s, want the pod's address %s:8000 (named port http)", d, ip)
		}
	}
	h.waitFor("Ready=True posted", h.conditionIs("ready", corev1.PodReady, corev1.ConditionTrue))
	if c, _ := h.condition("ready", corev1.ContainersReady); c.Status != corev1.ConditionTrue {
		t.Errorf("ContainersReady %s, want True", c.Status)
	}

	h.advance(t0.Add(20 * time.Second).Sub(h.clock.Now()))
	h.ready.Store(false)
	h.advanceUntil("not ready", 40*time.Second, h.readyBecame(false))
	at, _ = h.readyChanges(t0)
	h.near("not ready after 3 failures from 25 s", at[1], 45*time.Second)
	if n := h.count("ProbeFailed"); n != 3 {
		t.Errorf("%d failed probes before the change, want 3", n)
	}
	h.waitFor("Ready=False posted", h.conditionIs("ready", corev1.PodReady, corev1.ConditionFalse))
	c, _ := h.condition("ready", corev1.PodReady)
	if c.Reason != "ContainersNotReady" {
		t.Errorf("Ready reason %q, want ContainersNotReady", c.Reason)
	}
	h.waitFor("Unhealthy event", h.hasKubeEvent("ready", corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed"))
}

// Case 4: a probe handler slower than timeoutSeconds is a failure.
func TestReadinessTimeout(t *testing.T) {
	pod := newPod("slow", func(p *corev1.Pod) {
		p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
			ProbeHandler:   corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/probe"}}},
			TimeoutSeconds: 2, PeriodSeconds: 10,
		}
	})
	var delay atomic.Int64
	delay.Store(int64(3 * time.Second))
	h := start(t, harnessConfig{step: 250 * time.Millisecond, objects: objs(pod),
		probe: func([]string) (time.Duration, int) { return time.Duration(delay.Load()), 0 }})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.first("ContainerStarted").Time
	h.advance(25 * time.Second)
	if h.readyBecame(true)() {
		t.Fatalf("a probe taking 3 s with a 2 s timeout made the container ready:\n%s", h.timeline())
	}
	fails := h.all("ProbeFailed")
	if len(fails) != 3 {
		t.Fatalf("%d failed probes in 25 s, want 3 (at 2, 12, 22 s):\n%s", len(fails), h.timeline())
	}
	for _, f := range fails {
		if !strings.Contains(f.Message, "timed out") {
			t.Errorf("probe failure %q, want a timeout", f.Message)
		}
	}
	h.near("first timeout", fails[0].Time.Sub(t0), 2*time.Second)
	for _, p := range h.rt.started("fake:probe") {
		if code, _, ok := p.exited(); ok && code != 137 {
			t.Errorf("a timed-out probe process ended with %d, want killed (137)", code)
		}
	}

	delay.Store(int64(time.Second))
	h.advanceUntil("ready", 15*time.Second, h.readyBecame(true))
	at, _ := h.readyChanges(t0)
	h.near("ready after a 1 s probe at 30 s", at[0], 31*time.Second)
}

// Case 5: liveness failure restarts the container through the kill path
// (preStop included); the first restart is immediate, then CrashLoopBackOff
// waits 10 s, 20 s, ...
func TestLivenessRestartsWithBackOff(t *testing.T) {
	pod := newPod("sick", func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.LivenessProbe = httpProbe("/live", func(p *corev1.Probe) { p.PeriodSeconds, p.FailureThreshold = 10, 3 })
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"/bin/hook", "sleep=1s"}},
		}}
	})
	h := start(t, harnessConfig{step: 500 * time.Millisecond, objects: objs(pod), liveDown: true})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.first("ContainerStarted").Time

	// First kill: probes at 0, 10, 20 fail; preStop 1 s; exit at 21 s;
	// restarted at once.
	h.advanceUntil("first restart", 30*time.Second, h.hasN("ContainerStarted", 2))
	h.near("first liveness kill (SIGTERM after 1 s preStop)", h.nth("SIGTERM", 0).Time.Sub(t0), 21*time.Second)
	h.waitFor("Killing event", h.hasKubeEvent("sick", corev1.EventTypeNormal, "Killing", "failed liveness probe, will be restarted"))

	// Second kill at 41 s, exit 42 s; back-off 10 s.
	h.advanceUntil("second exit", 30*time.Second, h.hasN("ContainerExited", 2))
	h.advance(3 * time.Second)
	h.waitFor("CrashLoopBackOff posted", func() bool { return h.waitingReason("sick", "app") == "CrashLoopBackOff" })
	cs, _ := h.containerStatus("sick", "app")
	if !strings.Contains(cs.State.Waiting.Message, "back-off 10s") {
		t.Errorf("waiting message %q, want back-off 10s", cs.State.Waiting.Message)
	}
	if cs.LastTerminationState.Terminated == nil {
		t.Error("no lastState.terminated while backing off")
	}
	if cs.Ready || (cs.Started != nil && *cs.Started) {
		t.Errorf("a container in back-off is ready=%v started=%v", cs.Ready, *cs.Started)
	}

	h.advanceUntil("fourth start", 90*time.Second, h.hasN("ContainerStarted", 4))
	starts, exits := h.all("ContainerStarted"), h.all("ContainerExited")
	for i, want := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
		h.near("restart delay #"+string(rune('1'+i)), starts[i+1].Time.Sub(exits[i].Time), want)
	}
	for i, s := range starts {
		if s.Fields["restarts"] != int32(i) {
			t.Errorf("start #%d reports restarts=%v, want %d", i+1, s.Fields["restarts"], i)
		}
	}
	// preStop ran before each liveness SIGTERM.
	if n, hooks := h.count("PreStopStarted"), len(h.rt.started("fake:hook")); n < 3 || hooks < 3 {
		t.Errorf("%d preStop runs (%d hook processes) for 3 liveness kills", n, hooks)
	}
	for i := range 3 {
		if h.nth("PreStopFinished", i).Time.After(h.nth("SIGTERM", i).Time) {
			t.Errorf("kill #%d: SIGTERM before preStop finished", i+1)
		}
		if _, killed := h.appProc(i).firstSignal(syscall.SIGKILL); killed {
			t.Errorf("kill #%d: SIGKILL for an app that exits on SIGTERM", i+1)
		}
	}
	h.waitFor("restartCount 3 posted", func() bool {
		cs, ok := h.containerStatus("sick", "app")
		return ok && cs.RestartCount == 3 && cs.State.Running != nil
	})
	cs, _ = h.containerStatus("sick", "app")
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.FinishedAt.IsZero() {
		t.Errorf("lastState.terminated %+v, want the previous run's end", lt)
	}
}

// Case 6: the startup probe holds back liveness and readiness; failing
// past its threshold restarts the container.
func TestStartupProbeGatesAndRestarts(t *testing.T) {
	pod := newPod("boot", func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.StartupProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/probe", "startup"}}},
			PeriodSeconds: 5, FailureThreshold: 3,
		}
		c.LivenessProbe = httpProbe("/live", func(p *corev1.Probe) { p.PeriodSeconds, p.FailureThreshold = 5, 1 })
		c.ReadinessProbe = httpProbe("/ready", func(p *corev1.Probe) { p.PeriodSeconds = 5 })
	})
	// The startup probe fails its first 3 runs (the first container), then
	// passes.
	var runs atomic.Int32
	h := start(t, harnessConfig{step: 250 * time.Millisecond, objects: objs(pod),
		probe: func([]string) (time.Duration, int) {
			if runs.Add(1) <= 3 {
				return 0, 1
			}
			return 0, 0
		},
		// /live fails for the first 9 s: a liveness probe run while the
		// startup probe has not passed would kill the container at once.
		liveFrom: epoch.Add(9 * time.Second),
	})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.first("ContainerStarted").Time
	if t0 != epoch {
		t.Fatalf("container started at %v, want at the epoch", t0.Sub(epoch))
	}
	h.advanceUntil("restart after startup failures", 20*time.Second, h.hasN("ContainerStarted", 2))
	t2 := h.nth("ContainerStarted", 1).Time
	h.near("restart after 3 startup failures (0, 5, 10 s)", t2.Sub(t0), 10*time.Second)
	for _, f := range h.all("ProbeFailed") {
		if f.Fields["probe"] != string(startupProbe) {
			t.Errorf("a %v probe ran before the startup probe passed: %s", f.Fields["probe"], f.Message)
		}
	}
	if n := len(h.requests("/live")) + len(h.requests("/ready")); n != 0 {
		t.Errorf("%d liveness/readiness requests before the startup probe passed", n)
	}
	h.waitFor("Killing event", h.hasKubeEvent("boot", corev1.EventTypeNormal, "Killing", "failed startup probe"))

	h.advanceUntil("ready", 20*time.Second, h.readyBecame(true))
	for _, r := range append(h.requests("/live"), h.requests("/ready")...) {
		if r.at.Before(t2) {
			t.Errorf("%s probed at %v, before the startup probe passed (%v)", r.path, r.at.Sub(t0), t2.Sub(t0))
		}
	}
	h.advance(20 * time.Second)
	if n := h.count("ContainerStarted"); n != 2 {
		t.Errorf("%d starts, want 2 (no liveness restart once started)", n)
	}
	h.waitFor("restartCount 1, started", func() bool {
		cs, ok := h.containerStatus("boot", "app")
		return ok && cs.RestartCount == 1 && cs.Started != nil && *cs.Started && cs.Ready
	})
}
