package check

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"zerodrop.dev/zerodrop/manifest"
)

func (x *wctx) add(id, msg, fix string, objs []*manifest.Meta, ev ...Evidence) {
	f := newFinding(id, x.w.Ref(), msg, ev...)
	if fix != "" {
		f.Fix = fix
	}
	f.objects = objs
	x.findings = append(x.findings, f)
}

func (x *wctx) tgObjects() []*manifest.Meta {
	if x.tg == nil {
		return nil
	}
	var out []*manifest.Meta
	if x.tg.Ingress != nil {
		out = append(out, &x.tg.Ingress.Meta)
	}
	if x.tg.Binding != nil {
		out = append(out, &x.tg.Binding.Meta)
	}
	if x.tg.Service != nil {
		out = append(out, &x.tg.Service.Meta)
	}
	return out
}

func ev(p manifest.Pos, format string, args ...any) Evidence {
	return Evidence{Pos: p, Note: fmt.Sprintf(format, args...)}
}

func defaultNote(d bool) string {
	if d {
		return " (default)"
	}
	return ""
}

func (x *wctx) rules() {
	c, w := x.c, x.w
	alb := x.tg != nil
	var hc manifest.HealthCheck
	if alb {
		hc = x.tg.HealthCheck
	}

	// ZD001, ZD002: probes.
	if c.Readiness == nil {
		path := "/healthz"
		if alb && !hc.Path.Default {
			path = hc.Path.Value
		}
		x.add(IDNoReadiness, fmt.Sprintf("container %s serves traffic but has no readiness probe", c.Name),
			fmt.Sprintf("add readinessProbe: {httpGet: {path: %s, port: %s}, periodSeconds: 5, failureThreshold: 2} and serve %s from the app", path, portOf(c), path),
			nil, ev(c.Pos, "container %s: no readinessProbe", c.Name))
	} else if l := c.Liveness; l != nil && sameEndpoint(c.Readiness, l) {
		x.add(IDReadinessIsLiveness, fmt.Sprintf("readiness and liveness of container %s both check %s", c.Name, endpoint(l)),
			"point livenessProbe at an endpoint that stays 200 while the process runs and drains (for example /livez)",
			nil, ev(c.Readiness.Pos, "readinessProbe %s", endpoint(c.Readiness)), ev(l.Pos, "livenessProbe %s", endpoint(l)))
	}

	if alb {
		objs := x.tgObjects()
		// ZD003: readiness path vs ALB health-check path.
		if r := c.Readiness; r != nil && r.Handler == manifest.HandlerHTTPGet && r.Path.Value != hc.Path.Value {
			x.add(IDPathMismatch, fmt.Sprintf("readiness probe checks %s but the ALB health check requests %s", r.Path.Value, hc.Path.Value),
				fmt.Sprintf("set %shealthcheck-path: %s", manifest.ALBAnnotationPrefix, r.Path.Value),
				objs, ev(hc.Path.Pos, "ALB health-check path %s%s", hc.Path.Value, defaultNote(hc.Path.Default)), ev(r.Path.Pos, "readiness path %s", r.Path.Value))
		}
		// ZD004: health check on a user path.
		if !healthish.MatchString(hc.Path.Value) {
			x.add(IDUserPathHealthCheck, fmt.Sprintf("the ALB health check requests %s, a user path", hc.Path.Value),
				fmt.Sprintf("serve a health endpoint such as /healthz and set %shealthcheck-path: /healthz (and the readiness probe to the same path)", manifest.ALBAnnotationPrefix),
				objs, ev(hc.Path.Pos, "health-check path %s%s", hc.Path.Value, defaultNote(hc.Path.Default)))
		}
		// ZD005: failure detection far apart.
		if r := c.Readiness; r != nil {
			albDetect := hc.Interval.Value * time.Duration(hc.UnhealthyThreshold.Value)
			kDetect := r.Period.Value * time.Duration(r.FailureThreshold.Value)
			gap := albDetect - kDetect
			if gap < 0 {
				gap = -gap
			}
			if gap >= x.cfg.DetectionGap {
				iv := clampInt(ceilSeconds(r.Period.Value), 5, 300)
				un := clampInt(roundDiv(kDetect, time.Duration(iv)*time.Second), 2, 10)
				x.add(IDDetectionMismatch, fmt.Sprintf("ALB detects a failing target after %s (%s × %d) but readiness after %s (%s × %d): %s apart",
					secs(albDetect), secs(hc.Interval.Value), hc.UnhealthyThreshold.Value, secs(kDetect), secs(r.Period.Value), r.FailureThreshold.Value, secs(gap)),
					fmt.Sprintf("set %shealthcheck-interval-seconds: '%d' and %sunhealthy-threshold-count: '%d' (ALB detection %ds vs readiness %s), and use ip targets with the readiness gate",
						manifest.ALBAnnotationPrefix, iv, manifest.ALBAnnotationPrefix, un, iv*un, secs(kDetect)),
					objs, ev(hc.Interval.Pos, "health-check interval %s%s", secs(hc.Interval.Value), defaultNote(hc.Interval.Default)),
					ev(hc.UnhealthyThreshold.Pos, "unhealthy threshold %d%s", hc.UnhealthyThreshold.Value, defaultNote(hc.UnhealthyThreshold.Default)),
					ev(r.Period.Pos, "readiness period %s%s", secs(r.Period.Value), defaultNote(r.Period.Default)),
					ev(r.FailureThreshold.Pos, "readiness failureThreshold %d%s", r.FailureThreshold.Value, defaultNote(r.FailureThreshold.Default)))
			}
		}
	}

	// ZD006, ZD007: termination delay.
	delayEv := x.delayEvidence()
	need := ceilSeconds(x.lbStop)
	if x.preStopKnown {
		switch {
		case x.stopAccepting == 0:
			x.add(IDNoTerminationDelay, fmt.Sprintf("container %s stops accepting at once on delete, while the load balancer needs about %s to stop sending", c.Name, secs(x.lbStop)),
				fmt.Sprintf("add lifecycle.preStop.sleep.seconds: %d (Kubernetes ≥ 1.30), or exec [\"/zerodrop\", \"sleep\", \"%ds\"], or %s=%ds with the drain library; raise terminationGracePeriodSeconds to at least %d",
					need, need, manifest.EnvShutdownDelay, need, ceilSeconds(time.Duration(need)*time.Second+x.maxReq+GraceMargin)),
				nil, delayEv...)
		case x.stopAccepting < x.lbStop:
			x.add(IDDelayBelowDereg, fmt.Sprintf("the app stops accepting %s after delete, %s before the load balancer stops sending (%s)", secs(x.stopAccepting), secs(x.lbStop-x.stopAccepting), x.lbStopWhy),
				fmt.Sprintf("make the delay at least %ds (preStop sleep or %s) and terminationGracePeriodSeconds at least %d", need, manifest.EnvShutdownDelay, ceilSeconds(time.Duration(need)*time.Second+x.maxReq+GraceMargin)),
				nil, delayEv...)
		}
	}

	// ZD008: grace period.
	needGrace := x.preStop + x.appDelay + x.maxReq
	if x.grace < needGrace {
		evs := []Evidence{ev(w.Pod.TerminationGracePeriod.Pos, "terminationGracePeriodSeconds %d%s", int64(x.grace/time.Second), defaultNote(w.Pod.TerminationGracePeriod.Default))}
		if c.PreStop != nil && x.preStop > 0 {
			evs = append(evs, ev(c.PreStop.Duration.Pos, "preStop blocks %s", secs(x.preStop)))
		}
		if x.appDelayEv != nil && x.appDelay > 0 {
			evs = append(evs, *x.appDelayEv)
		}
		evs = append(evs, x.maxReqEv)
		x.add(IDGraceTooShort, fmt.Sprintf("grace period %s < preStop %s + app delay %s + longest request %s: SIGKILL at %s cuts requests in flight",
			secs(x.grace), secs(x.preStop), secs(x.appDelay), secs(x.maxReq), secs(x.kill)),
			fmt.Sprintf("set terminationGracePeriodSeconds: %d (%s + %s + %s + %s margin)", ceilSeconds(needGrace+GraceMargin), secs(x.preStop), secs(x.appDelay), secs(x.maxReq), secs(GraceMargin)),
			nil, evs...)
	}

	// ZD009: shell-less image.
	for _, ct := range w.Pod.Containers {
		ps := ct.PreStop
		if ps == nil || !(ps.NeedsShell || ps.NeedsSleep) || !imageWithoutShell(ct.Image.Value) {
			continue
		}
		what := "a sleep binary"
		if ps.NeedsShell {
			what = "the shell " + ps.Shell
		}
		n := ceilSeconds(ps.Duration.Value)
		if !ps.Known || n == 0 {
			n = ceilSeconds(x.lbStop)
		}
		x.add(IDShellless, fmt.Sprintf("preStop of container %s needs %s, but image %s has none: the hook fails and SIGTERM comes at once", ct.Name, what, ct.Image.Value),
			fmt.Sprintf("replace the exec hook with lifecycle.preStop.sleep.seconds: %d (Kubernetes ≥ 1.30), or exec [\"/zerodrop\", \"sleep\", \"%ds\"], or httpGet on the drain library's preStop endpoint", n, n),
			nil, ev(ps.Pos, "preStop exec %q", strings.Join(ps.Command, " ")), ev(ct.Image.Pos, "image %s", ct.Image.Value))
	}

	if alb {
		x.routingRules()
	}
	x.rolloutRules()
}

