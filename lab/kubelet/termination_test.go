package kubelet

import (
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Case 1: preStop sleep 5 s, then SIGTERM, the app exits, then the final
// delete (grace 0, UID precondition). The grace countdown starts at the
// deletion, before preStop.
func TestTerminationPreStopThenSIGTERMThenDelete(t *testing.T) {
	pod := newPod("web", preStop(corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}))
	h := start(t, harnessConfig{objects: objs(pod)})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.deletePod("web", 30)
	h.waitFor("preStop started", h.has("PreStopStarted"))
	h.advanceUntil("pod deleted", 40*time.Second, h.has("PodDeleted"))

	at := func(kind string) time.Duration { return h.first(kind).Time.Sub(t0) }
	h.near("PodTerminating", at("PodTerminating"), 0)
	if g := h.first("PodTerminating").Fields["graceSeconds"]; g != 30.0 {
		t.Errorf("grace period %v, want 30 s", g)
	}
	h.near("PreStopStarted", at("PreStopStarted"), 0)
	h.near("PreStopFinished", at("PreStopFinished"), 5*time.Second)
	h.near("SIGTERM", at("SIGTERM"), 5*time.Second)
	// The countdown started at deletion: 25 s of the 30 s are left after
	// the 5 s preStop.
	if left := h.first("SIGTERM").Fields["killAfterSeconds"].(float64); left < 25-h.step.Seconds() || left > 25+h.step.Seconds() {
		t.Errorf("SIGTERM leaves %v s before SIGKILL, want 25 s (30 s grace counted from deletion)", left)
	}
	h.near("ContainerExited", at("ContainerExited"), 5*time.Second)
	h.near("PodDeleted", at("PodDeleted"), 5*time.Second)

	app := h.appProc(0)
	term, ok := app.firstSignal(syscall.SIGTERM)
	if !ok {
		t.Fatal("the app never got SIGTERM")
	}
	h.near("SIGTERM received by the app", term.Sub(t0), 5*time.Second)
	if _, killed := app.firstSignal(syscall.SIGKILL); killed {
		t.Error("the app exited on SIGTERM but was SIGKILLed too")
	}
	order := []string{"PodTerminating", "PreStopStarted", "PreStopFinished", "SIGTERM", "ContainerExited", "PodDeleted"}
	for i := 1; i < len(order); i++ {
		if h.index(order[i-1]) > h.index(order[i]) {
			t.Errorf("%s came before %s:\n%s", order[i], order[i-1], h.timeline())
		}
	}

	dels := h.podDeletes()
	if len(dels) != 1 {
		t.Fatalf("%d pod deletes by the kubelet, want 1", len(dels))
	}
	opts := dels[0].GetDeleteOptions()
	if dels[0].GetName() != "web" || opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 {
		t.Errorf("final delete of %s with grace %v, want web with grace 0", dels[0].GetName(), opts.GracePeriodSeconds)
	}
	if opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != pod.UID {
		t.Errorf("final delete preconditions %+v, want UID %s", opts.Preconditions, pod.UID)
	}
}

// Case 2: an app that ignores SIGTERM is SIGKILLed exactly when the grace
// period (counted from the deletion) ends, preStop having finished early.
func TestTerminationIgnoredSIGTERMKilledAtGracePeriod(t *testing.T) {
	pod := newPod("stubborn", args("ignore-term"),
		preStop(corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}))
	h := start(t, harnessConfig{objects: objs(pod)})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.deletePod("stubborn", 30)
	h.waitFor("preStop started", h.has("PreStopStarted"))
	h.advanceUntil("pod deleted", 45*time.Second, h.has("PodDeleted"))

	app := h.appProc(0)
	term, _ := app.firstSignal(syscall.SIGTERM)
	kill, killed := app.firstSignal(syscall.SIGKILL)
	if !killed {
		t.Fatalf("the app was never SIGKILLed:\n%s", h.timeline())
	}
	h.near("SIGTERM", term.Sub(t0), 5*time.Second)
	// 30 s from the deletion, not 30 s from SIGTERM (35 s) nor from the
	// end of preStop.
	h.near("SIGKILL", kill.Sub(t0), 30*time.Second)
	h.near("SIGKILL event", h.first("SIGKILL").Time.Sub(t0), 30*time.Second)
	if code := h.first("ContainerExited").Fields["exitCode"]; code != 137 {
		t.Errorf("exit code %v, want 137 (128+SIGKILL)", code)
	}
	h.near("PodDeleted", h.first("PodDeleted").Time.Sub(t0), 30*time.Second)
	if len(h.podDeletes()) != 1 {
		t.Errorf("%d final deletes, want 1", len(h.podDeletes()))
	}
}

