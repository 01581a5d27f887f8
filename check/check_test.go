package check

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/manifest"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

func load(t testing.TB, files ...string) *manifest.Model {
	t.Helper()
	var inputs []manifest.Input
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, manifest.Input{Name: filepath.ToSlash(f), Data: data})
	}
	return manifest.Parse(inputs...)
}

func ids(r *Report) []string {
	var out []string
	for _, f := range r.All() {
		out = append(out, f.RuleID)
	}
	return out
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./check -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run with -update after checking the change):\n%s", path, got)
	}
}

func text(t *testing.T, r *Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteText(&buf, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRules: for every rule a manifest where it fires and the fixed one
// where nothing fires.
func TestRules(t *testing.T) {
	for _, rule := range Rules() {
		t.Run(rule.ID, func(t *testing.T) {
			fire := filepath.Join("testdata", "rules", rule.ID+"-fire.yaml")
			fixed := filepath.Join("testdata", "rules", rule.ID+"-fixed.yaml")
			r := Run(load(t, fire), DefaultConfig())
			if !slices.Contains(ids(r), rule.ID) {
				t.Errorf("%s: %s does not fire; findings %v", fire, rule.ID, ids(r))
			}
			for _, f := range r.All() {
				if f.RuleID != rule.ID {
					continue
				}
				if len(f.Evidence) == 0 || f.Evidence[0].Pos.Line == 0 || f.Evidence[0].Pos.File != filepath.ToSlash(fire) {
					t.Errorf("%s: evidence without file:line: %+v", rule.ID, f.Evidence)
				}
				if f.Fix == "" || f.Why == "" || f.Severity != rule.Severity {
					t.Errorf("%s: finding lacks fix/why or has severity %v", rule.ID, f.Severity)
				}
			}
			golden(t, strings.TrimSuffix(fire, ".yaml")+".golden", text(t, r))
			rf := Run(load(t, fixed), DefaultConfig())
			if got := ids(rf); len(got) != 0 {
				t.Errorf("%s: the fixed manifest still has findings %v", fixed, got)
			}
			golden(t, strings.TrimSuffix(fixed, ".yaml")+".golden", text(t, rf))
		})
	}
}

// TestSeeds: the AWS sample's before and after setups, as published.
func TestSeeds(t *testing.T) {
	cases := []struct {
		name      string
		fire, not []string
	}{
		// before: no readiness probe, no delay, health check on /.
		{"before", []string{IDNoReadiness, IDNoTerminationDelay, IDUserPathHealthCheck, IDNamespaceNoGateLabel, IDDeregAboveGrace, IDDisruptionRemovesAll},
			[]string{IDGraceTooShort, IDLaxSuccessCodes, IDManifest}},
		// after: the interval of 3 s is rejected (minimum 5), the preStop
		// sleeps 120 s in a 30 s grace period, 200-301 accepts redirects.
		{"after", []string{IDManifest, IDGraceTooShort, IDDetectionMismatch, IDLaxSuccessCodes, IDNamespaceNoGateLabel, IDDeregAboveGrace, IDDisruptionRemovesAll},
			[]string{IDNoReadiness, IDNoTerminationDelay, IDPathMismatch, IDUserPathHealthCheck}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("..", "manifest", "testdata", "seed", c.name+".yaml")
			r := Run(load(t, path), DefaultConfig())
			got := ids(r)
			for _, id := range c.fire {
				if !slices.Contains(got, id) {
					t.Errorf("%s should fire on the seed's %s setup; got %v", id, c.name, got)
				}
			}
			for _, id := range c.not {
				if slices.Contains(got, id) {
					t.Errorf("%s should not fire on the seed's %s setup", id, c.name)
				}
			}
			if !r.HasErrors() {
				t.Errorf("the seed's %s setup should have error-level findings", c.name)
			}
			golden(t, filepath.Join("testdata", "seed-"+c.name+".golden"), text(t, r))
		})
	}
}

func TestTerminationTimeline(t *testing.T) {
	r := Run(load(t, "../manifest/testdata/seed/before.yaml"), DefaultConfig())
	tl := r.Workloads[0].Termination
	if len(tl.Windows) != 1 || tl.Windows[0].From != 0 || tl.Windows[0].To != 10*time.Second {
		t.Fatalf("before: want one failure window 0s–10s, got %+v", tl.Windows)
	}
	// A longer propagation estimate widens the window.
	cfg := DefaultConfig()
	cfg.DeregistrationPropagation = 90 * time.Second
	r = Run(load(t, "../manifest/testdata/seed/before.yaml"), cfg)
	if w := r.Workloads[0].Termination.Windows; len(w) != 1 || w[0].To != 90*time.Second {
		t.Fatalf("before with 90s propagation: got %+v", w)
	}
	// The fixed manifest has no window: the drain app keeps serving 15 s,
	// the ALB marks it unhealthy after 5 s × 2.
	r = Run(load(t, "testdata/rules/ZD019-fixed.yaml"), DefaultConfig())
	if w := r.Workloads[0].Termination.Windows; len(w) != 0 {
		t.Fatalf("fixed: want no window, got %+v", w)
	}
	if s := r.Workloads[0].Startup.Windows; len(s) != 0 {
		t.Fatalf("fixed (readiness gate): want no startup window, got %+v", s)
	}
	r = Run(load(t, "testdata/rules/ZD011-fire.yaml"), DefaultConfig())
	s := r.Workloads[0].Startup.Windows
	// no gate: Ready at 0s, registered at 10s, healthy after 2 × 5s.
	if len(s) != 1 || s[0].From != 0 || s[0].To != 20*time.Second {
		t.Fatalf("no readiness gate: want startup window 0s–20s, got %+v", s)
	}
}

// TestConfigFlagsMatter: the estimates change the verdict.
func TestConfigFlagsMatter(t *testing.T) {
	m := load(t, "testdata/rules/ZD007-fire.yaml")
	cfg := DefaultConfig()
	cfg.DeregistrationPropagation = 2 * time.Second
	if slices.Contains(ids(Run(m, cfg)), IDDelayBelowDereg) {
		t.Error("a 3 s delay should satisfy a 2 s propagation estimate")
	}
	m = load(t, "testdata/rules/ZD008-fixed.yaml")
	cfg = DefaultConfig()
	cfg.MaxRequestDuration = time.Minute
	got := ids(Run(m, cfg))
	if !slices.Contains(got, IDGraceTooShort) || !slices.Contains(got, IDDeregBelowRequest) {
		t.Errorf("a 60 s longest request should fire ZD008 and ZD013, got %v", got)
	}
}

func patch(t *testing.T, file, old, new string) *manifest.Model {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	return manifest.Parse(manifest.Input{Name: file, Data: []byte(strings.Replace(s, old, new, 1))})
}

func TestMaxRequestAnnotation(t *testing.T) {
	m := patch(t, "testdata/rules/ZD008-fixed.yaml", "  namespace: shop\nspec:\n  replicas", "  namespace: shop\n  annotations:\n    zerodrop.dev/max-request-duration: 1m\nspec:\n  replicas")
	got := ids(Run(m, DefaultConfig()))
	if !slices.Contains(got, IDGraceTooShort) {
		t.Errorf("annotation 1m should fire ZD008, got %v", got)
	}
	m = patch(t, "testdata/rules/ZD008-fixed.yaml", "  namespace: shop\nspec:\n  replicas", "  namespace: shop\n  annotations:\n    zerodrop.dev/max-request-duration: soon\nspec:\n  replicas")
	r := Run(m, DefaultConfig())
	if got := ids(r); !slices.Contains(got, IDManifest) {
		t.Errorf("a bad annotation should be reported, got %v", got)
	}
}

func TestIgnoreAnnotation(t *testing.T) {
	m := patch(t, "testdata/rules/ZD012-fire.yaml", "  annotations:\n    alb.ingress.kubernetes.io/scheme", "  annotations:\n    zerodrop.dev/ignore: ZD004, ZD012\n    alb.ingress.kubernetes.io/scheme")
	r := Run(m, DefaultConfig())
	if got := ids(r); slices.Contains(got, IDLaxSuccessCodes) || r.Ignored != 1 {
		t.Errorf("ZD012 should be ignored by the Ingress annotation: findings %v, ignored %d", got, r.Ignored)
	}
	// On the workload.
	m = patch(t, "testdata/rules/ZD019-fire.yaml", "  namespace: shop\nspec:\n  replicas", "  namespace: shop\n  annotations:\n    zerodrop.dev/ignore: ZD019\nspec:\n  replicas")
	if r := Run(m, DefaultConfig()); len(r.All()) != 0 || r.Ignored != 1 {
		t.Errorf("ZD019 should be ignored by the Deployment annotation: %v", ids(r))
	}
}

func TestJSON(t *testing.T) {
	r := Run(load(t, "../manifest/testdata/seed/after.yaml"), DefaultConfig())
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Version   string
		Workloads []struct {
			Object   string
			Findings []struct {
				RuleID   string
				Severity string
				Evidence []struct{ Pos manifest.Pos }
			}
			Termination struct {
				Events []struct {
					At   string
					What string
				}
			}
		}
		Config struct{ DeregistrationPropagation string }
		Counts map[string]int
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Version != "zerodrop.check/v2" || len(back.Workloads) != 1 || back.Counts["error"] != r.Counts["error"] {
		t.Fatalf("JSON report: %+v", back)
	}
	if f := back.Workloads[0].Findings[0]; f.Severity != "error" || f.Evidence[0].Pos.Line == 0 {
		t.Errorf("first finding: %+v", f)
	}
	if len(back.Workloads[0].Termination.Events) == 0 {
		t.Error("no termination timeline in JSON")
	}
	// Durations as Kubernetes writes them, not nanoseconds.
	if back.Config.DeregistrationPropagation != "10s" || back.Workloads[0].Termination.Events[1].At != "10s" {
		t.Errorf("durations: config %q, second event at %q; want \"10s\"", back.Config.DeregistrationPropagation, back.Workloads[0].Termination.Events[1].At)
	}
}

// TestSARIF validates the SARIF 2.1.0 structure code scanning needs.
func TestSARIF(t *testing.T) {
	r := Run(load(t, "../manifest/testdata/seed/after.yaml"), DefaultConfig())
	var buf bytes.Buffer
	if err := r.WriteSARIF(&buf); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log["version"] != "2.1.0" || !strings.Contains(fmt.Sprint(log["$schema"]), "sarif-2.1.0") {
		t.Fatalf("version/schema: %v %v", log["version"], log["$schema"])
	}
	runs := log["runs"].([]any)
	if len(runs) != 1 {
		t.Fatalf("want 1 run, got %d", len(runs))
	}
	run := runs[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	if driver["name"] != "zerodrop" {
		t.Errorf("driver name %v", driver["name"])
	}
	rules := driver["rules"].([]any)
	ruleIdx := map[string]int{}
	for i, x := range rules {
		rule := x.(map[string]any)
		id := rule["id"].(string)
		if _, dup := ruleIdx[id]; dup {
			t.Errorf("duplicate rule %s", id)
		}
		ruleIdx[id] = i
		help := rule["help"].(map[string]any)["text"].(string)
		short := rule["shortDescription"].(map[string]any)["text"].(string)
		if help == "" || short == "" {
			t.Errorf("rule %s without help or description", id)
		}
		if lvl := rule["defaultConfiguration"].(map[string]any)["level"]; lvl != "error" && lvl != "warning" && lvl != "note" {
			t.Errorf("rule %s level %v", id, lvl)
		}
	}
	if len(rules) != len(Rules()) {
		t.Errorf("want %d rules, got %d", len(Rules()), len(rules))
	}
	results := run["results"].([]any)
	if len(results) != len(r.All()) || len(results) == 0 {
		t.Fatalf("want %d results, got %d", len(r.All()), len(results))
	}
	foundSuccessCodes := false
	for _, x := range results {
		res := x.(map[string]any)
		id := res["ruleId"].(string)
		if idx, ok := ruleIdx[id]; !ok || int(res["ruleIndex"].(float64)) != idx {
			t.Errorf("result %s: ruleIndex %v does not match", id, res["ruleIndex"])
		}
		if res["message"].(map[string]any)["text"].(string) == "" {
			t.Errorf("result %s without message", id)
		}
		locs := res["locations"].([]any)
		if len(locs) != 1 {
			t.Fatalf("result %s: want 1 location, got %d", id, len(locs))
		}
		pl := locs[0].(map[string]any)["physicalLocation"].(map[string]any)
		uri := pl["artifactLocation"].(map[string]any)["uri"].(string)
		line := int(pl["region"].(map[string]any)["startLine"].(float64))
		if uri != "../manifest/testdata/seed/after.yaml" || line < 1 {
			t.Errorf("result %s: location %s:%d", id, uri, line)
		}
		if id == IDLaxSuccessCodes {
			foundSuccessCodes = true
			if line != 71 { // alb.ingress.kubernetes.io/success-codes: '200-301'
				t.Errorf("ZD012 at line %d, want 71", line)
			}
		}
	}
	if !foundSuccessCodes {
		t.Error("no ZD012 result")
	}
}

func TestTextColor(t *testing.T) {
	r := Run(load(t, "testdata/rules/ZD001-fire.yaml"), DefaultConfig())
	var plain, color bytes.Buffer
	if err := r.WriteText(&plain, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteText(&color, TextOptions{Color: true, Explain: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(color.String(), "\x1b[31m") {
		t.Error("colour codes only with Color")
	}
	if !strings.Contains(color.String(), "why: ") {
		t.Error("Explain adds the why text")
	}
}

func TestExplain(t *testing.T) {
	for _, r := range Rules() {
		got, ok := Lookup(strings.ToLower(r.ID))
		if !ok || got.ID != r.ID {
			t.Fatalf("lookup %s", r.ID)
		}
		if byName, ok := Lookup(r.Name); !ok || byName.ID != r.ID {
			t.Fatalf("lookup by name %s", r.Name)
		}
		if e := Explain(r); !strings.Contains(e, r.Why) || !strings.Contains(e, r.Fix) {
			t.Fatalf("explain %s", r.ID)
		}
	}
	if _, ok := Lookup("ZD999"); ok {
		t.Fatal("ZD999 should not exist")
	}
}
