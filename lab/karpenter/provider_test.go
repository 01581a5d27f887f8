//go:build !nolab

package karpenter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/awslabs/operatorpkg/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	v1 "sigs.k8s.io/karpenter/pkg/apis/v1"
	"sigs.k8s.io/karpenter/pkg/cloudprovider"

	"zerodrop.dev/zerodrop/lab"
)

// fakeNodes is the lab's node set for the provider's tests.
type fakeNodes struct {
	mu      sync.Mutex
	nodes   map[string]lab.NodeSpec
	added   chan string
	removed []string
	failAdd error
}

func newFakeNodes() *fakeNodes {
	return &fakeNodes{nodes: map[string]lab.NodeSpec{}, added: make(chan string, 16)}
}

func (f *fakeNodes) AddNode(spec lab.NodeSpec) (lab.NodeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAdd != nil {
		return lab.NodeInfo{}, f.failAdd
	}
	if _, dup := f.nodes[spec.Name]; dup {
		return lab.NodeInfo{}, fmt.Errorf("node %s already exists", spec.Name)
	}
	f.nodes[spec.Name] = spec
	f.added <- spec.Name
	return lab.NodeInfo{Name: spec.Name}, nil
}

func (f *fakeNodes) RemoveNode(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nodes[name]; !ok {
		return fmt.Errorf("no node %q", name)
	}
	delete(f.nodes, name)
	f.removed = append(f.removed, name)
	return nil
}

func (f *fakeNodes) Status() (lab.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st lab.Status
	for name, spec := range f.nodes {
		st.Nodes = append(st.Nodes, lab.NodeInfo{Name: name, ProviderID: spec.ProviderID, Labels: spec.Labels})
	}
	return st, nil
}

func (f *fakeNodes) spec(name string) (lab.NodeSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.nodes[name]
	return s, ok
}

func nodeClass(name string, ready bool) *LabNodeClass {
	nc := &LabNodeClass{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if ready {
		nc.StatusConditions().SetTrue(status.ConditionReady)
	} else {
		nc.StatusConditions().SetFalse(status.ConditionReady, "Broken", "the test broke it")
	}
	return nc
}

func kubeWith(objs ...client.Object) client.Client {
	Register()
	return fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(objs...).Build()
}

func newProvider(t *testing.T, nodes Nodes, kube client.Client, clk *clocktesting.FakeClock) *CloudProvider {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{Catalog: lab.DefaultInstanceTypes(), Nodes: nodes, Kube: kube,
		LaunchLatency: 2 * time.Second, RegistrationLatency: 15 * time.Second}
	if clk != nil {
		cfg.Clock = clk
	} else {
		cfg.LaunchLatency, cfg.RegistrationLatency = 0, 0
	}
	p, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); p.Wait() })
	return p
}

// claim is a NodeClaim as Karpenter's provisioner makes it.
func claim(name string, cpu string, reqs ...v1.NodeSelectorRequirementWithMinValues) *v1.NodeClaim {
	return &v1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.NodePoolLabelKey: "default", "team": "orders", "node-role.kubernetes.io/app": ""}},
		Spec: v1.NodeClaimSpec{
			NodeClassRef: &v1.NodeClassReference{Group: Group, Kind: "LabNodeClass", Name: "default"},
			Requirements: append([]v1.NodeSelectorRequirementWithMinValues{
				req(v1.NodePoolLabelKey, "default"),
			}, reqs...),
			Resources: v1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
		},
	}
}

func req(key string, values ...string) v1.NodeSelectorRequirementWithMinValues {
	return v1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}}
}

