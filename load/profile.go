// Package load is zerodrop's load simulator: user sessions (the orders
// workload of the seed, or plain requests to any URL) driven by a closed
// model (N sessions) or an open model (arrivals per second, with queueing
// delay counted), shaped over time by a demand Profile. Every request is
// classified into an outcome (results package) and recorded with bounded
// memory; acknowledged writes go to a Ledger that can be verified at the end.
package load

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Profile is demand over time: sessions in the closed model, arrivals per
// second in the open model. The lab reads the same profile to drive replica
// counts, as the seed's simulator did.
type Profile interface {
	// At returns the demand t after the start (never negative).
	At(t time.Duration) float64
	// String describes the profile in the inline syntax ParseProfileSpec reads.
	String() string
}

// Constant demand.
type Constant struct{ Value float64 }

// At implements Profile.
func (c Constant) At(time.Duration) float64 { return c.Value }

// String returns the profile in the inline form ParseProfileSpec reads.
func (c Constant) String() string { return "constant:" + fmtNum(c.Value) }

// Ramp goes linearly from From to To over Over, then holds To.
type Ramp struct {
	From, To float64
	Over     time.Duration
}

// At implements Profile.
func (r Ramp) At(t time.Duration) float64 {
	if t >= r.Over || r.Over <= 0 {
		return r.To
	}
	if t <= 0 {
		return r.From
	}
	return r.From + (r.To-r.From)*float64(t)/float64(r.Over)
}

// String returns the profile in the inline form ParseProfileSpec reads.
func (r Ramp) String() string {
	return fmt.Sprintf("ramp:from=%s,to=%s,over=%s", fmtNum(r.From), fmtNum(r.To), r.Over)
}

// Step is one level of a Steps profile.
type Step struct {
	Value float64
	For   time.Duration
}

// Steps holds each level for its duration in turn; after the last one it
// holds the last level, or starts over when Repeat is set.
type Steps struct {
	Steps  []Step
	Repeat bool
}

// At implements Profile.
func (s Steps) At(t time.Duration) float64 {
	if len(s.Steps) == 0 {
		return 0
	}
	var total time.Duration
	for _, st := range s.Steps {
		total += st.For
	}
	if s.Repeat && total > 0 && t >= total {
		t %= total
	}
	for _, st := range s.Steps {
		if t < st.For {
			return st.Value
		}
		t -= st.For
	}
	return s.Steps[len(s.Steps)-1].Value
}

// String returns the profile in the inline form ParseProfileSpec reads.
func (s Steps) String() string {
	parts := make([]string, 0, len(s.Steps)+1)
	for _, st := range s.Steps {
		parts = append(parts, fmtNum(st.Value)+"@"+st.For.String())
	}
	if s.Repeat {
		parts = append(parts, "repeat")
	}
	return "steps:" + strings.Join(parts, ",")
}

// HalfSine is the seed's demand cycle: each Period, demand rises from Min to
// Max and falls back along the positive half of a sine wave, changing only
// every Step (a staircase, as the seed's simulator changed its replica count
// at fixed intervals). Step 0 means continuous.
type HalfSine struct {
	Min, Max     float64
	Period, Step time.Duration
}

// At implements Profile.
func (h HalfSine) At(t time.Duration) float64 {
	if h.Period <= 0 {
		return h.Min
	}
	if t < 0 {
		t = 0
	}
	if h.Step > 0 {
		t = t.Truncate(h.Step)
	}
	phase := float64(t%h.Period) / float64(h.Period)
	v := h.Min + (h.Max-h.Min)*math.Sin(math.Pi*phase)
	return math.Max(0, v)
}

