// Package lab runs the local twin of a Kubernetes cluster: the real control
// plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) and
// kubelet twins whose pods are real processes, all inside a network
// namespace of the lab's own, so pod addresses are ordinary (the API server
// rejects loopback endpoints) and no packet leaves the machine.
//
// Up runs in the user's namespace: it prepares certificates, opens the
// host-side API listener and starts the lab process (Run) in a new network
// namespace, handing it the listener. Run starts the control plane and the
// nodes and serves a control socket for status and node operations.
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	pathpkg "path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"zerodrop.dev/zerodrop/lab/kubelet"
)

// Config is the lab's configuration.
type Config struct {
	// Dir holds everything the lab writes (default .zerodrop/lab).
	Dir string `json:"dir"`
	// Nodes is the number of nodes at start.
	Nodes int `json:"nodes"`
	// TimeScale multiplies every duration the lab owns (1 = real time).
	TimeScale float64 `json:"timeScale"`
	// APIAddr is the host address users reach the API server on
	// (default 127.0.0.1 with a free port).
	APIAddr string `json:"apiAddr"`
	// Binary is the zerodrop executable (default: this one).
	Binary string `json:"binary"`
	// PodBinary is what the zerodrop image runs in pods (default: Binary).
	// The slim build (go build -tags nolab) is the in-cluster image's
	// binary: smaller and quicker to start than one carrying the control
	// plane.
	PodBinary string `json:"podBinary"`
	// Images adds image mappings to the default (the zerodrop image).
	Images []kubelet.Image `json:"images,omitempty"`
	// NodeMonitorGracePeriod is the node-lifecycle controller's grace
	// before a silent node is NotReady (Kubernetes default 50s; scaled).
	NodeMonitorGracePeriod time.Duration `json:"nodeMonitorGracePeriod"`
	// TolerationSeconds is the default not-ready/unreachable toleration
	// (Kubernetes default 300; scaled).
	TolerationSeconds int64 `json:"tolerationSeconds"`
	// NodeCPU, NodeMemory and NodePods set each node's capacity.
	NodeCPU    string `json:"nodeCPU"`
	NodeMemory string `json:"nodeMemory"`
	NodePods   int    `json:"nodePods"`
	// LBReconcileLag, LBAPILatency and LBPropagation are the load balancer
	// controller twin's lag pipeline (before the time scale; defaults in
	// package lbc).
	LBReconcileLag time.Duration `json:"lbReconcileLag"`
	LBAPILatency   time.Duration `json:"lbAPILatency"`
	LBPropagation  time.Duration `json:"lbPropagation"`
	LBModifyRule   time.Duration `json:"lbModifyRuleLag"`
	// Karpenter runs the real Karpenter with the lab cloud provider.
	Karpenter KarpenterConfig `json:"karpenter"`
	// JSON makes progress lines JSON objects.
	JSON bool `json:"-"`
}

// PodNetwork is the lab's pod address range; node k (from 1) gets the /24
// starting at 10.244.0.0 + k*256.
var PodNetwork = netip.MustParsePrefix("10.244.0.0/14")

// NodeRange returns the pod range of the k-th node (k ≥ 1).
func NodeRange(k int) (netip.Prefix, error) {
	if k < 1 || k >= maxNodeIndex {
		return netip.Prefix{}, fmt.Errorf("node index %d out of range 1-%d", k, maxNodeIndex-1)
	}
	base := PodNetwork.Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(k)<<8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), 0}), 24), nil
}

// maxNodeIndex is the first /24 of PodNetwork not given to nodes: the last
// one holds the load balancers' addresses.
const maxNodeIndex = 1023

// LoadBalancerRange holds the addresses of the lab's load balancers inside
// the lab network (the last /24 of PodNetwork).
var LoadBalancerRange = netip.MustParsePrefix("10.247.255.0/24")

// DefaultDir is where a lab lives unless told otherwise.
const DefaultDir = ".zerodrop/lab"

func (c *Config) defaults() error {
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("lab directory: %w", err)
	}
	c.Dir = abs
	if c.Nodes < 0 || c.Nodes > 500 {
		return fmt.Errorf("--nodes %d: must be 0-500", c.Nodes)
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.TimeScale < 0.01 || c.TimeScale > 100 {
		return fmt.Errorf("--time-scale %g: must be between 0.01 and 100", c.TimeScale)
	}
	if c.APIAddr == "" {
		c.APIAddr = "127.0.0.1:0"
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the zerodrop binary: %w", err)
		}
		c.Binary = exe
	}
	if c.PodBinary == "" {
		c.PodBinary = c.Binary
	}
	if abs, err := filepath.Abs(c.PodBinary); err == nil {
		c.PodBinary = abs
	}
	if st, err := os.Stat(c.PodBinary); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("--pod-binary %s: not an executable file", c.PodBinary)
	}
	if c.NodeCPU == "" {
		c.NodeCPU = "4"
	}
	if c.NodeMemory == "" {
		c.NodeMemory = "16Gi"
	}
	if c.NodePods == 0 {
		c.NodePods = 110
	}
	return c.Karpenter.defaults()
}

// State is what a running lab records in DIR/state.json.
type State struct {
	PID        int       `json:"pid"`    // the lab up process
	LabPID     int       `json:"labPid"` // the lab process in the network namespace
	APIServer  string    `json:"apiServer"`
	Kubeconfig string    `json:"kubeconfig"`
	Socket     string    `json:"socket"`
	Started    time.Time `json:"started"`
	TimeScale  float64   `json:"timeScale"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// ReadState reads the state of the lab in dir; it fails when no lab runs
// there.
func ReadState(dir string) (State, error) {
	if dir == "" {
		dir = DefaultDir
	}
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("no lab running in %s (start one with: zerodrop lab up --dir %s)", dir, dir)
	}
	if err != nil {
		return State{}, fmt.Errorf("reading lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("reading %s: %w", statePath(dir), err)
	}
	if !alive(s.PID) {
		return s, fmt.Errorf("the lab in %s is not running (pid %d gone; stale %s)", dir, s.PID, statePath(dir))
	}
	return s, nil
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// ReadImages reads extra image mappings (a YAML or JSON list of
// kubelet.Image) from path. Every file an image maps must exist here.
func ReadImages(path string) ([]kubelet.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--images: %w", err)
	}
	var images []kubelet.Image
	if err := yaml.UnmarshalStrict(b, &images); err != nil {
		return nil, fmt.Errorf("--images %s: %w", path, err)
	}
	for i, im := range images {
		if im.Match == "" {
			return nil, fmt.Errorf("--images %s: entry %d: match is empty", path, i)
		}
		if _, err := pathpkg.Match(im.Match, "x"); err != nil {
			return nil, fmt.Errorf("--images %s: entry %d: match %q: %w", path, i, im.Match, err)
		}
		for inImage, host := range im.Files {
			if !strings.HasPrefix(inImage, "/") {
				return nil, fmt.Errorf("--images %s: entry %d (%s): file %q must be an absolute path in the image", path, i, im.Match, inImage)
			}
			if _, err := os.Stat(host); err != nil {
				return nil, fmt.Errorf("--images %s: entry %d (%s): file %s: %w", path, i, im.Match, inImage, err)
			}
		}
	}
	return images, nil
}
