package main

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"

	"zerodrop.dev/zerodrop/alb"
)

func init() { register(newALBCmd) }

func newALBCmd() *cobra.Command {
	var (
		c      alb.CommandLine
		output string
	)
	cmd := &cobra.Command{
		Use:   "alb",
		Short: "Run the ALB emulator as a standalone load balancer in front of your own service",
		Long: `Run the ALB emulator: an HTTP/1.1 load balancer with an AWS ALB's target-group
behaviour (health checks, fail-open, draining with deregistration delay, slow
start, keep-alive pools that 502 like the ALB) on real sockets, with an admin
API named after the ELBv2 API, an ALB access log and CloudWatch-named metrics
(GET /metrics on the admin listener).

Either describe one target group with flags:

  zerodrop alb --listen 127.0.0.1:8080 --admin 127.0.0.1:8081 \
    --target 127.0.0.2:8000 --target 127.0.0.3:8000 \
    --health-path /logistics/health --interval 5s --unhealthy 2 --healthy 2 \
    --deregistration-delay 30s --access-log -

or give a YAML file with listener, rules, target groups and attributes:

  zerodrop alb --config lb.yaml

With --config, --listen, --admin, --admin-token, --access-log and --time-scale
override the file; the target-group flags are not allowed. See docs/alb.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			progress, err := alb.ProgressLogger(cmd.ErrOrStderr(), output)
			if err != nil {
				return withExitCode(2, err)
			}
			cfg, err := c.Config(cmd.Flags().Changed, os.Getenv)
			if err != nil {
				return withExitCode(2, err)
			}
			lb, err := alb.New(cfg, alb.Options{OnEvent: progress})
			if err != nil {
				return withExitCode(2, err)
			}
			if err := lb.Start(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			progress(alb.Event{Kind: alb.EventStopping, Msg: "alb: stopping"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return lb.Close(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "text", "progress lines on stderr: text or json (one object per line with event, target_group, target, state, reason, ...)")
	f.StringVar(&c.ConfigFile, "config", "", "YAML file with listener, rules, target groups and attributes")
	f.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "listener address")
	f.StringVar(&c.Admin, "admin", "127.0.0.1:8081", `admin API and /metrics address ("off" to disable)`)
	f.StringVar(&c.AdminToken, "admin-token", "", "bearer token the admin API requires (or ZERODROP_ALB_ADMIN_TOKEN)")
	f.StringVar(&c.AccessLog, "access-log", "", `access log file, "-" for stdout (default none)`)
	f.Float64Var(&c.TimeScale, "time-scale", 1, "multiply every duration, > 0 and <= 1000 (0.1 runs ten times faster)")
	f.StringVar(&c.Defaults, "defaults", alb.DefaultsController, "health-check defaults: controller (15s interval, healthy 2) or api (30s, healthy 5)")
	f.StringArrayVar(&c.Targets, "target", nil, "target ip:port (repeatable)")
	f.StringVar(&c.HealthPath, "health-path", "", "health-check path (default /)")
	f.DurationVar(&c.Interval, "interval", 0, "health-check interval, 5s-300s (default from --defaults)")
	f.DurationVar(&c.HealthTimeout, "health-timeout", 0, "health-check timeout, 2s-120s (default 5s)")
	f.IntVar(&c.Healthy, "healthy", 0, "healthy threshold, 2-10 (default from --defaults)")
	f.IntVar(&c.Unhealthy, "unhealthy", 0, "unhealthy threshold, 2-10 (default 2)")
	f.StringVar(&c.SuccessCodes, "success-codes", "", `health-check success codes: "200", "200-399", "200,302" (default 200)`)
	f.BoolVar(&c.NoHealthCheck, "no-health-check", false, "disable health checks (targets are \"unavailable\" and get traffic)")
	f.DurationVar(&c.DeregistrationDelay, "deregistration-delay", 300*time.Second, "deregistration_delay.timeout_seconds, 0-3600s")
	f.DurationVar(&c.SlowStart, "slow-start", 0, "slow_start.duration_seconds: 0 or 30s-900s")
	f.StringVar(&c.Algorithm, "algorithm", alb.RoundRobin, "round_robin or least_outstanding_requests")
	f.BoolVar(&c.ReuseClosed, "reuse-closed-idle-connections", false, "pessimistic model: reuse pooled target connections without looking for the target's FIN, so every request sent on a connection the target closed while idle is a 502 (default: like the ALB, only a close that crosses a request is)")
	f.DurationVar(&c.IdleTimeout, "idle-timeout", 60*time.Second, "idle_timeout.timeout_seconds, 1s-4000s")
	return cmd
}
