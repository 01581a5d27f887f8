package main

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"zerodrop.dev/zerodrop/load"
)

func init() { register(newLoadCmd) }

func newLoadCmd() *cobra.Command {
	o := load.Options{Version: version}
	cmd := &cobra.Command{
		Use:   "load --url URL --workload get|orders (--concurrency N | --rate R[/s] | --profile P) --duration D",
		Short: "Send session traffic to a service and classify every request",
		Long: `Send load to any HTTP service (plain requests, or the orders sessions of
'zerodrop serve') in a closed model (--concurrency sessions) or an open model
(--rate arrivals per second, latency counted from the intended start), shaped
by a demand profile (constant, ramp, steps, half-sine; YAML file or inline).

Every request is classified: exact HTTP status, or refused, reset, eof,
timeout-connect, timeout-response, other.

No request starts after --duration; the requests in flight then finish
within --connect-timeout + --timeout, and every rate uses the real elapsed
time. Output files are opened before the run.

Exit status: 0 passed; 1 a gate failed (--max-errors, --max-error-rate,
--max-p99, --min-successes (default 1: a run with no 2xx/3xx fails),
--verify) with a one-line reason; 2 usage error; 130 interrupted by Ctrl-C
(143 by SIGTERM), after the summary. See docs/load.md.`,
		Example: `  zerodrop load --url http://127.0.0.1:8000 --workload orders --concurrency 50 --duration 2m --verify
  zerodrop load --url http://127.0.0.1:8080/ --rate 500/s --arrival poisson --duration 30s --max-p99 200ms
  zerodrop load --url http://127.0.0.1:8000 --workload orders --profile half-sine:min=5,max=100,period=10m,step=30s --duration 30m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.ThinkSet = cmd.Flags().Changed("think")
			o.Stdout, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			o.TTY = term.IsTerminal(int(os.Stderr.Fd()))
			err := load.Main(cmd.Context(), o)
			var (
				gate *load.GateError
				intr *load.InterruptedError
			)
			switch {
			case err == nil:
				return nil
			case load.IsUsage(err):
				return withExitCode(2, err)
			case errors.As(err, &gate):
				return withExitCode(1, err)
			case errors.As(err, &intr):
				return withExitCode(signalExitCode(intr.Cause), err)
			default:
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.URLs, "url", nil, "target URL (repeat for several; orders: the service base URL)")
	f.StringVar(&o.Workload, "workload", "get", "workload: get or orders")
	f.IntVar(&o.Concurrency, "concurrency", 0, "closed model: concurrent sessions (with --profile: the ceiling)")
	f.StringVar(&o.Rate, "rate", "", "open model: session arrivals per second, R or R/s (with --profile: the ceiling)")
	f.StringVar(&o.Model, "model", "", "model for --profile alone: closed (default) or open")
	f.StringVar(&o.Profile, "profile", "", "demand profile: YAML file, or inline such as half-sine:min=5,max=100,period=30m,step=1m")
	f.StringVar(&o.Arrival, "arrival", "constant", "open-model arrivals: constant or poisson")
	f.IntVar(&o.MaxInFlight, "max-in-flight", 1000, "open model: cap on sessions in flight (later arrivals queue)")
	f.DurationVar(&o.Duration, "duration", 0, "how long to send load (required)")
	f.DurationVar(&o.ConnectTimeout, "connect-timeout", load.DefaultConnectTimeout, "per-request connect timeout")
	f.DurationVar(&o.ResponseTimeout, "timeout", load.DefaultResponseTimeout, "per-request response timeout (from connection to end of body)")
	f.StringVar(&o.Connections, "connections", "", "keep-alive connections: per-session (each user its own, as a browser) or shared (default: per-session for orders, shared for get)")
	f.DurationVar(&o.IdleTimeout, "idle-timeout", load.DefaultIdleTimeout, "close a keep-alive connection unused this long (a browser's 5 min; an ALB closes at 60 s)")
	f.DurationVar(&o.Think, "think", 0, "think time between sessions (orders default 10s, get default 0)")
	f.Float64Var(&o.ThinkJitter, "think-jitter", 0.5, "think-time jitter as a fraction (uniform ±)")
	f.StringVar(&o.Method, "method", "GET", "get workload: HTTP method")
	f.StringArrayVarP(&o.Headers, "header", "H", nil, "get workload: request header 'Name: value' (repeatable)")
	f.StringVar(&o.Body, "body", "", "get workload: request body")
	f.StringVar(&o.BodyFile, "body-file", "", "get workload: request body from a file")
	f.StringVarP(&o.Output, "output", "o", "text", "summary on stdout: text or json (the result)")
	f.StringVar(&o.Out, "out", "", "write the versioned JSON result to FILE")
	f.StringVar(&o.CSV, "csv", "", "write the per-second timeline as CSV to FILE")
	f.StringVar(&o.EMF, "emf", "", "write CloudWatch EMF lines (namespace appsimulator) to FILE or - (stdout)")
	f.StringVar(&o.Raw, "raw", "", "write one CSV line per request to FILE")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this address (e.g. 127.0.0.1:9100)")
	f.StringArrayVar(&o.Marks, "mark", nil, "disruption window NAME@OFFSET[+DURATION], e.g. scale-down@2m+30s (repeatable)")
	f.StringArrayVar(&o.Labels, "label", nil, "KEY=VALUE label stored in the result (repeatable)")
	f.Int64Var(&o.MaxErrors, "max-errors", -1, "gate: fail when more requests than this fail (-1: off)")
	f.Float64Var(&o.MaxErrorRate, "max-error-rate", -1, "gate: fail above this error rate, 0..1 (-1: off)")
	f.DurationVar(&o.MaxP99, "max-p99", 0, "gate: fail when p99 latency is above this (0: off)")
	f.Int64Var(&o.MinSuccesses, "min-successes", 1, "gate: fail with fewer 2xx/3xx responses than this (0: off)")
	f.BoolVar(&o.Verify, "verify", false, "orders: read every acknowledged write back; fail on lost writes, duplicates, failed read-backs or nothing to verify")
	return cmd
}

// signalExitCode is the conventional exit status of a run a signal stopped:
// 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).
func signalExitCode(cause error) int {
	if cause != nil && strings.HasPrefix(cause.Error(), syscall.SIGTERM.String()) {
		return 128 + int(syscall.SIGTERM)
	}
	return 128 + int(syscall.SIGINT)
}
