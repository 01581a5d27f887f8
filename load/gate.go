package load

import (
	"fmt"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// Gates are pass/fail limits for CI pipelines. A negative MaxErrors, a
// negative MaxErrorRate and a zero MaxP99 are off.
type Gates struct {
	MaxErrors    int64
	MaxErrorRate float64
	MaxP99       time.Duration
	// Verify fails on any lost write or duplicate.
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
	if g.Verify && res.Verify != nil {
		if n := len(res.Verify.Lost); n > 0 {
			reasons = append(reasons, fmt.Sprintf("%d lost writes", n))
		}
		if n := len(res.Verify.Duplicates); n > 0 {
			reasons = append(reasons, fmt.Sprintf("%d duplicated idempotency keys", n))
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
