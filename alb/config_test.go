package alb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodConfig = `# a canary setup
name: shop
listen: 127.0.0.1:0
admin: 127.0.0.1:0
timeScale: 0.5
defaults: api
idleTimeout: 30s
reuseClosedIdleConnections: true
controlPlaneLatency:
  default: 2s
  perOperation:
    ModifyRule: 70s
targetGroups:
  - name: stable
    healthCheck:
      path: /logistics/health
      interval: 10s
      successCodes: 200-399
    deregistrationDelay: 30s
    targets: [127.0.0.2:8000, 127.0.0.3:8000]
  - name: canary
    algorithm: least_outstanding_requests
    slowStart: 30s
rules:
  - priority: 10
    pathPrefixes: [/api]
    hosts: ["*.example.com"]
    forward:
      - targetGroup: stable
        weight: 90
      - targetGroup: canary
        weight: 10
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(goodConfig), "shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	full, err := c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	s := full.TargetGroups[0]
	if s.HealthCheck.Path != "/logistics/health" || time.Duration(s.HealthCheck.Interval) != 10*time.Second ||
		s.HealthCheck.HealthyThreshold != 5 || time.Duration(*s.DeregistrationDelay) != 30*time.Second || len(s.Targets) != 2 {
		t.Fatalf("stable group %+v", s)
	}
	cn := full.TargetGroups[1]
	if time.Duration(*cn.DeregistrationDelay) != 300*time.Second || cn.Algorithm != LeastOutstandingRequests || time.Duration(cn.HealthCheck.Interval) != 30*time.Second {
		t.Fatalf("canary group %+v", cn)
	}
	if !full.ReuseClosedIdleConnections {
		t.Fatal("reuseClosedIdleConnections: true not read")
	}
	if full.ControlPlaneLatency.For("ModifyRule") != 70*time.Second || full.ControlPlaneLatency.For("RegisterTargets") != 2*time.Second {
		t.Fatalf("latency %+v", full.ControlPlaneLatency)
	}
}

func TestParseConfigErrorsNameFileLineField(t *testing.T) {
	cases := []struct {
		name, yaml, field string
		line              int
	}{
		{"unknown top-level field", "name: x\nlisten: 127.0.0.1:1\nbogus: 1\n", "bogus", 3},
		{"unknown nested field", "targetGroups:\n  - name: a\n    healthCheck:\n      intervall: 5s\n", "intervall", 4},
		{"duration without unit", "targetGroups:\n  - name: a\n    healthCheck:\n      interval: 5\n", "interval", 4},
		{"interval out of range", "targetGroups:\n  - name: a\n    healthCheck:\n      interval: 1s\n", "targetGroups[0].healthCheck.interval", 4},
		{"threshold out of range", "targetGroups:\n  - name: a\n    healthCheck:\n      unhealthyThreshold: 11\n", "targetGroups[0].healthCheck.unhealthyThreshold", 4},
		{"bad success codes", "targetGroups:\n  - name: a\n    healthCheck:\n      successCodes: 200-600\n", "targetGroups[0].healthCheck.successCodes", 4},
		{"delay out of range", "targetGroups:\n  - name: a\n    deregistrationDelay: 2h\n", "targetGroups[0].deregistrationDelay", 3},
		{"bad target", "targetGroups:\n  - name: a\n    targets: [localhost:80]\n", "targetGroups[0].targets[0]", 3},
		{"unknown group in rule", "targetGroups:\n  - name: a\nrules:\n  - priority: 1\n    forward:\n      - targetGroup: b\n", "rules[0].forward[0].targetGroup", 6},
		{"weight out of range", "targetGroups:\n  - name: a\nrules:\n  - priority: 1\n    forward:\n      - targetGroup: a\n        weight: 1000\n", "rules[0].forward[0].weight", 7},
		{"duplicate priority", "targetGroups:\n  - name: a\nrules:\n  - priority: 1\n    forward: [{targetGroup: a}]\n  - priority: 1\n    forward: [{targetGroup: a}]\n", "rules[1].priority", 4},
		{"unknown latency op", "controlPlaneLatency:\n  perOperation:\n    Reboot: 1s\n", "controlPlaneLatency.perOperation.Reboot", 3},
		{"bad time scale", "timeScale: -1\n", "timeScale", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), "lb.yaml")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a *ConfigError", err)
			}
			if ce.File != "lb.yaml" || ce.Field != tc.field || ce.Line != tc.line {
				t.Fatalf("error %q: file %q field %q line %d, want field %q line %d", err, ce.File, ce.Field, ce.Line, tc.field, tc.line)
			}
			if !strings.HasPrefix(err.Error(), "lb.yaml:") {
				t.Fatalf("message %q does not start with the file", err)
			}
		})
	}
	// The removed key says what replaced it.
	if _, err := ParseConfig([]byte("name: x\ncheckIdleConnections: true\n"), "lb.yaml"); err == nil ||
		!strings.Contains(err.Error(), "lb.yaml:2: checkIdleConnections") || !strings.Contains(err.Error(), "reuseClosedIdleConnections") {
		t.Errorf("removed checkIdleConnections: error %v, want one naming the line and its replacement", err)
	}
	if _, err := ParseConfig([]byte("name: [unclosed\n"), "x.yaml"); err == nil {
		t.Error("broken YAML accepted")
	}
}

func TestLoadConfigFileAndStart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lb.yaml")
	if err := os.WriteFile(p, []byte(goodConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfigFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c.AccessLog = filepath.Join(dir, "access.log")
	lb, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := lb.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfigFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("targetGroups:\n  - name: a\n    healthCheck:\n      interval: 5\n"))
	f.Add([]byte("rules:\n  - priority: 0\n"))
	f.Add([]byte("{\"name\": \"x\", \"timeScale\": 1e400}"))
	f.Add([]byte("controlPlaneLatency: {perOperation: {ModifyRule: -1s}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "fuzz.yaml")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		// Whatever parses must build a load balancer (without creating
		// files the fuzzer names).
		c.AccessLog = ""
		lb, err := New(c, Options{})
		if err != nil {
			t.Fatalf("accepted config does not build: %v", err)
		}
		lb.Close(context.Background())
	})
}
