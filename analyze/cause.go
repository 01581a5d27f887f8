package analyze

import (
	"fmt"
	"strconv"
	"strings"

	"zerodrop.dev/zerodrop/accesslog"
	"zerodrop.dev/zerodrop/results"
)

// failureKind names what made a failed request fail, for the cause of a
// failure window: "elb-502" (the ALB made the 502), "elb-502:Reason" when
// the log has an error_reason (the emulator writes one for every ALB-made
// error), "target-503" (the target answered 503), "other".
func failureKind(e *accesslog.Entry) string {
	if e.ELBStatusCode == 0 {
		return "other"
	}
	code := strconv.Itoa(e.ELBStatusCode)
	if !e.ELBGenerated() {
		return "target-" + code
	}
	if e.ErrorReason != "" {
		return "elb-" + code + ":" + e.ErrorReason
	}
	return "elb-" + code
}

// reasonCause explains an error_reason value the emulator writes (the
// ALB's own 502/503/504 causes, FACTS.md).
func reasonCause(reason string) (string, bool) {
	switch reason {
	case accesslog.ReasonTargetConnectionRefused:
		return "connection refused: nothing listened on the target while the ALB still routed to it", true
	case accesslog.ReasonTargetConnectionError:
		return "the ALB could not connect to the target", true
	case accesslog.ReasonTargetConnectionReset:
		return "the target reset the connection with the request outstanding", true
	case accesslog.ReasonTargetClosedConnection:
		return "the target closed a keep-alive connection the ALB was sending on (keep-alive race: keep the app's idle timeout above the ALB's 60 s, and retire connections with Connection: close while draining)", true
	case accesslog.ReasonTargetMalformedResponse:
		return "the target's response was malformed or its headers exceeded 32 KiB", true
	case accesslog.ReasonDeregistrationCut:
		return "requests still in flight when the deregistration delay ended were cut", true
	case accesslog.ReasonTargetConnectTimeout:
		return "no connection to the target within the 10 s connect timeout: the target went away without a reset (lost node, blackholed address)", true
	case accesslog.ReasonTargetResponseTimeout:
		return "no response from the target within the idle timeout", true
	case accesslog.ReasonNoRegisteredTargets:
		return "the rule's target groups had no registered targets", true
	}
	return "", false
}

// kindCause explains a failure kind in words.
func kindCause(kind string) string {
	if code, reason, ok := strings.Cut(kind, ":"); ok {
		if c, ok := reasonCause(reason); ok {
			return "ALB-made " + strings.TrimPrefix(code, "elb-") + ": " + c
		}
		return "ALB-made " + strings.TrimPrefix(code, "elb-") + " (" + reason + ")"
	}
	switch kind {
	case "elb-502":
		return "ALB-made 502: the target refused or reset the connection, closed it with the request outstanding, or was cut when its deregistration delay ended; typical when the app stops serving before the ALB stops routing to it"
	case "elb-503":
		return "ALB-made 503: the rule's target groups had no registered targets (every target deregistered, or traffic weighted to an empty target group)"
	case "elb-504":
		return "ALB-made 504: no connection within the 10 s connect timeout or no response within the idle timeout (targets gone without a reset, such as a lost node, or requests too slow)"
	case "other":
		return "responses without a status code"
	}
	if code, ok := strings.CutPrefix(kind, "target-"); ok {
		return "the targets answered " + code + " themselves: the application failed, or turned work away while shutting down"
	}
	return "ALB-made " + strings.TrimPrefix(kind, "elb-")
}

// disruptive reports whether an event of this kind can start a failure
// window.
func disruptive(kind string) bool {
	switch kind {
	case results.EventSIGTERM, results.EventKill, results.EventDeregister, results.EventScale,
		results.EventNodeDrain, results.EventNodeLost, results.EventWeightChange, results.EventTargetState:
		return true
	}
	return false
}

// cause describes a failure window: the dominant failure kind in words,
// the mix when there is more than one, and how long after the last
// disruptive event before it the first failure came.
func cause(r *results.Result, f *results.Failure, kinds map[string]int64) string {
	ranked := rankKeys(kinds)
	if len(ranked) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(kindCause(ranked[0]))
	if len(ranked) > 1 {
		parts := make([]string, 0, len(ranked))
		for i, k := range ranked {
			if i == 4 {
				parts = append(parts, "…")
				break
			}
			parts = append(parts, fmt.Sprintf("%s ×%d", k, kinds[k]))
		}
		fmt.Fprintf(&b, " (mix: %s)", strings.Join(parts, ", "))
	}
	if e := startingEvent(r, f, func(e *results.Event) bool { return disruptive(e.Kind) && e.Source != "analyze" }); e != nil {
		b.WriteString("; " + relate(f, e) + " " + describe(e))
	}
	return b.String()
}

// startingEvent returns the last event that passes ok from the window's
// events, up to slack into the window: requests in flight when a pod is
// killed started in the bucket before, so the window can begin a bucket or
// two before the event that caused it.
func startingEvent(r *results.Result, f *results.Failure, ok func(*results.Event) bool) *results.Event {
	slack := max(2*r.BucketMS, 2000)
	var last *results.Event
	for _, i := range f.Events {
		if i < 0 || i >= len(r.Events) {
			continue
		}
		e := &r.Events[i]
		if ok(e) && e.AtMS <= f.StartMS+slack {
			last = e
		}
	}
	return last
}

// relate says when failures began relative to an event.
func relate(f *results.Failure, e *results.Event) string {
	if d := f.StartMS - e.AtMS; d >= 0 {
		return fmt.Sprintf("failures began %.1f s after", float64(d)/1000)
	}
	return fmt.Sprintf("failures began within %.1f s of", float64(e.AtMS-f.StartMS)/1000)
}

func describe(e *results.Event) string {
	s := e.Kind
	if e.Object != "" {
		s += " " + e.Object
	}
	if e.Message != "" {
		s += " (" + e.Message + ")"
	}
	return s
}
