package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The exit codes docs/commands.md lists for load are the ones a user gets.
func TestLoadExitCodes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()

	// Nothing measured: every request refused, with --verify too.
	r := zerodrop(t, "", "load", "--url", refused, "--workload", "orders", "--concurrency", "2", "--duration", "300ms", "--verify")
	if r.code != 1 || !strings.Contains(r.stderr, "--min-successes") {
		t.Errorf("refused everything: exit %d, stderr %q; want 1 naming --min-successes", r.code, r.stderr)
	}
	// ... unless the user asked otherwise.
	r = zerodrop(t, "", "load", "--url", refused, "--concurrency", "1", "--duration", "300ms", "--min-successes", "0")
	if r.code != 0 {
		t.Errorf("--min-successes 0: exit %d, stderr %q", r.code, r.stderr)
	}
	// Output paths are checked before the run; marks must lie in the run.
	for _, args := range [][]string{
		{"--out", "/nonexistent-dir/r.json"},
		{"--mark", "late@5s"},
		{"--metrics-addr", "127.0.0.1:99999"},
	} {
		r = zerodrop(t, "", append([]string{"load", "--url", refused, "--concurrency", "1", "--duration", "1s"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming the flag", args, r.code, r.stderr)
		}
	}
}

// Ctrl-C prints the summary and exits 130 (128 + SIGINT), also when a gate
// would have failed; SIGTERM exits 143.
func TestLoadInterruptedExitStatus(t *testing.T) {
	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		// The server announces the run's first request: the test signals
		// only once the process runs its load (its signal handler is
		// installed before any request goes out), however slowly a loaded
		// machine starts it. One server per run, so no request of an
		// earlier run is taken for this one's.
		seen := make(chan struct{}, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case seen <- struct{}{}:
			default:
			}
			w.WriteHeader(503)
		}))
		defer srv.Close()
		cmd := exec.Command(binary, "load", "--url", srv.URL, "--rate", "50", "--duration", "1m", "--max-errors", "0")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-seen:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v: load sent no request within 30 s", sig)
		}
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: load did not exit", sig)
		}
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != want || !strings.Contains(out.String(), "requests ") {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q", sig, code, want, out.String(), errb.String())
		}
	}
}
