// Package scenario reads the lab's scenario files and runs them.
//
// A scenario is a small YAML timeline of what happens to a setup while
// load runs through its load balancer: at 20s scale to 4, at 30s drain the
// busiest node, at 40s kill a node, roll out, set the demand profile. The
// built-in scenarios (scale-down, rolling-update, node-drain, node-loss,
// canary, keepalive) are such files, embedded; users write their own.
//
// Times in a file are before the lab's time scale; Run multiplies them.
package scenario

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"zerodrop.dev/zerodrop/load"
)

// Scenario is one timeline, read from a file.
type Scenario struct {
	// Name identifies the scenario (a built-in's name, or the file's).
	Name string `yaml:"name"`
	// Description says in a sentence or two what the scenario shows.
	Description string `yaml:"description"`
	// Duration is how long load runs after the warm-up (required).
	Duration Duration `yaml:"duration"`
	// Warmup is load before the first step, so the baseline is measured
	// (default 10s).
	Warmup *Duration `yaml:"warmup"`
	// Replicas of the app at the start when there is no demand cycle
	// (default: the manifests' own).
	Replicas int `yaml:"replicas"`
	// Sessions is the number of concurrent load sessions when there is no
	// demand cycle (default: the experiment's scale preset).
	Sessions int `yaml:"sessions"`
	// Think is the pause between two sessions of one user (default: the
	// experiment's).
	Think *Duration `yaml:"think"`
	// Demand, when set, drives the app's replicas and the load sessions
	// with the demand cycle of zerodrop simulate.
	Demand *Demand `yaml:"demand"`
	// Setup names the manifests' kind of workload this scenario needs:
	// "deployment" (default) or "rollout" (an Argo Rollout).
	Setup string `yaml:"setup"`
	// Steps is the timeline, in time order.
	Steps []Step `yaml:"steps"`
}

// Demand is a demand cycle: a profile of demand in [0,1] that the
// simulator turns into replicas and sessions.
type Demand struct {
	// Profile is a load profile in load's inline syntax
	// (half-sine:min=0,max=1,period=200s,step=10s).
	Profile string `yaml:"profile"`
	// From is where in the profile the scenario starts (the peak of a half
	// sine for a down slope).
	From Duration `yaml:"from"`

	profile load.Profile
	line    int
}

// ProfileValue returns the parsed profile.
func (d *Demand) ProfileValue() load.Profile { return d.profile }

// Action is what a step does.
type Action string

// Actions of a step; each step has exactly one.
const (
	// ActionScale sets the app's replicas (Step.Replicas).
	ActionScale Action = "scale"
	// ActionProfile replaces the demand profile (Step.Profile).
	ActionProfile Action = "profile"
	// ActionRollout restarts the app's pods through a rollout (a
	// Deployment's rolling update or a Rollout's canary steps).
	ActionRollout Action = "rollout"
	// ActionDrain cordons a node and evicts its pods (Step.Node).
	ActionDrain Action = "drain"
	// ActionKillNode makes a node vanish without a drain (Step.Node).
	ActionKillNode Action = "kill-node"
	// ActionEnv sets environment variables on the app's container, which
	// rolls the pods (Step.Env).
	ActionEnv Action = "env"
)

var actions = []Action{ActionScale, ActionProfile, ActionRollout, ActionDrain, ActionKillNode, ActionEnv}

// Node choices a step can name instead of a node.
const (
	// NodeBusiest is the node running the most pods of the app.
	NodeBusiest = "busiest"
)

// Step is one moment of the timeline.
type Step struct {
	// At is the time from the end of the warm-up.
	At Duration
	// Action is what happens.
	Action Action
	// Replicas for ActionScale.
	Replicas int
	// Profile for ActionProfile (load's inline syntax).
	Profile string
	// Node for ActionDrain and ActionKillNode: a node name or NodeBusiest.
	Node string
	// Env for ActionEnv.
	Env map[string]string
	// Window is how long after At requests count as inside this step's
	// disruption (default: DefaultWindow of the action).
	Window Duration
	// Line is the step's line in its file.
	Line int
}

// DefaultWindow is the disruption window of an action when the step does
// not set one (before time scale): long enough for the termination chain
// it starts (deregistration propagation, a drain delay, the grace period).
func DefaultWindow(a Action) time.Duration {
	switch a {
	case ActionKillNode:
		return 90 * time.Second
	case ActionRollout, ActionEnv, ActionDrain:
		return 60 * time.Second
	default:
		return 40 * time.Second
	}
}

