package manifest

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// annotationSource is an object whose alb.ingress.kubernetes.io
// annotations configure a target group; the first one that sets a key wins
// (Service annotations override Ingress annotations, as in the controller).
type annotationSource []*Meta

func (s annotationSource) lookup(key string) (string, Pos, bool) {
	full := ALBAnnotationPrefix + key
	for _, m := range s {
		if m == nil {
			continue
		}
		if v, ok := m.Annotations[full]; ok {
			return v, m.AnnotationPos(full), true
		}
	}
	if len(s) > 0 && s[len(s)-1] != nil {
		last := s[len(s)-1]
		return "", last.AnnotationPos(full), false
	}
	return "", Pos{}, false
}

// ref names the source object that holds position p: objects of one file
// do not overlap, so it is the one starting last at or before p.
func (s annotationSource) ref(p Pos) string {
	var best *Meta
	for _, m := range s {
		if m != nil && m.Pos.File == p.File && m.Pos.Line <= p.Line && (best == nil || m.Pos.Line > best.Pos.Line) {
			best = m
		}
	}
	if best == nil {
		return ""
	}
	return best.Ref()
}

// portNameRE matches a Kubernetes port name (IANA service name syntax).
var portNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)

// intAnnotation reads an integer annotation within [lo, hi].
func (b *builder) intAnnotation(src annotationSource, key string, lo, hi int, def int32) Field[int32] {
	v, p, ok := src.lookup(key)
	if !ok {
		return Field[int32]{Value: def, Default: true, Pos: p}
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		b.diag(p, src.ref(p), "annotation %s%s=%q: want a whole number from %d to %d; the controller rejects it (default %d assumed)", ALBAnnotationPrefix, key, v, lo, hi, def)
		return Field[int32]{Value: def, Default: true, Pos: p}
	}
	return Field[int32]{Value: int32(n), Pos: p}
}

func (b *builder) secondsAnnotation(src annotationSource, key string, lo, hi int, def time.Duration) Field[time.Duration] {
	f := b.intAnnotation(src, key, lo, hi, int32(def/time.Second))
	return Field[time.Duration]{Value: time.Duration(f.Value) * time.Second, Default: f.Default, Pos: f.Pos}
}

