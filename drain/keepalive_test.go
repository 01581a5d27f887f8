package drain_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/drain"
)

// rawConn is one client keep-alive connection driven by hand, so the test
// sees exactly when the server closes it.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, br: bufio.NewReader(c)}
}

// do sends one request and reads the response.
func (r *rawConn) do(path string) (*http.Response, error) {
	r.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(r.c, "GET "+path+" HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, err
}

// closedWithin reports whether the server closes the idle connection within d.
func (r *rawConn) closedWithin(d time.Duration) bool {
	r.c.SetReadDeadline(time.Now().Add(d))
	_, err := r.br.ReadByte()
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestKeepAlivesOffClosesIdleAtOnce shows the failure mode: the usual
// SetKeepAlivesEnabled(false) at SIGTERM closes idle keep-alive connections
// immediately, racing with any request the load balancer is sending on them.
func TestKeepAlivesOffClosesIdleAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: okHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	rc := dialRaw(t, ln.Addr().String())
	if resp, err := rc.do("/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v", err)
	}
	srv.SetKeepAlivesEnabled(false)
	if !rc.closedWithin(2 * time.Second) {
		t.Fatal("SetKeepAlivesEnabled(false) did not close the idle connection")
	}
}

// TestIdleKeepAliveSurvivesDelay: during the delay the drain server keeps
// idle keep-alive connections open, answers a request that arrives on one,
// and retires it with Connection: close, so the client knows not to reuse
// it. After the delay the connection is closed.
func TestIdleKeepAliveSurvivesDelay(t *testing.T) {
	r := startServer(t, okHandler(), drain.WithDelay(400*time.Millisecond))
	rc := dialRaw(t, r.addr)
	if resp, err := rc.do("/"); err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("request before drain: resp=%v err=%v", resp, err)
	}
	idle := dialRaw(t, r.addr)
	if resp, err := idle.do("/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("request before drain: %v", err)
	}
	r.cancel()
	waitFor(t, time.Second, "draining", func() bool { return r.s.State() == drain.Draining })
	if rc.closedWithin(100 * time.Millisecond) {
		t.Fatal("idle keep-alive connection closed during the delay")
	}
	resp, err := rc.do("/")
	if err != nil {
		t.Fatalf("request on a kept-alive connection during the delay: %v", err)
	}
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("response during delay: %d close=%v, want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if !rc.closedWithin(2 * time.Second) {
		t.Fatal("connection not closed after the Connection: close response")
	}
	// The other idle connection is only closed once the delay is over.
	if !idle.closedWithin(3 * time.Second) {
		t.Fatal("idle connection still open after the drain")
	}
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if rep := r.s.Report(); rep.ConnsRetired != 2 || rep.ServedWhileDraining != 1 {
		t.Fatalf("ConnsRetired=%d ServedWhileDraining=%d, want 2 and 1", rep.ConnsRetired, rep.ServedWhileDraining)
	}
}

// blocker is a handler that holds requests until released.
type blocker struct {
	started chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.started <- struct{}{}
	select {
	case <-b.release:
		io.WriteString(w, "done")
	case <-r.Context().Done():
	}
}

func TestInFlightRequestFinishesAfterDelay(t *testing.T) {
	b := newBlocker()
	r := startServer(t, b, drain.WithDelay(100*time.Millisecond), drain.WithTimeout(5*time.Second))
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + r.addr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(body)
	}()
	<-b.started
	r.cancel()
	waitFor(t, 2*time.Second, "stopping", func() bool { return r.s.State() == drain.Stopping })
	// Listener closed, request still running.
	if _, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		t.Fatal("listener still accepts after the delay")
	}
	select {
	case err := <-r.errc:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(b.release)
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if body := <-got; body != "done" {
		t.Fatalf("in-flight request got %q, want done", body)
	}
	if rep := r.s.Report(); rep.RequestsCut != 0 || rep.Forced {
		t.Fatalf("report %+v, want no cut", rep)
	}
}

func TestDeadlineCutsRequests(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	const timeout = 200 * time.Millisecond
	r := startServer(t, b, drain.WithDelay(50*time.Millisecond), drain.WithTimeout(timeout))
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + r.addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	<-b.started
	start := time.Now()
	r.cancel()
	err := r.wait(t, 5*time.Second)
	if !errors.Is(err, drain.ErrForced) {
		t.Fatalf("Serve = %v, want ErrForced", err)
	}
	if took := time.Since(start); took < 50*time.Millisecond+timeout {
		t.Fatalf("Serve returned after %s, before delay+timeout", took)
	}
	rep := r.s.Report()
	if rep.RequestsCut != 1 || rep.ConnsForceClosed != 1 || !rep.Forced || rep.ForcedBySignal {
		t.Fatalf("report %+v, want 1 request cut by the timeout", rep)
	}
	if err := <-got; err == nil {
		t.Fatal("cut request succeeded")
	}
}

func TestServeTwice(t *testing.T) {
	s := drain.New(&http.Server{Handler: okHandler()}, noEnv, drain.WithSignals(), drain.WithDelay(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, want := range []error{nil, drain.ErrServed} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := s.Serve(ctx, ln); !errors.Is(err, want) {
			t.Fatalf("Serve call %d = %v, want %v", i+1, err, want)
		}
	}
}

func TestListenAndServe(t *testing.T) {
	s := drain.New(&http.Server{Addr: "127.0.0.1:0", Handler: okHandler()}, noEnv, drain.WithSignals(), drain.WithDelay(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.ListenAndServe(ctx); err != nil {
		t.Fatalf("ListenAndServe = %v", err)
	}
	if err := s.ListenAndServe(ctx); !errors.Is(err, drain.ErrServed) {
		t.Fatalf("second ListenAndServe = %v, want ErrServed", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s = drain.New(&http.Server{Addr: ln.Addr().String()}, noEnv, drain.WithSignals())
	if err := s.ListenAndServe(context.Background()); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("ListenAndServe on a taken address = %v, want an error naming it", err)
	}
	s = drain.New(&http.Server{Addr: "127.0.0.1:0"}, envMap(drain.EnvShutdownDelay, "later"), drain.WithSignals())
	if err := s.ListenAndServe(context.Background()); !errors.Is(err, drain.ErrConfig) {
		t.Fatalf("ListenAndServe with bad env = %v, want ErrConfig", err)
	}
}

// TestRequestStartedBeforeDrainRetiresConnection: a request that began before
// the stop trigger and answers during the delay still carries Connection:
// close, so its keep-alive connection is retired by the client instead of
// going idle and being closed under the load balancer after the delay.
func TestRequestStartedBeforeDrainRetiresConnection(t *testing.T) {
	b := newBlocker()
	r := startServer(t, b, drain.WithDelay(2*time.Second), drain.WithTimeout(5*time.Second))
	type answer struct {
		body  string
		close bool
		err   error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + r.addr + "/")
		if err != nil {
			got <- answer{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{body: string(body), close: resp.Close}
	}()
	<-b.started
	r.s.StartDrain("test")
	close(b.release)
	a := <-got
	if a.err != nil || a.body != "done" {
		t.Fatalf("request started before the drain: body %q, err %v", a.body, a.err)
	}
	if !a.close {
		t.Fatal("response written during the delay lacks Connection: close")
	}
}