// Name is a short description of the step ("scale to 4", "drain busiest").
func (s Step) Name() string {
	switch s.Action {
	case ActionScale:
		return fmt.Sprintf("scale to %d", s.Replicas)
	case ActionProfile:
		return "profile " + s.Profile
	case ActionRollout:
		return "rollout"
	case ActionDrain:
		return "drain " + s.Node
	case ActionKillNode:
		return "kill node " + s.Node
	case ActionEnv:
		keys := make([]string, 0, len(s.Env))
		for k, v := range s.Env {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		return "env " + strings.Join(keys, ",")
	}
	return string(s.Action)
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML reads "30s", "1m30s" or a plain number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 30s", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		var secs float64
		if _, serr := fmt.Sscanf(n.Value, "%g", &secs); serr != nil || fmt.Sprint(secs) != strings.TrimSpace(n.Value) {
			return fmt.Errorf("line %d: %q is not a duration (want e.g. 30s or 2m)", n.Line, n.Value)
		}
		v = time.Duration(secs * float64(time.Second))
	}
	if v < 0 {
		return fmt.Errorf("line %d: %q: a duration cannot be negative", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as "30s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// stepDoc is a step as written: one action key besides at and window.
type stepDoc struct {
	At       *Duration         `yaml:"at"`
	Window   *Duration         `yaml:"window"`
	Scale    *int              `yaml:"scale"`
	Profile  *string           `yaml:"profile"`
	Rollout  *string           `yaml:"rollout"`
	Drain    *string           `yaml:"drain"`
	KillNode *string           `yaml:"kill-node"`
	Env      map[string]string `yaml:"env"`
}

// UnmarshalYAML reads a step and checks it has exactly one action.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	var doc stepDoc
	if err := decodeStrict(n, &doc); err != nil {
		return err
	}
	*s = Step{Line: n.Line}
	if doc.At == nil {
		return fmt.Errorf("line %d: field at: missing (when the step happens, e.g. at: 30s)", n.Line)
	}
	s.At = *doc.At
	if doc.Window != nil {
		s.Window = *doc.Window
	}
	var set []Action
	if doc.Scale != nil {
		set = append(set, ActionScale)
		s.Replicas = *doc.Scale
		if s.Replicas < 0 || s.Replicas > 1000 {
			return fmt.Errorf("line %d: field scale: %d replicas (want 0-1000)", n.Line, s.Replicas)
		}
	}
	if doc.Profile != nil {
		set = append(set, ActionProfile)
		s.Profile = *doc.Profile
		if _, err := load.ParseProfileSpec(s.Profile); err != nil {
			return fmt.Errorf("line %d: field profile: %v", n.Line, err)
		}
	}
	if doc.Rollout != nil {
		set = append(set, ActionRollout)
		if *doc.Rollout != "restart" {
			return fmt.Errorf("line %d: field rollout: %q (want restart)", n.Line, *doc.Rollout)
		}
	}
	if doc.Drain != nil {
		set = append(set, ActionDrain)
		s.Node = *doc.Drain
	}
	if doc.KillNode != nil {
		set = append(set, ActionKillNode)
		s.Node = *doc.KillNode
	}
	if doc.Env != nil {
		set = append(set, ActionEnv)
		s.Env = doc.Env
		if len(s.Env) == 0 {
			return fmt.Errorf("line %d: field env: empty (want NAME: value pairs)", n.Line)
		}
		for k := range s.Env {
			if !envName.MatchString(k) {
				return fmt.Errorf("line %d: field env: %q is not a valid variable name", n.Line, k)
			}
		}
	}
	switch len(set) {
	case 0:
		return fmt.Errorf("line %d: step: no action (want one of %s)", n.Line, actionList())
	case 1:
		s.Action = set[0]
	default:
		return fmt.Errorf("line %d: step: %d actions (%s and %s); one per step", n.Line, len(set), set[0], set[1])
	}
	if (s.Action == ActionDrain || s.Action == ActionKillNode) && !nodeName.MatchString(s.Node) {
		return fmt.Errorf("line %d: field %s: %q is not a node name (or %q)", n.Line, s.Action, s.Node, NodeBusiest)
	}
	return nil
}

var (
	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	nodeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

func actionList() string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

var stepFields = map[string]bool{"at": true, "window": true, "scale": true, "profile": true, "rollout": true, "drain": true, "kill-node": true, "env": true}

// decodeStrict decodes a step, rejecting fields it does not know (with
// their line) as the file-level decoder does.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: step: want a mapping such as {at: 30s, scale: 2}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !stepFields[k.Value] {
			return fmt.Errorf("line %d: step: unknown field %q (want at, window and one of %s)", k.Line, k.Value, actionList())
		}
	}
	if err := n.Decode(v); err != nil {
		return fmt.Errorf("line %d: %s", n.Line, cleanYAMLError(err))
	}
	return nil
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n")
	s = strings.TrimPrefix(s, "yaml: ")
	return strings.TrimSpace(s)
}

