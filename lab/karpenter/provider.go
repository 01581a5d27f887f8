//go:build !nolab

package karpenter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/awslabs/operatorpkg/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	v1 "sigs.k8s.io/karpenter/pkg/apis/v1"
	"sigs.k8s.io/karpenter/pkg/cloudprovider"
	"sigs.k8s.io/karpenter/pkg/scheduling"
	"sigs.k8s.io/karpenter/pkg/utils/resources"

	"zerodrop.dev/zerodrop/lab"
)

// Nodes is the lab as the cloud provider sees it: where instances become
// kubelet-twin nodes. *lab.Client (the lab's control socket) is one.
type Nodes interface {
	// AddNode starts a node and returns once it has registered.
	AddNode(spec lab.NodeSpec) (lab.NodeInfo, error)
	// RemoveNode stops a node and deletes its Node; lab.IsNoNode tells a
	// node that does not exist.
	RemoveNode(name string) error
	// Status lists the lab's nodes.
	Status() (lab.Status, error)
}

// Config configures the lab cloud provider.
type Config struct {
	// Catalog is the lab cloud's instance types.
	Catalog []lab.InstanceType
	// LaunchLatency is how long Create takes; RegistrationLatency how long
	// after the launch the node's kubelet registers. Both already scaled.
	LaunchLatency       time.Duration
	RegistrationLatency time.Duration
	// Nodes is the lab.
	Nodes Nodes
	// Kube reads LabNodeClasses.
	Kube client.Client
	// Clock drives the latencies (nil: the real clock).
	Clock clock.WithTicker
	// Log receives the provider's own lines (nil: discarded).
	Log *slog.Logger
}

// CloudProvider is Karpenter's cloud provider for the lab, modelled on
// Karpenter's kwok provider: an instance is a kubelet-twin node of the
// lab, named after its NodeClaim, with spec.providerID lab://NAME, created
// through the lab's AddNode after the registration latency and stopped
// with RemoveNode. The provider's own record of instances is the cloud's
// inventory (Get and List), so an instance exists from its launch, before
// its node registers.
type CloudProvider struct {
	cfg   Config
	types []*cloudprovider.InstanceType
	log   *slog.Logger
	// life bounds the registrations in flight (they outlive Create's
	// context, as an instance outlives the API call that launched it).
	life context.Context

	mu        sync.Mutex
	instances map[string]*instance
	wg        sync.WaitGroup
}

type instance struct {
	name      string
	labels    map[string]string
	capacity  corev1.ResourceList
	launched  time.Time
	nodeClaim string
	// registered is set once the lab has the node; deleted once Delete
	// was called (a registration still in flight then removes the node).
	registered bool
	deleted    bool
}

// New makes the provider; registrations in flight end with life.
func New(life context.Context, cfg Config) (*CloudProvider, error) {
	Register()
	if cfg.Nodes == nil {
		return nil, errors.New("lab cloud provider: no lab to add nodes to")
	}
	types, err := InstanceTypes(cfg.Catalog)
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &CloudProvider{cfg: cfg, types: types, log: log, life: life, instances: map[string]*instance{}}, nil
}

