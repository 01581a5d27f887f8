//go:build !nolab

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"zerodrop.dev/zerodrop/lab"
)

var (
	nodeClaimsGVR = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodeclaims"}
	nodePoolsGVR  = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodepools"}
)

// TestKarpenterProvisionsAndConsolidates runs the real Karpenter in a lab of
// its own with one static node (4 CPU) and the NodePool of
// deploy/lab/nodepool.yaml. A Deployment of 8 pods of 900m CPU does not fit:
// Karpenter launches nodes of the lab cloud, they register, and every pod
// runs and answers. Scaled down to 4, with the pods on the static node
// deleted first (pod-deletion-cost), the static node is empty and the
// Karpenter nodes underused: consolidation deletes them, draining their
// pods through the eviction API while a PodDisruptionBudget
// (maxUnavailable 1) holds: the test watches the pods throughout and fails
// if more than one is ever unavailable, or if no pod left by eviction.
func TestKarpenterProvisionsAndConsolidates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab")
	l, err := startLab(dir, "--nodes", "1", "--node-cpu", "4", "--karpenter",
		"--karpenter-launch-latency", "1s", "--karpenter-registration-latency", "3s",
		"--karpenter-batch-idle", "1s", "--karpenter-batch-max", "3s")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("karpenter log tail:\n%s", tailFile(filepath.Join(dir, "logs", "karpenter.log"), 40))
		}
		l.Stop()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	restCfg, err := clientcmd.BuildConfigFromFlags("", l.state.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}

	pool, err := os.ReadFile(filepath.Join("..", "..", "deploy", "lab", "nodepool.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	l.apply(t, string(pool))
	waitFor(t, 60*time.Second, "NodePool default Ready", func() (bool, error) {
		np, err := dyn.Resource(nodePoolsGVR).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return conditionTrue(np.Object, "Ready"), nil
	})

	const ns, app = "karp", "app"
	l.namespace(t, ns)
	applied := time.Now()
	l.apply(t, karpenterApp(ns, app, 8))

	// Karpenter's nodes: launched, registered, initialized; every pod Ready
	// and answering.
	var firstClaim, firstNode time.Duration
	waitFor(t, 3*time.Minute, "8 ready pods", func() (bool, error) {
		if firstClaim == 0 {
			if list, err := dyn.Resource(nodeClaimsGVR).List(ctx, metav1.ListOptions{}); err == nil && len(list.Items) > 0 {
				firstClaim = time.Since(applied)
			}
		}
		if firstNode == 0 && len(karpenterNodes(t, l)) > 0 {
			firstNode = time.Since(applied)
		}
		ready := 0
		for _, p := range l.pods(t, ns, "app="+app) {
			if podReady(&p) {
				ready++
			}
		}
		return ready == 8, nil
	})
	allReady := time.Since(applied)
	nodes := karpenterNodes(t, l)
	if len(nodes) == 0 {
		t.Fatal("all pods ready but no Karpenter node: the static node cannot hold 8 pods of 900m")
	}
	for _, n := range nodes {
		if !strings.HasPrefix(n.Spec.ProviderID, lab.ProviderIDPrefix) || n.Labels["karpenter.sh/nodepool"] != "default" ||
			n.Labels["karpenter.sh/initialized"] != "true" || n.Labels["node.kubernetes.io/instance-type"] == "" {
			t.Errorf("Karpenter node %s: providerID %q labels %v", n.Name, n.Spec.ProviderID, n.Labels)
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == "karpenter.sh/unregistered" {
				t.Errorf("node %s still has the unregistered taint", n.Name)
			}
		}
	}
	onKarpenter := 0
	for _, p := range l.pods(t, ns, "app="+app) {
		code, err := l.get(ctx, fmt.Sprintf("http://%s:8000/logistics/health", p.Status.PodIP))
		if err != nil || code != 200 {
			t.Fatalf("pod %s on %s: GET /logistics/health: %d %v", p.Name, p.Spec.NodeName, code, err)
		}
		if p.Spec.NodeName != "lab-node-1" {
			onKarpenter++
		}
	}
	t.Logf("provisioning: NodeClaim %.1fs, first Karpenter node Ready %.1fs, 8 pods Ready %.1fs after apply; %d Karpenter node(s) (%s), %d pods on them, all answering",
		firstClaim.Seconds(), firstNode.Seconds(), allReady.Seconds(), len(nodes), nodeSummary(nodes), onKarpenter)

	// Scale down to 4, the static node's pods going first: the Karpenter
	// nodes' pods fit on the static node, so consolidation drains them.
	for _, p := range l.pods(t, ns, "app="+app) {
		if p.Spec.NodeName == "lab-node-1" {
			patch := []byte(`{"metadata":{"annotations":{"controller.kubernetes.io/pod-deletion-cost":"-1000"}}}`)
			if _, err := l.client.CoreV1().Pods(ns).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	w := watchDisruption(ctx, t, l, ns, app)
	scaled := time.Now()
	if out, err := l.kubectl(t, "", "-n", ns, "scale", "deployment/"+app, "--replicas", "4"); err != nil {
		t.Fatalf("scale: %v %s", err, out)
	}
	var claimDeleted time.Duration
	waitFor(t, 4*time.Minute, "the Karpenter nodes consolidated away", func() (bool, error) {
		list, err := dyn.Resource(nodeClaimsGVR).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, nc := range list.Items {
			if claimDeleted == 0 && nc.GetDeletionTimestamp() != nil {
				claimDeleted = time.Since(scaled)
			}
		}
		return len(list.Items) == 0 && len(karpenterNodes(t, l)) == 0, nil
	})
	gone := time.Since(scaled)
	pods := l.waitReady(t, ns, "app="+app, 4, 2*time.Minute)
	for _, p := range pods {
		if p.Spec.NodeName != "lab-node-1" {
			t.Errorf("pod %s on %s after consolidation, want lab-node-1", p.Name, p.Spec.NodeName)
		}
	}
	st := w.stop()
	t.Logf("consolidation: first NodeClaim deleting %.1fs, all Karpenter nodes gone %.1fs after the scale-down; %d pods evicted, at most %d unavailable (PDB maxUnavailable 1)",
		claimDeleted.Seconds(), gone.Seconds(), st.evicted, st.maxUnavailable)
	if st.evicted == 0 {
		t.Errorf("no pod left its node through the eviction API (DisruptionTarget EvictionByEvictionAPI); %d pods were on Karpenter nodes", onKarpenter)
	}
	if st.maxUnavailable > 1 {
		t.Errorf("%d pods unavailable at once during the drain: the PodDisruptionBudget allows 1", st.maxUnavailable)
	}
	events, err := l.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Evicted"})
	if err == nil {
		t.Logf("%d Evicted events in %s (Karpenter's terminator)", len(events.Items), ns)
	}
}

// karpenterApp is a Deployment of zerodrop serve pods requesting 900m CPU
// each, and its PodDisruptionBudget (maxUnavailable 1).
func karpenterApp(ns, name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: app
        image: zerodrop.dev/zerodrop:lab
        args: ["serve", "--addr", "$(POD_IP):8000", "--db", "sqlite:orders.db", "--shutdown-delay", "1s"]
        env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        resources: {requests: {cpu: 900m, memory: 256Mi}}
        ports: [{name: http, containerPort: 8000}]
        readinessProbe:
          httpGet: {path: /logistics/health, port: http}
          periodSeconds: 1
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: %[2]s}}
`, ns, name, replicas)
}

func karpenterNodes(t *testing.T, l *testLab) []corev1.Node {
	t.Helper()
	list, err := l.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: "karpenter.sh/nodepool"})
	if err != nil {
		t.Fatalf("listing nodes: %v", err)
	}
	var out []corev1.Node
	for _, n := range list.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		if ready {
			out = append(out, n)
		}
	}
	return out
}

func nodeSummary(nodes []corev1.Node) string {
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprintf("%s %s %s %s", n.Name, n.Labels["node.kubernetes.io/instance-type"],
			n.Labels["topology.kubernetes.io/zone"], n.Labels["karpenter.sh/capacity-type"]))
	}
	return strings.Join(s, ", ")
}

func conditionTrue(obj map[string]any, typ string) bool {
	b, _ := json.Marshal(obj["status"])
	var st struct {
		Conditions []struct{ Type, Status string }
	}
	_ = json.Unmarshal(b, &st)
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status == "True"
		}
	}
	return false
}

type disruptionStats struct {
	evicted        int
	maxUnavailable int
}

type disruptionWatch struct {
	mu     sync.Mutex
	stats  disruptionStats
	cancel context.CancelFunc
	done   chan struct{}
}

// watchDisruption follows the app's pods: a pod given the DisruptionTarget
// condition by the eviction API counts as evicted, and at every change the
// number of unavailable pods (the Deployment's replicas minus its Ready,
// not terminating pods) is sampled.
func watchDisruption(ctx context.Context, t *testing.T, l *testLab, ns, app string) *disruptionWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &disruptionWatch{cancel: cancel, done: make(chan struct{})}
	wi, err := l.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	evicted := map[string]bool{}
	ready := map[string]bool{}
	go func() {
		defer close(w.done)
		defer wi.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-wi.ResultChan():
				if !ok {
					return
				}
				p, isPod := ev.Object.(*corev1.Pod)
				if !isPod {
					continue
				}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "EvictionByEvictionAPI" {
						evicted[p.Name] = true
					}
				}
				ready[p.Name] = ev.Type != watch.Deleted && p.DeletionTimestamp == nil && podReady(p)
				d, err := l.client.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{})
				if err != nil {
					continue
				}
				n := 0
				for _, r := range ready {
					if r {
						n++
					}
				}
				w.mu.Lock()
				w.stats.evicted = len(evicted)
				// Only a shortfall below the scaled-down size is a disruption.
				if u := int(*d.Spec.Replicas) - n; *d.Spec.Replicas == 4 && u > w.stats.maxUnavailable {
					w.stats.maxUnavailable = u
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *disruptionWatch) stop() disruptionStats {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
