package kubelet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"zerodrop.dev/zerodrop/lab/labevent"
)

// The tests drive the kubelet twin on a fake clock: every timer it owns
// (probe periods, preStop sleeps, grace periods, back-off) fires only when
// the test steps the clock, so a 30 s grace period takes a few hundred
// milliseconds of real time and its edges are checked to one clock step.

const (
	testNode = "node-a"
	testNS   = "default"
	appImage = "registry.example/app:v1"
	zdImage  = "ghcr.io/acme/zerodrop:v1"
)

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testImages: "app" is a stand-in image whose files the fake runtime
// interprets; the zerodrop image is the project's own (no shell, durations
// scaled with the lab's clock).
func testImages() []Image {
	return append([]Image{{
		Match:      "app",
		Entrypoint: []string{"/app"},
		Files: map[string]string{
			"/app": "fake:app", "/bin/hook": "fake:hook", "/bin/probe": "fake:probe",
		},
	}}, DefaultImages("fake:zerodrop")...)
}

// sigRec is one signal a fake process received, with the fake clock's time.
type sigRec struct {
	sig syscall.Signal
	at  time.Time
}

// fakeProc is a container process, an exec hook or an exec probe. What it
// does depends on its host path and argv:
//
//	fake:app [ignore-term] [term-code=N]   serves until SIGTERM (exit N, default 0)
//	fake:app term-delay=D                  takes D to exit after SIGTERM
//	fake:app exit-after=D                  crashes (exit 1) after D
//	fake:zerodrop sleep D                  exits 0 after D
//	fake:zerodrop check ...                exits 0 at once
//	fake:zerodrop ...                      serves until SIGTERM (exit 0)
//	fake:hook hang | sleep=D | exit=N      an exec hook
//	fake:probe ...                         asks fakeRuntime.probe
//
// SIGKILL (Kill or Signal) always ends it with 128+9.
type fakeProc struct {
	rt      *fakeRuntime
	spec    ProcessSpec
	pid     int
	started time.Time

	ignoreTerm bool
	termCode   int
	termDelay  time.Duration

	mu      sync.Mutex
	signals []sigRec
	code    int
	ended   time.Time
	once    sync.Once
	done    chan struct{}
}

func (p *fakeProc) Pid() int { return p.pid }

func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.record(sig)
	switch {
	case sig == syscall.SIGKILL:
		p.exit(128 + 9)
	case sig == syscall.SIGTERM && !p.ignoreTerm:
		p.exitAfter(p.termDelay, p.termCode)
	}
	return nil
}

func (p *fakeProc) Kill() {
	p.record(syscall.SIGKILL)
	p.exit(128 + 9)
}

func (p *fakeProc) Done() <-chan struct{} { return p.done }

func (p *fakeProc) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

func (p *fakeProc) record(sig syscall.Signal) {
	now := p.rt.clock.Now()
	p.mu.Lock()
	p.signals = append(p.signals, sigRec{sig, now})
	p.mu.Unlock()
	p.rt.changes.Add(1)
}

func (p *fakeProc) exit(code int) {
	p.once.Do(func() {
		now := p.rt.clock.Now()
		p.mu.Lock()
		p.code, p.ended = code, now
		p.mu.Unlock()
		p.rt.changes.Add(1)
		close(p.done)
	})
}

// exitAfter ends the process after d of fake time. The clock runs the
// callback with its lock held, so the exit (which reads the clock) runs on
// its own goroutine.
func (p *fakeProc) exitAfter(d time.Duration, code int) {
	if d <= 0 {
		p.exit(code)
		return
	}
	p.rt.clock.AfterFunc(d, func() { go p.exit(code) })
}

// signalsOf returns the signals received so far.
func (p *fakeProc) signalsOf() []sigRec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sigRec(nil), p.signals...)
}

func (p *fakeProc) firstSignal(sig syscall.Signal) (time.Time, bool) {
	for _, s := range p.signalsOf() {
		if s.sig == sig {
			return s.at, true
		}
	}
	return time.Time{}, false
}

func (p *fakeProc) exited() (int, time.Time, bool) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.code, p.ended, true
	default:
		return 0, time.Time{}, false
	}
}

// fakeRuntime starts fakeProcs.
type fakeRuntime struct {
	clock   *testclock.FakeClock
	changes atomic.Int64

	mu    sync.Mutex
	procs []*fakeProc
	// probe decides an exec probe's run time (fake) and exit code.
	probe func(argv []string) (time.Duration, int)
}