// targetGroupSettings resolves target type, health check and attributes of
// one target group from the annotation sources (controller defaults when
// apiDefaults is false, ALB API defaults when true).
func (b *builder) targetGroupSettings(tg *TargetGroup, src annotationSource, apiDefaults bool) {
	if tg.Binding == nil && tg.Ingress != nil && tg.Ingress.Params != nil && tg.Ingress.Params.TargetType != nil {
		tg.TargetType = *tg.Ingress.Params.TargetType // IngressClassParams win over annotations
	} else if tg.Binding == nil {
		v, p, ok := src.lookup("target-type")
		switch {
		case !ok:
			tg.TargetType = Field[string]{Value: ControllerTargetType, Default: true, Pos: p}
		case v == TargetIP || v == TargetInstance:
			tg.TargetType = Field[string]{Value: v, Pos: p}
		default:
			b.diag(p, src.ref(p), "annotation %starget-type=%q: want ip or instance", ALBAnnotationPrefix, v)
			tg.TargetType = Field[string]{Value: ControllerTargetType, Default: true, Pos: p}
		}
	}
	interval, healthy := ControllerHealthInterval, int32(ControllerHealthyThreshold)
	if apiDefaults {
		interval, healthy = ALBHealthInterval, ALBHealthyThreshold
	}
	hc := &tg.HealthCheck
	if v, p, ok := src.lookup("healthcheck-path"); ok {
		if !strings.HasPrefix(v, "/") {
			b.diag(p, src.ref(p), "annotation %shealthcheck-path=%q: must start with /", ALBAnnotationPrefix, v)
		}
		hc.Path = Field[string]{Value: v, Pos: p}
	} else {
		hc.Path = Field[string]{Value: ControllerHealthCheckPath, Default: true, Pos: p}
	}
	if v, p, ok := src.lookup("healthcheck-port"); ok {
		if n, err := strconv.Atoi(v); v != ControllerHealthCheckPort && (err == nil && (n < 1 || n > 65535) || err != nil && !portNameRE.MatchString(v)) {
			b.diag(p, src.ref(p), "annotation %shealthcheck-port=%q: want traffic-port, a port number (1–65535) or a Service port name", ALBAnnotationPrefix, v)
		}
		hc.Port = Field[string]{Value: v, Pos: p}
	} else {
		hc.Port = Field[string]{Value: ControllerHealthCheckPort, Default: true, Pos: p}
	}
	if v, p, ok := src.lookup("healthcheck-protocol"); ok {
		if v != "HTTP" && v != "HTTPS" {
			b.diag(p, src.ref(p), "annotation %shealthcheck-protocol=%q: want HTTP or HTTPS", ALBAnnotationPrefix, v)
		}
		hc.Protocol = Field[string]{Value: v, Pos: p}
	} else {
		hc.Protocol = Field[string]{Value: ControllerHealthCheckProto, Default: true, Pos: p}
	}
	hc.Interval = b.secondsAnnotation(src, "healthcheck-interval-seconds", 5, 300, interval)
	hc.Timeout = b.secondsAnnotation(src, "healthcheck-timeout-seconds", 2, 120, ControllerHealthTimeout)
	hc.HealthyThreshold = b.intAnnotation(src, "healthy-threshold-count", 2, 10, healthy)
	hc.UnhealthyThreshold = b.intAnnotation(src, "unhealthy-threshold-count", 2, 10, ControllerUnhealthyThreshold)
	if !hc.Timeout.Default || !hc.Interval.Default {
		if hc.Timeout.Value >= hc.Interval.Value {
			b.diag(hc.Timeout.Pos, src.ref(hc.Timeout.Pos), "health-check timeout %v must be shorter than the interval %v", hc.Timeout.Value, hc.Interval.Value)
		}
	}
	if v, p, ok := src.lookup("success-codes"); ok {
		codes, okc := ParseSuccessCodes(v)
		if !okc {
			b.diag(p, src.ref(p), "annotation %ssuccess-codes=%q: want codes from 200 to 499 such as 200, 200,302 or 200-299", ALBAnnotationPrefix, v)
			hc.SuccessCodes = Field[string]{Value: ControllerSuccessCodes, Default: true, Pos: p}
			hc.Codes = []CodeRange{{200, 200}}
		} else {
			hc.SuccessCodes = Field[string]{Value: v, Pos: p}
			hc.Codes = codes
		}
	} else {
		hc.SuccessCodes = Field[string]{Value: ControllerSuccessCodes, Default: true, Pos: p}
		hc.Codes = []CodeRange{{200, 200}}
	}

	a := &tg.Attributes
	_, p, _ := src.lookup("target-group-attributes")
	a.DeregistrationDelay = Field[time.Duration]{Value: DefaultDeregistrationDelay, Default: true, Pos: p}
	a.SlowStart = Field[time.Duration]{Value: DefaultSlowStart, Default: true, Pos: p}
	a.Algorithm = Field[string]{Value: DefaultAlgorithm, Default: true, Pos: p}
	b.attributes(src, "target-group-attributes", func(k, v string, p Pos) bool {
		switch k {
		case "deregistration_delay.timeout_seconds":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 3600 {
				return false
			}
			a.DeregistrationDelay = Field[time.Duration]{Value: time.Duration(n) * time.Second, Pos: p}
		case "slow_start.duration_seconds":
			n, err := strconv.Atoi(v)
			if err != nil || n != 0 && (n < 30 || n > 900) {
				return false
			}
			a.SlowStart = Field[time.Duration]{Value: time.Duration(n) * time.Second, Pos: p}
		case "load_balancing.algorithm.type":
			if v != "round_robin" && v != "least_outstanding_requests" && v != "weighted_random" {
				return false
			}
			a.Algorithm = Field[string]{Value: v, Pos: p}
		}
		return true
	})
}

