// Package lbc is the lab's twin of the AWS Load Balancer Controller: it
// watches IngressClasses, Ingresses, Services, EndpointSlices, Pods and
// Nodes through the API server, reads the Ingresses' ALB annotations with
// the manifest package (so the checker and the lab read the same values),
// runs one ALB (the alb package, real HTTP) per Ingress group, and
// registers and deregisters ip targets after the controller's reconcile lag,
// the ELBv2 API's latency and the data plane's propagation.
package lbc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"zerodrop.dev/zerodrop/alb"
	"zerodrop.dev/zerodrop/lab/labevent"
	"zerodrop.dev/zerodrop/manifest"
)

// Defaults of the lag pipeline (before the time scale). AWS documents no
// bound on how long a target change takes to reach the data plane; users
// report tens of seconds up to about two minutes (FACTS.md).
const (
	DefaultReconcileLag = time.Second
	DefaultAPILatency   = 500 * time.Millisecond
	DefaultPropagation  = 10 * time.Second
	// DefaultModifyRuleLag is how long a change of an actions.NAME
	// annotation's weights takes to become a ModifyRule call: about 70 s was
	// observed (seed 004), longer under API throttling.
	DefaultModifyRuleLag = 70 * time.Second
	// DefaultTargetConnectTimeout is how long an ALB waits for a target to
	// accept a connection before it answers 504 (10 s on AWS, not
	// configurable there).
	DefaultTargetConnectTimeout = 10 * time.Second
)

// MultiClusterAnnotation on an Ingress puts its target groups in the
// controller's multi-cluster mode: each TargetGroupBinding of such a
// target group manages only its own targets, so another binding may add
// its Service's targets to it.
const MultiClusterAnnotation = "alb.ingress.kubernetes.io/multi-cluster-target-group"

// HostnameDomain ends every ALB's DNS-like name in the Ingress status. The
// lab runs no DNS: the name is there because the controller writes one,
// and it is under .invalid (RFC 6761) so that it never resolves to
// something else; the address to use is the status's ip and port.
const HostnameDomain = "elb.lab.zerodrop.invalid"

// GroupAnnotation puts several Ingresses behind one ALB.
const GroupAnnotation = "alb.ingress.kubernetes.io/group.name"

// Config configures the controller twin.
type Config struct {
	Client kubernetes.Interface
	// Dynamic reads and writes TargetGroupBindings.
	Dynamic dynamic.Interface
	// Events receives register/deregister and target-state events.
	Events labevent.Sink
	// TimeScale multiplies every lag (and the ALBs' own timings).
	TimeScale float64
	// ReconcileLag is how long the controller takes to act on a change;
	// APILatency the ELBv2 call; Propagation the data plane's delay after
	// the API accepted the change.
	ReconcileLag, APILatency, Propagation time.Duration
	// ModifyRuleLag is the delay from a weight change in an actions
	// annotation to the ModifyRule call (the ALB adds Propagation).
	ModifyRuleLag time.Duration
	// TargetConnectTimeout bounds an ALB's connect to a target (default
	// 10 s, scaled by TimeScale by the ALB): a target that does not answer
	// in time, such as a deleted pod's silent address, costs a 504.
	TargetConnectTimeout time.Duration
	// Address gives each new ALB its address inside the lab network.
	Address func() (netip.Addr, error)
	// Expose makes an ALB reachable from the host and returns that
	// address; nil leaves it reachable inside the lab network only.
	Expose func(name, addr string) (string, error)
	// Dir receives the access logs (DIR/alb/GROUP.log); "" for none.
	Dir string
	// ListenPort is the ALBs' listener port in the lab network (default 80).
	ListenPort int
	// Clock drives the controller's lags and resync; nil is the real clock.
	// (The ALBs keep their own real-time timers.)
	Clock clock.WithTickerAndDelayedExecution
	Log   *slog.Logger
}

// Controller is the running twin.
type Controller struct {
	cfg      Config
	recorder record.EventRecorder
	factory  informers.SharedInformerFactory
	// bindings watches TargetGroupBindings (nil without Config.Dynamic).
	bindings cache.SharedIndexInformer
	kick     chan struct{}

	mu     sync.Mutex
	groups map[string]*group
	// warned is the last Warning each user binding got (namespace/name),
	// so a standing problem is reported once, not on every reconcile.
	warned map[string]string

	// unregistered holds, per target group, the targets of a
	// RegisterTargets call the API refused: the next reconcile tries them
	// again, as the controller's reconciler retries a failed model.
	retryMu      sync.Mutex
	unregistered map[*targetGroup][]string
}