// delayEvidence points at what sets (or lacks) the termination delay.
func (x *wctx) delayEvidence() []Evidence {
	c := x.c
	var evs []Evidence
	if c.PreStop != nil {
		evs = append(evs, ev(c.PreStop.Duration.Pos, "preStop %s blocks %s", c.PreStop.Kind, secs(x.preStop)))
	} else {
		evs = append(evs, ev(c.Pos, "container %s: no lifecycle.preStop", c.Name))
	}
	if x.appDelayEv != nil {
		evs = append(evs, *x.appDelayEv)
	} else if c.App.Shutdown != nil && x.immediate {
		evs = append(evs, ev(c.App.Shutdown.Pos, "%s=%s", manifest.EnvShutdown, c.App.Shutdown.Value))
	}
	if x.tg != nil {
		evs = append(evs, ev(x.tg.Pos, "routed by %s", x.tg.Source))
	}
	return evs
}

func (x *wctx) routingRules() {
	w, tg := x.w, x.tg
	hc := tg.HealthCheck
	objs := x.tgObjects()
	tt := tg.TargetType

	// ZD010, ZD011: target type and readiness gates.
	nsLabel := w.NS != nil && w.NS.ReadinessGateInject.Value
	var podGate *manifest.Field[string]
	for i, g := range w.Pod.ReadinessGates {
		if strings.HasPrefix(g.Value, manifest.ReadinessGatePrefix) {
			podGate = &w.Pod.ReadinessGates[i]
		}
	}
	if tt.Value == manifest.TargetInstance && (nsLabel || podGate != nil) {
		evs := []Evidence{ev(tt.Pos, "target-type %s%s", tt.Value, defaultNote(tt.Default))}
		if nsLabel {
			evs = append(evs, ev(w.NS.ReadinessGateInject.Pos, "namespace %s injects readiness gates", w.NS.Name))
		}
		if podGate != nil {
			evs = append(evs, ev(podGate.Pos, "readiness gate %s", podGate.Value))
		}
		x.add(IDInstanceWithGates, fmt.Sprintf("%s uses instance targets, but the pods expect the target-health readiness gate, which only works with ip targets", tg.Source),
			fmt.Sprintf("set %starget-type: ip", manifest.ALBAnnotationPrefix), objs, evs...)
	}
	if tt.Value == manifest.TargetIP && !nsLabel && podGate == nil {
		ns := w.Meta.Namespace
		var evs []Evidence
		var nsObjs []*manifest.Meta
		msg := fmt.Sprintf("%s uses ip targets but namespace %s does not carry %s=%s: pods get no readiness gate", tg.Source, ns, manifest.ReadinessGateInjectKey, manifest.ReadinessGateInjectOn)
		if w.NS != nil {
			evs = append(evs, ev(w.NS.ReadinessGateInject.Pos, "namespace %s: label %s not enabled", ns, manifest.ReadinessGateInjectKey))
			nsObjs = append(nsObjs, &w.NS.Meta)
		} else {
			msg += " (the Namespace is not among the manifests)"
		}
		evs = append(evs, ev(tt.Pos, "target-type ip"))
		x.add(IDNamespaceNoGateLabel, msg,
			fmt.Sprintf("label the namespace: metadata.labels: {%s: %s} (kubectl label namespace %s %s=%s), then recreate the pods", manifest.ReadinessGateInjectKey, manifest.ReadinessGateInjectOn, ns, manifest.ReadinessGateInjectKey, manifest.ReadinessGateInjectOn),
			append(nsObjs, objs...), evs...)
	}

	// ZD012: success codes.
	var lax []string
	for _, r := range hc.Codes {
		if r.To >= 300 {
			lax = append(lax, fmt.Sprintf("%d-%d", max(r.From, 300), r.To))
		}
	}
	if len(lax) > 0 {
		x.add(IDLaxSuccessCodes, fmt.Sprintf("health-check success codes %s accept redirects or errors (%s)", hc.SuccessCodes.Value, strings.Join(lax, ",")),
			fmt.Sprintf("set %ssuccess-codes: '200'", manifest.ALBAnnotationPrefix), objs, ev(hc.SuccessCodes.Pos, "success-codes %s", hc.SuccessCodes.Value))
	}

	// ZD013, ZD014: deregistration delay.
	dd := tg.Attributes.DeregistrationDelay
	ddEv := ev(dd.Pos, "deregistration_delay.timeout_seconds %d%s", int64(dd.Value/time.Second), defaultNote(dd.Default))
	if dd.Value < x.maxReq {
		x.add(IDDeregBelowRequest, fmt.Sprintf("deregistration delay %s is shorter than the longest request %s: the ALB cuts longer requests", secs(dd.Value), secs(x.maxReq)),
			fmt.Sprintf("set %starget-group-attributes: deregistration_delay.timeout_seconds=%d", manifest.ALBAnnotationPrefix, ceilSeconds(x.maxReq+GraceMargin)),
			objs, ddEv, x.maxReqEv)
	}
	if limit := max(2*x.grace, x.grace+time.Minute); dd.Value > limit {
		want := max(x.grace, x.maxReq+GraceMargin)
		x.add(IDDeregAboveGrace, fmt.Sprintf("deregistration delay %s is far longer than the grace period %s: the pod is gone long before draining ends", secs(dd.Value), secs(x.grace)),
			fmt.Sprintf("set %starget-group-attributes: deregistration_delay.timeout_seconds=%d", manifest.ALBAnnotationPrefix, ceilSeconds(want)),
			objs, ddEv, ev(w.Pod.TerminationGracePeriod.Pos, "grace period %s%s", secs(x.grace), defaultNote(w.Pod.TerminationGracePeriod.Default)))
	}

	// ZD020: idle timeout.
	if it := x.c.App.IdleTimeout; it != nil && it.Value <= tg.LB.IdleTimeout.Value {
		x.add(IDIdleTimeout, fmt.Sprintf("app idle timeout %s is not above the ALB idle timeout %s: the app closes keep-alive connections the ALB still uses (502)", secs(it.Value), secs(tg.LB.IdleTimeout.Value)),
			fmt.Sprintf("set %s=%ds", manifest.EnvIdleTimeout, ceilSeconds(tg.LB.IdleTimeout.Value+15*time.Second)),
			objs, ev(it.Pos, "%s=%s", manifest.EnvIdleTimeout, secs(it.Value)), ev(tg.LB.IdleTimeout.Pos, "ALB idle_timeout.timeout_seconds %d%s", int64(tg.LB.IdleTimeout.Value/time.Second), defaultNote(tg.LB.IdleTimeout.Default)))
	}
}

