// Package simulate is the seed's demand cycle ("appsimulator") done right:
// a demand profile in [0,1] that, step by step, sets the replicas of an app
// (a Deployment, an Argo Rollout, anything with a scale subresource) and
// the number of load sessions, through the Kubernetes API with client-go.
//
// The same code runs in-process in the lab and as a pod on a real cluster:
// kubeconfig or in-cluster config, least-privilege RBAC (get/patch of the
// scale subresource in one namespace, the one state ConfigMap), state kept
// in a ConfigMap so a restart resumes the cycle where it was.
//
// A Cycle is pure: At and PointAt compute the demand, replicas and sessions
// of any moment. A Simulator applies the cycle's points on a clock.
package simulate

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/load"
)

// DefaultProfileSpec is the seed's demand cycle in load's profile syntax:
// a half sine from 0 to 1 and back in 19 steps of one minute, then again.
const DefaultProfileSpec = "half-sine:min=0,max=1,period=19m,step=1m"

// Defaults of the replica and session formulas (the blog's app =
// sin·100/5 + 1 and sessions = sin·100 + 1).
const (
	DefaultScale        = 100
	DefaultAppRatio     = 0.2
	DefaultAppMin       = 1
	DefaultSessionRatio = 1
	DefaultSessionMin   = 1
	DefaultStep         = time.Minute
)

// maxCount bounds replicas and sessions: far above any real cluster, low
// enough that every count fits an int32 replica field.
const maxCount = 1_000_000

// Cycle is a demand profile and the formulas that turn demand into app
// replicas and load sessions:
//
//	replicas = round(demand·Scale·AppRatio) + AppMin     (at most MaxReplicas)
//	sessions = round(demand·Scale·SessionRatio) + SessionMin (at most MaxSessions)
//
// Demand is the profile's value at the start of the current step, a
// fraction in [0,1] (values outside are clamped; Validate rejects the
// profiles of package load that go above 1). Start from DefaultCycle and
// change what you need: a zero ratio is an error, not a default.
type Cycle struct {
	// Profile gives demand over time, in [0,1].
	Profile load.Profile
	// Step is how often the cycle changes: demand is sampled at the start
	// of each step and held until the next.
	Step time.Duration
	// Scale is the demand that 1.0 stands for (the seed's 100).
	Scale float64
	// AppRatio is app replicas per unit of scaled demand (the seed's 1/5).
	AppRatio float64
	// AppMin is added to the replicas (the seed's + 1).
	AppMin int
	// SessionRatio is load sessions per unit of scaled demand.
	SessionRatio float64
	// SessionMin is added to the sessions.
	SessionMin int
	// MaxReplicas caps the replicas; 0 means no cap.
	MaxReplicas int
	// MaxSessions caps the sessions; 0 means no cap.
	MaxSessions int
}

// DefaultCycle is the seed's cycle: DefaultProfileSpec (19 steps of one
// minute over the half sine, then again) with the default formulas.
func DefaultCycle() Cycle {
	return Cycle{
		Profile:      load.HalfSine{Min: 0, Max: 1, Period: 19 * time.Minute, Step: time.Minute},
		Step:         DefaultStep,
		Scale:        DefaultScale,
		AppRatio:     DefaultAppRatio,
		AppMin:       DefaultAppMin,
		SessionRatio: DefaultSessionRatio,
		SessionMin:   DefaultSessionMin,
	}
}

// Point is the cycle at one step.
type Point struct {
	// Step is the step's index since the cycle started (0, 1, 2, ...; it
	// keeps counting over repeated periods).
	Step int `json:"step"`
	// Offset is when the step starts, from the cycle's start.
	Offset time.Duration `json:"offset_ns"`
	// Demand is the profile's value at Offset, clamped to [0,1].
	Demand float64 `json:"demand"`
	// Replicas is the app's wanted replicas.
	Replicas int `json:"replicas"`
	// Sessions is the wanted number of load sessions.
	Sessions int `json:"sessions"`
}