type group struct {
	name        string
	fingerprint string
	lb          *alb.LoadBalancer
	addr        string // inside the lab network
	hostAddr    string // on the host, when exposed
	ingresses   []string
	tgs         map[string]*targetGroup
	logFile     *os.File
	// weights are each rule's forward action as last sent to the ALB (or
	// scheduled), by priority.
	weights map[int][]alb.WeightedTargetGroup
}

type targetGroup struct {
	name, namespace, service, portName string
	servicePort                        string
	nodePort                           int32           // instance mode: targets are the nodes on this port
	intended                           map[string]bool // registered or about to be
	// multiCluster: the Ingress asked for the controller's multi-cluster
	// mode, so user bindings may share the target group.
	multiCluster bool
	// users are the user-made TargetGroupBindings bound to this target
	// group, as of the last reconcile.
	users []*userBinding
}

// New makes the controller twin; Run starts it.
func New(cfg Config) *Controller {
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.ReconcileLag == 0 {
		cfg.ReconcileLag = DefaultReconcileLag
	}
	if cfg.APILatency == 0 {
		cfg.APILatency = DefaultAPILatency
	}
	if cfg.Propagation == 0 {
		cfg.Propagation = DefaultPropagation
	}
	if cfg.ModifyRuleLag == 0 {
		cfg.ModifyRuleLag = DefaultModifyRuleLag
	}
	if cfg.TargetConnectTimeout == 0 {
		cfg.TargetConnectTimeout = DefaultTargetConnectTimeout
	}
	if cfg.Events == nil {
		cfg.Events = labevent.Discard{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.ListenPort == 0 {
		cfg.ListenPort = 80
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Controller{cfg: cfg, kick: make(chan struct{}, 1), groups: map[string]*group{}, warned: map[string]string{}, unregistered: map[*targetGroup][]string{}}
}

// after runs f in its own goroutine once d has passed on the controller's
// clock (a fake clock runs AfterFunc callbacks while it holds its lock, so
// f must not run there).
func (c *Controller) after(d time.Duration, f func()) {
	c.cfg.Clock.AfterFunc(d, func() { go f() })
}

func (c *Controller) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.cfg.TimeScale)
}

func (c *Controller) emit(kind, object, msg string, fields map[string]any) {
	c.emitAt(c.cfg.Clock.Now(), kind, object, msg, fields)
}

// emitAt records an event at a given time: an API call's event carries
// the time the call was made, from which the ALB counts its propagation,
// not the time it returned.
func (c *Controller) emitAt(at time.Time, kind, object, msg string, fields map[string]any) {
	c.cfg.Events.Emit(labevent.Event{Time: at, Source: "lbc", Kind: kind, Object: object, Message: msg, Fields: fields})
}

// Run watches the cluster and reconciles until ctx ends; the ALBs close
// with it.
func (c *Controller) Run(ctx context.Context) error {
	bcast := record.NewBroadcaster(record.WithContext(ctx))
	bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.cfg.Client.CoreV1().Events("")})
	defer bcast.Shutdown()
	c.recorder = bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "ingress"})
	c.factory = informers.NewSharedInformerFactory(c.cfg.Client, 0)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.queue() },
		UpdateFunc: func(_, _ any) { c.queue() },
		DeleteFunc: func(any) { c.queue() },
	}
	for _, inf := range []cache.SharedIndexInformer{
		c.factory.Networking().V1().IngressClasses().Informer(),
		c.factory.Networking().V1().Ingresses().Informer(),
		c.factory.Core().V1().Services().Informer(),
		c.factory.Discovery().V1().EndpointSlices().Informer(),
		c.factory.Core().V1().Pods().Informer(),
		c.factory.Core().V1().Nodes().Informer(),
	} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("load balancer controller: %w", err)
		}
	}
	c.factory.Start(ctx.Done())
	c.factory.WaitForCacheSync(ctx.Done())
	if c.cfg.Dynamic != nil {
		dyn := dynamicinformer.NewDynamicSharedInformerFactory(c.cfg.Dynamic, 0)
		c.bindings = dyn.ForResource(TargetGroupBindingResource).Informer()
		if _, err := c.bindings.AddEventHandler(handler); err != nil {
			return fmt.Errorf("load balancer controller: %w", err)
		}
		dyn.Start(ctx.Done())
		dyn.WaitForCacheSync(ctx.Done())
		defer dyn.Shutdown()
	}
	defer c.closeAll()
	// The controller re-checks every 15 s even without events.
	resync := c.cfg.Clock.NewTicker(c.scaled(15 * time.Second))
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			c.factory.Shutdown()
			return nil
		case <-c.kick:
		case <-resync.C():
		}
		// Coalesce a burst of watch events into one reconcile.
		select {
		case <-ctx.Done():
		case <-c.cfg.Clock.After(c.scaled(50 * time.Millisecond)):
		}
		c.reconcile(ctx)
	}
}

