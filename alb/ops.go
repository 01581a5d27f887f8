package alb

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

func validation(format string, args ...any) error {
	return &APIError{Status: 400, Code: "ValidationError", Message: fmt.Sprintf(format, args...)}
}

// schedule runs apply after op's control-plane latency and returns when the
// data plane will have acted.
func (lb *LoadBalancer) schedule(op string, apply func()) AcceptedOutput {
	d := lb.scaled(lb.cfg.ControlPlaneLatency.For(op))
	at := time.Now().Add(d)
	lb.after(d, apply)
	return AcceptedOutput{EffectiveAt: at.UTC().Format(time.RFC3339Nano)}
}

func targetAddrs(ts []TargetDescription) ([]string, error) {
	if len(ts) == 0 {
		return nil, validation("Targets: at least one target is required")
	}
	out := make([]string, 0, len(ts))
	for i, t := range ts {
		if net.ParseIP(t.ID) == nil {
			return nil, validation("Targets[%d].Id: %q is not an IP address (targets are ip targets)", i, t.ID)
		}
		if t.Port < 1 || t.Port > 65535 {
			return nil, validation("Targets[%d].Port: %d is out of range 1–65535", i, t.Port)
		}
		a, err := parseTarget(t.String())
		if err != nil {
			return nil, validation("Targets[%d]: %v", i, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// targetChange is one of the two target-set operations: a check of every
// target before anything changes, the API-side acceptance of one target
// (false when it is a no-op), and the data-plane change applied after the
// control-plane latency.
type targetChange struct {
	op     string
	check  func(g *targetGroup, addr string) error // called with g.mu held
	accept func(g *targetGroup, addr string) (bool, error)
	apply  func(g *targetGroup, addr string)
}

// changeTargets validates every target of in first, so that a bad one
// changes nothing, then accepts them and schedules the data-plane change.
func (lb *LoadBalancer) changeTargets(in TargetsInput, c targetChange) (AcceptedOutput, error) {
	g, err := lb.group(in.TargetGroupName)
	if err != nil {
		return AcceptedOutput{}, err
	}
	addrs, err := targetAddrs(in.Targets)
	if err != nil {
		return AcceptedOutput{}, err
	}
	g.mu.Lock()
	for _, a := range addrs {
		if err := c.check(g, a); err != nil {
			g.mu.Unlock()
			return AcceptedOutput{}, err
		}
	}
	g.mu.Unlock()
	var accepted []string
	for _, a := range addrs {
		ok, err := c.accept(g, a)
		if err != nil {
			return AcceptedOutput{}, err
		}
		if ok {
			accepted = append(accepted, a)
		}
	}
	return lb.schedule(c.op, func() {
		for _, a := range accepted {
			c.apply(g, a)
		}
	}), nil
}

// RegisterTargets registers ip:port targets in a target group. The API
// shows them at once (initial, Elb.RegistrationInProgress); the data plane
// starts health-checking them after the control-plane latency.
func (lb *LoadBalancer) RegisterTargets(in TargetsInput) (AcceptedOutput, error) {
	return lb.changeTargets(in, targetChange{
		op: "RegisterTargets",
		check: func(g *targetGroup, a string) error {
			if t := g.find(a); t != nil && t.deregistered {
				return &APIError{Status: 400, Code: "InvalidTarget", Message: fmt.Sprintf(
					"target %s is draining in target group %s; it cannot be registered again until its deregistration delay has passed", a, g.name)}
			}
			return nil
		},
		accept: (*targetGroup).acceptRegister,
		apply:  (*targetGroup).applyRegister,
	})
}

// DeregisterTargets deregisters targets. The API shows them draining at
// once; the data plane stops sending them new requests after the
// control-plane latency and cuts what is still in flight when the
// deregistration delay ends.
func (lb *LoadBalancer) DeregisterTargets(in TargetsInput) (AcceptedOutput, error) {
	return lb.changeTargets(in, targetChange{
		op: "DeregisterTargets",
		check: func(g *targetGroup, a string) error {
			if g.find(a) == nil {
				return &APIError{Status: 400, Code: "InvalidTarget", Message: fmt.Sprintf("target %s is not registered in target group %s", a, g.name)}
			}
			return nil
		},
		accept: (*targetGroup).acceptDeregister,
		apply:  (*targetGroup).applyDeregister,
	})
}

// DescribeTargetHealth reports target states and reason codes.
func (lb *LoadBalancer) DescribeTargetHealth(in DescribeTargetHealthInput) (DescribeTargetHealthOutput, error) {
	g, err := lb.group(in.TargetGroupName)
	if err != nil {
		return DescribeTargetHealthOutput{}, err
	}
	var only []string
	if len(in.Targets) > 0 {
		if only, err = targetAddrs(in.Targets); err != nil {
			return DescribeTargetHealthOutput{}, err
		}
	}
	out := DescribeTargetHealthOutput{TargetHealthDescriptions: g.describe(only)}
	if out.TargetHealthDescriptions == nil {
		out.TargetHealthDescriptions = []TargetHealthDescription{}
	}
	return out, nil
}

// ModifyRule replaces the forward action (weights) of the rule with the
// given priority, after the control-plane latency.
func (lb *LoadBalancer) ModifyRule(in ModifyRuleInput) (AcceptedOutput, error) {
	idx := slices.IndexFunc(*lb.rules.Load(), func(r *rule) bool { return r.priority == in.Priority })
	if idx < 0 {
		return AcceptedOutput{}, &APIError{Status: 400, Code: "RuleNotFound", Message: fmt.Sprintf("no rule with priority %d", in.Priority)}
	}
	if len(in.Actions) != 1 || in.Actions[0].Type != "forward" {
		return AcceptedOutput{}, validation("Actions: want exactly one action of Type forward")
	}
	var fwd []WeightedTargetGroup
	names := map[string]bool{}
	for _, g := range lb.groupList() {
		names[g.name] = true
	}
	const f = "Actions[0].ForwardConfig.TargetGroups"
	tgs := in.Actions[0].ForwardConfig.TargetGroups
	if len(tgs) == 0 || len(tgs) > 5 {
		return AcceptedOutput{}, validation("%s: want 1–5 target groups, got %d", f, len(tgs))
	}
	seen := map[string]bool{}
	for j, tg := range tgs {
		switch {
		case !names[tg.TargetGroupName]:
			return AcceptedOutput{}, &APIError{Status: 400, Code: "TargetGroupNotFound",
				Message: fmt.Sprintf("%s[%d].TargetGroupName: no target group %q", f, j, tg.TargetGroupName)}
		case seen[tg.TargetGroupName]:
			return AcceptedOutput{}, validation("%s[%d].TargetGroupName: %q is listed twice", f, j, tg.TargetGroupName)
		case tg.Weight != nil && (*tg.Weight < 0 || *tg.Weight > 999):
			return AcceptedOutput{}, validation("%s[%d].Weight: %d is out of range 0–999", f, j, *tg.Weight)
		}
		seen[tg.TargetGroupName] = true
		fwd = append(fwd, WeightedTargetGroup{TargetGroup: tg.TargetGroupName, Weight: tg.Weight})
	}
	prio := in.Priority
	return lb.schedule("ModifyRule", func() {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		old := *lb.rules.Load()
		rules := slices.Clone(old)
		for i, r := range rules {
			if r.priority == prio {
				rules[i] = lb.buildRuleLocked(prio, r.hosts, r.prefixes, fwd)
			}
		}
		lb.setRules(rules)
		lb.emit(Event{Kind: EventRule, Priority: prio, Forward: describeForward(fwd),
			Msg: fmt.Sprintf("rule %d: forward %s", prio, describeForward(fwd))})
	}), nil
}

func describeForward(fwd []WeightedTargetGroup) string {
	s := ""
	for i, w := range fwd {
		if i > 0 {
			s += ", "
		}
		wt := 1
		if w.Weight != nil {
			wt = *w.Weight
		}
		s += fmt.Sprintf("%s=%d", w.TargetGroup, wt)
	}
	return s
}

// ModifyTargetGroup changes a target group's health check after the
// control-plane latency. Unset fields keep their values.
func (lb *LoadBalancer) ModifyTargetGroup(in ModifyTargetGroupInput) (AcceptedOutput, error) {
	g, err := lb.group(in.TargetGroupName)
	if err != nil {
		return AcceptedOutput{}, err
	}
	if err := in.validate(); err != nil {
		return AcceptedOutput{}, err
	}
	g.mu.Lock()
	hc := g.settings.hc
	g.mu.Unlock()
	if in.HealthCheckEnabled != nil {
		on := *in.HealthCheckEnabled
		hc.Enabled = &on
	}
	if in.HealthCheckPath != "" {
		hc.Path = in.HealthCheckPath
	}
	if in.HealthCheckPort != "" {
		hc.Port = in.HealthCheckPort
	}
	if in.HealthCheckIntervalSeconds != 0 {
		hc.Interval = Duration(time.Duration(in.HealthCheckIntervalSeconds) * time.Second)
	}
	if in.HealthCheckTimeoutSeconds != 0 {
		hc.Timeout = Duration(time.Duration(in.HealthCheckTimeoutSeconds) * time.Second)
	}
	if in.HealthyThresholdCount != 0 {
		hc.HealthyThreshold = in.HealthyThresholdCount
	}
	if in.UnhealthyThresholdCount != 0 {
		hc.UnhealthyThreshold = in.UnhealthyThresholdCount
	}
	if in.Matcher != nil {
		hc.SuccessCodes = in.Matcher.HTTPCode
	}
	if hc.Timeout > hc.Interval {
		return AcceptedOutput{}, validation("HealthCheckTimeoutSeconds: %d must not exceed HealthCheckIntervalSeconds %d",
			int(time.Duration(hc.Timeout)/time.Second), int(time.Duration(hc.Interval)/time.Second))
	}
	if err := hc.validate("HealthCheck"); err != nil {
		return AcceptedOutput{}, validation("%v", err) // unreachable after in.validate; kept as a guard
	}
	m, _ := ParseMatcher(hc.SuccessCodes)
	return lb.schedule("ModifyTargetGroup", func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.settings.hc, g.settings.matcher = hc, m
		for _, t := range g.targets {
			if t.dpRegistered && !t.deregistered {
				g.startHealthLocked(t)
			}
		}
		lb.emit(Event{Kind: EventHealthCheck, TargetGroup: g.name,
			Msg: fmt.Sprintf("target group %s: health check %s every %v", g.name, hc.Path, time.Duration(hc.Interval))})
	}), nil
}

// validate checks the set fields of a ModifyTargetGroup input in the API's
// own names and units (seconds, counts), as the ELB API's ranges say.
func (in ModifyTargetGroupInput) validate() error {
	ranges := []struct {
		name   string
		v      int
		lo, hi int
	}{
		{"HealthCheckIntervalSeconds", in.HealthCheckIntervalSeconds, 5, 300},
		{"HealthCheckTimeoutSeconds", in.HealthCheckTimeoutSeconds, 2, 120},
		{"HealthyThresholdCount", in.HealthyThresholdCount, 2, 10},
		{"UnhealthyThresholdCount", in.UnhealthyThresholdCount, 2, 10},
	}
	for _, r := range ranges {
		if r.v != 0 && (r.v < r.lo || r.v > r.hi) {
			return validation("%s: %d is out of range %d–%d", r.name, r.v, r.lo, r.hi)
		}
	}
	if p := in.HealthCheckPath; p != "" && (!strings.HasPrefix(p, "/") || len(p) > 1024) {
		return validation("HealthCheckPath: %q: want an absolute path of at most 1024 characters", p)
	}
	if p := in.HealthCheckPort; p != "" && p != "traffic-port" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return validation("HealthCheckPort: %q: want traffic-port or 1–65535", p)
		}
	}
	if in.Matcher != nil {
		if _, err := ParseMatcher(in.Matcher.HTTPCode); err != nil {
			return validation("Matcher.HttpCode: %v", err)
		}
	}
	return nil
}

// Target group attribute keys.
const (
	AttrDeregistrationDelay = "deregistration_delay.timeout_seconds"
	AttrSlowStart           = "slow_start.duration_seconds"
	AttrAlgorithm           = "load_balancing.algorithm.type"
)

// ModifyTargetGroupAttributes sets target group attributes after the
// control-plane latency; it answers with every attribute as it will be.
func (lb *LoadBalancer) ModifyTargetGroupAttributes(in ModifyTargetGroupAttributesInput) (ModifyTargetGroupAttributesOutput, error) {
	g, err := lb.group(in.TargetGroupName)
	if err != nil {
		return ModifyTargetGroupAttributesOutput{}, err
	}
	if len(in.Attributes) == 0 {
		return ModifyTargetGroupAttributesOutput{}, validation("Attributes: at least one attribute is required")
	}
	g.mu.Lock()
	s := g.settings
	g.mu.Unlock()
	for i, a := range in.Attributes {
		switch a.Key {
		case AttrDeregistrationDelay:
			n, err := strconv.Atoi(a.Value)
			if err != nil || n < 0 || n > 3600 {
				return ModifyTargetGroupAttributesOutput{}, validation("Attributes[%d]: %s=%q: want 0-3600 seconds", i, a.Key, a.Value)
			}
			s.deregDelay = time.Duration(n) * time.Second
		case AttrSlowStart:
			n, err := strconv.Atoi(a.Value)
			if err != nil || n != 0 && (n < 30 || n > 900) {
				return ModifyTargetGroupAttributesOutput{}, validation("Attributes[%d]: %s=%q: want 0 or 30-900 seconds", i, a.Key, a.Value)
			}
			s.slowStart = time.Duration(n) * time.Second
		case AttrAlgorithm:
			if a.Value != RoundRobin && a.Value != LeastOutstandingRequests {
				return ModifyTargetGroupAttributesOutput{}, validation("Attributes[%d]: %s=%q: want %s or %s", i, a.Key, a.Value, RoundRobin, LeastOutstandingRequests)
			}
			s.algorithm = a.Value
		default:
			return ModifyTargetGroupAttributesOutput{}, validation("Attributes[%d]: unknown key %q; want %s, %s or %s", i, a.Key, AttrDeregistrationDelay, AttrSlowStart, AttrAlgorithm)
		}
	}
	acc := lb.schedule("ModifyTargetGroupAttributes", func() {
		g.mu.Lock()
		g.settings.deregDelay, g.settings.slowStart, g.settings.algorithm = s.deregDelay, s.slowStart, s.algorithm
		g.mu.Unlock()
		lb.emit(Event{Kind: EventAttributes, TargetGroup: g.name, Msg: fmt.Sprintf("target group %s: attributes %v", g.name, attributesOf(s))})
	})
	return ModifyTargetGroupAttributesOutput{EffectiveAt: acc.EffectiveAt, Attributes: attributesOf(s)}, nil
}

// ModifyTargetGroupAttributesOutput answers ModifyTargetGroupAttributes.
type ModifyTargetGroupAttributesOutput struct {
	EffectiveAt string      `json:"EffectiveAt"`
	Attributes  []Attribute `json:"Attributes"`
}

func attributesOf(s tgSettings) []Attribute {
	return []Attribute{
		{Key: AttrDeregistrationDelay, Value: strconv.Itoa(int(s.deregDelay / time.Second))},
		{Key: AttrSlowStart, Value: strconv.Itoa(int(s.slowStart / time.Second))},
		{Key: AttrAlgorithm, Value: s.algorithm},
	}
}

// SetTargetFault injects or clears a network fault for an address at once.
func (lb *LoadBalancer) SetTargetFault(in SetTargetFaultInput) error {
	f, err := ParseFault(in.Fault)
	if err != nil {
		return validation("Fault: %v", err)
	}
	was := lb.dialer.FaultOf(in.Address)
	if err := lb.dialer.SetFault(in.Address, f); err != nil {
		return validation("Address: %v", err)
	}
	now := lb.dialer.FaultOf(in.Address)
	msg := fmt.Sprintf("fault %s: %s (was %s)", in.Address, now, was)
	if f == FaultNone && was == FaultNone {
		msg = fmt.Sprintf("fault %s: none (no fault was set)", in.Address)
	}
	lb.emit(Event{Kind: EventFault, Address: in.Address, Fault: now.String(), Msg: msg})
	return nil
}

// DescribeLoadBalancer describes the listener, rules, target groups,
// attributes and targets.
func (lb *LoadBalancer) DescribeLoadBalancer() DescribeLoadBalancerOutput {
	out := DescribeLoadBalancerOutput{
		LoadBalancerName: lb.cfg.Name, LoadBalancerID: lb.elbID, ListenerAddress: lb.Addr(),
		IdleTimeoutSeconds: time.Duration(lb.cfg.IdleTimeout).Seconds(), TimeScale: lb.cfg.TimeScale,
		Rules: []RuleDescription{}, TargetGroups: []TargetGroupDescription{},
	}
	for _, r := range *lb.rules.Load() {
		rd := RuleDescription{Priority: r.priority, Hosts: r.hosts, PathPrefixes: r.prefixes}
		for _, w := range r.weightsOf() {
			rd.TargetGroups = append(rd.TargetGroups, TargetGroupTuple{TargetGroupName: w.TargetGroup, Weight: w.Weight})
		}
		out.Rules = append(out.Rules, rd)
	}
	for _, g := range lb.groupList() {
		g.mu.Lock()
		s := g.settings
		g.mu.Unlock()
		td := TargetGroupDescription{
			TargetGroupName: g.name, TargetGroupArn: g.arn, HealthCheckEnabled: *s.hc.Enabled,
			HealthCheckPath: s.hc.Path, HealthCheckPort: s.hc.Port,
			HealthCheckIntervalSeconds: time.Duration(s.hc.Interval).Seconds(),
			HealthCheckTimeoutSeconds:  time.Duration(s.hc.Timeout).Seconds(),
			HealthyThresholdCount:      s.hc.HealthyThreshold, UnhealthyThresholdCount: s.hc.UnhealthyThreshold,
			Matcher: HTTPCodeMatcher{HTTPCode: s.hc.SuccessCodes}, Attributes: attributesOf(s),
			Targets: g.describe(nil),
		}
		if td.Targets == nil {
			td.Targets = []TargetHealthDescription{}
		}
		out.TargetGroups = append(out.TargetGroups, td)
	}
	if f := lb.dialer.Faults(); len(f) > 0 {
		out.Faults = map[string]string{}
		for k, v := range f {
			out.Faults[k] = v.String()
		}
	}
	return out
}
