package drain

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// tracker follows every connection through http.Server.ConnState and every
// request through the handler wrapper, so that the drain knows the moment the
// last request completed instead of polling like http.Server.Shutdown.
type tracker struct {
	mu       sync.Mutex
	conns    map[net.Conn]connInfo
	active   int // connections in StateActive
	inFlight int // handlers running
	changed  chan struct{}
	// draining makes closes count as retired connections, except for the
	// connections in forced, which were active when the server closed
	// them by force.
	draining bool
	forced   map[net.Conn]bool

	retired, served int64
}

type connInfo struct {
	state http.ConnState
	since time.Time
}

func newTracker() *tracker {
	return &tracker{conns: make(map[net.Conn]connInfo), changed: make(chan struct{})}
}

// notifyLocked wakes every waiter. Callers hold t.mu.
func (t *tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// connState is installed as (part of) http.Server.ConnState.
func (t *tracker) connState(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, known := t.conns[c]
	if known && old.state == http.StateActive {
		t.active--
	}
	switch st {
	case http.StateNew, http.StateIdle:
		t.conns[c] = connInfo{state: st, since: time.Now()}
	case http.StateActive:
		t.conns[c] = connInfo{state: st, since: time.Now()}
		t.active++
	case http.StateHijacked, http.StateClosed:
		if !known {
			return
		}
		delete(t.conns, c)
		if st == http.StateClosed && t.draining && !t.forced[c] {
			t.retired++
		}
		delete(t.forced, c)
	}
	t.notifyLocked()
}

// requestStarted records a running handler and reports whether the server
// is draining, in which case the request counts as served while draining.
func (t *tracker) requestStarted(draining bool) {
	t.mu.Lock()
	t.inFlight++
	if draining {
		t.served++
	}
	t.mu.Unlock()
}

func (t *tracker) requestDone() {
	t.mu.Lock()
	t.inFlight--
	t.notifyLocked()
	t.mu.Unlock()
}

func (t *tracker) setDraining() {
	t.mu.Lock()
	t.draining = true
	t.mu.Unlock()
}

// snapshot is a consistent view of the counters.
type snapshot struct {
	open, active, inFlight int
	retired, served        int64
}

func (t *tracker) snapshot() snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return snapshot{open: len(t.conns), active: t.active, inFlight: t.inFlight, retired: t.retired, served: t.served}
}

// busy reports whether a request is still running or a connection still
// carries one, and returns the channel that is closed on the next change.
// Idle and new connections do not count: once http.Server.Shutdown started,
// net/http closes them or drops the request they deliver.
func (t *tracker) busy() (bool, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active > 0 || t.inFlight > 0, t.changed
}

// forceClosing tells how many requests and connections a forced close
// cuts, and marks the active connections so that their close does not count
// as retired.
func (t *tracker) forceClosing() (requests, conns int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forced = make(map[net.Conn]bool)
	for c, ci := range t.conns {
		if ci.state == http.StateActive {
			t.forced[c] = true
		}
	}
	return t.inFlight, t.active
}

// waitClosed waits up to d for every tracked connection to report
// StateClosed (net/http reports it from the connection's goroutine, after
// Server.Close returned).
func (t *tracker) waitClosed(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		t.mu.Lock()
		n, changed := len(t.conns), t.changed
		t.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		}
	}
}