func (c *Controller) queue() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, g := range c.groups {
		c.closeGroup(g)
		delete(c.groups, name)
	}
}

func (c *Controller) closeGroup(g *group) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.lb.Close(ctx)
	if g.logFile != nil {
		g.logFile.Close()
	}
	c.emit("LoadBalancerDeleted", g.name, "", nil)
}

// model reads the cluster's IngressClasses, Ingresses and Services with the
// manifest package, as `zerodrop check` reads files.
func (c *Controller) model() (*manifest.Model, map[string]*networkingv1.Ingress, error) {
	var docs []string
	add := func(obj any, apiVersion, kind string) error {
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		m["apiVersion"], m["kind"] = apiVersion, kind
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "managedFields")
		}
		b, err = json.Marshal(m)
		docs = append(docs, string(b))
		return err
	}
	classes, _ := c.factory.Networking().V1().IngressClasses().Lister().List(labels.Everything())
	for _, ic := range classes {
		if err := add(ic, "networking.k8s.io/v1", "IngressClass"); err != nil {
			return nil, nil, err
		}
	}
	ings, _ := c.factory.Networking().V1().Ingresses().Lister().List(labels.Everything())
	byRef := map[string]*networkingv1.Ingress{}
	nsUsed := map[string]bool{}
	for _, ing := range ings {
		if err := add(ing, "networking.k8s.io/v1", "Ingress"); err != nil {
			return nil, nil, err
		}
		byRef[ing.Namespace+"/"+ing.Name] = ing
		nsUsed[ing.Namespace] = true
	}
	svcs, _ := c.factory.Core().V1().Services().Lister().List(labels.Everything())
	for _, s := range svcs {
		if nsUsed[s.Namespace] {
			if err := add(s, "v1", "Service"); err != nil {
				return nil, nil, err
			}
		}
	}
	return manifest.Parse(manifest.Input{Name: "cluster", Data: []byte(strings.Join(docs, "\n---\n"))}), byRef, nil
}

