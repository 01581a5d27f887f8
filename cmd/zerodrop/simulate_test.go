package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// --dry-run prints the seed's cycle without a cluster; -o json gives one
// point per line (a constant repeats after one step: one line).
func TestSimulateDryRun(t *testing.T) {
	r := zerodrop(t, "", "simulate", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "     9      9m0s   0.997        21       101") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = zerodrop(t, "", "simulate", "--dry-run", "-o", "json", "--profile", "constant:0.5", "--step", "30s", "--max-sessions", "40")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var p struct{ Step, Replicas, Sessions int }
	if r.code != 0 || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &p) != nil || p.Replicas != 11 || p.Sessions != 40 {
		t.Fatalf("exit %d, %d lines, first %q (%+v), stderr %s", r.code, len(lines), lines[0], p, r.stderr)
	}
}

// Every bad value is a usage error naming its flag, before any cluster is
// contacted.
func TestSimulateUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run", "--app-ratio", "0"}, "--app-ratio 0"},
		{[]string{"--dry-run", "--app-ratio", ""}, "--app-ratio"},
		{[]string{"--dry-run", "--session-ratio", "-1"}, "--session-ratio -1"},
		{[]string{"--dry-run", "--scale", "0"}, "--scale 0"},
		{[]string{"--dry-run", "--profile", "half-sine:min=5,max=100,period=10m"}, "--profile"},
		{[]string{"--dry-run", "--profile", "wobble:3"}, "--profile"},
		{[]string{"--dry-run", "--max-replicas", "1", "--app-min", "2"}, "--max-replicas 1"},
		{[]string{"--dry-run", "-o", "yaml"}, "-o"},
		{[]string{"--target", "pod/x"}, "--target"},
		{[]string{"--target", "deployment/x", "--load-target", "deployment/x"}, "--load-target"},
		{[]string{"--load-target", "deployment/load", "--sessions-per-pod", "0"}, "--sessions-per-pod"},
		{[]string{"--duration", "-1s", "--target", "deployment/x"}, "--duration"},
		{[]string{}, "--target or --load-target"},
		{[]string{"--target", "deployment/x", "--kubeconfig", "/nonexistent/kubeconfig"}, "--kubeconfig"},
		{[]string{"--target", "deployment/x", "--metrics-addr", "127.0.0.1:99999"}, "--metrics-addr"},
	} {
		r := zerodrop(t, "", append([]string{"simulate"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("simulate %v: exit %d, stderr %q; want 2 naming %s", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
