package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"zerodrop.dev/zerodrop/drain"
	"zerodrop.dev/zerodrop/orders/service"
)

func init() { register(newServeCmd) }

func newServeCmd() *cobra.Command {
	var v struct{ addr, db, admin, work, shutdown, delay, timeout, logFormat, idle string }
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the orders service (the seed's logistics app) with a chosen shutdown behaviour",
		Long: `Run the orders API under /logistics on --addr, backed by SQLite (default) or
PostgreSQL, with readiness at /logistics/health, liveness at /livez and
Prometheus metrics at /metrics.

--shutdown graceful (default) drains on SIGTERM: readiness fails, serving
continues for --shutdown-delay, then in-flight requests get --shutdown-timeout.
immediate and unwaited reproduce the broken behaviours (requests are cut).

Every flag has an environment variable; a flag wins over it.

Exit status: 0 clean shutdown (and always in the broken modes); 1 the store
or address failed; 2 bad flag or variable; 3 graceful mode had to cut
requests; 130 a second Ctrl-C forced the exit with no request in flight.
See docs/serve.md.`,
		Example: `  zerodrop serve --db sqlite:/tmp/orders.db --shutdown-delay 5s --work 20ms-200ms
  ZERODROP_DB=postgres://u@127.0.0.1:5432/orders zerodrop serve --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var f service.Flags
			set := func(name string, val *string) *string {
				if cmd.Flags().Changed(name) {
					return val
				}
				return nil
			}
			f.Addr, f.DB, f.AdminAddr = set("addr", &v.addr), set("db", &v.db), set("admin-addr", &v.admin)
			f.Work, f.Shutdown, f.LogFormat = set("work", &v.work), set("shutdown", &v.shutdown), set("log-format", &v.logFormat)
			f.Delay, f.Timeout = set("shutdown-delay", &v.delay), set("shutdown-timeout", &v.timeout)
			f.IdleTimeout = set("idle-timeout", &v.idle)
			cfg, err := service.Load(os.LookupEnv, f)
			if err != nil {
				return withExitCode(2, err)
			}
			log := service.NewLogger(cfg.LogFormat, os.Stderr)
			// serve handles SIGTERM/SIGINT itself: ignore the root context's cancel.
			err = service.Run(context.WithoutCancel(cmd.Context()), cfg, log)
			if err != nil {
				return withExitCode(service.ExitCode(err), err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&v.addr, "addr", service.DefaultAddr, "listen address (env "+service.EnvAddr+")")
	fl.StringVar(&v.db, "db", "sqlite:zerodrop-orders.db", "store: sqlite:PATH | postgres://… | postgresql://… (env "+service.EnvDB+")")
	fl.StringVar(&v.admin, "admin-addr", "", "separate listener for /readyz, /livez, /metrics (env "+service.EnvAdminAddr+")")
	fl.StringVar(&v.work, "work", "0", "extra time per API request: 50ms | 20ms-200ms | exp:100ms (env "+service.EnvWork+")")
	fl.StringVar(&v.shutdown, "shutdown", "graceful", "graceful | immediate | unwaited (env "+service.EnvShutdown+")")
	fl.StringVar(&v.delay, "shutdown-delay", "15s", "keep serving this long after SIGTERM, readiness failing (env ZERODROP_SHUTDOWN_DELAY)")
	fl.StringVar(&v.timeout, "shutdown-timeout", "10s", "then let in-flight requests run this long (env ZERODROP_SHUTDOWN_TIMEOUT)")
	fl.StringVar(&v.idle, "idle-timeout", drain.DefaultIdleTimeout.String(), "close keep-alive connections idle this long; keep it above the load balancer's (ALB: 60s) (env "+service.EnvIdleTimeout+")")
	fl.StringVar(&v.logFormat, "log-format", "text", "text | json (env "+service.EnvLogFormat+")")
	return cmd
}
