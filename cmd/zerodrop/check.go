package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"zerodrop.dev/zerodrop/check"
	"zerodrop.dev/zerodrop/manifest"
)

func init() { register(newCheckCmd) }

// errFindings makes the command exit 1 without printing another message.
var errFindings = errors.New("")

func newCheckCmd() *cobra.Command {
	var (
		files, kustomize []string
		output, explain  string
		color            string
		why              bool
	)
	cfg := check.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "check [-f] FILE|DIR|- [-k DIR] [-o text|json|sarif] [--explain ID]",
		Short: "Find manifest configurations that drop requests when pods terminate or start",
		Long: `Check Kubernetes manifests for the timing chain between probes, preStop hooks,
grace periods, the AWS Load Balancer Controller and the ALB. Prints, per workload,
the termination and startup timelines with the windows in which requests can
fail, and findings with evidence (file:line, field path) and a concrete fix.

Files may also be given as arguments: "zerodrop check app.yaml" is "zerodrop check -f app.yaml".
An input that holds no Kubernetes object (an empty file, a kustomize build that
produced nothing) is an error, not a pass.

Exit status: 0 no error-level finding, 1 error-level findings, 2 usage or read errors.
Ignore a rule on an object with the annotation zerodrop.dev/ignore: "ZD004,ZD014".
Declare the longest request with the annotation zerodrop.dev/max-request-duration: 30s.`,
		Example: `  zerodrop check -f deploy/
  zerodrop check app.yaml
  kustomize build overlays/prod | zerodrop check -f -
  zerodrop check -k deploy/overlays/after -o sarif > zerodrop.sarif
  zerodrop check --explain ZD008`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch color {
			case "auto", "always", "never":
			default:
				return withExitCode(2, fmt.Errorf("check: --color %q: want auto, always or never", color))
			}
			if explain != "" {
				r, ok := check.Lookup(explain)
				if !ok {
					rules := check.Rules()
					return withExitCode(2, fmt.Errorf("check: --explain: unknown rule %q (rules are %s to %s)", explain, rules[0].ID, rules[len(rules)-1].ID))
				}
				_, err := fmt.Fprint(out, check.Explain(r))
				return err
			}
			// Positional arguments are files, as with -f.
			files = append(files, args...)
			if len(files) == 0 && len(kustomize) == 0 {
				return withExitCode(2, errors.New("check: give manifests with -f FILE|DIR|- or -k DIR"))
			}
			switch output {
			case "text", "json", "sarif":
			default:
				return withExitCode(2, fmt.Errorf("check: -o/--output %q: want text, json or sarif", output))
			}
			for _, d := range []struct {
				flag string
				v    time.Duration
			}{
				{"--deregistration-propagation", cfg.DeregistrationPropagation},
				{"--max-request-duration", cfg.MaxRequestDuration},
				{"--weight-change-lag", cfg.WeightChangeLag},
				{"--detection-gap", cfg.DetectionGap},
			} {
				if d.v < 0 {
					return withExitCode(2, fmt.Errorf("check: %s %v must not be negative", d.flag, d.v))
				}
			}
			m, err := manifest.Load(cmd.Context(), manifest.Sources{Files: files, Kustomize: kustomize, Stdin: cmd.InOrStdin()})
			if err != nil {
				return withExitCode(2, fmt.Errorf("check: %w", err))
			}
			rep := check.Run(m, cfg)
			switch output {
			case "json":
				err = rep.WriteJSON(out)
			case "sarif":
				err = rep.WriteSARIF(out)
			default:
				useColor := color == "always" || color == "auto" && isTerminal(out)
				err = rep.WriteText(out, check.TextOptions{Color: useColor, Explain: why})
			}
			if err != nil {
				return withExitCode(2, fmt.Errorf("check: %w", err))
			}
			if rep.HasErrors() {
				return withExitCode(1, errFindings)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory or - for stdin (repeatable)")
	f.StringArrayVarP(&kustomize, "kustomize", "k", nil, "kustomization directory (repeatable)")
	f.StringVarP(&output, "output", "o", "text", "output format: text, json or sarif")
	f.StringVar(&explain, "explain", "", "print the documentation of one rule (ID such as ZD008) and exit")
	f.StringVar(&color, "color", "auto", "colour the text output: auto (on a terminal), always or never")
	f.BoolVar(&why, "why", false, "text output: print why each finding drops requests")
	f.DurationVar(&cfg.DeregistrationPropagation, "deregistration-propagation", cfg.DeregistrationPropagation,
		"estimate from pod delete until the ALB stops sending new requests (controller reconcile + API + data plane; up to ~2m observed)")
	f.DurationVar(&cfg.MaxRequestDuration, "max-request-duration", cfg.MaxRequestDuration,
		"longest request, when no "+check.AnnotationMaxRequest+" annotation says otherwise")
	f.DurationVar(&cfg.WeightChangeLag, "weight-change-lag", cfg.WeightChangeLag, "Argo Rollouts setWeight to ALB ModifyRule lag estimate")
	f.DurationVar(&cfg.DetectionGap, "detection-gap", cfg.DetectionGap, "ALB vs readiness failure detection difference that counts as far apart")
	return cmd
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && !strings.EqualFold(os.Getenv("TERM"), "dumb") && os.Getenv("NO_COLOR") == ""
}