func (c *Controller) reconcile(ctx context.Context) {
	model, ingObjs, err := c.model()
	if err != nil {
		c.cfg.Log.Error("reading the cluster", "err", err)
		return
	}
	// Ingresses by group; an Ingress with an unreadable annotation keeps its
	// group's last good configuration, with an Event saying why.
	bad := map[string][]string{}
	for _, d := range model.Diagnostics {
		if d.Kind == manifest.DiagField && strings.HasPrefix(d.Object, "Ingress/") {
			ref := strings.TrimPrefix(d.Object, "Ingress/")
			bad[ref] = append(bad[ref], d.Message)
		}
	}
	groups := map[string][]*manifest.Ingress{}
	for _, ing := range model.Ingresses {
		if !ing.ALB {
			continue
		}
		name := ing.Namespace + "/" + ing.Name
		if g := ing.Annotations[GroupAnnotation]; g != "" {
			name = g
		}
		groups[name] = append(groups[name], ing)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, ings := range groups {
		var problems []string
		for _, ing := range ings {
			ref := ing.Namespace + "/" + ing.Name
			if msgs := bad[ref]; len(msgs) > 0 {
				if obj := ingObjs[ref]; obj != nil {
					c.recorder.Eventf(obj, corev1.EventTypeWarning, "FailedBuildModel", "Failed build model due to %s", strings.Join(msgs, "; "))
				}
				problems = append(problems, msgs...)
			}
		}
		if len(problems) > 0 {
			// The model does not build: the ALB keeps its last good
			// configuration (none, for a new group), while targets keep
			// following the endpoints as the TargetGroupBinding reconciler
			// does (below).
			continue
		}
		if err := c.ensureGroup(ctx, name, ings, model, ingObjs); err != nil {
			c.cfg.Log.Error("reconciling load balancer", "group", name, "err", err)
			for _, ing := range ings {
				if obj := ingObjs[ing.Namespace+"/"+ing.Name]; obj != nil {
					c.recorder.Eventf(obj, corev1.EventTypeWarning, "FailedDeployModel", "Failed deploy model due to %v", err)
				}
			}
		}
	}
	for name, g := range c.groups {
		if _, ok := groups[name]; !ok {
			c.closeGroup(g)
			delete(c.groups, name)
		}
	}
	c.bindUserTGBs(ctx)
	for _, g := range c.groups {
		for _, tg := range g.tgs {
			c.syncTargets(g, tg)
		}
	}
}

// tgName names a target group as the controller does: k8s-NS-SVC-HASH.
func tgName(ns, svc, port string) string {
	sum := sha256.Sum256([]byte(ns + "/" + svc + ":" + port))
	trunc := func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	}
	return "k8s-" + trunc(ns, 8) + "-" + trunc(svc, 8) + "-" + hex.EncodeToString(sum[:])[:10]
}

