package service

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Work is the extra server-side time spent on each API request (the
// --work flag): none, a fixed duration, a uniform range or an exponential
// distribution. The zero value is no work.
type Work struct {
	kind   workKind
	lo, hi time.Duration // fixed: lo; uniform: [lo, hi]; exp: mean lo, cap hi
}

type workKind int

const (
	workNone workKind = iota
	workFixed
	workUniform
	workExp
)

// expCap bounds an exponential sample at this many times the mean, so one
// unlucky request cannot hold a drain for minutes.
const expCap = 20

// ParseWork parses a work spec: "" or "0" (none), "50ms" (fixed),
// "20ms-200ms" (uniform), "exp:100ms" (exponential with that mean, capped at
// 20x the mean). Durations are Go syntax.
func ParseWork(s string) (Work, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "0" || s == "none":
		return Work{}, nil
	case strings.HasPrefix(s, "exp:"):
		mean, err := workDuration(strings.TrimPrefix(s, "exp:"))
		if err != nil {
			return Work{}, fmt.Errorf("work %q: %w", s, err)
		}
		if mean == 0 {
			return Work{}, nil
		}
		return Work{kind: workExp, lo: mean, hi: expCap * mean}, nil
	}
	if i := strings.Index(s[1:], "-"); i >= 0 {
		lo, err := workDuration(s[:i+1])
		if err != nil {
			return Work{}, fmt.Errorf("work %q: %w", s, err)
		}
		hi, err := workDuration(s[i+2:])
		if err != nil {
			return Work{}, fmt.Errorf("work %q: %w", s, err)
		}
		if hi < lo {
			return Work{}, fmt.Errorf("work %q: range end is below its start", s)
		}
		return Work{kind: workUniform, lo: lo, hi: hi}, nil
	}
	d, err := workDuration(s)
	if err != nil {
		return Work{}, fmt.Errorf("work %q: %w (want 50ms, 20ms-200ms or exp:100ms)", s, err)
	}
	if d == 0 {
		return Work{}, nil
	}
	return Work{kind: workFixed, lo: d}, nil
}

func workDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a Go duration such as 50ms", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if d > time.Hour {
		return 0, fmt.Errorf("%q is over an hour", s)
	}
	return d, nil
}

// IsZero reports whether w adds no time.
func (w Work) IsZero() bool { return w.kind == workNone }

// Sample draws one work duration.
func (w Work) Sample() time.Duration {
	switch w.kind {
	case workFixed:
		return w.lo
	case workUniform:
		return w.lo + rand.N(w.hi-w.lo+1)
	case workExp:
		return min(time.Duration(rand.ExpFloat64()*float64(w.lo)), w.hi)
	default:
		return 0
	}
}

// String returns the spec in ParseWork syntax.
func (w Work) String() string {
	switch w.kind {
	case workFixed:
		return w.lo.String()
	case workUniform:
		return w.lo.String() + "-" + w.hi.String()
	case workExp:
		return "exp:" + w.lo.String()
	default:
		return "0"
	}
}
