package check

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"zerodrop.dev/zerodrop/manifest"
)

// wctx is everything the rules of one workload share: the served
// container, its primary target group and the resolved timings.
type wctx struct {
	m   *manifest.Model
	w   *manifest.Workload
	cfg Config
	c   *manifest.Container
	tg  *manifest.TargetGroup // primary ALB target group, nil when none

	maxReq   time.Duration
	maxReqEv Evidence

	grace        time.Duration
	preStop      time.Duration // how long the hook blocks (uncapped)
	preStopKnown bool
	appDelay     time.Duration // app delay after SIGTERM still to serve
	appDelayEv   *Evidence
	immediate    bool
	hookFails    bool           // exec preStop that cannot run in the image
	stop         *manifest.Step // preStop step that stops the server
	stopCuts     bool           // that step cuts in-flight requests

	hc          manifest.HealthCheckTarget // where the ALB health check reaches the pod
	readyPort   manifest.PodPort
	readyPortOK bool

	sigterm, stopAccepting, lbStop, kill time.Duration
	lbStopWhy                            string

	schedule []manifest.ContainerStop
	unrouted bool              // no Service, Ingress or TargetGroupBinding routes to it
	pnr      *manifest.Service // a load-balanced Service with publishNotReadyAddresses
	pnrWhy   string

	findings []Finding
	extra    []Finding // ZD000 findings raised while resolving
}

func checkWorkload(m *manifest.Model, w *manifest.Workload, cfg Config, ignoredCount *int) WorkloadReport {
	wr := WorkloadReport{Object: w.Ref(), Pos: w.Pos, Findings: []Finding{}}
	x := &wctx{m: m, w: w, cfg: cfg}
	if len(w.Services) == 0 && len(w.TargetGroups) == 0 {
		// No routing among the manifests: only the rules that need no load
		// balancer, on a container that listens.
		for _, c := range w.Pod.Containers {
			if len(c.Ports) > 0 {
				x.c = c
				break
			}
		}
		if x.c == nil {
			return wr
		}
		x.unrouted = true
	} else {
		wr.Served = true
		x.c = servedContainer(w)
	}
	for _, tg := range w.TargetGroups {
		if x.tg == nil {
			x.tg = tg
		}
	}
	for _, s := range w.Services {
		wr.Routes = append(wr.Routes, "Service/"+s.Name)
	}
	for _, tg := range w.TargetGroups {
		wr.Routes = append(wr.Routes, fmt.Sprintf("%s → %s:%s (target type %s)", tg.Source, tg.ServiceName, tg.ServicePort, tg.TargetType.Value))
	}
	if x.c == nil {
		return wr
	}
	wr.Container = x.c.Name
	x.resolve()
	if len(x.schedule) > 1 {
		wr.Containers = x.schedule
	}
	wr.Termination = x.termination()
	wr.Startup = x.startup()
	x.rules()
	for _, f := range append(x.extra, x.findings...) {
		f.objects = append(f.objects, &w.Meta)
		if x.ignoredByPod(f) || ignored(f) {
			*ignoredCount++
			continue
		}
		wr.Findings = append(wr.Findings, f)
	}
	sort.SliceStable(wr.Findings, func(i, j int) bool {
		if wr.Findings[i].Severity != wr.Findings[j].Severity {
			return wr.Findings[i].Severity > wr.Findings[j].Severity
		}
		return wr.Findings[i].RuleID < wr.Findings[j].RuleID
	})
	return wr
}

func (x *wctx) ignoredByPod(f Finding) bool {
	for _, id := range strings.Split(x.w.PodAnnotations[AnnotationIgnore], ",") {
		if id = strings.TrimSpace(id); strings.EqualFold(id, f.RuleID) || id == f.Rule {
			return true
		}
	}
	return false
}

// servedContainer is the container whose port a Service targets, or the
// first container.
func servedContainer(w *manifest.Workload) *manifest.Container {
	cs := w.Pod.Containers
	if len(cs) == 0 {
		return nil
	}
	for _, s := range w.Services {
		for _, sp := range s.Ports {
			for _, c := range cs {
				for _, p := range c.Ports {
					if sp.TargetPort.Type == intstr.Int && p.Port == sp.TargetPort.IntVal ||
						sp.TargetPort.Type == intstr.String && p.Name == sp.TargetPort.StrVal {
						return c
					}
				}
			}
		}
	}
	return cs[0]
}

