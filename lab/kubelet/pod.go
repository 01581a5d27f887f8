package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Kubernetes constants the termination chain depends on.
const (
	// minimumGracePeriod is what a container gets after SIGTERM when its
	// preStop hook used up the grace period (the kubelet's one-off 2 s).
	minimumGracePeriod = 2 * time.Second
	initialBackoff     = 10 * time.Second
	maxBackoff         = 300 * time.Second
	backoffReset       = 10 * time.Minute
)

type containerPhase int

const (
	phaseWaiting containerPhase = iota
	phaseRunning
	phaseTerminated
)

// container is the worker's record of one container.
type container struct {
	spec    corev1.Container
	init    bool
	sidecar bool // an init container with restartPolicy Always

	phase         containerPhase
	waitReason    string
	waitMessage   string
	proc          Process
	gen           int
	startedAt     time.Time
	finishedAt    time.Time
	exitCode      int
	termReason    string
	termMessage   string
	restarts      int32
	last          *corev1.ContainerStateTerminated
	ready         bool
	started       atomic.Bool // startup probe passed (or none)
	probeCancel   context.CancelFunc
	backoff       time.Duration
	restartAt     time.Time
	killing       bool // a kill is in progress (liveness or termination)
	restartOnExit bool // the kill was a liveness/startup restart
	everSucceeded bool // init container finished with 0
}

type eventKind int

const (
	evExited eventKind = iota
	evProbe
	evKillDone
)

type workerEvent struct {
	kind  eventKind
	c     *container
	gen   int
	probe probeKind
	ok    bool
	msg   string
}

// podWorker runs one pod. Only its run goroutine touches the containers.
type podWorker struct {
	k   *Kubelet
	ip  netip.Addr
	uid types.UID
	key string

	mu      sync.Mutex
	latest  *corev1.Pod
	kick    chan struct{}
	gone    chan struct{}
	goneSet sync.Once
	done    chan struct{}
	events  chan workerEvent

	containers  []*container
	startTime   time.Time
	terminating bool
	deadline    time.Time
	grace       time.Duration
	lastPatch   string
	deleted     bool
	netDown     bool // the sandbox's network is torn down
}

func newPodWorker(k *Kubelet, pod *corev1.Pod, ip netip.Addr) *podWorker {
	w := &podWorker{
		k: k, ip: ip, uid: pod.UID, key: pod.Namespace + "/" + pod.Name,
		latest: pod, kick: make(chan struct{}, 1), gone: make(chan struct{}),
		done: make(chan struct{}), events: make(chan workerEvent, 64),
	}
	for _, c := range pod.Spec.InitContainers {
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		w.containers = append(w.containers, &container{spec: c, init: true, sidecar: sidecar, waitReason: "PodInitializing"})
	}
	for _, c := range pod.Spec.Containers {
		reason := "ContainerCreating"
		if len(pod.Spec.InitContainers) > 0 {
			reason = "PodInitializing"
		}
		w.containers = append(w.containers, &container{spec: c, waitReason: reason})
	}
	return w
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.latest = pod
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *podWorker) removed() { w.goneSet.Do(func() { close(w.gone) }) }

func (w *podWorker) pod() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

func (w *podWorker) send(ev workerEvent) {
	select {
	case w.events <- ev:
	case <-w.done:
	}
}

// run is the pod's whole life on this node.
func (w *podWorker) run(ctx context.Context) {
	defer close(w.done)
	defer w.teardownNetwork()
	pod := w.pod()
	w.startTime = w.k.clock.Now()
	if err := os.MkdirAll(w.k.podDir(pod), 0o755); err != nil {
		w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "creating pod directory: %v", err)
	}
	w.k.emit("PodAdmitted", w.key, "", "pod bound to this node", map[string]any{"podIP": w.ip.String()})
	retry := w.k.clock.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		w.step(ctx)
		if w.finished() {
			return
		}
		if err := w.syncStatus(ctx); err != nil && ctx.Err() == nil {
			w.k.log.Debug("pod status", "pod", w.key, "err", err)
		}
		wait := w.nextWake()
		retry.Reset(wait)
		select {
		case <-ctx.Done():
			w.abandon()
			return
		case <-w.kick:
		case ev := <-w.events:
			w.handle(ev)
		case <-w.gone:
			if !w.terminating {
				// Force-deleted: the object is gone; stop with no grace.
				w.beginTermination(0)
			}
		case <-retry.C():
		}
	}
}

