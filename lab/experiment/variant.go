package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"zerodrop.dev/zerodrop/check"
	"zerodrop.dev/zerodrop/lab"
	"zerodrop.dev/zerodrop/lab/lbc"
	"zerodrop.dev/zerodrop/manifest"
)

// setup is what the experiment learned of a variant's manifests before
// applying them.
type setup struct {
	kind, namespace, name string // the app workload behind the Ingress
	selector              map[string]string
	replicas              int
	ingress               string // namespace/name of its Ingress
	group                 string // the Ingress group (alb.ingress.kubernetes.io/group.name), if any
	termination           *check.Timeline
	healthCheck           *manifest.HealthCheck // the app's target group's, controller defaults filled in
	findings              []string
	checkErrors           int
	config                map[string]string
}

// readSetup loads the manifests as zerodrop check does and picks the
// served workload.
func readSetup(ctx context.Context, cfg *Config, v Variant) (*setup, error) {
	src := manifest.Sources{Files: v.Files}
	if v.Kustomize != "" {
		src.Kustomize = []string{v.Kustomize}
	}
	model, err := manifest.Load(ctx, src)
	if err != nil {
		return nil, err
	}
	ccfg := check.DefaultConfig()
	ccfg.DeregistrationPropagation = cfg.lbLag()
	if cfg.LBModifyRule > 0 {
		ccfg.WeightChangeLag = cfg.LBModifyRule
	}
	rep := check.Run(model, ccfg)
	s := &setup{checkErrors: rep.Counts["error"], config: map[string]string{}}
	for _, f := range rep.All() {
		s.findings = append(s.findings, fmt.Sprintf("%s %s: %s", f.RuleID, f.Object, f.Message))
	}
	for i, w := range rep.Workloads {
		mw := model.Workloads[i]
		if !w.Served || (mw.Kind != "Deployment" && mw.Kind != "Rollout") {
			continue
		}
		s.kind, s.namespace, s.name = mw.Kind, mw.Namespace, mw.Name
		if s.namespace == "" {
			s.namespace = "default"
		}
		s.selector = mw.Selector
		s.replicas = int(mw.Replicas.Value)
		if s.replicas == 0 && mw.Replicas.Default {
			s.replicas = 1
		}
		s.termination = w.Termination
		if len(mw.TargetGroups) > 0 {
			hc := mw.TargetGroups[0].HealthCheck
			s.healthCheck = &hc
		}
		break
	}
	if s.name == "" {
		return nil, errors.New("no Deployment or Rollout behind an Ingress in the manifests (zerodrop check finds none served)")
	}
	want := cfg.Scenario.Setup
	if (want == "rollout") != (s.kind == "Rollout") {
		return nil, fmt.Errorf("scenario %s needs a %s, the manifests serve a %s (%s/%s)", cfg.Scenario.Name, want, s.kind, s.namespace, s.name)
	}
	for _, ing := range model.Ingresses {
		ns := ing.Namespace
		if ns == "" {
			ns = "default"
		}
		if ns == s.namespace {
			s.ingress = ns + "/" + ing.Name
			s.group = ing.Annotations["alb.ingress.kubernetes.io/group.name"]
			break
		}
	}
	if s.termination != nil {
		for _, e := range s.termination.Events {
			s.config["check.termination."+fmt.Sprintf("%06.1fs", e.At.Seconds())] = e.What
		}
	}
	return s, nil
}

// lbLag is the deregistration propagation the lab's controller twin
// gives (reconcile + API + data plane), before time scale.
func (c *Config) lbLag() time.Duration {
	pick := func(v, d time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return d
	}
	return pick(c.LBReconcileLag, lbc.DefaultReconcileLag) + pick(c.LBAPILatency, lbc.DefaultAPILatency) + pick(c.LBPropagation, lbc.DefaultPropagation)
}

// running is a variant's lab while it runs.
type running struct {
	cfg     *Config
	v       Variant
	s       *setup
	dir     string
	labDir  string
	state   lab.State
	cs      kubernetes.Interface
	ctl     *lab.Client
	say     func(phase, format string, args ...any)
	lbHost  string // host:port of the ALB on the host
	lbGroup string

	mu       sync.Mutex
	replicas int
}

