package lbc

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"zerodrop.dev/zerodrop/lab/labevent"
)

func userTGB(name, arn, service string, port any, multiCluster bool) *unstructured.Unstructured {
	spec := map[string]any{
		"targetGroupARN": arn, "targetType": "ip",
		"serviceRef": map[string]any{"name": service, "port": port},
	}
	if multiCluster {
		spec["multiClusterTargetGroup"] = true
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
		"metadata": map[string]any{"name": name, "namespace": "default", "generation": int64(1)},
		"spec":     spec,
	}}
	return u
}

func svcSlice(svc string, addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-abc", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8000))}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
	}
	return s
}

func service(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8000)}}}}
}

// User-made TargetGroupBindings as target sources: one sharing an
// Ingress's target group in multi-cluster mode adds its Service's targets
// there (after the same lag) and gets status.observedGeneration; one naming
// an unknown target group, and one claiming a bound target group without
// multi-cluster mode, get a Warning and register nothing.
func TestUserTargetGroupBindings(t *testing.T) {
	prefix := networkingv1.PathTypePrefix
	className := "alb"
	client := fake.NewSimpleClientset(
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "alb"}, Spec: networkingv1.IngressClassSpec{Controller: "ingress.k8s.aws/alb"}},
		service("web"), service("extra"), service("other"),
		svcSlice("web", "127.0.0.2"), svcSlice("extra", "127.0.0.4"), svcSlice("other", "127.0.0.5"),
		&networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{
				"alb.ingress.kubernetes.io/target-type": "ip", MultiClusterAnnotation: "true",
			}},
			Spec: networkingv1.IngressSpec{IngressClassName: &className, Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
			}}}}},
		},
	)
	tg := tgName("default", "web", "80")
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{TargetGroupBindingResource: "TargetGroupBindingList"},
		userTGB("extra", TargetGroupARN(tg), "extra", "http", true),
		userTGB("lost", TargetGroupARN("k8s-nowhere-1234567890"), "other", int64(80), true),
		userTGB("greedy", TargetGroupARN(tg), "other", int64(80), false),
	)
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rec := &labevent.Recorder{}
	c := New(Config{
		Client: client, Dynamic: dyn, Events: rec, Clock: fc, ListenPort: freePort(t),
		ReconcileLag: time.Second, APILatency: 500 * time.Millisecond, Propagation: time.Second,
		Address: func() (netip.Addr, error) { return netip.MustParseAddr("127.0.0.1"), nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	registered := func(target string) bool {
		for _, e := range rec.Events() {
			if e.Kind == "RegisterTargets" && strings.Contains(strings.Join(anyStrings(e.Fields["targets"]), " "), target) {
				return true
			}
		}
		return false
	}
	deregistered := func(target string) bool {
		for _, e := range rec.Events() {
			if e.Kind == "DeregisterTargets" && strings.Contains(strings.Join(anyStrings(e.Fields["targets"]), " "), target) {
				return true
			}
		}
		return false
	}
	advance := func(limit time.Duration, cond func() bool) bool {
		end := fc.Now().Add(limit)
		for !cond() && fc.Now().Before(end) {
			fc.Step(10 * time.Millisecond)
			time.Sleep(2 * time.Millisecond)
		}
		return cond()
	}
	if !advance(5*time.Second, func() bool { return registered("127.0.0.2:8000") && registered("127.0.0.4:8000") }) {
		t.Fatalf("the Ingress's and the shared binding's targets were not both registered; events:\n%s", dump(rec))
	}
	if registered("127.0.0.5:8000") {
		t.Errorf("a refused or unbound binding's Service (other) was registered")
	}
	failed := map[string]string{}
	for _, e := range rec.Events() {
		if e.Kind == "TargetGroupBindingFailed" {
			failed[e.Object] = e.Fields["reason"].(string)
		}
	}
	if failed["default/lost"] != "TargetGroupNotFound" || failed["default/greedy"] != "TargetGroupAlreadyBound" || len(failed) != 2 {
		t.Errorf("binding problems %v, want lost: TargetGroupNotFound, greedy: TargetGroupAlreadyBound", failed)
	}
	warnings := map[string]string{}
	evs, _ := client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	for _, e := range evs.Items {
		if e.InvolvedObject.Kind == "TargetGroupBinding" && e.Type == corev1.EventTypeWarning {
			warnings[e.InvolvedObject.Name] = e.Reason + ": " + e.Message
		}
	}
	if !strings.Contains(warnings["lost"], "not found") || !strings.Contains(warnings["greedy"], "already bound") {
		t.Errorf("Warning events on the bindings: %v", warnings)
	}
	got, err := dyn.Resource(TargetGroupBindingResource).Namespace("default").Get(ctx, "extra", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if og, _, _ := unstructured.NestedInt64(got.Object, "status", "observedGeneration"); og != 1 {
		t.Errorf("bound binding's status.observedGeneration = %d, want 1", og)
	}
	lost, _ := dyn.Resource(TargetGroupBindingResource).Namespace("default").Get(ctx, "lost", metav1.GetOptions{})
	if _, has, _ := unstructured.NestedInt64(lost.Object, "status", "observedGeneration"); has {
		t.Errorf("a binding with an unknown target group got an observedGeneration")
	}

	// The shared binding's endpoint goes away: deregistered after the lag;
	// the Ingress's own target stays.
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, svcSlice("extra"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	changed := fc.Now()
	if !advance(3*time.Second, func() bool { return deregistered("127.0.0.4:8000") }) {
		t.Fatalf("the shared binding's gone endpoint was not deregistered; events:\n%s", dump(rec))
	}
	for _, e := range rec.Events() {
		if e.Kind == "DeregisterTargets" && strings.Contains(strings.Join(anyStrings(e.Fields["targets"]), " "), "127.0.0.4:8000") {
			if d := e.Time.Sub(changed); d < 1500*time.Millisecond || d > 1700*time.Millisecond {
				t.Errorf("DeregisterTargets %s after the change, want the 1.5 s lag", d)
			}
		}
	}
	if deregistered("127.0.0.2:8000") {
		t.Errorf("the Ingress's own target was deregistered with the binding's")
	}
}

func dump(rec *labevent.Recorder) string {
	var b strings.Builder
	for _, e := range rec.Events() {
		b.WriteString(e.Kind + " " + e.Object + " " + e.Message + "\n")
	}
	return b.String()
}

func TestResolveBinding(t *testing.T) {
	ipTG := &targetGroup{name: "k8s-default-web-0123456789", namespace: "default", multiCluster: true}
	instTG := &targetGroup{name: "k8s-default-web-0123456789", namespace: "default", nodePort: 30080}
	for _, c := range []struct {
		name   string
		b      bindingSpec
		tg     *targetGroup
		holder string
		hmc    bool
		want   string
	}{
		{"unknown", bindingSpec{ARN: "arn:x"}, nil, "", false, "TargetGroupNotFound"},
		{"shared", bindingSpec{MultiCluster: true, TargetType: "ip"}, ipTG, "default/k8s-default-web-0123456789", true, ""},
		{"binding not multi-cluster", bindingSpec{}, ipTG, "default/k8s-default-web-0123456789", true, "TargetGroupAlreadyBound"},
		{"holder not multi-cluster", bindingSpec{MultiCluster: true}, instTG, "default/k8s-default-web-0123456789", false, "TargetGroupAlreadyBound"},
		{"unbound target group", bindingSpec{TargetType: "instance"}, instTG, "", false, ""},
		{"type mismatch", bindingSpec{TargetType: "ip"}, instTG, "", false, "InvalidTargetType"},
	} {
		p := resolveBinding(c.b, c.tg, c.holder, c.hmc)
		got := ""
		if p != nil {
			got = p.reason
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	for arn, want := range map[string]string{
		TargetGroupARN("k8s-a-b-0123456789"): "k8s-a-b-0123456789",
		"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-a-b-0123456789/73e2d6bc24d8a067": "",
		arnPrefix + "x/other": "",
	} {
		if got := (bindingSpec{ARN: arn}).targetGroupName(); got != want {
			t.Errorf("target group of %s: %q, want %q", arn, got, want)
		}
	}
	if got := (bindingSpec{TGName: "k8s-a-b-0123456789"}).targetGroupName(); got != "k8s-a-b-0123456789" {
		t.Errorf("spec.targetGroupName: %q", got)
	}
}

// The hostname passes the API server's check of
// status.loadBalancer.ingress[].hostname (a DNS-1123 subdomain, not an IP).
func TestHostnameIsValid(t *testing.T) {
	for _, g := range []string{"default/web", "Team.Shared_Group", "a/" + strings.Repeat("x", 80), "--/--", "1.2.3.4"} {
		h := Hostname(g)
		if errs := validation.IsDNS1123Subdomain(h); len(errs) > 0 {
			t.Errorf("Hostname(%q) = %q: %v", g, h, errs)
		}
		if !strings.HasSuffix(h, "."+HostnameDomain) {
			t.Errorf("Hostname(%q) = %q, not under %s", g, h, HostnameDomain)
		}
	}
	if Hostname("default/web") == Hostname("default/web2") {
		t.Error("two groups share a hostname")
	}
}
