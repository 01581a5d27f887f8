package lbc

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

type ep struct {
	ip                          string
	ready, serving, terminating *bool
	pod                         string
}

func slice(port string, portNum int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(port), Port: ptr(portNum)}},
	}
	for _, e := range eps {
		d := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating}}
		if e.pod != "" {
			d.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: e.pod}
		}
		s.Endpoints = append(s.Endpoints, d)
	}
	return s
}

func gatedPod(name, node string, containersReady bool, deleting bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: corev1.PodSpec{NodeName: node, ReadinessGates: []corev1.PodReadinessGate{
			{ConditionType: "target-health.elbv2.k8s.aws/k8s-ns-web-0123456789"}}},
	}
	status := corev1.ConditionFalse
	if containersReady {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: status}}
	if deleting {
		p.DeletionTimestamp = &metav1.Time{}
	}
	return p
}

func node(name string, ready bool) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}}}
}

func TestIPTargets(t *testing.T) {
	pods := map[string]*corev1.Pod{
		"gated-ok":         gatedPod("gated-ok", "n1", true, false),
		"gated-notready":   gatedPod("gated-notready", "n1", false, false),
		"gated-badnode":    gatedPod("gated-badnode", "n2", true, false),
		"gated-deleting":   gatedPod("gated-deleting", "n1", true, true),
		"ungated-notready": {ObjectMeta: metav1.ObjectMeta{Name: "ungated-notready", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}}}},
	}
	nodes := map[string]*corev1.Node{"n1": node("n1", true), "n2": node("n2", false)}
	lookupPod := func(ns, name string) *corev1.Pod { return pods[name] }
	lookupNode := func(name string) *corev1.Node { return nodes[name] }
	tests := []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		want   []Target
	}{
		{"ready endpoints", []*discoveryv1.EndpointSlice{slice("http", 8000,
			ep{ip: "10.244.1.2", ready: ptr(true)}, ep{ip: "10.244.1.3", ready: ptr(true)})},
			[]Target{{Addr: "10.244.1.2:8000", Reason: "ready"}, {Addr: "10.244.1.3:8000", Reason: "ready"}}},
		{"ready unset counts as ready", []*discoveryv1.EndpointSlice{slice("http", 8000, ep{ip: "10.244.1.2"})},
			[]Target{{Addr: "10.244.1.2:8000", Reason: "ready"}}},
		{"terminating leaves the set even while serving", []*discoveryv1.EndpointSlice{slice("http", 8000,
			ep{ip: "10.244.1.2", ready: ptr(false), serving: ptr(true), terminating: ptr(true), pod: "gated-ok"})}, nil},
		{"not ready and not gated stays out", []*discoveryv1.EndpointSlice{slice("http", 8000,
			ep{ip: "10.244.1.2", ready: ptr(false), pod: "ungated-notready"})}, nil},
		{"held back only by its gate: registered", []*discoveryv1.EndpointSlice{slice("http", 8000,
			ep{ip: "10.244.1.2", ready: ptr(false), pod: "gated-ok"})},
			[]Target{{Addr: "10.244.1.2:8000", Pod: "ns/gated-ok", Reason: "ready-containers-pending-gates"}}},
		{"gated but containers not ready", []*discoveryv1.EndpointSlice{slice("http", 8000,
			ep{ip: "10.244.1.2", ready: ptr(false), pod: "gated-notready"})}, nil},
		{"gated on a node that is not Ready", []*discoveryv1.EndpointSlice{slice("http", 8000,
			ep{ip: "10.244.1.2", ready: ptr(false), pod: "gated-badnode"})}, nil},
		{"gated pod being deleted", []*discoveryv1.EndpointSlice{slice("http", 8000,
			ep{ip: "10.244.1.2", ready: ptr(false), pod: "gated-deleting"})}, nil},
		{"other port name ignored", []*discoveryv1.EndpointSlice{slice("metrics", 9090, ep{ip: "10.244.1.2", ready: ptr(true)})}, nil},
		{"same address in two slices once", []*discoveryv1.EndpointSlice{
			slice("http", 8000, ep{ip: "10.244.1.2", ready: ptr(true)}),
			slice("http", 8000, ep{ip: "10.244.1.2", ready: ptr(true)})},
			[]Target{{Addr: "10.244.1.2:8000", Reason: "ready"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := IPTargets(tc.slices, "http", lookupPod, lookupNode)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTargetGroupNames(t *testing.T) {
	a, b := tgName("default", "orders", "80"), tgName("default", "orders", "http")
	if a == b {
		t.Errorf("two ports of one Service share the target group name %s", a)
	}
	long := tgName("a-very-long-namespace", "a-very-long-service-name", "80")
	if len(long) > 32 {
		t.Errorf("target group name %q longer than the ALB's 32 characters", long)
	}
}
