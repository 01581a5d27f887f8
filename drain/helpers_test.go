package drain_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/drain"
)

// noEnv keeps the test process environment out of in-process servers.
var noEnv = drain.WithEnv(nil)

// running is a drain.Server serving on a loopback port in this process.
type running struct {
	s      *drain.Server
	addr   string
	cancel context.CancelFunc
	errc   chan error
}

// startServer serves h with opts on 127.0.0.1:0 until the test cancels it.
// Signals are off unless opts turn them on.
func startServer(t *testing.T, h http.Handler, opts ...drain.Option) *running {
	t.Helper()
	return startHTTPServer(t, &http.Server{Handler: h}, opts...)
}

// startHTTPServer is startServer for a prepared http.Server.
func startHTTPServer(t *testing.T, hs *http.Server, opts ...drain.Option) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	all := append([]drain.Option{noEnv, drain.WithSignals(), drain.WithHookTimeout(time.Second), drain.WithDelay(0), drain.WithTimeout(2 * time.Second)}, opts...)
	s := drain.New(hs, all...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, addr: ln.Addr().String(), cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.errc:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
	})
	return r
}

// wait returns Serve's result, failing the test after d.
func (r *running) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-r.errc:
		r.errc <- err // for Cleanup
		return err
	case <-time.After(d):
		t.Fatalf("Serve did not return within %s", d)
		return nil
	}
}

// get fetches url with c and returns status, body and the response.
func get(t *testing.T, c *http.Client, url string) (int, string, *http.Response) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp
}

func stateOf(t *testing.T, body string) string {
	t.Helper()
	var v struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("health body %q: %v", body, err)
	}
	return v.State
}

// waitFor polls cond every 2 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
}
