package lbc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"zerodrop.dev/zerodrop/alb"
)

// Readiness gates, as the AWS Load Balancer Controller implements them.
const (
	// GateInjectLabel on a namespace turns the pod mutating webhook on.
	GateInjectLabel = "elbv2.k8s.aws/pod-readiness-gate-inject"
	// GatePrefix starts the condition type of a pod's readiness gate; the
	// TargetGroupBinding's name follows.
	GatePrefix = "target-health.elbv2.k8s.aws/"
	// StackLabel marks the TargetGroupBindings the controller made for an
	// Ingress group.
	StackLabel  = "ingress.k8s.aws/stack"
	webhookPath = "/mutate-v1-pod"
)

// WebhookConfiguration is the MutatingWebhookConfiguration the controller's
// chart installs for readiness-gate injection, pointing at url.
func WebhookConfiguration(url string, caPEM []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(10)
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "aws-load-balancer-webhook"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "mpod.elbv2.k8s.aws",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: GateInjectLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"enabled"}}}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

// ServeWebhook serves the pod mutating webhook over TLS on ln until ctx
// ends.
func (c *Controller) ServeWebhook(ctx context.Context, ln net.Listener, cert tls.Certificate) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+webhookPath, c.mutatePod)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	_ = srv.ServeTLS(ln, "", "")
}

// WebhookPath is the path the webhook serves.
func WebhookPath() string { return webhookPath }

func (c *Controller) mutatePod(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	var pod corev1.Pod
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err == nil {
		gates := c.gatesFor(r.Context(), review.Request.Namespace, &pod)
		if patch := gatePatch(&pod, gates); patch != nil {
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = patch, &pt
			c.emit("ReadinessGateInjected", review.Request.Namespace+"/"+pod.GenerateName+pod.Name, strings.Join(gates, ","), nil)
		}
	}
	review.Response = resp
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// gatesFor lists the readiness gates a new pod gets: one per ip
// TargetGroupBinding of a Service that selects it.
func (c *Controller) gatesFor(ctx context.Context, ns string, pod *corev1.Pod) []string {
	svcs, _ := c.factory.Core().V1().Services().Lister().Services(ns).List(labels.Everything())
	selected := map[string]bool{}
	for _, s := range svcs {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			selected[s.Name] = true
		}
	}
	if len(selected) == 0 {
		return nil
	}
	list, err := c.cfg.Dynamic.Resource(TargetGroupBindingResource).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	// A user binding the twin could not bind (its Warning stands) gets no
	// gate: it would never open.
	c.mu.Lock()
	refused := map[string]bool{}
	for key := range c.warned {
		refused[key] = true
	}
	c.mu.Unlock()
	var gates []string
	for _, tgb := range list.Items {
		svc, _, _ := unstructured.NestedString(tgb.Object, "spec", "serviceRef", "name")
		tt, _, _ := unstructured.NestedString(tgb.Object, "spec", "targetType")
		if selected[svc] && tt == "ip" && !refused[ns+"/"+tgb.GetName()] {
			gates = append(gates, GatePrefix+tgb.GetName())
		}
	}
	return gates
}

func gatePatch(pod *corev1.Pod, gates []string) []byte {
	have := map[string]bool{}
	for _, g := range pod.Spec.ReadinessGates {
		have[string(g.ConditionType)] = true
	}
	var ops []map[string]any
	if pod.Spec.ReadinessGates == nil && len(gates) > 0 {
		ops = append(ops, map[string]any{"op": "add", "path": "/spec/readinessGates", "value": []any{}})
	}
	for _, g := range gates {
		if !have[g] {
			ops = append(ops, map[string]any{"op": "add", "path": "/spec/readinessGates/-", "value": map[string]string{"conditionType": g}})
		}
	}
	if len(ops) == 0 || (len(ops) == 1 && pod.Spec.ReadinessGates == nil) {
		return nil
	}
	b, _ := json.Marshal(ops)
	return b
}