func TestCatalogToInstanceTypes(t *testing.T) {
	types, err := InstanceTypes(lab.DefaultInstanceTypes())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]string{"lab.small": {"2", "4Gi", "20"}, "lab.medium": {"4", "8Gi", "40"}, "lab.large": {"8", "16Gi", "110"}}
	if len(types) != len(want) {
		t.Fatalf("%d instance types, want %d", len(types), len(want))
	}
	for _, it := range types {
		w, ok := want[it.Name]
		if !ok {
			t.Fatalf("unexpected instance type %s", it.Name)
		}
		alloc := it.Allocatable()
		if alloc.Cpu().String() != w[0] || alloc.Memory().String() != w[1] || alloc.Pods().String() != w[2] {
			t.Errorf("%s allocatable cpu=%s memory=%s pods=%s, want %v", it.Name, alloc.Cpu(), alloc.Memory(), alloc.Pods(), w)
		}
		if len(it.Offerings) != 6 {
			t.Errorf("%s has %d offerings, want 6 (3 zones × on-demand, spot)", it.Name, len(it.Offerings))
		}
		zones := it.Requirements.Get(corev1.LabelTopologyZone).Values()
		sort.Strings(zones)
		if fmt.Sprint(zones) != "[lab-a lab-b lab-c]" {
			t.Errorf("%s zones %v", it.Name, zones)
		}
		var spot, onDemand float64
		for _, o := range it.Offerings {
			switch o.Requirements.Get(v1.CapacityTypeLabelKey).Any() {
			case v1.CapacityTypeSpot:
				spot = o.Price
			case v1.CapacityTypeOnDemand:
				onDemand = o.Price
			}
		}
		if !(spot > 0 && spot < onDemand) {
			t.Errorf("%s: spot %g should be cheaper than on-demand %g", it.Name, spot, onDemand)
		}
		if got := it.Requirements.Get(corev1.LabelArchStable).Any(); got != "amd64" {
			t.Errorf("%s arch %s", it.Name, got)
		}
	}
}

func TestCreateChoosesCheapestCompatibleOffering(t *testing.T) {
	cases := []struct {
		name     string
		cpu      string
		reqs     []v1.NodeSelectorRequirementWithMinValues
		wantType string
		wantCap  string
		wantZone string
	}{
		{"fits small, on-demand only", "1", []v1.NodeSelectorRequirementWithMinValues{
			req(corev1.LabelInstanceTypeStable, "lab.small", "lab.medium", "lab.large"),
			req(v1.CapacityTypeLabelKey, "on-demand"), req(corev1.LabelTopologyZone, "lab-b")},
			"lab.small", "on-demand", "lab-b"},
		{"needs 3 cpu: medium", "3", []v1.NodeSelectorRequirementWithMinValues{
			req(corev1.LabelInstanceTypeStable, "lab.small", "lab.medium", "lab.large"),
			req(v1.CapacityTypeLabelKey, "on-demand"), req(corev1.LabelTopologyZone, "lab-c")},
			"lab.medium", "on-demand", "lab-c"},
		{"spot allowed: spot", "1", []v1.NodeSelectorRequirementWithMinValues{
			req(corev1.LabelInstanceTypeStable, "lab.medium", "lab.large"),
			req(v1.CapacityTypeLabelKey, "on-demand", "spot")},
			"lab.medium", "spot", "lab-a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nodes := newFakeNodes()
			p := newProvider(t, nodes, kubeWith(nodeClass("default", true)), nil)
			got, err := p.Create(context.Background(), claim("default-abc", tc.cpu, tc.reqs...))
			if err != nil {
				t.Fatal(err)
			}
			if got.Labels[corev1.LabelInstanceTypeStable] != tc.wantType || got.Labels[v1.CapacityTypeLabelKey] != tc.wantCap || got.Labels[corev1.LabelTopologyZone] != tc.wantZone {
				t.Fatalf("launched %s %s %s, want %s %s %s", got.Labels[corev1.LabelInstanceTypeStable], got.Labels[v1.CapacityTypeLabelKey],
					got.Labels[corev1.LabelTopologyZone], tc.wantType, tc.wantCap, tc.wantZone)
			}
			if got.Status.ProviderID != "lab://default-abc" {
				t.Errorf("provider ID %q", got.Status.ProviderID)
			}
			select {
			case <-nodes.added:
			case <-time.After(10 * time.Second):
				t.Fatal("the node was never added to the lab")
			}
			spec, _ := nodes.spec("default-abc")
			if spec.ProviderID != "lab://default-abc" || spec.Labels[corev1.LabelInstanceTypeStable] != tc.wantType || spec.Labels[corev1.LabelTopologyZone] != tc.wantZone {
				t.Errorf("node spec %+v", spec)
			}
			if len(spec.Taints) != 1 || !spec.Taints[0].MatchTaint(&v1.UnregisteredNoExecuteTaint) {
				t.Errorf("node taints %v, want only %s", spec.Taints, v1.UnregisteredTaintKey)
			}
			if spec.Labels["team"] != "orders" {
				t.Errorf("the NodeClaim's own label team is missing: %v", spec.Labels)
			}
			if _, ok := spec.Labels["node-role.kubernetes.io/app"]; ok {
				t.Errorf("a label NodeRestriction refuses to a kubelet was passed: %v", spec.Labels)
			}
		})
	}
}

