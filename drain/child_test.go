package drain_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"zerodrop.dev/zerodrop/drain"
)

// The test binary doubles as the backend server: with childEnv set,
// TestMain runs a server in that mode instead of the tests, so that tests
// can send it real signals.
const childEnv = "ZERODROP_DRAIN_TEST_CHILD"

// childNoForceEnv, when set, turns WithForceOnSecondSignal off in the child.
const childNoForceEnv = "ZERODROP_DRAIN_TEST_NOFORCE"

// Child modes.
const (
	modeDrain    = "drain"    // drain.Server, configured from the environment
	modeExit     = "exit"     // os.Exit at SIGTERM
	modeShutdown = "shutdown" // http.Server.Shutdown at SIGTERM, no delay
)

// Child exit codes.
const (
	exitClean  = 0
	exitError  = 1
	exitForced = 3
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// childMux is the application of every child: "/" answers quickly, "/slow"
// sleeps ?d= (or until the request is cancelled), health at /healthz.
func childMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(200 * time.Microsecond) // some work, so requests overlap
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(d):
			io.WriteString(w, "slow ok")
		case <-r.Context().Done():
		}
	})
	return mux
}

func runChild(mode string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return exitError
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	mux := childMux()
	switch mode {
	case modeDrain:
		s := drain.New(&http.Server{Handler: mux},
			drain.WithHealthPath("/healthz"), drain.WithPreStopPath("/prestop"),
			drain.WithReadyOnListen(), drain.WithLogger(log), drain.WithHookTimeout(time.Second),
			drain.WithForceOnSecondSignal(os.Getenv(childNoForceEnv) == ""))
		reg := prometheus.NewRegistry()
		reg.MustRegister(s.Collector())
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		fmt.Printf("LISTEN %s\n", ln.Addr())
		err := s.Serve(context.Background(), ln)
		b, _ := json.Marshal(s.Report())
		fmt.Printf("REPORT %s\n", b)
		switch {
		case err == nil:
			return exitClean
		case errors.Is(err, drain.ErrForced):
			fmt.Fprintln(os.Stderr, "child:", err)
			return exitForced
		default:
			fmt.Fprintln(os.Stderr, "child:", err)
			return exitError
		}
	case modeExit, modeShutdown:
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
		srv := &http.Server{Handler: mux}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			<-sig
			if mode == modeExit {
				os.Exit(exitClean)
			}
			srv.Shutdown(context.Background())
			close(done)
		}()
		fmt.Printf("LISTEN %s\n", ln.Addr())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return exitError
		}
		<-done
		return exitClean
	}
	fmt.Fprintln(os.Stderr, "child: unknown mode", mode)
	return exitError
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	addr   string
	done   chan struct{} // closed after exit
	code   int
	report drain.Report
	gotRep bool
	stderr *lockedBuf
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild runs the test binary as a server in mode with extra env.
func startChild(t *testing.T, mode string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + mode}, env...)...)
	c := &child{cmd: cmd, done: make(chan struct{}), stderr: &lockedBuf{}}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "LISTEN "); ok {
				listening <- a
			}
			if rep, ok := strings.CutPrefix(line, "REPORT "); ok {
				if json.Unmarshal([]byte(rep), &c.report) == nil {
					c.gotRep = true
				}
			}
		}
		cmd.Wait()
		c.code = cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("child %s stderr:\n%s", mode, c.stderr.String())
		}
	})
	select {
	case c.addr = <-listening:
	case <-c.done:
		t.Fatalf("child %s exited before listening: %s", mode, c.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("child %s did not listen within 20s", mode)
	}
	if mode == modeDrain {
		// Ready is set after the signal handler is installed, so a signal
		// sent from now on is handled, not fatal.
		waitFor(t, 10*time.Second, "child ready", func() bool {
			resp, err := http.Get("http://" + c.addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	return c
}

func (c *child) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling child: %v", err)
	}
}

// wait waits for the child's exit and returns its exit code.
func (c *child) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(d):
		t.Fatalf("child did not exit within %s", d)
		return -1
	}
}