// Validate reports every field that cannot work, each naming the field.
func (c Cycle) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Profile == nil {
		bad("profile: missing")
	} else if err := checkProfileRange(c.Profile); err != nil {
		bad("profile %s: %v", c.Profile, err)
	}
	if c.Step <= 0 {
		bad("step %s: must be positive", c.Step)
	}
	positive := func(name string, v float64) bool {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			bad("%s: %v is not a number", name, v)
		case v <= 0:
			bad("%s %s: must be greater than 0 (an unset ratio is what broke the seed's simulator)", name, fmtNum(v))
		default:
			return true
		}
		return false
	}
	okScale := positive("scale", c.Scale)
	if positive("app-ratio", c.AppRatio) && okScale && c.Scale*c.AppRatio > maxCount {
		bad("scale·app-ratio %s: above %d replicas", fmtNum(c.Scale*c.AppRatio), maxCount)
	}
	if positive("session-ratio", c.SessionRatio) && okScale && c.Scale*c.SessionRatio > maxCount {
		bad("scale·session-ratio %s: above %d sessions", fmtNum(c.Scale*c.SessionRatio), maxCount)
	}
	count := func(name string, v int) {
		if v < 0 || v > maxCount {
			bad("%s %d: must be within 0..%d", name, v, maxCount)
		}
	}
	count("app-min", c.AppMin)
	count("session-min", c.SessionMin)
	count("max-replicas", c.MaxReplicas)
	count("max-sessions", c.MaxSessions)
	if c.MaxReplicas > 0 && c.MaxReplicas < c.AppMin {
		bad("max-replicas %d: below app-min %d", c.MaxReplicas, c.AppMin)
	}
	if c.MaxSessions > 0 && c.MaxSessions < c.SessionMin {
		bad("max-sessions %d: below session-min %d", c.MaxSessions, c.SessionMin)
	}
	return errors.Join(errs...)
}

// checkProfileRange rejects load's profiles whose demand leaves [0,1]:
// such a profile was written in sessions, not as a fraction of Scale.
func checkProfileRange(p load.Profile) error {
	var peak float64
	switch p := p.(type) {
	case load.Constant:
		peak = p.Value
	case load.Ramp:
		peak = math.Max(p.From, p.To)
	case load.HalfSine:
		peak = math.Max(p.Min, p.Max)
	case load.Steps:
		for _, s := range p.Steps {
			peak = math.Max(peak, s.Value)
		}
	case load.Scaled:
		return checkProfileRange(p.Profile)
	default:
		return nil // unknown shapes are clamped at run time
	}
	if peak > 1 {
		return fmt.Errorf("demand reaches %s, above 1: the cycle's demand is a fraction of --scale (write max=1 and set --scale %s)", fmtNum(peak), fmtNum(peak))
	}
	return nil
}

// StepAt is the index of the step that t (from the cycle's start) falls
// in; a negative t is step 0.
func (c Cycle) StepAt(t time.Duration) int {
	if t <= 0 || c.Step <= 0 {
		return 0
	}
	return int(t / c.Step)
}

// At is the cycle t after its start.
func (c Cycle) At(t time.Duration) Point { return c.PointAt(c.StepAt(t)) }

// PointAt is the cycle at step i (negative i is step 0).
func (c Cycle) PointAt(i int) Point {
	i = max(i, 0)
	off := time.Duration(i) * c.Step
	d := 0.0
	if c.Profile != nil {
		d = c.Profile.At(off)
	}
	switch {
	case math.IsNaN(d) || d < 0:
		d = 0
	case d > 1:
		d = 1
	}
	return Point{
		Step:     i,
		Offset:   off,
		Demand:   d,
		Replicas: formula(d, c.Scale, c.AppRatio, c.AppMin, c.MaxReplicas),
		Sessions: formula(d, c.Scale, c.SessionRatio, c.SessionMin, c.MaxSessions),
	}
}

