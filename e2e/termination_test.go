package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
	"zerodrop.dev/zerodrop/alb"
	"zerodrop.dev/zerodrop/load"
	"zerodrop.dev/zerodrop/results"
)

// The experiment's knobs. The ALB runs 10 times faster than a real one
// (its 5 s health-check interval is 500 ms); everything else is wall time.
const (
	albTimeScale = 0.1
	// healthInterval and healthTimeout are the ALB minimums (scaled: 500
	// ms and 200 ms); with unhealthy threshold 2 a dead target is taken
	// out after about 1 s.
	healthInterval = 5 * time.Second
	healthTimeout  = 2 * time.Second
	// deregistrationDelay is deregistration_delay.timeout_seconds (scaled:
	// 3 s), long enough for any in-flight request to finish.
	deregistrationDelay = 30 * time.Second
	// albIdleTimeout keeps the ALB's idle timeout at a real 60 s after
	// scaling, so the load client's keep-alive connections behave as they
	// would in front of a real ALB.
	albIdleTimeout = 600 * time.Second

	// controllerLag is how long the deregistration takes to reach the ALB
	// after the pod is deleted (the controller's reconcile plus API
	// latency plus propagation; tens of seconds in the field).
	controllerLag = 400 * time.Millisecond

	work            = "5ms-40ms" // per API request, so requests are in flight at the SIGTERM
	shutdownTimeout = 3 * time.Second

	sessions     = 16
	loadDuration = 7 * time.Second
	terminateAt  = 2500 * time.Millisecond // into the load run
	think        = 20 * time.Millisecond

	targetGroup = "orders"
)

// scenario is one way of shutting the victim pod down.
type scenario struct {
	name     string
	shutdown string        // zerodrop serve --shutdown
	delay    time.Duration // zerodrop serve --shutdown-delay (graceful only)
	// clean is what the scenario must show: no failed request, no lost or
	// duplicated write, exit 0. Otherwise it must show failed requests,
	// each an ELB-made 502 for the victim.
	clean bool
	// storeClosedUnderRequests allows 503s answered by the victim itself:
	// in unwaited mode the process closes its store while handlers are
	// still running, and they answer 503 store_unavailable.
	storeClosedUnderRequests bool
}

// outcome is what one scenario measured.
type outcome struct {
	res         *results.Result
	verify      *results.Verification
	elbErrors   []accesslog.Entry // access-log entries the ALB made itself with a 5xx
	tgtErrors   []accesslog.Entry // access-log entries with a 5xx from a target
	elb5xxTotal float64           // HTTPCode_ELB_5XX_Count for the target group
	elb502Total float64           // HTTPCode_ELB_502_Count for the target group
	victim      string            // ip:port of the terminated pod
	victimExit  int
	// servedAfterSIGTERM counts requests the victim answered that reached
	// the ALB after the SIGTERM (in graceful mode: the drain at work).
	servedAfterSIGTERM int
	sigtermAt          time.Time
	deregisteredAt     time.Time // when the DeregisterTargets call returned
}

// TestTerminationChain deletes one of three orders pods under load behind
// the ALB emulator, once per shutdown mode, and compares what the users saw.
func TestTerminationChain(t *testing.T) {
	scenarios := []scenario{
		{name: "immediate", shutdown: "immediate", delay: 1500 * time.Millisecond},
		{name: "unwaited", shutdown: "unwaited", delay: 1500 * time.Millisecond, storeClosedUnderRequests: true},
		{name: "graceful", shutdown: "graceful", delay: 1500 * time.Millisecond, clean: true},
		// The delay must cover the deregistration lag: 100 ms < 400 ms.
		{name: "graceful-delay-below-lag", shutdown: "graceful", delay: 100 * time.Millisecond},
	}
	summaries := make([]string, 0, len(scenarios))
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			o := runScenario(t, sc)
			line := summary(sc, o)
			t.Log(line)
			summaries = append(summaries, line)
			if sc.clean {
				checkClean(t, o)
			} else {
				checkFailures(t, sc, o)
			}
		})
	}
	t.Logf("termination chain, one pod of three deleted under load (lag %v):\n%s",
		controllerLag, strings.Join(summaries, "\n"))
}