// resolve computes the termination timings of the served container.
func (x *wctx) resolve() {
	w, c := x.w, x.c
	x.maxReq = x.cfg.MaxRequestDuration
	x.maxReqEv = Evidence{Note: fmt.Sprintf("longest request %s (default; declare it with %s or --max-request-duration)", secs(x.maxReq), AnnotationMaxRequest)}
	type src struct {
		v   string
		pos manifest.Pos
		ok  bool
	}
	var found src
	if v, ok := w.Annotations[AnnotationMaxRequest]; ok {
		found = src{v, w.AnnotationPos(AnnotationMaxRequest), true}
	} else if v, ok := w.PodAnnotations[AnnotationMaxRequest]; ok {
		found = src{v, w.At(`spec.template.metadata.annotations["` + AnnotationMaxRequest + `"]`), true}
	} else if x.tg != nil && x.tg.Ingress != nil {
		if v, ok := x.tg.Ingress.Annotations[AnnotationMaxRequest]; ok {
			found = src{v, x.tg.Ingress.AnnotationPos(AnnotationMaxRequest), true}
		}
	}
	if found.ok {
		d, err := time.ParseDuration(strings.TrimSpace(found.v))
		if err != nil || d < 0 {
			f := newFinding(IDManifest, w.Ref(), fmt.Sprintf("annotation %s=%q is not a Go duration such as 30s; using %s", AnnotationMaxRequest, found.v, secs(x.maxReq)), Evidence{Pos: found.pos, Note: "cannot be interpreted"})
			x.extra = append(x.extra, f)
		} else {
			x.maxReq = d
			x.maxReqEv = Evidence{Pos: found.pos, Note: "longest request " + secs(d)}
		}
	}

	x.schedule = w.Pod.TerminationSchedule(x.maxReq)
	x.grace = w.Pod.TerminationGracePeriod.Value
	app := c.App
	x.immediate = app.Shutdown != nil && app.Shutdown.Value != "graceful"
	if app.ShutdownDelay != nil && !x.immediate {
		x.appDelay = app.ShutdownDelay.Value
		x.appDelayEv = &Evidence{Pos: app.ShutdownDelay.Pos, Note: manifest.EnvShutdownDelay + "=" + secs(x.appDelay)}
	}
	x.preStopKnown = true
	if ps := c.PreStop; ps != nil {
		switch {
		case ps.Kind == manifest.PreStopHTTPGet:
			// The drain library's preStop endpoint blocks for the shutdown
			// delay, and SIGTERM afterwards does not wait again.
			if x.appDelayEv != nil {
				x.preStop, x.appDelay = x.appDelay, 0
			} else {
				x.preStopKnown = false
			}
		case (ps.NeedsShell || ps.NeedsSleep) && !manifest.ImageShellOf(c.Image.Value).HasShell:
			x.hookFails = true // the exec fails at once: no delay at all
		case ps.Known:
			x.preStop = ps.Duration.Value
		default:
			x.preStopKnown = false
		}
	}
	// The grace countdown starts before preStop; SIGTERM comes when the
	// hook returns or the grace period ends, and SIGKILL at that end but
	// never less than 2 s after SIGTERM (the kubelet's minimum).
	x.sigterm = min(x.preStop, x.grace)
	x.kill = max(x.grace, x.sigterm+manifest.PreStopGraceExtension)
	x.stopAccepting = min(x.sigterm+x.appDelay, x.kill)
	if ps := c.PreStop; ps != nil && !x.hookFails {
		if st := ps.StopsServer(); st != nil {
			at := st.At
			if st.Graceful && x.appDelayEv != nil {
				at += x.appDelay // a drain-library app serves on for its delay after the signal
			}
			if at <= x.stopAccepting {
				x.stop, x.stopAccepting, x.stopCuts = st, at, !st.Graceful
			}
		}
	}
	if x.tg != nil {
		x.hc = x.tg.HealthCheckPort(w)
	}
	if r := c.Readiness; r != nil && r.Handler != manifest.HandlerExec {
		x.readyPort, x.readyPortOK = c.ResolvePort(r.Port.Value)
	}

	x.lbStop = x.cfg.DeregistrationPropagation
	x.lbStopWhy = fmt.Sprintf("deregistration propagation estimate %s: controller reconcile + ELB API + data plane", secs(x.lbStop))
	if x.tg == nil {
		x.lbStopWhy = fmt.Sprintf("endpoint removal reaches kube-proxy / the load balancer (estimate %s)", secs(x.lbStop))
	}
	if x.pnr = x.publishNotReady(); x.pnr != nil {
		gone := time.Duration(0)
		for _, s := range x.schedule {
			gone = max(gone, s.Exit)
		}
		x.lbStop = gone + x.cfg.DeregistrationPropagation
		x.lbStopWhy = fmt.Sprintf("Service %s publishes not-ready addresses: the endpoint stays ready until the pod is gone at %s, then deregistration (estimate %s)", x.pnr.Name, secs(gone), secs(x.cfg.DeregistrationPropagation))
		x.pnrWhy = fmt.Sprintf("the endpoint stays ready until the pod is gone at %s; the target is deregistered about %s later", secs(gone), secs(x.cfg.DeregistrationPropagation))
	}
	if x.tg != nil && x.healthFailsOnTermination() {
		failAt := x.sigterm
		if c.PreStop != nil && c.PreStop.Kind == manifest.PreStopHTTPGet {
			failAt = 0
		}
		hc := x.tg.HealthCheck
		detect := failAt + hc.Interval.Value*time.Duration(hc.UnhealthyThreshold.Value)
		if detect < x.lbStop {
			x.lbStop = detect
			x.lbStopWhy = fmt.Sprintf("ALB health check marks the target unhealthy (%s × %d after readiness fails)", secs(hc.Interval.Value), hc.UnhealthyThreshold.Value)
		}
	}
}