func (r *fakeRuntime) Start(_ context.Context, spec ProcessSpec) (Process, error) {
	r.mu.Lock()
	p := &fakeProc{rt: r, spec: spec, pid: 1000 + len(r.procs), started: r.clock.Now(), done: make(chan struct{})}
	r.procs = append(r.procs, p)
	probe := r.probe
	r.mu.Unlock()
	r.changes.Add(1)
	args := spec.Argv[1:]
	switch spec.Path {
	case "fake:app":
		for _, a := range args {
			if a == "ignore-term" {
				p.ignoreTerm = true
			}
			if v, ok := strings.CutPrefix(a, "term-code="); ok {
				p.termCode, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(a, "term-delay="); ok {
				p.termDelay, _ = time.ParseDuration(v)
			}
			if v, ok := strings.CutPrefix(a, "exit-after="); ok {
				d, _ := time.ParseDuration(v)
				p.exitAfter(d, 1)
			}
		}
	case "fake:zerodrop":
		if len(args) >= 2 && args[0] == "sleep" {
			d, err := time.ParseDuration(args[1])
			if err != nil {
				p.exit(2)
				break
			}
			p.exitAfter(d, 0)
		}
		if len(args) >= 1 && args[0] == "check" {
			p.exit(0)
		}
	case "fake:hook":
		for _, a := range args {
			switch {
			case a == "hang":
			case strings.HasPrefix(a, "sleep="):
				d, _ := time.ParseDuration(strings.TrimPrefix(a, "sleep="))
				p.exitAfter(d, 0)
			case strings.HasPrefix(a, "exit="):
				code, _ := strconv.Atoi(strings.TrimPrefix(a, "exit="))
				p.exit(code)
			}
		}
	case "fake:probe":
		d, code := time.Duration(0), 0
		if probe != nil {
			d, code = probe(spec.Argv)
		}
		p.exitAfter(d, code)
	default:
		return nil, fmt.Errorf("fake runtime: no such program %q", spec.Path)
	}
	return p, nil
}

// started returns the processes started from host path (all when empty).
func (r *fakeRuntime) started(path string) []*fakeProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*fakeProc
	for _, p := range r.procs {
		if path == "" || p.spec.Path == path {
			out = append(out, p)
		}
	}
	return out
}

// hit is one HTTP request the pod's endpoints received.
type hit struct {
	path string
	at   time.Time
}

// harness is one kubelet on a fake clock with a fake clientset.
type harness struct {
	t      *testing.T
	clock  *testclock.FakeClock
	client *fake.Clientset
	events *labevent.Recorder
	rt     *fakeRuntime
	k      *Kubelet
	step   time.Duration

	// Health of the pod's HTTP endpoints /live and /ready.
	live, ready atomic.Bool
	// liveFrom, when set, makes /live fail before that fake time.
	liveFrom atomic.Pointer[time.Time]

	// inflight counts the kubelet's open connections to the pod (a probe
	// or hook request under way).
	inflight atomic.Int64

	mu     sync.Mutex
	hits   []hit
	dialed []string
}

// countedConn decrements a counter once when closed.
type countedConn struct {
	net.Conn
	n    *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.n.Add(-1) })
	return c.Conn.Close()
}

type harnessConfig struct {
	scale   float64
	step    time.Duration
	objects []runtime.Object
	// probe decides exec probes' results from the start (see fakeRuntime).
	probe func(argv []string) (time.Duration, int)
	// liveFrom makes /live fail before this fake time.
	liveFrom time.Time
	// liveDown makes /live fail from the start.
	liveDown bool
	// network sets pod addresses up and tears them down (nil: none).
	network PodNetwork
}

// start runs a kubelet for node-a with the given objects (pods bound to
// node-a among them) already in the fake API.
func start(t *testing.T, cfg harnessConfig) *harness {
	t.Helper()
	if cfg.step == 0 {
		cfg.step = 100 * time.Millisecond
	}
	h := &harness{
		t: t, clock: testclock.NewFakeClock(epoch), client: fake.NewClientset(cfg.objects...),
		events: &labevent.Recorder{}, step: cfg.step,
	}
	h.live.Store(!cfg.liveDown)
	h.ready.Store(true)
	if !cfg.liveFrom.IsZero() {
		h.liveFrom.Store(&cfg.liveFrom)
	}
	h.rt = &fakeRuntime{clock: h.clock, probe: cfg.probe}

	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hits = append(h.hits, hit{path: r.URL.Path, at: h.clock.Now()})
		h.mu.Unlock()
		ok := true
		switch r.URL.Path {
		case "/live":
			ok = h.live.Load()
			if from := h.liveFrom.Load(); from != nil && h.clock.Now().Before(*from) {
				ok = false
			}
		case "/ready":
			ok = h.ready.Load()
		}
		if !ok {
			http.Error(rw, "unhealthy", http.StatusInternalServerError)
			return
		}
		_, _ = rw.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.mu.Lock()
		h.dialed = append(h.dialed, addr)
		h.mu.Unlock()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
		if err != nil {
			return nil, err
		}
		h.inflight.Add(1)
		return &countedConn{Conn: conn, n: &h.inflight}, nil
	}
	k, err := New(h.client, Config{
		NodeName: testNode, PodRange: netip.MustParsePrefix("127.77.0.0/24"),
		Images: testImages(), Runtime: h.rt, Dial: dial, Clock: h.clock,
		TimeScale: cfg.scale, Dir: t.TempDir(), Events: h.events, Network: cfg.network,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.k = k
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("kubelet Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("kubelet did not stop within 20 s of its context ending")
		}
	})
	h.waitFor("node registered", h.has("NodeRegistered"))
	return h
}