func TestCreateRefusals(t *testing.T) {
	t.Run("no node class", func(t *testing.T) {
		p := newProvider(t, newFakeNodes(), kubeWith(), nil)
		_, err := p.Create(context.Background(), claim("a", "1", req(corev1.LabelInstanceTypeStable, "lab.small")))
		if !cloudprovider.IsInsufficientCapacityError(err) {
			t.Fatalf("err %v, want InsufficientCapacityError", err)
		}
	})
	t.Run("node class not ready", func(t *testing.T) {
		p := newProvider(t, newFakeNodes(), kubeWith(nodeClass("default", false)), nil)
		_, err := p.Create(context.Background(), claim("a", "1", req(corev1.LabelInstanceTypeStable, "lab.small")))
		if !cloudprovider.IsNodeClassNotReadyError(err) {
			t.Fatalf("err %v, want NodeClassNotReadyError", err)
		}
	})
	t.Run("nothing fits", func(t *testing.T) {
		p := newProvider(t, newFakeNodes(), kubeWith(nodeClass("default", true)), nil)
		_, err := p.Create(context.Background(), claim("a", "3", req(corev1.LabelInstanceTypeStable, "lab.small")))
		if !cloudprovider.IsInsufficientCapacityError(err) {
			t.Fatalf("err %v, want InsufficientCapacityError", err)
		}
	})
	t.Run("zone out of catalog", func(t *testing.T) {
		p := newProvider(t, newFakeNodes(), kubeWith(nodeClass("default", true)), nil)
		_, err := p.Create(context.Background(), claim("a", "1", req(corev1.LabelInstanceTypeStable, "lab.small"), req(corev1.LabelTopologyZone, "us-east-1a")))
		if !cloudprovider.IsInsufficientCapacityError(err) {
			t.Fatalf("err %v, want InsufficientCapacityError", err)
		}
	})
}

