package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/orders/service"
)

const envChild = "ZERODROP_SERVICE_TEST_CHILD"

// TestMain doubles as the service process: with envChild set, the test
// binary runs service.Run configured from the environment, like
// `zerodrop serve` does.
func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		cfg, err := service.Load(os.LookupEnv, service.Flags{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := service.Run(context.Background(), cfg, service.NewLogger(cfg.LogFormat, os.Stderr)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(service.ExitCode(err))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is a running service subprocess.
type proc struct {
	cmd   *exec.Cmd
	addr  string
	mu    sync.Mutex
	lines []map[string]any
	done  chan struct{}
	err   error
}

func start(t *testing.T, env ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", "ZERODROP_ADDR=127.0.0.1:0", "ZERODROP_LOG_FORMAT=json",
		"ZERODROP_DB=sqlite:"+filepath.Join(t.TempDir(), "orders.db"))
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = map[string]any{"msg": sc.Text()}
			}
			p.mu.Lock()
			p.lines = append(p.lines, m)
			p.mu.Unlock()
			if m["msg"] == "serve: started" {
				started <- m["addr"].(string)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.addr = <-started:
	case <-p.done:
		t.Fatalf("service exited before listening: %v\n%v", p.err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("service did not start:\n%v", p.log())
	}
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.lines {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func (p *proc) line(msg string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

func (p *proc) wait(t *testing.T, within time.Duration) (exitCode int, took time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("service still running after %v:\n%s", within, p.log())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		code = ee.ExitCode()
	} else if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return code, time.Since(start)
}

func (p *proc) signal(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

type result struct {
	status int
	err    error
}

// post sends a create on its own connection.
func post(p *proc) result {
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post("http://"+p.addr+"/logistics/orders", "application/json", strings.NewReader(`{"items":[{"sku":"A","quantity":1}]}`))
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return result{status: resp.StatusCode, err: err}
	}
	return result{status: resp.StatusCode}
}

func health(p *proc) (int, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + p.addr + service.HealthPath)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// inFlight starts n creates and returns once they are all being served
// (after the request has been sent and work has begun).
func inFlight(p *proc, n int) (results []result, wait func()) {
	results = make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = post(p) })
	}
	time.Sleep(150 * time.Millisecond) // well inside the work time
	return results, wg.Wait
}

// TestGracefulFinishesInFlight: with SIGTERM while requests are in flight
// (work 600ms), readiness fails at once, new requests are still served
// during the delay, every in-flight request completes, and the process
// exits 0.
func TestGracefulFinishesInFlight(t *testing.T) {
	t.Parallel()
	p := start(t, "ZERODROP_SHUTDOWN=graceful", "ZERODROP_WORK=600ms", "ZERODROP_SHUTDOWN_DELAY=300ms", "ZERODROP_SHUTDOWN_TIMEOUT=5s")
	if code, err := health(p); code != 200 {
		t.Fatalf("health before: %d %v", code, err)
	}
	results, wait := inFlight(p, 4)
	p.signal(t)
	time.Sleep(50 * time.Millisecond)
	if code, err := health(p); code != http.StatusServiceUnavailable {
		t.Errorf("health during the delay: %d %v; want 503", code, err)
	}
	late := post(p) // arrives during the delay: still served
	wait()
	for i, r := range results {
		if r.err != nil || r.status != http.StatusCreated {
			t.Errorf("in-flight request %d: %d %v", i, r.status, r.err)
		}
	}
	if late.err != nil || late.status != http.StatusCreated {
		t.Errorf("request during the delay: %d %v", late.status, late.err)
	}
	code, _ := p.wait(t, 10*time.Second)
	if code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, p.log())
	}
	exit := p.line("serve: exit")
	if exit == nil || exit["requests_cut"] != 0.0 || exit["served_while_draining"].(float64) < 1 {
		t.Errorf("exit summary %v\n%s", exit, p.log())
	}
}

