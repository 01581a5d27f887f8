package drain

// State is a step of the server lifecycle. It only moves forward:
// Starting -> Ready -> Draining -> Stopping -> Stopped (Ready may be skipped
// when the server is told to stop before it became ready).
type State int32

const (
	// Starting: the process runs but has not declared itself ready; the
	// readiness endpoint answers 503.
	Starting State = iota
	// Ready: SetReady was called (or the listeners were bound with
	// WithReadyOnListen); readiness answers 200.
	Ready
	// Draining: a signal, a context cancel or a preStop call arrived.
	// Readiness answers 503 at once, the listener keeps accepting and
	// serving, and every response carries "Connection: close" so that
	// keep-alive connections are retired by the client.
	Draining
	// Stopping: the delay is over. Listeners and idle connections are
	// closed, HTTP/2 connections get GOAWAY and in-flight requests run
	// until the timeout.
	Stopping
	// Stopped: every connection is closed and the shutdown hooks ran.
	Stopped
)

var stateNames = [...]string{"starting", "ready", "draining", "stopping", "stopped"}

// String returns the lower-case state name used in logs, JSON bodies and
// the state metric label.
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// allStates lists every state in lifecycle order.
var allStates = [...]State{Starting, Ready, Draining, Stopping, Stopped}
