package alb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target states, as DescribeTargetHealth reports them.
const (
	StateInitial     = "initial"
	StateHealthy     = "healthy"
	StateUnhealthy   = "unhealthy"
	StateUnused      = "unused"
	StateDraining    = "draining"
	StateUnavailable = "unavailable"
)

// Target health reason codes.
const (
	ReasonRegistrationInProgress   = "Elb.RegistrationInProgress"
	ReasonInitialHealthChecking    = "Elb.InitialHealthChecking"
	ReasonResponseCodeMismatch     = "Target.ResponseCodeMismatch"
	ReasonTimeout                  = "Target.Timeout"
	ReasonFailedHealthChecks       = "Target.FailedHealthChecks"
	ReasonNotRegistered            = "Target.NotRegistered"
	ReasonNotInUse                 = "Target.NotInUse"
	ReasonDeregistrationInProgress = "Target.DeregistrationInProgress"
	ReasonHealthCheckDisabled      = "Target.HealthCheckDisabled"
)

// tgSettings are a target group's settings, replaced as a whole.
type tgSettings struct {
	hc         HealthCheckConfig
	matcher    Matcher
	deregDelay time.Duration // unscaled
	slowStart  time.Duration // unscaled
	algorithm  string
}

// targetGroup is a target group: its targets, their health and routing.
type targetGroup struct {
	lb   *LoadBalancer
	name string
	arn  string
	m    *tgMetrics

	mu       sync.Mutex
	settings tgSettings
	targets  []*target // registered or draining, in registration order
	rr       uint64
	scratch  []*target
	weights  []float64
}

// target is one registered ip:port.
type target struct {
	addr     string
	pool     *pool
	inflight atomic.Int64
	cutCtx   context.Context // done when the deregistration delay ends
	cut      context.CancelFunc

	// Guarded by the group's mu.
	health         string // initial, healthy, unhealthy or unavailable
	reason         string
	desc           string
	okRun, failRun int
	slowStartUntil time.Time
	dpRegistered   bool // the data plane routes to it
	deregistered   bool // deregistration accepted
	drainStart     time.Time
	drainEnd       time.Time
	hcCancel       context.CancelFunc
	hcGen          int
}

func newTargetGroup(lb *LoadBalancer, c TargetGroupConfig) (*targetGroup, error) {
	m, err := ParseMatcher(c.HealthCheck.SuccessCodes)
	if err != nil {
		return nil, err
	}
	g := &targetGroup{
		lb:   lb,
		name: c.Name,
		arn:  fmt.Sprintf("arn:aws:elasticloadbalancing:local:000000000000:targetgroup/%s/%016x", c.Name, rand.Uint64()),
		m:    lb.metrics.forGroup(c.Name),
		settings: tgSettings{
			hc: c.HealthCheck, matcher: m, deregDelay: time.Duration(*c.DeregistrationDelay),
			slowStart: time.Duration(c.SlowStart), algorithm: c.Algorithm,
		},
	}
	return g, nil
}

func (g *targetGroup) find(addr string) *target {
	for _, t := range g.targets {
		if t.addr == addr {
			return t
		}
	}
	return nil
}