// requests returns the HTTP requests to path received so far.
func (h *harness) requests(path string) []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hit
	for _, x := range h.hits {
		if x.path == path {
			out = append(out, x)
		}
	}
	return out
}

// dials returns the addresses the kubelet dialed.
func (h *harness) dials() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.dialed...)
}

// settle gives the kubelet's goroutines time to react to the last step: it
// waits until no HTTP request to the pod is under way and nothing
// observable (lab events, API calls, processes, signals, clock waiters)
// changed for a few polls in a row (at most about a second).
func (h *harness) settle() {
	snap := func() [4]int64 {
		return [4]int64{int64(len(h.events.Events())), int64(len(h.client.Actions())), h.rt.changes.Load(), int64(h.clock.Waiters())}
	}
	prev, quiet := snap(), 0
	for i := 0; i < 1000 && quiet < 3; i++ {
		time.Sleep(time.Millisecond)
		if cur := snap(); cur == prev && h.inflight.Load() == 0 {
			quiet++
		} else {
			prev, quiet = cur, 0
		}
	}
}

// advance steps the fake clock by d in steps of h.step.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.settle()
	for end := h.clock.Now().Add(d); h.clock.Now().Before(end); {
		h.clock.Step(min(h.step, end.Sub(h.clock.Now())))
		h.settle()
	}
}

// advanceUntil steps the fake clock until cond holds, at most limit; it
// fails the test if cond never holds.
func (h *harness) advanceUntil(what string, limit time.Duration, cond func() bool) {
	h.t.Helper()
	h.settle()
	for end := h.clock.Now().Add(limit); !cond(); {
		if !h.clock.Now().Before(end) {
			h.t.Fatalf("%s: not within %v of fake time (now %v); lab events:\n%s", what, limit, h.since(epoch), h.timeline())
		}
		h.clock.Step(h.step)
		h.settle()
	}
}

// waitFor waits in real time, without touching the clock, for cond.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within 15 s (real time); lab events:\n%s", what, h.timeline())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) since(t time.Time) time.Duration { return h.clock.Now().Sub(t) }

