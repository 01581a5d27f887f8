package simulate

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Target names a workload with a scale subresource, such as
// deployment/logistics or rollout/logistics.
type Target struct {
	// Resource is the workload's group and plural resource, such as
	// deployments.apps or rollouts.argoproj.io.
	Resource schema.GroupResource
	// Name is the workload's name.
	Name string
}

// String is the target as RESOURCE.GROUP/NAME (deployments.apps/logistics).
func (t Target) String() string { return t.Resource.String() + "/" + t.Name }

// IsZero reports whether the target is unset.
func (t Target) IsZero() bool { return t == Target{} }

// shortKind maps the names kubectl users type to resources.
func shortKind(kind string) (schema.GroupResource, bool) {
	switch strings.ToLower(kind) {
	case "deployment", "deployments", "deploy":
		return schema.GroupResource{Group: "apps", Resource: "deployments"}, true
	case "statefulset", "statefulsets", "sts":
		return schema.GroupResource{Group: "apps", Resource: "statefulsets"}, true
	case "replicaset", "replicasets", "rs":
		return schema.GroupResource{Group: "apps", Resource: "replicasets"}, true
	case "rollout", "rollouts", "ro":
		return schema.GroupResource{Group: "argoproj.io", Resource: "rollouts"}, true
	}
	return schema.GroupResource{}, false
}

// ParseTarget reads KIND/NAME: deployment/logistics, rollout/logistics
// (Argo Rollouts), statefulset/..., replicaset/..., or any
// RESOURCE.GROUP/NAME with a scale subresource (deployments.apps/x).
func ParseTarget(s string) (Target, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || kind == "" || name == "" {
		return Target{}, fmt.Errorf("target %q: want KIND/NAME such as deployment/logistics or rollout/logistics", s)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return Target{}, fmt.Errorf("target %q: name %q: %s", s, name, strings.Join(errs, "; "))
	}
	gr, ok := shortKind(kind)
	if !ok {
		res, group, dotted := strings.Cut(kind, ".")
		if !dotted {
			return Target{}, fmt.Errorf("target %q: unknown kind %q (want deployment, rollout, statefulset, replicaset, or RESOURCE.GROUP such as deployments.apps)", s, kind)
		}
		if errs := validation.IsDNS1123Label(res); len(errs) > 0 {
			return Target{}, fmt.Errorf("target %q: resource %q: %s", s, res, strings.Join(errs, "; "))
		}
		if errs := validation.IsDNS1123Subdomain(group); len(errs) > 0 {
			return Target{}, fmt.Errorf("target %q: group %q: %s", s, group, strings.Join(errs, "; "))
		}
		gr = schema.GroupResource{Group: group, Resource: res}
	}
	return Target{Resource: gr, Name: name}, nil
}
