package kubelet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
)

// kubeletConditions are the pod conditions the kubelet owns; others (the
// readiness gates' conditions, PodScheduled, DisruptionTarget) belong to
// other components and are left alone by the merge patch.
var kubeletConditions = []corev1.PodConditionType{
	corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady,
}

// status computes the pod status this node reports.
func (w *podWorker) status() corev1.PodStatus {
	pod := w.pod()
	st := corev1.PodStatus{
		PodIP:     w.ip.String(),
		PodIPs:    []corev1.PodIP{{IP: w.ip.String()}},
		HostIP:    w.k.nodeIP.String(),
		HostIPs:   []corev1.HostIP{{IP: w.k.nodeIP.String()}},
		StartTime: &metav1.Time{Time: w.startTime},
	}
	initDone, mainReady, anyRunning, allMainDone, allMainZero := true, true, false, true, true
	mainCount := 0
	for _, c := range w.containers {
		cs := w.containerStatus(c)
		if c.init {
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
			if (c.sidecar && !(c.phase == phaseRunning && c.started.Load())) || (!c.sidecar && !c.everSucceeded) {
				initDone = false
			}
			continue
		}
		mainCount++
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			mainReady = false
		}
		if c.phase == phaseRunning {
			anyRunning = true
		}
		if c.phase != phaseTerminated {
			allMainDone = false
		} else if c.exitCode != 0 {
			allMainZero = false
		}
	}
	if w.terminating && !anyRunning {
		initDone = initDone || true
	}
	switch {
	case w.terminating && !anyRunning && w.allStopped():
		st.Phase = corev1.PodFailed
		if allMainZero && allMainDone {
			st.Phase = corev1.PodSucceeded
		}
	case allMainDone && mainCount > 0 && w.restartPolicy() == corev1.RestartPolicyNever,
		allMainDone && mainCount > 0 && allMainZero && w.restartPolicy() == corev1.RestartPolicyOnFailure:
		st.Phase = corev1.PodFailed
		if allMainZero {
			st.Phase = corev1.PodSucceeded
		}
	case !initDone:
		st.Phase = corev1.PodPending
	case anyRunning || w.restartPolicy() != corev1.RestartPolicyNever:
		st.Phase = corev1.PodRunning
		if !anyRunning && !w.everStarted() {
			st.Phase = corev1.PodPending
		}
	default:
		st.Phase = corev1.PodPending
	}
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		status := corev1.ConditionFalse
		if ok {
			status, reason, msg = corev1.ConditionTrue, "", ""
		}
		c := corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg}
		c.LastTransitionTime = metav1.NewTime(w.k.clock.Now())
		for _, old := range pod.Status.Conditions {
			if old.Type == t && old.Status == status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	sandbox := !(w.terminating && !anyRunning && w.allStopped())
	containersReady := mainReady && initDone && mainCount > 0 && anyRunning
	notReady := w.notReadyNames()
	ready, readyReason, readyMsg := containersReady, "ContainersNotReady", "containers with unready status: ["+notReady+"]"
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		readyReason = "PodCompleted"
		readyMsg = ""
	}
	if ready {
		for _, gate := range pod.Spec.ReadinessGates {
			found := false
			for _, c := range pod.Status.Conditions {
				if c.Type == gate.ConditionType {
					found = true
					if c.Status != corev1.ConditionTrue {
						ready = false
						readyReason = "ReadinessGatesNotReady"
						readyMsg = fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %s", gate.ConditionType, c.Status)
					}
				}
			}
			if !found {
				ready = false
				readyReason = "ReadinessGatesNotReady"
				readyMsg = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", gate.ConditionType)
			}
		}
	}
	initReason := "ContainersNotInitialized"
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, sandbox, "", ""),
		cond(corev1.PodInitialized, initDone, initReason, "containers with incomplete status: [init]"),
		cond(corev1.ContainersReady, containersReady, readyReasonFor(st.Phase), "containers with unready status: ["+notReady+"]"),
		cond(corev1.PodReady, ready, readyReason, readyMsg),
	}
	return st
}