// checkClean asserts the graceful scenario's promise: nobody noticed.
func checkClean(t *testing.T, o *outcome) {
	t.Helper()
	tot := o.res.Totals
	if tot.Errors != 0 {
		t.Errorf("graceful termination failed %d of %d requests: %v", tot.Errors, tot.Requests, errorCounts(tot))
	}
	if len(o.verify.Lost) != 0 || len(o.verify.Duplicates) != 0 || o.verify.Errors != 0 {
		t.Errorf("ledger: %d lost writes %v, %d duplicates %v, %d read-back errors",
			len(o.verify.Lost), o.verify.Lost, len(o.verify.Duplicates), o.verify.Duplicates, o.verify.Errors)
	}
	if o.victimExit != 0 {
		t.Errorf("the SIGTERMed pod exited %d, want 0", o.victimExit)
	}
	if len(o.elbErrors) != 0 || o.elb5xxTotal != 0 {
		t.Errorf("the ALB made %d 5xx (HTTPCode_ELB_5XX_Count %v)", len(o.elbErrors), o.elb5xxTotal)
		for _, e := range o.elbErrors[:min(len(o.elbErrors), 5)] {
			t.Logf("  %s", fmtEntry(e))
		}
	}
	if len(o.tgtErrors) != 0 {
		t.Errorf("targets answered %d 5xx; first: %s", len(o.tgtErrors), fmtEntry(o.tgtErrors[0]))
	}
	// The scenario only proves something if the victim was still getting
	// traffic while it drained.
	if o.servedAfterSIGTERM == 0 {
		t.Errorf("the victim answered no request after its SIGTERM: the drain was not exercised")
	}
}

// checkFailures asserts a broken scenario's symptoms: users saw failures,
// and each one was a 502 the ALB made itself for the terminated pod (or,
// where the scenario allows it, a 503 the pod answered as its store closed).
func checkFailures(t *testing.T, sc scenario, o *outcome) {
	t.Helper()
	tot := o.res.Totals
	if tot.Errors == 0 {
		t.Fatalf("no request failed (%d requests, counts %v): the scenario did not reproduce the problem",
			tot.Requests, tot.Counts)
	}
	if len(o.elbErrors) == 0 {
		t.Fatalf("%d requests failed but the ALB logged no 5xx of its own", tot.Errors)
	}
	for _, e := range o.elbErrors {
		if e.ELBStatusCode != 502 || e.TargetStatusCode != 0 || e.Target != o.victim {
			t.Errorf("ALB error %s: want a 502 with target_status_code - for %s", fmtEntry(e), o.victim)
		}
		if e.ErrorReason == "" {
			t.Errorf("ALB error without a reason: %s", fmtEntry(e))
		}
		// The failures belong to the window between the SIGTERM and the
		// deregistration reaching the data plane (plus slack for requests
		// dispatched just before it on a busy machine).
		if e.Time.Before(o.sigtermAt) || e.Time.After(o.deregisteredAt.Add(time.Second)) {
			t.Errorf("ALB error outside the window from the SIGTERM to 1 s after the deregistration: %s", fmtEntry(e))
		}
	}
	for _, e := range o.tgtErrors {
		if !sc.storeClosedUnderRequests {
			t.Errorf("a target answered a 5xx: %s", fmtEntry(e))
			continue
		}
		if e.Target != o.victim || e.TargetStatusCode != 503 || e.Time.Before(o.sigtermAt) {
			t.Errorf("target error %s: want only 503s from the victim %s after its SIGTERM", fmtEntry(e), o.victim)
		}
	}
	// Client, access log and metrics are three views of the same requests.
	var clientLB5xx int64
	for k, n := range tot.FromLB {
		if strings.HasPrefix(k, "5") {
			clientLB5xx += n
		}
	}
	if tot.Errors != clientLB5xx+int64(len(o.tgtErrors)) {
		t.Errorf("%d failures seen by the client; %d ELB-made 5xx and %d target 5xx in the access log: failures with another cause %v",
			tot.Errors, clientLB5xx, len(o.tgtErrors), errorCounts(tot))
	}
	if int64(len(o.elbErrors)) != clientLB5xx {
		t.Errorf("the ALB logged %d 5xx of its own, the client saw %d", len(o.elbErrors), clientLB5xx)
	}
	if o.elb502Total != float64(len(o.elbErrors)) || o.elb5xxTotal != o.elb502Total {
		t.Errorf("metrics HTTPCode_ELB_502_Count %v, HTTPCode_ELB_5XX_Count %v; access log %d ELB 502s",
			o.elb502Total, o.elb5xxTotal, len(o.elbErrors))
	}
	if o.verify.Checked == 0 {
		t.Errorf("the ledger verified no write")
	}
}

