package alb

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// healthTarget is a backend whose health answer can be switched and which
// counts the health checks it answered in each mode.
type healthTarget struct {
	*backend
	code   atomic.Int64 // status for /health; 0 = hang past the timeout
	checks atomic.Int64
}

func startHealthTarget(t *testing.T, name string) *healthTarget {
	ht := &healthTarget{}
	ht.code.Store(200)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ht.backend = startBackend(t, nameHandler(name, func() int {
		defer ht.checks.Add(1)
		c := int(ht.code.Load())
		if c == 0 {
			select {
			case <-release:
			case <-time.After(2 * time.Second):
			}
			return 200
		}
		return c
	}), time.Minute)
	return ht
}

func TestHealthStateTransitions(t *testing.T) {
	ht := startHealthTarget(t, "a")
	// interval 5 s, timeout 2 s (50 ms / 20 ms scaled); healthy after 3, unhealthy after 4.
	tl := startLB(t, oneGroup(HealthCheckConfig{Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second),
		HealthyThreshold: 3, UnhealthyThreshold: 4}))
	if _, err := tl.RegisterTargets(TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(ht.addr)}}); err != nil {
		t.Fatal(err)
	}
	// initial until the healthy threshold of successes.
	var sawInitialAfterChecks bool
	for {
		s, r := tl.state(t, "app", ht.addr)
		n := ht.checks.Load()
		if s == StateHealthy {
			if n < 3 {
				t.Fatalf("healthy after %d checks, threshold is 3", n)
			}
			break
		}
		if s != StateInitial || (r != ReasonInitialHealthChecking && r != ReasonRegistrationInProgress) {
			t.Fatalf("state %s %s while initial checks run", s, r)
		}
		if n >= 1 {
			sawInitialAfterChecks = true
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !sawInitialAfterChecks {
		t.Error("never observed the target still initial after a successful check")
	}

	// Failing checks: healthy until the 4th consecutive failure.
	base := ht.checks.Load()
	ht.code.Store(503)
	var sawHealthyWhileFailing bool
	for {
		s, r := tl.state(t, "app", ht.addr)
		failed := ht.checks.Load() - base
		if s == StateUnhealthy {
			if failed < 4 {
				t.Fatalf("unhealthy after %d failed checks, threshold is 4", failed)
			}
			if r != ReasonResponseCodeMismatch {
				t.Fatalf("reason %s, want %s", r, ReasonResponseCodeMismatch)
			}
			break
		}
		if failed >= 3 && s == StateHealthy {
			sawHealthyWhileFailing = true
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !sawHealthyWhileFailing {
		t.Error("never observed the target still healthy after 3 failed checks")
	}
	if metricValue(t, tl.LoadBalancer, "UnHealthyHostCount", "app") != 1 || metricValue(t, tl.LoadBalancer, "HealthyHostCount", "app") != 0 {
		t.Error("host count gauges do not show the unhealthy target")
	}

	// Hanging checks: the reason becomes Target.Timeout.
	ht.code.Store(0)
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, r := tl.state(t, "app", ht.addr); r == ReasonTimeout {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reason never became Target.Timeout")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Back to healthy after the healthy threshold of successes.
	ht.code.Store(200)
	tl.waitState(t, "app", ht.addr, StateHealthy, 3*time.Second)
	if metricValue(t, tl.LoadBalancer, "HealthyHostCount", "app") != 1 {
		t.Error("HealthyHostCount not 1")
	}
}

func TestSuccessCodeMatcher(t *testing.T) {
	for _, tc := range []struct {
		codes string
		want  string
	}{{"200", StateUnhealthy}, {"200-399", StateHealthy}, {"200,302", StateHealthy}} {
		t.Run(tc.codes, func(t *testing.T) {
			ht := startHealthTarget(t, "a")
			ht.code.Store(302)
			tl := startLB(t, oneGroup(HealthCheckConfig{SuccessCodes: tc.codes, Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second)}, ht.addr))
			tl.waitState(t, "app", ht.addr, tc.want, 3*time.Second)
		})
	}
	for _, bad := range []string{"", "199", "500", "300-200", "abc", "200,", "200-"} {
		if _, err := ParseMatcher(bad); err == nil {
			t.Errorf("ParseMatcher(%q) accepted", bad)
		}
	}
	m, err := ParseMatcher("200-204, 302")
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{199: false, 200: true, 204: true, 205: false, 302: true, 301: false} {
		if m.Match(code) != want {
			t.Errorf("Match(%d) = %v", code, !want)
		}
	}
}

func TestFailOpenAndHealthyOnlyRouting(t *testing.T) {
	a, b := startHealthTarget(t, "a"), startHealthTarget(t, "b")
	a.code.Store(500)
	b.code.Store(500)
	tl := startLB(t, oneGroup(HealthCheckConfig{Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second)}, a.addr, b.addr))
	tl.waitState(t, "app", a.addr, StateUnhealthy, 3*time.Second)
	tl.waitState(t, "app", b.addr, StateUnhealthy, 3*time.Second)
	// Every target unhealthy: fail open, both get traffic.
	counts := map[string]int{}
	for range 20 {
		code, _, be := tl.get(t, "/")
		if code != 200 {
			t.Fatalf("fail-open request: %d", code)
		}
		counts[be]++
	}
	if counts["a"] != 10 || counts["b"] != 10 {
		t.Fatalf("fail-open split %v, want 10/10", counts)
	}
	// One healthy: only it gets traffic.
	b.code.Store(200)
	tl.waitState(t, "app", b.addr, StateHealthy, 3*time.Second)
	clear(counts)
	for range 20 {
		_, _, be := tl.get(t, "/")
		counts[be]++
	}
	if counts["b"] != 20 {
		t.Fatalf("split %v, want all to the healthy target b", counts)
	}
}

func TestHealthChecksDisabledMeansUnavailable(t *testing.T) {
	ht := startHealthTarget(t, "a")
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, ht.addr))
	if s, r := tl.state(t, "app", ht.addr); s != StateUnavailable || r != ReasonHealthCheckDisabled {
		t.Fatalf("state %s %s", s, r)
	}
	if code, _, _ := tl.get(t, "/"); code != http.StatusOK {
		t.Fatalf("unavailable target not routed: %d", code)
	}
	if ht.checks.Load() != 0 {
		t.Fatal("health checks ran although disabled")
	}
}

func TestDefaultsSets(t *testing.T) {
	api, err := HealthCheckDefaults(DefaultsAPI)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := HealthCheckDefaults(DefaultsController)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(api.Interval) != 30*time.Second || api.HealthyThreshold != 5 || api.UnhealthyThreshold != 2 || time.Duration(api.Timeout) != 5*time.Second || api.SuccessCodes != "200" || api.Path != "/" {
		t.Errorf("API defaults %+v", api)
	}
	if time.Duration(ctl.Interval) != 15*time.Second || ctl.HealthyThreshold != 2 || ctl.UnhealthyThreshold != 2 || time.Duration(ctl.Timeout) != 5*time.Second {
		t.Errorf("controller defaults %+v", ctl)
	}
	if _, err := HealthCheckDefaults("aws"); err == nil {
		t.Error("unknown defaults set accepted")
	}
}
