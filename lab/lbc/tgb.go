package lbc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// arnPrefix starts the ARN of every target group of the lab (region "lab",
// account 000000000000); the target group's name and "/lab" follow.
const arnPrefix = "arn:aws:elasticloadbalancing:lab:000000000000:targetgroup/"

// TargetGroupARN is the ARN-like name of the lab's target group name, as
// the controller twin writes it in the TargetGroupBindings it makes and as
// a user's TargetGroupBinding names it in spec.targetGroupARN.
func TargetGroupARN(name string) string { return arnPrefix + name + "/lab" }

// Hostname is the DNS-like name of a group's ALB that the Ingress status
// carries, shaped as the controller's k8s-NS-NAME-HASH names: lower-case
// labels of letters, digits and dashes under HostnameDomain.
func Hostname(group string) string {
	sum := sha256.Sum256([]byte(group))
	var b strings.Builder
	for _, r := range strings.ToLower(group) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	if len(base) > 30 {
		base = strings.TrimRight(base[:30], "-")
	}
	return "k8s-" + base + "-" + hex.EncodeToString(sum[:])[:10] + "." + HostnameDomain
}

// userBinding is a user-made TargetGroupBinding resolved to a target group
// of one of the lab's ALBs: its Service's targets go there.
type userBinding struct {
	namespace, name string
	service         string
	portName        string // the Service port's name, as EndpointSlices carry it
	nodePort        int32  // instance mode: the nodes on this port
	gate            corev1.PodConditionType
}

// bindingSpec is what the twin reads of a TargetGroupBinding.
type bindingSpec struct {
	Namespace, Name    string
	UID                types.UID
	Generation         int64
	ObservedGeneration int64
	ARN, TGName        string
	TargetType         string
	Service, Port      string // the port by name or number
	MultiCluster       bool
	// Own: the twin made it for an Ingress backend (labelled StackLabel).
	Own bool
}

func readBinding(u *unstructured.Unstructured) bindingSpec {
	str := func(f ...string) string { v, _, _ := unstructured.NestedString(u.Object, f...); return v }
	b := bindingSpec{
		Namespace: u.GetNamespace(), Name: u.GetName(), UID: u.GetUID(), Generation: u.GetGeneration(),
		ARN: str("spec", "targetGroupARN"), TGName: str("spec", "targetGroupName"),
		TargetType: str("spec", "targetType"), Service: str("spec", "serviceRef", "name"),
	}
	b.ObservedGeneration, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	b.MultiCluster, _, _ = unstructured.NestedBool(u.Object, "spec", "multiClusterTargetGroup")
	switch p := nested(u.Object, "spec", "serviceRef", "port").(type) {
	case string:
		b.Port = p
	case int64:
		b.Port = fmt.Sprint(p)
	case float64:
		b.Port = fmt.Sprint(int64(p))
	}
	_, b.Own = u.GetLabels()[StackLabel]
	return b
}

func nested(obj map[string]any, fields ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, fields...)
	return v
}

// targetGroupName resolves a binding's target group to a lab target group
// name: from spec.targetGroupARN (which must be a lab ARN) or
// spec.targetGroupName.
func (b bindingSpec) targetGroupName() string {
	if b.ARN != "" {
		rest, ok := strings.CutPrefix(b.ARN, arnPrefix)
		name, suffix, _ := strings.Cut(rest, "/")
		if !ok || suffix != "lab" {
			return ""
		}
		return name
	}
	return b.TGName
}

func (b bindingSpec) ref() string {
	if b.ARN != "" {
		return b.ARN
	}
	return b.TGName
}

// bindingProblem is why a user binding is not bound: an Event's reason and
// message.
type bindingProblem struct{ reason, msg string }

// resolveBinding decides where a user binding's targets go, as the
// controller would: the target group must exist; a target group bound by
// another binding is shared only when both are in multi-cluster mode (the
// controller's webhook refuses a second binding of a target group
// otherwise, and a binding deregisters targets it does not own); the target
// type, when given, must be the target group's.
func resolveBinding(b bindingSpec, tg *targetGroup, holder string, holderMultiCluster bool) *bindingProblem {
	if tg == nil {
		return &bindingProblem{"TargetGroupNotFound", fmt.Sprintf("TargetGroupNotFound: Target groups '%s' not found", b.ref())}
	}
	if holder != "" && !(b.MultiCluster && holderMultiCluster) {
		return &bindingProblem{"TargetGroupAlreadyBound", fmt.Sprintf(
			"TargetGroup %s is already bound to TargetGroupBinding %s; sharing a target group takes spec.multiClusterTargetGroup: true on this binding and on the other (an Ingress: annotation %s: \"true\")",
			b.ref(), holder, MultiClusterAnnotation)}
	}
	tgType := "ip"
	if tg.nodePort != 0 {
		tgType = "instance"
	}
	if b.TargetType != "" && b.TargetType != tgType {
		return &bindingProblem{"InvalidTargetType", fmt.Sprintf("spec.targetType %s, but target group %s has target type %s", b.TargetType, tg.name, tgType)}
	}
	return nil
}

