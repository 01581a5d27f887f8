package simulate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Config configures a Simulator.
type Config struct {
	// Cycle is the demand cycle (start from DefaultCycle).
	Cycle Cycle
	// Namespace holds the target, the load Deployment and the state
	// ConfigMap.
	Namespace string
	// Target is the app whose replicas follow the cycle; zero means
	// sessions only.
	Target Target
	// Scaler sets the target's replicas (a *ScaleClient; required with
	// Target).
	Scaler Scaler
	// Sessions sets the number of load sessions; nil means none.
	Sessions Sessions
	// State keeps the cycle's start and last step. Nil: a ConfigMap named
	// StateConfigMap through Client, or, without a name, memory only.
	State StateStore
	// Client reads and writes the state ConfigMap.
	Client kubernetes.Interface
	// StateConfigMap names the state ConfigMap in Namespace.
	StateConfigMap string
	// Clock is the simulator's clock (k8s.io/utils/clock); nil is the
	// real one.
	Clock clock.Clock
	// Duration ends Run after this long; 0 runs until ctx ends.
	Duration time.Duration
	// RetryInterval is the wait before retrying a step that failed
	// (default: a quarter of a step, at most 5 s); never past the next step.
	RetryInterval time.Duration
	// Events receives every event (called from Run's goroutine).
	Events func(Event)
	// Metrics, when set, is updated at every step.
	Metrics *Metrics
}

// EventKind is what an Event reports.
type EventKind string

// Event kinds.
const (
	// EventStart: a new cycle starts (no state was found).
	EventStart EventKind = "start"
	// EventResume: a cycle goes on from its stored state.
	EventResume EventKind = "resume"
	// EventStep: a step's replicas and sessions were applied.
	EventStep EventKind = "step"
	// EventError: applying a step or saving the state failed; it is retried.
	EventError EventKind = "error"
	// EventStop: Run returns (Duration passed or ctx ended).
	EventStop EventKind = "stop"
)

// Event is one progress report of a Simulator.
type Event struct {
	Time time.Time `json:"time"`
	Kind EventKind `json:"event"`
	// Point is the step applied (step events), failed (error events), or
	// the cycle's current step (start, resume, stop).
	Point Point `json:"point"`
	// Target is the app scaled, as RESOURCE.GROUP/NAME ("" without one).
	Target string `json:"target,omitempty"`
	// PrevReplicas is the app's replicas read before this step (-1 when
	// not read).
	PrevReplicas int32 `json:"prev_replicas"`
	// Skipped counts steps that passed without being applied (the
	// simulator was stopped or could not reach the API).
	Skipped int `json:"skipped,omitempty"`
	// Start is when the cycle's step 0 began.
	Start time.Time `json:"cycle_start"`
	// Error is what failed (error events).
	Error string `json:"error,omitempty"`
	// Detail is a note in words (for example that the cycle changed since
	// the state was written).
	Detail string `json:"detail,omitempty"`
}

// Simulator applies a Cycle's steps on a clock: at each step it sets the
// target's replicas through its scale subresource and the number of load
// sessions, and records the step in its state.
type Simulator struct {
	cfg   Config
	clock clock.Clock
	state StateStore
	retry time.Duration
}

// New checks cfg and returns a Simulator.
func New(cfg Config) (*Simulator, error) {
	if err := cfg.Cycle.Validate(); err != nil {
		return nil, fmt.Errorf("cycle: %w", err)
	}
	if !cfg.Target.IsZero() && cfg.Scaler == nil {
		return nil, errors.New("target set but no scaler")
	}
	if cfg.Target.IsZero() && cfg.Sessions == nil {
		return nil, errors.New("nothing to drive: set a target, sessions, or both")
	}
	if cfg.Duration < 0 {
		return nil, fmt.Errorf("duration %s: must not be negative", cfg.Duration)
	}
	s := &Simulator{cfg: cfg, clock: cfg.Clock, state: cfg.State, retry: cfg.RetryInterval}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	if s.state == nil {
		if cfg.StateConfigMap != "" {
			if cfg.Client == nil {
				return nil, fmt.Errorf("state configmap %s: no client", cfg.StateConfigMap)
			}
			s.state = &ConfigMapState{Client: cfg.Client, Namespace: cfg.Namespace, Name: cfg.StateConfigMap}
		} else {
			s.state = &MemoryState{}
		}
	}
	if s.retry <= 0 {
		s.retry = min(cfg.Cycle.Step/4, 5*time.Second)
	}
	return s, nil
}

// Cycle returns the simulator's cycle.
func (s *Simulator) Cycle() Cycle { return s.cfg.Cycle }

