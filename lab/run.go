package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"zerodrop.dev/zerodrop/lab/controlplane"
	"zerodrop.dev/zerodrop/lab/kubelet"
	"zerodrop.dev/zerodrop/lab/kubeproxy"
	"zerodrop.dev/zerodrop/lab/labevent"
	"zerodrop.dev/zerodrop/lab/lbc"
	"zerodrop.dev/zerodrop/lab/netns"
	"zerodrop.dev/zerodrop/lab/proc"
)

// Lab is a running lab, inside its network namespace: the control plane's
// processes and the nodes. Its methods are the Go API other parts of the
// lab (autoscaling, scenarios) use to add, remove and lose nodes.
type Lab struct {
	cfg    Config
	cp     controlplane.Config
	ca     *controlplane.CA
	admin  kubernetes.Interface
	events labevent.Sink
	log    *slog.Logger
	out    *progress

	mu         sync.Mutex
	components []*runningComponent
	nodes      map[string]*node
	nextIndex  int
	nodesWG    sync.WaitGroup
	lbc        *lbc.Controller
	// freed holds the addresses of torn-down pods: silent, as on a VPC.
	freed netns.FreedAddrs
	// nodeCtx bounds the life of every node, those added through the
	// control socket included.
	nodeCtx context.Context
	proxy   *kubeproxy.Proxy
}

func (l *Lab) startLoadBalancerController(ctx context.Context, hosts *hostListener) error {
	client, err := l.componentClient(lbcIdentity)
	if err != nil {
		return err
	}
	if err := l.installLBCRBAC(ctx); err != nil {
		return err
	}
	adminCfg, err := controlplane.RESTConfig(l.ca, controlplane.AdminIdentity, APIServerInside)
	if err != nil {
		return err
	}
	if err := lbc.InstallCRDs(ctx, adminCfg); err != nil {
		return err
	}
	lbcCfg, err := controlplane.RESTConfig(l.ca, lbcIdentity, APIServerInside)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(lbcCfg)
	if err != nil {
		return fmt.Errorf("load balancer controller client: %w", err)
	}
	var mu sync.Mutex
	next := LoadBalancerRange.Addr()
	l.lbc = lbc.New(lbc.Config{
		Client: client, Dynamic: dyn, Events: l.events, TimeScale: l.cfg.TimeScale,
		ReconcileLag: l.cfg.LBReconcileLag, APILatency: l.cfg.LBAPILatency, Propagation: l.cfg.LBPropagation,
		ModifyRuleLag: l.cfg.LBModifyRule,
		Address: func() (netip.Addr, error) {
			mu.Lock()
			defer mu.Unlock()
			next = next.Next()
			if !LoadBalancerRange.Contains(next) {
				return netip.Addr{}, fmt.Errorf("no load balancer address left in %s", LoadBalancerRange)
			}
			return next, nil
		},
		Expose: func(name, addr string) (string, error) {
			// Port 80 on a loopback address of its own, as an ALB listens,
			// so kubectl get ingress (ADDRESS, PORTS 80) says where to send
			// traffic; a free port of 127.0.0.1 when no such address can be
			// had (port 80 needs privilege; other labs hold some).
			var ln net.Listener
			for i := 1; i <= 32 && ln == nil; i++ {
				var err error
				if ln, err = hosts.Listen(fmt.Sprintf("127.80.0.%d:80", i)); err != nil && strings.Contains(err.Error(), "permission denied") {
					break
				}
			}
			if ln == nil {
				var err error
				if ln, err = hosts.Listen("127.0.0.1:0"); err != nil {
					return "", err
				}
			}
			go forward(ctx, ln, addr)
			return ln.Addr().String(), nil
		},
		Dir: l.cp.Dir, Log: l.log,
	})
	go func() {
		if err := l.lbc.Run(ctx); err != nil {
			l.log.Error("load balancer controller", "err", err)
		}
	}()
	if err := l.startGateWebhook(ctx); err != nil {
		return err
	}
	if err := l.startRollouts(ctx); err != nil {
		return err
	}
	l.out.say("lbc", "load balancer controller twin running", nil)
	return nil
}

type runningComponent struct {
	name string
	proc *proc.Process
}

type node struct {
	index   int
	kubelet *kubelet.Kubelet
	cancel  context.CancelFunc
	lost    bool
	rng     netip.Prefix
	spec    NodeSpec
}

// APIServerInside is the API server's address inside the lab network.
var APIServerInside = fmt.Sprintf("https://127.0.0.1:%d", controlplane.APIServerPort)