// acceptRegister records an accepted RegisterTargets for addr; the data
// plane acts on it in applyRegister. Registering a registered target is a
// no-op; a target still in its deregistration delay cannot be registered.
func (g *targetGroup) acceptRegister(addr string) (apply bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.find(addr); t != nil {
		if t.deregistered {
			return false, &APIError{Status: 400, Code: "InvalidTarget", Message: fmt.Sprintf(
				"target %s is draining in target group %s; it cannot be registered again until its deregistration delay has passed", addr, g.name)}
		}
		return false, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &target{
		addr:   addr,
		pool:   &pool{addr: addr, dialer: g.lb.dialer, idle: g.lb.idleTimeout(), reuseClosed: g.lb.cfg.ReuseClosedIdleConnections},
		cutCtx: ctx, cut: cancel,
		health: StateInitial, reason: ReasonRegistrationInProgress,
		desc: "Target registration is in progress",
	}
	g.targets = append(g.targets, t)
	return true, nil
}

// applyRegister makes the data plane use a registered target and starts
// its health checks.
func (g *targetGroup) applyRegister(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.find(addr)
	if t == nil || t.deregistered || t.dpRegistered {
		return
	}
	t.dpRegistered = true
	g.startHealthLocked(t)
	g.lb.emit(Event{Kind: EventRegistered, TargetGroup: g.name, Target: addr,
		Msg: fmt.Sprintf("target group %s: registered %s", g.name, addr)})
}

// startHealthLocked (re)starts t's health checks with the current settings.
func (g *targetGroup) startHealthLocked(t *target) {
	if t.hcCancel != nil {
		t.hcCancel()
		t.hcCancel = nil
	}
	t.hcGen++
	if !*g.settings.hc.Enabled {
		t.health, t.reason, t.desc = StateUnavailable, ReasonHealthCheckDisabled, "Health checks are disabled"
		return
	}
	if t.health == StateUnavailable {
		t.health, t.okRun, t.failRun = StateInitial, 0, 0
	}
	if t.health == StateInitial {
		t.reason, t.desc = ReasonInitialHealthChecking, "Initial health checks in progress"
	}
	ctx, cancel := context.WithCancel(g.lb.ctx)
	t.hcCancel = cancel
	g.lb.startHealthChecks(ctx, g, t, t.hcGen, g.settings)
}

// acceptDeregister records an accepted DeregisterTargets for addr: the API
// shows the target draining at once; the data plane acts in applyDeregister.
func (g *targetGroup) acceptDeregister(addr string) (apply bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.find(addr)
	if t == nil {
		return false, &APIError{Status: 400, Code: "InvalidTarget", Message: fmt.Sprintf("target %s is not registered in target group %s", addr, g.name)}
	}
	if t.deregistered {
		return false, nil
	}
	t.deregistered = true
	return true, nil
}

// applyDeregister stops new requests to addr and starts its deregistration
// delay; when the delay ends, requests still in flight are cut and the
// target is removed.
func (g *targetGroup) applyDeregister(addr string) {
	g.mu.Lock()
	t := g.find(addr)
	if t == nil || !t.deregistered || !t.drainStart.IsZero() {
		g.mu.Unlock()
		return
	}
	t.dpRegistered = false
	if t.hcCancel != nil {
		t.hcCancel()
		t.hcCancel = nil
	}
	t.hcGen++
	delay := g.lb.scaled(g.settings.deregDelay)
	now := time.Now()
	t.drainStart, t.drainEnd = now, now.Add(delay)
	g.mu.Unlock()
	// No new requests will use the pool: close idle connections now and
	// busy ones as their requests finish.
	t.pool.closeIdle(true)
	n := t.inflight.Load()
	g.lb.emit(Event{Kind: EventDraining, TargetGroup: g.name, Target: addr, State: StateDraining,
		Reason: ReasonDeregistrationInProgress, Delay: delay.String(), InFlight: int64p(n),
		Msg: fmt.Sprintf("target group %s: draining %s for %v (%d in flight)", g.name, addr, delay, n)})
	g.lb.after(delay, func() { g.removeTarget(t) })
}

// removeTarget ends t's deregistration delay.
func (g *targetGroup) removeTarget(t *target) {
	g.mu.Lock()
	g.targets = slices.DeleteFunc(g.targets, func(x *target) bool { return x == t })
	g.mu.Unlock()
	n := t.inflight.Load()
	t.cut()
	t.pool.closeIdle(true)
	ev := Event{Kind: EventDeregistered, TargetGroup: g.name, Target: t.addr, State: StateUnused,
		Reason: ReasonNotRegistered, InFlight: int64p(n), Msg: fmt.Sprintf("target group %s: %s deregistered", g.name, t.addr)}
	if n > 0 {
		ev.Msg = fmt.Sprintf("target group %s: deregistration delay of %s ended with %d requests in flight; cutting them", g.name, t.addr, n)
	}
	g.lb.emit(ev)
}

// recordHealth applies one health-check result from generation gen.
func (g *targetGroup) recordHealth(t *target, gen int, ok bool, reason, desc string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gen != t.hcGen || t.deregistered {
		return
	}
	hc := g.settings.hc
	if ok {
		t.okRun++
		t.failRun = 0
	} else {
		t.failRun++
		t.okRun = 0
	}
	old := t.health
	switch {
	case t.health != StateHealthy && ok && t.okRun >= hc.HealthyThreshold:
		t.health, t.reason, t.desc = StateHealthy, "", ""
		t.slowStartUntil = time.Time{}
		if ss := g.lb.scaled(g.settings.slowStart); ss > 0 && g.settings.algorithm == RoundRobin && g.hasSettledHealthyLocked(t, time.Now()) {
			t.slowStartUntil = time.Now().Add(ss)
		}
	case t.health != StateUnhealthy && !ok && t.failRun >= hc.UnhealthyThreshold:
		t.health, t.reason, t.desc = StateUnhealthy, reason, desc
	case t.health == StateUnhealthy && !ok:
		t.reason, t.desc = reason, desc
	}
	if t.health != old {
		g.lb.emit(Event{Kind: EventTargetState, TargetGroup: g.name, Target: t.addr, State: t.health, PreviousState: old,
			Reason: t.reason, Msg: strings.TrimSpace(fmt.Sprintf("target group %s: %s %s -> %s %s", g.name, t.addr, old, t.health, t.reason))})
	}
}

// hasSettledHealthyLocked reports whether a healthy target other than t is
// routed and not in slow start.
func (g *targetGroup) hasSettledHealthyLocked(t *target, now time.Time) bool {
	for _, x := range g.targets {
		if x != t && x.dpRegistered && x.health == StateHealthy && !now.Before(x.slowStartUntil) {
			return true
		}
	}
	return false
}

// pick chooses the target for a new request. It returns nil when the group
// has no registered targets. When no target is healthy it fails open and
// routes to every registered target.
func (g *targetGroup) pick(now time.Time) *target {
	g.mu.Lock()
	defer g.mu.Unlock()
	cands := g.scratch[:0]
	registered := 0
	for _, t := range g.targets {
		if !t.dpRegistered {
			continue
		}
		registered++
		if t.health == StateHealthy || t.health == StateUnavailable {
			cands = append(cands, t)
		}
	}
	if registered == 0 {
		return nil
	}
	if len(cands) == 0 { // fail open
		for _, t := range g.targets {
			if t.dpRegistered {
				cands = append(cands, t)
			}
		}
	}
	g.scratch = cands
	g.rr++
	start := int(g.rr % uint64(len(cands)))
	if g.settings.algorithm == LeastOutstandingRequests {
		best := cands[start]
		bestN := best.inflight.Load()
		for i := 1; i < len(cands); i++ {
			t := cands[(start+i)%len(cands)]
			if n := t.inflight.Load(); n < bestN {
				best, bestN = t, n
			}
		}
		return best
	}
	if g.settings.slowStart > 0 {
		if t := g.pickSlowStartLocked(cands, now); t != nil {
			return t
		}
	}
	return cands[start]
}

// pickSlowStartLocked picks with weights when some candidates are in slow
// start: a target's share rises linearly from 0 to 1 over the slow-start
// duration. It returns nil when no candidate is in slow start.
func (g *targetGroup) pickSlowStartLocked(cands []*target, now time.Time) *target {
	ss := g.lb.scaled(g.settings.slowStart)
	w := g.weights[:0]
	ramping := false
	total := 0.0
	for _, t := range cands {
		x := 1.0
		if now.Before(t.slowStartUntil) && ss > 0 {
			ramping = true
			x = 1 - float64(t.slowStartUntil.Sub(now))/float64(ss)
			x = max(x, 0.001)
		}
		w = append(w, x)
		total += x
	}
	g.weights = w
	if !ramping {
		return nil
	}
	r := rand.Float64() * total
	for i, x := range w {
		if r < x {
			return cands[i]
		}
		r -= x
	}
	return cands[len(cands)-1]
}

// hostCounts returns the numbers of healthy and unhealthy routed targets.
func (g *targetGroup) hostCounts() (healthy, unhealthy int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range g.targets {
		if !t.dpRegistered {
			continue
		}
		switch t.health {
		case StateHealthy, StateUnavailable:
			healthy++
		case StateUnhealthy:
			unhealthy++
		}
	}
	return healthy, unhealthy
}

// describe returns the health of the given targets (all when none given).
func (g *targetGroup) describe(only []string) []TargetHealthDescription {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []TargetHealthDescription
	add := func(t *target) {
		out = append(out, g.describeLocked(t))
	}
	if len(only) == 0 {
		for _, t := range g.targets {
			add(t)
		}
		return out
	}
	for _, a := range only {
		if t := g.find(a); t != nil {
			add(t)
			continue
		}
		out = append(out, TargetHealthDescription{
			Target:          targetDescription(a),
			HealthCheckPort: g.healthPortLocked(a),
			TargetHealth:    TargetHealth{State: StateUnused, Reason: ReasonNotRegistered, Description: "Target is not registered to the target group"},
		})
	}
	return out
}

func (g *targetGroup) describeLocked(t *target) TargetHealthDescription {
	d := TargetHealthDescription{Target: targetDescription(t.addr), HealthCheckPort: g.healthPortLocked(t.addr)}
	switch {
	case t.deregistered:
		d.TargetHealth = TargetHealth{State: StateDraining, Reason: ReasonDeregistrationInProgress, Description: "Target deregistration is in progress"}
		if !t.drainStart.IsZero() {
			n := t.inflight.Load()
			if n == 0 && t.pool.openConns() == 0 {
				d.TargetHealth.Description += "; drained (no requests in flight, no open connections)"
			} else {
				d.TargetHealth.Description += fmt.Sprintf("; %d requests in flight", n)
			}
			d.DrainEndsAt = t.drainEnd.UTC().Format(time.RFC3339Nano)
		}
	default:
		d.TargetHealth = TargetHealth{State: t.health, Reason: t.reason, Description: t.desc}
	}
	d.InFlight = t.inflight.Load()
	return d
}

func (g *targetGroup) healthPortLocked(addr string) string {
	if g.settings.hc.Port != "traffic-port" {
		return g.settings.hc.Port
	}
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func targetDescription(addr string) TargetDescription {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return TargetDescription{ID: host, Port: p}
}
