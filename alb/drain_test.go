package alb

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
)

// sleepHandler answers after ?sleep= (Go duration) with its name.
func sleepHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	})
}

func TestDrainingWithoutInFlight(t *testing.T) {
	a := startBackend(t, sleepHandler("a"), time.Minute)
	b := startBackend(t, sleepHandler("b"), time.Minute)
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, a.addr, b.addr)
	cfg.TargetGroups[0].DeregistrationDelay = durp(20 * time.Second) // 200 ms
	tl := startLB(t, cfg)
	for range 4 {
		tl.get(t, "/")
	}
	if _, err := tl.DeregisterTargets(TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(a.addr)}}); err != nil {
		t.Fatal(err)
	}
	if s, r := tl.state(t, "app", a.addr); s != StateDraining || r != ReasonDeregistrationInProgress {
		t.Fatalf("state %s %s, want draining", s, r)
	}
	// Nothing in flight: the drain is complete at once (idle connections
	// closed), though the state shows draining until the delay ends.
	out, _ := tl.DescribeTargetHealth(DescribeTargetHealthInput{TargetGroupName: "app", Targets: []TargetDescription{desc(a.addr)}})
	if d := out.TargetHealthDescriptions[0]; d.InFlight != 0 || tl.groups["app"].find(a.addr).pool.openConns() != 0 {
		t.Fatalf("draining target still has work: %+v", d)
	}
	for range 10 {
		if _, _, be := tl.get(t, "/"); be != "b" {
			t.Fatalf("draining target got a new request (%q)", be)
		}
	}
	// Cannot come back during the delay.
	_, err := tl.RegisterTargets(TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(a.addr)}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "InvalidTarget" {
		t.Fatalf("re-registration during the delay: %v, want InvalidTarget", err)
	}
	tl.waitState(t, "app", a.addr, StateUnused, 2*time.Second)
	if _, r := tl.state(t, "app", a.addr); r != ReasonNotRegistered {
		t.Fatalf("reason %s", r)
	}
	if _, err := tl.RegisterTargets(TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(a.addr)}}); err != nil {
		t.Fatalf("re-registration after the delay: %v", err)
	}
	for _, e := range tl.seen.all() {
		if e.ELBStatusCode != 200 {
			t.Fatalf("a request failed: %s", fmtEntry(e))
		}
	}
}

func TestDrainingLetsInFlightFinish(t *testing.T) {
	a := startBackend(t, sleepHandler("a"), time.Minute)
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, a.addr)
	cfg.TargetGroups[0].DeregistrationDelay = durp(50 * time.Second) // 500 ms
	tl := startLB(t, cfg)
	done := make(chan int, 1)
	go func() {
		resp, err := tl.client.Get(tl.URL() + "/?sleep=250ms")
		if err != nil {
			done <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitInFlight(t, tl, "app", a.addr, 1)
	if _, err := tl.DeregisterTargets(TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(a.addr)}}); err != nil {
		t.Fatal(err)
	}
	// New requests: no registered target left -> 503.
	if code, _, _ := tl.get(t, "/"); code != http.StatusServiceUnavailable {
		t.Fatalf("new request during drain: %d, want 503", code)
	}
	if code := <-done; code != 200 {
		t.Fatalf("in-flight request: %d, want 200 (it finished within the delay)", code)
	}
}

func TestDeregistrationDelayCutsLongRequest(t *testing.T) {
	a := startBackend(t, sleepHandler("a"), time.Minute)
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, a.addr)
	cfg.TargetGroups[0].DeregistrationDelay = durp(10 * time.Second) // 100 ms
	tl := startLB(t, cfg)
	var wg sync.WaitGroup
	var code int
	wg.Go(func() {
		resp, err := tl.client.Get(tl.URL() + "/?sleep=400ms") // within the 600 ms idle timeout
		if err != nil {
			t.Errorf("long request: %v", err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		code = resp.StatusCode
	})
	waitInFlight(t, tl, "app", a.addr, 1)
	start := time.Now()
	if _, err := tl.DeregisterTargets(TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(a.addr)}}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if code != http.StatusBadGateway {
		t.Fatalf("long request: %d, want 502 when the delay ends", code)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("cut after %v, before the 100 ms delay", el)
	}
	var cut *accesslog.Entry
	for _, e := range tl.seen.all() {
		if e.ErrorReason == accesslog.ReasonDeregistrationCut {
			cut = &e
		}
	}
	if cut == nil || cut.ELBStatusCode != 502 || cut.TargetStatusCode != 0 || cut.Target != a.addr {
		t.Fatalf("no 502 entry for the cut request: %v", tl.seen.all())
	}
}

func waitInFlight(t *testing.T, tl *testLB, group, addr string, n int64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		out, err := tl.DescribeTargetHealth(DescribeTargetHealthInput{TargetGroupName: group, Targets: []TargetDescription{desc(addr)}})
		if err != nil {
			t.Fatal(err)
		}
		if out.TargetHealthDescriptions[0].InFlight >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %d requests in flight on %s", n, addr)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestControlPlaneLatencyDelaysDeregistration(t *testing.T) {
	a := startBackend(t, sleepHandler("a"), time.Minute)
	b := startBackend(t, sleepHandler("b"), time.Minute)
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, a.addr, b.addr)
	cfg.ControlPlaneLatency = LatencyConfig{PerOperation: map[string]Duration{"DeregisterTargets": Duration(30 * time.Second)}} // 300 ms
	tl := startLB(t, cfg)
	accepted := time.Now()
	out, err := tl.admin.DeregisterTargets(t.Context(), TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(a.addr)}})
	if err != nil {
		t.Fatal(err)
	}
	eff, err := time.Parse(time.RFC3339Nano, out.EffectiveAt)
	if err != nil || eff.Sub(accepted) < 250*time.Millisecond {
		t.Fatalf("EffectiveAt %q: want about 300 ms after the call", out.EffectiveAt)
	}
	// The API already says draining, but the data plane still routes to a.
	if s, _ := tl.state(t, "app", a.addr); s != StateDraining {
		t.Fatalf("state %s, want draining at once", s)
	}
	sawA := false
	for time.Now().Before(eff.Add(-50 * time.Millisecond)) {
		if _, _, be := tl.get(t, "/"); be == "a" {
			sawA = true
		}
	}
	if !sawA {
		t.Fatal("no request reached a before the control-plane latency passed")
	}
	time.Sleep(time.Until(eff) + 20*time.Millisecond)
	for range 10 {
		if _, _, be := tl.get(t, "/"); be != "b" {
			t.Fatalf("request reached %q after the deregistration took effect", be)
		}
	}
}
