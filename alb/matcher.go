package alb

import (
	"fmt"
	"strconv"
	"strings"
)

// Matcher is a health-check success-code matcher: a list of codes and
// ranges such as "200", "200-399" or "200,302".
type Matcher struct {
	ranges [][2]int
	text   string
}

// ParseMatcher parses a success-code matcher. Codes must be 200–499.
func ParseMatcher(s string) (Matcher, error) {
	m := Matcher{text: s}
	if strings.TrimSpace(s) == "" {
		return m, fmt.Errorf("empty success-code matcher")
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseCode(lo)
		if err != nil {
			return m, fmt.Errorf("success codes %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = parseCode(hi); err != nil {
				return m, fmt.Errorf("success codes %q: %w", s, err)
			}
			if b < a {
				return m, fmt.Errorf("success codes %q: range %s is backwards", s, part)
			}
		}
		m.ranges = append(m.ranges, [2]int{a, b})
	}
	return m, nil
}

func parseCode(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 200 || n > 499 {
		return 0, fmt.Errorf("%q is not a status code in 200–499", s)
	}
	return n, nil
}

// Match reports whether code is a success.
func (m Matcher) Match(code int) bool {
	for _, r := range m.ranges {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

// String returns the matcher as written.
func (m Matcher) String() string { return m.text }
