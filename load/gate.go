package load

import (
	"fmt"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// Gates are pass/fail limits for CI pipelines. A negative MaxErrors, a
// negative MaxErrorRate, a zero MaxP99 and a zero MinSuccesses are off.
type Gates struct {
	MaxErrors    int64
	MaxErrorRate float64
	MaxP99       time.Duration
	// MinSuccesses fails a run with fewer 2xx/3xx responses than this: a
	// run that measured nothing (every request refused, every answer a
	// 4xx) does not pass. The command's default is 1.
	MinSuccesses int64
	// Verify fails on any lost write or duplicate, on any acknowledged
	// write that could not be read back, and when no write was
	// acknowledged at all (nothing was verified).
	Verify bool
}

// NoGates has every gate off.
var NoGates = Gates{MaxErrors: -1, MaxErrorRate: -1}

// Check returns an error with a one-line reason for the first gate res
// breaches, or nil.
func (g Gates) Check(res *results.Result) error {
	t := res.Totals
	var reasons []string
	if g.MaxErrors >= 0 && t.Errors > g.MaxErrors {
		reasons = append(reasons, fmt.Sprintf("errors %d > --max-errors %d", t.Errors, g.MaxErrors))
	}
	if g.MaxErrorRate >= 0 && t.ErrorRate > g.MaxErrorRate {
		reasons = append(reasons, fmt.Sprintf("error rate %.4f > --max-error-rate %g", t.ErrorRate, g.MaxErrorRate))
	}
	if g.MaxP99 > 0 {
		p99 := time.Duration(res.Latency.P99MS * float64(time.Millisecond))
		if p99 > g.MaxP99 {
			reasons = append(reasons, fmt.Sprintf("p99 %s > --max-p99 %s", p99.Round(time.Microsecond), g.MaxP99))
		}
	}
	if g.MinSuccesses > 0 {
		if n := Successes(t); n < g.MinSuccesses {
			reasons = append(reasons, fmt.Sprintf("%d 2xx/3xx responses < --min-successes %d", n, g.MinSuccesses))
		}
	}
	if g.Verify {
		switch v := res.Verify; {
		case v == nil:
			reasons = append(reasons, "--verify: the writes were not verified")
		default:
			if n := len(v.Lost); n > 0 {
				reasons = append(reasons, fmt.Sprintf("%d lost writes", n))
			}
			if n := len(v.Duplicates); n > 0 {
				reasons = append(reasons, fmt.Sprintf("%d duplicated idempotency keys", n))
			}
			if v.Errors > 0 {
				reasons = append(reasons, fmt.Sprintf("--verify: %d read-backs failed (writes not verified)", v.Errors))
			}
			if v.Checked == 0 && v.Errors == 0 {
				reasons = append(reasons, "--verify: no write was acknowledged, nothing was verified")
			}
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return fmt.Errorf("gate failed: %s", strings.Join(reasons, "; "))
}

// ParseMark reads NAME@OFFSET[+DURATION], for example scale-down@2m+30s.
// Without a duration the window lasts until the end of the run.
func ParseMark(s string) (MarkSpec, error) {
	name, rest, ok := strings.Cut(s, "@")
	if !ok || strings.TrimSpace(name) == "" {
		return MarkSpec{}, fmt.Errorf("mark %q: want NAME@OFFSET[+DURATION], for example scale-down@2m+30s", s)
	}
	offS, durS, hasDur := strings.Cut(rest, "+")
	off, err := time.ParseDuration(offS)
	if err != nil || off < 0 {
		return MarkSpec{}, fmt.Errorf("mark %q: offset %q is not a non-negative Go duration such as 90s", s, offS)
	}
	m := MarkSpec{Name: strings.TrimSpace(name), Offset: off}
	if hasDur {
		d, err := time.ParseDuration(durS)
		if err != nil || d <= 0 {
			return MarkSpec{}, fmt.Errorf("mark %q: duration %q is not a positive Go duration such as 30s", s, durS)
		}
		m.Duration = d
	}
	return m, nil
}
