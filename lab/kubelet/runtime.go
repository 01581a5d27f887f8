package kubelet

import (
	"context"
	"io"
	"syscall"

	"zerodrop.dev/zerodrop/lab/proc"
)

// ProcessSpec is a process to run for a container, an exec hook or an exec
// probe.
type ProcessSpec struct {
	Path string
	Argv []string // argv[0] included
	Env  []string
	Dir  string
	Log  io.Writer
}

// Process is a running container process.
type Process interface {
	Pid() int
	// Signal sends sig to the process itself (PID 1 of the container).
	Signal(sig syscall.Signal) error
	// Kill SIGKILLs the process and everything it started.
	Kill()
	Done() <-chan struct{}
	// ExitCode is valid once Done is closed (128+n for signal n).
	ExitCode() int
}

// Runtime starts processes. The real one runs them on this machine; tests
// use a fake.
type Runtime interface {
	Start(ctx context.Context, spec ProcessSpec) (Process, error)
}

// ProcessRuntime runs containers as child processes with their own process
// group and a parent-death signal.
type ProcessRuntime struct{}

// Start starts spec.
func (ProcessRuntime) Start(_ context.Context, spec ProcessSpec) (Process, error) {
	p, err := proc.Start(proc.Spec{Path: spec.Path, Args: spec.Argv[1:], Env: spec.Env, Dir: spec.Dir, Output: spec.Log})
	if err != nil {
		return nil, err
	}
	return procAdapter{p}, nil
}

type procAdapter struct{ *proc.Process }

func (p procAdapter) Kill() { p.KillGroup() }