func (c *Controller) ensureGroup(ctx context.Context, name string, ings []*manifest.Ingress, model *manifest.Model, ingObjs map[string]*networkingv1.Ingress) error {
	sort.Slice(ings, func(i, j int) bool { return ings[i].Namespace+"/"+ings[i].Name < ings[j].Namespace+"/"+ings[j].Name })
	cfg := alb.Config{Name: "k8s-" + strings.NewReplacer("/", "-", ".", "-").Replace(name), Admin: "off", TimeScale: c.cfg.TimeScale}
	if len(cfg.Name) > 32 {
		cfg.Name = cfg.Name[:32]
	}
	cfg.ControlPlaneLatency.Default = alb.Duration(c.cfg.Propagation)
	cfg.ConnectTimeout = alb.Duration(c.cfg.TargetConnectTimeout)
	tgs := map[string]*targetGroup{}
	tgKey := map[string]string{} // ns/svc:port -> tg name
	for _, tg := range model.TargetGroups {
		if tg.Ingress == nil || !containsIngress(ings, tg.Ingress) {
			continue
		}
		ns := tg.Ingress.Namespace
		var nodePort int32
		switch tg.TargetType.Value {
		case manifest.TargetIP:
		case manifest.TargetInstance:
			np, err := c.nodePort(ns, tg.ServiceName, tg.ServicePort)
			if err != nil {
				return err
			}
			nodePort = np
		default:
			return fmt.Errorf("target group of %s:%s: unknown target-type %q", tg.ServiceName, tg.ServicePort, tg.TargetType.Value)
		}
		n := tgName(ns, tg.ServiceName, tg.ServicePort)
		if _, dup := tgs[n]; dup {
			continue
		}
		portName, err := c.servicePortName(ns, tg.ServiceName, tg.ServicePort)
		if err != nil {
			return err
		}
		hc := tg.HealthCheck
		enabled := true
		dereg := alb.Duration(tg.Attributes.DeregistrationDelay.Value)
		cfg.TargetGroups = append(cfg.TargetGroups, alb.TargetGroupConfig{
			Name: n,
			HealthCheck: alb.HealthCheckConfig{
				Enabled: &enabled, Path: hc.Path.Value, Port: hc.Port.Value,
				Interval: alb.Duration(hc.Interval.Value), Timeout: alb.Duration(hc.Timeout.Value),
				HealthyThreshold: int(hc.HealthyThreshold.Value), UnhealthyThreshold: int(hc.UnhealthyThreshold.Value),
				SuccessCodes: hc.SuccessCodes.Value,
			},
			DeregistrationDelay: &dereg,
			SlowStart:           alb.Duration(tg.Attributes.SlowStart.Value),
			Algorithm:           tg.Attributes.Algorithm.Value,
		})
		cfg.IdleTimeout = alb.Duration(tg.LB.IdleTimeout.Value)
		tgs[n] = &targetGroup{name: n, namespace: ns, service: tg.ServiceName, portName: portName, servicePort: tg.ServicePort, nodePort: nodePort, intended: map[string]bool{},
			multiCluster: tg.Ingress.Annotations[MultiClusterAnnotation] == "true"}
		tgKey[ns+"/"+tg.ServiceName+":"+tg.ServicePort] = n
	}
	priority := 0
	for _, ing := range ings {
		for _, b := range ing.Backends {
			var fwd []alb.WeightedTargetGroup
			if b.ServicePort == "use-annotation" {
				for _, a := range ing.Actions {
					if a.Name != b.ServiceName {
						continue
					}
					for _, wt := range a.TargetGroups {
						if n, ok := tgKey[ing.Namespace+"/"+wt.ServiceName+":"+wt.ServicePort]; ok {
							w := int(wt.Weight)
							fwd = append(fwd, alb.WeightedTargetGroup{TargetGroup: n, Weight: &w})
						}
					}
				}
			} else if n, ok := tgKey[ing.Namespace+"/"+b.ServiceName+":"+b.ServicePort]; ok {
				fwd = []alb.WeightedTargetGroup{{TargetGroup: n}}
			}
			if len(fwd) == 0 {
				continue
			}
			priority++
			rc := alb.RuleConfig{Priority: priority, Forward: fwd}
			if b.Path != "" && b.Path != "/" && b.Path != "/*" {
				rc.PathPrefixes = []string{strings.TrimSuffix(b.Path, "*")}
			}
			cfg.Rules = append(cfg.Rules, rc)
		}
	}
	if len(cfg.Rules) == 0 {
		return fmt.Errorf("no rule routes to a Service the lab can resolve")
	}
	// Weights change through ModifyRule on the running ALB; anything else
	// builds a new one.
	structural := cfg
	structural.Rules = nil
	weights := map[int][]alb.WeightedTargetGroup{}
	for _, r := range cfg.Rules {
		weights[r.Priority] = r.Forward
		bare := r
		bare.Forward = nil
		for _, f := range r.Forward {
			bare.Forward = append(bare.Forward, alb.WeightedTargetGroup{TargetGroup: f.TargetGroup})
		}
		structural.Rules = append(structural.Rules, bare)
	}
	fpBytes, _ := json.Marshal(structural)
	fingerprint := string(fpBytes)
	g := c.groups[name]
	if g != nil && g.fingerprint == fingerprint {
		c.modifyWeights(g, weights)
	}
	if g == nil || g.fingerprint != fingerprint {
		if g != nil {
			c.closeGroup(g)
		}
		var err error
		if g, err = c.newGroup(name, cfg); err != nil {
			return err
		}
		g.fingerprint = fingerprint
		g.tgs = tgs
		g.weights = weights
		c.groups[name] = g
	}
	for _, ing := range ings {
		g.ingresses = appendUnique(g.ingresses, ing.Namespace+"/"+ing.Name)
		c.updateStatus(ctx, ingObjs[ing.Namespace+"/"+ing.Name], g)
	}
	for _, tg := range g.tgs {
		if c.cfg.Dynamic != nil {
			if err := c.ensureBinding(ctx, name, tg, tg.servicePort); err != nil {
				c.cfg.Log.Warn("target group binding", "err", err)
			}
		}
	}
	return nil
}

// modifyWeights schedules a ModifyRule for every rule whose weights
// changed, after the ModifyRule lag.
func (c *Controller) modifyWeights(g *group, want map[int][]alb.WeightedTargetGroup) {
	for prio, fwd := range want {
		if weightsEqual(g.weights[prio], fwd) {
			continue
		}
		g.weights[prio] = fwd
		var tuples []alb.TargetGroupTuple
		desc := map[string]int{}
		for _, f := range fwd {
			tuples = append(tuples, alb.TargetGroupTuple{TargetGroupName: f.TargetGroup, Weight: f.Weight})
			if f.Weight != nil {
				desc[f.TargetGroup] = *f.Weight
			}
		}
		lb, prio := g.lb, prio
		c.emit("WeightChangeSeen", g.name, "", map[string]any{"priority": prio, "weights": desc})
		c.after(c.scaled(c.cfg.ModifyRuleLag), func() {
			at := c.cfg.Clock.Now()
			out, err := lb.ModifyRule(alb.ModifyRuleInput{Priority: prio, Actions: []alb.Action{{Type: "forward", ForwardConfig: alb.ForwardConfig{TargetGroups: tuples}}}})
			c.emitAt(at, "ModifyRule", g.name, errText(err), map[string]any{"priority": prio, "weights": desc, "effectiveAt": out.EffectiveAt})
		})
	}
}