// attributes parses a key=value,key=value annotation and calls set for each
// pair; set returns false for a value it cannot accept.
func (b *builder) attributes(src annotationSource, key string, set func(k, v string, p Pos) bool) {
	raw, p, ok := src.lookup(key)
	if !ok {
		return
	}
	for _, kv := range strings.Split(raw, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, found := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !found || k == "" {
			b.diag(p, src.ref(p), "annotation %s%s: %q is not key=value", ALBAnnotationPrefix, key, kv)
			continue
		}
		if !set(k, v, p) {
			b.diag(p, src.ref(p), "annotation %s%s: %s=%q is out of range or not a valid value", ALBAnnotationPrefix, key, k, v)
		}
	}
}

func (b *builder) lbAttributes(meta *Meta) LBAttributes {
	src := annotationSource{meta}
	_, p, _ := src.lookup("load-balancer-attributes")
	lb := LBAttributes{IdleTimeout: Field[time.Duration]{Value: DefaultIdleTimeout, Default: true, Pos: p}}
	b.attributes(src, "load-balancer-attributes", func(k, v string, p Pos) bool {
		if k == "idle_timeout.timeout_seconds" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 4000 {
				return false
			}
			lb.IdleTimeout = Field[time.Duration]{Value: time.Duration(n) * time.Second, Pos: p}
		}
		return true
	})
	return lb
}

// actions parses the actions.<name> annotations of an Ingress.
func (b *builder) actions(meta *Meta) []*Action {
	var out []*Action
	for _, k := range sortedKeys(meta.Annotations) {
		name, ok := strings.CutPrefix(k, ALBAnnotationPrefix+"actions.")
		if !ok {
			continue
		}
		p := meta.AnnotationPos(k)
		var raw struct {
			Type          string         `json:"type"`
			TargetGroups  []weightedJSON `json:"targetGroups"`
			ForwardConfig *struct {
				TargetGroups []weightedJSON `json:"targetGroups"`
			} `json:"forwardConfig"`
		}
		if err := json.Unmarshal([]byte(meta.Annotations[k]), &raw); err != nil {
			b.diag(p, meta.Ref(), "annotation %s: not a valid action JSON: %v", k, err)
			continue
		}
		a := &Action{Name: name, Pos: p, Type: raw.Type}
		tgs := raw.TargetGroups
		if raw.ForwardConfig != nil {
			tgs = append(tgs, raw.ForwardConfig.TargetGroups...)
		}
		for _, t := range tgs {
			w := int32(1)
			if t.Weight != nil {
				w = *t.Weight
			}
			if t.ServiceName == "" {
				continue // an ARN target group outside Kubernetes
			}
			a.TargetGroups = append(a.TargetGroups, WeightedTarget{ServiceName: t.ServiceName, ServicePort: t.ServicePort.String(), Weight: w})
		}
		out = append(out, a)
	}
	return out
}

type weightedJSON struct {
	ServiceName string             `json:"serviceName"`
	ServicePort intstr.IntOrString `json:"servicePort"`
	Weight      *int32             `json:"weight"`
}

// ParseSuccessCodes parses an ALB success-codes value ("200", "200,302",
// "200-299") into ranges; codes must lie within 200–499.
func ParseSuccessCodes(s string) ([]CodeRange, bool) {
	var out []CodeRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		from, to, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(from))
		if err != nil {
			return nil, false
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(strings.TrimSpace(to)); err != nil {
				return nil, false
			}
		}
		if a < 200 || z > 499 || a > z {
			return nil, false
		}
		out = append(out, CodeRange{From: a, To: z})
	}
	return out, len(out) > 0
}
