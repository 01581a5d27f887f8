package alb

import (
	"errors"
	"strings"
	"testing"
)

// A value the emulator would replace by its default, or that cannot work,
// is a usage error naming the flag or the file's field: never silently a
// different value.
func TestValuesAreNeverSilentlyIgnored(t *testing.T) {
	for _, tc := range []struct {
		edit    func(*CommandLine)
		changed []string
		want    string
	}{
		{func(c *CommandLine) { c.TimeScale = 0 }, []string{"time-scale"}, "--time-scale 0"},
		{func(c *CommandLine) { c.TimeScale = -1 }, []string{"time-scale"}, "--time-scale -1"},
		{func(c *CommandLine) { c.Listen = "127.0.0.1:99999" }, nil, "--listen"},
		{func(c *CommandLine) { c.Admin = "127.0.0.1:70000" }, nil, "--admin"},
		{func(c *CommandLine) { c.Admin = c.Listen }, nil, "--admin"},
	} {
		c := flagsCommandLine()
		tc.edit(&c)
		_, err := c.Config(changedSet(tc.changed...), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %s", err, tc.want)
		}
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"empty file":      {"", "lb.yaml: the file is empty"},
		"only comments":   {"# nothing yet\n", "lb.yaml: targetGroups: no target group"},
		"no target group": {"listen: 127.0.0.1:8080\n", "lb.yaml: targetGroups: no target group"},
		"time scale 0":    {"timeScale: 0\ntargetGroups: [{name: a}]\n", "lb.yaml:1: timeScale: 0: want a number > 0"},
	} {
		_, err := ParseConfig([]byte(tc.yaml), "lb.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

// Admin API errors speak the API: its field names, its units (seconds,
// counts), JSON kinds; never Go type or struct names.
func TestAdminAPIErrorsSpeakTheAPI(t *testing.T) {
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}))
	base := tl.AdminURL() + "/v1/"
	for _, tc := range []struct{ op, body, want string }{
		{"ModifyTargetGroup", `{"TargetGroupName":"app","HealthCheckIntervalSeconds":400}`, "HealthCheckIntervalSeconds: 400 is out of range 5–300"},
		{"ModifyTargetGroup", `{"TargetGroupName":"app","HealthCheckTimeoutSeconds":1}`, "HealthCheckTimeoutSeconds: 1 is out of range 2–120"},
		{"ModifyTargetGroup", `{"TargetGroupName":"app","HealthyThresholdCount":11}`, "HealthyThresholdCount: 11 is out of range 2–10"},
		{"ModifyTargetGroup", `{"TargetGroupName":"app","HealthCheckIntervalSeconds":5,"HealthCheckTimeoutSeconds":10}`, "HealthCheckTimeoutSeconds: 10 must not exceed HealthCheckIntervalSeconds 5"},
		{"ModifyTargetGroup", `{"TargetGroupName":"app","HealthCheckIntervalSeconds":"10"}`, "HealthCheckIntervalSeconds: want a whole number, got a string"},
		{"ModifyTargetGroup", `{"TargetGroupName":"app","Matcher":{"HttpCode":"600"}}`, "Matcher.HttpCode:"},
		{"RegisterTargets", `{"TargetGroupName":"app","Targets":[{"Id":"127.0.0.1","Port":70000}]}`, "Targets[0].Port: 70000 is out of range 1–65535"},
		{"RegisterTargets", `{"TargetGroupName":"app","Targets":[{"Id":"web-1","Port":80}]}`, `Targets[0].Id: "web-1" is not an IP address`},
		{"RegisterTargets", `{"TargetGroupName":"app","Targets":{"Id":"127.0.0.1"}}`, "Targets: want a list, got an object"},
		{"RegisterTargets", `{"TargetGroupName":"app","targets":[]}`, `unknown field "targets"`},
		{"ModifyRule", `{"Priority":1,"Actions":[{"Type":"forward","ForwardConfig":{"TargetGroups":[{"TargetGroupName":"app","Weight":1000}]}}]}`, "Actions[0].ForwardConfig.TargetGroups[0].Weight: 1000 is out of range 0–999"},
		{"ModifyRule", `{"Priority":1,"Actions":[{"Type":"forward","ForwardConfig":{"TargetGroups":[{"TargetGroupName":"nope"}]}}]}`, `Actions[0].ForwardConfig.TargetGroups[0].TargetGroupName: no target group "nope"`},
	} {
		_, m := postRaw(t, base+tc.op, "", tc.body)
		e, _ := m["Error"].(map[string]any)
		msg, _ := e["Message"].(string)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s: message %q, want %q", tc.op, tc.body, msg, tc.want)
		}
		for _, goism := range []string{"Go struct", "of type", "ModifyTargetGroupInput", "TargetDescription", "int", "time.Duration", "5m0s"} {
			if strings.Contains(strings.ReplaceAll(msg, "Interval", ""), goism) && !strings.Contains(tc.want, goism) {
				t.Errorf("%s %s: message %q speaks Go (%q)", tc.op, tc.body, msg, goism)
			}
		}
	}
}

// Clearing a fault on ip:port while the bare IP has one does not pretend
// to clear it: it is refused, and the fault stays in effect.
func TestClearingAFaultIsTruthful(t *testing.T) {
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}))
	ctx := t.Context()
	if err := tl.admin.SetTargetFault(ctx, SetTargetFaultInput{Address: "127.0.0.3", Fault: "blackhole"}); err != nil {
		t.Fatal(err)
	}
	err := tl.admin.SetTargetFault(ctx, SetTargetFaultInput{Address: "127.0.0.3:8000", Fault: "none"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "ValidationError" || !strings.Contains(ae.Message, "clear it with Address 127.0.0.3") {
		t.Fatalf("clearing ip:port under an IP fault: %v", err)
	}
	d, err := tl.admin.DescribeLoadBalancer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Faults["127.0.0.3"] != "blackhole" {
		t.Fatalf("faults after the refused clear: %v", d.Faults)
	}
	if err := tl.admin.SetTargetFault(ctx, SetTargetFaultInput{Address: "127.0.0.3", Fault: "none"}); err != nil {
		t.Fatal(err)
	}
	if d, _ = tl.admin.DescribeLoadBalancer(ctx); len(d.Faults) != 0 {
		t.Fatalf("faults after clearing the IP: %v", d.Faults)
	}
}