func readyReasonFor(phase corev1.PodPhase) string {
	if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		return "PodCompleted"
	}
	return "ContainersNotReady"
}

func (w *podWorker) allStopped() bool {
	for _, c := range w.containers {
		if c.phase == phaseRunning {
			return false
		}
	}
	return true
}

func (w *podWorker) everStarted() bool {
	for _, c := range w.containers {
		if !c.init && c.gen > 0 {
			return true
		}
	}
	return false
}

func (w *podWorker) notReadyNames() string {
	var names []string
	for _, c := range w.containers {
		if !c.init && !(c.phase == phaseRunning && c.ready) {
			names = append(names, c.spec.Name)
		}
	}
	return strings.Join(names, " ")
}

func (w *podWorker) containerStatus(c *container) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name: c.spec.Name, Image: c.spec.Image, ImageID: "zerodrop-lab://" + c.spec.Image,
		RestartCount: c.restarts, LastTerminationState: corev1.ContainerState{},
	}
	if c.last != nil && (c.phase != phaseTerminated || c.restarts > 0) {
		cs.LastTerminationState.Terminated = c.last
	}
	started := c.phase == phaseRunning && c.started.Load()
	cs.Started = &started
	switch c.phase {
	case phaseRunning:
		cs.ContainerID = fmt.Sprintf("zerodrop://%s-%s-%d", w.uid, c.spec.Name, c.gen)
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
		cs.Ready = c.ready && started
	case phaseTerminated:
		if c.waitReason == "CrashLoopBackOff" && !w.terminating {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: c.waitReason, Message: c.waitMessage}
			cs.LastTerminationState.Terminated = w.terminatedState(c)
		} else {
			cs.State.Terminated = w.terminatedState(c)
			cs.ContainerID = cs.State.Terminated.ContainerID
			if c.restarts == 0 || c.last == nil {
				cs.LastTerminationState = corev1.ContainerState{}
			}
		}
	default:
		reason := c.waitReason
		if reason == "" {
			reason = "ContainerCreating"
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: c.waitMessage}
	}
	return cs
}

// syncStatus writes the status through the status subresource as a
// strategic merge patch (conditions merge by type, so the readiness-gate
// conditions other components set stay), when it changed.
func (w *podWorker) syncStatus(ctx context.Context) error {
	if w.deleted || w.k.isLost() {
		return nil
	}
	select {
	case <-w.gone:
		return nil
	default:
	}
	st := w.status()
	patch := map[string]any{"status": st}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if string(body) == w.lastPatch {
		return nil
	}
	pod := w.pod()
	// The UID in the patch makes it fail rather than touch a pod that was
	// recreated with the same name.
	patch["metadata"] = map[string]any{"uid": string(w.uid)}
	full, _ := json.Marshal(patch)
	_, err = w.k.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, full, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patching status of %s: %w", w.key, err)
	}
	w.lastPatch = string(body)
	return nil
}