// publishNotReady returns the Service with publishNotReadyAddresses: true
// that an ALB target group or an NLB routes to the workload through.
func (x *wctx) publishNotReady() *manifest.Service {
	for _, tg := range x.w.TargetGroups {
		if s := tg.Service; s != nil && s.PublishNotReadyAddresses.Value {
			return s
		}
	}
	for _, s := range x.w.Services {
		if s.NLB && s.PublishNotReadyAddresses.Value {
			return s
		}
	}
	return nil
}

// healthFailsOnTermination: the drain library fails readiness at once at
// SIGTERM (or at its preStop endpoint); the ALB sees it only when it
// checks the same path.
func (x *wctx) healthFailsOnTermination() bool {
	c := x.c
	drain := x.appDelayEv != nil || c.PreStop != nil && c.PreStop.Kind == manifest.PreStopHTTPGet
	if !drain || x.immediate || c.Readiness == nil || c.Readiness.Handler != manifest.HandlerHTTPGet {
		return false
	}
	// The ALB sees the drain only on the same listener: an admin port or
	// a sidecar that stays 200 hides it.
	if !x.hc.Known || !x.readyPortOK || x.hc.Port != x.readyPort.Port {
		return false
	}
	return c.Readiness.Path.Value == x.tg.HealthCheck.Path.Value
}