// all returns the lab events of kind (and container, when not empty).
func (h *harness) all(kind string) []labevent.Event {
	var out []labevent.Event
	for _, e := range h.events.Events() {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (h *harness) count(kind string) int { return len(h.all(kind)) }

// first returns the first lab event of kind, failing the test without one.
func (h *harness) first(kind string) labevent.Event {
	h.t.Helper()
	return h.nth(kind, 0)
}

func (h *harness) nth(kind string, n int) labevent.Event {
	h.t.Helper()
	evs := h.all(kind)
	if len(evs) <= n {
		h.t.Fatalf("no %s event #%d; lab events:\n%s", kind, n+1, h.timeline())
	}
	return evs[n]
}

func (h *harness) has(kind string) func() bool {
	return func() bool { return h.count(kind) > 0 }
}

func (h *harness) hasN(kind string, n int) func() bool {
	return func() bool { return h.count(kind) >= n }
}

// index is the position of the first event of kind in the stream (-1 if
// none).
func (h *harness) index(kind string) int {
	return slices.IndexFunc(h.events.Events(), func(e labevent.Event) bool { return e.Kind == kind })
}

// timeline renders the lab events relative to the epoch, for failure
// messages.
func (h *harness) timeline() string {
	var b strings.Builder
	for _, e := range h.events.Events() {
		fmt.Fprintf(&b, "  %8v %-20s %-6s %s %v\n", e.Time.Sub(epoch), e.Kind, e.Container, e.Message, e.Fields)
	}
	return b.String()
}

// near checks that got is want within one clock step.
func (h *harness) near(what string, got, want time.Duration) {
	h.t.Helper()
	if got < want-h.step || got > want+h.step {
		h.t.Errorf("%s at %v, want %v (± %v)\nlab events:\n%s", what, got, want, h.step, h.timeline())
	}
}

func (h *harness) pod(name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.client.CoreV1().Pods(testNS).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("getting pod %s: %v", name, err)
	}
	return p
}

// condition returns the pod's condition of type t as stored in the API.
func (h *harness) condition(name string, t corev1.PodConditionType) (corev1.PodCondition, bool) {
	for _, c := range h.pod(name).Status.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return corev1.PodCondition{}, false
}

func (h *harness) conditionIs(name string, t corev1.PodConditionType, s corev1.ConditionStatus) func() bool {
	return func() bool {
		c, ok := h.condition(name, t)
		return ok && c.Status == s
	}
}

// containerStatus returns the stored status of the pod's container.
func (h *harness) containerStatus(name, container string) (corev1.ContainerStatus, bool) {
	for _, cs := range h.pod(name).Status.ContainerStatuses {
		if cs.Name == container {
			return cs, true
		}
	}
	return corev1.ContainerStatus{}, false
}

func (h *harness) waitingReason(name, container string) string {
	cs, ok := h.containerStatus(name, container)
	if !ok || cs.State.Waiting == nil {
		return ""
	}
	return cs.State.Waiting.Reason
}

// deletePod does what the API server does on a graceful delete: it sets
// the deletion timestamp and grace period (the object stays until the
// kubelet's final delete). It returns the fake time of the deletion.
func (h *harness) deletePod(name string, grace int64) time.Time {
	h.t.Helper()
	h.settle()
	now := h.clock.Now()
	patch := fmt.Sprintf(`{"metadata":{"deletionTimestamp":%q,"deletionGracePeriodSeconds":%d}}`, now.Format(time.RFC3339), grace)
	if _, err := h.client.CoreV1().Pods(testNS).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		h.t.Fatalf("marking pod %s deleted: %v", name, err)
	}
	return now
}

// setPodCondition sets a condition through the status subresource, as a
// load-balancer controller does for a readiness gate.
func (h *harness) setPodCondition(name string, t corev1.PodConditionType, s corev1.ConditionStatus) {
	h.t.Helper()
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":%q,"lastTransitionTime":%q}]}}`, t, s, h.clock.Now().Format(time.RFC3339))
	if _, err := h.client.CoreV1().Pods(testNS).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		h.t.Fatalf("setting condition %s of pod %s: %v", t, name, err)
	}
}

// podDeletes returns the delete calls the kubelet made on pods.
func (h *harness) podDeletes() []k8stesting.DeleteActionImpl {
	var out []k8stesting.DeleteActionImpl
	for _, a := range h.client.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok && d.GetResource().Resource == "pods" {
			out = append(out, d)
		}
	}
	return out
}

// kubeEvents returns the Kubernetes Events recorded for pod name.
func (h *harness) kubeEvents(name string) []corev1.Event {
	list, err := h.client.CoreV1().Events(testNS).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatalf("listing events: %v", err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// hasKubeEvent reports whether pod name has an Event of type and reason
// whose message contains msg.
func (h *harness) hasKubeEvent(name, typ, reason, msg string) func() bool {
	return func() bool {
		for _, e := range h.kubeEvents(name) {
			if e.Type == typ && e.Reason == reason && strings.Contains(e.Message, msg) {
				return true
			}
		}
		return false
	}
}

// newPod is a pod bound to node-a with one container "app" of the app
// image and a 30 s grace period.
func newPod(name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: types.UID(name + "-uid")},
		Spec: corev1.PodSpec{
			NodeName:                      testNode,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			Containers: []corev1.Container{{
				Name: "app", Image: appImage,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8000}},
			}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func preStop(h corev1.LifecycleHandler) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &h} }
}

func args(a ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Args = a }
}

// appProc returns the n-th process of the container (not hooks or probes).
func (h *harness) appProc(n int) *fakeProc {
	h.t.Helper()
	var ps []*fakeProc
	for _, p := range h.rt.started("") {
		if p.spec.Path == "fake:app" || (p.spec.Path == "fake:zerodrop" && len(p.spec.Argv) > 1 && p.spec.Argv[1] == "serve") {
			ps = append(ps, p)
		}
	}
	if len(ps) <= n {
		h.t.Fatalf("container process #%d not started (%d started)", n+1, len(ps))
	}
	return ps[n]
}

func objs(o ...runtime.Object) []runtime.Object { return o }
