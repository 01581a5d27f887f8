package alb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Load-balancing algorithms (load_balancing.algorithm.type).
const (
	RoundRobin               = "round_robin"
	LeastOutstandingRequests = "least_outstanding_requests"
)

// Health-check defaults sets for Config.Defaults.
const (
	DefaultsAPI        = "api"        // the ELB API's defaults (interval 30 s, healthy threshold 5)
	DefaultsController = "controller" // the AWS Load Balancer Controller's (interval 15 s, healthy threshold 2)
)

// Duration is a time.Duration that reads and writes Go syntax ("20s",
// "1m30s") in JSON and YAML.
type Duration time.Duration

// MarshalJSON writes d in Go syntax.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads Go syntax ("20s"); a bare number is rejected so a
// unit is never guessed.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string in Go syntax such as \"20s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: want Go syntax such as 20s or 1m30s", s)
	}
	*d = Duration(v)
	return nil
}

// Config describes a load balancer: one HTTP listener, its rules, target
// groups and attributes, and the emulator's own settings. Durations are
// unscaled; TimeScale multiplies all of them.
type Config struct {
	// Name is the load balancer's name, used in the access log's elb field.
	Name string `json:"name,omitempty"`
	// Listen is the listener address (default 127.0.0.1:8080).
	Listen string `json:"listen,omitempty"`
	// Admin is the admin API address (default 127.0.0.1:8081; "off" disables it).
	Admin string `json:"admin,omitempty"`
	// AdminToken, when set, is the bearer token the admin API requires.
	AdminToken string `json:"adminToken,omitempty"`
	// TimeScale multiplies every duration (default 1; 0.01 runs 100 times faster).
	TimeScale float64 `json:"timeScale,omitempty"`
	// Defaults picks the health-check defaults: "controller" (default) or "api".
	Defaults string `json:"defaults,omitempty"`
	// IdleTimeout is idle_timeout.timeout_seconds: 1s–4000s, default 60s.
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// ConnectTimeout bounds a connection to a target (10s on a real ALB).
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
	// ReuseClosedIdleConnections selects a pessimistic model of the target
	// connection pools. By default, like the ALB, the load balancer notices
	// a FIN (or unsolicited data) on an idle pooled connection and does not
	// reuse it, so a target closing idle keep-alive connections costs a 502
	// only in the true race: the close crosses a request already on its way.
	// With this set the load balancer reuses such a connection blindly and
	// every request sent on a connection the target closed while idle is a
	// 502 — far more than a real ALB shows; use it to model a worst case.
	ReuseClosedIdleConnections bool `json:"reuseClosedIdleConnections,omitempty"`
	// AccessLog is a file path, "-" for stdout, or empty for none.
	AccessLog string `json:"accessLog,omitempty"`
	// ControlPlaneLatency delays each accepted admin operation before the
	// data plane acts on it.
	ControlPlaneLatency LatencyConfig `json:"controlPlaneLatency,omitempty"`
	// TargetGroups are the target groups.
	TargetGroups []TargetGroupConfig `json:"targetGroups,omitempty"`
	// Rules are the listener rules; requests no rule matches get a fixed 404.
	Rules []RuleConfig `json:"rules,omitempty"`
}

// LatencyConfig holds control-plane latencies: Default for every operation,
// overridden per operation name (RegisterTargets, ModifyRule, ...).
type LatencyConfig struct {
	Default      Duration            `json:"default,omitempty"`
	PerOperation map[string]Duration `json:"perOperation,omitempty"`
}

// For returns the latency of operation op.
func (l LatencyConfig) For(op string) time.Duration {
	if d, ok := l.PerOperation[op]; ok {
		return time.Duration(d)
	}
	return time.Duration(l.Default)
}

// TargetGroupConfig is one target group.
type TargetGroupConfig struct {
	Name        string            `json:"name"`
	HealthCheck HealthCheckConfig `json:"healthCheck,omitempty"`
	// DeregistrationDelay is deregistration_delay.timeout_seconds: 0–3600s, default 300s.
	DeregistrationDelay *Duration `json:"deregistrationDelay,omitempty"`
	// SlowStart is slow_start.duration_seconds: 0 (off) or 30s–900s.
	SlowStart Duration `json:"slowStart,omitempty"`
	// Algorithm is round_robin (default) or least_outstanding_requests.
	Algorithm string `json:"algorithm,omitempty"`
	// Targets are registered at start, as ip:port.
	Targets []string `json:"targets,omitempty"`
}