// nextWake is when the worker must look again without an event: a pending
// restart, or a status write to retry.
func (w *podWorker) nextWake() time.Duration {
	wake := time.Second
	now := w.k.clock.Now()
	for _, c := range w.containers {
		if !c.restartAt.IsZero() {
			if d := c.restartAt.Sub(now); d < wake {
				wake = max(d, time.Millisecond)
			}
		}
	}
	return wake
}

// abandon kills every process at once: the node is gone or the lab stops.
func (w *podWorker) abandon() {
	for _, c := range w.containers {
		if c.probeCancel != nil {
			c.probeCancel()
		}
		if c.proc != nil {
			c.proc.Kill()
			<-c.proc.Done()
		}
	}
}

// step advances the state machine after anything changed.
func (w *podWorker) step(ctx context.Context) {
	pod := w.pod()
	if pod.DeletionTimestamp != nil && !w.terminating {
		grace := int64(30)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		w.beginTermination(time.Duration(grace) * time.Second)
	}
	if w.terminating {
		w.continueTermination()
		return
	}
	now := w.k.clock.Now()
	// Init containers in order; a sidecar counts as done once started.
	for _, c := range w.containers {
		if !c.init {
			continue
		}
		if c.sidecar {
			if c.phase != phaseRunning {
				w.maybeStart(ctx, c, now)
				return
			}
			if !c.started.Load() {
				return
			}
			continue
		}
		if c.everSucceeded {
			continue
		}
		if c.phase != phaseRunning {
			w.maybeStart(ctx, c, now)
		}
		return
	}
	for _, c := range w.containers {
		if !c.init && c.phase != phaseRunning {
			w.maybeStart(ctx, c, now)
		}
	}
}

func (w *podWorker) restartPolicy() corev1.RestartPolicy {
	p := w.pod().Spec.RestartPolicy
	if p == "" {
		return corev1.RestartPolicyAlways
	}
	return p
}

// maybeStart starts c unless it is backing off or must not restart.
func (w *podWorker) maybeStart(ctx context.Context, c *container, now time.Time) {
	if c.killing {
		return
	}
	if c.phase == phaseTerminated || c.waitReason == "ErrImagePull" || c.waitReason == "CrashLoopBackOff" ||
		c.waitReason == "ImagePullBackOff" || c.waitReason == "CreateContainerConfigError" {
		if !c.init || c.sidecar {
			if c.phase == phaseTerminated && !w.shouldRestart(c) {
				return
			}
		} else if c.phase == phaseTerminated && w.restartPolicy() == corev1.RestartPolicyNever {
			return
		}
		if now.Before(c.restartAt) {
			return
		}
	}
	w.start(ctx, c)
}

func (w *podWorker) shouldRestart(c *container) bool {
	if c.restartOnExit {
		return w.restartPolicy() != corev1.RestartPolicyNever || c.sidecar
	}
	if c.sidecar {
		return true
	}
	switch w.restartPolicy() {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return c.exitCode != 0
	}
	return true
}

func (w *podWorker) start(ctx context.Context, c *container) {
	pod := w.pod()
	now := w.k.clock.Now()
	image, err := ResolveImage(w.k.cfg.Images, c.spec.Image)
	if err != nil {
		reason := "ErrImagePull"
		if c.waitReason == "ErrImagePull" || c.waitReason == "ImagePullBackOff" {
			reason = "ImagePullBackOff"
			w.k.recorder.Eventf(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.spec.Image)
		} else {
			w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", c.spec.Image, err)
			w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		}
		c.phase, c.waitReason, c.waitMessage = phaseWaiting, reason, err.Error()
		w.backoff(c, now)
		return
	}
	env, err := w.containerEnv(ctx, pod, &c.spec, image.ScaleDurations)
	if err != nil {
		w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		c.phase, c.waitReason, c.waitMessage = phaseWaiting, "CreateContainerConfigError", err.Error()
		w.backoff(c, now)
		return
	}
	argv := image.Argv(expandArgs(c.spec.Command, env), expandArgs(c.spec.Args, env))
	if len(argv) == 0 {
		w.failStart(c, now, "no command specified")
		return
	}
	path, err := image.Lookup(argv[0])
	if err != nil {
		w.failStart(c, now, err.Error())
		return
	}
	if image.ScaleDurations {
		argv = ScaleArgv(argv, w.k.cfg.TimeScale)
	}
	dir := filepath.Join(w.k.podDir(pod), c.spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.failStart(c, now, err.Error())
		return
	}
	logFile, err := os.OpenFile(filepath.Join(w.k.podDir(pod), c.spec.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.failStart(c, now, err.Error())
		return
	}
	if c.restarts == 0 && c.gen == 0 {
		w.k.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.spec.Image)
	}
	w.k.recorder.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container: %s", c.spec.Name)
	p, err := w.k.cfg.Runtime.Start(ctx, ProcessSpec{Path: path, Argv: argv, Env: env, Dir: dir, Log: logFile})
	if err != nil {
		logFile.Close()
		w.failStart(c, now, err.Error())
		return
	}
	if c.gen > 0 || c.phase == phaseTerminated {
		c.restarts++
	}
	c.gen++
	gen := c.gen
	c.proc, c.phase, c.startedAt, c.waitReason, c.waitMessage = p, phaseRunning, now, "", ""
	c.ready, c.killing, c.restartOnExit, c.restartAt = false, false, false, time.Time{}
	c.started.Store(c.spec.StartupProbe == nil)
	w.k.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.spec.Name)
	w.k.emit("ContainerStarted", w.key, c.spec.Name, "", map[string]any{"pid": p.Pid(), "restarts": c.restarts, "podIP": w.ip.String()})
	go func() {
		<-p.Done()
		logFile.Close()
		w.send(workerEvent{kind: evExited, c: c, gen: gen})
	}()
	probeCtx, cancel := context.WithCancel(ctx)
	c.probeCancel = cancel
	for _, pr := range []struct {
		kind  probeKind
		probe *corev1.Probe
	}{{startupProbe, c.spec.StartupProbe}, {livenessProbe, c.spec.LivenessProbe}, {readinessProbe, c.spec.ReadinessProbe}} {
		if pr.probe != nil {
			go w.probeLoop(probeCtx, c, gen, pr.kind, pr.probe)
		}
	}
	if c.spec.ReadinessProbe == nil {
		c.ready = true
	}
}