// Recover takes into the inventory the lab's nodes this provider launched
// before (a provider restarted while the lab runs).
func (c *CloudProvider) Recover() error {
	st, err := c.cfg.Nodes.Status()
	if err != nil {
		return fmt.Errorf("lab cloud provider: listing the lab's nodes: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range st.Nodes {
		if !strings.HasPrefix(n.ProviderID, lab.ProviderIDPrefix) || n.Lost {
			continue
		}
		inst := &instance{name: n.Name, labels: n.Labels, registered: true, launched: c.cfg.Clock.Now()}
		if it := c.instanceType(n.Labels[corev1.LabelInstanceTypeStable]); it != nil {
			inst.capacity = it.Capacity
		}
		c.instances[n.Name] = inst
	}
	return nil
}

// Wait waits for the registrations in flight (they end with the life
// context given to New).
func (c *CloudProvider) Wait() { c.wg.Wait() }

func (c *CloudProvider) instanceType(name string) *cloudprovider.InstanceType {
	for _, it := range c.types {
		if it.Name == name {
			return it
		}
	}
	return nil
}

// Create launches an instance for the NodeClaim: the cheapest available
// offering of the instance types it allows (catalog order breaks ties)
// that holds its requests. It returns after the launch latency; the node
// registers (with the karpenter.sh/unregistered taint, as Karpenter
// expects) after the registration latency.
func (c *CloudProvider) Create(ctx context.Context, nodeClaim *v1.NodeClaim) (*v1.NodeClaim, error) {
	if err := c.checkNodeClass(ctx, nodeClaim); err != nil {
		return nil, err
	}
	it, offering, err := c.choose(nodeClaim)
	if err != nil {
		return nil, err
	}
	name := nodeClaim.Name
	labels := map[string]string{
		corev1.LabelInstanceTypeStable: it.Name,
		corev1.LabelTopologyZone:       offering.Requirements.Get(corev1.LabelTopologyZone).Any(),
		v1.CapacityTypeLabelKey:        offering.Requirements.Get(v1.CapacityTypeLabelKey).Any(),
		corev1.LabelArchStable:         it.Requirements.Get(corev1.LabelArchStable).Any(),
		corev1.LabelOSStable:           string(corev1.Linux),
		corev1.LabelTopologyRegion:     Region,
		corev1.LabelHostname:           name,
	}
	if pool := nodeClaim.Labels[v1.NodePoolLabelKey]; pool != "" {
		labels[v1.NodePoolLabelKey] = pool
	}
	inst := &instance{name: name, labels: labels, capacity: it.Capacity, nodeClaim: nodeClaim.Name}
	c.mu.Lock()
	if _, dup := c.instances[name]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("launching %s: an instance of that name exists", name)
	}
	c.instances[name] = inst
	c.mu.Unlock()
	// The launch call itself.
	select {
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.instances, name)
		c.mu.Unlock()
		return nil, fmt.Errorf("launching %s: %w", name, ctx.Err())
	case <-c.cfg.Clock.After(c.cfg.LaunchLatency):
	}
	c.mu.Lock()
	inst.launched = c.cfg.Clock.Now()
	c.mu.Unlock()
	c.log.Info("instance launched", "node", name, "instanceType", it.Name, "zone", labels[corev1.LabelTopologyZone],
		"capacityType", labels[v1.CapacityTypeLabelKey], "price", offering.Price)
	spec := lab.NodeSpec{
		Name: name, Labels: kubeletLabels(labels, nodeClaim.Labels),
		Taints:     []corev1.Taint{v1.UnregisteredNoExecuteTaint},
		CPU:        it.Capacity.Cpu().String(),
		Memory:     it.Capacity.Memory().String(),
		Pods:       int(it.Capacity.Pods().Value()),
		ProviderID: lab.ProviderIDPrefix + name,
	}
	c.wg.Add(1)
	go c.register(inst, spec)
	return c.toNodeClaim(inst), nil
}