// ensureBinding creates or updates the TargetGroupBinding of an ip target
// group, as the controller does for every Ingress backend.
func (c *Controller) ensureBinding(ctx context.Context, group string, tg *targetGroup, servicePort string) error {
	targetType := "ip"
	if tg.nodePort != 0 {
		targetType = "instance"
	}
	var port any = servicePort
	if n, err := strconv.Atoi(servicePort); err == nil {
		port = int64(n)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
		"metadata": map[string]any{"name": tg.name, "namespace": tg.namespace,
			"labels": map[string]any{StackLabel: strings.ReplaceAll(group, "/", ".")}},
		"spec": map[string]any{
			"targetGroupARN": TargetGroupARN(tg.name),
			"targetType":     targetType,
			"serviceRef":     map[string]any{"name": tg.service, "port": port},
		},
	}}
	if tg.multiCluster {
		_ = unstructured.SetNestedField(obj.Object, true, "spec", "multiClusterTargetGroup")
	}
	res := c.cfg.Dynamic.Resource(TargetGroupBindingResource).Namespace(tg.namespace)
	_, err := res.Create(ctx, obj, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("TargetGroupBinding %s/%s: %w", tg.namespace, tg.name, err)
	}
	c.emit("TargetGroupBindingCreated", tg.namespace+"/"+tg.name, "", nil)
	return nil
}

// syncGates sets each gated pod's readiness-gate condition cond (the gate
// of one binding) from its target's health on the ALB: True once healthy.
func (c *Controller) syncGates(ctx context.Context, g *group, tg *targetGroup, cond corev1.PodConditionType, targets map[string]Target) {
	if len(targets) == 0 {
		return
	}
	health, err := g.lb.DescribeTargetHealth(alb.DescribeTargetHealthInput{TargetGroupName: tg.name})
	if err != nil {
		return
	}
	state := map[string]alb.TargetHealth{}
	for _, d := range health.TargetHealthDescriptions {
		state[d.Target.String()] = d.TargetHealth
	}
	for addr, t := range targets {
		if t.Pod == "" {
			continue
		}
		ns, name, _ := strings.Cut(t.Pod, "/")
		pod, err := c.factory.Core().V1().Pods().Lister().Pods(ns).Get(name)
		if err != nil || !hasGate(pod, cond) {
			continue
		}
		h, registered := state[addr]
		status, reason, msg := corev1.ConditionFalse, "Elb.RegistrationInProgress", "target is being registered"
		if registered {
			reason, msg = h.Reason, h.Description
			if h.State == "healthy" {
				status, reason, msg = corev1.ConditionTrue, "", ""
			}
		}
		if current(pod, cond) == status {
			continue
		}
		if err := patchCondition(ctx, c.cfg.Client, pod, cond, status, reason, msg); err != nil {
			c.cfg.Log.Warn("readiness gate", "pod", t.Pod, "err", err)
			continue
		}
		c.emit("ReadinessGate", t.Pod, string(status), map[string]any{"condition": string(cond), "target": addr, "reason": reason})
	}
}

func hasGate(pod *corev1.Pod, cond corev1.PodConditionType) bool {
	for _, g := range pod.Spec.ReadinessGates {
		if g.ConditionType == cond {
			return true
		}
	}
	return false
}

func current(pod *corev1.Pod, cond corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == cond {
			return c.Status
		}
	}
	return ""
}

func patchCondition(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, cond corev1.PodConditionType, status corev1.ConditionStatus, reason, msg string) error {
	patch := map[string]any{
		"metadata": map[string]any{"uid": string(pod.UID)},
		"status": map[string]any{"conditions": []map[string]any{{
			"type": string(cond), "status": string(status), "reason": reason, "message": msg,
			"lastProbeTime": nil, "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		}}},
	}
	b, _ := json.Marshal(patch)
	_, err := client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, b, metav1.PatchOptions{}, "status")
	return err
}