func runVariant(ctx context.Context, cfg *Config, v Variant) (*VariantResult, error) {
	dir := filepath.Join(cfg.Out, v.Name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	started := time.Now()
	say := progressFunc(cfg, v.Name, started)
	s, err := readSetup(ctx, cfg, v)
	if err != nil {
		return nil, fmt.Errorf("reading the manifests: %w", err)
	}
	say("check", "%d finding(s), %d error(s) in the manifests", len(s.findings), s.checkErrors)

	r := &running{cfg: cfg, v: v, s: s, dir: dir, labDir: filepath.Join(dir, "lab"), say: say}
	labLog, err := os.Create(filepath.Join(dir, "lab.log"))
	if err != nil {
		return nil, err
	}
	defer labLog.Close()
	labCfg := lab.Config{
		Dir: r.labDir, Nodes: cfg.Preset.Nodes, TimeScale: cfg.TimeScale, Binary: cfg.Binary, PodBinary: cfg.PodBinary,
		NodeMonitorGracePeriod: 50 * time.Second, TolerationSeconds: 300,
		LBReconcileLag: cfg.LBReconcileLag, LBAPILatency: cfg.LBAPILatency, LBPropagation: cfg.LBPropagation, LBModifyRule: cfg.LBModifyRule,
	}
	if cfg.NodePool != "" {
		labCfg.Nodes = 0
		labCfg.Karpenter.Enabled = true
	}
	labCtx, stopLab := context.WithCancel(context.Background())
	upDone := make(chan error, 1)
	ready := make(chan lab.State, 1)
	go func() { upDone <- lab.Up(labCtx, labCfg, labLog, func(st lab.State) { ready <- st }) }()
	defer func() {
		stopLab()
		select {
		case <-upDone:
		case <-time.After(60 * time.Second):
		}
	}()
	if cfg.NodePool != "" {
		say("lab", "booting a lab; nodes from Karpenter (time scale %g)", cfg.TimeScale)
	} else {
		say("lab", "booting a lab with %d nodes (time scale %g)", labCfg.Nodes, cfg.TimeScale)
	}
	select {
	case r.state = <-ready:
	case err := <-upDone:
		return nil, fmt.Errorf("lab up: %v (see %s)", err, labLog.Name())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	say("lab", "lab up in %.1fs, API server %s", time.Since(started).Seconds(), r.state.APIServer)
	if r.cs, err = lab.Clientset(r.state.Kubeconfig); err != nil {
		return nil, err
	}
	if r.ctl, err = lab.Connect(r.labDir); err != nil {
		return nil, err
	}
	if err := r.apply(ctx); err != nil {
		return nil, err
	}
	res, err := r.measure(ctx)
	return res, err
}

// apply creates the namespace and the database Secret, then applies the
// manifests with kubectl (built into zerodrop) to the lab's API server.
func (r *running) apply(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.s.namespace}}
	if _, err := r.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", r.s.namespace, err)
	}
	// Every pod of the app writes to one SQLite database, as every pod on
	// EKS writes to one PostgreSQL: lost writes are then the termination
	// chain's doing, not the storage's.
	dsn := "sqlite:" + filepath.Join(r.dir, "orders.db")
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "zerodrop-db", Namespace: r.s.namespace}, StringData: map[string]string{"dsn": dsn}}
	if _, err := r.cs.CoreV1().Secrets(r.s.namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the database secret: %w", err)
	}
	if r.cfg.NodePool != "" {
		if err := r.kubectl(ctx, "nodepool.log", "apply", "-f", r.cfg.NodePool); err != nil {
			return err
		}
	}
	args := []string{"apply"}
	if r.v.Kustomize != "" {
		args = append(args, "-k", r.v.Kustomize)
	}
	for _, f := range r.v.Files {
		args = append(args, "-f", f)
	}
	return r.kubectl(ctx, "apply.log", args...)
}

