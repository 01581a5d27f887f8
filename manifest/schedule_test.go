package manifest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// schedulePod parses a Deployment with the given grace period, main
// containers and init containers (YAML list items, indented by 8).
func schedulePod(t *testing.T, grace int, containers, initContainers string) *Pod {
	t.Helper()
	doc := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: %d
      initContainers:
%s      containers:
%s`, grace, initContainers, containers)
	m := Parse(Input{Name: "schedule.yaml", Data: []byte(doc)})
	if len(m.Workloads) != 1 {
		t.Fatalf("workloads %d, diagnostics %+v", len(m.Workloads), m.Diagnostics)
	}
	return &m.Workloads[0].Pod
}

// ctr is one container list item with an optional preStop (a shell
// script, run by sh in a Debian image) and restartPolicy.
func ctr(name, script, restart string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "        - name: %s\n          image: debian:12\n", name)
	if restart != "" {
		fmt.Fprintf(&b, "          restartPolicy: %s\n", restart)
	}
	if script != "" {
		fmt.Fprintf(&b, "          lifecycle:\n            preStop:\n              exec:\n                command: [\"sh\", \"-c\", %q]\n", script)
	}
	return b.String()
}

type stopTimes struct{ preStop, turn, sigterm, accepting, exit, kill time.Duration }

func timesOf(s ContainerStop) stopTimes {
	return stopTimes{s.PreStopStart, s.Turn, s.SIGTERM, s.StopsAccepting, s.Exit, s.Kill}
}

// TestTerminationScheduleSidecars follows the kubelet's
// killContainersWithSyncResult and terminationOrdering (v1.34): every
// preStop hook starts at the delete, native sidecars' included; a sidecar's
// SIGTERM waits for its hook and for the main containers, then the sidecar
// declared after it; all within the grace period, SIGKILL at least 2 s after
// SIGTERM. finish is 10 s throughout.
func TestTerminationScheduleSidecars(t *testing.T) {
	const s = time.Second
	finish := 10 * s
	cases := []struct {
		name  string
		pod   *Pod
		order []string
		want  []stopTimes
	}{{
		// The main container exits at 15+10. The sidecar's 10 s hook ran
		// from the delete and is over by then: SIGTERM at 25 (it was 35
		// when the hook was modelled as starting after the main exit).
		name:  "sidecar hook runs from the delete",
		pod:   schedulePod(t, 45, ctr("app", "sleep 15", ""), ctr("proxy", "sleep 10", "Always")),
		order: []string{"app", "proxy"},
		want: []stopTimes{
			{0, 0, 15 * s, 15 * s, 25 * s, 45 * s},
			{0, 25 * s, 25 * s, 25 * s, 35 * s, 45 * s},
		},
	}, {
		// A sidecar hook longer than the main containers' life delays its
		// SIGTERM to the hook's end, counted from the delete.
		name:  "sidecar hook outlasts the main containers",
		pod:   schedulePod(t, 45, ctr("app", "sleep 15", ""), ctr("proxy", "sleep 30", "Always")),
		order: []string{"app", "proxy"},
		want: []stopTimes{
			{0, 0, 15 * s, 15 * s, 25 * s, 45 * s},
			{0, 25 * s, 30 * s, 30 * s, 40 * s, 45 * s},
		},
	}, {
		// Reverse declaration order: b (declared last) goes first, a
		// waits for b; both hooks started at the delete.
		name:  "two sidecars in reverse order",
		pod:   schedulePod(t, 60, ctr("app", "sleep 5", ""), ctr("a", "sleep 1", "Always")+ctr("b", "sleep 1", "Always")),
		order: []string{"app", "b", "a"},
		want: []stopTimes{
			{0, 0, 5 * s, 5 * s, 15 * s, 60 * s},
			{0, 15 * s, 15 * s, 15 * s, 25 * s, 60 * s},
			{0, 25 * s, 25 * s, 25 * s, 35 * s, 60 * s},
		},
	}, {
		// b's hook stops its server (gracefully) at the delete: it is gone
		// at 10. a waits for the main container and b, not for c (still
		// running until 25).
		name:  "a sidecar waits for the next one only",
		pod:   schedulePod(t, 60, ctr("app", "sleep 5", ""), ctr("a", "", "Always")+ctr("b", "kill -QUIT 1", "Always")+ctr("c", "", "Always")),
		order: []string{"app", "c", "b", "a"},
		want: []stopTimes{
			{0, 0, 5 * s, 5 * s, 15 * s, 60 * s},
			{0, 15 * s, 15 * s, 15 * s, 25 * s, 60 * s},
			{0, 25 * s, 25 * s, 0, 10 * s, 60 * s},
			{0, 15 * s, 15 * s, 15 * s, 25 * s, 60 * s},
		},
	}, {
		// Everything is bounded by the grace period: the main hook is
		// given up at 20 (SIGKILL 2 s later); the sidecar's turn never
		// comes, so SIGTERM at 20 and SIGKILL at 22.
		name:  "grace period bounds every container",
		pod:   schedulePod(t, 20, ctr("app", "sleep 60", ""), ctr("proxy", "sleep 5", "Always")),
		order: []string{"app", "proxy"},
		want: []stopTimes{
			{0, 0, 20 * s, 20 * s, 22 * s, 22 * s},
			{0, 20 * s, 20 * s, 20 * s, 22 * s, 22 * s},
		},
	}, {
		// A hook that ends 1 s before the grace end still leaves 2 s
		// between SIGTERM and SIGKILL.
		name:  "2 s minimum after SIGTERM",
		pod:   schedulePod(t, 30, ctr("app", "sleep 29", ""), ""),
		order: []string{"app"},
		want:  []stopTimes{{0, 0, 29 * s, 29 * s, 31 * s, 31 * s}},
	}}
	for _, c := range cases {
		got := c.pod.TerminationSchedule(finish)
		if len(got) != len(c.want) {
			t.Errorf("%s: %d containers, want %d", c.name, len(got), len(c.want))
			continue
		}
		for i, g := range got {
			if g.Name != c.order[i] || g.Sidecar != (i > 0 && len(c.pod.Sidecars) > 0 && i >= len(c.pod.Containers)) {
				t.Errorf("%s: [%d] %s sidecar %v, want %s", c.name, i, g.Name, g.Sidecar, c.order[i])
			}
			if timesOf(g) != c.want[i] {
				t.Errorf("%s: %s: got %+v, want %+v", c.name, g.Name, timesOf(g), c.want[i])
			}
		}
	}
}
