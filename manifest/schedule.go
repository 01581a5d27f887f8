package manifest

import "time"

// ContainerStop is when the kubelet acts on one container of a pod being
// deleted, in time since the delete.
type ContainerStop struct {
	Container *Container `json:"-"`
	Name      string     `json:"name"`
	// Sidecar is true for a native sidecar (an init container with
	// restartPolicy: Always): it stops after the main containers.
	Sidecar bool `json:"sidecar,omitempty"`
	// PreStopStart is when its preStop hook starts (or SIGTERM, without one).
	PreStopStart time.Duration `json:"preStopStart"`
	// HookKnown is false when the hook's duration cannot be read; it is
	// then counted as returning at once.
	HookKnown bool `json:"hookKnown"`
	// HookFails is true for an exec hook the image cannot run (no shell
	// or sleep binary): it returns at once.
	HookFails bool `json:"hookFails,omitempty"`
	// SIGTERM is when its main process gets SIGTERM (or STOPSIGNAL).
	SIGTERM time.Duration `json:"sigterm"`
	// StopsAccepting is when it stops taking new connections: SIGTERM plus
	// its ZERODROP_SHUTDOWN_DELAY, or earlier when its preStop stops the
	// server. A process that declares nothing stops at SIGTERM.
	StopsAccepting time.Duration `json:"stopsAccepting"`
	// Exit is when it is gone: StopsAccepting plus the time given to
	// finish what is in flight, or SIGKILL.
	Exit time.Duration `json:"exit"`
	// Kill is when the kubelet sends SIGKILL if it still runs.
	Kill time.Duration `json:"kill"`
}

// TerminationSchedule computes, for every container of the pod, when the
// kubelet runs its preStop hook, sends SIGTERM and SIGKILL after a delete:
// the main containers all at once (hook, then SIGTERM; the grace period
// counts from the delete, and a hook still running at its end gets a
// one-off 2 s extension); then, once every main container has exited, the
// native sidecars one after the other in reverse order of the spec, within
// what is left of the grace period. finish is how long a process takes,
// after it stops accepting, to finish what it has in flight (for example
// the longest request); ZERODROP_SHUTDOWN_TIMEOUT bounds it.
func (p *Pod) TerminationSchedule(finish time.Duration) []ContainerStop {
	grace := p.TerminationGracePeriod.Value
	var out []ContainerStop
	mainExit := time.Duration(0)
	for _, c := range p.Containers {
		s := containerStop(c, 0, grace, finish)
		mainExit = max(mainExit, s.Exit)
		out = append(out, s)
	}
	start := mainExit
	for i := len(p.Sidecars) - 1; i >= 0; i-- {
		s := containerStop(p.Sidecars[i], start, grace, finish)
		s.Sidecar = true
		start = s.Exit
		out = append(out, s)
	}
	return out
}

func containerStop(c *Container, start, grace, finish time.Duration) ContainerStop {
	s := ContainerStop{Container: c, Name: c.Name, PreStopStart: start, HookKnown: true}
	kill := grace
	var hook time.Duration
	var stop *Step
	if ps := c.PreStop; ps != nil {
		switch {
		case (ps.NeedsShell || ps.NeedsSleep) && !ImageShellOf(c.Image.Value).HasShell:
			s.HookFails = true
		case ps.Known:
			hook = ps.Duration.Value
			stop = ps.StopsServer()
		default:
			s.HookKnown = false
		}
		if start+hook >= grace {
			kill = grace + PreStopGraceExtension
		}
	}
	s.Kill = max(kill, start)
	s.SIGTERM = min(start+hook, max(grace, start))
	app := c.App
	immediate := app.Shutdown != nil && app.Shutdown.Value != "graceful"
	delay := time.Duration(0)
	if app.ShutdownDelay != nil && !immediate {
		delay = app.ShutdownDelay.Value
	}
	s.StopsAccepting = min(s.SIGTERM+delay, s.Kill)
	if stop != nil {
		at := start + stop.At
		if stop.Graceful {
			at += delay
		}
		s.StopsAccepting = min(s.StopsAccepting, at)
	}
	f := finish
	if app.ShutdownTimeout != nil && !immediate {
		f = min(f, app.ShutdownTimeout.Value)
	}
	if immediate || stop != nil && !stop.Graceful {
		f = 0
	}
	s.Exit = min(s.StopsAccepting+f, s.Kill)
	return s
}
