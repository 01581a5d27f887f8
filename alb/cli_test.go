package alb

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// flagsCommandLine is what `zerodrop alb` passes for its documented example.
func flagsCommandLine() CommandLine {
	return CommandLine{
		Listen: "127.0.0.1:8080", Admin: "127.0.0.1:8081", Defaults: DefaultsController, Algorithm: RoundRobin,
		Targets: []string{"127.0.0.2:8000", "127.0.0.3:8000"}, HealthPath: "/logistics/health",
		Interval: 5 * time.Second, Healthy: 2, Unhealthy: 2, DeregistrationDelay: 30 * time.Second,
		IdleTimeout: 60 * time.Second, TimeScale: 1,
	}
}

func changedSet(names ...string) func(string) bool {
	return func(n string) bool {
		for _, m := range names {
			if m == n {
				return true
			}
		}
		return false
	}
}

func TestCommandLineFromFlags(t *testing.T) {
	c := flagsCommandLine()
	cfg, err := c.Config(changedSet("target", "interval"), func(string) string { return "s3cret" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != c.Listen || cfg.Admin != c.Admin || cfg.AdminToken != "s3cret" || len(cfg.TargetGroups) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	tg := cfg.TargetGroups[0]
	if len(tg.Targets) != 2 || tg.HealthCheck.Path != "/logistics/health" || time.Duration(tg.HealthCheck.Interval) != 5*time.Second ||
		time.Duration(*tg.DeregistrationDelay) != 30*time.Second {
		t.Fatalf("target group %+v", tg)
	}
	if len(cfg.Rules) != 1 || cfg.Rules[0].Forward[0].TargetGroup != "default" {
		t.Fatalf("rules %+v", cfg.Rules)
	}
}

func TestCommandLineErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		edit func(*CommandLine)
		want string
	}{
		{func(c *CommandLine) { c.Interval = time.Second }, "--interval"},
		{func(c *CommandLine) { c.Healthy = 11 }, "--healthy"},
		{func(c *CommandLine) { c.Targets = []string{"not-an-address"} }, "--target"},
		{func(c *CommandLine) { c.Algorithm = "random" }, "--algorithm"},
		{func(c *CommandLine) { c.DeregistrationDelay = 2 * time.Hour }, "--deregistration-delay"},
	} {
		c := flagsCommandLine()
		tc.edit(&c)
		_, err := c.Config(changedSet(), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %s", err, tc.want)
		}
	}
}

func TestCommandLineConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lb.yaml")
	if err := os.WriteFile(path, []byte(goodConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c := flagsCommandLine()
	c.ConfigFile = path
	cfg, err := c.Config(changedSet("listen"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" {
		t.Errorf("--listen did not override the file: %q", cfg.Listen)
	}
	if cfg.Admin != "127.0.0.1:0" || cfg.TimeScale != 0.5 || len(cfg.TargetGroups) != 2 {
		t.Errorf("file values lost: admin %q, time scale %v, %d target groups", cfg.Admin, cfg.TimeScale, len(cfg.TargetGroups))
	}
	if _, err := c.Config(changedSet("target"), nil); err == nil || !strings.Contains(err.Error(), "--target cannot be combined with --config") {
		t.Errorf("--target with --config: %v", err)
	}
}

// -o json progress lines carry the facts as fields, not only a sentence.
func TestProgressLogger(t *testing.T) {
	var buf bytes.Buffer
	emit, err := ProgressLogger(&buf, "json")
	if err != nil {
		t.Fatal(err)
	}
	emit(Event{Kind: EventTargetState, TargetGroup: "default", Target: "127.0.0.2:8000", State: StateUnhealthy,
		PreviousState: StateHealthy, Reason: ReasonTimeout, Msg: "target group default: 127.0.0.2:8000 healthy -> unhealthy Target.Timeout"})
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("json line %q: %v", buf.String(), err)
	}
	for k, want := range map[string]string{"event": "target_state", "target_group": "default", "target": "127.0.0.2:8000",
		"state": "unhealthy", "previous_state": "healthy", "reason": "Target.Timeout"} {
		if line[k] != want {
			t.Errorf("json field %s = %v, want %q (line %s)", k, line[k], want, buf.String())
		}
	}
	if line["time"] == "" || line["msg"] == "" {
		t.Errorf("json line without time or msg: %s", buf.String())
	}
	buf.Reset()
	emit, _ = ProgressLogger(&buf, "text")
	emit(Event{Kind: EventStopping, Msg: "stopping"})
	if !strings.HasSuffix(buf.String(), " stopping\n") {
		t.Fatalf("text line %q", buf.String())
	}
	if _, err := ProgressLogger(&buf, "xml"); err == nil {
		t.Fatal("ProgressLogger accepted format xml")
	}
}