// String returns the profile in the inline form ParseProfileSpec reads.
func (h HalfSine) String() string {
	return fmt.Sprintf("half-sine:min=%s,max=%s,period=%s,step=%s", fmtNum(h.Min), fmtNum(h.Max), h.Period, h.Step)
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Scaled caps a profile at Max (the --rate or --concurrency given with
// --profile). Max 0 means no cap.
type Scaled struct {
	Profile Profile
	Max     float64
}

// At implements Profile.
func (s Scaled) At(t time.Duration) float64 {
	v := s.Profile.At(t)
	if s.Max > 0 && v > s.Max {
		return s.Max
	}
	return v
}

// String returns the profile in the inline form ParseProfileSpec reads.
func (s Scaled) String() string { return s.Profile.String() }

// maxDemand is the largest demand a profile may ask for: the generator's
// sessions and arrivals are bounded by it.
const maxDemand = 1e6

// LoadProfile reads a profile from a YAML file (see ParseProfile), or, when
// spec is not an existing file and looks like SHAPE:..., parses it inline.
func LoadProfile(spec string) (Profile, error) {
	data, err := os.ReadFile(spec)
	if err == nil {
		p, perr := ParseProfile(data)
		if perr != nil {
			return nil, fmt.Errorf("%s: %w", spec, perr)
		}
		return p, nil
	}
	if errors.Is(err, os.ErrNotExist) && strings.Contains(spec, ":") {
		return ParseProfileSpec(spec)
	}
	return nil, fmt.Errorf("reading profile: %w", err)
}

// ParseProfileSpec parses the inline profile syntax:
//
//	constant:50
//	ramp:from=1,to=100,over=2m
//	steps:10@30s,50@1m,20@30s[,repeat]
//	half-sine:min=5,max=100,period=30m,step=1m   (alias: sine)
func ParseProfileSpec(spec string) (Profile, error) {
	shape, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return nil, fmt.Errorf("profile %q: want SHAPE:PARAMS, for example constant:50 or half-sine:min=5,max=100,period=30m,step=1m", spec)
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("profile %q: %s", spec, fmt.Sprintf(format, a...))
	}
	shape = strings.TrimSpace(shape)
	switch shape {
	case "constant":
		v, err := parseDemand(rest)
		if err != nil {
			return nil, fail("%v", err)
		}
		return Constant{v}, nil
	case "steps":
		var s Steps
		for _, part := range strings.Split(rest, ",") {
			part = strings.TrimSpace(part)
			if part == "repeat" {
				s.Repeat = true
				continue
			}
			vs, ds, ok := strings.Cut(part, "@")
			if !ok {
				return nil, fail("step %q: want VALUE@DURATION", part)
			}
			v, err := parseDemand(vs)
			if err != nil {
				return nil, fail("step %q: %v", part, err)
			}
			d, err := parseDur(ds)
			if err != nil {
				return nil, fail("step %q: %v", part, err)
			}
			s.Steps = append(s.Steps, Step{Value: v, For: d})
		}
		if err := s.validate(); err != nil {
			return nil, fail("%v", err)
		}
		return s, nil
	case "ramp", "half-sine", "sine":
		kv := map[string]string{}
		for _, part := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				return nil, fail("parameter %q: want KEY=VALUE", part)
			}
			kv[k] = v
		}
		num := func(k string) (float64, error) {
			s, ok := kv[k]
			if !ok {
				return 0, fmt.Errorf("missing %s", k)
			}
			delete(kv, k)
			v, err := parseDemand(s)
			if err != nil {
				return 0, fmt.Errorf("%s: %v", k, err)
			}
			return v, nil
		}
		dur := func(k string, required bool) (time.Duration, error) {
			s, ok := kv[k]
			if !ok {
				if required {
					return 0, fmt.Errorf("missing %s", k)
				}
				return 0, nil
			}
			delete(kv, k)
			d, err := parseDur(s)
			if err != nil {
				return 0, fmt.Errorf("%s: %v", k, err)
			}
			return d, nil
		}
		var p Profile
		var errs []error
		if shape == "ramp" {
			from, e1 := num("from")
			to, e2 := num("to")
			over, e3 := dur("over", true)
			errs = append(errs, e1, e2, e3)
			p = Ramp{From: from, To: to, Over: over}
		} else {
			lo, e1 := num("min")
			hi, e2 := num("max")
			period, e3 := dur("period", true)
			step, e4 := dur("step", false)
			errs = append(errs, e1, e2, e3, e4)
			h := HalfSine{Min: lo, Max: hi, Period: period, Step: step}
			if err := errors.Join(errs...); err == nil {
				errs = append(errs, h.validate())
			}
			p = h
		}
		for k := range kv {
			errs = append(errs, fmt.Errorf("unknown parameter %q", k))
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fail("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return p, nil
	default:
		return nil, fail("unknown shape %q (want constant, ramp, steps or half-sine)", shape)
	}
}

func parseDemand(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < 0 || v > maxDemand {
		return 0, fmt.Errorf("%s is outside 0..%g", fmtNum(v), float64(maxDemand))
	}
	return v, nil
}

func parseDur(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a Go duration such as 30s or 1m30s", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %s must be positive", d)
	}
	return d, nil
}

func (s Steps) validate() error {
	if len(s.Steps) == 0 {
		return errors.New("steps: at least one step is needed")
	}
	return nil
}

func (h HalfSine) validate() error {
	if h.Max < h.Min {
		return fmt.Errorf("max %s is below min %s", fmtNum(h.Max), fmtNum(h.Min))
	}
	if h.Step > h.Period {
		return fmt.Errorf("step %s is longer than period %s", h.Step, h.Period)
	}
	return nil
}

