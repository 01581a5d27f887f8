package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"zerodrop.dev/zerodrop/lab/controlplane"
	"zerodrop.dev/zerodrop/lab/labevent"
	"zerodrop.dev/zerodrop/lab/proc"
)

// KarpenterConfig turns on the real Karpenter (the sigs.k8s.io/karpenter
// core with the lab cloud provider, package lab/karpenter) and sets its
// catalog and timings. Every duration is before the lab's time scale.
type KarpenterConfig struct {
	// Enabled runs Karpenter in the lab (lab up --karpenter).
	Enabled bool `json:"enabled"`
	// InstanceTypes is the catalog the cloud provider offers (default
	// DefaultInstanceTypes).
	InstanceTypes []InstanceType `json:"instanceTypes,omitempty"`
	// LaunchLatency is how long the cloud provider's Create takes before it
	// returns the instance (default 2s).
	LaunchLatency time.Duration `json:"launchLatency"`
	// RegistrationLatency is the time from the launch to the node's
	// kubelet registering (boot and join; default 15s).
	RegistrationLatency time.Duration `json:"registrationLatency"`
	// BatchIdleDuration and BatchMaxDuration are Karpenter's provisioning
	// batch window (Karpenter defaults 1s and 10s).
	BatchIdleDuration time.Duration `json:"batchIdleDuration"`
	BatchMaxDuration  time.Duration `json:"batchMaxDuration"`
}

// InstanceType is one entry of the lab cloud's catalog: a node shape and
// where and how it can be bought.
type InstanceType struct {
	// Name is the node.kubernetes.io/instance-type label (e.g. lab.medium).
	Name   string `json:"name"`
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
	Pods   int    `json:"pods"`
	// Arch is the kubernetes.io/arch label (default amd64).
	Arch      string     `json:"arch,omitempty"`
	Offerings []Offering `json:"offerings"`
}

// Offering is an instance type bought in one zone with one capacity type
// (on-demand or spot) at a price per hour.
type Offering struct {
	Zone         string  `json:"zone"`
	CapacityType string  `json:"capacityType"`
	Price        float64 `json:"price"`
	// Unavailable marks an offering out of capacity (Karpenter skips it).
	Unavailable bool `json:"unavailable,omitempty"`
}

// Zones are the lab's availability zones (the kubelet twins of static
// nodes take them in turn).
var Zones = []string{"lab-a", "lab-b", "lab-c"}

// DefaultInstanceTypes is the lab cloud's default catalog: lab.small (2 CPU,
// 4Gi, 20 pods), lab.medium (4 CPU, 8Gi, 40 pods) and lab.large (8 CPU,
// 16Gi, 110 pods), on-demand and spot in every zone, spot at 30 % of the
// on-demand price.
func DefaultInstanceTypes() []InstanceType {
	shapes := []struct {
		name, cpu, mem string
		pods           int
		price          float64
	}{
		{"lab.small", "2", "4Gi", 20, 0.04},
		{"lab.medium", "4", "8Gi", 40, 0.08},
		{"lab.large", "8", "16Gi", 110, 0.16},
	}
	var out []InstanceType
	for _, s := range shapes {
		it := InstanceType{Name: s.name, CPU: s.cpu, Memory: s.mem, Pods: s.pods, Arch: "amd64"}
		for _, z := range Zones {
			it.Offerings = append(it.Offerings,
				Offering{Zone: z, CapacityType: "on-demand", Price: s.price},
				Offering{Zone: z, CapacityType: "spot", Price: s.price * 0.3})
		}
		out = append(out, it)
	}
	return out
}

