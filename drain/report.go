package drain

import (
	"net"
	"time"
)

// Report tells what one lifecycle did. Server.Report returns it; it is
// complete once Serve returned. Durations marshal to JSON as nanoseconds.
type Report struct {
	// Trigger is what started the drain: "signal: terminated",
	// "context: context canceled", "prestop", ...
	Trigger string `json:"trigger"`
	// Delay and Timeout are the values in effect (after env resolution).
	Delay   time.Duration `json:"delay_ns"`
	Timeout time.Duration `json:"timeout_ns"`
	// DelayAfterTrigger is how long the server kept serving after the stop
	// signal or context cancel: the whole delay, or only the remainder when
	// a preStop call started the delay earlier (zero after a complete one).
	DelayAfterTrigger time.Duration `json:"delay_after_trigger_ns"`
	// ShutdownDuration runs from the end of the delay (listeners closing)
	// until every connection was closed.
	ShutdownDuration time.Duration `json:"shutdown_ns"`
	// DrainDuration runs from the start of the drain until every connection
	// was closed (hooks excluded).
	DrainDuration time.Duration `json:"drain_ns"`
	// ServedWhileDraining counts application requests that started after
	// the drain began (health and preStop requests excluded).
	ServedWhileDraining int64 `json:"served_while_draining"`
	// ConnsRetired counts connections closed gracefully during the drain:
	// by the client after "Connection: close", as idle connections after
	// the delay, or after their last response.
	ConnsRetired int64 `json:"connections_retired"`
	// RequestsCut counts requests still running when the server
	// force-closed its connections.
	RequestsCut int64 `json:"requests_cut"`
	// ConnsForceClosed counts active connections closed by force.
	ConnsForceClosed int64 `json:"connections_force_closed"`
	// Forced is true when the drain did not end on its own (Serve's error
	// wraps ErrForced); ForcedBySignal when a second signal did it.
	Forced         bool `json:"forced"`
	ForcedBySignal bool `json:"forced_by_signal"`
	// Hooks lists the OnShutdown hooks in the order they ran.
	Hooks []HookResult `json:"hooks,omitempty"`

	addr, adminAddr net.Addr
}

// HookResult is the outcome of one OnShutdown hook.
type HookResult struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	// Err is the hook's error text, empty on success.
	Err string `json:"error,omitempty"`
}
