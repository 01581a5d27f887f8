// Package kubelet is the lab's kubelet twin: it registers a Node, keeps its
// Lease renewed, and runs the pods the real scheduler binds to it as real
// processes, each listening on the pod's own address. It follows the
// kubelet where the termination chain depends on it: probes with every
// field, restarts with back-off, readiness gates, preStop (exec, httpGet,
// sleep) inside the grace period, SIGTERM, SIGKILL at the deadline (with the
// one-off 2 s extension after an overrunning preStop), then the final
// delete. Every step is a Kubernetes Event and a lab event.
package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"zerodrop.dev/zerodrop/lab/labevent"
)

// Version is the kubelet version the twin reports (the control plane's).
const Version = "v1.34.5"

// Config describes one node.
type Config struct {
	NodeName string
	// PodRange is the node's own block of pod addresses; the node takes the
	// first usable address and its pods the rest.
	PodRange netip.Prefix
	Labels   map[string]string
	Taints   []corev1.Taint
	// ProviderID is the Node's spec.providerID (empty: none).
	ProviderID string
	// Capacity defaults to 4 CPUs, 16 GiB and 110 pods.
	Capacity corev1.ResourceList
	Images   []Image
	Runtime  Runtime
	// Dial opens connections to pods (probes, httpGet hooks); nil uses a
	// plain dialer.
	Dial DialFunc
	// Network sets each pod's address up and tears it down, as the CNI
	// plugin does with the pod sandbox; nil leaves addresses alone.
	Network PodNetwork
	// Clock drives every timer; nil is the real clock.
	Clock clock.WithTicker
	// TimeScale multiplies every duration the kubelet owns or reads from a
	// pod spec (probe timings, grace periods, preStop sleeps, back-off).
	TimeScale float64
	// Dir holds the pods' working directories and container logs.
	Dir string
	// Events receives the lab events; nil discards them.
	Events labevent.Sink
	Log    *slog.Logger
}

// PodNetwork is the pod sandbox's network, as the CNI plugin (on EKS, the
// VPC CNI) handles it. Up runs when a pod is given its address, before any
// of its containers starts; Down when the sandbox is torn down: every
// container has exited (before the final delete), or the kubelet stops with
// the pod still on it. An address is given to a new pod only after Down.
type PodNetwork interface {
	Up(addr netip.Addr) error
	Down(addr netip.Addr) error
}

// Kubelet runs one node.
type Kubelet struct {
	cfg      Config
	client   kubernetes.Interface
	clock    clock.WithTicker
	log      *slog.Logger
	nodeIP   netip.Addr
	recorder record.EventRecorder
	bcast    record.EventBroadcaster

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	ips     map[netip.Addr]types.UID
	lost    bool
	cancel  context.CancelFunc
	done    chan struct{}
	wg      sync.WaitGroup
}

// New makes a kubelet; Run starts it.
func New(client kubernetes.Interface, cfg Config) (*Kubelet, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("kubelet: node name is empty")
	}
	if !cfg.PodRange.IsValid() || !cfg.PodRange.Addr().Is4() || cfg.PodRange.Bits() > 29 {
		return nil, fmt.Errorf("kubelet %s: pod range %v must be an IPv4 prefix of /29 or wider", cfg.NodeName, cfg.PodRange)
	}
	if cfg.Runtime == nil {
		cfg.Runtime = ProcessRuntime{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.Events == nil {
		cfg.Events = labevent.Discard{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Dial == nil {
		d := &net.Dialer{}
		cfg.Dial = d.DialContext
	}
	if cfg.Capacity == nil {
		cfg.Capacity = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("4"),
			corev1.ResourceMemory: resource.MustParse("16Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		}
	}
	k := &Kubelet{
		cfg: cfg, client: client, clock: cfg.Clock,
		log:     cfg.Log.With("node", cfg.NodeName),
		nodeIP:  cfg.PodRange.Masked().Addr().Next(),
		workers: map[types.UID]*podWorker{},
		ips:     map[netip.Addr]types.UID{},
		done:    make(chan struct{}),
	}
	return k, nil
}

// NodeName is the node's name.
func (k *Kubelet) NodeName() string { return k.cfg.NodeName }

// NodeIP is the node's own address (the first of its pod range).
func (k *Kubelet) NodeIP() netip.Addr { return k.nodeIP }

func (k *Kubelet) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * k.cfg.TimeScale)
}

func (k *Kubelet) emit(kind, object, container, msg string, fields map[string]any) {
	k.cfg.Events.Emit(labevent.Event{
		Time: k.clock.Now(), Source: "kubelet/" + k.cfg.NodeName, Kind: kind,
		Object: object, Container: container, Message: msg, Fields: fields,
	})
}

// Run registers the node, then runs its heartbeat and pods until ctx ends
// (pods are then stopped as on a node shutdown: SIGKILL, no status) or the
// node is lost.
func (k *Kubelet) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	k.mu.Lock()
	k.cancel = cancel
	k.mu.Unlock()
	defer close(k.done)
	defer cancel()

	k.bcast = record.NewBroadcaster(record.WithContext(ctx))
	k.bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.client.CoreV1().Events("")})
	defer k.bcast.Shutdown()
	k.recorder = k.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: k.cfg.NodeName})

	if err := k.register(ctx); err != nil {
		return err
	}
	k.emit("NodeRegistered", k.cfg.NodeName, "", "node registered", map[string]any{"ip": k.nodeIP.String()})

	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.cfg.NodeName).String()
		}))
	podInformer := factory.Core().V1().Pods().Informer()
	_, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.podUpdate(ctx, obj) },
		UpdateFunc: func(_, obj any) { k.podUpdate(ctx, obj) },
		DeleteFunc: func(obj any) { k.podGone(obj) },
	})
	if err != nil {
		return fmt.Errorf("kubelet %s: watching pods: %w", k.cfg.NodeName, err)
	}
	factory.Start(ctx.Done())

	k.wg.Add(1)
	go func() { defer k.wg.Done(); k.heartbeat(ctx) }()
	<-ctx.Done()
	k.stopAll()
	factory.Shutdown()
	k.wg.Wait()
	return nil
}

