package check

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"zerodrop.dev/zerodrop/manifest"
)

func (x *wctx) add(id, msg, fix string, objs []*manifest.Meta, ev ...Evidence) *Finding {
	f := newFinding(id, x.w.Ref(), msg, ev...)
	if fix != "" {
		f.Fix = fix
	}
	f.objects = objs
	x.findings = append(x.findings, f)
	return &x.findings[len(x.findings)-1]
}

func (x *wctx) tgObjects() []*manifest.Meta { return x.tgObjectsOf(x.tg) }

func (x *wctx) tgObjectsOf(tg *manifest.TargetGroup) []*manifest.Meta {
	if tg == nil {
		return nil
	}
	var out []*manifest.Meta
	if tg.Ingress != nil {
		out = append(out, &tg.Ingress.Meta)
	}
	if tg.Binding != nil {
		out = append(out, &tg.Binding.Meta)
	}
	if tg.Service != nil {
		out = append(out, &tg.Service.Meta)
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

	if x.unrouted {
		x.unroutedRules()
		return
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
		x.userPathRule(hc, objs)
		// ZD021: health-check port vs readiness port.
		if r := c.Readiness; r != nil && r.Handler != manifest.HandlerExec && x.readyPortOK && x.hc.Known && x.hc.Port != x.readyPort.Port {
			fix := fmt.Sprintf("set %shealthcheck-port: %d (the port readiness checks)", manifest.ALBAnnotationPrefix, x.readyPort.Port)
			if tp, ok := x.tg.TrafficPort(w); ok && tp.Port == x.readyPort.Port {
				fix = fmt.Sprintf("set %shealthcheck-port: traffic-port (the port readiness checks)", manifest.ALBAnnotationPrefix)
			}
			x.add(IDHealthCheckPort, fmt.Sprintf("the ALB health check requests port %d but readiness checks port %d: when the app fails readiness at shutdown the ALB keeps the target healthy, and only deregistration (estimate %s) stops traffic",
				x.hc.Port, x.readyPort.Port, secs(x.cfg.DeregistrationPropagation)),
				fix+", or probe readiness on the port the ALB checks",
				objs, ev(hc.Port.Pos, "health-check port %s%s: %s", hc.Port.Value, defaultNote(hc.Port.Default), x.hc.How), ev(r.Port.Pos, "readiness port %s", r.Port.Value.String()))
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
		graceFix := func(need int64) string {
			g := ceilSeconds(time.Duration(need)*time.Second + x.maxReq + GraceMargin)
			if time.Duration(g)*time.Second <= x.grace {
				return ""
			}
			return fmt.Sprintf("; raise terminationGracePeriodSeconds to at least %d", g)
		}
		switch {
		case x.pnr != nil:
			// ZD024 below: a longer delay cannot catch up with a load
			// balancer that waits for the pod to be gone.
		case x.stop != nil && x.stopAccepting < x.lbStop:
			x.add(IDPreStopStopsServer, fmt.Sprintf("the preStop hook of container %s runs `%s` %s after delete: the server stops accepting %s before the load balancer stops sending (%s)",
				c.Name, x.stop.Command, secs(x.stop.At), secs(x.lbStop-x.stopAccepting), x.lbStopWhy),
				fmt.Sprintf("sleep first, then stop: `sleep %d && %s` (or drop the stop command and let SIGTERM stop the server after the sleep)%s", need, x.stop.Command, graceFix(need)),
				nil, append([]Evidence{ev(c.PreStop.Duration.Pos, "preStop runs `%s` at %s", x.stop.Command, secs(x.stop.At))}, delayEv[1:]...)...)
		case x.stopAccepting == 0:
			x.add(IDNoTerminationDelay, fmt.Sprintf("container %s stops accepting at once on delete, while the load balancer needs about %s to stop sending", c.Name, secs(x.lbStop)),
				fmt.Sprintf("add lifecycle.preStop.sleep.seconds: %d (Kubernetes ≥ 1.30), or exec [\"/zerodrop\", \"sleep\", \"%ds\"], or %s=%ds with the drain library%s",
					need, need, manifest.EnvShutdownDelay, need, graceFix(need)),
				nil, delayEv...)
		case x.stopAccepting < x.lbStop:
			x.add(IDDelayBelowDereg, fmt.Sprintf("the app stops accepting %s after delete, %s before the load balancer stops sending (%s)", secs(x.stopAccepting), secs(x.lbStop-x.stopAccepting), x.lbStopWhy),
				fmt.Sprintf("make the delay at least %ds (preStop sleep or %s)%s", need, manifest.EnvShutdownDelay, graceFix(need)),
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
		if ps == nil || !(ps.NeedsShell || ps.NeedsSleep) {
			continue
		}
		shell := manifest.ImageShellOf(ct.Image.Value)
		if shell.HasShell {
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
			nil, ev(ps.Pos, "preStop exec %q", strings.Join(ps.Command, " ")), ev(ct.Image.Pos, "image %s: %s", ct.Image.Value, shell.Why))
	}

	x.dependencyRule()
	if s := x.pnr; s != nil {
		lb := "an ALB target group"
		if s.NLB {
			lb = "an NLB"
		}
		msg := fmt.Sprintf("Service %s has publishNotReadyAddresses: true and %s routes to it: terminating pods stay registered (%s)", s.Name, lb, x.pnrWhy)
		if x.stopAccepting < x.lbStop {
			msg += fmt.Sprintf("; the app stops accepting at %s, %s before the load balancer stops sending", secs(x.stopAccepting), secs(x.lbStop-x.stopAccepting))
		} else {
			msg += "; only the ALB health check takes them out"
		}
		x.add(IDPublishNotReady, msg,
			fmt.Sprintf("remove spec.publishNotReadyAddresses from Service %s (keep it only on a headless Service for peer discovery)", s.Name),
			[]*manifest.Meta{&s.Meta}, ev(s.PublishNotReadyAddresses.Pos, "publishNotReadyAddresses: true"), ev(s.Pos, "Service %s, routed by %s", s.Name, lb))
	}
	if alb {
		x.routingRules()
	}
	x.rolloutRules()
}

// unroutedRules runs the rules that need no load balancer (ZD001 and
// ZD002 ran already) on a workload no Service among the manifests routes
// to, and says that the routing was not seen.
func (x *wctx) unroutedRules() {
	c := x.c
	if x.preStopKnown && x.stopAccepting == 0 {
		need := ceilSeconds(x.lbStop)
		x.add(IDNoTerminationDelay, fmt.Sprintf("container %s stops accepting at once on delete, while whatever routes to it needs about %s to stop sending", c.Name, secs(x.lbStop)),
			fmt.Sprintf("add lifecycle.preStop.sleep.seconds: %d (Kubernetes ≥ 1.30), or exec [\"/zerodrop\", \"sleep\", \"%ds\"], or %s=%ds with the drain library", need, need, manifest.EnvShutdownDelay, need),
			nil, x.delayEvidence()...)
	}
	for i := range x.findings {
		x.findings[i].Message += " (no Service, Ingress or TargetGroupBinding among the manifests routes to it: the routing was not seen)"
		x.findings[i].Evidence = append(x.findings[i].Evidence, ev(c.Ports[0].Pos, "container %s listens on port %d", c.Name, c.Ports[0].Port))
	}
}

// dependencyRule (ZD023): a container the serving one depends on stops
// accepting while the serving container still takes requests (and is
// still there to take them). Every preStop hook starts at the delete,
// native sidecars' included; a native sidecar's SIGTERM waits for the main
// containers, within the grace period.
func (x *wctx) dependencyRule() {
	lastNew := min(x.lbStop, x.stopAccepting)
	until := min(lastNew+x.maxReq, x.kill)
	for _, s := range x.schedule {
		if s.Container == x.c {
			until = min(until, s.Exit)
		}
	}
	for _, s := range x.schedule {
		if s.Container == x.c {
			continue
		}
		dep, why := dependency(s.Container)
		if !dep || s.StopsAccepting >= until {
			continue
		}
		kind := "container"
		if s.Sidecar {
			kind = "native sidecar"
		}
		evs := []Evidence{ev(s.Container.Pos, "%s %s: %s; it stops accepting at %s", kind, s.Container.Name, why, secs(s.StopsAccepting))}
		ps := s.Container.PreStop
		if ps != nil {
			blocks := s.SIGTERM // a main container's SIGTERM waits for its hook only
			if s.Sidecar {
				blocks = 0
				if s.HookKnown && !s.HookFails {
					blocks = min(ps.Duration.Value, x.grace)
				}
			}
			evs = append(evs, ev(ps.Duration.Pos, "its preStop %s blocks %s from the delete", ps.Kind, secs(blocks)))
		}
		if s.Sidecar {
			evs = append(evs, ev(s.Container.Pos, "its SIGTERM waits until %s for the containers it stops after", secs(s.Turn)))
		}
		evs = append(evs, ev(x.c.Pos, "serving container %s takes new requests until %s, which run until %s", x.c.Name, secs(lastNew), secs(until)))
		need := ceilSeconds(until)
		var fix string
		switch stop := ps.StopsServer(); {
		case s.Sidecar && stop != nil && s.StopsAccepting < s.SIGTERM:
			fix = fmt.Sprintf("take `%s` out of the preStop hook of container %s (or sleep %d s before it): the hook runs at the delete, while a native sidecar gets SIGTERM only once the main containers have exited", stop.Command, s.Container.Name, need)
		case s.Sidecar:
			fix = fmt.Sprintf("container %s, a native sidecar, gets SIGTERM when the grace period ends even if the main containers still run", s.Container.Name)
		default:
			fix = fmt.Sprintf("give container %s lifecycle.preStop.sleep.seconds: %d (the serving container's delay plus the longest request), or make it a native sidecar (initContainers with restartPolicy: Always), whose SIGTERM waits until the main containers have exited", s.Container.Name, need)
		}
		if g := ceilSeconds(time.Duration(need)*time.Second + GraceMargin); time.Duration(g)*time.Second > x.grace {
			fix += fmt.Sprintf("; raise terminationGracePeriodSeconds to at least %d", g)
		}
		x.add(IDDependencyStops, fmt.Sprintf("%s %s stops accepting %s after delete while the serving container %s still takes requests until %s: requests that need it fail", kind, s.Container.Name, secs(s.StopsAccepting), x.c.Name, secs(until)),
			fix, nil, evs...)
	}
}

// userPathRule (ZD004) flags a health check on a user path: on evidence
// (the root page, or a path the Ingress routes to users) as a warning, and
// as a note when the path is only unknown.
func (x *wctx) userPathRule(hc manifest.HealthCheck, objs []*manifest.Meta) {
	p := hc.Path.Value
	if knownHealthPath(p) {
		return
	}
	hcEv := ev(hc.Path.Pos, "health-check path %s%s", p, defaultNote(hc.Path.Default))
	fix := fmt.Sprintf("serve a health endpoint such as /healthz and set %shealthcheck-path: /healthz (and the readiness probe to the same path)", manifest.ALBAnnotationPrefix)
	norm := func(s string) string {
		if s != "/" {
			s = strings.TrimSuffix(s, "/")
		}
		return s
	}
	if ing := x.tg.Ingress; ing != nil {
		for _, route := range ing.Paths {
			if norm(route.Value) == norm(p) {
				x.add(IDUserPathHealthCheck, fmt.Sprintf("the ALB health check requests %s, a path the Ingress routes to users", p), fix,
					objs, hcEv, ev(route.Pos, "Ingress %s routes %s to users", ing.Name, route.Value))
				return
			}
		}
	}
	if norm(p) == "/" {
		x.add(IDUserPathHealthCheck, "the ALB health check requests /, the application's front page", fix, objs, hcEv)
		return
	}
	f := x.add(IDUserPathHealthCheck, fmt.Sprintf("the ALB health check requests %s, which is not a known health endpoint (a guess: it may be a user path)", p), fix, objs, hcEv)
	f.Severity = Note
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
		}
		evs = append(evs, ev(tt.Pos, "target-type ip"))
		fix := fmt.Sprintf("label the namespace: metadata.labels: {%s: %s} (kubectl label namespace %s %s=%s), then recreate the pods", manifest.ReadinessGateInjectKey, manifest.ReadinessGateInjectOn, ns, manifest.ReadinessGateInjectKey, manifest.ReadinessGateInjectOn)
		if w.NS == nil {
			// The label lives on an object we did not read: say so, do not warn.
			f := x.add(IDNamespaceNoGateLabel, fmt.Sprintf("%s uses ip targets; namespace %s is not among the manifests, so its %s label could not be checked", tg.Source, ns, manifest.ReadinessGateInjectKey),
				"make sure the namespace carries "+manifest.ReadinessGateInjectKey+"="+manifest.ReadinessGateInjectOn+" (or include the Namespace with the manifests)", objs, evs...)
			f.Severity = Note
		} else {
			x.add(IDNamespaceNoGateLabel, msg, fix, append(nsObjs, objs...), evs...)
		}
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

	// ZD025: blue-green scale-down against the ALB's target switch.
	if bg := w.BlueGreen; bg != nil {
		for _, tg := range w.TargetGroups {
			if tg.ServiceName != bg.ActiveService && tg.ServiceName != bg.PreviewService {
				continue
			}
			hc := tg.HealthCheck
			healthy := hc.Interval.Value * time.Duration(hc.HealthyThreshold.Value)
			need := x.cfg.DeregistrationPropagation + healthy
			delays := []struct {
				name string
				f    manifest.Field[time.Duration]
			}{{"scaleDownDelaySeconds", bg.ScaleDownDelay}, {"abortScaleDownDelaySeconds", bg.AbortScaleDownDelay}}
			if tg.ServiceName != bg.ActiveService {
				delays = delays[1:] // the preview pods go away only on abort
			}
			for _, d := range delays {
				if d.f.Value == 0 && d.name == "abortScaleDownDelaySeconds" || d.f.Value >= need {
					continue
				}
				x.add(IDBlueGreenScaleDown, fmt.Sprintf("%s %d scales pods down before %s can have switched: deregistration (estimate %s) plus %d healthy checks × %s for the new targets take %s",
					d.name, int64(d.f.Value/time.Second), tg.Source, secs(x.cfg.DeregistrationPropagation), hc.HealthyThreshold.Value, secs(hc.Interval.Value), secs(need)),
					fmt.Sprintf("set %s: %d, or run Argo Rollouts with --aws-verify-target-group", d.name, ceilSeconds(need+GraceMargin)),
					x.tgObjectsOf(tg), ev(d.f.Pos, "%s %d%s", d.name, int64(d.f.Value/time.Second), defaultNote(d.f.Default)),
					ev(hc.HealthyThreshold.Pos, "healthy threshold %d%s", hc.HealthyThreshold.Value, defaultNote(hc.HealthyThreshold.Default)),
					ev(hc.Interval.Pos, "health-check interval %s%s", secs(hc.Interval.Value), defaultNote(hc.Interval.Default)))
			}
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
			x.add(IDRolloutRemovesAll, fmt.Sprintf("%s with %s, maxSurge %s and maxUnavailable %s lets an update take %s away (surge %d, unavailable %d)",
				st.Type.Value, plural(int(n), "replica", "replicas"), st.MaxSurge.Value.String(), st.MaxUnavailable.Value.String(), allPods(n, "ready "), surge, unav),
				"use strategy RollingUpdate with maxUnavailable: 0 and maxSurge: 1"+twoReplicas(n),
				nil, ev(st.MaxUnavailable.Pos, "maxUnavailable %s%s", st.MaxUnavailable.Value.String(), defaultNote(st.MaxUnavailable.Default)), nEv)
		}
	}

	// ZD019: disruption budget.
	if len(w.PDBs) == 0 {
		x.add(IDDisruptionRemovesAll, fmt.Sprintf("no PodDisruptionBudget selects the pods: a node drain may evict %s", evictAll(n)),
			fmt.Sprintf("add a PodDisruptionBudget with selector %s and maxUnavailable: 1%s", labelsString(w.PodLabels), twoReplicas(n)),
			nil, ev(w.At("spec.template.metadata.labels"), "pod labels %s", labelsString(w.PodLabels)), nEv)
		return
	}
	for _, p := range w.PDBs {
		allowed, where := pdbAllowed(p, n)
		if allowed >= n {
			x.add(IDDisruptionRemovesAll, fmt.Sprintf("PodDisruptionBudget %s allows %s with %s: a drain may evict %s", p.Name, plural(int(allowed), "disruption", "disruptions"), plural(int(n), "replica", "replicas"), evictAll(n)),
				fmt.Sprintf("set maxUnavailable: 1 on PodDisruptionBudget %s%s", p.Name, twoReplicas(n)),
				[]*manifest.Meta{&p.Meta}, ev(where, "PodDisruptionBudget %s", p.Name), nEv)
		}
	}
}

// plural writes "1 replica", "3 replicas".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// allPods writes "the only ready pod" or "all 3 ready pods".
func allPods(n int32, adj string) string {
	if n == 1 {
		return "the only " + adj + "pod"
	}
	return fmt.Sprintf("all %d %spods", n, adj)
}

// evictAll writes "the only pod" or "all 3 pods at once".
func evictAll(n int32) string {
	if n == 1 {
		return "the only pod"
	}
	return fmt.Sprintf("all %d pods at once", n)
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