func weightsEqual(a, b []alb.WeightedTargetGroup) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		wa, wb := 1, 1
		if a[i].Weight != nil {
			wa = *a[i].Weight
		}
		if b[i].Weight != nil {
			wb = *b[i].Weight
		}
		if a[i].TargetGroup != b[i].TargetGroup || wa != wb {
			return false
		}
	}
	return true
}

func containsIngress(list []*manifest.Ingress, ing *manifest.Ingress) bool {
	for _, i := range list {
		if i == ing {
			return true
		}
	}
	return false
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// nodePort finds the NodePort of a Service port for instance mode, which
// needs a NodePort or LoadBalancer Service, as the controller requires.
func (c *Controller) nodePort(ns, svc, port string) (int32, error) {
	s, err := c.factory.Core().V1().Services().Lister().Services(ns).Get(svc)
	if err != nil {
		return 0, fmt.Errorf("service %s/%s: %w", ns, svc, err)
	}
	if s.Spec.Type != corev1.ServiceTypeNodePort && s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return 0, fmt.Errorf("service %s/%s: target-type instance needs a NodePort or LoadBalancer Service, not %s", ns, svc, s.Spec.Type)
	}
	for _, p := range s.Spec.Ports {
		if (p.Name == port || strconv.Itoa(int(p.Port)) == port) && p.NodePort != 0 {
			return p.NodePort, nil
		}
	}
	return 0, fmt.Errorf("service %s/%s has no node port for %s", ns, svc, port)
}