// runScenario runs one scenario end to end and returns what it measured.
func runScenario(t *testing.T, sc scenario) *outcome {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "orders.db")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	began := time.Now()

	// Three pods, each on its own loopback address like pod IPs.
	var pods []*serveProc
	var targets []string
	for i := range 3 {
		addr := freeAddr(t, fmt.Sprintf("127.0.0.%d", i+1))
		pods = append(pods, startServe(t, dir, fmt.Sprintf("pod-%d", i+1), serveOptions{
			addr: addr, db: db, shutdown: sc.shutdown, work: work, delay: sc.delay, timeout: shutdownTimeout,
		}))
		targets = append(targets, addr)
	}
	for _, p := range pods {
		if err := p.waitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Logf("3 pods ready after %v", time.Since(began).Round(time.Millisecond))
	lb, seen := startALB(t, targets)
	admin := alb.NewClient(lb.AdminURL(), "", nil)
	if err := waitHealthy(ctx, admin, len(targets)); err != nil {
		t.Fatal(err)
	}
	t.Logf("3 targets healthy after %v", time.Since(began).Round(time.Millisecond))

	ledger := load.NewLedger()
	wl, err := load.NewOrders([]string{lb.URL()}, ledger)
	if err != nil {
		t.Fatal(err)
	}
	wl.ThinkFn = load.ThinkTime(think, 0.5)
	wl.RetryPause = 20 * time.Millisecond
	runner, err := load.NewRunner(load.Config{
		Workload: wl, Model: load.Closed, Profile: load.Constant{Value: sessions},
		Duration: loadDuration, ConnectTimeout: 2 * time.Second, ResponseTimeout: 5 * time.Second,
		Meta:     results.Meta{Tool: "zerodrop", Version: "e2e", Labels: map[string]string{"scenario": sc.name}},
		Progress: func(p load.Progress) { t.Logf("load: %s", load.FormatProgress(p)) }, ProgressEvery: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var res *results.Result
	var runErr error
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		res, runErr = runner.Run(ctx)
	}()
	// Whatever happens below, the run (and its progress logging) ends
	// before the test does.
	defer func() {
		cancel()
		<-ran
	}()
	select {
	case <-runner.Started():
	case <-ran:
		t.Fatalf("the load run ended before it started: %v", runErr)
	}

	// Delete pod-2: SIGTERM now, deregistration after the controller lag.
	victim := pods[1]
	select {
	case <-time.After(terminateAt):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if victim.exited() {
		t.Fatalf("%s exited before it was terminated", victim.name)
	}
	victimTarget := targetDesc(t, victim.addr)
	sigtermAt := time.Now()
	runner.AddMark("termination", sigtermAt, time.Time{})
	var wg sync.WaitGroup
	var deregErr error
	var deregisteredAt time.Time
	wg.Go(func() {
		select {
		case <-time.After(controllerLag):
		case <-ctx.Done():
			deregErr = ctx.Err()
			return
		}
		_, deregErr = admin.DeregisterTargets(ctx, alb.TargetsInput{
			TargetGroupName: targetGroup, Targets: []alb.TargetDescription{victimTarget},
		})
		deregisteredAt = time.Now()
		runner.AddEvent(deregisteredAt, "deregister", "target deregistered", map[string]string{"target": victim.addr})
	})
	if err := victim.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	runner.AddEvent(sigtermAt, "kill", "SIGTERM", map[string]string{"pod": victim.name})
	wg.Wait()
	if deregErr != nil {
		t.Fatalf("deregistering %s: %v", victim.addr, deregErr)
	}

	<-ran
	if runErr != nil {
		t.Fatalf("load run: %v", runErr)
	}
	exitCtx, exitCancel := context.WithTimeout(ctx, 10*time.Second)
	defer exitCancel()
	code, err := victim.wait(exitCtx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if p != victim && p.exited() {
			t.Fatalf("%s exited during the run (%v)", p.name, p.waitErr)
		}
	}

	// The ALB's view of the run, taken before the read-backs go through it.
	entries := seen.all()
	o := &outcome{res: res, victim: victim.addr, victimExit: code,
		sigtermAt: sigtermAt, deregisteredAt: deregisteredAt}
	for _, e := range entries {
		switch {
		case e.ELBGenerated() && e.ELBStatusCode >= 500:
			o.elbErrors = append(o.elbErrors, e)
		case e.TargetStatusCode >= 500:
			o.tgtErrors = append(o.tgtErrors, e)
		}
		if e.Target == victim.addr && e.TargetStatusCode != 0 && !e.RequestCreationTime.Before(sigtermAt) {
			o.servedAfterSIGTERM++
		}
	}
	o.elb5xxTotal = counter(t, lb, "HTTPCode_ELB_5XX_Count")
	o.elb502Total = counter(t, lb, "HTTPCode_ELB_502_Count")

	t.Logf("load done, %s exited %d after %v", victim.name, code, time.Since(began).Round(time.Millisecond))
	v, err := ledger.Verify(ctx, load.VerifyOptions{Base: lb.URL(), Concurrency: 16})
	if err != nil {
		t.Fatalf("verifying the ledger: %v", err)
	}
	t.Logf("ledger verified after %v", time.Since(began).Round(time.Millisecond))
	o.verify = v
	return o
}

// startALB runs the ALB emulator in-process with every target registered in
// one target group, health-checked on the orders readiness path.
func startALB(t *testing.T, targets []string) (*alb.LoadBalancer, *entryLog) {
	t.Helper()
	delay := alb.Duration(deregistrationDelay)
	cfg := alb.Config{
		Name:        "e2e",
		Listen:      "127.0.0.1:0",
		Admin:       "127.0.0.1:0",
		TimeScale:   albTimeScale,
		IdleTimeout: alb.Duration(albIdleTimeout),
		TargetGroups: []alb.TargetGroupConfig{{
			Name: targetGroup,
			HealthCheck: alb.HealthCheckConfig{
				Path:               "/logistics/health",
				Interval:           alb.Duration(healthInterval),
				Timeout:            alb.Duration(healthTimeout),
				HealthyThreshold:   2,
				UnhealthyThreshold: 2,
			},
			DeregistrationDelay: &delay,
			Targets:             targets,
		}},
		Rules: []alb.RuleConfig{{Priority: 1, Forward: []alb.WeightedTargetGroup{{TargetGroup: targetGroup}}}},
	}
	seen := &entryLog{}
	lb, err := alb.New(cfg, alb.Options{
		OnRequest: seen.add,
		Logf:      func(f string, a ...any) { t.Logf("alb: "+f, a...) },
	})
	if err != nil {
		t.Fatalf("configuring the ALB: %v", err)
	}
	if err := lb.Start(t.Context()); err != nil {
		t.Fatalf("starting the ALB: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := lb.Close(ctx); err != nil {
			t.Errorf("closing the ALB: %v", err)
		}
	})
	return lb, seen
}

// waitHealthy waits until n targets of the group are healthy.
func waitHealthy(ctx context.Context, admin *alb.Client, n int) error {
	for {
		out, err := admin.DescribeTargetHealth(ctx, alb.DescribeTargetHealthInput{TargetGroupName: targetGroup})
		healthy := 0
		if err == nil {
			for _, d := range out.TargetHealthDescriptions {
				if d.TargetHealth.State == alb.StateHealthy {
					healthy++
				}
			}
			if healthy == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d healthy targets (%d so far, last error %v): %w", n, healthy, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// counter sums a counter of the ALB's metrics over its label values.
func counter(t *testing.T, lb *alb.LoadBalancer, name string) float64 {
	t.Helper()
	mfs, err := lb.Registry().Gather()
	if err != nil {
		t.Fatalf("gathering ALB metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		return sum
	}
	t.Fatalf("ALB metric %s not found", name)
	return 0
}

// entryLog collects the ALB's access-log entries.
type entryLog struct {
	mu   sync.Mutex
	list []accesslog.Entry
}

func (l *entryLog) add(e *accesslog.Entry) {
	l.mu.Lock()
	l.list = append(l.list, *e)
	l.mu.Unlock()
}

func (l *entryLog) all() []accesslog.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]accesslog.Entry(nil), l.list...)
}

// targetDesc turns an ip:port into the admin API's target description.
func targetDesc(t *testing.T, addr string) alb.TargetDescription {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("splitting %s: %v", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port of %s: %v", addr, err)
	}
	return alb.TargetDescription{ID: host, Port: p}
}

// summary is the one-line report of a scenario.
func summary(sc scenario, o *outcome) string {
	tot := o.res.Totals
	reasons := map[string]int{}
	for _, e := range o.elbErrors {
		reasons[fmt.Sprintf("%d %s", e.ELBStatusCode, e.ErrorReason)]++
	}
	tgt := ""
	if len(o.tgtErrors) > 0 {
		tgt = fmt.Sprintf(" | target-made 5xx: %d", len(o.tgtErrors))
	}
	window := ""
	if len(o.elbErrors) > 0 {
		first, last := o.elbErrors[0].Time, o.elbErrors[0].Time
		for _, e := range o.elbErrors {
			if e.Time.Before(first) {
				first = e.Time
			}
			if e.Time.After(last) {
				last = e.Time
			}
		}
		window = fmt.Sprintf(" from +%dms to +%dms", first.Sub(o.sigtermAt).Milliseconds(), last.Sub(o.sigtermAt).Milliseconds())
	}
	return fmt.Sprintf("%-24s requests=%d failed=%d %s | ALB-made: %s%s%s | writes acked=%d lost=%d dup=%d | victim served %d after SIGTERM, exit %d",
		sc.name, tot.Requests, tot.Errors, fmtCounts(errorCounts(tot)), fmtCounts(reasons), window, tgt,
		o.verify.Checked, len(o.verify.Lost), len(o.verify.Duplicates), o.servedAfterSIGTERM, o.victimExit)
}

// errorCounts returns the failed outcomes of tot, each as "key" or
// "key(lb)" when the load balancer made it.
func errorCounts(tot results.Totals) map[string]int {
	m := map[string]int{}
	for k, n := range tot.Counts {
		if !results.IsError(k) {
			continue
		}
		lb := tot.FromLB[k]
		if lb > 0 {
			m[k+"(lb)"] = int(lb)
		}
		if n-lb > 0 {
			m[k] = int(n - lb)
		}
	}
	return m
}

// fmtCounts renders counts as "[k=n ...]" in key order, or "none".
func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// fmtEntry renders the access-log fields that explain a failure.
func fmtEntry(e accesslog.Entry) string {
	return fmt.Sprintf("elb=%d target=%q target_status=%d reason=%q request=%q at %s",
		e.ELBStatusCode, e.Target, e.TargetStatusCode, e.ErrorReason, e.Request, e.Time.Format("15:04:05.000"))
}