func (x *wctx) termination() *Timeline {
	t := &Timeline{}
	add := func(at time.Duration, what string) { t.Events = append(t.Events, Event{At: at, What: what}) }
	c := x.c
	switch {
	case c.PreStop == nil:
		add(0, "pod deleted: endpoint marked terminating; no preStop hook, SIGTERM at once")
	case x.hookFails:
		add(0, fmt.Sprintf("pod deleted: endpoint marked terminating; preStop %s fails at once (no shell/sleep in the image), SIGTERM", c.PreStop.Kind))
	case !x.preStopKnown:
		add(0, fmt.Sprintf("pod deleted: endpoint marked terminating; preStop %s starts (duration unknown, counted as 0)", c.PreStop.Kind))
	default:
		add(0, fmt.Sprintf("pod deleted: endpoint marked terminating; preStop %s starts (%s)", c.PreStop.Kind, secs(x.preStop)))
	}
	add(x.lbStop, "load balancer stops sending new requests ("+x.lbStopWhy+")")
	if x.preStop > x.grace && c.PreStop != nil {
		add(x.sigterm, fmt.Sprintf("SIGTERM: grace period %s ended with preStop still running (%s)", secs(x.grace), secs(x.preStop)))
	} else {
		add(x.sigterm, "SIGTERM")
	}
	switch {
	case x.stop != nil:
		how := "finishing what is in flight"
		if x.stopCuts {
			how = "cutting what is in flight"
		}
		add(x.stopAccepting, fmt.Sprintf("preStop runs `%s`: the server stops accepting, %s", x.stop.Command, how))
	case x.immediate:
		add(x.stopAccepting, fmt.Sprintf("app exits at SIGTERM (%s=%s): in-flight requests cut", manifest.EnvShutdown, c.App.Shutdown.Value))
	case x.appDelay > 0:
		add(x.stopAccepting, fmt.Sprintf("app stops accepting after its delay (%s)", secs(x.appDelay)))
	case x.appDelayEv == nil && (c.PreStop == nil || c.PreStop.Kind != manifest.PreStopHTTPGet):
		add(x.stopAccepting, "app stops accepting (no app delay declared)")
	default:
		add(x.stopAccepting, "app stops accepting")
	}
	lastNew := min(x.lbStop, x.stopAccepting)
	inflightEnd := lastNew + x.maxReq
	add(inflightEnd, fmt.Sprintf("requests accepted last are done (longest request %s)", secs(x.maxReq)))
	cut, cutWhy := x.kill, fmt.Sprintf("SIGKILL at %s", secs(x.kill))
	if c.App.ShutdownTimeout != nil && !x.immediate {
		if at := x.stopAccepting + c.App.ShutdownTimeout.Value; at < cut {
			cut, cutWhy = at, fmt.Sprintf("the app's %s (%s) at %s", manifest.EnvShutdownTimeout, secs(c.App.ShutdownTimeout.Value), secs(at))
		}
	}
	if x.immediate {
		cut, cutWhy = x.sigterm, fmt.Sprintf("the app exiting at SIGTERM (%s)", secs(x.sigterm))
	}
	if x.stop != nil && x.stopCuts && x.stopAccepting < cut {
		cut, cutWhy = x.stopAccepting, fmt.Sprintf("`%s` at %s", x.stop.Command, secs(x.stopAccepting))
	}
	if x.tg != nil {
		dd := x.tg.Attributes.DeregistrationDelay.Value
		add(x.lbStop+dd, fmt.Sprintf("deregistration delay (%s) ends: the ALB cuts requests still in flight", secs(dd)))
	}
	add(x.kill, fmt.Sprintf("SIGKILL (grace period %s)", secs(x.grace)))
	sort.SliceStable(t.Events, func(i, j int) bool { return t.Events[i].At < t.Events[j].At })

	if x.stopAccepting < x.lbStop {
		t.Windows = append(t.Windows, Window{From: x.stopAccepting, To: x.lbStop, Why: "new requests reach a pod that no longer accepts (502/504)"})
	}
	if cut < inflightEnd && lastNew > 0 {
		from := max(0, cut-x.maxReq)
		if from < lastNew {
			t.Windows = append(t.Windows, Window{From: from, To: lastNew, Why: "requests started here can still be running when they are cut by " + cutWhy})
		}
	}
	if lastNew < x.stopAccepting && !x.immediate {
		// Past the estimate: the app still accepts until stopAccepting.
		if from := max(0, cut-x.maxReq); from < x.stopAccepting && max(from, lastNew) < x.stopAccepting {
			t.Windows = append(t.Windows, Window{From: max(from, lastNew), To: x.stopAccepting, Risk: true,
				Why: "only if the load balancer is slower than the estimate: requests it still sends here can be cut by " + cutWhy})
		}
	}
	if x.tg != nil {
		dd := x.tg.Attributes.DeregistrationDelay.Value
		if dd < x.maxReq {
			from := max(0, x.lbStop+dd-x.maxReq)
			if from < x.lbStop {
				t.Windows = append(t.Windows, Window{From: from, To: x.lbStop, Why: fmt.Sprintf("requests started here can outlast the deregistration delay (%s) and are cut by the ALB (502)", secs(dd))})
			}
		}
	}
	return t
}

// gated reports whether the pods get the target-health readiness gate.
func (x *wctx) gated() bool {
	if x.tg == nil || x.tg.TargetType.Value != manifest.TargetIP {
		return false
	}
	if x.w.NS != nil && x.w.NS.ReadinessGateInject.Value {
		return true
	}
	for _, g := range x.w.Pod.ReadinessGates {
		if strings.HasPrefix(g.Value, manifest.ReadinessGatePrefix) {
			return true
		}
	}
	return false
}