// HealthCheckConfig is a target group's health check. Zero fields take the
// defaults chosen by Config.Defaults.
type HealthCheckConfig struct {
	// Enabled turns health checks on (default true); targets of a group
	// without health checks are "unavailable" and receive traffic.
	Enabled *bool `json:"enabled,omitempty"`
	// Path is the request path (default "/").
	Path string `json:"path,omitempty"`
	// Port is "traffic-port" (default) or a port number.
	Port string `json:"port,omitempty"`
	// Interval is 5s–300s.
	Interval Duration `json:"interval,omitempty"`
	// Timeout is 2s–120s and at most Interval.
	Timeout Duration `json:"timeout,omitempty"`
	// HealthyThreshold is 2–10.
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is 2–10.
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
	// SuccessCodes is the matcher: "200", "200-399", "200,302" (codes 200–499).
	SuccessCodes string `json:"successCodes,omitempty"`
}

// RuleConfig is one listener rule.
type RuleConfig struct {
	// Priority is 1–50000, unique; lower matches first.
	Priority int `json:"priority"`
	// Hosts match the Host header (case-insensitive; "*" and "?" wildcards).
	Hosts []string `json:"hosts,omitempty"`
	// PathPrefixes match the start of the path; empty matches every path.
	PathPrefixes []string `json:"pathPrefixes,omitempty"`
	// Forward lists the weighted target groups.
	Forward []WeightedTargetGroup `json:"forward"`
}

// WeightedTargetGroup is a target group in a forward action with its weight (0–999).
type WeightedTargetGroup struct {
	TargetGroup string `json:"targetGroup"`
	Weight      *int   `json:"weight,omitempty"`
}

// HealthCheckDefaults returns the health-check defaults of a defaults set
// ("api" or "controller"), per the ELB API and the controller's annotations.
func HealthCheckDefaults(set string) (HealthCheckConfig, error) {
	on := true
	hc := HealthCheckConfig{
		Enabled: &on, Path: "/", Port: "traffic-port", Timeout: Duration(5 * time.Second),
		UnhealthyThreshold: 2, SuccessCodes: "200",
	}
	switch set {
	case DefaultsAPI:
		hc.Interval, hc.HealthyThreshold = Duration(30*time.Second), 5
	case DefaultsController, "":
		hc.Interval, hc.HealthyThreshold = Duration(15*time.Second), 2
	default:
		return hc, fmt.Errorf("defaults %q: want %q or %q", set, DefaultsAPI, DefaultsController)
	}
	return hc, nil
}