// Run applies the cycle until Duration passes or ctx ends, then returns
// nil. It resumes from the stored state: the step the clock is at is
// applied at once (again, if it was the last one applied: harmless). A
// step that fails is retried; only a state that cannot be read at the
// start is an error.
func (s *Simulator) Run(ctx context.Context) error {
	c := s.cfg.Cycle
	began := s.clock.Now()
	st, found, err := s.state.Load(ctx)
	if err != nil {
		return err
	}
	switch {
	case !found:
		st = State{Start: began, Step: -1, Cycle: c.String()}
		s.emit(Event{Kind: EventStart, Point: c.PointAt(0), Start: st.Start, PrevReplicas: -1})
	default:
		ev := Event{Kind: EventResume, Point: c.At(began.Sub(st.Start)), Start: st.Start, PrevReplicas: -1,
			Detail: fmt.Sprintf("last step applied %d", st.Step)}
		if st.Cycle != c.String() {
			ev.Detail += fmt.Sprintf("; the cycle changed (was %q), its start is kept", st.Cycle)
			st.Cycle = c.String()
		}
		s.emit(ev)
	}
	var deadline time.Time
	if s.cfg.Duration > 0 {
		deadline = began.Add(s.cfg.Duration)
	}
	applied := -1 // in this process: the stored step is applied again
	prev := -1.0
	for {
		now := s.clock.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			break
		}
		step := c.StepAt(now.Sub(st.Start))
		wait := st.Start.Add(time.Duration(step+1) * c.Step).Sub(now)
		if step != applied {
			p := c.PointAt(step)
			skipped := 0
			if last := max(applied, st.Step); last >= 0 && step > last+1 {
				skipped = step - last - 1
			}
			prevReplicas, err := s.apply(ctx, p, p.Demand < prev)
			if ctx.Err() != nil {
				break
			}
			if err != nil {
				s.cfg.Metrics.scaleError(err)
				s.emit(Event{Kind: EventError, Point: p, Start: st.Start, PrevReplicas: prevReplicas, Skipped: skipped, Error: err.Error()})
				wait = min(wait, s.retry)
			} else {
				applied, prev = step, p.Demand
				s.cfg.Metrics.step(p)
				s.emit(Event{Kind: EventStep, Point: p, Start: st.Start, PrevReplicas: prevReplicas, Skipped: skipped})
				st.Step = step
				if err := s.state.Save(ctx, st); err != nil && ctx.Err() == nil {
					s.cfg.Metrics.stateError()
					s.emit(Event{Kind: EventError, Point: p, Start: st.Start, PrevReplicas: -1, Error: err.Error(),
						Detail: "the step was applied; a restart applies it again"})
				}
			}
		}
		if !deadline.IsZero() {
			wait = min(wait, deadline.Sub(now))
		}
		if !s.sleep(ctx, wait) {
			break
		}
	}
	s.emit(Event{Kind: EventStop, Point: c.At(s.clock.Now().Sub(st.Start)), Start: st.Start, PrevReplicas: -1,
		Detail: fmt.Sprintf("last step applied %d", st.Step)})
	return nil
}

// sleep waits d on the simulator's clock; false when ctx ended.
func (s *Simulator) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// apply sets one point: when demand falls the load shrinks before the app,
// otherwise the app grows before the load. It returns the app's replicas
// read before the change (-1 when not read).
func (s *Simulator) apply(ctx context.Context, p Point, falling bool) (int32, error) {
	prev := int32(-1)
	app := func() error {
		if s.cfg.Target.IsZero() {
			return nil
		}
		have, err := s.cfg.Scaler.Replicas(ctx, s.cfg.Namespace, s.cfg.Target)
		if err != nil {
			return &stepError{what: "app", err: err}
		}
		prev = have
		if have == int32(p.Replicas) {
			return nil
		}
		if err := s.cfg.Scaler.SetReplicas(ctx, s.cfg.Namespace, s.cfg.Target, int32(p.Replicas)); err != nil {
			return &stepError{what: "app", err: err}
		}
		return nil
	}
	load := func() error {
		if s.cfg.Sessions == nil {
			return nil
		}
		if err := s.cfg.Sessions.SetSessions(ctx, p.Sessions); err != nil {
			return &stepError{what: "sessions", err: fmt.Errorf("setting %d sessions: %w", p.Sessions, err)}
		}
		return nil
	}
	first, second := app, load
	if falling {
		first, second = load, app
	}
	if err := first(); err != nil {
		return prev, err
	}
	return prev, second()
}

// stepError says which half of a step failed (for the error metric).
type stepError struct {
	what string // app or sessions
	err  error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func (s *Simulator) emit(ev Event) {
	if s.cfg.Events == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = s.clock.Now()
	}
	if !s.cfg.Target.IsZero() {
		ev.Target = s.cfg.Target.String()
	}
	s.cfg.Events(ev)
}