// instanceTargets are the nodes fit to take traffic: Ready, not excluded
// from load balancers, not being removed by an autoscaler.
func (c *Controller) instanceTargets(port int32) []Target {
	nodes, _ := c.factory.Core().V1().Nodes().Lister().List(labels.Everything())
	var out []Target
	for _, n := range nodes {
		if _, excluded := n.Labels["node.kubernetes.io/exclude-from-external-load-balancers"]; excluded || n.DeletionTimestamp != nil {
			continue
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
		}
		if !ready || !suitableAsTrafficProxy(n) {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				out = append(out, Target{Addr: net.JoinHostPort(a.Address, strconv.Itoa(int(port))), Reason: "node " + n.Name})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// suitableAsTrafficProxy tells whether a node may stay a target, as the
// controller tells it: not once an autoscaler has marked it for removal,
// the cluster autoscaler with its ToBeDeletedByClusterAutoscaler taint or
// Karpenter with karpenter.sh/disrupted:NoSchedule (the controller reads
// both since kubernetes-sigs/aws-load-balancer-controller#4022).
func suitableAsTrafficProxy(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == "ToBeDeletedByClusterAutoscaler" || t.Key == "karpenter.sh/disrupted" && t.Effect == corev1.TaintEffectNoSchedule {
			return false
		}
	}
	return true
}

// servicePortName resolves an Ingress backend port (name or number) to the
// Service port's name, which EndpointSlice ports carry.
func (c *Controller) servicePortName(ns, svc, port string) (string, error) {
	s, err := c.factory.Core().V1().Services().Lister().Services(ns).Get(svc)
	if err != nil {
		return "", fmt.Errorf("service %s/%s: %w", ns, svc, err)
	}
	for _, p := range s.Spec.Ports {
		if p.Name == port || strconv.Itoa(int(p.Port)) == port {
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("service %s/%s has no port %s", ns, svc, port)
}

func (c *Controller) newGroup(name string, cfg alb.Config) (*group, error) {
	addr, err := c.cfg.Address()
	if err != nil {
		return nil, err
	}
	cfg.Listen = net.JoinHostPort(addr.String(), strconv.Itoa(c.cfg.ListenPort))
	opts := alb.Options{OnEvent: func(e alb.Event) {
		fields := map[string]any{"targetGroup": e.TargetGroup, "target": e.Target}
		if e.State != "" {
			fields["state"], fields["previousState"], fields["reason"] = e.State, e.PreviousState, e.Reason
		}
		c.cfg.Events.Emit(labevent.Event{Time: e.Time, Source: "alb/" + name, Kind: "ALB" + e.Kind, Object: e.Target, Message: e.Msg, Fields: fields})
		if e.Kind == alb.EventTargetState || e.Kind == alb.EventRegistered {
			c.queue() // readiness gates follow target health
		}
	}}
	g := &group{name: name}
	if c.cfg.Dir != "" {
		if err := os.MkdirAll(filepath.Join(c.cfg.Dir, "alb"), 0o755); err == nil {
			f, err := os.OpenFile(filepath.Join(c.cfg.Dir, "alb", strings.ReplaceAll(name, "/", "_")+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				g.logFile, opts.AccessLog = f, f
			}
		}
	}
	lb, err := alb.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("load balancer for %s: %w", name, err)
	}
	if err := lb.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("starting load balancer for %s: %w", name, err)
	}
	g.lb, g.addr = lb, lb.Addr()
	if c.cfg.Expose != nil {
		if g.hostAddr, err = c.cfg.Expose(name, g.addr); err != nil {
			c.cfg.Log.Warn("exposing load balancer on the host", "group", name, "err", err)
		}
	}
	c.emit("LoadBalancerCreated", name, "", map[string]any{"address": g.addr, "hostAddress": g.hostAddr})
	return g, nil
}

func (c *Controller) updateStatus(ctx context.Context, ing *networkingv1.Ingress, g *group) {
	if ing == nil {
		return
	}
	addr := g.hostAddr
	if addr == "" {
		addr = g.addr
	}
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	hostname := Hostname(g.name)
	want := []networkingv1.IngressLoadBalancerIngress{{IP: host, Hostname: hostname, Ports: []networkingv1.IngressPortStatus{{Port: int32(port), Protocol: corev1.ProtocolTCP}}}}
	cur := ing.Status.LoadBalancer.Ingress
	if len(cur) == 1 && cur[0].IP == host && cur[0].Hostname == hostname && len(cur[0].Ports) == 1 && cur[0].Ports[0].Port == int32(port) {
		return
	}
	upd := ing.DeepCopy()
	upd.Status.LoadBalancer.Ingress = want
	if _, err := c.cfg.Client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		c.cfg.Log.Warn("ingress status", "ingress", ing.Namespace+"/"+ing.Name, "err", err)
		return
	}
	c.recorder.Eventf(ing, corev1.EventTypeNormal, "SuccessfullyReconciled", "Successfully reconciled")
}

// syncTargets registers new targets and deregisters gone ones, each after
// the reconcile lag and the API latency (the ALB adds the propagation).
func (c *Controller) syncTargets(g *group, tg *targetGroup) {
	slices, _ := c.factory.Discovery().V1().EndpointSlices().Lister().EndpointSlices(tg.namespace).List(
		labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: tg.service}))
	pods := func(ns, name string) *corev1.Pod {
		p, _ := c.factory.Core().V1().Pods().Lister().Pods(ns).Get(name)
		return p
	}
	nodes := func(name string) *corev1.Node {
		n, _ := c.factory.Core().V1().Nodes().Lister().Get(name)
		return n
	}
	c.retryMu.Lock()
	for _, addr := range c.unregistered[tg] {
		delete(tg.intended, addr)
	}
	delete(c.unregistered, tg)
	c.retryMu.Unlock()
	// A target still in its deregistration delay cannot be registered
	// again (the API refuses the whole call): it waits until its drain
	// ends, so it cannot hold back the other new targets.
	draining := map[string]bool{}
	if d, err := g.lb.DescribeTargetHealth(alb.DescribeTargetHealthInput{TargetGroupName: tg.name}); err == nil {
		for _, t := range d.TargetHealthDescriptions {
			if t.TargetHealth.State == alb.StateDraining {
				draining[t.Target.String()] = true
			}
		}
	}
	desired := map[string]Target{}
	targets := IPTargets(slices, tg.portName, pods, nodes)
	if tg.nodePort != 0 {
		targets = c.instanceTargets(tg.nodePort)
	}
	for _, t := range targets {
		desired[t.Addr] = t
	}
	// User bindings sharing the target group add their Service's targets;
	// each owns its own (the controller's multi-cluster mode).
	userTargets := make([]map[string]Target, len(tg.users))
	for i, u := range tg.users {
		userTargets[i] = map[string]Target{}
		ts := c.instanceTargets(u.nodePort)
		if u.nodePort == 0 {
			uslices, _ := c.factory.Discovery().V1().EndpointSlices().Lister().EndpointSlices(u.namespace).List(
				labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: u.service}))
			ts = IPTargets(uslices, u.portName, pods, nodes)
		}
		for _, t := range ts {
			userTargets[i][t.Addr] = t
			if _, dup := desired[t.Addr]; !dup {
				desired[t.Addr] = t
			}
		}
	}
	var add, remove []alb.TargetDescription
	for addr := range desired {
		if !tg.intended[addr] && !draining[addr] {
			add = append(add, targetDesc(addr))
			tg.intended[addr] = true
		}
	}
	for addr := range tg.intended {
		if _, ok := desired[addr]; !ok {
			remove = append(remove, targetDesc(addr))
			delete(tg.intended, addr)
		}
	}
	if tg.nodePort == 0 {
		own := map[string]Target{}
		for _, t := range targets {
			own[t.Addr] = t
		}
		c.syncGates(context.Background(), g, tg, corev1.PodConditionType(GatePrefix+tg.name), own)
		for i, u := range tg.users {
			c.syncGates(context.Background(), g, tg, u.gate, userTargets[i])
		}
	}
	delay := c.scaled(c.cfg.ReconcileLag + c.cfg.APILatency)
	lb := g.lb
	if len(add) == 0 && len(remove) == 0 {
		return
	}
	// One reconcile's calls go out in order, registrations first: a target
	// group whose targets are all replaced at once (a Service's selector
	// switched, as Argo Rollouts does at promotion) never has none
	// registered in between.
	c.after(delay, func() {
		if len(add) > 0 {
			at := c.cfg.Clock.Now()
			out, err := lb.RegisterTargets(alb.TargetsInput{TargetGroupName: tg.name, Targets: add})
			c.emitAt(at, "RegisterTargets", tg.name, errText(err), map[string]any{"targets": descs(add), "effectiveAt": out.EffectiveAt})
			if err != nil {
				c.retryMu.Lock()
				c.unregistered[tg] = append(c.unregistered[tg], descs(add)...)
				c.retryMu.Unlock()
				c.queue()
			}
		}
		if len(remove) > 0 {
			at := c.cfg.Clock.Now()
			out, err := lb.DeregisterTargets(alb.TargetsInput{TargetGroupName: tg.name, Targets: remove})
			c.emitAt(at, "DeregisterTargets", tg.name, errText(err), map[string]any{"targets": descs(remove), "effectiveAt": out.EffectiveAt})
		}
	})
}

func targetDesc(addr string) alb.TargetDescription {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return alb.TargetDescription{ID: host, Port: p}
}

func descs(ts []alb.TargetDescription) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	sort.Strings(out)
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TargetHealth describes every target of every load balancer, as
// aws elbv2 describe-target-health does, by group and target group.
func (c *Controller) TargetHealth() map[string]map[string][]alb.TargetHealthDescription {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]map[string][]alb.TargetHealthDescription{}
	for name, g := range c.groups {
		out[name] = map[string][]alb.TargetHealthDescription{}
		for tgn := range g.tgs {
			d, err := g.lb.DescribeTargetHealth(alb.DescribeTargetHealthInput{TargetGroupName: tgn})
			if err == nil {
				out[name][tgn] = d.TargetHealthDescriptions
			}
		}
	}
	return out
}

// LoadBalancers lists each group's addresses: inside the lab network and
// on the host.
func (c *Controller) LoadBalancers() map[string][2]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][2]string{}
	for name, g := range c.groups {
		out[name] = [2]string{g.addr, g.hostAddr}
	}
	return out
}
