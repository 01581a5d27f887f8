// Package labtest runs `zerodrop lab up` as a child process for tests and
// benchmarks that need a whole lab: it builds the binary once (or reuses
// ZERODROP_LAB_BIN), starts the lab, waits for its kubeconfig and stops it.
package labtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BinaryEnv names the variable that points at a built zerodrop binary (with
// the lab) to use instead of building one.
const BinaryEnv = "ZERODROP_LAB_BIN"

// Binary returns the zerodrop binary to run: $ZERODROP_LAB_BIN, or one
// built into dir (a cold build of the lab takes minutes; the Go build
// cache makes the next ones quick).
func Binary(dir string) (string, error) {
	if b := os.Getenv(BinaryEnv); b != "" {
		return b, nil
	}
	binary := filepath.Join(dir, "zerodrop")
	fmt.Fprintf(os.Stderr, "building zerodrop with the lab (set %s to reuse a build)\n", BinaryEnv)
	build := exec.Command("go", "build", "-o", binary, "zerodrop.dev/zerodrop/cmd/zerodrop")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building zerodrop: %w", err)
	}
	return binary, nil
}

// ReadyTimeout bounds how long Start waits for the lab's kubeconfig.
const ReadyTimeout = 120 * time.Second

// Lab is a running `zerodrop lab up`.
type Lab struct {
	// Dir is the lab's folder (--dir).
	Dir string
	// Kubeconfig is the path the lab printed once ready.
	Kubeconfig string
	// Startup is how long the lab took to be ready.
	Startup time.Duration
	// Cmd is the lab's process.
	Cmd *exec.Cmd

	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
}

// Start runs `binary lab up --dir dir args...` and returns once the lab
// prints its kubeconfig, or with the lab's output when it fails or is not
// ready within ReadyTimeout.
func Start(binary, dir string, args ...string) (*Lab, error) {
	started := time.Now()
	cmd := exec.Command(binary, append([]string{"lab", "up", "--dir", dir}, args...)...)
	l := &Lab{Dir: dir, Cmd: cmd, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(lockedWriter{l}, pw)
	cmd.Stderr = lockedWriter{l}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting lab up: %w", err)
	}
	go func() { _ = cmd.Wait(); pw.Close(); close(l.exited) }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if kc, ok := strings.CutPrefix(sc.Text(), "export KUBECONFIG="); ok {
				ready <- kc
				_, _ = io.Copy(io.Discard, pr)
				return
			}
		}
		ready <- ""
	}()
	select {
	case kc := <-ready:
		if kc == "" {
			<-l.exited
			return nil, fmt.Errorf("lab up failed:\n%s", l.Output())
		}
		l.Kubeconfig = kc
	case <-time.After(ReadyTimeout):
		_ = cmd.Process.Kill()
		<-l.exited
		return nil, fmt.Errorf("lab up not ready in %s:\n%s", ReadyTimeout, l.Output())
	}
	l.Startup = time.Since(started)
	return l, nil
}

// Output is what the lab printed so far (stdout and stderr).
func (l *Lab) Output() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.String()
}

// Exited is closed when the lab's process has exited.
func (l *Lab) Exited() <-chan struct{} { return l.exited }

// Stop asks the lab to tear down (SIGTERM) and kills it if it has not
// exited within 90 s.
func (l *Lab) Stop() {
	_ = l.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-time.After(90 * time.Second):
		_ = l.Cmd.Process.Kill()
		<-l.exited
	}
}

type lockedWriter struct{ l *Lab }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.out.Write(b)
}
