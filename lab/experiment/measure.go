package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"zerodrop.dev/zerodrop/lab/scenario"
	"zerodrop.dev/zerodrop/load"
	"zerodrop.dev/zerodrop/results"
	"zerodrop.dev/zerodrop/simulate"
)

// demand is the demand cycle while it runs; a scenario step can replace
// its profile.
type demand struct {
	mu      sync.Mutex
	profile load.Profile
	from    time.Duration // where in the profile the scenario's time 0 is
	origin  time.Duration // scenario time (before scale) the profile starts at
}

func (d *demand) at(scenarioTime time.Duration) float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.from + scenarioTime - d.origin
	if t < 0 {
		t = 0
	}
	return d.profile.At(t)
}

func (d *demand) set(p load.Profile, at time.Duration) {
	d.mu.Lock()
	d.profile, d.from, d.origin = p, 0, at
	d.mu.Unlock()
}

// delayed starts a profile after the warm-up (holding its first value
// until then).
type delayed struct {
	p     load.Profile
	delay time.Duration
}

func (d delayed) At(t time.Duration) float64 { return d.p.At(max(0, t-d.delay)) }

func (d delayed) String() string { return d.p.String() + " after " + d.delay.String() }

type timedEvent struct {
	at time.Time
	ev results.Event
}

// sample is one reading of the cluster during the run.
type sample struct {
	at                        time.Time
	healthy, targets          int
	podsReady, nodes, pending int
}