// FieldError is a configuration value that is out of range or malformed.
type FieldError struct {
	Field string // e.g. targetGroups[0].healthCheck.interval
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// withDefaults returns a copy of c with every default filled in, validated.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = "zerodrop"
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Admin == "" {
		c.Admin = "127.0.0.1:8081"
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = Duration(60 * time.Second)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = Duration(10 * time.Second)
	}
	if !(c.TimeScale > 0 && c.TimeScale <= 1000) {
		return c, fieldErr("timeScale", "%v: want a number > 0 and <= 1000", c.TimeScale)
	}
	if err := validName(c.Name); err != nil {
		return c, fieldErr("name", "%v", err)
	}
	if err := checkListenAddr(c.Listen); err != nil {
		return c, fieldErr("listen", "%q: %v", c.Listen, err)
	}
	if c.Admin != "off" {
		if err := checkListenAddr(c.Admin); err != nil {
			return c, fieldErr("admin", "%q: %v (or off)", c.Admin, err)
		}
		if c.Admin == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			return c, fieldErr("admin", "%q is also the listener's address; give the admin API its own", c.Admin)
		}
	}
	if err := checkRange("idleTimeout", time.Duration(c.IdleTimeout), time.Second, 4000*time.Second); err != nil {
		return c, err
	}
	if c.ConnectTimeout < 0 {
		return c, fieldErr("connectTimeout", "must not be negative")
	}
	if c.ControlPlaneLatency.Default < 0 {
		return c, fieldErr("controlPlaneLatency.default", "must not be negative")
	}
	for op, d := range c.ControlPlaneLatency.PerOperation {
		if !slices.Contains(Operations, op) {
			return c, fieldErr("controlPlaneLatency.perOperation."+op, "unknown operation; want one of %s", strings.Join(Operations, ", "))
		}
		if d < 0 {
			return c, fieldErr("controlPlaneLatency.perOperation."+op, "must not be negative")
		}
	}
	if _, err := HealthCheckDefaults(c.Defaults); err != nil {
		return c, fieldErr("defaults", "%v", err)
	}
	names := map[string]bool{}
	tgs := make([]TargetGroupConfig, len(c.TargetGroups))
	for i, tg := range c.TargetGroups {
		f := fmt.Sprintf("targetGroups[%d]", i)
		var err error
		if tg, err = tg.withDefaults(f, c.Defaults); err != nil {
			return c, err
		}
		if names[tg.Name] {
			return c, fieldErr(f+".name", "duplicate target group %q", tg.Name)
		}
		names[tg.Name] = true
		tgs[i] = tg
	}
	c.TargetGroups = tgs
	prios := map[int]bool{}
	for i, r := range c.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		if err := r.validate(f, names); err != nil {
			return c, err
		}
		if prios[r.Priority] {
			return c, fieldErr(f+".priority", "duplicate priority %d", r.Priority)
		}
		prios[r.Priority] = true
	}
	return c, nil
}

// checkListenAddr checks a host:port to listen on, port 0–65535.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 0–65535", port)
	}
	return nil
}

func validName(s string) error {
	if s == "" || len(s) > 32 {
		return fmt.Errorf("%q: want 1-32 characters", s)
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("%q: want letters, digits and hyphens", s)
		}
	}
	return nil
}

func checkRange(field string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return fieldErr(field, "%v out of range %v–%v", d, lo, hi)
	}
	return nil
}

func (tg TargetGroupConfig) withDefaults(f, defaults string) (TargetGroupConfig, error) {
	if err := validName(tg.Name); err != nil {
		return tg, fieldErr(f+".name", "%v", err)
	}
	hc, err := tg.HealthCheck.withDefaults(f+".healthCheck", defaults)
	if err != nil {
		return tg, err
	}
	tg.HealthCheck = hc
	if tg.DeregistrationDelay == nil {
		d := Duration(300 * time.Second)
		tg.DeregistrationDelay = &d
	}
	if err := checkRange(f+".deregistrationDelay", time.Duration(*tg.DeregistrationDelay), 0, 3600*time.Second); err != nil {
		return tg, err
	}
	if tg.SlowStart != 0 {
		if err := checkRange(f+".slowStart", time.Duration(tg.SlowStart), 30*time.Second, 900*time.Second); err != nil {
			return tg, err
		}
	}
	if tg.Algorithm == "" {
		tg.Algorithm = RoundRobin
	}
	if tg.Algorithm != RoundRobin && tg.Algorithm != LeastOutstandingRequests {
		return tg, fieldErr(f+".algorithm", "%q: want %s or %s", tg.Algorithm, RoundRobin, LeastOutstandingRequests)
	}
	tg.Targets = slices.Clone(tg.Targets)
	seen := map[string]bool{}
	for j, t := range tg.Targets {
		addr, err := parseTarget(t)
		if err != nil {
			return tg, fieldErr(fmt.Sprintf("%s.targets[%d]", f, j), "%v", err)
		}
		if seen[addr] {
			return tg, fieldErr(fmt.Sprintf("%s.targets[%d]", f, j), "duplicate target %s", addr)
		}
		seen[addr] = true
		tg.Targets[j] = addr
	}
	return tg, nil
}