// ValidateInstanceTypes reports the first problem of a catalog.
func ValidateInstanceTypes(types []InstanceType) error {
	if len(types) == 0 {
		return errors.New("instance types: the catalog is empty")
	}
	seen := map[string]bool{}
	for i, it := range types {
		if it.Name == "" {
			return fmt.Errorf("instance type %d: name is empty", i)
		}
		if seen[it.Name] {
			return fmt.Errorf("instance type %s: listed twice", it.Name)
		}
		seen[it.Name] = true
		for field, s := range map[string]string{"cpu": it.CPU, "memory": it.Memory} {
			q, err := resource.ParseQuantity(s)
			if err != nil {
				return fmt.Errorf("instance type %s: %s %q: %w", it.Name, field, s, err)
			}
			if q.Sign() <= 0 {
				return fmt.Errorf("instance type %s: %s %q must be positive", it.Name, field, s)
			}
		}
		if it.Pods < 1 || it.Pods > 253 {
			return fmt.Errorf("instance type %s: pods %d must be 1-253 (a node's /24)", it.Name, it.Pods)
		}
		if it.Arch != "" && it.Arch != "amd64" && it.Arch != "arm64" {
			return fmt.Errorf("instance type %s: arch %q must be amd64 or arm64", it.Name, it.Arch)
		}
		if len(it.Offerings) == 0 {
			return fmt.Errorf("instance type %s: no offerings", it.Name)
		}
		for _, o := range it.Offerings {
			if o.Zone == "" {
				return fmt.Errorf("instance type %s: an offering has no zone", it.Name)
			}
			if o.CapacityType != "on-demand" && o.CapacityType != "spot" {
				return fmt.Errorf("instance type %s: capacity type %q must be on-demand or spot", it.Name, o.CapacityType)
			}
			if o.Price < 0 {
				return fmt.Errorf("instance type %s: price %g is negative", it.Name, o.Price)
			}
		}
	}
	return nil
}

// ReadInstanceTypes reads a catalog (a YAML or JSON list of InstanceType)
// from path and validates it.
func ReadInstanceTypes(path string) ([]InstanceType, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading instance types: %w", err)
	}
	return ParseInstanceTypes(b)
}

// ParseInstanceTypes parses a catalog (YAML or JSON list of InstanceType)
// and validates it.
func ParseInstanceTypes(b []byte) ([]InstanceType, error) {
	var types []InstanceType
	if err := yaml.UnmarshalStrict(b, &types); err != nil {
		return nil, fmt.Errorf("instance types: %w", err)
	}
	if err := ValidateInstanceTypes(types); err != nil {
		return nil, err
	}
	return types, nil
}

func (k *KarpenterConfig) defaults() error {
	if !k.Enabled {
		return nil
	}
	if k.InstanceTypes == nil {
		k.InstanceTypes = DefaultInstanceTypes()
	}
	if err := ValidateInstanceTypes(k.InstanceTypes); err != nil {
		return err
	}
	for name, d := range map[string]*time.Duration{"launch latency": &k.LaunchLatency, "registration latency": &k.RegistrationLatency,
		"batch idle duration": &k.BatchIdleDuration, "batch max duration": &k.BatchMaxDuration} {
		if *d < 0 {
			return fmt.Errorf("karpenter %s %s: must not be negative", name, *d)
		}
	}
	if k.LaunchLatency == 0 {
		k.LaunchLatency = 2 * time.Second
	}
	if k.RegistrationLatency == 0 {
		k.RegistrationLatency = 15 * time.Second
	}
	if k.BatchIdleDuration == 0 {
		k.BatchIdleDuration = time.Second
	}
	if k.BatchMaxDuration == 0 {
		k.BatchMaxDuration = 10 * time.Second
	}
	return nil
}

// ProviderIDPrefix starts the spec.providerID of every node the lab cloud
// provider launches: lab://NODE.
const ProviderIDPrefix = "lab://"

// KarpenterCRDs, when set (by the full binary), installs Karpenter's
// CustomResourceDefinitions (NodePool, NodeClaim, NodeOverlay) and the
// lab's LabNodeClass with the admin configuration.
var KarpenterCRDs func(ctx context.Context, admin *rest.Config) error

// karpenterIdentity is Karpenter's user, bound to a ClusterRole with the
// rules of its Helm chart.
var karpenterIdentity = controlplane.Identity{User: "system:serviceaccount:kube-system:karpenter"}

// KarpenterKubeconfig is where the lab writes Karpenter's kubeconfig.
func KarpenterKubeconfig(dir string) string {
	return filepath.Join(dir, "kubeconfig", "karpenter.yaml")
}

