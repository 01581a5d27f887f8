//go:build !nolab

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"zerodrop.dev/zerodrop/deploy"
	"zerodrop.dev/zerodrop/lab/experiment"
	"zerodrop.dev/zerodrop/lab/lbc"
	"zerodrop.dev/zerodrop/lab/scenario"
)

// experimentFlags are the flags of zerodrop lab (no arguments) and
// zerodrop lab run.
type experimentFlags struct {
	out, scenarioRef, scale, output, podBinary string
	karpenter                                  bool
	timeScale                                  float64
	cfg                                        experiment.Config
}

func (f *experimentFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.out, "out", "", "folder for results, access logs and events (default zerodrop-lab-TIMESTAMP)")
	fs.StringVar(&f.scenarioRef, "scenario", "scale-down", "built-in scenario ("+strings.Join(scenario.Builtins(), ", ")+") or a scenario file")
	fs.StringVar(&f.scale, "scale", "small", "size: small (a few minutes on 2 cores) or seed (1,000 sessions, 30 nodes, up to 100 pods)")
	fs.BoolVar(&f.karpenter, "karpenter", true, "nodes from the real Karpenter (deploy/lab/nodepool.yaml, consolidation on); false: the preset's fixed nodes")
	fs.Float64Var(&f.timeScale, "time-scale", 0.5, "multiply every duration of the lab, the manifests and the scenario (1 = real time)")
	fs.StringVarP(&f.output, "output", "o", "text", "output: text or json (the summary on stdout; progress on stderr)")
	fs.StringVar(&f.podBinary, "pod-binary", os.Getenv("ZERODROP_POD_BIN"), "binary the zerodrop image runs in pods (default: this one; env ZERODROP_POD_BIN)")
	fs.DurationVar(&f.cfg.LBReconcileLag, "lb-reconcile-lag", lbc.DefaultReconcileLag, "load balancer controller: reaction to a change (before time scale)")
	fs.DurationVar(&f.cfg.LBAPILatency, "lb-api-latency", lbc.DefaultAPILatency, "load balancer controller: ELBv2 API latency (before time scale)")
	fs.DurationVar(&f.cfg.LBPropagation, "lb-propagation", lbc.DefaultPropagation, "ALB data plane: propagation of a target change (before time scale)")
	fs.DurationVar(&f.cfg.LBModifyRule, "lb-modify-rule-lag", lbc.DefaultModifyRuleLag, "load balancer controller: weight change to ModifyRule (before time scale)")
}

func (f *experimentFlags) run(cmd *cobra.Command, variants []experiment.Variant, writeManifests bool) error {
	if f.output != "text" && f.output != "json" {
		return withExitCode(2, fmt.Errorf("-o %q: want text or json", f.output))
	}
	preset, ok := experiment.Presets[f.scale]
	if !ok {
		return withExitCode(2, fmt.Errorf("--scale %q: want small or seed", f.scale))
	}
	if f.timeScale < 0.05 || f.timeScale > 10 {
		return withExitCode(2, fmt.Errorf("--time-scale %g: must be between 0.05 and 10", f.timeScale))
	}
	sc, err := scenario.Load(f.scenarioRef)
	if err != nil {
		return withExitCode(2, fmt.Errorf("--scenario: %w", err))
	}
	if f.out == "" {
		f.out = "zerodrop-lab-" + time.Now().Format("20060102-150405")
	}
	dir := filepath.Join(f.out, "manifests")
	if err := deploy.WriteTo(dir); err != nil {
		return err
	}
	if writeManifests {
		for i := range variants {
			variants[i].Kustomize = filepath.Join(dir, variants[i].Kustomize)
		}
	}
	cfg := f.cfg
	if f.karpenter {
		cfg.NodePool = filepath.Join(dir, "lab", "nodepool.yaml")
	}
	cfg.Out, cfg.Variants, cfg.Scenario, cfg.Preset, cfg.TimeScale = f.out, variants, sc, preset, f.timeScale
	cfg.PodBinary, cfg.Version = f.podBinary, version
	cfg.Progress, cfg.JSON = cmd.ErrOrStderr(), f.output == "json"
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := experiment.Run(ctx, cfg)
	if sum != nil {
		if f.output == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			_ = enc.Encode(sum)
		} else {
			sum.WriteText(cmd.OutOrStdout())
		}
	}
	return err
}

// runDefaultExperiment is zerodrop lab with no arguments: the seed's
// experiment, before vs after, from the manifests built into the binary.
func runDefaultExperiment(f *experimentFlags) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		return f.run(cmd, []experiment.Variant{
			{Name: "before", Kustomize: "overlays/before"},
			{Name: "after", Kustomize: "overlays/after"},
		}, true)
	}
}

func newLabRunCmd() *cobra.Command {
	f := &experimentFlags{}
	var kustomize, files []string
	cmd := &cobra.Command{
		Use:   "run -k DIR|-f FILE... [--scenario NAME|FILE]",
		Short: "Run a scenario under load on your own manifests (each -k or -f is one variant)",
		Long: `zerodrop lab run boots a lab for each variant, applies its manifests, sends
orders sessions through the load balancer while the scenario disrupts pods and
nodes, and prints what users saw side by side. Each -k DIR is one variant
(named after the folder); all -f files together are one more.`,
		Example: `  zerodrop lab run -k deploy/overlays/before -k deploy/overlays/after --scenario node-drain
  zerodrop lab run -f my-app.yaml --scenario my-timeline.yaml --time-scale 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var variants []experiment.Variant
			seen := map[string]int{}
			name := func(base string) string {
				seen[base]++
				if seen[base] > 1 {
					return fmt.Sprintf("%s-%d", base, seen[base])
				}
				return base
			}
			for _, k := range kustomize {
				variants = append(variants, experiment.Variant{Name: name(filepath.Base(filepath.Clean(k))), Kustomize: k})
			}
			if len(files) > 0 {
				variants = append(variants, experiment.Variant{Name: name(strings.TrimSuffix(filepath.Base(files[0]), filepath.Ext(files[0]))), Files: files})
			}
			if len(variants) == 0 {
				return withExitCode(2, fmt.Errorf("give the manifests: -k DIR or -f FILE"))
			}
			return f.run(cmd, variants, false)
		},
	}
	cmd.Flags().StringArrayVarP(&kustomize, "kustomize", "k", nil, "kustomization directory (one variant each)")
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file or directory (all together one variant)")
	f.register(cmd.Flags())
	return cmd
}