// bindUserTGBs attaches every user-made TargetGroupBinding to the target
// group it names, or gives it a Warning event saying why not; a bound one
// gets status.observedGeneration as the controller writes it. Called with
// c.mu held, after the groups are built.
func (c *Controller) bindUserTGBs(ctx context.Context) {
	byName := map[string]*targetGroup{}
	for _, g := range c.groups {
		for _, tg := range g.tgs {
			tg.users = nil
			byName[tg.name] = tg
		}
	}
	if c.bindings == nil {
		return
	}
	var specs []bindingSpec
	objs := map[string]*unstructured.Unstructured{}
	for _, o := range c.bindings.GetStore().List() {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		b := readBinding(u)
		if b.Own {
			continue
		}
		specs = append(specs, b)
		objs[b.Namespace+"/"+b.Name] = u
	}
	// The older binding holds a contested target group, as the webhook
	// admits the first and refuses the second.
	sort.Slice(specs, func(i, j int) bool {
		ti, tj := objs[specs[i].Namespace+"/"+specs[i].Name].GetCreationTimestamp(), objs[specs[j].Namespace+"/"+specs[j].Name].GetCreationTimestamp()
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return specs[i].Namespace+"/"+specs[i].Name < specs[j].Namespace+"/"+specs[j].Name
	})
	seen := map[string]bool{}
	for _, b := range specs {
		key := b.Namespace + "/" + b.Name
		seen[key] = true
		tg := byName[b.targetGroupName()]
		holder, holderMC := "", false
		if tg != nil {
			holder, holderMC = tg.namespace+"/"+tg.name, tg.multiCluster
		}
		problem := resolveBinding(b, tg, holder, holderMC)
		var u *userBinding
		if problem == nil {
			var err error
			if u, err = c.userBinding(b, tg); err != nil {
				problem = &bindingProblem{"FailedNetworkReconcile", err.Error()}
			}
		}
		obj := objs[key]
		if problem != nil {
			if c.warned[key] != problem.msg {
				c.warned[key] = problem.msg
				c.recorder.Event(obj, corev1.EventTypeWarning, problem.reason, problem.msg)
				c.emit("TargetGroupBindingFailed", key, problem.msg, map[string]any{"reason": problem.reason})
			}
			continue
		}
		delete(c.warned, key)
		tg.users = append(tg.users, u)
		if b.ObservedGeneration != b.Generation {
			patch, _ := json.Marshal(map[string]any{"status": map[string]any{"observedGeneration": b.Generation}})
			_, err := c.cfg.Dynamic.Resource(TargetGroupBindingResource).Namespace(b.Namespace).Patch(ctx, b.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
			if err != nil {
				c.recorder.Event(obj, corev1.EventTypeWarning, "FailedUpdateStatus", fmt.Sprintf("Failed update status due to %v", err))
				continue
			}
			c.recorder.Event(obj, corev1.EventTypeNormal, "SuccessfullyReconciled", "Successfully reconciled")
			c.emit("TargetGroupBindingBound", key, "", map[string]any{"targetGroup": tg.name, "generation": b.Generation})
		}
	}
	for key := range c.warned {
		if !seen[key] {
			delete(c.warned, key)
		}
	}
}

// userBinding resolves a binding's Service port: its name for ip targets,
// its NodePort for instance targets.
func (c *Controller) userBinding(b bindingSpec, tg *targetGroup) (*userBinding, error) {
	u := &userBinding{namespace: b.Namespace, name: b.Name, service: b.Service, gate: corev1.PodConditionType(GatePrefix + b.Name)}
	if tg.nodePort != 0 {
		np, err := c.nodePort(b.Namespace, b.Service, b.Port)
		if err != nil {
			return nil, err
		}
		u.nodePort = np
		return u, nil
	}
	name, err := c.servicePortName(b.Namespace, b.Service, b.Port)
	if err != nil {
		return nil, err
	}
	u.portName = name
	return u, nil
}
