package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	scalefake "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"zerodrop.dev/zerodrop/load"
)

// cluster is a fake API behind client-go's fake scale client: workloads
// with replicas, and a log of every scale call in order.
type cluster struct {
	mu       sync.Mutex
	replicas map[string]int32 // RESOURCE.GROUP/NAME
	calls    []string         // "get deployments.apps/x", "patch apps/v1, Resource=deployments/x {...}", "sessions N"
	patches  []k8stesting.PatchAction
	failNext int // patches to refuse with Forbidden
}

func newCluster(t *testing.T) (*cluster, *ScaleClient) {
	t.Helper()
	c := &cluster{replicas: map[string]int32{}}
	fc := &scalefake.FakeScaleClient{}
	fc.AddReactor("get", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		g := a.(k8stesting.GetAction)
		if g.GetSubresource() != "scale" {
			return true, nil, fmt.Errorf("get without the scale subresource")
		}
		key := g.GetResource().GroupResource().String() + "/" + g.GetName()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls = append(c.calls, "get "+key)
		n, ok := c.replicas[key]
		if !ok {
			return true, nil, apierrors.NewNotFound(g.GetResource().GroupResource(), g.GetName())
		}
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: g.GetName(), Namespace: g.GetNamespace()},
			Spec: autoscalingv1.ScaleSpec{Replicas: n}}, nil
	})
	fc.AddReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		key := p.GetResource().GroupResource().String() + "/" + p.GetName()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls = append(c.calls, fmt.Sprintf("patch %s/%s %s", p.GetResource(), p.GetSubresource(), p.GetPatch()))
		if c.failNext > 0 {
			c.failNext--
			return true, nil, apierrors.NewForbidden(p.GetResource().GroupResource(), p.GetName(), errors.New("RBAC says no"))
		}
		c.patches = append(c.patches, p)
		var body struct {
			Spec struct {
				Replicas *int32 `json:"replicas"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(p.GetPatch(), &body); err != nil || body.Spec.Replicas == nil {
			return true, nil, fmt.Errorf("bad patch %s: %v", p.GetPatch(), err)
		}
		c.replicas[key] = *body.Spec.Replicas
		return true, &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: *body.Spec.Replicas}}, nil
	})
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}, meta.RESTScopeNamespace)
	return c, &ScaleClient{Scales: fc, Mapper: mapper}
}

func (c *cluster) set(key string, n int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replicas[key] = n
}

func (c *cluster) get(key string) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicas[key]
}

func (c *cluster) sessions() SessionsFunc {
	return func(_ context.Context, n int) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls = append(c.calls, fmt.Sprintf("sessions %d", n))
		return nil
	}
}

func (c *cluster) takeCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// run starts a Simulator on a fake clock and returns its events as they
// come, and a function that waits for Run to return.
type running struct {
	t      *testing.T
	clock  *clocktesting.FakeClock
	events chan Event
	done   chan error
	cancel context.CancelFunc
}

func start(t *testing.T, cfg Config, clk *clocktesting.FakeClock) *running {
	t.Helper()
	r := &running{t: t, clock: clk, events: make(chan Event, 1000), done: make(chan error, 1)}
	cfg.Clock = clk
	cfg.Events = func(ev Event) { r.events <- ev }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// next returns the next event (the bound only keeps a broken test from
// hanging; nothing here depends on real time).
func (r *running) next() Event {
	r.t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(20 * time.Second):
		r.t.Fatal("no event")
		return Event{}
	}
}

func (r *running) nextKind(kind EventKind) Event {
	r.t.Helper()
	ev := r.next()
	if ev.Kind != kind {
		r.t.Fatalf("event %s (%+v), want %s", ev.Kind, ev, kind)
	}
	return ev
}

// advance moves the fake clock by d once the simulator is waiting on it.
func (r *running) advance(d time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !r.clock.HasWaiters() {
		if time.Now().After(deadline) {
			r.t.Fatal("the simulator never waited on its clock")
		}
		time.Sleep(time.Millisecond)
	}
	r.clock.Step(d)
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// One whole default cycle and the first step of the next: each step reads
// the scale subresource and patches it only when the replicas change, with
// a merge patch of spec.replicas; the sessions follow; when demand falls,
// the sessions shrink before the app.
func TestSimulatorScalesThroughTheScaleSubresource(t *testing.T) {
	cl, sc := newCluster(t)
	cl.set("deployments.apps/logistics", 3)
	tg, _ := ParseTarget("deployment/logistics")
	r := start(t, Config{Cycle: DefaultCycle(), Namespace: "shop", Target: tg, Scaler: sc, Sessions: cl.sessions()},
		clocktesting.NewFakeClock(t0))
	r.nextKind(EventStart)
	for step := range 20 {
		ev := r.nextKind(EventStep)
		i := step % 19
		if ev.Point.Step != step || ev.Point.Replicas != seedReplicas[i] || ev.Point.Sessions != seedSessions[i] {
			t.Fatalf("step %d: %+v", step, ev.Point)
		}
		want := []string{"get deployments.apps/logistics"}
		if ev.PrevReplicas != int32(seedReplicas[i]) {
			want = append(want, fmt.Sprintf(`patch apps/v1, Resource=deployments/scale {"spec":{"replicas":%d}}`, seedReplicas[i]))
		}
		want = append(want, fmt.Sprintf("sessions %d", seedSessions[i]))
		if step > 0 && ev.Point.Demand < DefaultCycle().PointAt(step-1).Demand {
			want = append(want[len(want)-1:], want[:len(want)-1]...) // sessions first
		}
		if got := cl.takeCalls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("step %d calls:\n%s\nwant:\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if got := cl.get("deployments.apps/logistics"); got != int32(seedReplicas[i]) {
			t.Errorf("step %d: deployment has %d replicas, want %d", step, got, seedReplicas[i])
		}
		if step < 19 {
			r.advance(time.Minute)
		}
	}
	// Steps 9 and 10 both want 21 replicas: no patch for step 10; step 0
	// of the second period (1 replica) is a patch again.
	if len(cl.patches) != 19 {
		t.Errorf("%d patches, want 19 (20 steps, one unchanged)", len(cl.patches))
	}
	for _, p := range cl.patches {
		if p.GetPatchType() != types.MergePatchType || p.GetSubresource() != "scale" || p.GetNamespace() != "shop" {
			t.Errorf("patch %s %s in %s", p.GetPatchType(), p.GetSubresource(), p.GetNamespace())
		}
	}
}

// A Rollout is scaled the same way, at its own API version.
func TestSimulatorScalesARollout(t *testing.T) {
	cl, sc := newCluster(t)
	cl.set("rollouts.argoproj.io/logistics", 1)
	tg, _ := ParseTarget("rollout/logistics")
	c := DefaultCycle()
	c.Profile = load.Constant{Value: 1}
	r := start(t, Config{Cycle: c, Namespace: "shop", Target: tg, Scaler: sc}, clocktesting.NewFakeClock(t0))
	r.nextKind(EventStart)
	r.nextKind(EventStep)
	want := []string{"get rollouts.argoproj.io/logistics", `patch argoproj.io/v1alpha1, Resource=rollouts/scale {"spec":{"replicas":21}}`}
	if got := cl.takeCalls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The state ConfigMap: a new cycle creates it, each step updates it, and a
// restart resumes where the clock is, keeping the cycle's start.
func TestSimulatorResumesFromTheConfigMap(t *testing.T) {
	cl, sc := newCluster(t)
	cl.set("deployments.apps/logistics", 1)
	tg, _ := ParseTarget("deployment/logistics")
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(t0)
	cfg := Config{Cycle: DefaultCycle(), Namespace: "shop", Target: tg, Scaler: sc, Client: cs, StateConfigMap: "simulate-state"}
	r := start(t, cfg, clk)
	r.nextKind(EventStart)
	r.nextKind(EventStep)
	r.advance(time.Minute)
	r.nextKind(EventStep)
	r.advance(time.Minute)
	if ev := r.nextKind(EventStep); ev.Point.Step != 2 {
		t.Fatalf("step %d", ev.Point.Step)
	}
	r.cancel()
	<-r.done
	r.done <- nil // for the cleanup
	cm, err := cs.CoreV1().ConfigMaps("shop").Get(context.Background(), "simulate-state", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["start"] != "2026-12-03T10:00:00Z" || cm.Data["step"] != "2" || cm.Data["cycle"] != DefaultCycle().String() {
		t.Errorf("state %v", cm.Data)
	}

	// Down for 3.5 minutes: the new process starts at step 5 (3, 4
	// skipped), from the stored start, not from its own.
	clk.Step(3*time.Minute + 30*time.Second)
	cl.takeCalls()
	r2 := start(t, cfg, clk)
	ev := r2.nextKind(EventResume)
	if !ev.Start.Equal(t0) || ev.Point.Step != 5 || !strings.Contains(ev.Detail, "last step applied 2") {
		t.Errorf("resume event %+v", ev)
	}
	ev = r2.nextKind(EventStep)
	if ev.Point.Step != 5 || ev.Skipped != 2 || ev.Point.Replicas != seedReplicas[5] || cl.get("deployments.apps/logistics") != int32(seedReplicas[5]) {
		t.Errorf("first step after the restart %+v; deployment at %d", ev, cl.get("deployments.apps/logistics"))
	}
	// The next step comes at the stored cycle's boundary: 30 s later.
	r2.advance(30 * time.Second)
	if ev := r2.nextKind(EventStep); ev.Point.Step != 6 {
		t.Errorf("step %d after 30 s", ev.Point.Step)
	}
	r2.cancel()
	<-r2.done
	r2.done <- nil

	// A restart within the same step applies it again: one read, no patch.
	cl.takeCalls()
	r3 := start(t, cfg, clk)
	r3.nextKind(EventResume)
	if ev := r3.nextKind(EventStep); ev.Point.Step != 6 || ev.Skipped != 0 {
		t.Errorf("re-applied step %+v", ev)
	}
	if got := cl.takeCalls(); len(got) != 1 || !strings.HasPrefix(got[0], "get ") {
		t.Errorf("re-applying the same step made calls %v, want one read", got)
	}
}

// A state the simulator cannot read stops it before it scales anything.
func TestSimulatorRefusesAnUnreadableState(t *testing.T) {
	cl, sc := newCluster(t)
	tg, _ := ParseTarget("deployment/logistics")
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "st", Namespace: "shop"},
		Data: map[string]string{"start": "yesterday", "step": "3"}})
	s, err := New(Config{Cycle: DefaultCycle(), Namespace: "shop", Target: tg, Scaler: sc, Client: cs, StateConfigMap: "st",
		Clock: clocktesting.NewFakeClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `key start: "yesterday" is not an RFC 3339 time`) {
		t.Errorf("Run: %v", err)
	}
	if calls := cl.takeCalls(); len(calls) != 0 {
		t.Errorf("scaled with an unreadable state: %v", calls)
	}
}

// A refused patch is an error event and a metric; the step is retried
// after RetryInterval and then applied.
func TestSimulatorRetriesAFailedStep(t *testing.T) {
	cl, sc := newCluster(t)
	cl.set("deployments.apps/logistics", 3)
	cl.failNext = 1
	tg, _ := ParseTarget("deployment/logistics")
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, Config{Cycle: DefaultCycle(), Namespace: "shop", Target: tg, Scaler: sc, Metrics: m,
		RetryInterval: 5 * time.Second}, clocktesting.NewFakeClock(t0))
	r.nextKind(EventStart)
	ev := r.nextKind(EventError)
	if !strings.Contains(ev.Error, "RBAC says no") || !strings.Contains(ev.Error, "scaling deployments.apps/logistics in shop to 1") {
		t.Errorf("error event %+v", ev)
	}
	if v := testutil.ToFloat64(m.scaleErrors.WithLabelValues("app")); v != 1 {
		t.Errorf("scale errors %v", v)
	}
	r.advance(5 * time.Second)
	if ev := r.nextKind(EventStep); ev.Point.Step != 0 || cl.get("deployments.apps/logistics") != 1 {
		t.Errorf("retry: %+v, deployment at %d", ev, cl.get("deployments.apps/logistics"))
	}
	if v := testutil.ToFloat64(m.replicas); v != 1 {
		t.Errorf("replicas wanted %v", v)
	}
	r.advance(55 * time.Second) // the next step comes on the cycle's boundary
	if ev := r.nextKind(EventStep); ev.Point.Step != 1 || !ev.Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("after the retry: %+v", ev)
	}
	if v := testutil.ToFloat64(m.sessions); v != 17 {
		t.Errorf("sessions wanted %v", v)
	}
}

// Duration ends Run by itself.
func TestSimulatorStopsAfterDuration(t *testing.T) {
	cl, _ := newCluster(t)
	r := start(t, Config{Cycle: DefaultCycle(), Sessions: cl.sessions(), Duration: 90 * time.Second}, clocktesting.NewFakeClock(t0))
	r.nextKind(EventStart)
	r.nextKind(EventStep)
	r.advance(time.Minute)
	r.nextKind(EventStep)
	r.advance(30 * time.Second)
	if ev := r.nextKind(EventStop); ev.Point.Step != 1 {
		t.Errorf("stop %+v", ev)
	}
	if err := <-r.done; err != nil {
		t.Error(err)
	}
	r.done <- nil
}

// A load Deployment runs PerPod sessions per pod, rounded up.
func TestLoadDeployment(t *testing.T) {
	cl, sc := newCluster(t)
	cl.set("deployments.apps/load", 0)
	tg, _ := ParseTarget("deployment/load")
	l := LoadDeployment{Scaler: sc, Namespace: "shop", Target: tg, PerPod: 10}
	for _, tc := range []struct{ sessions, pods int }{{101, 11}, {100, 10}, {1, 1}, {0, 0}} {
		if err := l.SetSessions(context.Background(), tc.sessions); err != nil {
			t.Fatal(err)
		}
		if got := cl.get("deployments.apps/load"); got != int32(tc.pods) {
			t.Errorf("%d sessions: %d pods, want %d", tc.sessions, got, tc.pods)
		}
	}
	if err := (LoadDeployment{Scaler: sc, Target: tg}).SetSessions(context.Background(), 5); err == nil {
		t.Error("zero sessions per pod accepted")
	}
}

func TestEMFLines(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, 10)
	p := DefaultCycle().PointAt(9)
	e.Event(Event{Kind: EventStart, Time: t0})
	e.Event(Event{Kind: EventStep, Time: t0.Add(9 * time.Minute), Point: p})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("lines %q", lines)
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		AppWorkers  int     `json:"app_workers"`
		Sessions    int     `json:"sessions"`
		LoadWorkers int     `json:"load_workers"`
		Demand      float64 `json:"demand"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &doc); err != nil {
		t.Fatal(err)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if d.Namespace != "appsimulator" || doc.AWS.Timestamp != t0.Add(9*time.Minute).UnixMilli() || len(d.Metrics) != 4 {
		t.Errorf("directive %+v at %d", d, doc.AWS.Timestamp)
	}
	if doc.AppWorkers != 21 || doc.Sessions != 101 || doc.LoadWorkers != 11 {
		t.Errorf("values %+v", doc)
	}
}
