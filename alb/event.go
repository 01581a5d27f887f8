package alb

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Event kinds.
const (
	EventListening    = "listening"    // the listener and admin API are up
	EventRegistered   = "registered"   // the data plane registered a target
	EventTargetState  = "target_state" // a target's health state changed
	EventDraining     = "draining"     // the data plane began a target's deregistration
	EventDeregistered = "deregistered" // a target's deregistration delay ended
	EventRule         = "rule"         // a rule's forward action changed
	EventHealthCheck  = "health_check" // a target group's health check changed
	EventAttributes   = "attributes"   // a target group's attributes changed
	EventFault        = "fault"        // a network fault was set or cleared
	EventAccessLogErr = "access_log"   // writing the access log failed
	EventStopping     = "stopping"     // the load balancer is shutting down
)

// Event is one progress event of a load balancer: a kind, a sentence for
// people (Msg) and the same facts as fields for machines. Empty fields are
// left out of JSON.
type Event struct {
	Time time.Time `json:"time"`
	Kind string    `json:"event"`
	Msg  string    `json:"msg"`
	// TargetGroup and Target (ip:port) name what the event is about.
	TargetGroup string `json:"target_group,omitempty"`
	Target      string `json:"target,omitempty"`
	// State, PreviousState and Reason describe a target_state change
	// (Reason is the ELB reason code, e.g. Target.Timeout).
	State         string `json:"state,omitempty"`
	PreviousState string `json:"previous_state,omitempty"`
	Reason        string `json:"reason,omitempty"`
	// InFlight is the number of requests in flight on the target (draining,
	// deregistered).
	InFlight *int64 `json:"in_flight,omitempty"`
	// Delay is the deregistration delay (draining), a Go duration.
	Delay string `json:"delay,omitempty"`
	// Priority and Forward describe a rule change (Forward: "stable=90, canary=10").
	Priority int    `json:"priority,omitempty"`
	Forward  string `json:"forward,omitempty"`
	// Address and Fault describe a fault change.
	Address string `json:"address,omitempty"`
	Fault   string `json:"fault,omitempty"`
	// Listen and Admin are the bound addresses (listening).
	Listen string `json:"listen,omitempty"`
	Admin  string `json:"admin,omitempty"`
	// Error is the error of a failure event.
	Error string `json:"error,omitempty"`
}

func int64p(n int64) *int64 { return &n }

// emit sends ev to Options.OnEvent and its sentence to Options.Logf.
func (lb *LoadBalancer) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if lb.onEvent != nil {
		lb.onEvent(ev)
	}
	if lb.logfFn != nil {
		lb.logfFn("%s", ev.Msg)
	}
}

// ProgressLogger returns an Options.OnEvent that writes one line per event
// to w: as text ("15:04:05.000 sentence") or as one JSON object per line
// with the event's fields ({"time","event","msg","target_group","target",
// "state","reason",...}). It is safe for concurrent use.
func ProgressLogger(w io.Writer, format string) (func(Event), error) {
	if format != "text" && format != "json" {
		return nil, fmt.Errorf("alb: -o %q: want text or json", format)
	}
	var mu sync.Mutex
	return func(ev Event) {
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		ev.Time = ev.Time.UTC()
		mu.Lock()
		defer mu.Unlock()
		if format == "json" {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "%s\n", b)
			return
		}
		fmt.Fprintf(w, "%s %s\n", ev.Time.Format("15:04:05.000"), strings.TrimSpace(ev.Msg))
	}, nil
}