// ParseProfile reads a profile from YAML. Errors name the line and field.
//
//	shape: half-sine     # constant | ramp | steps | half-sine
//	min: 5               # half-sine
//	max: 100
//	period: 30m
//	step: 1m
//	value: 50            # constant
//	from: 1              # ramp
//	to: 100
//	over: 2m
//	steps:               # steps
//	  - {value: 10, for: 30s}
//	  - {value: 50, for: 1m}
//	repeat: true
func ParseProfile(data []byte) (Profile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("profile: empty document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: profile: want a mapping with a shape field", root.Line)
	}
	fields := map[string]*yaml.Node{}
	keyLine := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if _, dup := fields[k.Value]; dup {
			return nil, fmt.Errorf("line %d: field %s: given twice", k.Line, k.Value)
		}
		fields[k.Value] = root.Content[i+1]
		keyLine[k.Value] = k.Line
	}
	used := map[string]bool{"shape": true}
	shapeNode, ok := fields["shape"]
	if !ok {
		return nil, fmt.Errorf("line %d: field shape: missing (want constant, ramp, steps or half-sine)", root.Line)
	}
	num := func(name string) (float64, error) {
		used[name] = true
		n, ok := fields[name]
		if !ok {
			return 0, fmt.Errorf("line %d: field %s: missing", root.Line, name)
		}
		return scalarNum(n, name)
	}
	dur := func(name string, required bool) (time.Duration, error) {
		used[name] = true
		n, ok := fields[name]
		if !ok {
			if required {
				return 0, fmt.Errorf("line %d: field %s: missing", root.Line, name)
			}
			return 0, nil
		}
		return scalarDur(n, name)
	}
	var p Profile
	var err error
	switch shapeNode.Value {
	case "constant":
		var v float64
		v, err = num("value")
		p = Constant{v}
	case "ramp":
		var from, to float64
		var over time.Duration
		if from, err = num("from"); err == nil {
			if to, err = num("to"); err == nil {
				over, err = dur("over", true)
			}
		}
		p = Ramp{From: from, To: to, Over: over}
	case "half-sine", "sine":
		var h HalfSine
		if h.Min, err = num("min"); err == nil {
			if h.Max, err = num("max"); err == nil {
				if h.Period, err = dur("period", true); err == nil {
					if h.Step, err = dur("step", false); err == nil {
						if verr := h.validate(); verr != nil {
							err = fmt.Errorf("line %d: %w", root.Line, verr)
						}
					}
				}
			}
		}
		p = h
	case "steps":
		p, err = parseStepsNode(fields, used, root.Line)
	default:
		return nil, fmt.Errorf("line %d: field shape: unknown shape %q (want constant, ramp, steps or half-sine)", shapeNode.Line, shapeNode.Value)
	}
	if err != nil {
		return nil, err
	}
	for name := range fields {
		if !used[name] {
			return nil, fmt.Errorf("line %d: field %s: not used by shape %s", keyLine[name], name, shapeNode.Value)
		}
	}
	return p, nil
}

func parseStepsNode(fields map[string]*yaml.Node, used map[string]bool, line int) (Profile, error) {
	used["steps"], used["repeat"] = true, true
	var s Steps
	if r, ok := fields["repeat"]; ok {
		if r.Kind != yaml.ScalarNode || (r.Value != "true" && r.Value != "false") {
			return nil, fmt.Errorf("line %d: field repeat: want true or false", r.Line)
		}
		s.Repeat = r.Value == "true"
	}
	list, ok := fields["steps"]
	if !ok {
		return nil, fmt.Errorf("line %d: field steps: missing", line)
	}
	if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return nil, fmt.Errorf("line %d: field steps: want a non-empty list of {value, for}", list.Line)
	}
	for i, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: field steps[%d]: want a mapping {value, for}", item.Line, i)
		}
		var st Step
		var haveV, haveF bool
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			var err error
			switch k.Value {
			case "value":
				st.Value, err = scalarNum(v, fmt.Sprintf("steps[%d].value", i))
				haveV = true
			case "for":
				st.For, err = scalarDur(v, fmt.Sprintf("steps[%d].for", i))
				haveF = true
			default:
				err = fmt.Errorf("line %d: field steps[%d].%s: unknown (want value and for)", k.Line, i, k.Value)
			}
			if err != nil {
				return nil, err
			}
		}
		if !haveV || !haveF {
			return nil, fmt.Errorf("line %d: field steps[%d]: needs both value and for", item.Line, i)
		}
		s.Steps = append(s.Steps, st)
	}
	return s, nil
}

func scalarNum(n *yaml.Node, name string) (float64, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("line %d: field %s: want a number", n.Line, name)
	}
	v, err := parseDemand(n.Value)
	if err != nil {
		return 0, fmt.Errorf("line %d: field %s: %v", n.Line, name, err)
	}
	return v, nil
}

func scalarDur(n *yaml.Node, name string) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("line %d: field %s: want a duration such as 30s", n.Line, name)
	}
	d, err := parseDur(n.Value)
	if err != nil {
		return 0, fmt.Errorf("line %d: field %s: %v", n.Line, name, err)
	}
	return d, nil
}
