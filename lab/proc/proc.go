// Package proc starts and stops the lab's child processes so that none
// outlives the lab: each child gets its own process group (so a signal
// reaches everything it started) and a parent-death signal (so it is
// SIGKILLed by the kernel if the lab process dies, even by SIGKILL).
package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Spec describes a process to start.
type Spec struct {
	Path string
	Args []string // without argv[0]
	Env  []string
	Dir  string
	// Output receives stdout and stderr; nil discards them.
	Output io.Writer
}

// Process is a running child.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	state *os.ProcessState
	err   error
}

// Start starts spec in a new process group with a parent-death SIGKILL.
func Start(spec Spec) (*Process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	if spec.Output != nil {
		cmd.Stdout, cmd.Stderr = spec.Output, spec.Output
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.state, p.err = cmd.ProcessState, err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process only (as a container runtime signals
// PID 1), unless it has exited.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to %d: %w", sig, p.Pid(), err)
	}
	return nil
}

// KillGroup SIGKILLs the whole process group.
func (p *Process) KillGroup() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
}

// ExitCode is the exit status once Done is closed: the code, or 128+signal
// for a process ended by a signal (as a container runtime reports it).
func (p *Process) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return -1
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return p.state.ExitCode()
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs the group; it
// returns once the process is gone.
func (p *Process) Stop(grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	p.KillGroup()
	<-p.done
}