// startKarpenter installs Karpenter's CRDs and RBAC and starts it as the
// hidden component process "lab component karpenter -- DIR"; the process is
// one of the lab's components (stopped with them, and the lab fails if it
// dies).
func (l *Lab) startKarpenter(ctx context.Context) error {
	if !l.cfg.Karpenter.Enabled {
		return nil
	}
	if KarpenterCRDs == nil {
		return errors.New("--karpenter: this zerodrop binary was built without Karpenter (-tags nolab)")
	}
	admin, err := controlplane.RESTConfig(l.ca, controlplane.AdminIdentity, APIServerInside)
	if err != nil {
		return err
	}
	if err := KarpenterCRDs(ctx, admin); err != nil {
		return err
	}
	if err := l.installKarpenterRBAC(ctx); err != nil {
		return err
	}
	if err := controlplane.WriteKubeconfig(KarpenterKubeconfig(l.cp.Dir), l.ca, karpenterIdentity, APIServerInside); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(l.cp.Dir, "logs", "karpenter.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the karpenter log: %w", err)
	}
	pr, err := proc.Start(proc.Spec{
		Path: l.cfg.Binary, Args: []string{"lab", "component", "karpenter", "--", l.cp.Dir},
		Env: os.Environ(), Dir: l.cp.Dir, Output: logf,
	})
	if err != nil {
		logf.Close()
		return fmt.Errorf("starting karpenter: %w", err)
	}
	l.mu.Lock()
	l.components = append(l.components, &runningComponent{name: "karpenter", proc: pr})
	l.mu.Unlock()
	l.events.Emit(labevent.Event{Time: time.Now(), Source: "lab", Kind: "ComponentReady", Object: "karpenter"})
	l.out.say("karpenter", fmt.Sprintf("Karpenter running (pid %d, %d instance types)", pr.Pid(), len(l.cfg.Karpenter.InstanceTypes)), map[string]any{"component": "karpenter", "pid": pr.Pid()})
	return nil
}

// stopKarpenter stops the Karpenter process before the nodes stop, so it
// does not react to a lab going down.
func (l *Lab) stopKarpenter() {
	l.mu.Lock()
	var pr *proc.Process
	for _, c := range l.components {
		if c.name == "karpenter" {
			pr = c.proc
		}
	}
	l.mu.Unlock()
	if pr != nil {
		pr.Stop(10 * time.Second)
	}
}

func (l *Lab) installKarpenterRBAC(ctx context.Context) error {
	read := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "zerodrop-lab:karpenter"},
		Rules: []rbacv1.PolicyRule{
			// The rules of Karpenter's chart (karpenter-core), and the lab's node class.
			{APIGroups: []string{"karpenter.sh"}, Resources: []string{"nodepools", "nodepools/status", "nodeclaims", "nodeclaims/status", "nodeoverlays", "nodeoverlays/status"}, Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"pods", "nodes", "persistentvolumes", "persistentvolumeclaims", "replicationcontrollers", "namespaces"}, Verbs: read},
			{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses", "csinodes", "volumeattachments"}, Verbs: read},
			{APIGroups: []string{"apps"}, Resources: []string{"daemonsets", "deployments", "replicasets", "statefulsets"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"watch", "list"}},
			{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: read},
			{APIGroups: []string{"karpenter.sh"}, Resources: []string{"nodeclaims", "nodeclaims/status", "nodeclaims/finalizers"}, Verbs: []string{"create", "delete", "update", "patch"}},
			{APIGroups: []string{"karpenter.sh"}, Resources: []string{"nodepools", "nodepools/status", "nodepools/finalizers", "nodeoverlays/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"create", "patch", "delete", "update"}},
			{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"delete"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get"}},
			{APIGroups: []string{"karpenter.lab.zerodrop.dev"}, Resources: []string{"labnodeclasses"}, Verbs: read},
			{APIGroups: []string{"karpenter.lab.zerodrop.dev"}, Resources: []string{"labnodeclasses", "labnodeclasses/status"}, Verbs: []string{"patch", "update"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: karpenterIdentity.User}},
	}
	if _, err := l.admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("karpenter role: %w", err)
	}
	if _, err := l.admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("karpenter role binding: %w", err)
	}
	return nil
}

// ReadConfig reads the configuration of the lab in dir (DIR/config.json,
// written by lab up), defaults filled in.
func ReadConfig(dir string) (Config, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return Config{}, fmt.Errorf("reading the lab configuration: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("reading the lab configuration: %w", err)
	}
	return cfg, nil
}

// SocketClient talks to the control socket of the lab in dir from inside
// the lab (a component started before the lab is ready, when state.json
// does not exist yet).
func SocketClient(dir string) *Client {
	sock := filepath.Join(dir, "lab.sock")
	return &Client{State: State{Socket: sock}, http: &http.Client{
		Timeout: 90 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}}
}

// IsNoNode tells whether err (from Client.RemoveNode) says the node does
// not exist.
func IsNoNode(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "no node ")
}