// TestGracefulTimeoutCuts: work longer than delay+timeout is cut, and the
// exit code says so.
func TestGracefulTimeoutCuts(t *testing.T) {
	t.Parallel()
	p := start(t, "ZERODROP_SHUTDOWN=graceful", "ZERODROP_WORK=5s", "ZERODROP_SHUTDOWN_DELAY=100ms", "ZERODROP_SHUTDOWN_TIMEOUT=200ms")
	results, wait := inFlight(p, 2)
	p.signal(t)
	wait()
	for i, r := range results {
		if r.err == nil {
			t.Errorf("request %d outlived the timeout: %d", i, r.status)
		}
	}
	if code, _ := p.wait(t, 10*time.Second); code != service.ExitRequestsCut {
		t.Errorf("exit code %d, want %d after cutting requests\n%s", code, service.ExitRequestsCut, p.log())
	}
	if exit := p.line("serve: exit"); exit == nil || exit["requests_cut"] != 2.0 {
		t.Errorf("exit summary %v", exit)
	}
}

// TestAbruptModesCut: immediate and unwaited exit at once on SIGTERM and
// cut the requests in flight; readiness never reports 503 first.
func TestAbruptModesCut(t *testing.T) {
	for _, mode := range []string{"immediate", "unwaited"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := start(t, "ZERODROP_SHUTDOWN="+mode, "ZERODROP_WORK=3s", "ZERODROP_SHUTDOWN_DELAY=5s")
			results, wait := inFlight(p, 3)
			var (
				not200 []int
				polls  int
				stop   = make(chan struct{})
				polled = make(chan struct{})
			)
			go func() { // readiness until the process is gone
				defer close(polled)
				for {
					code, err := health(p)
					if err != nil {
						return
					}
					polls++
					if code != 200 {
						not200 = append(not200, code)
					}
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
					}
				}
			}()
			time.Sleep(20 * time.Millisecond)
			p.signal(t)
			code, took := p.wait(t, 5*time.Second)
			close(stop)
			<-polled
			wait()
			if code != 0 {
				t.Errorf("exit code %d\n%s", code, p.log())
			}
			if took > 2*time.Second {
				t.Errorf("took %v to exit; want at once (delay 5s must be ignored)", took)
			}
			for i, r := range results {
				if r.err == nil {
					t.Errorf("in-flight request %d completed with %d; %s must cut it", i, r.status, mode)
				}
			}
			if len(not200) > 0 || polls == 0 {
				t.Errorf("readiness answered %v (%d polls); want only 200 until exit", not200, polls)
			}
			if exit := p.line("serve: exit"); exit == nil || exit["requests_cut"] != 3.0 {
				t.Errorf("exit summary %v\n%s", exit, p.log())
			}
		})
	}
}

// TestBadStoreFails: a store that cannot be opened ends the process with an
// error instead of serving.
func TestBadStoreFails(t *testing.T) {
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$")
	dir := filepath.Join(t.TempDir(), "orders.db")
	if err := os.Mkdir(dir, 0o755); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), envChild+"=1", "ZERODROP_ADDR=127.0.0.1:0", "ZERODROP_DB=sqlite:"+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "open the order store") {
		t.Errorf("exit %v, output:\n%s", err, out)
	}
}