func (hc HealthCheckConfig) withDefaults(f, defaults string) (HealthCheckConfig, error) {
	d, err := HealthCheckDefaults(defaults)
	if err != nil {
		return hc, err
	}
	if hc.Enabled == nil {
		hc.Enabled = d.Enabled
	}
	if hc.Path == "" {
		hc.Path = d.Path
	}
	if hc.Port == "" {
		hc.Port = d.Port
	}
	if hc.Interval == 0 {
		hc.Interval = d.Interval
	}
	if hc.Timeout == 0 {
		hc.Timeout = d.Timeout
	}
	if hc.HealthyThreshold == 0 {
		hc.HealthyThreshold = d.HealthyThreshold
	}
	if hc.UnhealthyThreshold == 0 {
		hc.UnhealthyThreshold = d.UnhealthyThreshold
	}
	if hc.SuccessCodes == "" {
		hc.SuccessCodes = d.SuccessCodes
	}
	return hc, hc.validate(f)
}

func (hc HealthCheckConfig) validate(f string) error {
	if !strings.HasPrefix(hc.Path, "/") || len(hc.Path) > 1024 {
		return fieldErr(f+".path", "%q: want an absolute path of at most 1024 characters", hc.Path)
	}
	if hc.Port != "traffic-port" {
		if p, err := strconv.Atoi(hc.Port); err != nil || p < 1 || p > 65535 {
			return fieldErr(f+".port", "%q: want traffic-port or 1-65535", hc.Port)
		}
	}
	if err := checkRange(f+".interval", time.Duration(hc.Interval), 5*time.Second, 300*time.Second); err != nil {
		return err
	}
	if err := checkRange(f+".timeout", time.Duration(hc.Timeout), 2*time.Second, 120*time.Second); err != nil {
		return err
	}
	if hc.Timeout > hc.Interval {
		return fieldErr(f+".timeout", "%v must not exceed the interval %v", time.Duration(hc.Timeout), time.Duration(hc.Interval))
	}
	if hc.HealthyThreshold < 2 || hc.HealthyThreshold > 10 {
		return fieldErr(f+".healthyThreshold", "%d out of range 2–10", hc.HealthyThreshold)
	}
	if hc.UnhealthyThreshold < 2 || hc.UnhealthyThreshold > 10 {
		return fieldErr(f+".unhealthyThreshold", "%d out of range 2–10", hc.UnhealthyThreshold)
	}
	if _, err := ParseMatcher(hc.SuccessCodes); err != nil {
		return fieldErr(f+".successCodes", "%v", err)
	}
	return nil
}

func (r RuleConfig) validate(f string, groups map[string]bool) error {
	if r.Priority < 1 || r.Priority > 50000 {
		return fieldErr(f+".priority", "%d out of range 1–50000", r.Priority)
	}
	for j, h := range r.Hosts {
		if h == "" || len(h) > 128 {
			return fieldErr(fmt.Sprintf("%s.hosts[%d]", f, j), "%q: want 1-128 characters", h)
		}
	}
	for j, p := range r.PathPrefixes {
		if !strings.HasPrefix(p, "/") {
			return fieldErr(fmt.Sprintf("%s.pathPrefixes[%d]", f, j), "%q: want a path starting with /", p)
		}
	}
	return validateForward(f+".forward", r.Forward, groups)
}

func validateForward(f string, fwd []WeightedTargetGroup, groups map[string]bool) error {
	if len(fwd) == 0 || len(fwd) > 5 {
		return fieldErr(f, "want 1–5 target groups, got %d", len(fwd))
	}
	seen := map[string]bool{}
	for j, w := range fwd {
		if !groups[w.TargetGroup] {
			return fieldErr(fmt.Sprintf("%s[%d].targetGroup", f, j), "unknown target group %q", w.TargetGroup)
		}
		if seen[w.TargetGroup] {
			return fieldErr(fmt.Sprintf("%s[%d].targetGroup", f, j), "target group %q listed twice", w.TargetGroup)
		}
		seen[w.TargetGroup] = true
		if w.Weight != nil && (*w.Weight < 0 || *w.Weight > 999) {
			return fieldErr(fmt.Sprintf("%s[%d].weight", f, j), "%d out of range 0–999", *w.Weight)
		}
	}
	return nil
}

// parseTarget checks an ip:port target id and returns it in canonical form.
func parseTarget(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want ip:port", s)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", fmt.Errorf("%q: %q is not an IP address (targets are ip targets)", s, host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%q: port must be 1-65535", s)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(p)), nil
}
