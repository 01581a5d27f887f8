package manifest

import (
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// link connects the objects: namespaces, which Service selects which pods,
// which target group routes to which Service, and HPAs and PDBs.
func (b *builder) link() {
	m := b.m
	nsByName := map[string]*Namespace{}
	for _, n := range m.Namespaces {
		nsByName[n.Name] = n
	}
	svcByKey := map[string]*Service{}
	for _, s := range m.Services {
		svcByKey[s.Namespace+"/"+s.Name] = s
	}
	for _, w := range m.Workloads {
		w.NS = nsByName[w.Meta.Namespace]
	}
	for _, s := range m.Services {
		if len(s.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(s.Selector)
		for _, w := range m.Workloads {
			if w.Meta.Namespace == s.Namespace && sel.Matches(labels.Set(w.PodLabels)) {
				s.Workloads = append(s.Workloads, w)
				w.Services = append(w.Services, s)
			}
		}
	}
	for _, ing := range m.Ingresses {
		b.resolveIngressClass(ing)
		if ing.ALB {
			b.ingressTargetGroups(ing, svcByKey)
		}
	}
	for _, t := range m.TargetGroupBindings {
		tg := &TargetGroup{Binding: t, Source: t.Ref(), ServiceName: t.ServiceName, ServicePort: t.ServicePort, Pos: t.At("spec.serviceRef"), TargetType: t.TargetType}
		tg.Service = svcByKey[t.Namespace+"/"+t.ServiceName]
		b.targetGroupSettings(tg, annotationSource{&t.Meta}, true)
		_, p, _ := annotationSource{&t.Meta}.lookup("load-balancer-attributes")
		tg.LB = LBAttributes{IdleTimeout: Field[time.Duration]{Value: DefaultIdleTimeout, Default: true, Pos: p}}
		if v, ok := t.Annotations[ALBAnnotationPrefix+"load-balancer-attributes"]; ok && v != "" {
			tg.LB = b.lbAttributes(&t.Meta)
		}
		b.addTargetGroup(tg)
	}
	for _, h := range m.HPAs {
		for _, w := range m.Workloads {
			if w.Meta.Namespace == h.Namespace && w.Name == h.TargetName && w.Kind == h.TargetKind {
				w.HPA = h
			}
		}
	}
	for _, p := range m.PDBs {
		sel, ok := b.selector[p]
		if !ok {
			continue
		}
		for _, w := range m.Workloads {
			if w.Meta.Namespace == p.Namespace && !sel.Empty() && sel.Matches(labels.Set(w.PodLabels)) {
				p.Workloads = append(p.Workloads, w)
				w.PDBs = append(w.PDBs, p)
			}
		}
	}
}

func (b *builder) addTargetGroup(tg *TargetGroup) {
	b.m.TargetGroups = append(b.m.TargetGroups, tg)
	if tg.Service == nil {
		return
	}
	for _, w := range tg.Service.Workloads {
		tg.Workloads = append(tg.Workloads, w)
		w.TargetGroups = append(w.TargetGroups, tg)
	}
}

func (b *builder) ingressTargetGroups(ing *Ingress, svcByKey map[string]*Service) {
	seen := map[string]bool{}
	add := func(svcName, port string, pos Pos, weight *Field[int32]) {
		key := svcName + ":" + port
		if seen[key] {
			return
		}
		seen[key] = true
		tg := &TargetGroup{Ingress: ing, Source: ing.Ref(), ServiceName: svcName, ServicePort: port, Pos: pos, Weight: weight, LB: ing.LB}
		tg.Service = svcByKey[ing.Namespace+"/"+svcName]
		src := annotationSource{&ing.Meta}
		if tg.Service != nil {
			src = annotationSource{&tg.Service.Meta, &ing.Meta}
		}
		b.targetGroupSettings(tg, src, false)
		b.addTargetGroup(tg)
	}
	actions := map[string]*Action{}
	for _, a := range ing.Actions {
		actions[a.Name] = a
	}
	for _, be := range ing.Backends {
		if be.ServicePort != UseAnnotationPort {
			add(be.ServiceName, be.ServicePort, be.Pos, nil)
			continue
		}
		a, ok := actions[be.ServiceName]
		if !ok {
			// Argo Rollouts writes this annotation itself at run time.
			if b.rolloutRoutes(ing, be.ServiceName) == nil {
				b.diag(be.Pos, ing.Ref(), "backend %s uses use-annotation but the Ingress has no %sactions.%s annotation", be.ServiceName, ALBAnnotationPrefix, be.ServiceName)
			}
			continue
		}
		for _, t := range a.TargetGroups {
			add(t.ServiceName, t.ServicePort, a.Pos, &Field[int32]{Value: t.Weight, Pos: a.Pos})
		}
	}
	// An Argo Rollout routing through this Ingress sends traffic to its
	// stable and canary Services by rewriting the action at run time.
	for _, w := range b.m.Workloads {
		if w.Canary == nil || w.Canary.ALB == nil || w.Meta.Namespace != ing.Namespace || !contains(w.Canary.ALB.Ingresses, ing.Name) {
			continue
		}
		port := itoa(w.Canary.ALB.ServicePort)
		for _, s := range []string{w.Canary.StableService, w.Canary.CanaryService} {
			if s != "" {
				add(s, port, w.Canary.ALB.Pos, nil)
			}
		}
	}
}

// rolloutRoutes returns the Rollout whose ALB routing manages the action
// named service (its root or stable Service) on ing, if any.
func (b *builder) rolloutRoutes(ing *Ingress, service string) *Workload {
	for _, w := range b.m.Workloads {
		c := w.Canary
		if c == nil || c.ALB == nil || w.Meta.Namespace != ing.Namespace || !contains(c.ALB.Ingresses, ing.Name) {
			continue
		}
		if service == c.ALB.RootService || service == c.StableService {
			return w
		}
	}
	return nil
}