// waitWaiters waits until something waits on the fake clock.
func waitWaiters(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("nothing waits on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLifecycleWithLatencies(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	nodes := newFakeNodes()
	p := newProvider(t, nodes, kubeWith(nodeClass("default", true)), clk)
	ctx := context.Background()

	type result struct {
		nc  *v1.NodeClaim
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := p.Create(ctx, claim("default-x1", "1", req(corev1.LabelInstanceTypeStable, "lab.small")))
		done <- result{nc, err}
	}()
	waitWaiters(t, clk)
	select {
	case <-done:
		t.Fatal("Create returned before the launch latency")
	default:
	}
	// The instance exists from the launch on: Get and List see it.
	if _, err := p.Get(ctx, "lab://default-x1"); err != nil {
		t.Fatalf("Get during launch: %v", err)
	}
	clk.Step(2 * time.Second)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	waitWaiters(t, clk) // the registration latency
	clk.Step(14 * time.Second)
	if _, ok := nodes.spec("default-x1"); ok {
		t.Fatal("the node registered before the registration latency")
	}
	got, err := p.Get(ctx, r.nc.Status.ProviderID)
	if err != nil || got.Status.NodeName != "" {
		t.Fatalf("Get before registration: %v %v", got, err)
	}
	clk.Step(time.Second)
	select {
	case <-nodes.added:
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not register after the registration latency")
	}
	got, err = p.Get(ctx, r.nc.Status.ProviderID)
	if err != nil || got.Status.NodeName != "default-x1" || got.Labels[corev1.LabelInstanceTypeStable] != "lab.small" {
		t.Fatalf("Get after registration: %+v %v", got, err)
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %d %v", len(list), err)
	}

	// Delete stops the node and reports the instance gone.
	err = p.Delete(ctx, r.nc)
	if !cloudprovider.IsNodeClaimNotFoundError(err) {
		t.Fatalf("Delete: %v, want NodeClaimNotFoundError (terminated)", err)
	}
	if _, ok := nodes.spec("default-x1"); ok {
		t.Fatal("Delete left the node in the lab")
	}
	if _, err := p.Get(ctx, r.nc.Status.ProviderID); !cloudprovider.IsNodeClaimNotFoundError(err) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := p.Delete(ctx, r.nc); !cloudprovider.IsNodeClaimNotFoundError(err) {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestDeleteBeforeRegistration(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	nodes := newFakeNodes()
	p := newProvider(t, nodes, kubeWith(nodeClass("default", true)), clk)
	ctx := context.Background()
	done := make(chan *v1.NodeClaim, 1)
	go func() {
		nc, err := p.Create(ctx, claim("default-y", "1", req(corev1.LabelInstanceTypeStable, "lab.small")))
		if err != nil {
			t.Error(err)
		}
		done <- nc
	}()
	waitWaiters(t, clk)
	clk.Step(2 * time.Second)
	nc := <-done
	if nc == nil {
		t.FailNow()
	}
	waitWaiters(t, clk)
	if err := p.Delete(ctx, nc); !cloudprovider.IsNodeClaimNotFoundError(err) {
		t.Fatalf("Delete: %v", err)
	}
	clk.Step(time.Minute)
	p.Wait()
	if _, ok := nodes.spec("default-y"); ok {
		t.Fatal("an instance deleted before registering still registered")
	}
}

func TestFailedRegistrationLeavesTheInventory(t *testing.T) {
	nodes := newFakeNodes()
	nodes.failAdd = errors.New("node default-z did not register in 30s")
	p := newProvider(t, nodes, kubeWith(nodeClass("default", true)), nil)
	nc, err := p.Create(context.Background(), claim("default-z", "1", req(corev1.LabelInstanceTypeStable, "lab.small")))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := p.Get(context.Background(), nc.Status.ProviderID); cloudprovider.IsNodeClaimNotFoundError(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an instance whose node never registered stayed in the inventory")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecoverTakesLabNodesBack(t *testing.T) {
	nodes := newFakeNodes()
	nodes.nodes["default-r"] = lab.NodeSpec{Name: "default-r", ProviderID: "lab://default-r", Labels: map[string]string{corev1.LabelInstanceTypeStable: "lab.large"}}
	nodes.nodes["lab-node-1"] = lab.NodeSpec{Name: "lab-node-1"}
	p := newProvider(t, nodes, kubeWith(), nil)
	if err := p.Recover(); err != nil {
		t.Fatal(err)
	}
	list, _ := p.List(context.Background())
	if len(list) != 1 || list[0].Status.ProviderID != "lab://default-r" || list[0].Status.Capacity.Cpu().String() != "8" {
		t.Fatalf("recovered %+v, want the one lab:// node with lab.large capacity", list)
	}
}

func TestProviderIDs(t *testing.T) {
	p := newProvider(t, newFakeNodes(), kubeWith(), nil)
	for _, id := range []string{"", "aws:///us-east-1a/i-123", "lab://"} {
		if _, err := p.Get(context.Background(), id); !cloudprovider.IsNodeClaimNotFoundError(err) {
			t.Errorf("Get(%q): %v, want NodeClaimNotFoundError", id, err)
		}
	}
}

func TestKubeletMaySet(t *testing.T) {
	for key, want := range map[string]bool{
		"team":                                true,
		"karpenter.sh/nodepool":               true,
		"karpenter.sh/capacity-type":          true,
		"node.kubernetes.io/instance-type":    true,
		"topology.kubernetes.io/zone":         true,
		"kubernetes.io/arch":                  true,
		"node-role.kubernetes.io/app":         false,
		"node-restriction.kubernetes.io/team": false,
		"example.k8s.io/x":                    false,
		"kubelet.kubernetes.io/x":             true,
	} {
		if got := kubeletMaySet(key); got != want {
			t.Errorf("kubeletMaySet(%q) = %v, want %v", key, got, want)
		}
	}
}