// kubectl runs zerodrop kubectl against the lab, keeping its output in
// the variant's folder.
func (r *running) kubectl(ctx context.Context, logName string, args ...string) error {
	args = append([]string{"kubectl", "--kubeconfig", r.state.Kubeconfig}, args...)
	var out bytes.Buffer
	// The lab installs CRDs (Karpenter's, Argo's) as it starts: retry
	// a few times while a kind is not served yet.
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		out.Reset()
		cmd := exec.CommandContext(ctx, r.cfg.Binary, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err = cmd.Run(); err == nil || !strings.Contains(out.String(), "ensure CRDs are installed") {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	_ = os.WriteFile(filepath.Join(r.dir, logName), out.Bytes(), 0o644)
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args[3:], " "), err, strings.TrimSpace(out.String()))
	}
	r.say("apply", "%s: %d object(s) applied", logName, strings.Count(out.String(), "\n"))
	return nil
}

// startReplicas is the replicas the run starts with.
func (r *running) startReplicas() int {
	sc := r.cfg.Scenario
	if sc.Demand != nil {
		return r.cycle(&demand{profile: sc.Demand.ProfileValue(), from: sc.Demand.From.D()}).PointAt(0).Replicas
	}
	if sc.Replicas > 0 {
		return sc.Replicas
	}
	return r.s.replicas
}

// waitServing waits until the app has n ready pods and the load balancer
// has as many healthy targets (ip mode) or every registered target healthy
// (instance mode), and returns the load balancer's host address.
func (r *running) waitServing(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	lastSaid := time.Now()
	for {
		ready, _, err := r.readyPods(ctx)
		if err == nil {
			healthy, total, group, addr := r.targets()
			if addr != "" {
				r.lbHost, r.lbGroup = addr, group
			}
			last = fmt.Sprintf("%d/%d pods ready, %d/%d targets healthy", ready, n, healthy, total)
			if ready == n && addr != "" && healthy > 0 && healthy == total {
				r.say("ready", "%s; load balancer %s on %s", last, group, addr)
				return nil
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving after %s: %s", timeout, last)
		}
		if time.Since(lastSaid) >= 5*time.Second {
			r.say("wait", "%s", last)
			lastSaid = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// readyPods counts the app's Ready pods that are not terminating, and
// returns them per node.
func (r *running) readyPods(ctx context.Context) (int, map[string]int, error) {
	pods, err := r.cs.CoreV1().Pods(r.s.namespace).List(ctx, metav1.ListOptions{LabelSelector: labelSelector(r.s.selector)})
	if err != nil {
		return 0, nil, err
	}
	n, perNode := 0, map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.NodeName != "" {
			perNode[p.Spec.NodeName]++
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n, perNode, nil
}

func labelSelector(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// targets returns the healthy and registered (not draining) targets of the
// app's load balancer, its group name and host address.
func (r *running) targets() (healthy, total int, group, hostAddr string) {
	lbs, err := r.ctl.LoadBalancers()
	if err != nil || len(lbs) == 0 {
		return 0, 0, "", ""
	}
	for name, addrs := range lbs {
		if name == r.s.group || name == r.s.ingress || len(lbs) == 1 {
			group, hostAddr = name, addrs[1]
		}
	}
	th, err := r.ctl.TargetHealth()
	if err != nil {
		return 0, 0, group, hostAddr
	}
	for _, tgs := range th[group] {
		for _, t := range tgs {
			switch t.TargetHealth.State {
			case "healthy":
				healthy++
				total++
			case "draining", "unused":
			default:
				total++
			}
		}
	}
	return healthy, total, group, hostAddr
}

func progressFunc(cfg *Config, variant string, start time.Time) func(phase, format string, args ...any) {
	var mu sync.Mutex
	return func(phase, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		msg := fmt.Sprintf(format, args...)
		if cfg.JSON {
			b, _ := json.Marshal(map[string]any{"variant": variant, "phase": phase, "elapsed": time.Since(start).Seconds(), "msg": msg})
			fmt.Fprintln(cfg.Progress, string(b))
			return
		}
		fmt.Fprintf(cfg.Progress, "[%s %5.1fs] %-8s %s\n", variant, time.Since(start).Seconds(), phase, msg)
	}
}

// scaled multiplies d by the time scale.
func (r *running) scaled(d time.Duration) time.Duration { return r.cfg.scaled(d) }
