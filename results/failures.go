package results

import (
	"sort"
	"time"
)

// FailureOptions tune FindFailures.
type FailureOptions struct {
	// Gap is the longest run of error-free time that still joins two
	// failing stretches into one window (default 5 s, at least one bucket).
	Gap time.Duration
	// Lead is how long before a window an event may happen and still be
	// listed with it: the events that may have caused the failures
	// (default 60 s, the span of an ALB's health-check detection with
	// controller defaults plus margin).
	Lead time.Duration
}

// FindFailures returns the windows of the timeline in which failed
// requests (IsError) clustered: buckets with at least one error, joined
// when less than Gap apart. Each window has the totals of its buckets and
// the indexes of the events from Lead before its start up to its end. It
// sets neither targets nor cause; producers that know them add them.
func (r *Result) FindFailures(o FailureOptions) []Failure {
	if o.Gap <= 0 {
		o.Gap = 5 * time.Second
	}
	if o.Lead <= 0 {
		o.Lead = time.Minute
	}
	width := r.BucketMS
	if width <= 0 {
		return nil
	}
	gap := max(o.Gap.Milliseconds(), width)
	var out []Failure
	var cur *Failure
	for _, b := range r.Timeline {
		var errs int64
		for k, n := range b.Counts {
			if IsError(k) {
				errs += n
			}
		}
		if errs == 0 {
			continue
		}
		if cur != nil && b.OffsetMS-cur.EndMS < gap {
			cur.EndMS = b.OffsetMS + width
			continue
		}
		out = append(out, Failure{StartMS: b.OffsetMS, EndMS: b.OffsetMS + width})
		cur = &out[len(out)-1]
	}
	ms := time.Millisecond
	for i := range out {
		f := &out[i]
		f.Totals = r.Window(time.Duration(f.StartMS)*ms, time.Duration(f.EndMS)*ms)
		lead := o.Lead.Milliseconds()
		for j, e := range r.Events {
			if e.AtMS >= f.StartMS-lead && e.AtMS < f.EndMS {
				f.Events = append(f.Events, j)
			}
		}
		sort.SliceStable(f.Events, func(a, b int) bool { return r.Events[f.Events[a]].AtMS < r.Events[f.Events[b]].AtMS })
	}
	return out
}
