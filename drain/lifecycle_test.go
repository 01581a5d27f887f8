package drain_test

import (
	"net/http"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/drain"
)

func TestStatesAndHealth(t *testing.T) {
	r := startServer(t, okHandler(), drain.WithDelay(300*time.Millisecond), drain.WithTimeout(time.Second),
		drain.WithHealthPath("/logistics/health"), drain.WithLivenessPath("/live"))
	c := &http.Client{}
	base := "http://" + r.addr

	if got := r.s.State(); got != drain.Starting {
		t.Fatalf("state before SetReady = %v, want starting", got)
	}
	if code, body, _ := get(t, c, base+"/logistics/health"); code != 503 || stateOf(t, body) != "starting" {
		t.Fatalf("readiness before SetReady = %d %s, want 503 starting", code, body)
	}
	if code, _, _ := get(t, c, base+"/live"); code != 200 {
		t.Fatalf("liveness while starting = %d, want 200", code)
	}
	r.s.SetReady()
	if !r.s.Ready() {
		t.Fatal("Ready() false after SetReady")
	}
	if code, body, _ := get(t, c, base+"/logistics/health"); code != 200 || stateOf(t, body) != "ready" {
		t.Fatalf("readiness after SetReady = %d %s, want 200 ready", code, body)
	}
	if code, body, resp := get(t, c, base+"/orders"); code != 200 || body != "ok" || resp.Close {
		t.Fatalf("app while ready = %d %q close=%v, want 200 ok keep-alive", code, body, resp.Close)
	}

	r.cancel()
	waitFor(t, time.Second, "draining", func() bool { return r.s.State() == drain.Draining })
	if code, body, _ := get(t, c, base+"/logistics/health"); code != 503 || stateOf(t, body) != "draining" {
		t.Fatalf("readiness while draining = %d %s, want 503 draining", code, body)
	}
	if code, _, _ := get(t, c, base+"/live"); code != 200 {
		t.Fatalf("liveness while draining = %d, want 200", code)
	}
	// New connections are still accepted and served, and retired.
	fresh := &http.Client{Transport: &http.Transport{}}
	if code, body, resp := get(t, fresh, base+"/orders"); code != 200 || body != "ok" || !resp.Close {
		t.Fatalf("app while draining = %d %q close=%v, want 200 ok Connection: close", code, body, resp.Close)
	}
	r.s.SetReady() // must not bring a draining server back
	if r.s.Ready() {
		t.Fatal("SetReady during drain made the server ready again")
	}
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Serve after clean drain = %v, want nil", err)
	}
	if got := r.s.State(); got != drain.Stopped {
		t.Fatalf("state after Serve = %v, want stopped", got)
	}
	rep := r.s.Report()
	if rep.ServedWhileDraining != 1 {
		t.Errorf("ServedWhileDraining = %d, want 1", rep.ServedWhileDraining)
	}
	if rep.DelayAfterTrigger < 300*time.Millisecond {
		t.Errorf("DelayAfterTrigger = %s, want >= 300ms", rep.DelayAfterTrigger)
	}
	if _, err := c.Get(base + "/orders"); err == nil {
		t.Fatal("server still answers after Serve returned")
	}
}

func TestReadyOnListen(t *testing.T) {
	r := startServer(t, okHandler(), drain.WithReadyOnListen(), drain.WithHealthPath("/h"))
	waitFor(t, time.Second, "ready", r.s.Ready)
	if code, _, _ := get(t, http.DefaultClient, "http://"+r.addr+"/h"); code != 200 {
		t.Fatalf("readiness = %d, want 200", code)
	}
}