func (r *running) measure(ctx context.Context) (*VariantResult, error) {
	sc := r.cfg.Scenario
	restCfg, err := clientcmd.BuildConfigFromFlags("", r.state.Kubeconfig)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	acts := &actions{r: r, dyn: dyn, drains: make(chan error, 16)}
	if r.replicas, err = acts.currentReplicas(ctx); err != nil {
		return nil, fmt.Errorf("reading %s/%s's scale: %w", r.s.namespace, r.s.name, err)
	}
	n0 := r.startReplicas()
	if err := acts.Scale(ctx, n0); err != nil {
		return nil, err
	}
	// Targets need the ALB's healthy threshold of checks at their interval
	// (up to 5 × 15 s with the controller's defaults) before they serve.
	if err := r.waitServing(ctx, n0, max(3*time.Minute, r.scaled(5*time.Minute))); err != nil {
		return nil, err
	}

	var d *demand
	warm, dur := r.scaled(sc.WarmupOrDefault()), r.scaled(sc.Duration.D())
	// Think time is the scenario's (or the preset's) before time scale,
	// like every other duration of a scenario.
	think := r.cfg.Preset.Think
	if sc.Think != nil {
		think = sc.Think.D()
	}
	think = r.scaled(think)
	var profile load.Profile = load.Constant{Value: float64(r.sessions())}
	if sc.Demand != nil {
		d = &demand{profile: sc.Demand.ProfileValue(), from: sc.Demand.From.D()}
		profile = delayed{p: r.cycle(d).SessionsProfile(), delay: warm}
	}
	ledger := load.NewLedger()
	base := "http://" + r.lbHost
	wl, err := load.NewOrders([]string{base}, ledger)
	if err != nil {
		return nil, err
	}
	wl.ThinkFn = load.ThinkTime(think, 0.5)

	var (
		smu     sync.Mutex
		samples []sample
		last    sample
		runner  *load.Runner
	)
	runner, err = load.NewRunner(load.Config{
		Workload: wl, Model: load.Closed, Profile: profile, Duration: warm + dur,
		// Longer than the ALB's own timeouts, so a hung target shows as the
		// ALB's 504 rather than the client giving up first.
		ResponseTimeout: 75 * time.Second,
		Meta: results.Meta{Tool: "zerodrop", Version: r.cfg.Version, Workload: "orders via the lab's ALB (" + sc.Name + ")",
			Labels: map[string]string{"variant": r.v.Name, "name": r.v.Name, "scenario": sc.Name, "scale": r.cfg.Preset.Name}},
		Seed:          1,
		ProgressEvery: 2 * time.Second,
		Progress: func(p load.Progress) {
			smu.Lock()
			s := last
			smu.Unlock()
			phase := "warm-up"
			if p.Elapsed >= warm {
				phase = sc.Name
			}
			if p.Finishing {
				phase = "finish"
			}
			r.say(phase, "t=%3.0fs replicas %d, pods ready %d, nodes %d, targets healthy %d/%d, sessions %d, requests %d, failed %d",
				p.Elapsed.Seconds(), r.currentWanted(), s.podsReady, s.nodes, s.healthy, s.targets, p.Sessions, p.Totals.Requests, p.Totals.Errors)
		},
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	type runOut struct {
		res *results.Result
		err error
	}
	done := make(chan runOut, 1)
	go func() { res, err := runner.Run(runCtx); done <- runOut{res, err} }()
	select {
	case <-runner.Started():
	case o := <-done:
		return nil, fmt.Errorf("load: %v", o.err)
	}
	t0 := time.Now()
	scStart := t0.Add(warm)
	r.say("load", "%s: %s warm-up, then %s of %s (%s)", base, warm, dur, sc.Name, sc.Description)

	var events []timedEvent
	var emu sync.Mutex
	addEvent := func(at time.Time, kind, msg, object string, attrs map[string]string) {
		emu.Lock()
		events = append(events, timedEvent{at, results.Event{Kind: kind, Message: msg, Source: results.EventSourceLab, Object: object, Attrs: attrs}})
		emu.Unlock()
	}
	acts.onScale = func(from, to int) {
		now := time.Now()
		addEvent(now, results.EventScale, fmt.Sprintf("%s/%s scaled %d → %d", r.s.kind, r.s.name, from, to), r.s.kind+"/"+r.s.name,
			map[string]string{"from": fmt.Sprint(from), "to": fmt.Sprint(to)})
		if to < from && now.After(scStart.Add(-time.Second)) {
			runner.AddMark(fmt.Sprintf("scale-down %d→%d", from, to), now, now.Add(r.scaled(scenario.DefaultWindow(scenario.ActionScale))))
		}
	}

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the cluster's state, once a second
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			s := r.sampleNow(bg)
			smu.Lock()
			samples, last = append(samples, s), s
			smu.Unlock()
			select {
			case <-bg.Done():
				return
			case <-tick.C:
			}
		}
	}()
	if d != nil {
		sim, err := r.simulator(restCfg, d, scStart, dur, acts)
		if err != nil {
			stopBG()
			wg.Wait()
			return nil, err
		}
		wg.Add(1)
		go func() { // the demand cycle drives the replicas: zerodrop simulate's own code
			defer wg.Done()
			if wait := time.Until(scStart); wait > 0 {
				select {
				case <-bg.Done():
					return
				case <-time.After(wait):
				}
			}
			_ = sim.Run(bg)
		}()
	}
	var stepErrs []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		opts := scenario.RunOptions{TimeScale: r.cfg.TimeScale, OnStep: func(dn scenario.Done) {
			runner.AddMark(dn.Name(), dn.Start, dn.End)
			attrs := map[string]string{"step": fmt.Sprint(dn.Index), "line": fmt.Sprint(dn.Step.Line)}
			kind := "scenario"
			switch dn.Step.Action {
			case scenario.ActionDrain:
				kind = results.EventNodeDrain
			case scenario.ActionKillNode:
				kind = results.EventNodeLost
			}
			msg := dn.Name()
			if dn.Err != nil {
				msg += ": " + dn.Err.Error()
				stepErrs = append(stepErrs, dn.Err.Error())
			}
			addEvent(dn.Start, kind, msg, "", attrs)
			r.say("step", "%s", msg)
		}}
		sacts := scenarioActions{actions: acts, d: d, scStart: scStart, timeScale: r.cfg.TimeScale}
		_ = scenario.Run(bg, sc, scStart, sacts, opts)
	}()

	out := <-done
	stopBG()
	wg.Wait()
	if out.res == nil {
		return nil, fmt.Errorf("load: %v", out.err)
	}
	res := out.res
	r.say("verify", "reading %d acknowledged writes back", ledger.Len())
	vctx, cancelV := context.WithTimeout(context.Background(), 2*time.Minute)
	ver, verr := ledger.Verify(vctx, load.VerifyOptions{Base: base})
	cancelV()
	if verr == nil {
		res.Verify = ver
		if ver.Errors > 0 {
			// A write that could not be read back is neither kept nor
			// lost: say so rather than count it as checked.
			verr = fmt.Errorf("%d of %d read-backs failed (no answer or 5xx), so those writes are unverified", ver.Errors, int64(ledger.Len()))
		}
	}
	for _, e := range events {
		e.ev.AtMS = res.Offset(e.at)
		res.Events = append(res.Events, e.ev)
	}
	r.addSeries(res, samples)
	if res.Config == nil {
		res.Config = map[string]string{}
	}
	for k, v := range r.s.config {
		res.Config[k] = v
	}
	res.Config["scenario"] = sc.Name
	res.Config["time_scale"] = fmt.Sprint(r.cfg.TimeScale)
	res.Config["lb_deregistration_lag"] = r.cfg.lbLag().String()
	vr, err := r.collect(res)
	if err != nil {
		return vr, err
	}
	for drained := false; !drained; {
		select {
		case err := <-acts.drains:
			if err != nil && !errors.Is(err, context.Canceled) { // cut short by the end of the run
				stepErrs = append(stepErrs, "drain: "+err.Error())
			}
		default:
			drained = true
		}
	}
	vr.StepErrors = stepErrs
	if verr != nil {
		vr.VerifyError = verr.Error()
	}
	if out.err != nil && ctx.Err() != nil {
		return vr, ctx.Err()
	}
	return vr, nil
}

