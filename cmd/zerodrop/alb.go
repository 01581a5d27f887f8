package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"zerodrop.dev/zerodrop/alb"
)

func init() { register(newALBCmd) }

func newALBCmd() *cobra.Command {
	var (
		configFile, listen, admin, adminToken, accessLog, defaults string
		healthPath, successCodes, algorithm                        string
		targets                                                    []string
		interval, timeout, deregDelay, idleTimeout, slowStart      time.Duration
		healthy, unhealthy                                         int
		timeScale                                                  float64
		output                                                     string
		noHealthCheck, reuseClosed                                 bool
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
			var cfg alb.Config
			f := cmd.Flags()
			if configFile != "" {
				for _, name := range []string{"target", "health-path", "interval", "health-timeout", "healthy", "unhealthy",
					"success-codes", "deregistration-delay", "slow-start", "algorithm", "no-health-check", "defaults", "idle-timeout"} {
					if f.Changed(name) {
						return withExitCode(2, fmt.Errorf("alb: --%s cannot be combined with --config; set it in the file", name))
					}
				}
				c, err := alb.LoadConfigFile(configFile)
				if err != nil {
					return withExitCode(2, err)
				}
				cfg = c
			} else {
				hc := alb.HealthCheckConfig{Path: healthPath, SuccessCodes: successCodes, HealthyThreshold: healthy,
					UnhealthyThreshold: unhealthy, Interval: alb.Duration(interval), Timeout: alb.Duration(timeout)}
				if noHealthCheck {
					off := false
					hc.Enabled = &off
				}
				d := alb.Duration(deregDelay)
				cfg = alb.Config{
					Defaults:    defaults,
					IdleTimeout: alb.Duration(idleTimeout),
					TargetGroups: []alb.TargetGroupConfig{{Name: "default", HealthCheck: hc, Targets: targets,
						DeregistrationDelay: &d, SlowStart: alb.Duration(slowStart), Algorithm: algorithm}},
					Rules: []alb.RuleConfig{{Priority: 1, Forward: []alb.WeightedTargetGroup{{TargetGroup: "default"}}}},
				}
			}
			if configFile == "" || f.Changed("listen") {
				cfg.Listen = listen
			}
			if configFile == "" || f.Changed("admin") {
				cfg.Admin = admin
			}
			if f.Changed("admin-token") {
				cfg.AdminToken = adminToken
			}
			if f.Changed("access-log") {
				cfg.AccessLog = accessLog
			}
			if f.Changed("reuse-closed-idle-connections") {
				cfg.ReuseClosedIdleConnections = reuseClosed
			}
			if f.Changed("time-scale") || configFile == "" {
				cfg.TimeScale = timeScale
			}
			if cfg.AdminToken == "" {
				cfg.AdminToken = os.Getenv("ZERODROP_ALB_ADMIN_TOKEN")
			}
			if output != "text" && output != "json" {
				return withExitCode(2, fmt.Errorf("alb: -o %q: want text or json", output))
			}
			stderr := cmd.ErrOrStderr()
			var mu sync.Mutex
			logf := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				now, msg := time.Now().UTC(), fmt.Sprintf(format, args...)
				if output == "json" {
					b, _ := json.Marshal(struct {
						Time string `json:"time"`
						Msg  string `json:"msg"`
					}{now.Format(time.RFC3339Nano), msg})
					fmt.Fprintf(stderr, "%s\n", b)
					return
				}
				fmt.Fprintf(stderr, "%s %s\n", now.Format("15:04:05.000"), msg)
			}
			lb, err := alb.New(cfg, alb.Options{Logf: logf})
			if err != nil {
				var fe *alb.FieldError
				if errors.As(err, &fe) {
					return withExitCode(2, fmt.Errorf("alb: --%s", flagFor(fe, err)))
				}
				return withExitCode(2, err)
			}
			if err := lb.Start(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			logf("alb: stopping")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return lb.Close(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "text", "progress lines on stderr: text or json (one object per line)")
	f.StringVar(&configFile, "config", "", "YAML file with listener, rules, target groups and attributes")
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "listener address")
	f.StringVar(&admin, "admin", "127.0.0.1:8081", `admin API and /metrics address ("off" to disable)`)
	f.StringVar(&adminToken, "admin-token", "", "bearer token the admin API requires (or ZERODROP_ALB_ADMIN_TOKEN)")
	f.StringVar(&accessLog, "access-log", "", `access log file, "-" for stdout (default none)`)
	f.Float64Var(&timeScale, "time-scale", 1, "multiply every duration (0.1 runs ten times faster)")
	f.StringVar(&defaults, "defaults", alb.DefaultsController, "health-check defaults: controller (15s interval, healthy 2) or api (30s, healthy 5)")
	f.StringArrayVar(&targets, "target", nil, "target ip:port (repeatable)")
	f.StringVar(&healthPath, "health-path", "", "health-check path (default /)")
	f.DurationVar(&interval, "interval", 0, "health-check interval, 5s-300s (default from --defaults)")
	f.DurationVar(&timeout, "health-timeout", 0, "health-check timeout, 2s-120s (default 5s)")
	f.IntVar(&healthy, "healthy", 0, "healthy threshold, 2-10 (default from --defaults)")
	f.IntVar(&unhealthy, "unhealthy", 0, "unhealthy threshold, 2-10 (default 2)")
	f.StringVar(&successCodes, "success-codes", "", `health-check success codes: "200", "200-399", "200,302" (default 200)`)
	f.BoolVar(&noHealthCheck, "no-health-check", false, "disable health checks (targets are \"unavailable\" and get traffic)")
	f.DurationVar(&deregDelay, "deregistration-delay", 300*time.Second, "deregistration_delay.timeout_seconds, 0-3600s")
	f.DurationVar(&slowStart, "slow-start", 0, "slow_start.duration_seconds: 0 or 30s-900s")
	f.StringVar(&algorithm, "algorithm", alb.RoundRobin, "round_robin or least_outstanding_requests")
	f.BoolVar(&reuseClosed, "reuse-closed-idle-connections", false, "pessimistic model: reuse pooled target connections without looking for the target's FIN, so every request sent on a connection the target closed while idle is a 502 (default: like the ALB, only a close that crosses a request is)")
	f.DurationVar(&idleTimeout, "idle-timeout", 60*time.Second, "idle_timeout.timeout_seconds, 1s-4000s")
	return cmd
}

// flagFor renders a config field error in terms of the command's flags.
func flagFor(fe *alb.FieldError, err error) string {
	names := map[string]string{
		"listen": "listen", "admin": "admin", "timeScale": "time-scale", "defaults": "defaults", "idleTimeout": "idle-timeout",
		"targetGroups[0].healthCheck.path": "health-path", "targetGroups[0].healthCheck.interval": "interval",
		"targetGroups[0].healthCheck.timeout": "health-timeout", "targetGroups[0].healthCheck.healthyThreshold": "healthy",
		"targetGroups[0].healthCheck.unhealthyThreshold": "unhealthy", "targetGroups[0].healthCheck.successCodes": "success-codes",
		"targetGroups[0].deregistrationDelay": "deregistration-delay", "targetGroups[0].slowStart": "slow-start",
		"targetGroups[0].algorithm": "algorithm",
	}
	if n, ok := names[fe.Field]; ok {
		return n + ": " + fe.Msg
	}
	if len(fe.Field) > len("targetGroups[0].targets") && fe.Field[:len("targetGroups[0].targets")] == "targetGroups[0].targets" {
		return "target: " + fe.Msg
	}
	return err.Error()
}
