package lbc

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"net/netip"

	"zerodrop.dev/zerodrop/lab/labevent"
)

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func endpointSlice(terminating3 bool) *discoveryv1.EndpointSlice {
	ready3, term3 := !terminating3, terminating3
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(""), Port: ptr(int32(8000))}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"127.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
			{Addresses: []string{"127.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready3, Terminating: &term3}},
		},
	}
}

// The lag pipeline on a fake clock: a target change reaches the ALB API
// exactly reconcile lag + API latency after the controller saw it, never
// before.
// lagHarness runs the controller on a fake clock against a fake API with
// one Service "web" behind an ip-mode Ingress and the given EndpointSlice.
type lagHarness struct {
	client  *fake.Clientset
	fc      *clocktesting.FakeClock
	rec     *labevent.Recorder
	ctx     context.Context
	find    func(kind, target string) (time.Time, bool)
	advance func(limit time.Duration, cond func() bool)
}

func newLagHarness(t *testing.T, slice *discoveryv1.EndpointSlice) *lagHarness {
	t.Helper()
	prefix := networkingv1.PathTypePrefix
	className := "alb"
	client := fake.NewSimpleClientset(
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "alb"}, Spec: networkingv1.IngressClassSpec{Controller: "ingress.k8s.aws/alb"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8000)}}}},
		slice,
		&networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{
				"alb.ingress.kubernetes.io/target-type": "ip",
			}},
			Spec: networkingv1.IngressSpec{IngressClassName: &className, Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
			}}}}},
		},
	)
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rec := &labevent.Recorder{}
	c := New(Config{
		Client: client, Events: rec, Clock: fc, ListenPort: freePort(t),
		ReconcileLag: time.Second, APILatency: 500 * time.Millisecond, Propagation: time.Second,
		Address: func() (netip.Addr, error) { return netip.MustParseAddr("127.0.0.1"), nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	find := func(kind, target string) (time.Time, bool) {
		for _, e := range rec.Events() {
			if e.Kind == kind && (target == "" || strings.Contains(e.Object+" "+strings.Join(anyStrings(e.Fields["targets"]), " "), target)) {
				return e.Time, true
			}
		}
		return time.Time{}, false
	}
	// advance steps the fake clock until cond holds or limit passes.
	advance := func(limit time.Duration, cond func() bool) {
		t.Helper()
		end := fc.Now().Add(limit)
		for !cond() && fc.Now().Before(end) {
			fc.Step(10 * time.Millisecond)
			time.Sleep(2 * time.Millisecond)
		}
	}
	return &lagHarness{client: client, fc: fc, rec: rec, ctx: ctx, find: find, advance: advance}
}

func TestLagPipeline(t *testing.T) {
	h := newLagHarness(t, endpointSlice(false))
	client, fc, rec, ctx, find, advance := h.client, h.fc, h.rec, h.ctx, h.find, h.advance
	advance(5*time.Second, func() bool { _, ok := find("LoadBalancerCreated", ""); return ok })
	created, ok := find("LoadBalancerCreated", "")
	if !ok {
		t.Fatalf("no load balancer created; events %+v", rec.Events())
	}
	advance(3*time.Second, func() bool { _, ok := find("RegisterTargets", "127.0.0.3:8000"); return ok })
	reg, ok := find("RegisterTargets", "127.0.0.3:8000")
	if !ok {
		t.Fatalf("targets never registered; events %+v", rec.Events())
	}
	if d := reg.Sub(created); d < 1500*time.Millisecond || d > 1600*time.Millisecond {
		t.Errorf("RegisterTargets %s after the load balancer, want reconcile lag + API latency (1.5 s)", d)
	}

	// The endpoint terminates: deregistration follows after the same lag.
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, endpointSlice(true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the informer sees the update
	changed := fc.Now()
	advance(3*time.Second, func() bool { _, ok := find("DeregisterTargets", "127.0.0.3:8000"); return ok })
	dereg, ok := find("DeregisterTargets", "127.0.0.3:8000")
	if !ok {
		t.Fatalf("terminating target never deregistered; events %+v", rec.Events())
	}
	if d := dereg.Sub(changed); d < 1500*time.Millisecond || d > 1700*time.Millisecond {
		t.Errorf("DeregisterTargets %s after the endpoint terminated, want the 1.5 s lag (+ the 50 ms coalescing)", d)
	}
	if _, again := find("DeregisterTargets", "127.0.0.2:8000"); again {
		t.Errorf("the ready endpoint was deregistered too")
	}
}

func anyStrings(v any) []string {
	switch s := v.(type) {
	case []string:
		return s
	case []any:
		var out []string
		for _, x := range s {
			if str, ok := x.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

// A target whose endpoint comes back while it is still draining cannot be
// registered again (the API refuses the whole call): it must not hold
// back a new target registered in the same reconcile.
func TestDrainingTargetDoesNotBlockNewOnes(t *testing.T) {
	h := newLagHarness(t, endpointSlice(false))
	h.advance(5*time.Second, func() bool { _, ok := h.find("RegisterTargets", "127.0.0.3:8000"); return ok })
	if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(h.ctx, endpointSlice(true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	h.advance(5*time.Second, func() bool { _, ok := h.find("DeregisterTargets", "127.0.0.3:8000"); return ok })
	if _, ok := h.find("DeregisterTargets", "127.0.0.3:8000"); !ok {
		t.Fatalf("no deregistration; events %+v", h.rec.Events())
	}
	h.advance(2*time.Second, func() bool { return false }) // the API shows it draining (300 s default delay)

	// The endpoint is ready again (a readiness flap) and a new one appears.
	back := endpointSlice(false)
	back.Endpoints = append(back.Endpoints, discoveryv1.Endpoint{Addresses: []string{"127.0.0.4"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
	if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(h.ctx, back, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	registered := func(addr string) bool {
		for _, e := range h.rec.Events() {
			if e.Kind == "RegisterTargets" && e.Message == "" && strings.Contains(strings.Join(anyStrings(e.Fields["targets"]), " "), addr) {
				return true
			}
		}
		return false
	}
	h.advance(5*time.Second, func() bool { return registered("127.0.0.4:8000") })
	if !registered("127.0.0.4:8000") {
		t.Fatalf("the new target was never registered; events %+v", h.rec.Events())
	}
	for _, e := range h.rec.Events() {
		if e.Kind == "RegisterTargets" && e.Message != "" {
			t.Errorf("a RegisterTargets call was refused: %s", e.Message)
		}
	}
}

// A reconcile that replaces every target of a group (Argo Rollouts
// switching a Service's selector at promotion) sends its RegisterTargets
// before its DeregisterTargets, so the group never has none registered.
// The calls used to go out on two timers of the same delay, whose order
// was a coin toss; eight swaps in a row catch that with odds of 255/256.
func TestReplacedTargetsRegisterBeforeDeregister(t *testing.T) {
	h := newLagHarness(t, endpointSlice(false))
	h.advance(5*time.Second, func() bool { _, ok := h.find("RegisterTargets", "127.0.0.3:8000"); return ok })
	oldSet := []string{"127.0.0.2", "127.0.0.3"}
	for swap := 1; swap <= 8; swap++ {
		// Fresh addresses each time: a draining target is not registered again.
		newSet := []string{fmt.Sprintf("127.0.1.%d", 2*swap), fmt.Sprintf("127.0.1.%d", 2*swap+1)}
		slice := endpointSlice(false)
		slice.Endpoints = nil
		for _, a := range newSet {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
		}
		seen := len(h.rec.Events())
		if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(h.ctx, slice, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		// index finds the first call of a kind at or after seen naming target.
		index := func(kind, target string) int {
			for i, e := range h.rec.Events()[seen:] {
				if e.Kind == kind && strings.Contains(strings.Join(anyStrings(e.Fields["targets"]), " "), target) {
					return seen + i
				}
			}
			return -1
		}
		h.advance(5*time.Second, func() bool {
			return index("DeregisterTargets", oldSet[0]+":8000") >= 0 && index("RegisterTargets", newSet[0]+":8000") >= 0
		})
		reg, dereg := index("RegisterTargets", newSet[0]+":8000"), index("DeregisterTargets", oldSet[0]+":8000")
		if reg < 0 || dereg < 0 || reg > dereg {
			t.Fatalf("swap %d (%v → %v): RegisterTargets at event %d, DeregisterTargets at %d; want the registration first", swap, oldSet, newSet, reg, dereg)
		}
		oldSet = newSet
	}
}
