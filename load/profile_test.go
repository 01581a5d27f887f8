package load

import (
	"math"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestProfileShapes(t *testing.T) {
	s := time.Second
	cases := []struct {
		p    Profile
		at   time.Duration
		want float64
	}{
		{Constant{5}, time.Hour, 5},
		{Ramp{From: 10, To: 20, Over: 10 * s}, 0, 10},
		{Ramp{From: 10, To: 20, Over: 10 * s}, 5 * s, 15},
		{Ramp{From: 10, To: 20, Over: 10 * s}, time.Minute, 20},
		{Steps{Steps: []Step{{1, s}, {3, 2 * s}}}, 500 * time.Millisecond, 1},
		{Steps{Steps: []Step{{1, s}, {3, 2 * s}}}, 2 * s, 3},
		{Steps{Steps: []Step{{1, s}, {3, 2 * s}}}, 10 * s, 3},
		{Steps{Steps: []Step{{1, s}, {3, 2 * s}}, Repeat: true}, 3500 * time.Millisecond, 1},
		// Half-sine, period 60 s: min at 0, max at 30 s, min again at 60 s.
		{HalfSine{Min: 10, Max: 110, Period: time.Minute}, 0, 10},
		{HalfSine{Min: 10, Max: 110, Period: time.Minute}, 30 * s, 110},
		{HalfSine{Min: 10, Max: 110, Period: time.Minute}, 10 * s, 10 + 100*math.Sin(math.Pi/6)},
		{HalfSine{Min: 10, Max: 110, Period: time.Minute}, 90 * s, 110},
		// Stepped: the value holds for each 10 s step.
		{HalfSine{Min: 10, Max: 110, Period: time.Minute, Step: 10 * s}, 19 * s, 10 + 100*math.Sin(math.Pi/6)},
		{Scaled{Profile: Constant{50}, Max: 20}, 0, 20},
	}
	for _, c := range cases {
		if got := c.p.At(c.at); !near(got, c.want) {
			t.Errorf("%s at %s = %g, want %g", c.p, c.at, got, c.want)
		}
	}
}

func TestProfileSpecRoundTrip(t *testing.T) {
	for _, p := range []Profile{
		Constant{7.5},
		Ramp{From: 1, To: 100, Over: 2 * time.Minute},
		Steps{Steps: []Step{{10, 30 * time.Second}, {50, time.Minute}}, Repeat: true},
		HalfSine{Min: 5, Max: 100, Period: 30 * time.Minute, Step: time.Minute},
	} {
		back, err := ParseProfileSpec(p.String())
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if back.String() != p.String() {
			t.Errorf("round trip %s -> %s", p, back)
		}
	}
}

func TestParseProfileYAML(t *testing.T) {
	p, err := ParseProfile([]byte("shape: half-sine\nmin: 2\nmax: 20\nperiod: 10m\nstep: 30s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := p.(HalfSine); !ok || h != (HalfSine{Min: 2, Max: 20, Period: 10 * time.Minute, Step: 30 * time.Second}) {
		t.Fatalf("got %#v", p)
	}
	p, err = ParseProfile([]byte("shape: steps\nrepeat: true\nsteps:\n  - {value: 1, for: 1s}\n  - value: 4\n    for: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.At(1500 * time.Millisecond); got != 4 {
		t.Fatalf("steps at 1.5s = %g", got)
	}
	bad := map[string]string{
		"shape: sine\nmin: 1\nmax: 2\nperiod: 1m\nspeed: 3\n": "line 5: field speed",
		"shape: ramp\nfrom: 1\nto: x\nover: 1m\n":             "line 3: field to",
		"shape: ramp\nfrom: 1\nto: 2\nover: soon\n":           "line 4: field over",
		"shape: wave\n":                             "line 1: field shape",
		"min: 1\n":                                  "field shape: missing",
		"shape: steps\nsteps:\n  - {value: 1}\n":    "line 3: field steps[0]",
		"shape: constant\nvalue: -3\n":              "line 2: field value",
		"shape: sine\nmin: 5\nmax: 1\nperiod: 1m\n": "max 1 is below min 5",
		"shape: constant\nvalue: 1\nvalue: 2\n":     "given twice",
		"- 1\n":                                     "want a mapping",
	}
	for doc, want := range bad {
		_, err := ParseProfile([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to contain %q", doc, err, want)
		}
	}
}

// FuzzParseProfile: the parser never panics, and what it accepts gives a
// finite, non-negative demand at any time.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte("shape: half-sine\nmin: 2\nmax: 20\nperiod: 10m\nstep: 30s\n"))
	f.Add([]byte("shape: steps\nrepeat: true\nsteps:\n  - {value: 1, for: 1s}\n"))
	f.Add([]byte("shape: ramp\nfrom: 0\nto: 1e6\nover: 1ns\n"))
	f.Add([]byte("shape: constant\nvalue: 3\n"))
	f.Add([]byte("{shape: [1, 2]}"))
	f.Add([]byte("shape: &a steps\nsteps: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data)
		if err != nil {
			return
		}
		for _, at := range []time.Duration{0, time.Millisecond, time.Second, time.Hour, math.MaxInt64} {
			v := p.At(at)
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("%s at %s = %g", p, at, v)
			}
		}
	})
}

func TestParseMark(t *testing.T) {
	m, err := ParseMark("scale-down@2m+30s")
	if err != nil || m != (MarkSpec{Name: "scale-down", Offset: 2 * time.Minute, Duration: 30 * time.Second}) {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"x", "@1s", "x@-1s", "x@1s+0s", "x@soon"} {
		if _, err := ParseMark(bad); err == nil {
			t.Errorf("ParseMark(%q) accepted", bad)
		}
	}
}