// register adds the instance's node to the lab after the registration
// latency, unless it was deleted meanwhile.
func (c *CloudProvider) register(inst *instance, spec lab.NodeSpec) {
	defer c.wg.Done()
	select {
	case <-c.life.Done():
		return
	case <-c.cfg.Clock.After(c.cfg.RegistrationLatency):
	}
	c.mu.Lock()
	deleted := inst.deleted
	c.mu.Unlock()
	if deleted {
		return
	}
	if _, err := c.cfg.Nodes.AddNode(spec); err != nil {
		// The instance never joins: it leaves the inventory, and Karpenter
		// finds its NodeClaim's instance gone.
		c.log.Error("instance did not register", "node", inst.name, "err", err)
		c.mu.Lock()
		if c.instances[inst.name] == inst {
			delete(c.instances, inst.name)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	inst.registered = true
	deleted = inst.deleted
	c.mu.Unlock()
	c.log.Info("node registered", "node", inst.name)
	if deleted {
		// Deleted while registering: terminate it now.
		if err := c.cfg.Nodes.RemoveNode(inst.name); err != nil && !lab.IsNoNode(err) {
			c.log.Error("removing a node deleted while registering", "node", inst.name, "err", err)
		}
	}
}

// kubeletLabels are the labels the node registers with: the instance's and
// the NodeClaim's that a kubelet may set under the NodeRestriction
// admission plugin (Karpenter syncs the others at registration).
func kubeletLabels(instance, nodeClaim map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range nodeClaim {
		if kubeletMaySet(k) {
			out[k] = v
		}
	}
	for k, v := range instance {
		out[k] = v
	}
	return out
}

// kubeletMaySet reports whether NodeRestriction lets a kubelet set label
// key on its own Node.
func kubeletMaySet(key string) bool {
	domain := ""
	if i := strings.Index(key, "/"); i >= 0 {
		domain = key[:i]
	}
	restricted := func(d string) bool {
		return d == "kubernetes.io" || strings.HasSuffix(d, ".kubernetes.io") || d == "k8s.io" || strings.HasSuffix(d, ".k8s.io")
	}
	if !restricted(domain) {
		return true
	}
	switch key {
	case corev1.LabelHostname, corev1.LabelInstanceTypeStable, corev1.LabelInstanceType, corev1.LabelOSStable, corev1.LabelArchStable,
		corev1.LabelTopologyZone, corev1.LabelTopologyRegion, corev1.LabelFailureDomainBetaZone, corev1.LabelFailureDomainBetaRegion:
		return true
	}
	return domain == "kubelet.kubernetes.io" || strings.HasSuffix(domain, ".kubelet.kubernetes.io") ||
		domain == "node.kubernetes.io" || strings.HasSuffix(domain, ".node.kubernetes.io")
}

func (c *CloudProvider) checkNodeClass(ctx context.Context, nodeClaim *v1.NodeClaim) error {
	ref := nodeClaim.Spec.NodeClassRef
	if ref == nil {
		return cloudprovider.NewInsufficientCapacityError(errors.New("the NodeClaim has no nodeClassRef"))
	}
	if ref.Group != Group || ref.Kind != "LabNodeClass" {
		return cloudprovider.NewInsufficientCapacityError(fmt.Errorf("nodeClassRef %s/%s: the lab cloud knows only %s/LabNodeClass", ref.Group, ref.Kind, Group))
	}
	if c.cfg.Kube == nil {
		return nil
	}
	nc := &LabNodeClass{}
	if err := c.cfg.Kube.Get(ctx, types.NamespacedName{Name: ref.Name}, nc); err != nil {
		if apierrors.IsNotFound(err) {
			return cloudprovider.NewInsufficientCapacityError(fmt.Errorf("LabNodeClass %s: %w", ref.Name, err))
		}
		return fmt.Errorf("reading LabNodeClass %s: %w", ref.Name, err)
	}
	if cond := nc.StatusConditions().Get(status.ConditionReady); cond.IsFalse() {
		return cloudprovider.NewNodeClassNotReadyError(fmt.Errorf("LabNodeClass %s is not ready: %s", ref.Name, cond.Message))
	}
	return nil
}

// choose picks the instance type and offering for a NodeClaim.
func (c *CloudProvider) choose(nodeClaim *v1.NodeClaim) (*cloudprovider.InstanceType, *cloudprovider.Offering, error) {
	reqs := scheduling.NewNodeSelectorRequirementsWithMinValues(nodeClaim.Spec.Requirements...)
	allowed := reqs.Get(corev1.LabelInstanceTypeStable)
	var bestIT *cloudprovider.InstanceType
	var best *cloudprovider.Offering
	for _, it := range c.types {
		if !allowed.Has(it.Name) {
			continue
		}
		if !resources.Fits(nodeClaim.Spec.Resources.Requests, it.Allocatable()) {
			continue
		}
		for _, o := range it.Offerings.Available().Compatible(reqs) {
			if best == nil || o.Price < best.Price {
				bestIT, best = it, o
			}
		}
	}
	if best == nil {
		return nil, nil, cloudprovider.NewInsufficientCapacityError(fmt.Errorf("no available offering of the lab catalog satisfies the NodeClaim's requirements (%s) and requests", reqs))
	}
	return bestIT, best, nil
}

// Delete terminates the NodeClaim's instance: its node is stopped and its
// Node deleted. It returns a NodeClaimNotFoundError once the instance is
// gone (at once, as termination in the lab is synchronous).
func (c *CloudProvider) Delete(_ context.Context, nodeClaim *v1.NodeClaim) error {
	name, err := nameOf(nodeClaim.Status.ProviderID)
	if err != nil {
		return cloudprovider.NewNodeClaimNotFoundError(err)
	}
	c.mu.Lock()
	inst, ok := c.instances[name]
	if ok {
		inst.deleted = true
		delete(c.instances, name)
	}
	registered := ok && inst.registered
	c.mu.Unlock()
	if !ok {
		return cloudprovider.NewNodeClaimNotFoundError(fmt.Errorf("instance %s not found", name))
	}
	if registered {
		if err := c.cfg.Nodes.RemoveNode(name); err != nil && !lab.IsNoNode(err) {
			c.mu.Lock()
			inst.deleted = false
			c.instances[name] = inst
			c.mu.Unlock()
			return fmt.Errorf("terminating instance %s: %w", name, err)
		}
	}
	c.log.Info("instance terminated", "node", name)
	return cloudprovider.NewNodeClaimNotFoundError(fmt.Errorf("instance %s terminated", name))
}

// Get returns the instance with the provider ID.
func (c *CloudProvider) Get(_ context.Context, providerID string) (*v1.NodeClaim, error) {
	name, err := nameOf(providerID)
	if err != nil {
		return nil, cloudprovider.NewNodeClaimNotFoundError(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, ok := c.instances[name]
	if !ok {
		return nil, cloudprovider.NewNodeClaimNotFoundError(fmt.Errorf("instance %s not found", name))
	}
	return c.toNodeClaimLocked(inst), nil
}

// List returns every instance of the lab cloud.
func (c *CloudProvider) List(context.Context) ([]*v1.NodeClaim, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*v1.NodeClaim
	for _, inst := range c.instances {
		out = append(out, c.toNodeClaimLocked(inst))
	}
	return out, nil
}

// GetInstanceTypes returns the catalog (the same for every NodePool).
func (c *CloudProvider) GetInstanceTypes(context.Context, *v1.NodePool) ([]*cloudprovider.InstanceType, error) {
	return c.types, nil
}

// IsDrifted is never true: the lab cloud has nothing that drifts.
func (c *CloudProvider) IsDrifted(context.Context, *v1.NodeClaim) (cloudprovider.DriftReason, error) {
	return "", nil
}

// RepairPolicies is Karpenter's node repair for the lab (used only with
// the NodeRepair feature gate): a node NotReady or Unknown for 10 minutes.
func (c *CloudProvider) RepairPolicies() []cloudprovider.RepairPolicy {
	return []cloudprovider.RepairPolicy{
		{ConditionType: corev1.NodeReady, ConditionStatus: corev1.ConditionFalse, TolerationDuration: 10 * time.Minute},
		{ConditionType: corev1.NodeReady, ConditionStatus: corev1.ConditionUnknown, TolerationDuration: 10 * time.Minute},
	}
}

// Name is the provider's name.
func (c *CloudProvider) Name() string { return "lab" }

// GetSupportedNodeClasses is LabNodeClass.
func (c *CloudProvider) GetSupportedNodeClasses() []status.Object {
	return []status.Object{&LabNodeClass{}}
}

func (c *CloudProvider) toNodeClaim(inst *instance) *v1.NodeClaim {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.toNodeClaimLocked(inst)
}

func (c *CloudProvider) toNodeClaimLocked(inst *instance) *v1.NodeClaim {
	labels := make(map[string]string, len(inst.labels))
	for k, v := range inst.labels {
		labels[k] = v
	}
	nc := &v1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: inst.nodeClaim, Labels: labels},
		Status: v1.NodeClaimStatus{
			ProviderID:  lab.ProviderIDPrefix + inst.name,
			Capacity:    inst.capacity.DeepCopy(),
			Allocatable: inst.capacity.DeepCopy(),
		},
	}
	if inst.registered {
		nc.Status.NodeName = inst.name
	}
	if !inst.launched.IsZero() {
		nc.CreationTimestamp = metav1.NewTime(inst.launched)
	}
	return nc
}

func nameOf(providerID string) (string, error) {
	name, ok := strings.CutPrefix(providerID, lab.ProviderIDPrefix)
	if !ok || name == "" {
		return "", fmt.Errorf("provider ID %q is not the lab cloud's (%sNODE)", providerID, lab.ProviderIDPrefix)
	}
	return name, nil
}