// Run is the lab process (started by Up in a new network namespace): it
// starts the control plane and the nodes, reports ready on fd 4, forwards
// the host listener on fd 3 to the API server, and runs until ctx ends.
func Run(ctx context.Context, dir string, jsonOut bool, out io.Writer) error {
	p := &progress{w: out, json: jsonOut, start: time.Now()}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return fmt.Errorf("lab netns is started by lab up: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("reading lab config: %w", err)
	}
	if os.Getenv(envInNamespace) != "1" {
		return errors.New("lab netns must run in the lab's own network namespace; use: zerodrop lab up")
	}
	if err := netns.SetupPodNetwork(PodNetwork); err != nil {
		return err
	}
	apiListener, err := net.FileListener(inheritedFile(3, "api-listener"))
	if err != nil {
		return fmt.Errorf("taking the API listener from lab up: %w", err)
	}
	readyPipe := inheritedFile(4, "ready")
	hosts, err := newHostListener(inheritedFile(5, "host-listeners"))
	if err != nil {
		return err
	}
	evFile, err := os.OpenFile(filepath.Join(dir, "events.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the lab event stream: %w", err)
	}
	defer evFile.Close()
	logFile, err := os.OpenFile(filepath.Join(dir, "logs", "lab.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the lab log: %w", err)
	}
	defer logFile.Close()
	l := &Lab{
		cfg: cfg, out: p, nodes: map[string]*node{},
		cp: controlplane.Config{
			Dir: dir, Binary: cfg.Binary, TimeScale: cfg.TimeScale,
			NodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod, TolerationSeconds: cfg.TolerationSeconds,
		},
		events: labevent.NewJSONLines(evFile),
		log:    slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if l.ca, err = controlplane.LoadCA(filepath.Join(dir, "pki")); err != nil {
		return err
	}
	defer l.stopComponents()
	if err := l.startControlPlane(ctx); err != nil {
		return err
	}
	go forward(ctx, apiListener, fmt.Sprintf("127.0.0.1:%d", controlplane.APIServerPort))

	restCfg, err := controlplane.RESTConfig(l.ca, controlplane.AdminIdentity, APIServerInside)
	if err != nil {
		return err
	}
	restCfg.QPS, restCfg.Burst = 100, 200
	if l.admin, err = kubernetes.NewForConfig(restCfg); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	if err := l.waitSystemNamespaces(ctx); err != nil {
		return err
	}
	nodeCtx, stopNodes := context.WithCancel(context.Background())
	l.nodeCtx = nodeCtx
	defer func() {
		stopNodes()
		l.nodesWG.Wait()
	}()
	proxyClient, err := l.componentClient(controlplane.Identity{User: "system:kube-proxy"})
	if err != nil {
		return err
	}
	l.proxy = kubeproxy.New(proxyClient, l.events, l.log)
	l.proxy.SyncPeriod = time.Duration(float64(kubeproxy.DefaultSyncPeriod) * cfg.TimeScale)
	go l.proxy.Run(nodeCtx)
	for i := 0; i < cfg.Nodes; i++ {
		if _, err := l.AddNode(nodeCtx, NodeSpec{}); err != nil {
			return err
		}
	}
	p.say("nodes", fmt.Sprintf("%d node(s) registered", cfg.Nodes), nil)
	if err := l.startLoadBalancerController(nodeCtx, hosts); err != nil {
		return err
	}
	ctl, err := l.serveControl(ctx, filepath.Join(dir, "lab.sock"))
	if err != nil {
		return err
	}
	defer ctl.Close()
	// Karpenter (its cloud provider uses the control socket) stops first,
	// so it does not react to the nodes stopping.
	defer l.stopKarpenter()
	if err := l.startKarpenter(nodeCtx); err != nil {
		return err
	}
	p.say("ready", "lab ready", map[string]any{"apiServerInside": APIServerInside})
	fmt.Fprintln(readyPipe, readyLine)
	readyPipe.Close()

	died := make(chan string, len(l.components))
	for _, c := range l.components {
		go func(c *runningComponent) {
			<-c.proc.Done()
			died <- c.name
		}(c)
	}
	select {
	case <-ctx.Done():
		p.say("stopping", "stopping nodes and control plane", nil)
		return nil
	case name := <-died:
		return fmt.Errorf("%s exited unexpectedly; see %s", name, filepath.Join(dir, "logs", name+".log"))
	}
}

func (l *Lab) startControlPlane(ctx context.Context) error {
	for _, comp := range controlplane.Components(l.cp) {
		logf, err := os.OpenFile(filepath.Join(l.cp.Dir, "logs", comp.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("opening %s log: %w", comp.Name, err)
		}
		started := time.Now()
		pr, err := proc.Start(proc.Spec{
			Path: l.cfg.Binary, Args: append([]string{"lab", "component", comp.Name, "--"}, comp.Args...),
			Env: os.Environ(), Dir: l.cp.Dir, Output: logf,
		})
		if err != nil {
			logf.Close()
			return fmt.Errorf("starting %s: %w", comp.Name, err)
		}
		l.mu.Lock()
		l.components = append(l.components, &runningComponent{name: comp.Name, proc: pr})
		l.mu.Unlock()
		waitCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
		err = controlplane.WaitHealthy(waitCtx, l.cp, comp.Health, pr.Done())
		cancel()
		if err != nil {
			return fmt.Errorf("%s did not become healthy: %w\n%s", comp.Name, err, tail(filepath.Join(l.cp.Dir, "logs", comp.Name+".log"), 15))
		}
		l.out.say("component", fmt.Sprintf("%s healthy (pid %d, %.1fs)", comp.Name, pr.Pid(), time.Since(started).Seconds()), map[string]any{"component": comp.Name, "pid": pr.Pid()})
		l.events.Emit(labevent.Event{Time: time.Now(), Source: "lab", Kind: "ComponentReady", Object: comp.Name})
	}
	return nil
}

func (l *Lab) stopComponents() {
	l.mu.Lock()
	comps := append([]*runningComponent(nil), l.components...)
	l.mu.Unlock()
	for i := len(comps) - 1; i >= 0; i-- {
		comps[i].proc.Stop(15 * time.Second)
	}
}

// waitSystemNamespaces waits until the API server has made the namespaces
// the nodes need (kube-node-lease) and the bootstrap RBAC policy exists.
func (l *Lab) waitSystemNamespaces(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err1 := l.admin.CoreV1().Namespaces().Get(ctx, corev1.NamespaceNodeLease, metav1.GetOptions{})
		_, err2 := l.admin.RbacV1().ClusterRoles().Get(ctx, "system:node", metav1.GetOptions{})
		if err1 == nil && err2 == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for the API server's system namespaces: %v %v", err1, err2)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NodeSpec describes a node to add.
type NodeSpec struct {
	// Name defaults to lab-node-N.
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Taints []corev1.Taint    `json:"taints,omitempty"`
	CPU    string            `json:"cpu,omitempty"`
	Memory string            `json:"memory,omitempty"`
	Pods   int               `json:"pods,omitempty"`
	// ProviderID is the Node's spec.providerID (lab://NAME for nodes the
	// lab cloud provider launches for Karpenter).
	ProviderID string `json:"providerID,omitempty"`
}

// AddNode starts a kubelet twin for a new node and waits until it has
// registered. The kubelet runs until ctx ends or the node is removed/lost.
func (l *Lab) AddNode(ctx context.Context, spec NodeSpec) (*kubelet.Kubelet, error) {
	l.mu.Lock()
	l.nextIndex++
	index := l.nextIndex
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("lab-node-%d", index)
	}
	if _, dup := l.nodes[spec.Name]; dup {
		l.mu.Unlock()
		return nil, fmt.Errorf("node %s already exists", spec.Name)
	}
	l.mu.Unlock()
	rng, err := NodeRange(index)
	if err != nil {
		return nil, err
	}
	capacity, err := l.capacity(spec)
	if err != nil {
		return nil, err
	}
	restCfg, err := controlplane.RESTConfig(l.ca, controlplane.NodeIdentity(spec.Name), APIServerInside)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("node %s client: %w", spec.Name, err)
	}
	labels := map[string]string{"topology.kubernetes.io/zone": zoneOf(index)}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	kl, err := kubelet.New(client, kubelet.Config{
		NodeName: spec.Name, PodRange: rng, Labels: labels, Taints: spec.Taints, Capacity: capacity, ProviderID: spec.ProviderID,
		Images:    append(kubelet.DefaultImages(l.cfg.PodBinary), l.cfg.Images...),
		TimeScale: l.cfg.TimeScale, Dir: l.cp.Dir, Events: l.events, Log: l.log, Network: &l.freed,
	})
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(ctx)
	n := &node{index: index, kubelet: kl, cancel: cancel, rng: rng, spec: spec}
	l.mu.Lock()
	l.nodes[spec.Name] = n
	l.mu.Unlock()
	l.nodesWG.Add(1)
	go func() {
		defer l.nodesWG.Done()
		if err := kl.Run(nctx); err != nil {
			l.log.Error("kubelet", "node", spec.Name, "err", err)
		}
	}()
	// Registered once the Node reports Ready.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, err := l.admin.CoreV1().Nodes().Get(ctx, spec.Name, metav1.GetOptions{}); err == nil && nodeReady(n) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("node %s did not register in 30s; see %s", spec.Name, filepath.Join(l.cp.Dir, "logs", "lab.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l.proxy != nil {
		l.proxy.AddNode(spec.Name, kl.NodeIP())
	}
	return kl, nil
}

