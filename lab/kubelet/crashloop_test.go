package kubelet

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A container that keeps crashing is restarted at once, then after
// 10 s, 20 s, 40 s, ... capped at 5 min, its waiting message naming the
// back-off in effect; deleting the pod while it backs off deletes it at
// once.
func TestCrashLoopBackOffCap(t *testing.T) {
	pod := newPod("crash", args("exit-after=0s"))
	h := start(t, harnessConfig{step: time.Second, objects: objs(pod)})
	h.waitFor("first exit", h.has("ContainerExited"))
	want := []time.Duration{0, 10, 20, 40, 80, 160, 300, 300}
	h.advanceUntil("restarts", 1000*time.Second, h.hasN("ContainerStarted", len(want)+1))
	starts, exits := h.all("ContainerStarted"), h.all("ContainerExited")
	for i, w := range want {
		h.near(fmt.Sprintf("back-off before restart %d", i+1), starts[i+1].Time.Sub(exits[i].Time), w*time.Second)
	}
	// Now backing off 5 min after the 9th exit.
	h.advanceUntil("ninth exit", 5*time.Second, h.hasN("ContainerExited", len(want)+1))
	h.waitFor("CrashLoopBackOff posted", func() bool {
		cs, _ := h.containerStatus("crash", "app")
		return cs.State.Waiting != nil && cs.RestartCount == int32(len(want))
	})
	cs, _ := h.containerStatus("crash", "app")
	if w := cs.State.Waiting; w.Reason != "CrashLoopBackOff" || !strings.Contains(w.Message, "back-off 5m0s restarting failed container=app pod=crash_default(crash-uid)") {
		t.Errorf("waiting %s: %q, want CrashLoopBackOff with back-off 5m0s", w.Reason, w.Message)
	}
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != "Error" {
		t.Errorf("lastState.terminated %+v, want exit 1 (Error)", lt)
	}

	t0 := h.deletePod("crash", 30)
	h.advanceUntil("pod deleted", 5*time.Second, h.has("PodDeleted"))
	h.near("delete of a pod in back-off", h.first("PodDeleted").Time.Sub(t0), 0)
	if n := h.count("ContainerStarted"); n != len(want)+1 {
		t.Errorf("%d starts, want no start after the deletion", n)
	}
}
