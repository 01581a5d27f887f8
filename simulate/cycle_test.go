package simulate

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/load"
)

// The default cycle's steps, computed apart (Python: floor(sin(pi*i/19) *
// 20 + 0.5) + 1 and the same with 100). The seed's simulator stepped x =
// 0.01 + 0.168·i for 19 steps and used int(sin(x)·100): 0, 17, 33, 49, 63,
// 75, 85, 92, 97, 99, ... on the way up, the same sessions within one.
var (
	seedReplicas = []int{1, 4, 7, 11, 13, 16, 18, 19, 20, 21, 21, 20, 19, 18, 16, 13, 11, 7, 4}
	seedSessions = []int{1, 17, 33, 49, 62, 75, 85, 93, 98, 101, 101, 98, 93, 85, 75, 62, 49, 33, 17}
)

func TestDefaultCycleIsTheSeeds(t *testing.T) {
	c := DefaultCycle()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := load.ParseProfileSpec(DefaultProfileSpec)
	if err != nil || !reflect.DeepEqual(p, c.Profile) {
		t.Fatalf("DefaultProfileSpec parses to %#v (%v), the default cycle has %#v", p, err, c.Profile)
	}
	// 19 steps of one minute, then again.
	for round := range 3 {
		for i := range 19 {
			step := round*19 + i
			pt := c.PointAt(step)
			if pt.Replicas != seedReplicas[i] || pt.Sessions != seedSessions[i] {
				t.Errorf("step %d: replicas %d sessions %d, want %d and %d", step, pt.Replicas, pt.Sessions, seedReplicas[i], seedSessions[i])
			}
			if pt.Offset != time.Duration(step)*time.Minute || pt.Step != step {
				t.Errorf("step %d: offset %s, step %d", step, pt.Offset, pt.Step)
			}
			// At any moment inside the step is the same point.
			if got := c.At(pt.Offset + 59*time.Second); got != pt {
				t.Errorf("At(%s) = %+v, want %+v", pt.Offset+59*time.Second, got, pt)
			}
		}
	}
	if c.At(-time.Hour) != c.PointAt(0) {
		t.Error("a negative offset is not step 0")
	}
}

func TestFormulasAndCaps(t *testing.T) {
	c := DefaultCycle()
	c.Profile = load.Constant{Value: 1}
	c.Scale, c.AppRatio, c.AppMin, c.SessionRatio, c.SessionMin = 1000, 0.1, 2, 1, 0
	if p := c.At(0); p.Replicas != 102 || p.Sessions != 1000 || p.Demand != 1 {
		t.Errorf("uncapped: %+v", p)
	}
	c.MaxReplicas, c.MaxSessions = 30, 623
	if p := c.At(0); p.Replicas != 30 || p.Sessions != 623 {
		t.Errorf("capped: %+v", p)
	}
	// A profile of another shape outside [0,1] is clamped.
	c.Profile = funcProfile(func(time.Duration) float64 { return 7 })
	if p := c.At(0); p.Demand != 1 {
		t.Errorf("demand 7 not clamped: %+v", p)
	}
	c.Profile = funcProfile(func(time.Duration) float64 { return math.NaN() })
	if p := c.At(0); p.Demand != 0 || p.Replicas != 2 || p.Sessions != 0 {
		t.Errorf("NaN demand: %+v", p)
	}
}

type funcProfile func(time.Duration) float64

func (f funcProfile) At(t time.Duration) float64 { return f(t) }
func (f funcProfile) String() string             { return "func" }

// The seed's committed simulator read its ratios from environment
// variables that were left empty: here an unset, zero or negative ratio is
// an error that names it.
func TestBadFormulasAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Cycle)
		want string
	}{
		{"zero app ratio", func(c *Cycle) { c.AppRatio = 0 }, "app-ratio 0: must be greater than 0"},
		{"negative app ratio", func(c *Cycle) { c.AppRatio = -0.2 }, "app-ratio -0.2"},
		{"unset session ratio", func(c *Cycle) { c.SessionRatio = 0 }, "session-ratio 0"},
		{"NaN session ratio", func(c *Cycle) { c.SessionRatio = math.NaN() }, "session-ratio: NaN is not a number"},
		{"infinite scale", func(c *Cycle) { c.Scale = math.Inf(1) }, "scale: +Inf"},
		{"zero scale", func(c *Cycle) { c.Scale = 0 }, "scale 0"},
		{"huge product", func(c *Cycle) { c.Scale, c.SessionRatio = 1e6, 10 }, "scale·session-ratio"},
		{"negative min", func(c *Cycle) { c.AppMin = -1 }, "app-min -1"},
		{"cap below min", func(c *Cycle) { c.AppMin, c.MaxReplicas = 5, 3 }, "max-replicas 3: below app-min 5"},
		{"session cap below min", func(c *Cycle) { c.SessionMin, c.MaxSessions = 5, 3 }, "max-sessions 3"},
		{"no profile", func(c *Cycle) { c.Profile = nil }, "profile: missing"},
		{"no step", func(c *Cycle) { c.Step = 0 }, "step 0s: must be positive"},
		{"profile in sessions", func(c *Cycle) {
			c.Profile = load.HalfSine{Min: 5, Max: 100, Period: time.Hour, Step: time.Minute}
		}, "demand reaches 100, above 1"},
		{"steps above 1", func(c *Cycle) {
			c.Profile = load.Steps{Steps: []load.Step{{Value: 0.5, For: time.Minute}, {Value: 2, For: time.Minute}}}
		}, "demand reaches 2"},
	} {
		c := DefaultCycle()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if _, err := New(Config{Cycle: c, Sessions: SessionsFunc(nil)}); err == nil {
			t.Errorf("%s: New accepted the cycle", tc.name)
		}
	}
}