// failStart records a container the runtime could not start (as the
// runtime's StartError) and schedules the back-off.
func (w *podWorker) failStart(c *container, now time.Time, msg string) {
	pod := w.pod()
	w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: failed to create containerd task: failed to start container %q: %s", c.spec.Name, msg)
	if c.gen > 0 || c.phase == phaseTerminated {
		c.restarts++
	}
	c.gen++
	c.phase, c.exitCode, c.termReason, c.termMessage = phaseTerminated, 128, "StartError", msg
	c.startedAt, c.finishedAt = time.Time{}, now
	w.k.emit("ContainerStartFailed", w.key, c.spec.Name, msg, nil)
	w.backoff(c, now)
}

// backoff schedules the next start: at once after the first failure, then
// 10 s doubling to 5 min (scaled), reset after 10 min of good running.
func (w *podWorker) backoff(c *container, now time.Time) {
	if !c.startedAt.IsZero() && now.Sub(c.startedAt) > w.k.scaled(backoffReset) {
		c.backoff = 0
	}
	switch {
	case c.backoff == 0:
		c.backoff = w.k.scaled(initialBackoff)
		c.restartAt = now
		if c.waitReason == "ErrImagePull" || c.waitReason == "CreateContainerConfigError" {
			c.restartAt = now.Add(c.backoff)
		}
		return
	default:
		c.restartAt = now.Add(c.backoff)
		c.backoff = min(2*c.backoff, w.k.scaled(maxBackoff))
	}
}

func (w *podWorker) handle(ev workerEvent) {
	c := ev.c
	if ev.gen != c.gen {
		return // a previous run of the container
	}
	pod := w.pod()
	now := w.k.clock.Now()
	switch ev.kind {
	case evExited:
		if c.probeCancel != nil {
			c.probeCancel()
		}
		c.phase, c.finishedAt, c.exitCode = phaseTerminated, now, c.proc.ExitCode()
		c.ready = false
		c.started.Store(false)
		c.termReason = "Error"
		if c.exitCode == 0 {
			c.termReason = "Completed"
		}
		c.last = w.terminatedState(c)
		w.k.emit("ContainerExited", w.key, c.spec.Name, "", map[string]any{"exitCode": c.exitCode, "during": map[bool]string{true: "termination", false: "running"}[w.terminating]})
		c.killing = false
		if c.init && !c.sidecar && c.exitCode == 0 {
			c.everSucceeded = true
			return
		}
		if w.terminating {
			return
		}
		if w.shouldRestart(c) || (c.init && !c.sidecar && w.restartPolicy() != corev1.RestartPolicyNever) {
			if c.restartAt.IsZero() || !c.restartAt.After(now) {
				w.backoff(c, now)
			}
			if c.restartAt.After(now) {
				c.phase, c.waitReason = phaseWaiting, "CrashLoopBackOff"
				c.waitMessage = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					c.restartAt.Sub(now), c.spec.Name, pod.Name, pod.Namespace, pod.UID)
				w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.spec.Name, pod.Name, pod.Namespace, pod.UID)
			}
		}
	case evProbe:
		switch ev.probe {
		case readinessProbe:
			if c.ready != ev.ok {
				c.ready = ev.ok
				w.k.emit("ReadinessChanged", w.key, c.spec.Name, ev.msg, map[string]any{"ready": ev.ok})
			}
		case startupProbe:
			if ev.ok {
				c.started.Store(true)
			} else if !c.killing && !w.terminating {
				w.k.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Container %s failed startup probe, will be restarted", c.spec.Name)
				w.kill(c, w.probeGrace(c.spec.StartupProbe), true, nil)
			}
		case livenessProbe:
			if !ev.ok && !c.killing && !w.terminating {
				w.k.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Container %s failed liveness probe, will be restarted", c.spec.Name)
				w.kill(c, w.probeGrace(c.spec.LivenessProbe), true, nil)
			}
		}
	case evKillDone:
	}
}

