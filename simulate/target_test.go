package simulate

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{
		"deployment/logistics":              "deployments.apps/logistics",
		"deploy/logistics":                  "deployments.apps/logistics",
		"Deployment/logistics":              "deployments.apps/logistics",
		"rollout/logistics":                 "rollouts.argoproj.io/logistics",
		"ro/canary":                         "rollouts.argoproj.io/canary",
		"statefulset/db":                    "statefulsets.apps/db",
		"rs/x":                              "replicasets.apps/x",
		"widgets.example.com/w1":            "widgets.example.com/w1",
		"rollouts.argoproj.io/logistics.v2": "rollouts.argoproj.io/logistics.v2",
	} {
		tg, err := ParseTarget(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if tg.String() != want {
			t.Errorf("%s: %s, want %s", in, tg, want)
		}
		// String reads back as the same target.
		if back, err := ParseTarget(tg.String()); err != nil || back != tg {
			t.Errorf("%s: %s reads back as %v (%v)", in, tg, back, err)
		}
	}
	for in, want := range map[string]string{
		"":                       "want KIND/NAME",
		"logistics":              "want KIND/NAME",
		"deployment/":            "want KIND/NAME",
		"/logistics":             "want KIND/NAME",
		"pod/logistics":          `unknown kind "pod"`,
		"deployment/Logistics":   "name \"Logistics\"",
		"deployment/a/b":         `name "a/b"`,
		"Widgets.example/x":      `resource "Widgets"`,
		"widgets.exa_mple.com/x": `group "exa_mple.com"`,
	} {
		_, err := ParseTarget(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %s", in, err, want)
		}
	}
}

// Any input gives a target or an error, never a panic; a target read
// prints as something that reads back the same.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"deployment/logistics", "rollout/x", "widgets.example.com/w", "", "/", "a/b/c", "deploy/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			if tg != (Target{}) {
				t.Fatalf("%q: error %v with a target %v", s, err, tg)
			}
			return
		}
		back, err := ParseTarget(tg.String())
		if err != nil || back != tg {
			t.Fatalf("%q: %s reads back as %v (%v)", s, tg, back, err)
		}
	})
}

// Any ConfigMap data gives a State or an error naming the key, never a
// panic; a State written reads back the same.
func FuzzParseState(f *testing.F) {
	f.Add("2026-12-03T10:00:00Z", "4", "profile=x", true)
	f.Add("yesterday", "-7", "", false)
	f.Fuzz(func(t *testing.T, start, step, cycle string, withStep bool) {
		data := map[string]string{"start": start, "cycle": cycle}
		if withStep {
			data["step"] = step
		}
		s, err := parseState(data)
		if err != nil {
			if !strings.Contains(err.Error(), "key ") {
				t.Fatalf("error %v names no key", err)
			}
			return
		}
		back, err := parseState(stateData(s))
		if err != nil || !back.Start.Equal(s.Start) || back.Step != s.Step || back.Cycle != s.Cycle {
			t.Fatalf("%+v reads back as %+v (%v)", s, back, err)
		}
	})
}