// SessionsProfile is what the lab feeds load's closed model: the same
// sessions as the points, and a String that load parses back to the same.
func TestSessionsProfile(t *testing.T) {
	for _, c := range []Cycle{
		DefaultCycle(),
		func() Cycle {
			c := DefaultCycle()
			c.Profile, c.Step = load.Ramp{From: 0, To: 1, Over: 90 * time.Second}, 30*time.Second
			return c
		}(),
		func() Cycle {
			c := DefaultCycle()
			c.Profile = load.Steps{Steps: []load.Step{{Value: 0.2, For: 2 * time.Minute}, {Value: 0.9, For: time.Minute}}, Repeat: true}
			return c
		}(),
	} {
		sp, rp := c.SessionsProfile(), c.ReplicasProfile()
		back, err := load.ParseProfileSpec(sp.String())
		if err != nil {
			t.Fatalf("%s: String %q does not parse: %v", c, sp.String(), err)
		}
		for i := range 60 {
			at := time.Duration(i)*c.Step + c.Step/2
			p := c.At(at)
			if sp.At(at) != float64(p.Sessions) || rp.At(at) != float64(p.Replicas) {
				t.Errorf("%s at %s: profiles %v/%v, point %+v", c, at, sp.At(at), rp.At(at), p)
			}
			if back.At(at) != float64(p.Sessions) {
				t.Errorf("%s at %s: reparsed profile %v, want %d", c, at, back.At(at), p.Sessions)
			}
		}
	}
	// A shape that does not repeat at whole steps is described, not listed.
	c := DefaultCycle()
	c.Profile = funcProfile(func(time.Duration) float64 { return 0.5 })
	if s := c.SessionsProfile().String(); !strings.HasPrefix(s, "simulate-sessions(") {
		t.Errorf("String of an unknown shape: %q", s)
	}
}

// For any formula Validate accepts, replicas and sessions stay within
// [min, cap] and never fall as demand rises; anything else is an error,
// never a panic.
func FuzzCycleFormulas(f *testing.F) {
	f.Add(100.0, 0.2, 1, 1.0, 1, 0, 0, 0.5, 0.7)
	f.Add(1000.0, 0.1, 0, 1.0, 0, 30, 623, 1.0, 0.0)
	f.Add(0.0, 0.0, -1, -1.0, 0, 0, 0, 2.0, -1.0)
	f.Fuzz(func(t *testing.T, scale, appRatio float64, appMin int, sessRatio float64, sessMin, maxR, maxS int, d1, d2 float64) {
		c := Cycle{Profile: load.Constant{Value: 0}, Step: time.Minute, Scale: scale, AppRatio: appRatio, AppMin: appMin,
			SessionRatio: sessRatio, SessionMin: sessMin, MaxReplicas: maxR, MaxSessions: maxS}
		if c.Validate() != nil {
			return
		}
		lo, hi := math.Min(d1, d2), math.Max(d1, d2)
		c.Profile = funcProfile(func(time.Duration) float64 { return lo })
		a := c.PointAt(0)
		c.Profile = funcProfile(func(time.Duration) float64 { return hi })
		b := c.PointAt(0)
		if math.IsNaN(lo) || math.IsNaN(hi) {
			return
		}
		if a.Replicas > b.Replicas || a.Sessions > b.Sessions {
			t.Fatalf("demand %v -> %v: replicas %d -> %d, sessions %d -> %d", lo, hi, a.Replicas, b.Replicas, a.Sessions, b.Sessions)
		}
		for _, p := range []Point{a, b} {
			if p.Replicas < min(appMin, capOr(maxR)) || p.Replicas > capOr(maxR) || p.Sessions < min(sessMin, capOr(maxS)) || p.Sessions > capOr(maxS) {
				t.Fatalf("point %+v outside the bounds of %s", p, c)
			}
			if p.Demand < 0 || p.Demand > 1 {
				t.Fatalf("demand %v outside [0,1]", p.Demand)
			}
		}
	})
}

func capOr(n int) int {
	if n > 0 {
		return n
	}
	return math.MaxInt
}
