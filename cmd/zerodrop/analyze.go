package main

import (
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"zerodrop.dev/zerodrop/analyze"
)

func init() { register(newAnalyzeCmd) }

func newAnalyzeCmd() *cobra.Command {
	o := analyze.CLIOptions{Version: version}
	cmd := &cobra.Command{
		Use:   "analyze PATH... [--events events.json] [-o text|json] [--out result.json] [--html report.html]",
		Short: "Read a real ALB's access logs: timeline, failure windows, likely cause",
		Long: `Read Application Load Balancer access logs (.log, .log.gz, a directory tree
in the S3 layout AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/,
or - for stdin), any number, streaming, and build the same timeline as
zerodrop load: requests per second by status code, ALB-made 502/503/504
told apart from the targets' own 5xx, latency from the processing times.
It finds the windows in which failures cluster, the targets involved and
the likely cause, and with --events (kubectl get events -o json) puts
Kubernetes events on the same timeline.

Malformed lines are counted and shown with file and line. --out writes the
result for zerodrop report; --html writes the HTML report. Exit 2 on usage
or unreadable input. See docs/analyze.md.`,
		Example: `  zerodrop analyze AWSLogs/ --events events.json --html report.html
  aws s3 cp --recursive s3://my-logs/AWSLogs/ logs/ && zerodrop analyze logs/ --out alb.json
  zcat *.log.gz | zerodrop analyze - -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Paths = args
			o.Stdin, o.Stdout, o.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			o.TTY = term.IsTerminal(int(os.Stderr.Fd()))
			err := analyze.Main(cmd.Context(), o)
			if analyze.IsUsage(err) {
				return withExitCode(2, err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Events, "events", "", "Kubernetes events to put on the timeline (kubectl get events -o json)")
	f.DurationVar(&o.Bucket, "bucket", 0, "timeline bucket width (default 1s)")
	f.DurationVar(&o.Gap, "gap", 0, "join failing stretches less than this apart into one window (default 5s)")
	f.DurationVar(&o.Lead, "lead", 0, "list events up to this long before a failure window with it (default 1m)")
	f.StringVarP(&o.Output, "output", "o", "text", "stdout: text (summary and table) or json (the result)")
	f.StringVar(&o.Out, "out", "", "write the result (JSON) to FILE, for zerodrop report")
	f.StringVar(&o.HTML, "html", "", "write the HTML report to FILE")
	return cmd
}