func (w *podWorker) probeGrace(p *corev1.Probe) time.Duration {
	if p != nil && p.TerminationGracePeriodSeconds != nil {
		return time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
	}
	if g := w.pod().Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

func (w *podWorker) terminatedState(c *container) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode: int32(c.exitCode), Reason: c.termReason, Message: c.termMessage,
		StartedAt: metav1.NewTime(c.startedAt), FinishedAt: metav1.NewTime(c.finishedAt),
		ContainerID: fmt.Sprintf("zerodrop://%s-%s-%d", w.uid, c.spec.Name, c.gen),
	}
}

// beginTermination starts the grace countdown: it begins now, before any
// preStop hook, as in the kubelet.
func (w *podWorker) beginTermination(grace time.Duration) {
	w.terminating = true
	w.grace = w.k.scaled(grace)
	w.deadline = w.k.clock.Now().Add(w.grace)
	w.k.emit("PodTerminating", w.key, "", "deletion observed; grace period starts", map[string]any{
		"graceSeconds": w.grace.Seconds(),
	})
	for _, c := range w.containers {
		c.restartAt = time.Time{}
	}
}

// continueTermination stops every running container at once, as the
// kubelet's killContainersWithSyncResult does: all preStop hooks start
// now; a native sidecar then waits for its turn (every main container,
// then the sidecars declared after it, exited) before its SIGTERM, within
// the grace period. The pod is deleted once nothing runs.
func (w *podWorker) continueTermination() {
	var mains []<-chan struct{}
	for _, c := range w.containers {
		if !c.init && c.phase == phaseRunning {
			mains = append(mains, c.proc.Done())
		}
	}
	var later []<-chan struct{} // the next running sidecar in spec order
	for i := len(w.containers) - 1; i >= 0; i-- {
		c := w.containers[i]
		if c.phase != phaseRunning {
			if c.phase == phaseWaiting {
				c.waitReason = "" // never to start again
			}
			continue
		}
		var after []<-chan struct{}
		if c.sidecar {
			after = append(append(after, mains...), later...)
			later = []<-chan struct{}{c.proc.Done()}
		}
		if !c.killing || c.restartOnExit {
			w.kill(c, w.remainingGrace(), false, after)
		}
	}
}

func (w *podWorker) remainingGrace() time.Duration {
	return max(0, w.deadline.Sub(w.k.clock.Now()))
}

// finished reports whether the pod's life here is over: terminated and
// deleted (or gone from the API).
func (w *podWorker) finished() bool {
	if !w.terminating {
		return false
	}
	for _, c := range w.containers {
		if c.phase == phaseRunning {
			return false
		}
	}
	// Every container has exited: the sandbox goes, and its address with it
	// (before the final delete, as the kubelet stops the sandbox first).
	w.teardownNetwork()
	select {
	case <-w.gone:
		w.k.emit("PodDeleted", w.key, "", "pod object removed", nil)
		return true
	default:
	}
	if w.deleted {
		return false // wait for the informer to see the deletion
	}
	// Final status, then the final delete with the pod's UID as precondition.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.syncStatus(ctx); err != nil {
		w.k.log.Debug("final pod status", "pod", w.key, "err", err)
	}
	pod := w.pod()
	err := w.k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &w.uid},
	})
	if err != nil && !isGone(err) {
		w.k.log.Warn("deleting pod", "pod", w.key, "err", err)
		return false
	}
	w.deleted = true
	w.k.emit("PodDeleted", w.key, "", "final delete after all containers stopped", nil)
	return true
}

