package manifest

import "time"

// ContainerStop is when the kubelet acts on one container of a pod being
// deleted, in time since the delete.
type ContainerStop struct {
	Container *Container `json:"-"`
	Name      string     `json:"name"`
	// Sidecar is true for a native sidecar (an init container with
	// restartPolicy: Always): its preStop hook runs from the delete like
	// every other, but its SIGTERM waits for its Turn.
	Sidecar bool `json:"sidecar,omitempty"`
	// PreStopStart is when its preStop hook starts (or SIGTERM, without
	// one): the delete, for every container, native sidecars included.
	PreStopStart time.Duration `json:"preStopStart"`
	// HookKnown is false when the hook's duration cannot be read; it is
	// then counted as returning at once.
	HookKnown bool `json:"hookKnown"`
	// HookFails is true for an exec hook the image cannot run (no shell
	// or sleep binary): it returns at once.
	HookFails bool `json:"hookFails,omitempty"`
	// Turn is, for a native sidecar, when the containers it waits for
	// have exited (every main container, then the native sidecar declared
	// right after it), capped at the grace period: its SIGTERM waits for
	// this as well as for its own preStop hook. It is 0 for a main
	// container, which waits for nothing.
	Turn time.Duration `json:"turn,omitempty"`
	// SIGTERM is when its main process gets SIGTERM (or STOPSIGNAL).
	SIGTERM time.Duration `json:"sigterm"`
	// StopsAccepting is when it stops taking new connections: SIGTERM plus
	// its ZERODROP_SHUTDOWN_DELAY, or earlier when its preStop stops the
	// server. A process that declares nothing stops at SIGTERM.
	StopsAccepting time.Duration `json:"stopsAccepting"`
	// Exit is when it is gone: StopsAccepting plus the time given to
	// finish what is in flight, or SIGKILL.
	Exit time.Duration `json:"exit"`
	// Kill is when the kubelet sends SIGKILL if it still runs: the end of
	// the grace period, but never less than 2 s after SIGTERM.
	Kill time.Duration `json:"kill"`
}

// TerminationSchedule computes, for every container of the pod, when the
// kubelet runs its preStop hook, sends SIGTERM and SIGKILL after a delete,
// as the kubelet's killContainersWithSyncResult and terminationOrdering
// (pkg/kubelet/kuberuntime, v1.34) do. Every container is stopped at once:
// every preStop hook starts at the delete, main containers and native
// sidecars alike, and the grace period counts from the delete (a hook
// still running at its end is given up on). A main container gets SIGTERM
// when its hook returns. A native sidecar, once its hook has returned,
// waits for its turn — every main container exited, then the native
// sidecar declared right after it exited (so they go in reverse order of
// the spec) — and then gets SIGTERM. No SIGTERM comes later than the end
// of the grace period, and SIGKILL comes at that end but never less than
// PreStopGraceExtension (2 s) after SIGTERM. finish is how long a process
// takes, after it stops accepting, to finish what it has in flight (for
// example the longest request); ZERODROP_SHUTDOWN_TIMEOUT bounds it. The
// result lists the main containers in spec order, then the native
// sidecars in reverse spec order.
func (p *Pod) TerminationSchedule(finish time.Duration) []ContainerStop {
	grace := p.TerminationGracePeriod.Value
	out := make([]ContainerStop, 0, len(p.Containers)+len(p.Sidecars))
	mainExit := time.Duration(0)
	for _, c := range p.Containers {
		s := containerStop(c, 0, grace, finish)
		mainExit = max(mainExit, s.Exit)
		out = append(out, s)
	}
	turn := mainExit
	for i := len(p.Sidecars) - 1; i >= 0; i-- {
		s := containerStop(p.Sidecars[i], turn, grace, finish)
		s.Sidecar = true
		// The next sidecar (declared before this one) waits for the main
		// containers and for this one only.
		turn = max(mainExit, s.Exit)
		out = append(out, s)
	}
	return out
}

// containerStop schedules one container whose preStop hook starts at the
// delete and whose SIGTERM also waits until turn.
func containerStop(c *Container, turn, grace, finish time.Duration) ContainerStop {
	s := ContainerStop{Container: c, Name: c.Name, HookKnown: true}
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
	}
	s.Turn = min(turn, grace)
	s.SIGTERM = min(max(hook, turn), grace)
	s.Kill = max(grace, s.SIGTERM+PreStopGraceExtension)
	app := c.App
	immediate := app.Shutdown != nil && app.Shutdown.Value != "graceful"
	delay := time.Duration(0)
	if app.ShutdownDelay != nil && !immediate {
		delay = app.ShutdownDelay.Value
	}
	s.StopsAccepting = min(s.SIGTERM+delay, s.Kill)
	if stop != nil {
		at := stop.At
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