func (l *Lab) capacity(spec NodeSpec) (corev1.ResourceList, error) {
	cpu, mem, pods := l.cfg.NodeCPU, l.cfg.NodeMemory, l.cfg.NodePods
	if spec.CPU != "" {
		cpu = spec.CPU
	}
	if spec.Memory != "" {
		mem = spec.Memory
	}
	if spec.Pods != 0 {
		pods = spec.Pods
	}
	if pods > 253 {
		return nil, fmt.Errorf("node pods %d: a node's /24 holds at most 253 pods", pods)
	}
	q := func(field, s string) (resource.Quantity, error) {
		v, err := resource.ParseQuantity(s)
		if err != nil {
			return v, fmt.Errorf("node %s %q: %w", field, s, err)
		}
		return v, nil
	}
	c, err := q("cpu", cpu)
	if err != nil {
		return nil, err
	}
	m, err := q("memory", mem)
	if err != nil {
		return nil, err
	}
	return corev1.ResourceList{
		corev1.ResourceCPU: c, corev1.ResourceMemory: m,
		corev1.ResourcePods: *resource.NewQuantity(int64(pods), resource.DecimalSI),
	}, nil
}

func zoneOf(index int) string { return "lab-" + string(rune('a'+(index-1)%3)) }

// LoseNode takes a node away abruptly, as when an instance dies: its pod
// addresses stop answering (packets dropped, so connections time out), its
// containers are SIGKILLed and its heartbeat stops. The real node-lifecycle
// controller then marks it NotReady and evicts its pods.
func (l *Lab) LoseNode(name string) error {
	l.mu.Lock()
	n, ok := l.nodes[name]
	if !ok {
		l.mu.Unlock()
		return fmt.Errorf("no node %q", name)
	}
	if n.lost {
		l.mu.Unlock()
		return fmt.Errorf("node %s is already lost", name)
	}
	n.lost = true
	var lost []netip.Prefix
	for _, o := range l.nodes {
		if o.lost {
			lost = append(lost, o.rng)
		}
	}
	l.mu.Unlock()
	if err := netns.Blackhole(lost); err != nil {
		return err
	}
	n.kubelet.Lose()
	if l.proxy != nil {
		l.proxy.RemoveNode(name)
	}
	return nil
}

