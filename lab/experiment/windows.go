package experiment

import (
	"sort"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// ownPods is what one disruption window did to its own pods: the app pods
// whose termination began in it (and in no window that started later),
// check's prediction for them and the failed requests the ALB sent them.
// Disruption windows overlap (a scale-down's lasts 40 s, the demand cycle
// steps every few seconds), so the pods, not the clock, tie a failure to
// the deletion that caused it. Offsets are ms from the run's start.
type ownPods struct {
	pods           int
	predLo, predHi int64 // check's windows for these pods; predLo < 0 when none
	measLo, measHi int64 // when the first and the last failed request to them were sent; measLo < 0 when none
	failed         int64 // failed requests the ALB sent to these pods
}

// windowPods ties each app pod's termination to the disruption window it
// began in, the latest one to start at or before it (node-loss windows
// excepted: their failures come before any pod is terminated), and sums
// up check's predictions for those pods and the failed requests the
// access log shows going to them from the moment they began terminating.
func windowPods(res *results.Result, pods []podEvent, predicted map[string][]results.Window, att *attribution) map[int]*ownPods {
	order := make([]int, 0, len(res.Marks))
	for i, m := range res.Marks {
		if !strings.HasPrefix(m.Name, "kill node") {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return res.Marks[order[a]].StartMS < res.Marks[order[b]].StartMS })
	terminating := map[string]time.Time{}
	for _, pe := range pods {
		if pe.kind != "PodTerminating" {
			continue
		}
		if _, seen := terminating[pe.pod]; !seen {
			terminating[pe.pod] = pe.at
		}
	}
	out := map[int]*ownPods{}
	for pod, at := range terminating {
		off := res.Offset(at)
		mark := -1
		for _, i := range order {
			m := res.Marks[i]
			if m.StartMS <= off && off < m.EndMS {
				mark = i // the latest to start wins
			}
		}
		if mark < 0 {
			continue
		}
		o := out[mark]
		if o == nil {
			o = &ownPods{predLo: -1, measLo: -1}
			out[mark] = o
		}
		o.pods++
		for _, w := range predicted[pod] {
			o.predLo, o.predHi = widen(o.predLo, o.predHi, w.StartMS, w.EndMS)
		}
		for _, e := range att.entries {
			if e.pod != pod || e.end.Before(at) {
				continue
			}
			o.failed++
			o.measLo, o.measHi = widen(o.measLo, o.measHi, res.Offset(e.at), res.Offset(e.at))
		}
	}
	return out
}

// widen grows [lo, hi] (empty when lo < 0) to cover [from, to].
func widen(lo, hi, from, to int64) (int64, int64) {
	if lo < 0 || from < lo {
		lo = from
	}
	return lo, max(hi, to)
}