// Case 3: a preStop hook still running when the grace period ends gets
// SIGTERM then, and the container the one-off 2 s minimum before SIGKILL.
func TestTerminationPreStopOverrunsGracePeriod(t *testing.T) {
	pod := newPod("overrun", args("ignore-term"),
		preStop(corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/hook", "hang"}}}))
	h := start(t, harnessConfig{objects: objs(pod)})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.deletePod("overrun", 10)
	h.waitFor("preStop started", h.has("PreStopStarted"))
	h.advanceUntil("pod deleted", 20*time.Second, h.has("PodDeleted"))

	h.near("PreStopTimedOut", h.first("PreStopTimedOut").Time.Sub(t0), 10*time.Second)
	if h.count("PreStopFinished") != 0 {
		t.Errorf("a hanging preStop hook reported finished:\n%s", h.timeline())
	}
	app := h.appProc(0)
	term, _ := app.firstSignal(syscall.SIGTERM)
	kill, killed := app.firstSignal(syscall.SIGKILL)
	if !killed {
		t.Fatalf("never SIGKILLed:\n%s", h.timeline())
	}
	h.near("SIGTERM", term.Sub(t0), 10*time.Second)
	if left := h.first("SIGTERM").Fields["killAfterSeconds"]; left != 2.0 {
		t.Errorf("SIGTERM leaves %v s, want the 2 s minimum", left)
	}
	h.near("SIGKILL", kill.Sub(t0), 12*time.Second)
	h.near("PodDeleted", h.first("PodDeleted").Time.Sub(t0), 12*time.Second)

	// The hook ran as its own process and died with the container.
	hooks := h.rt.started("fake:hook")
	if len(hooks) != 1 {
		t.Fatalf("%d hook processes, want 1", len(hooks))
	}
	h.waitFor("hook process ended", func() bool { _, _, ok := hooks[0].exited(); return ok })
	if code, end, _ := hooks[0].exited(); code != 137 || end.Sub(t0) < 10*time.Second {
		t.Errorf("hook ended with %d at %v, want killed (137) after the grace period", code, end.Sub(t0))
	}
	h.waitFor("Killing event", h.hasKubeEvent("overrun", corev1.EventTypeNormal, "Killing", "Stopping container app"))
}

// Case 10: with time scale 0.1 a 30 s grace period is 3 s of the clock.
func TestTerminationTimeScale(t *testing.T) {
	pod := newPod("scaled", args("ignore-term"))
	h := start(t, harnessConfig{scale: 0.1, step: 50 * time.Millisecond, objects: objs(pod)})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.deletePod("scaled", 30)
	h.waitFor("SIGTERM", h.has("SIGTERM"))
	h.advanceUntil("pod deleted", 10*time.Second, h.has("PodDeleted"))

	if g := h.first("PodTerminating").Fields["graceSeconds"].(float64); g < 2.999 || g > 3.001 {
		t.Errorf("scaled grace period %v s, want 3", g)
	}
	app := h.appProc(0)
	term, _ := app.firstSignal(syscall.SIGTERM)
	kill, killed := app.firstSignal(syscall.SIGKILL)
	if !killed {
		t.Fatalf("never SIGKILLed:\n%s", h.timeline())
	}
	h.near("SIGTERM", term.Sub(t0), 0)
	h.near("SIGKILL", kill.Sub(t0), 3*time.Second)
}

// Case 8 (preStop half): an exec hook calling a program the image does not
// hold (/bin/sh in the shell-less zerodrop image) fails with a
// FailedPreStopHook event, and termination goes on at once.
func TestTerminationPreStopCommandNotInImage(t *testing.T) {
	pod := newPod("noshell", func(p *corev1.Pod) {
		p.Spec.Containers[0].Image = zdImage
		p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", "sleep 5"}},
		}}
	})
	h := start(t, harnessConfig{objects: objs(pod)})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.deletePod("noshell", 30)
	h.waitFor("preStop started", h.has("PreStopStarted"))
	h.advanceUntil("pod deleted", 10*time.Second, h.has("PodDeleted"))

	fin := h.first("PreStopFinished")
	if !strings.Contains(fin.Message, "/bin/sh") || !strings.Contains(fin.Message, "not found") {
		t.Errorf("preStop result %q, want the missing /bin/sh named", fin.Message)
	}
	h.near("SIGTERM", h.first("SIGTERM").Time.Sub(t0), 0)
	h.near("PodDeleted", h.first("PodDeleted").Time.Sub(t0), 0)
	if n := len(h.rt.started("")); n != 1 {
		t.Errorf("%d processes started, want only the container (no hook process)", n)
	}
	h.waitFor("FailedPreStopHook event", h.hasKubeEvent("noshell", corev1.EventTypeWarning, "FailedPreStopHook", "/bin/sh"))
}

// An exec preStop hook that fails (exit 1) is reported and termination
// goes on as soon as it ended.
func TestTerminationPreStopHookExitCode(t *testing.T) {
	pod := newPod("hookfail",
		preStop(corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/hook", "sleep=2s", "exit=1"}}}))
	h := start(t, harnessConfig{objects: objs(pod)})
	h.waitFor("container started", h.has("ContainerStarted"))
	t0 := h.deletePod("hookfail", 30)
	h.waitFor("preStop started", h.has("PreStopStarted"))
	h.advanceUntil("pod deleted", 10*time.Second, h.has("PodDeleted"))
	h.near("SIGTERM", h.first("SIGTERM").Time.Sub(t0), 0)
	h.waitFor("FailedPreStopHook event", h.hasKubeEvent("hookfail", corev1.EventTypeWarning, "FailedPreStopHook", "exited with 1"))
}