func (x *wctx) startup() *Timeline {
	t := &Timeline{}
	add := func(at time.Duration, what string) { t.Events = append(t.Events, Event{At: at, What: what}) }
	add(0, "container started")
	var ready time.Duration
	if p := x.c.Readiness; p != nil {
		ready = p.InitialDelay.Value + time.Duration(p.SuccessThreshold.Value-1)*p.Period.Value
		add(ready, fmt.Sprintf("readiness probe passes (initial delay %s, period %s; assuming the app answers by then)", secs(p.InitialDelay.Value), secs(p.Period.Value)))
	} else {
		add(0, "containers ready at once: no readiness probe (the app may not listen yet)")
	}
	if x.tg == nil {
		add(ready, "pod Ready: endpoint serves")
		return t
	}
	if x.tg.TargetType.Value == manifest.TargetInstance {
		add(ready, "pod Ready: kube-proxy routes node traffic to it (the ALB checks the node, not this pod)")
		return t
	}
	hc := x.tg.HealthCheck
	registered := ready + x.cfg.DeregistrationPropagation
	healthy := registered + hc.Interval.Value*time.Duration(hc.HealthyThreshold.Value)
	add(registered, fmt.Sprintf("target registered, initial health checks (estimate %s after the endpoint is ready)", secs(x.cfg.DeregistrationPropagation)))
	if x.gated() {
		add(healthy, fmt.Sprintf("target healthy (%d × %s); readiness gate True: pod Ready", hc.HealthyThreshold.Value, secs(hc.Interval.Value)))
	} else {
		add(ready, "pod Ready (no readiness gate): counted available, old pods may terminate")
		add(healthy, fmt.Sprintf("target healthy (%d × %s): receives traffic", hc.HealthyThreshold.Value, secs(hc.Interval.Value)))
		if healthy > ready {
			t.Windows = append(t.Windows, Window{From: ready, To: healthy, Why: "pod counted Ready while its target is not in service: a rollout removes old targets first (fewer or no healthy targets: 503 or fail-open)"})
		}
	}
	if ss := x.tg.Attributes.SlowStart.Value; ss > 0 {
		add(healthy+ss, fmt.Sprintf("slow start (%s) over: full share of requests", secs(ss)))
	}
	sort.SliceStable(t.Events, func(i, j int) bool { return t.Events[i].At < t.Events[j].At })
	return t
}

// dependencyImage matches images of processes a serving container uses
// through the pod's loopback: FastCGI backends, proxies, database proxies,
// mesh sidecars, in-pod caches.
var dependencyImage = regexp.MustCompile(`(?i)(php.*fpm|-fpm\b|fpm-|cloud-?sql-proxy|alloydb-auth-proxy|pgbouncer|odyssey|proxysql|envoy|istio/proxy|proxyv2|linkerd.*proxy|oauth2-proxy|haproxy|nginx|redis|memcached|unicorn|puma|gunicorn|uwsgi)`)

// dependency reports whether a non-serving container of the pod is one the
// serving container may depend on: it listens on a port, or its image is a
// known backend, proxy or cache.
func dependency(c *manifest.Container) (bool, string) {
	if len(c.Ports) > 0 {
		return true, fmt.Sprintf("it listens on port %d in the pod", c.Ports[0].Port)
	}
	if dependencyImage.MatchString(c.Image.Value) {
		return true, "its image " + c.Image.Value + " is a backend, proxy or cache"
	}
	return false, ""
}

// healthSegment matches one path segment that names a health endpoint of
// a common framework or convention: /healthz, /readyz, /livez (Kubernetes
// style), /health… (Spring Boot /actuator/health/readiness, Quarkus
// /q/health, ASP.NET /health), /up (Rails), /hc, /ping, /status,
// /heartbeat, /-/ready (GitLab, Prometheus), /_ah/health (App Engine) …
var healthSegment = regexp.MustCompile(`(?i)^[_-]{0,2}(health[a-z0-9_-]*|hc|up|ping|pong|status|alive|ready|readyz|readiness|live|livez|liveness|heartbeat|lbcheck|elb-?(status|check)|nginx-health|ok)(\.[a-z]+)?$`)

// knownHealthPath reports whether a path is a recognised health endpoint:
// one of its segments names one (so /api/v1/health and
// /actuator/health/readiness count).
func knownHealthPath(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	for _, seg := range strings.Split(path, "/") {
		if seg != "" && healthSegment.MatchString(seg) {
			return true
		}
	}
	return false
}

func clampInt(v, lo, hi int64) int64 { return max(lo, min(hi, v)) }

func roundDiv(a, b time.Duration) int64 { return int64(math.Round(float64(a) / float64(b))) }
