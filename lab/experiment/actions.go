package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"zerodrop.dev/zerodrop/lab"
)

// actions carries out scenario steps on a running variant.
type actions struct {
	r   *running
	dyn dynamic.Interface
	// onScale is told of every replica change (for marks and events).
	onScale func(from, to int)
	// drains collects the background drains' errors.
	drains chan error
}

var rolloutsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

func (a *actions) resource() (dynamic.ResourceInterface, string) {
	if a.r.s.kind == "Rollout" {
		return a.dyn.Resource(rolloutsGVR).Namespace(a.r.s.namespace), "rollouts"
	}
	return a.dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(a.r.s.namespace), "deployments"
}

// Scale sets the replicas through the scale subresource, as zerodrop
// simulate and kubectl scale do.
func (a *actions) Scale(ctx context.Context, n int) error {
	a.r.mu.Lock()
	from := a.r.replicas
	a.r.mu.Unlock()
	if from == n {
		return nil
	}
	res, _ := a.resource()
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"replicas": n}})
	if _, err := res.Patch(ctx, a.r.s.name, types.MergePatchType, patch, metav1.PatchOptions{}, "scale"); err != nil {
		return fmt.Errorf("scaling %s/%s to %d: %w", a.r.s.namespace, a.r.s.name, n, err)
	}
	a.scaled(from, n)
	return nil
}

// scaled records a replica change made by a step or the simulator.
func (a *actions) scaled(from, to int) {
	a.r.mu.Lock()
	if from < 0 {
		from = a.r.replicas
	}
	a.r.replicas = to
	a.r.mu.Unlock()
	if from != to && a.onScale != nil {
		a.onScale(from, to)
	}
}

// Rollout restarts the pods as kubectl rollout restart does: a new
// template annotation, so the workload's strategy replaces every pod.
func (a *actions) Rollout(ctx context.Context) error {
	res, _ := a.resource()
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339)}}}}})
	if _, err := res.Patch(ctx, a.r.s.name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("restarting %s/%s: %w", a.r.s.namespace, a.r.s.name, err)
	}
	return nil
}

// SetEnv sets variables on every container of the app (a rollout follows).
func (a *actions) SetEnv(ctx context.Context, env map[string]string) error {
	res, _ := a.resource()
	obj, err := res.Get(ctx, a.r.s.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	containers, _, _ := unstructuredSlice(obj.Object, "spec", "template", "spec", "containers")
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var patched []any
	for _, c := range containers {
		cm, ok := c.(map[string]any)
		if !ok {
			continue
		}
		var vars []any
		for _, k := range keys {
			vars = append(vars, map[string]any{"name": k, "value": env[k]})
		}
		patched = append(patched, map[string]any{"name": cm["name"], "env": vars})
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": patched}}}})
	pt := types.StrategicMergePatchType
	if a.r.s.kind == "Rollout" {
		// Custom resources take no strategic merge: replace the env lists.
		pt = types.MergePatchType
	}
	if _, err := res.Patch(ctx, a.r.s.name, pt, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("setting env on %s/%s: %w", a.r.s.namespace, a.r.s.name, err)
	}
	return nil
}

func unstructuredSlice(obj map[string]any, path ...string) ([]any, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[p]
	}
	s, ok := cur.([]any)
	return s, ok, nil
}

// busiest names the node with the most app pods (ties: the first by name).
func (a *actions) busiest(ctx context.Context, node string) (string, error) {
	if node != "busiest" {
		return node, nil
	}
	_, perNode, err := a.r.readyPods(ctx)
	if err != nil {
		return "", err
	}
	best, most := "", -1
	names := make([]string, 0, len(perNode))
	for n := range perNode {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if perNode[n] > most {
			best, most = n, perNode[n]
		}
	}
	if best == "" {
		return "", fmt.Errorf("no node runs a pod of %s", a.r.s.name)
	}
	return best, nil
}

// Drain cordons the node and evicts its pods through the eviction API in
// the background (a drain waits for PDBs and can outlast the step).
func (a *actions) Drain(ctx context.Context, node string) (string, error) {
	name, err := a.busiest(ctx, node)
	if err != nil {
		return "", err
	}
	go func() {
		err := lab.Drain(ctx, a.r.state.Kubeconfig, name, io.Discard)
		select {
		case a.drains <- err:
		default:
		}
	}()
	return name, nil
}

// KillNode makes the node vanish: its address range drops packets, its
// pods are killed, its heartbeats stop.
func (a *actions) KillNode(ctx context.Context, node string) (string, error) {
	name, err := a.busiest(ctx, node)
	if err != nil {
		return "", err
	}
	return name, a.r.ctl.LoseNode(name)
}

// currentReplicas reads the replicas through the scale subresource.
func (a *actions) currentReplicas(ctx context.Context) (int, error) {
	res, _ := a.resource()
	obj, err := res.Get(ctx, a.r.s.name, metav1.GetOptions{}, "scale")
	if err != nil {
		return 0, err
	}
	var sc autoscalingv1.Scale
	b, _ := json.Marshal(obj.Object)
	if err := json.Unmarshal(b, &sc); err != nil {
		return 0, err
	}
	return int(sc.Spec.Replicas), nil
}