func (x *wctx) rolloutRules() {
	w := x.w
	// ZD015–ZD017: Argo Rollouts with ALB routing.
	if cn := w.Canary; cn != nil && cn.ALB != nil {
		sd := cn.ScaleDownDelay
		switch {
		case cn.DynamicStableScale.Value:
			x.add(IDDynamicStableScale, "dynamicStableScale scales stable pods down before the ALB applies the new weights",
				fmt.Sprintf("set dynamicStableScale: false and scaleDownDelaySeconds: %d", ceilSeconds(max(x.cfg.WeightChangeLag, 30*time.Second))),
				nil, ev(cn.DynamicStableScale.Pos, "dynamicStableScale: true"), ev(cn.ALB.Pos, "trafficRouting.alb"))
		case sd.Value < 30*time.Second:
			x.add(IDScaleDownBelow30, fmt.Sprintf("scaleDownDelaySeconds %d is below 30 s with ALB traffic routing", int64(sd.Value/time.Second)),
				fmt.Sprintf("set scaleDownDelaySeconds: %d", ceilSeconds(max(x.cfg.WeightChangeLag, 30*time.Second))),
				nil, ev(sd.Pos, "scaleDownDelaySeconds %d", int64(sd.Value/time.Second)), ev(cn.ALB.Pos, "trafficRouting.alb"))
		case sd.Value < x.cfg.WeightChangeLag:
			x.add(IDScaleDownBelowLag, fmt.Sprintf("scaleDownDelaySeconds %d is below the weight-change lag estimate %s", int64(sd.Value/time.Second), secs(x.cfg.WeightChangeLag)),
				fmt.Sprintf("set scaleDownDelaySeconds: %d, or run Argo Rollouts with --aws-verify-target-group", ceilSeconds(x.cfg.WeightChangeLag)),
				nil, ev(sd.Pos, "scaleDownDelaySeconds %d%s", int64(sd.Value/time.Second), defaultNote(sd.Default)), ev(cn.ALB.Pos, "trafficRouting.alb"))
		}
	}

	// ZD018: the update strategy.
	n := w.Replicas.Value
	nEv := ev(w.Replicas.Pos, "replicas %d%s", n, defaultNote(w.Replicas.Default))
	if w.HPA != nil {
		n = w.HPA.MinReplicas.Value
		nEv = ev(w.HPA.MinReplicas.Pos, "HPA %s minReplicas %d%s", w.HPA.Name, n, defaultNote(w.HPA.MinReplicas.Default))
	}
	if n < 1 {
		return
	}
	st := w.Strategy
	if st.Type.Value != "OnDelete" {
		surge, unav := st.Resolve(n)
		if unav >= n {
			x.add(IDRolloutRemovesAll, fmt.Sprintf("%s with %d replica(s), maxSurge %s and maxUnavailable %s lets an update take all %d ready pods away (surge %d, unavailable %d)",
				st.Type.Value, n, st.MaxSurge.Value.String(), st.MaxUnavailable.Value.String(), n, surge, unav),
				fmt.Sprintf("use strategy RollingUpdate with maxUnavailable: 0 and maxSurge: 1, and replicas: %d or more", max(n, 2)),
				nil, ev(st.MaxUnavailable.Pos, "maxUnavailable %s%s", st.MaxUnavailable.Value.String(), defaultNote(st.MaxUnavailable.Default)), nEv)
		}
	}

	// ZD019: disruption budget.
	if len(w.PDBs) == 0 {
		x.add(IDDisruptionRemovesAll, fmt.Sprintf("no PodDisruptionBudget selects the pods: a node drain may evict all %d at once", n),
			fmt.Sprintf("add a PodDisruptionBudget with selector %s and maxUnavailable: 1%s", labelsString(w.PodLabels), twoReplicas(n)),
			nil, ev(w.At("spec.template.metadata.labels"), "pod labels %s", labelsString(w.PodLabels)), nEv)
		return
	}
	for _, p := range w.PDBs {
		allowed, where := pdbAllowed(p, n)
		if allowed >= n {
			x.add(IDDisruptionRemovesAll, fmt.Sprintf("PodDisruptionBudget %s allows %d disruption(s) with %d replica(s): a drain may evict them all", p.Name, allowed, n),
				fmt.Sprintf("set maxUnavailable: 1 on PodDisruptionBudget %s%s", p.Name, twoReplicas(n)),
				[]*manifest.Meta{&p.Meta}, ev(where, "PodDisruptionBudget %s", p.Name), nEv)
		}
	}
}