func (r *running) sessions() int {
	if r.cfg.Scenario.Sessions > 0 {
		return r.cfg.Scenario.Sessions
	}
	return r.cfg.Preset.Sessions
}

func (r *running) currentWanted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replicas
}

// simulator is zerodrop simulate's Simulator on the scenario's demand
// cycle: the same code that scales the app on a real cluster, here on the
// lab's clock (the profile's times divided by the time scale).
func (r *running) simulator(restCfg *rest.Config, d *demand, scStart time.Time, dur time.Duration, acts *actions) (*simulate.Simulator, error) {
	scaler, err := simulate.NewScaleClient(restCfg)
	if err != nil {
		return nil, err
	}
	cycle := r.cycle(d)
	resource := schema.GroupResource{Group: "apps", Resource: "deployments"}
	if r.s.kind == "Rollout" {
		resource = schema.GroupResource{Group: "argoproj.io", Resource: "rollouts"}
	}
	return simulate.New(simulate.Config{
		Cycle: cycle, Namespace: r.s.namespace, Target: simulate.Target{Resource: resource, Name: r.s.name},
		Scaler: scaler, State: &simulate.MemoryState{}, Duration: dur,
		Events: func(e simulate.Event) {
			switch e.Kind {
			case simulate.EventStep:
				acts.scaled(int(e.PrevReplicas), e.Point.Replicas)
			case simulate.EventError:
				r.say("demand", "step %d: %s", e.Point.Step, e.Error)
			}
		},
	})
}

// cycle is the scenario's demand cycle with the preset's formulas, on
// the lab's clock.
func (r *running) cycle(d *demand) simulate.Cycle {
	p := r.cfg.Preset
	step := time.Second
	if h, ok := r.cfg.Scenario.Demand.ProfileValue().(load.HalfSine); ok && h.Step > 0 {
		step = h.Step
	}
	return p.cycle(wallDemand{d: d, timeScale: r.cfg.TimeScale}, r.scaled(step))
}

// cycle is a demand cycle over profile with the preset's formulas.
func (p Preset) cycle(profile load.Profile, step time.Duration) simulate.Cycle {
	return simulate.Cycle{
		Profile: profile, Step: step,
		Scale: p.Scale, AppRatio: p.AppRatio, AppMin: p.AppMin, SessionRatio: p.SessionRatio, SessionMin: p.SessionMin,
	}
}

// wallDemand is the demand cycle on the lab's clock.
type wallDemand struct {
	d         *demand
	timeScale float64
}

func (w wallDemand) At(t time.Duration) float64 {
	return w.d.at(time.Duration(float64(t) / w.timeScale))
}

func (w wallDemand) String() string { return "scenario demand" }

// scenarioActions routes profile changes to the demand cycle.
type scenarioActions struct {
	*actions
	d         *demand
	scStart   time.Time
	timeScale float64
}

func (s scenarioActions) SetProfile(_ context.Context, spec string) error {
	if s.d == nil {
		return fmt.Errorf("no demand cycle to change")
	}
	p, err := load.ParseProfileSpec(spec)
	if err != nil {
		return err
	}
	s.d.set(p, time.Duration(float64(time.Since(s.scStart))/s.timeScale))
	return nil
}

func (r *running) sampleNow(ctx context.Context) sample {
	s := sample{at: time.Now()}
	s.healthy, s.targets, _, _ = r.targets()
	s.podsReady, _, _ = r.readyPods(ctx)
	if nodes, err := r.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, n := range nodes.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					s.nodes++
				}
			}
		}
	}
	return s
}

func (r *running) addSeries(res *results.Result, samples []sample) {
	healthy := results.Series{Name: results.SeriesHealthyTargets, Group: r.lbGroup, Unit: "targets"}
	pods := results.Series{Name: results.SeriesPodsReady, Group: r.s.kind + "/" + r.s.name, Unit: "pods"}
	nodes := results.Series{Name: results.SeriesNodes, Unit: "nodes"}
	for _, s := range samples {
		at := res.Offset(s.at)
		healthy.Points = append(healthy.Points, results.Point{AtMS: at, Value: float64(s.healthy)})
		pods.Points = append(pods.Points, results.Point{AtMS: at, Value: float64(s.podsReady)})
		nodes.Points = append(nodes.Points, results.Point{AtMS: at, Value: float64(s.nodes)})
	}
	res.Series = append(res.Series, healthy, pods, nodes)
}

// writeJSON writes v as indented JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func albLogs(labDir string) []string {
	m, _ := filepath.Glob(filepath.Join(labDir, "alb", "*.log"))
	return m
}

func trimNS(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}
