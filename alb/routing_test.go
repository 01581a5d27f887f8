package alb

import (
	"io"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestWeightsAndModifyRuleLag(t *testing.T) {
	stable := startBackend(t, nameHandler("stable", nil), time.Minute)
	canary := startBackend(t, nameHandler("canary", nil), time.Minute)
	off := boolp(false)
	cfg := Config{
		TargetGroups: []TargetGroupConfig{
			{Name: "stable", HealthCheck: HealthCheckConfig{Enabled: off}, Targets: []string{stable.addr}},
			{Name: "canary", HealthCheck: HealthCheckConfig{Enabled: off}, Targets: []string{canary.addr}},
		},
		Rules: []RuleConfig{{Priority: 10, Forward: []WeightedTargetGroup{
			{TargetGroup: "stable", Weight: intp(80)}, {TargetGroup: "canary", Weight: intp(20)}}}},
		// The seed's ~70 s lag between the weight change and the data plane: 700 ms here.
		ControlPlaneLatency: LatencyConfig{PerOperation: map[string]Duration{"ModifyRule": Duration(70 * time.Second)}},
	}
	tl := startLB(t, cfg)
	const n = 2000
	share := func() float64 {
		var mu sync.Mutex
		c := 0
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range n / 8 {
					_, _, be := tl.get(t, "/")
					if be == "canary" {
						mu.Lock()
						c++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return float64(c) / n
	}
	// 20 % ± 3 points: the binomial standard deviation is 0.9 points.
	if s := share(); math.Abs(s-0.20) > 0.03 {
		t.Fatalf("canary share %.3f, want 0.20 ± 0.03", s)
	}
	out, err := tl.admin.ModifyRule(t.Context(), ModifyRuleInput{Priority: 10, Actions: []Action{{Type: "forward",
		ForwardConfig: ForwardConfig{TargetGroups: []TargetGroupTuple{{TargetGroupName: "stable", Weight: intp(0)}, {TargetGroupName: "canary", Weight: intp(100)}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	eff, _ := time.Parse(time.RFC3339Nano, out.EffectiveAt)
	// Before the lag has passed the old weights still apply.
	stableSeen := 0
	for time.Until(eff) > 100*time.Millisecond {
		if _, _, be := tl.get(t, "/"); be == "stable" {
			stableSeen++
		}
	}
	if stableSeen == 0 {
		t.Fatal("no request reached stable before ModifyRule took effect")
	}
	time.Sleep(time.Until(eff) + 20*time.Millisecond)
	if s := share(); s != 1 {
		t.Fatalf("canary share %.3f after ModifyRule to 0/100, want 1 (weight 0 gets nothing)", s)
	}
	d, err := tl.admin.DescribeLoadBalancer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if w := d.Rules[0].TargetGroups; *w[0].Weight != 0 || *w[1].Weight != 100 {
		t.Fatalf("DescribeLoadBalancer weights %+v", w)
	}
}

func TestRoundRobinIsEven(t *testing.T) {
	var addrs []string
	for _, n := range []string{"a", "b", "c"} {
		addrs = append(addrs, startBackend(t, nameHandler(n, nil), time.Minute).addr)
	}
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, addrs...))
	counts := map[string]int{}
	for range 30 {
		_, _, be := tl.get(t, "/")
		counts[be]++
	}
	if counts["a"] != 10 || counts["b"] != 10 || counts["c"] != 10 {
		t.Fatalf("round robin split %v, want 10 each", counts)
	}
}

func TestLeastOutstandingRequests(t *testing.T) {
	release := make(chan struct{})
	slow := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			<-release
		}
		w.Header().Set("X-Backend", "slow")
	}), time.Minute)
	fast := startBackend(t, nameHandler("fast", nil), time.Minute)
	for _, algo := range []string{LeastOutstandingRequests, RoundRobin} {
		t.Run(algo, func(t *testing.T) {
			cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, slow.addr, fast.addr)
			cfg.TargetGroups[0].Algorithm = algo
			tl := startLB(t, cfg)
			// Keep sending ?hold until one request is stuck on slow (on
			// fast it returns at once).
			held := make(chan struct{}, 4)
			for attempt := 0; ; attempt++ {
				if attempt == 20 {
					t.Fatal("no request ever stuck on the slow target")
				}
				go func() {
					resp, err := tl.client.Get(tl.URL() + "/?hold=1")
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					held <- struct{}{}
				}()
				time.Sleep(20 * time.Millisecond)
				if tl.groups["app"].find(slow.addr).inflight.Load() == 1 {
					break
				}
				<-held // it went to fast and finished; try again
			}
			counts := map[string]int{}
			for range 10 {
				_, _, be := tl.get(t, "/")
				counts[be]++
			}
			release <- struct{}{}
			<-held
			if algo == LeastOutstandingRequests && counts["fast"] != 10 {
				t.Fatalf("least outstanding: split %v, want all 10 to the idle target", counts)
			}
			if algo == RoundRobin && counts["slow"] == 0 {
				t.Fatalf("round robin: split %v, want the busy target to get its turns", counts)
			}
		})
	}
}

func TestSlowStartRampsShare(t *testing.T) {
	a := startHealthTarget(t, "a")
	b := startHealthTarget(t, "b")
	cfg := oneGroup(HealthCheckConfig{Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second)}, a.addr)
	cfg.TargetGroups[0].SlowStart = Duration(300 * time.Second) // 3 s scaled
	tl := startLB(t, cfg)
	tl.waitState(t, "app", a.addr, StateHealthy, 3*time.Second)
	if _, err := tl.RegisterTargets(TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(b.addr)}}); err != nil {
		t.Fatal(err)
	}
	tl.waitState(t, "app", b.addr, StateHealthy, 3*time.Second)
	g := tl.groups["app"]
	g.mu.Lock()
	until := g.find(b.addr).slowStartUntil
	aUntil := g.find(a.addr).slowStartUntil
	g.mu.Unlock()
	if until.IsZero() || !aUntil.IsZero() {
		t.Fatalf("slow start: b until %v, a until %v; want only the new target ramping", until, aUntil)
	}
	ss := 3 * time.Second
	// The share of b at a point of the ramp where its weight is w is w/(1+w).
	for _, frac := range []float64{0.1, 0.5, 0.9, 1.2} {
		now := until.Add(-ss).Add(time.Duration(frac * float64(ss)))
		nb := 0
		const n = 4000
		for range n {
			if g.pick(now).addr == b.addr {
				nb++
			}
		}
		w := min(frac, 1)
		want := w / (1 + w)
		if got := float64(nb) / n; math.Abs(got-want) > 0.03 {
			t.Errorf("at %.0f%% of the ramp b gets %.3f of requests, want %.3f", frac*100, got, want)
		}
	}
}