// Lose simulates the abrupt loss of the node: every container is SIGKILLed
// at once, and nothing is reported any more (no status, no lease, no final
// delete). The real node-lifecycle controller notices by the missing lease.
func (k *Kubelet) Lose() {
	k.mu.Lock()
	k.lost = true
	cancel := k.cancel
	k.mu.Unlock()
	k.emit("NodeLost", k.cfg.NodeName, "", "node lost: containers killed, heartbeats stopped", nil)
	if cancel != nil {
		cancel()
	}
	<-k.done
}

// Stop ends the kubelet like Lose, but on purpose (lab shutdown).
func (k *Kubelet) Stop() {
	k.mu.Lock()
	cancel := k.cancel
	k.mu.Unlock()
	if cancel != nil {
		cancel()
		<-k.done
	}
}

func (k *Kubelet) isLost() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lost
}

func (k *Kubelet) stopAll() {
	k.mu.Lock()
	ws := make([]*podWorker, 0, len(k.workers))
	for _, w := range k.workers {
		ws = append(ws, w)
	}
	k.mu.Unlock()
	for _, w := range ws {
		<-w.done
	}
}

func (k *Kubelet) podUpdate(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName != k.cfg.NodeName {
		return
	}
	k.mu.Lock()
	w, exists := k.workers[pod.UID]
	if !exists {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			k.mu.Unlock()
			return // finished before this kubelet started: nothing to run
		}
		ip, err := k.allocateIP(pod.UID)
		if err == nil && k.cfg.Network != nil {
			// A freed address answers again only now, for its new pod.
			if err = k.cfg.Network.Up(ip); err != nil {
				delete(k.ips, ip)
				err = fmt.Errorf("setting up the network of pod %s/%s at %s: %w", pod.Namespace, pod.Name, ip, err)
			} else {
				k.emit("PodNetworkSetUp", pod.Namespace+"/"+pod.Name, "", "", map[string]any{"podIP": ip.String()})
			}
		}
		if err != nil {
			k.mu.Unlock()
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "%v", err)
			return
		}
		w = newPodWorker(k, pod, ip)
		k.workers[pod.UID] = w
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			w.run(ctx)
			k.mu.Lock()
			delete(k.workers, pod.UID)
			delete(k.ips, ip)
			k.mu.Unlock()
		}()
	}
	k.mu.Unlock()
	w.update(pod)
}

func (k *Kubelet) podGone(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	w := k.workers[pod.UID]
	k.mu.Unlock()
	if w != nil {
		w.removed()
	}
}