func twoReplicas(n int32) string {
	if n < 2 {
		return ", and run at least 2 replicas"
	}
	return ""
}

// pdbAllowed returns how many pods a PDB lets the eviction API take at
// once (percentages round up, as the disruption controller does).
func pdbAllowed(p *manifest.PDB, n int32) (int32, manifest.Pos) {
	if p.MaxUnavailable != nil {
		v := p.MaxUnavailable.Value
		k, err := intstr.GetScaledValueFromIntOrPercent(&v, int(n), true)
		if err != nil {
			return 0, p.MaxUnavailable.Pos
		}
		return int32(k), p.MaxUnavailable.Pos
	}
	if p.MinAvailable != nil {
		v := p.MinAvailable.Value
		k, err := intstr.GetScaledValueFromIntOrPercent(&v, int(n), true)
		if err != nil {
			return 0, p.MinAvailable.Pos
		}
		return max(0, n-int32(k)), p.MinAvailable.Pos
	}
	return n, p.Pos // a PDB with neither field allows everything
}

func labelsString(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+": "+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func portOf(c *manifest.Container) string {
	for _, p := range c.Ports {
		return fmt.Sprint(p.Port)
	}
	return "8080"
}

func sameEndpoint(a, b *manifest.Probe) bool {
	if a.Handler != b.Handler {
		return false
	}
	switch a.Handler {
	case manifest.HandlerHTTPGet:
		return a.Path.Value == b.Path.Value && a.Port.Value.String() == b.Port.Value.String()
	case manifest.HandlerExec:
		return strings.Join(a.Command, "\x00") == strings.Join(b.Command, "\x00")
	default:
		return a.Port.Value.String() == b.Port.Value.String()
	}
}

func endpoint(p *manifest.Probe) string {
	switch p.Handler {
	case manifest.HandlerHTTPGet:
		return fmt.Sprintf("httpGet %s port %s", p.Path.Value, p.Port.Value.String())
	case manifest.HandlerExec:
		return fmt.Sprintf("exec %q", strings.Join(p.Command, " "))
	default:
		return fmt.Sprintf("%s port %s", p.Handler, p.Port.Value.String())
	}
}