// teardownNetwork tears the pod's address down once (see PodNetwork).
func (w *podWorker) teardownNetwork() {
	if w.netDown || w.k.cfg.Network == nil {
		return
	}
	w.netDown = true
	if err := w.k.cfg.Network.Down(w.ip); err != nil {
		w.k.log.Warn("tearing down pod network", "pod", w.key, "ip", w.ip, "err", err)
		return
	}
	w.k.emit("PodNetworkTornDown", w.key, "", "", map[string]any{"podIP": w.ip.String()})
}

// kill stops c as the kubelet's killContainer does: preStop within the
// grace period, then (a sidecar) waiting until every channel of after is
// closed or the grace period is over, then SIGTERM, then SIGKILL when the
// rest of the grace period (at least 2 s) has passed.
func (w *podWorker) kill(c *container, grace time.Duration, restart bool, after []<-chan struct{}) {
	if c.proc == nil || c.phase != phaseRunning {
		return
	}
	c.killing, c.restartOnExit = true, restart
	if restart {
		grace = w.k.scaled(grace)
	}
	pod := w.pod()
	proc, gen := c.proc, c.gen
	if !restart {
		w.k.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.spec.Name)
	}
	spec := c.spec
	go func() {
		start := w.k.clock.Now()
		if spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
			w.k.emit("PreStopStarted", w.key, spec.Name, "", map[string]any{"graceSeconds": grace.Seconds()})
			hookCtx, cancel := context.WithCancel(context.Background())
			done := make(chan hookResult, 1)
			go func() { done <- w.runHook(hookCtx, pod, &spec, spec.Lifecycle.PreStop) }()
			select {
			case r := <-done:
				if r.err != nil {
					w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", r.err)
				}
				w.k.emit("PreStopFinished", w.key, spec.Name, errString(r.err), map[string]any{"seconds": w.k.clock.Since(start).Seconds()})
			case <-w.k.clock.After(grace):
				w.k.emit("PreStopTimedOut", w.key, spec.Name, "preStop hook still running when the grace period ended", map[string]any{"seconds": grace.Seconds()})
			case <-proc.Done():
			}
			defer cancel() // an exec hook is the container's: it dies with it
		}
		if left := grace - w.k.clock.Since(start); len(after) > 0 && left > 0 {
			turn := w.k.clock.After(left)
		wait:
			for _, ch := range after {
				select {
				case <-ch:
				case <-turn:
					break wait
				case <-proc.Done():
					break wait
				}
			}
		}
		remaining := grace - w.k.clock.Since(start)
		if remaining < w.k.scaled(minimumGracePeriod) {
			remaining = w.k.scaled(minimumGracePeriod)
		}
		w.k.emit("SIGTERM", w.key, spec.Name, "", map[string]any{"killAfterSeconds": remaining.Seconds()})
		_ = proc.Signal(syscall.SIGTERM)
		select {
		case <-proc.Done():
		case <-w.k.clock.After(remaining):
			w.k.emit("SIGKILL", w.key, spec.Name, "grace period over", nil)
			if remaining > 0 {
				w.k.recorder.Eventf(pod, corev1.EventTypeWarning, "ExceededGracePeriod", "Container runtime did not kill the pod within specified grace period.")
			}
			proc.Kill()
			<-proc.Done()
		}
		w.send(workerEvent{kind: evKillDone, c: c, gen: gen})
	}()
}

type hookResult struct{ err error }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runHook runs a lifecycle hook to completion or until ctx ends.
func (w *podWorker) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, h *corev1.LifecycleHandler) hookResult {
	switch {
	case h.Exec != nil:
		code, out, err := w.exec(ctx, pod, c, h.Exec.Command, 0)
		if err != nil {
			return hookResult{err: fmt.Errorf("command '%s' failed: %w", joinArgs(h.Exec.Command), err)}
		}
		if code != 0 {
			return hookResult{err: fmt.Errorf("command '%s' exited with %d: %s", joinArgs(h.Exec.Command), code, out)}
		}
		return hookResult{}
	case h.HTTPGet != nil:
		ok, msg := httpGet(ctx, w.k.cfg.Dial, w.ip.String(), c, h.HTTPGet, 24*time.Hour)
		if !ok {
			return hookResult{err: errors.New(msg)}
		}
		return hookResult{}
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-w.k.clock.After(w.k.scaled(time.Duration(h.Sleep.Seconds) * time.Second)):
		}
		return hookResult{}
	case h.TCPSocket != nil:
		return hookResult{err: errors.New("tcpSocket lifecycle handlers are not run by the kubelet")}
	}
	return hookResult{err: errors.New("empty lifecycle handler")}
}

func isGone(err error) bool {
	var status interface{ Status() metav1.Status }
	if errors.As(err, &status) {
		code := status.Status().Code
		return code == 404 || code == 409
	}
	return false
}