func formula(demand, scale, ratio float64, minimum, ceiling int) int {
	v := math.Round(demand*scale*ratio) + float64(minimum)
	if math.IsNaN(v) || v < 0 {
		v = 0
	}
	if ceiling > 0 && v > float64(ceiling) {
		v = float64(ceiling)
	}
	return int(math.Min(v, 2*maxCount))
}

// String describes the cycle in one line (it is kept in the state
// ConfigMap, so a restart can tell whether the cycle changed).
func (c Cycle) String() string {
	var b strings.Builder
	prof := "<none>"
	if c.Profile != nil {
		prof = c.Profile.String()
	}
	fmt.Fprintf(&b, "profile=%s step=%s scale=%s app=%s+%d session=%s+%d",
		prof, c.Step, fmtNum(c.Scale), fmtNum(c.AppRatio), c.AppMin, fmtNum(c.SessionRatio), c.SessionMin)
	if c.MaxReplicas > 0 {
		fmt.Fprintf(&b, " max-replicas=%d", c.MaxReplicas)
	}
	if c.MaxSessions > 0 {
		fmt.Fprintf(&b, " max-sessions=%d", c.MaxSessions)
	}
	return b.String()
}

// SessionsProfile is the cycle's sessions over time as a load.Profile, for
// load's closed model (the lab runs the sessions in-process): At(t) is
// PointAt(StepAt(t)).Sessions.
func (c Cycle) SessionsProfile() load.Profile {
	return countProfile{c: c, what: "sessions", f: func(p Point) int { return p.Sessions }}
}

// ReplicasProfile is the cycle's app replicas over time as a load.Profile.
func (c Cycle) ReplicasProfile() load.Profile {
	return countProfile{c: c, what: "replicas", f: func(p Point) int { return p.Replicas }}
}

type countProfile struct {
	c    Cycle
	what string
	f    func(Point) int
}

// At implements load.Profile.
func (p countProfile) At(t time.Duration) float64 { return float64(p.f(p.c.At(t))) }

// maxStepsInString bounds the steps form String writes.
const maxStepsInString = 10_000

// String implements load.Profile: the steps form ParseProfileSpec reads
// when the cycle's profile repeats (or holds) at a whole number of steps;
// otherwise a description that names the cycle.
func (p countProfile) String() string {
	n, repeat, ok := horizon(p.c.Profile, p.c.Step)
	if !ok || n <= 0 || n > maxStepsInString {
		return fmt.Sprintf("simulate-%s(%s)", p.what, p.c)
	}
	parts := make([]string, 0, n+1)
	for i := range n {
		parts = append(parts, fmt.Sprintf("%d@%s", p.f(p.c.PointAt(i)), p.c.Step))
	}
	if repeat {
		parts = append(parts, "repeat")
	}
	return "steps:" + strings.Join(parts, ",")
}

// horizon returns n steps after which the profile, sampled every step,
// repeats (repeat) or holds its last value, when it is known.
func horizon(p load.Profile, step time.Duration) (n int, repeat, ok bool) {
	if step <= 0 {
		return 0, false, false
	}
	steps := func(d time.Duration) (int, bool) {
		if d%step != 0 {
			return 0, false
		}
		return int(d / step), true
	}
	switch p := p.(type) {
	case load.Constant:
		return 1, false, true
	case load.Ramp:
		over := (p.Over + step - 1) / step * step // the first step at or after Over holds To
		n, ok := steps(over)
		return n + 1, false, ok
	case load.HalfSine:
		n, ok := steps(p.Period)
		return n, true, ok
	case load.Steps:
		var total time.Duration
		for _, s := range p.Steps {
			total += s.For
		}
		n, ok := steps(total)
		if !p.Repeat {
			return n + 1, false, ok
		}
		return n, true, ok
	case load.Scaled:
		if p.Max > 0 {
			return 0, false, false
		}
		return horizon(p.Profile, step)
	}
	return 0, false, false
}

func fmtNum(v float64) string { return fmt.Sprintf("%g", v) }
