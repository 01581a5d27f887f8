package main

import (
	"strings"
	"testing"
)

// Values are never silently ignored: each is a usage error (exit 2) naming
// the flag, found before anything starts.
func TestValuesAreNeverSilentlyIgnored(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"alb", "--time-scale", "0", "--target", "127.0.0.1:1"}, "--time-scale"},
		{[]string{"alb", "--listen", "127.0.0.1:70000"}, "--listen"},
		{[]string{"alb", "--listen", "127.0.0.1:18089", "--admin", "127.0.0.1:18089"}, "--admin"},
		{[]string{"serve", "--addr", "127.0.0.1:18088", "--admin-addr", "127.0.0.1:18088"}, "--admin-addr"},
		{[]string{"serve", "--addr", "127.0.0.1:99999"}, "--addr"},
		{[]string{"serve", "--db", "sqlite:/nonexistent-zerodrop-dir/orders.db"}, "does not exist"},
	} {
		r := zerodrop(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("zerodrop %v: exit %d, stderr %q; want 2 naming %s", tc.args, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "ready") || strings.Contains(r.stderr, "listening") {
			t.Errorf("zerodrop %v started before failing: %q", tc.args, r.stderr)
		}
	}
	// An empty config file.
	r := zerodrop(t, "", "alb", "--config", "/dev/null")
	if r.code != 2 || !strings.Contains(r.stderr, "empty") {
		t.Errorf("alb --config /dev/null: exit %d, stderr %q", r.code, r.stderr)
	}
}
