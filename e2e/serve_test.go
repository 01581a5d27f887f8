package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveOptions are the flags of one `zerodrop serve` process.
type serveOptions struct {
	addr     string // ip:port to listen on
	db       string // sqlite:PATH, shared by every process of a scenario
	shutdown string // graceful | immediate | unwaited
	work     string // --work
	delay    time.Duration
	timeout  time.Duration
}

// serveProc is a running `zerodrop serve` child process (a "pod").
type serveProc struct {
	name    string
	addr    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	state   *os.ProcessState
	waitErr error
}

// startServe starts a serve process with its log in a file under dir. The
// process is killed at cleanup if it is still running, and its log is
// shown when the test failed.
func startServe(t *testing.T, dir, name string, o serveOptions) *serveProc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("creating the log of %s: %v", name, err)
	}
	cmd := exec.Command(zerodropBin, "serve",
		"--addr", o.addr, "--db", o.db, "--shutdown", o.shutdown, "--work", o.work,
		"--shutdown-delay", o.delay.String(), "--shutdown-timeout", o.timeout.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &serveProc{name: name, addr: o.addr, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		p.state = cmd.ProcessState
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of %s (%s):\n%s", name, o.addr, tail(string(b), 40))
		}
	})
	return p
}

// cleanEnv is the test's environment without ZERODROP_* variables, so the
// flags alone configure the child.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZERODROP_") {
			env = append(env, kv)
		}
	}
	return env
}

// exited reports whether the process has exited.
func (p *serveProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *serveProc) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("sending %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// wait waits until the process exits or ctx ends, and returns its exit
// code (-1 when a signal killed it).
func (p *serveProc) wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
		return p.state.ExitCode(), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for %s to exit: %w", p.name, ctx.Err())
	}
}

// waitReady polls the process's readiness endpoint until it answers 200.
func (p *serveProc) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	url := "http://" + p.addr + "/logistics/health"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("building the readiness request for %s: %w", p.name, err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v)", p.name, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to be ready at %s: %w (last error %v)", p.name, url, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr picks a free TCP port on ip by listening on port 0 and closing
// the listener again.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("finding a free port on %s: %v", ip, err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("closing the probe listener on %s: %v", addr, err)
	}
	return addr
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