// probeLoop runs one probe of one container run (gen) until ctx ends,
// reporting each change of result (after the thresholds) to the worker.
func (w *podWorker) probeLoop(ctx context.Context, c *container, gen int, kind probeKind, p *corev1.Probe) {
	initial, period, timeout, successT, failureT := probeTimings(p)
	initial, period, timeout = w.k.scaled(initial), w.k.scaled(period), w.k.scaled(timeout)
	result := kind == livenessProbe // liveness starts as success, the others as failure
	var successes, failures int32
	if initial > 0 {
		select {
		case <-ctx.Done():
			return
		case <-w.k.clock.After(initial):
		}
	}
	ticker := w.k.clock.NewTicker(period)
	defer ticker.Stop()
	pod := w.pod()
	for {
		if kind == startupProbe || c.started.Load() {
			ok, msg := w.probeOnce(ctx, pod, &c.spec, p, timeout)
			if ctx.Err() != nil {
				return
			}
			if ok {
				successes, failures = successes+1, 0
			} else {
				failures, successes = failures+1, 0
				w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
				w.k.emit("ProbeFailed", w.key, c.spec.Name, msg, map[string]any{"probe": string(kind), "consecutive": failures})
			}
			switch {
			case !result && ok && successes >= successT:
				result = true
				w.send(workerEvent{kind: evProbe, c: c, gen: gen, probe: kind, ok: true})
				if kind == startupProbe {
					return // a startup probe stops once it succeeded
				}
			case result && !ok && failures >= failureT, !result && !ok && failures >= failureT && kind != readinessProbe:
				result = false
				failures = 0
				w.send(workerEvent{kind: evProbe, c: c, gen: gen, probe: kind, ok: false, msg: msg})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

func (w *podWorker) probeOnce(ctx context.Context, pod *corev1.Pod, c *corev1.Container, p *corev1.Probe, timeout time.Duration) (bool, string) {
	switch {
	case p.HTTPGet != nil:
		return httpGet(ctx, w.k.cfg.Dial, w.ip.String(), c, p.HTTPGet, timeout)
	case p.TCPSocket != nil:
		return tcpCheck(ctx, w.k.cfg.Dial, w.ip.String(), c, p.TCPSocket, timeout)
	case p.Exec != nil:
		// As the kubelet's ExpandContainerCommandOnlyStatic: $(VAR) against
		// the container's env values as written (a valueFrom one is "").
		vars := make(map[string]string, len(c.Env))
		for _, e := range c.Env {
			vars[e.Name] = e.Value
		}
		cmd := make([]string, len(p.Exec.Command))
		for i, a := range p.Exec.Command {
			cmd[i] = expansion.Expand(a, expansion.MappingFuncFor(vars))
		}
		code, out, err := w.exec(ctx, pod, c, cmd, timeout)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("command %q exited with %d: %s", joinArgs(p.Exec.Command), code, out)
		}
		return true, ""
	case p.GRPC != nil:
		return false, "gRPC probes are not supported by the lab's kubelet twin"
	}
	return false, "probe has no handler"
}

// exec runs a command in the container (its image's files, its env, the
// pod's address) for an exec probe or hook, cmd as given (the kubelet
// expands no $(VAR) in a hook's command, only static ones in a probe's).
// A zero timeout waits until ctx ends.
func (w *podWorker) exec(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cmd []string, timeout time.Duration) (int, string, error) {
	if len(cmd) == 0 {
		return -1, "", fmt.Errorf("empty command")
	}
	image, err := ResolveImage(w.k.cfg.Images, c.Image)
	if err != nil {
		return -1, "", err
	}
	path, err := image.Lookup(cmd[0])
	if err != nil {
		return -1, "", err
	}
	env, err := w.containerEnv(ctx, pod, c, image.ScaleDurations)
	if err != nil {
		return -1, "", err
	}
	argv := cmd
	if image.ScaleDurations {
		argv = ScaleArgv(argv, w.k.cfg.TimeScale)
	}
	var out bytes.Buffer
	dir := filepath.Join(w.k.podDir(pod), c.Name)
	_ = os.MkdirAll(dir, 0o755)
	p, err := w.k.cfg.Runtime.Start(ctx, ProcessSpec{Path: path, Argv: argv, Env: env, Dir: dir, Log: &limitedBuffer{buf: &out, max: 4096}})
	if err != nil {
		return -1, "", err
	}
	var expire <-chan time.Time
	if timeout > 0 {
		expire = w.k.clock.After(timeout)
	}
	select {
	case <-p.Done():
		return p.ExitCode(), strings.TrimSpace(out.String()), nil
	case <-ctx.Done():
		p.Kill()
		<-p.Done()
		return -1, "", ctx.Err()
	case <-expire:
		p.Kill()
		<-p.Done()
		return -1, "", fmt.Errorf("command timed out after %s", timeout)
	}
}

type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func joinArgs(a []string) string { return strings.Join(a, " ") }
