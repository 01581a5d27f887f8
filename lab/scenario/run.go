package scenario

import (
	"context"
	"fmt"
	"time"
)

// Actions carries out the steps of a scenario on a running setup. The lab
// experiment implements it with the Kubernetes API and the lab's controls.
type Actions interface {
	// Scale sets the app's replicas through the scale subresource.
	Scale(ctx context.Context, replicas int) error
	// SetProfile replaces the demand cycle's profile.
	SetProfile(ctx context.Context, spec string) error
	// Rollout restarts the app's pods through its rollout strategy.
	Rollout(ctx context.Context) error
	// Drain cordons and drains node (or the busiest one) and returns the
	// node drained. It may return before the drain finishes.
	Drain(ctx context.Context, node string) (string, error)
	// KillNode makes node (or the busiest one) vanish and returns it.
	KillNode(ctx context.Context, node string) (string, error)
	// SetEnv sets environment variables on the app's container.
	SetEnv(ctx context.Context, env map[string]string) error
}

// Clock is the time source of Run (a fake one in tests).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Done is one step carried out, with its disruption window.
type Done struct {
	Step Step
	// Index is the step's position in the scenario.
	Index int
	// Start is when the action began; End closes its disruption window
	// (Start + the scaled window).
	Start, End time.Time
	// Detail is what the action chose (the node drained).
	Detail string
	// Err is the action's error; Run goes on with the next step.
	Err error
}

// Name describes the done step ("drain lab-node-2").
func (d Done) Name() string {
	if d.Detail != "" && (d.Step.Action == ActionDrain || d.Step.Action == ActionKillNode) {
		s := d.Step
		s.Node = d.Detail
		return s.Name()
	}
	return d.Step.Name()
}

// RunOptions tune Run.
type RunOptions struct {
	// TimeScale multiplies every time of the file (default 1).
	TimeScale float64
	// Clock is the time source (default the real one).
	Clock Clock
	// OnStep is called after each step with what happened.
	OnStep func(Done)
}

// Run carries out the steps of sc from start (the end of the warm-up),
// each at start + At·TimeScale, and returns when the last step is done
// or ctx ends. A failing action does not stop the scenario: it is
// reported through OnStep and the first one is returned at the end.
func Run(ctx context.Context, sc *Scenario, start time.Time, acts Actions, opts RunOptions) error {
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * opts.TimeScale) }
	var first error
	for i, st := range sc.Steps {
		due := start.Add(scale(st.At.D()))
		if wait := due.Sub(opts.Clock.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-opts.Clock.After(wait):
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		done := Done{Step: st, Index: i, Start: opts.Clock.Now()}
		done.End = done.Start.Add(scale(WindowOf(st)))
		switch st.Action {
		case ActionScale:
			done.Err = acts.Scale(ctx, st.Replicas)
		case ActionProfile:
			done.Err = acts.SetProfile(ctx, st.Profile)
		case ActionRollout:
			done.Err = acts.Rollout(ctx)
		case ActionDrain:
			done.Detail, done.Err = acts.Drain(ctx, st.Node)
		case ActionKillNode:
			done.Detail, done.Err = acts.KillNode(ctx, st.Node)
		case ActionEnv:
			done.Err = acts.SetEnv(ctx, st.Env)
		default:
			done.Err = fmt.Errorf("unknown action %q", st.Action)
		}
		if done.Err != nil {
			done.Err = fmt.Errorf("step %d (line %d, %s): %w", i, st.Line, st.Name(), done.Err)
			if first == nil {
				first = done.Err
			}
		}
		if opts.OnStep != nil {
			opts.OnStep(done)
		}
	}
	return first
}
