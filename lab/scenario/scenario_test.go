package scenario

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBuiltinsParse(t *testing.T) {
	names := Builtins()
	want := []string{"canary", "keepalive", "node-drain", "node-loss", "rolling-update", "scale-down"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("built-ins %v, want %v", names, want)
	}
	for _, n := range names {
		sc, err := Builtin(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if sc.Name != n || sc.Description == "" || sc.Duration <= 0 {
			t.Errorf("%s: name %q description %q duration %v", n, sc.Name, sc.Description, sc.Duration.D())
		}
	}
	sd, _ := Builtin("scale-down")
	if sd.Demand == nil || sd.Demand.ProfileValue() == nil || sd.Demand.From.D() != 100*time.Second {
		t.Fatalf("scale-down demand: %+v", sd.Demand)
	}
	// The run starts at the peak of the cycle and goes down.
	p := sd.Demand.ProfileValue()
	if v := p.At(sd.Demand.From.D()); v != 1 {
		t.Errorf("demand at the start = %g, want the peak 1", v)
	}
	if a, b := p.At(sd.Demand.From.D()+30*time.Second), p.At(sd.Demand.From.D()+60*time.Second); !(b < a && a < 1) {
		t.Errorf("demand does not fall: %g then %g", a, b)
	}
	cn, _ := Builtin("canary")
	if cn.Setup != "rollout" {
		t.Errorf("canary setup %q", cn.Setup)
	}
}

func TestParseSteps(t *testing.T) {
	sc, err := Parse("mine.yaml", []byte(`
duration: 2m
replicas: 4
steps:
  - at: 10s
    scale: 2
  - at: 20
    drain: busiest
    window: 30s
  - at: 30s
    kill-node: lab-node-2
  - at: 40s
    env: {ZERODROP_IDLE_TIMEOUT: 5s}
  - at: 50s
    rollout: restart
`))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "mine" || sc.Setup != "deployment" || sc.WarmupOrDefault() != 10*time.Second {
		t.Errorf("defaults: %q %q %v", sc.Name, sc.Setup, sc.WarmupOrDefault())
	}
	got := []string{}
	for _, s := range sc.Steps {
		got = append(got, s.At.D().String()+" "+s.Name())
	}
	want := "10s scale to 2|20s drain busiest|30s kill node lab-node-2|40s env ZERODROP_IDLE_TIMEOUT=5s|50s rollout"
	if strings.Join(got, "|") != want {
		t.Errorf("steps\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
	if WindowOf(sc.Steps[1]) != 30*time.Second || WindowOf(sc.Steps[2]) != DefaultWindow(ActionKillNode) {
		t.Errorf("windows %v %v", WindowOf(sc.Steps[1]), WindowOf(sc.Steps[2]))
	}
	if sc.Steps[2].Line != 10 {
		t.Errorf("line of step 2 = %d, want 10", sc.Steps[2].Line)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{``, "empty scenario"},
		{`duration: 0s`, "field duration: missing or zero"},
		{`steps: []`, "field duration"},
		{"duration: 1m\nstepz: []", `line 2: field stepz not found`},
		{"duration: 1m\nsteps:\n  - scale: 3", "line 3: field at: missing"},
		{"duration: 1m\nsteps:\n  - at: 5s", "line 3: step: no action"},
		{"duration: 1m\nsteps:\n  - at: 5s\n    scale: 2\n    drain: busiest", "line 3: step: 2 actions"},
		{"duration: 1m\nsteps:\n  - at: 5s\n    scale: -1", "line 3: field scale: -1 replicas"},
		{"duration: 1m\nsteps:\n  - at: 5s\n    scale: many", "line 4: cannot unmarshal"},
		{"duration: 1m\nsteps:\n  - at: soon\n    scale: 2", `"soon" is not a duration`},
		{"duration: 1m\nsteps:\n  - at: -5s\n    scale: 2", "cannot be negative"},
		{"duration: 1m\nsteps:\n  - at: 2m\n    scale: 2", "after the end"},
		{"duration: 1m\nsteps:\n  - at: 20s\n    scale: 2\n  - at: 10s\n    scale: 3", "line 5: steps[1]: at 10s comes before"},
		{"duration: 1m\nsteps:\n  - at: 5s\n    drain: Node_1", `field drain: "Node_1" is not a node name`},
		{"duration: 1m\nsteps:\n  - at: 5s\n    rollout: now", `field rollout: "now" (want restart)`},
		{"duration: 1m\nsteps:\n  - at: 5s\n    env: {}", "field env: empty"},
		{"duration: 1m\nsteps:\n  - at: 5s\n    env: {1X: a}", `"1X" is not a valid variable name`},
		{"duration: 1m\nsteps:\n  - at: 5s\n    profile: constant:1", "profile needs a demand section"},
		{"duration: 1m\nsteps:\n  - at: 5s\n    profile: wobble", "field profile"},
		{"duration: 1m\ndemand: {from: 10s}", "field demand.profile: missing"},
		{"duration: 1m\ndemand: {profile: 'half-sine:min=0'}", "field demand.profile"},
		{"duration: 1m\nsetup: statefulset", `field setup: "statefulset"`},
		{"duration: 1m\n---\nduration: 2m", "more than one YAML document"},
		{"duration: 1m\nreplicas: 5000", "field replicas: 5000"},
		{"[1, 2]", "cannot unmarshal"},
		{"duration: 1m\nsteps:\n  - at: 5s\n    scael: 2", `line 4: step: unknown field "scael"`},
		{"duration: 1m\nsteps:\n  - 5s", "line 3: step: want a mapping"},
	}
	for _, c := range cases {
		_, err := Parse("f.yaml", []byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "f.yaml: ") {
			t.Errorf("%q: error %v, want it to name f.yaml and contain %q", c.in, err, c.want)
		}
	}
	if _, err := Load("no-such"); err == nil || !strings.Contains(err.Error(), "built-ins: canary") {
		t.Errorf("unknown built-in: %v", err)
	}
	if _, err := Load("/nonexistent/x.yaml"); err == nil {
		t.Error("missing file: no error")
	}
}

// fakeClock advances only when the runner waits, by exactly the wait.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	c.mu.Unlock()
	return ch
}

type recorder struct {
	clock *fakeClock
	calls []string
	fail  string
}

func (r *recorder) note(s string) error {
	r.calls = append(r.calls, r.clock.Now().Format("05.000")+" "+s)
	if s == r.fail {
		return errors.New("refused")
	}
	return nil
}
func (r *recorder) Scale(_ context.Context, n int) error { return r.note("scale " + itoa(n)) }
func (r *recorder) SetProfile(_ context.Context, s string) error {
	return r.note("profile " + s)
}
func (r *recorder) Rollout(context.Context) error { return r.note("rollout") }
func (r *recorder) Drain(_ context.Context, n string) (string, error) {
	return "lab-node-3", r.note("drain " + n)
}
func (r *recorder) KillNode(_ context.Context, n string) (string, error) {
	return n, r.note("kill " + n)
}
func (r *recorder) SetEnv(_ context.Context, env map[string]string) error {
	return r.note("env " + env["A"])
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRunOrderTimesAndWindows(t *testing.T) {
	sc, err := Parse("t.yaml", []byte(`
duration: 60s
demand: {profile: "constant:1"}
steps:
  - {at: 2s, scale: 3}
  - {at: 4s, drain: busiest}
  - {at: 4s, kill-node: lab-node-1, window: 10s}
  - {at: 9s, profile: "constant:0.5"}
  - {at: 10s, env: {A: x}}
  - {at: 12s, rollout: restart}
`))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	rec := &recorder{clock: clock, fail: "env x"}
	var done []Done
	err = Run(context.Background(), sc, clock.Now(), rec, RunOptions{TimeScale: 0.5, Clock: clock, OnStep: func(d Done) { done = append(done, d) }})
	if err == nil || !strings.Contains(err.Error(), "step 4 (line 9, env A=x): refused") {
		t.Fatalf("Run error %v, want the failing env step named", err)
	}
	want := "01.000 scale 3|02.000 drain busiest|02.000 kill lab-node-1|04.500 profile constant:0.5|05.000 env x|06.000 rollout"
	if got := strings.Join(rec.calls, "|"); got != want {
		t.Errorf("calls\n got %s\nwant %s", got, want)
	}
	if len(done) != 6 {
		t.Fatalf("%d steps reported", len(done))
	}
	if w := done[2].End.Sub(done[2].Start); w != 5*time.Second {
		t.Errorf("kill-node window %v, want 10s scaled to 5s", w)
	}
	if w := done[0].End.Sub(done[0].Start); w != DefaultWindow(ActionScale)/2 {
		t.Errorf("scale window %v", w)
	}
	if done[1].Name() != "drain lab-node-3" {
		t.Errorf("drain named %q, want the node chosen", done[1].Name())
	}
	if done[4].Err == nil || done[5].Err != nil {
		t.Errorf("errors: %v / %v", done[4].Err, done[5].Err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	sc, _ := Parse("t.yaml", []byte("duration: 1h\nsteps:\n  - {at: 30m, scale: 1}\n"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := &recorder{clock: &fakeClock{}}
	if err := Run(ctx, sc, time.Now(), rec, RunOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if len(rec.calls) != 0 {
		t.Fatalf("calls after cancel: %v", rec.calls)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range Builtins() {
		data, _ := BuiltinSource(n)
		f.Add(data)
	}
	f.Add([]byte("duration: 1m\nsteps:\n  - {at: 5s, env: {A: b}}\n"))
	f.Add([]byte("duration: 1m\nsteps:\n  - at: 5s\n    scale: 2\n    drain: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if sc.Duration <= 0 {
			t.Fatalf("accepted a scenario without duration")
		}
		var last time.Duration
		for _, s := range sc.Steps {
			if s.Action == "" || s.At.D() < last || s.At.D() > sc.Duration.D() {
				t.Fatalf("accepted a bad step %+v", s)
			}
			last = s.At.D()
		}
	})
}

// The example in docs/experiment.md is a valid scenario.
func TestDocumentedExampleParses(t *testing.T) {
	doc, err := os.ReadFile("../../docs/experiment.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in docs/experiment.md")
	}
	block, _, _ := strings.Cut(rest, "```")
	sc, err := Parse("docs/experiment.md", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "drain-then-roll" || len(sc.Steps) != 3 || sc.Steps[0].Action != ActionDrain || sc.Think == nil {
		t.Errorf("parsed %+v", sc)
	}
}
