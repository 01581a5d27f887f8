package main

import (
	"github.com/spf13/cobra"

	"zerodrop.dev/zerodrop/report"
)

func init() { register(newReportCmd) }

func newReportCmd() *cobra.Command {
	var o report.Options
	var color string
	cmd := &cobra.Command{
		Use:   "report RESULT.json [RESULT.json ...] [-o text|json|html|FILE.html]",
		Short: "Compare result files: a table and sparklines, or one HTML file with charts",
		Long: `Show one or more result files (zerodrop load --out, zerodrop analyze --out,
lab runs) side by side: requests by status code and class (ALB-made codes
apart), error rate overall and inside disruption windows, failure windows
with their likely cause, lost writes, latency, and a sparkline of failures
over time per run.

-o FILE.html writes one self-contained HTML page (inline SVG charts, no
network): requests and failures per second by class with events and
windows, healthy targets, pods and nodes, latency p50/p99, predicted vs
measured failure windows, the event timeline and each run's configuration.
Result files of every schema version read. Exit 2 on usage or unreadable
files. See docs/report.md.`,
		Example: `  zerodrop report before.json after.json
  zerodrop report before.json after.json -o report.html
  zerodrop report run.json -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Files = args
			o.Stdout, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			o.Color = color == "always" || color == "auto" && isTerminal(o.Stdout)
			err := report.Main(cmd.Context(), o)
			if report.IsUsage(err) {
				return withExitCode(2, err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Output, "output", "o", "text", "text, json, html, or a file name ending in .html or .json")
	f.StringVar(&o.Title, "title", "", "HTML page title (default \"zerodrop report\")")
	f.IntVar(&o.Width, "width", 60, "sparkline width in columns")
	f.StringVar(&color, "color", "auto", "colour the sparklines: auto (on a terminal), always or never")
	return cmd
}