// allocateIP takes the next free address of the node's range (the node
// itself has the first one). Called with k.mu held.
func (k *Kubelet) allocateIP(uid types.UID) (netip.Addr, error) {
	for a := k.nodeIP.Next(); k.cfg.PodRange.Contains(a); a = a.Next() {
		if a.As4()[3] == 255 {
			continue
		}
		if _, used := k.ips[a]; !used {
			k.ips[a] = uid
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("node %s: no free pod address in %s", k.cfg.NodeName, k.cfg.PodRange)
}

func (k *Kubelet) podDir(pod *corev1.Pod) string {
	return filepath.Join(k.cfg.Dir, "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

func (k *Kubelet) node() *corev1.Node {
	labels := map[string]string{
		"kubernetes.io/hostname": k.cfg.NodeName,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
	}
	for key, v := range k.cfg.Labels {
		labels[key] = v
	}
	now := metav1.NewTime(k.clock.Now())
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Labels: labels},
		Spec:       corev1.NodeSpec{PodCIDR: k.cfg.PodRange.String(), PodCIDRs: []string{k.cfg.PodRange.String()}, Taints: k.cfg.Taints, ProviderID: k.cfg.ProviderID},
		Status: corev1.NodeStatus{
			Capacity:    k.cfg.Capacity,
			Allocatable: k.cfg.Capacity,
			Phase:       corev1.NodeRunning,
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available", LastHeartbeatTime: now, LastTransitionTime: now},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure", LastHeartbeatTime: now, LastTransitionTime: now},
				{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available", LastHeartbeatTime: now, LastTransitionTime: now},
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status (zerodrop lab twin)", LastHeartbeatTime: now, LastTransitionTime: now},
			},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: k.nodeIP.String()},
				{Type: corev1.NodeHostName, Address: k.cfg.NodeName},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion: Version, KubeProxyVersion: Version, OperatingSystem: "linux", Architecture: "amd64",
				ContainerRuntimeVersion: "zerodrop-lab://" + Version, OSImage: "zerodrop lab", KernelVersion: "lab",
				MachineID: k.cfg.NodeName, SystemUUID: k.cfg.NodeName, BootID: k.cfg.NodeName,
			},
		},
	}
}

func (k *Kubelet) register(ctx context.Context) error {
	var err error
	for attempt := 0; ; attempt++ {
		if err = k.registerOnce(ctx); err == nil || ctx.Err() != nil || attempt >= 50 {
			break
		}
		select {
		case <-ctx.Done():
		case <-k.clock.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", k.cfg.NodeName, err)
	}
	return nil
}

// registerOnce creates the Node (or takes over an existing one of the same
// name, as a kubelet restarting on the same host does) and posts its
// status through a merge patch, so a concurrent writer (the TTL or
// node-lifecycle controller) cannot make it conflict.
func (k *Kubelet) registerOnce(ctx context.Context) error {
	node := k.node()
	status := node.Status
	node.Status = corev1.NodeStatus{}
	_, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := k.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		existing.Labels = node.Labels
		existing.Spec.Taints = node.Spec.Taints
		existing.Spec.Unschedulable = false
		_, err = k.client.CoreV1().Nodes().Update(ctx, existing, metav1.UpdateOptions{})
	}
	if err != nil {
		return err
	}
	return k.patchNodeStatus(ctx, status)
}

func (k *Kubelet) patchNodeStatus(ctx context.Context, status corev1.NodeStatus) error {
	body, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Nodes().Patch(ctx, k.cfg.NodeName, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
	return err
}

// heartbeat renews the node Lease every quarter of its duration and posts
// the node status every minute, like the kubelet (both scaled).
func (k *Kubelet) heartbeat(ctx context.Context) {
	const leaseSeconds = 40
	renew := k.scaled(leaseSeconds * time.Second / 4)
	statusEvery := k.scaled(time.Minute)
	lastStatus := k.clock.Now()
	leaseSecs := int32(max(1, k.scaled(leaseSeconds*time.Second)/time.Second))
	for {
		if err := k.renewLease(ctx, leaseSecs); err != nil && ctx.Err() == nil {
			k.log.Warn("renewing lease", "err", err)
		}
		if k.clock.Since(lastStatus) >= statusEvery {
			if err := k.postStatus(ctx); err != nil && ctx.Err() == nil {
				k.log.Warn("posting node status", "err", err)
			}
			lastStatus = k.clock.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-k.clock.After(renew):
		}
	}
}

func (k *Kubelet) renewLease(ctx context.Context, seconds int32) error {
	leases := k.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(k.clock.Now())
	lease, err := leases.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, gerr := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: k.cfg.NodeName, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
			},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(k.cfg.NodeName), LeaseDurationSeconds: ptr.To(seconds), RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	lease.Spec.HolderIdentity = ptr.To(k.cfg.NodeName)
	lease.Spec.LeaseDurationSeconds = ptr.To(seconds)
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func (k *Kubelet) postStatus(ctx context.Context) error {
	node, err := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	fresh := k.node()
	now := metav1.NewTime(k.clock.Now())
	for i := range fresh.Status.Conditions {
		c := &fresh.Status.Conditions[i]
		c.LastHeartbeatTime = now
		for _, old := range node.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	return k.patchNodeStatus(ctx, fresh.Status)
}