// RemoveNode stops a node's kubelet (its pods are killed) and deletes the
// Node object, as an instance terminated after a drain.
func (l *Lab) RemoveNode(ctx context.Context, name string) error {
	l.mu.Lock()
	n, ok := l.nodes[name]
	if ok {
		delete(l.nodes, name)
	}
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("no node %q", name)
	}
	n.kubelet.Stop()
	n.cancel()
	if l.proxy != nil {
		l.proxy.RemoveNode(name)
	}
	err := l.admin.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting node %s: %w", name, err)
	}
	l.events.Emit(labevent.Event{Time: time.Now(), Source: "lab", Kind: "NodeRemoved", Object: name})
	return nil
}

// NodeInfo describes a node for status.
type NodeInfo struct {
	Name     string `json:"name"`
	IP       string `json:"ip"`
	PodRange string `json:"podRange"`
	Lost     bool   `json:"lost"`
	// ProviderID and Labels are the node's as it was added.
	ProviderID string            `json:"providerID,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// ComponentInfo describes a control-plane process for status.
type ComponentInfo struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	Running bool   `json:"running"`
}

// Status is the lab's own view of itself.
type Status struct {
	Components []ComponentInfo `json:"components"`
	Nodes      []NodeInfo      `json:"nodes"`
}

// Status reports components and nodes.
func (l *Lab) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s Status
	for _, c := range l.components {
		running := true
		select {
		case <-c.proc.Done():
			running = false
		default:
		}
		s.Components = append(s.Components, ComponentInfo{Name: c.name, PID: c.proc.Pid(), Running: running})
	}
	for name, n := range l.nodes {
		s.Nodes = append(s.Nodes, NodeInfo{Name: name, IP: n.kubelet.NodeIP().String(), PodRange: n.rng.String(), Lost: n.lost,
			ProviderID: n.spec.ProviderID, Labels: n.spec.Labels})
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name < s.Nodes[j].Name })
	return s
}

// forward relays connections from the host listener to addr in the lab
// network.
func forward(ctx context.Context, ln net.Listener, addr string) {
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(up, c)
			go pipe(c, up)
			<-done
			<-done
		}()
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// progress prints lab progress: plain lines, or JSON objects with -o json.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	start time.Time
}

func (p *progress) say(step, msg string, fields map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		m := map[string]any{"time": time.Now().Format(time.RFC3339Nano), "step": step, "msg": msg}
		for k, v := range fields {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		fmt.Fprintln(p.w, string(b))
		return
	}
	fmt.Fprintf(p.w, "lab: [%5.1fs] %s\n", time.Since(p.start).Seconds(), msg)
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
