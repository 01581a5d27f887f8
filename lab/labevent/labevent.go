// Package labevent is the lab's own event stream: every step of a pod's
// life, a node's life and the control plane's, with the time it happened,
// so a timeline can be drawn from it later. Kubernetes Events carry the
// same steps for kubectl; this stream keeps sub-second times and typed
// fields.
package labevent

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Event is one step.
type Event struct {
	Time time.Time `json:"time"`
	// Source is the component that saw it: "kubelet/NODE", "lab", ...
	Source string `json:"source"`
	// Kind names the step: PodStarted, PreStopStarted, PreStopFinished,
	// SIGTERM, SIGKILL, ContainerExited, PodDeleted, NodeRegistered,
	// NodeLost, ...
	Kind string `json:"kind"`
	// Object is "namespace/name" of a pod, or a node's name.
	Object string `json:"object,omitempty"`
	// Container names the container when the step is a container's.
	Container string `json:"container,omitempty"`
	Message   string `json:"message,omitempty"`
	// Fields holds typed details (exit code, duration in seconds, ...).
	Fields map[string]any `json:"fields,omitempty"`
}

// Sink receives events. Implementations are safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// Discard drops every event.
type Discard struct{}

// Emit drops e.
func (Discard) Emit(Event) {}

// JSONLines writes one JSON object per line.
type JSONLines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSONLines writes events to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Emit writes e as one line; write errors are dropped (the stream is a
// record, not a control path).
func (j *JSONLines) Emit(e Event) {
	b, err := json.Marshal(e)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"kind":"EncodingError","message":%q}`, err.Error()))
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.w.Write(append(b, '\n'))
}

// Recorder keeps events in memory (for tests and for the lab's own reports).
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Emit appends e.
func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of what was recorded.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Tee sends every event to each sink.
type Tee []Sink

// Emit forwards e.
func (t Tee) Emit(e Event) {
	for _, s := range t {
		s.Emit(e)
	}
}
