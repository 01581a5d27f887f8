package kubelet

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
)

// containerEnv builds a container's environment as the kubelet does:
// envFrom first, then env in order, $(VAR) references expanded against what
// came before; fieldRef, resourceFieldRef, configMapKeyRef and secretKeyRef
// resolved. A missing required reference is an error (the container does
// not start: CreateContainerConfigError).
func (w *podWorker) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, scaleDurations bool) ([]string, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, src := range c.EnvFrom {
		switch {
		case src.ConfigMapRef != nil:
			cm, err := w.k.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, src.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if optional(src.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("configmap %q not found", src.ConfigMapRef.Name)
			}
			for _, k := range sortedKeys(cm.Data) {
				set(src.Prefix+k, cm.Data[k])
			}
		case src.SecretRef != nil:
			s, err := w.k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, src.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if optional(src.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("secret %q not found", src.SecretRef.Name)
			}
			keys := make([]string, 0, len(s.Data))
			for k := range s.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				set(src.Prefix+k, string(s.Data[k]))
			}
		}
	}
	mapping := expansion.MappingFuncFor(vars)
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom == nil {
			v = expansion.Expand(v, mapping)
		} else {
			var err error
			v, err = w.valueFrom(ctx, pod, c, e.ValueFrom)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			if v == "" && isOptionalRef(e.ValueFrom) {
				continue
			}
		}
		if scaleDurations {
			v = ScaleEnv(e.Name, v, w.k.cfg.TimeScale)
		}
		set(e.Name, v)
	}
	// In-cluster clients find the API server as in a pod: the lab's API
	// server listens on this address inside the lab network.
	if _, ok := vars["KUBERNETES_SERVICE_HOST"]; !ok {
		set("KUBERNETES_SERVICE_HOST", "127.0.0.1")
		set("KUBERNETES_SERVICE_PORT", "6443")
	}
	if _, ok := vars["HOSTNAME"]; !ok {
		set("HOSTNAME", pod.Name)
	}
	if _, ok := vars["PATH"]; !ok {
		set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	return env, nil
}

func optional(b *bool) bool { return b != nil && *b }

func isOptionalRef(v *corev1.EnvVarSource) bool {
	return (v.ConfigMapKeyRef != nil && optional(v.ConfigMapKeyRef.Optional)) ||
		(v.SecretKeyRef != nil && optional(v.SecretKeyRef.Optional))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (w *podWorker) valueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src *corev1.EnvVarSource) (string, error) {
	switch {
	case src.FieldRef != nil:
		return w.fieldValue(pod, src.FieldRef.FieldPath)
	case src.ResourceFieldRef != nil:
		return resourceValue(c, src.ResourceFieldRef, w.k.cfg.Capacity)
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := w.k.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if optional(ref.Optional) {
				return "", nil
			}
			return "", fmt.Errorf("configmap %q not found", ref.Name)
		}
		v, ok := cm.Data[ref.Key]
		if !ok && !optional(ref.Optional) {
			return "", fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := w.k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if optional(ref.Optional) {
				return "", nil
			}
			return "", fmt.Errorf("secret %q not found", ref.Name)
		}
		v, ok := s.Data[ref.Key]
		if !ok && !optional(ref.Optional) {
			return "", fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), nil
	}
	return "", nil
}

// fieldValue resolves the downward API fields the kubelet supports.
func (w *podWorker) fieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return w.ip.String(), nil
	case "status.hostIP", "status.hostIPs":
		return w.k.nodeIP.String(), nil
	}
	for _, m := range []struct {
		prefix string
		values map[string]string
	}{{"metadata.labels", pod.Labels}, {"metadata.annotations", pod.Annotations}} {
		if path == m.prefix {
			var lines []string
			for _, k := range sortedKeys(m.values) {
				lines = append(lines, k+"="+strconv.Quote(m.values[k]))
			}
			return strings.Join(lines, "\n"), nil
		}
		if rest, ok := strings.CutPrefix(path, m.prefix+"['"); ok {
			return m.values[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

func resourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector, node corev1.ResourceList) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		if kind == "requests" {
			return "0", nil
		}
		q, ok = node[corev1.ResourceName(name)] // limits default to the node's allocatable
		if !ok {
			return "0", nil
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		if name == "cpu" {
			return strconv.FormatInt((q.MilliValue()+999)/1000, 10), nil
		}
		return strconv.FormatInt(q.Value(), 10), nil
	}
	if name == "cpu" {
		return strconv.FormatInt((q.MilliValue()+divisor.MilliValue()-1)/divisor.MilliValue(), 10), nil
	}
	return strconv.FormatInt((q.Value()+divisor.Value()-1)/divisor.Value(), 10), nil
}

// expandArgs expands $(VAR) references in a container's command or args
// against its environment, as the kubelet does; unknown references stay
// as written.
func expandArgs(list []string, env []string) []string {
	if len(list) == 0 {
		return list
	}
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	mapping := expansion.MappingFuncFor(vars)
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = expansion.Expand(s, mapping)
	}
	return out
}