// MaxFileSize bounds what Parse reads.
const MaxFileSize = 1 << 20

// Parse reads a scenario; name is used in errors and as the default Name.
func Parse(name string, data []byte) (*Scenario, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes (at most %d)", name, len(data), MaxFileSize)
	}
	var sc Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty scenario (want name, duration and steps)", name)
		}
		return nil, fmt.Errorf("%s: %s", name, cleanYAMLError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s: line %d: more than one YAML document", name, extra.Line)
	}
	if err := sc.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	}
	return &sc, nil
}

func (sc *Scenario) validate() error {
	if sc.Duration <= 0 {
		return errors.New("field duration: missing or zero (how long load runs, e.g. 90s)")
	}
	if sc.Duration.D() > 24*time.Hour {
		return fmt.Errorf("field duration: %s is more than a day", sc.Duration.D())
	}
	if sc.Warmup != nil && sc.Warmup.D() > time.Hour {
		return fmt.Errorf("field warmup: %s is more than an hour", sc.Warmup.D())
	}
	if sc.Replicas < 0 || sc.Replicas > 1000 {
		return fmt.Errorf("field replicas: %d (want 0-1000)", sc.Replicas)
	}
	if sc.Sessions < 0 || sc.Sessions > 100000 {
		return fmt.Errorf("field sessions: %d (want 0-100000)", sc.Sessions)
	}
	switch sc.Setup {
	case "":
		sc.Setup = "deployment"
	case "deployment", "rollout":
	default:
		return fmt.Errorf("field setup: %q (want deployment or rollout)", sc.Setup)
	}
	if sc.Demand != nil {
		if sc.Demand.Profile == "" {
			return errors.New("field demand.profile: missing (e.g. half-sine:min=0,max=1,period=200s,step=10s)")
		}
		p, err := load.ParseProfileSpec(sc.Demand.Profile)
		if err != nil {
			return fmt.Errorf("field demand.profile: %v", err)
		}
		sc.Demand.profile = p
	}
	var last time.Duration
	for i, st := range sc.Steps {
		if st.At.D() < last {
			return fmt.Errorf("line %d: steps[%d]: at %s comes before the previous step (%s); keep steps in time order", st.Line, i, st.At.D(), last)
		}
		if st.At.D() > sc.Duration.D() {
			return fmt.Errorf("line %d: steps[%d]: at %s is after the end (duration %s)", st.Line, i, st.At.D(), sc.Duration.D())
		}
		if st.Action == ActionProfile && sc.Demand == nil {
			return fmt.Errorf("line %d: steps[%d]: profile needs a demand section (the cycle it replaces)", st.Line, i)
		}
		last = st.At.D()
	}
	return nil
}

// WarmupOrDefault is the warm-up, 10 s when the file does not say.
func (sc *Scenario) WarmupOrDefault() time.Duration {
	if sc.Warmup == nil {
		return 10 * time.Second
	}
	return sc.Warmup.D()
}

// WindowOf is the step's disruption window, its default when unset.
func WindowOf(s Step) time.Duration {
	if s.Window > 0 {
		return s.Window.D()
	}
	return DefaultWindow(s.Action)
}

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Builtins lists the names of the built-in scenarios.
func Builtins() []string {
	entries, _ := builtinFS.ReadDir("builtin")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Builtin returns the built-in scenario name.
func Builtin(name string) (*Scenario, error) {
	data, err := builtinFS.ReadFile("builtin/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in scenario %q (built-ins: %s)", name, strings.Join(Builtins(), ", "))
	}
	return Parse(name+".yaml", data)
}

// BuiltinSource returns the file of a built-in scenario, to print or copy.
func BuiltinSource(name string) ([]byte, error) {
	data, err := builtinFS.ReadFile("builtin/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in scenario %q (built-ins: %s)", name, strings.Join(Builtins(), ", "))
	}
	return data, nil
}

// Load returns a built-in scenario by name, or reads a file when ref has
// a path separator or a .yaml/.yml suffix.
func Load(ref string) (*Scenario, error) {
	if !strings.ContainsRune(ref, os.PathSeparator) && !strings.HasSuffix(ref, ".yaml") && !strings.HasSuffix(ref, ".yml") {
		return Builtin(ref)
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return Parse(ref, data)
}