// A second signal during the drain forces the exit; the first one says so.
// With nothing in flight the exit status tells "forced, none cut" (130)
// from "requests cut" (3).
func TestSecondSignalForcesWithItsOwnStatus(t *testing.T) {
	t.Parallel()
	p := start(t, "ZERODROP_SHUTDOWN=graceful", "ZERODROP_SHUTDOWN_DELAY=30s")
	waitLine := func(msg string) {
		for deadline := time.Now().Add(10 * time.Second); p.line(msg) == nil && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitLine("drain: serving") // the signal handlers are installed
	p.signal(t)
	waitLine("drain: draining")
	p.signal(t)
	if code, _ := p.wait(t, 10*time.Second); code != service.ExitForcedNoneCut {
		t.Errorf("exit code %d, want %d\n%s", code, service.ExitForcedNoneCut, p.log())
	}
	hint := false
	for _, l := range strings.Split(p.log(), "\n") {
		if strings.Contains(l, "a second Ctrl-C") {
			hint = true
		}
	}
	if !hint {
		t.Errorf("the first signal did not say what a second one does:\n%s", p.log())
	}
}

// The broken modes log no delay or timeout they will not use.
func TestImmediateLogsNoDelay(t *testing.T) {
	t.Parallel()
	p := start(t, "ZERODROP_SHUTDOWN=immediate", "ZERODROP_SHUTDOWN_DELAY=15s")
	started := p.line("serve: started")
	if _, ok := started["delay"]; ok {
		t.Errorf("immediate mode logs a delay: %v", started)
	}
	if _, ok := started["timeout"]; ok {
		t.Errorf("immediate mode logs a timeout: %v", started)
	}
	p.signal(t)
	p.wait(t, 5*time.Second)
}

// Health and metrics take GET: a POST is 405, in graceful and broken modes.
func TestHealthAndMetricsRefusePost(t *testing.T) {
	for _, mode := range []string{"graceful", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := start(t, "ZERODROP_SHUTDOWN="+mode, "ZERODROP_SHUTDOWN_DELAY=0s")
			for _, path := range []string{service.HealthPath, service.LivenessPath, service.MetricsPath} {
				resp, err := http.Post("http://"+p.addr+path, "application/json", strings.NewReader("{}"))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
					t.Errorf("POST %s: %d (Allow %q), want 405", path, resp.StatusCode, resp.Header.Get("Allow"))
				}
			}
			p.signal(t)
			p.wait(t, 10*time.Second)
		})
	}
}

// idleClose sends one request on a keep-alive connection, then waits up to
// wait for the server to close the idle connection. It returns whether the
// server closed it and how long after the response it did.
func idleClose(t *testing.T, p *proc, wait time.Duration) (closed bool, after time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", service.LivenessPath, p.addr); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("liveness: status %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	idleFrom := time.Now()
	conn.SetReadDeadline(idleFrom.Add(wait))
	_, err = br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, 0
	}
	if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the idle connection: %v; want EOF (closed by the server) or a timeout", err)
	}
	return true, time.Since(idleFrom)
}

// TestIdleTimeoutClosesIdleConnections: the server closes a keep-alive
// connection idle longer than --idle-timeout (ZERODROP_IDLE_TIMEOUT), not
// before; with the default (75 s, above the ALB's 60 s) the same connection
// is still open after the short timeout would have closed it.
func TestIdleTimeoutClosesIdleConnections(t *testing.T) {
	const short = 300 * time.Millisecond
	p := start(t, service.EnvIdleTimeout+"="+short.String())
	if got := p.line("serve: started")["idle_timeout"]; got != short.String() {
		t.Errorf("start log idle_timeout = %v, want %s", got, short)
	}
	closed, after := idleClose(t, p, 20*time.Second)
	if !closed {
		t.Fatalf("idle timeout %s: the connection was still open after 20 s", short)
	}
	if after < short-50*time.Millisecond {
		t.Errorf("idle timeout %s: the server closed the connection after %s idle, before the timeout", short, after)
	}
	t.Logf("idle timeout %s: closed after %s idle", short, after.Round(time.Millisecond))

	def := start(t)
	if got := def.line("serve: started")["idle_timeout"]; got != "1m15s" {
		t.Errorf("default idle_timeout = %v, want 1m15s (the drain library's DefaultIdleTimeout)", got)
	}
	if closed, after := idleClose(t, def, 4*short); closed {
		t.Errorf("default idle timeout: the server closed an idle connection after %s", after)
	}
}
