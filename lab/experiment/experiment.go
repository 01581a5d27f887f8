// Package experiment runs the seed's experiment in the lab: for each
// variant of a setup (the seed's broken "before" and the corrected
// "after"), it boots a lab, applies the variant's manifests to the real
// API server, waits until the load balancer has every target healthy,
// sends orders sessions through the load balancer while a scenario
// disrupts the pods and nodes, and then measures what users saw: every
// request classified, the load balancer's own access log attributed to
// causes, lost acknowledged writes, and zerodrop check's predicted failure
// windows next to the measured ones.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"zerodrop.dev/zerodrop/lab/scenario"
)

// Variant is one setup to measure.
type Variant struct {
	// Name labels the variant ("before", "after").
	Name string `json:"name"`
	// Kustomize is a kustomization directory to apply (kubectl apply -k).
	Kustomize string `json:"kustomize,omitempty"`
	// Files are manifest files or directories to apply (kubectl apply -f).
	Files []string `json:"files,omitempty"`
}

// Preset sizes the experiment.
type Preset struct {
	// Name is "small" or "seed".
	Name string `json:"name"`
	// Scale, AppRatio, AppMin, SessionRatio, SessionMin are the demand
	// cycle's formulas: replicas = round(demand·Scale·AppRatio) + AppMin,
	// sessions = round(demand·Scale·SessionRatio) + SessionMin.
	Scale        float64 `json:"scale"`
	AppRatio     float64 `json:"appRatio"`
	AppMin       int     `json:"appMin"`
	SessionRatio float64 `json:"sessionRatio"`
	SessionMin   int     `json:"sessionMin"`
	// Nodes at the start of the lab when Karpenter does not run; with
	// Karpenter every node is Karpenter's.
	Nodes int `json:"nodes"`
	// Sessions for scenarios without a demand cycle (unless the scenario
	// sets its own).
	Sessions int `json:"sessions"`
	// Think is each user's pause between two sessions (before time
	// scale).
	Think time.Duration `json:"think"`
}

// Presets are the sizes --scale takes.
var Presets = map[string]Preset{
	// small fits a 2-core machine in a few minutes: up to 9 app pods and
	// 49 sessions, over 3 nodes.
	"small": {Name: "small", Scale: 40, AppRatio: 0.2, AppMin: 1, SessionRatio: 1.2, SessionMin: 1, Nodes: 3, Sessions: 30, Think: 600 * time.Millisecond},
	// seed is the seed's size: 1,000 sessions and up to 100 app pods on
	// 30 nodes.
	"seed": {Name: "seed", Scale: 1000, AppRatio: 0.1, AppMin: 1, SessionRatio: 1, SessionMin: 1, Nodes: 30, Sessions: 500, Think: 4 * time.Second},
}

// Config describes an experiment.
type Config struct {
	// Out is the folder results go to (one subfolder per variant).
	Out string
	// Variants are measured one after the other, each in a fresh lab.
	Variants []Variant
	// Scenario is what happens during the load.
	Scenario *scenario.Scenario
	// Preset sizes the run.
	Preset Preset
	// TimeScale multiplies every duration of the lab and the scenario.
	TimeScale float64
	// Binary is the zerodrop executable with the lab (default: this one).
	Binary string
	// PodBinary is what the zerodrop image runs in pods (default Binary).
	PodBinary string
	// NodePool, when set, is a manifest file with Karpenter's NodePool and
	// the lab's node class: the lab runs the real Karpenter with it and
	// starts without nodes of its own, so every node comes from Karpenter
	// and consolidation drains them as demand falls.
	NodePool string
	// LB lags of the load balancer controller twin (0: lab defaults).
	LBReconcileLag, LBAPILatency, LBPropagation, LBModifyRule time.Duration
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	// JSON makes progress lines JSON objects.
	JSON bool
	// Version is written into results.
	Version string
}

func (c *Config) defaults() error {
	if c.Out == "" {
		return errors.New("experiment: no output folder")
	}
	if len(c.Variants) == 0 {
		return errors.New("experiment: no variant to run")
	}
	seen := map[string]bool{}
	for _, v := range c.Variants {
		if v.Name == "" || seen[v.Name] {
			return fmt.Errorf("experiment: variant name %q empty or given twice", v.Name)
		}
		seen[v.Name] = true
		if v.Kustomize == "" && len(v.Files) == 0 {
			return fmt.Errorf("experiment: variant %s has no manifests (-k or -f)", v.Name)
		}
	}
	if c.Scenario == nil {
		return errors.New("experiment: no scenario")
	}
	if c.Preset.Name == "" {
		c.Preset = Presets["small"]
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.TimeScale < 0.05 || c.TimeScale > 10 {
		return fmt.Errorf("--time-scale %g: must be between 0.05 and 10", c.TimeScale)
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the zerodrop binary: %w", err)
		}
		c.Binary = exe
	}
	if c.PodBinary == "" {
		c.PodBinary = c.Binary
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	abs, err := filepath.Abs(c.Out)
	if err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	c.Out = abs
	return os.MkdirAll(c.Out, 0o755)
}

func (c *Config) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.TimeScale)
}

// Run runs every variant in turn and returns the summary. When ctx ends
// (Ctrl-C) the variant running is torn down and what was measured so far
// is still written and returned, with ctx's error.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	sum := &Summary{Scenario: cfg.Scenario.Name, Preset: cfg.Preset.Name, TimeScale: cfg.TimeScale, Out: cfg.Out, Started: time.Now()}
	var firstErr error
	for _, v := range cfg.Variants {
		if ctx.Err() != nil {
			break
		}
		vr, err := runVariant(ctx, &cfg, v)
		if vr != nil {
			sum.Variants = append(sum.Variants, *vr)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("variant %s: %w", v.Name, err)
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	sum.Finished = time.Now()
	if err := sum.write(cfg.Out); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return sum, firstErr
}
