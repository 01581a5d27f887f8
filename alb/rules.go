package alb

import (
	"math/rand/v2"
	"net"
	"path"
	"strings"
)

// rule is an immutable listener rule; ModifyRule replaces it.
type rule struct {
	priority int
	hosts    []string // lower-case patterns
	prefixes []string
	forward  []weightedGroup
	total    int
}

type weightedGroup struct {
	g      *targetGroup
	weight int
}

// matches reports whether a request for host and urlPath meets every
// condition of the rule.
func (r *rule) matches(host, urlPath string) bool {
	if len(r.hosts) > 0 {
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		h = strings.ToLower(h)
		ok := false
		for _, p := range r.hosts {
			if m, _ := path.Match(p, h); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.prefixes) > 0 {
		ok := false
		for _, p := range r.prefixes {
			if strings.HasPrefix(urlPath, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// pickGroup chooses a target group by weight; nil when every weight is 0.
func (r *rule) pickGroup() *targetGroup {
	if len(r.forward) == 1 {
		if r.total == 0 {
			return nil
		}
		return r.forward[0].g
	}
	if r.total == 0 {
		return nil
	}
	n := rand.IntN(r.total)
	for _, w := range r.forward {
		if n < w.weight {
			return w.g
		}
		n -= w.weight
	}
	return r.forward[len(r.forward)-1].g
}

// weightsOf returns the rule's forward action as the API shows it.
func (r *rule) weightsOf() []WeightedTargetGroup {
	out := make([]WeightedTargetGroup, len(r.forward))
	for i, w := range r.forward {
		wt := w.weight
		out[i] = WeightedTargetGroup{TargetGroup: w.g.name, Weight: &wt}
	}
	return out
}
