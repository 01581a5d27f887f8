package simulate

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
)

// Scaler reads and sets the replicas of a workload.
type Scaler interface {
	// Replicas returns the workload's spec.replicas.
	Replicas(ctx context.Context, namespace string, t Target) (int32, error)
	// SetReplicas sets the workload's spec.replicas.
	SetReplicas(ctx context.Context, namespace string, t Target, n int32) error
}

// ScaleClient is a Scaler on the scale subresource (/scale) of any
// workload that has one: Deployments, StatefulSets, ReplicaSets, Argo
// Rollouts. It reads with GET and writes with a JSON merge patch of
// spec.replicas, so the RBAC it needs is get and patch on RESOURCE/scale.
type ScaleClient struct {
	// Scales is client-go's scale client (k8s.io/client-go/scale).
	Scales scale.ScalesGetter
	// Mapper finds the version of a resource (the patch URL needs it).
	Mapper meta.RESTMapper
}

// NewScaleClient builds a ScaleClient from a REST config, with a REST
// mapper and scale kinds found through discovery (discovery is open to
// every authenticated identity by Kubernetes' default RBAC).
func NewScaleClient(cfg *rest.Config) (*ScaleClient, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	scales, err := scale.NewForConfig(cfg, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(cached))
	if err != nil {
		return nil, fmt.Errorf("building the scale client: %w", err)
	}
	return &ScaleClient{Scales: scales, Mapper: mapper}, nil
}

// Replicas implements Scaler.
func (c *ScaleClient) Replicas(ctx context.Context, namespace string, t Target) (int32, error) {
	s, err := c.Scales.Scales(namespace).Get(ctx, t.Resource, t.Name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("reading the scale of %s in %s: %w", t, namespace, err)
	}
	return s.Spec.Replicas, nil
}

// SetReplicas implements Scaler with a merge patch {"spec":{"replicas":n}}
// on the scale subresource.
func (c *ScaleClient) SetReplicas(ctx context.Context, namespace string, t Target, n int32) error {
	gvr, err := c.Mapper.ResourceFor(t.Resource.WithVersion(""))
	if err != nil {
		return fmt.Errorf("finding the API version of %s: %w", t.Resource, err)
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	if _, err := c.Scales.Scales(namespace).Patch(ctx, gvr, t.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scaling %s in %s to %d: %w", t, namespace, n, err)
	}
	return nil
}

// Sessions sets the number of load sessions.
type Sessions interface {
	// SetSessions makes n sessions run (0 stops them all).
	SetSessions(ctx context.Context, n int) error
}

// SessionsFunc is a Sessions that is a function: the lab runs the sessions
// in-process.
type SessionsFunc func(ctx context.Context, n int) error

// SetSessions implements Sessions.
func (f SessionsFunc) SetSessions(ctx context.Context, n int) error { return f(ctx, n) }

// LoadDeployment is a Sessions that scales a Deployment (or any Target) of
// load pods, each running PerPod sessions (zerodrop load --concurrency
// PerPod): n sessions are ceil(n/PerPod) pods, so up to PerPod-1 more
// sessions run than asked.
type LoadDeployment struct {
	Scaler    Scaler
	Namespace string
	Target    Target
	PerPod    int
}

// Pods is the number of load pods that run n sessions.
func (l LoadDeployment) Pods(n int) int32 {
	if n <= 0 || l.PerPod <= 0 {
		return 0
	}
	return int32((n + l.PerPod - 1) / l.PerPod)
}

// SetSessions implements Sessions: it scales the load Deployment to
// Pods(n), unless it already has that many.
func (l LoadDeployment) SetSessions(ctx context.Context, n int) error {
	if l.PerPod <= 0 {
		return fmt.Errorf("load deployment %s: sessions per pod %d must be positive", l.Target, l.PerPod)
	}
	want := l.Pods(n)
	have, err := l.Scaler.Replicas(ctx, l.Namespace, l.Target)
	if err != nil {
		return err
	}
	if have == want {
		return nil
	}
	return l.Scaler.SetReplicas(ctx, l.Namespace, l.Target, want)
}
