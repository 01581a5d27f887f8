package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"zerodrop.dev/zerodrop/drain"
	"zerodrop.dev/zerodrop/orders"
	"zerodrop.dev/zerodrop/orders/store"
)

// openTimeout bounds opening and migrating the store at start.
const openTimeout = 60 * time.Second

// Run opens the store, serves the API until SIGTERM/SIGINT (or until ctx
// ends) and shuts down the way cfg.Shutdown says. It logs one line at
// start, one per state change and a summary at exit. It returns an error
// when the store cannot be opened, the address cannot be bound, or (graceful
// mode) requests had to be cut at the timeout.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	kind, _, err := store.ParseDSN(cfg.DB)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	openCtx, cancel := context.WithTimeout(ctx, openTimeout)
	st, err := store.Open(openCtx, cfg.DB)
	cancel()
	if err != nil {
		return fmt.Errorf("open the order store: %w", err)
	}
	closeStore := func(context.Context) error { return st.Close() }

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := orders.Options{Registerer: reg, Logger: log, StoreTimeout: cfg.StoreTimeout}
	if !cfg.Work.IsZero() {
		opts.Work = cfg.Work.Sample
	}
	api, err := orders.NewHandler(st, opts)
	if err != nil {
		st.Close()
		return fmt.Errorf("build the orders API: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, getOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	mux.Handle("/", api)

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		st.Close()
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	attrs := []any{"addr", ln.Addr().String(), "db", string(kind), "shutdown", string(cfg.Shutdown)}
	if cfg.Shutdown == Graceful {
		// The broken modes use neither: logging them would promise a drain
		// that will not happen.
		attrs = append(attrs, "delay", cfg.Delay.String(), "timeout", cfg.Timeout.String())
	}
	idle := cfg.IdleTimeout
	if idle <= 0 {
		idle = drain.DefaultIdleTimeout
	}
	attrs = append(attrs, "idle_timeout", idle.String(), "work", cfg.Work.String(), "admin_addr", cfg.AdminAddr, "pid", os.Getpid())
	log.Info("serve: started", attrs...)

	srv := &http.Server{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: drain.DefaultReadHeaderTimeout,
		IdleTimeout:       idle,
	}
	if cfg.Shutdown == Graceful {
		srv.Handler = mux
		return runGraceful(ctx, cfg, log, srv, ln, reg, closeStore)
	}
	defer st.Close()
	return runAbrupt(ctx, cfg, log, srv, ln, mux, reg)
}

func runGraceful(ctx context.Context, cfg Config, log *slog.Logger, srv *http.Server, ln net.Listener,
	reg *prometheus.Registry, closeStore func(context.Context) error) error {
	opts := []drain.Option{
		drain.WithDelay(cfg.Delay), drain.WithTimeout(cfg.Timeout),
		drain.WithHealthPath(HealthPath), drain.WithLivenessPath(LivenessPath),
		drain.WithLogger(log), drain.WithSignals(syscall.SIGTERM, syscall.SIGINT),
	}
	if cfg.AdminAddr != "" {
		opts = append(opts, drain.WithAdminAddr(cfg.AdminAddr), drain.WithAdminMetrics(reg))
	}
	ds := drain.New(srv, opts...)
	if err := reg.Register(ds.Collector()); err != nil {
		ln.Close()
		closeStore(ctx)
		return fmt.Errorf("register drain metrics: %w", err)
	}
	ds.OnShutdown("close order store", closeStore)
	// Say once, at the first signal, what a second one does: the drain
	// can take delay + timeout, and an operator should know the way out.
	hint := make(chan os.Signal, 1)
	signal.Notify(hint, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(hint)
	hintDone := make(chan struct{})
	defer close(hintDone)
	go func() {
		select {
		case s := <-hint:
			log.Info("serve: draining; a second Ctrl-C (or signal) forces the exit now and cuts the requests in flight",
				"signal", s.String(), "ends_in", (cfg.Delay + cfg.Timeout).String())
		case <-hintDone:
		}
	}()
	ds.SetReady()
	err := ds.Serve(ctx, ln)
	rep := ds.Report()
	log.Info("serve: exit", "shutdown", string(Graceful), "trigger", rep.Trigger,
		"served_while_draining", rep.ServedWhileDraining, "requests_cut", rep.RequestsCut,
		"connections_force_closed", rep.ConnsForceClosed, "forced_by_signal", rep.ForcedBySignal,
		"drain", rep.DrainDuration.String(), "err", errText(err))
	switch {
	case err == nil:
		return nil
	case rep.RequestsCut > 0:
		return fmt.Errorf("graceful shutdown: %w (%d): %w", ErrRequestsCut, rep.RequestsCut, err)
	case rep.ForcedBySignal:
		return fmt.Errorf("graceful shutdown: %w", ErrForcedNoneCut)
	case errors.Is(err, drain.ErrForced):
		// The timeout closed connections with no request on them:
		// nothing was lost.
		log.Warn("serve: connections were closed at the timeout with no request in flight", "err", err.Error())
		return nil
	}
	return fmt.Errorf("graceful shutdown: %w", err)
}

// Errors of a graceful shutdown that did not end on its own; ExitCode
// gives each its own exit status.
var (
	// ErrRequestsCut: requests in flight were cut, at the timeout or by a
	// second signal.
	ErrRequestsCut = errors.New("requests were cut")
	// ErrForcedNoneCut: a second signal forced the exit before the drain
	// ended, with no request in flight.
	ErrForcedNoneCut = errors.New("a second signal forced the exit; no request was cut")
)

// Exit statuses of zerodrop serve (see ExitCode).
const (
	ExitOK            = 0   // clean shutdown (graceful), or the broken modes' exit
	ExitFailed        = 1   // the store could not be opened, the address bound, a hook failed
	ExitUsage         = 2   // bad flag or environment variable
	ExitRequestsCut   = 3   // graceful: requests had to be cut
	ExitForcedNoneCut = 130 // graceful: a second signal forced the exit, nothing was cut
)

// ExitCode is the process exit status for Run's error.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.Is(err, ErrRequestsCut):
		return ExitRequestsCut
	case errors.Is(err, ErrForcedNoneCut):
		return ExitForcedNoneCut
	}
	return ExitFailed
}

// runAbrupt reproduces the two broken behaviours: readiness stays 200 to
// the end, and on SIGTERM the process goes away with requests in flight.
func runAbrupt(ctx context.Context, cfg Config, log *slog.Logger, srv *http.Server, ln net.Listener,
	app http.Handler, reg *prometheus.Registry) error {
	var inFlight atomic.Int64
	health := healthHandler()
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case HealthPath, LivenessPath:
			health.ServeHTTP(w, r)
			return
		}
		inFlight.Add(1)
		defer inFlight.Add(-1)
		app.ServeHTTP(w, r)
	})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)

	var admin *http.Server
	if cfg.AdminAddr != "" {
		var lc net.ListenConfig
		aln, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on admin address %s: %w", cfg.AdminAddr, err)
		}
		amux := http.NewServeMux()
		amux.Handle(drain.AdminReadyPath, health)
		amux.Handle(drain.AdminLivePath, health)
		amux.Handle(drain.AdminMetricsPath, getOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
		admin = &http.Server{Handler: amux, ReadHeaderTimeout: drain.DefaultReadHeaderTimeout}
		go admin.Serve(aln) //nolint:errcheck // closed below
		defer admin.Close()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serve: ready", "shutdown", string(cfg.Shutdown))

	var trigger string
	select {
	case s := <-sig:
		trigger = "signal: " + s.String()
	case <-ctx.Done():
		trigger = "context: " + context.Cause(ctx).Error()
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	start := time.Now()
	log.Info("serve: stop requested", "trigger", trigger, "shutdown", string(cfg.Shutdown))
	switch cfg.Shutdown {
	case Immediate:
		// Like os.Exit: every connection dies now, requests or not.
		srv.Close()
	default: // Unwaited
		// The seed's mistake: Shutdown runs in the background, Serve
		// returns ErrServerClosed at once and nobody waits for Shutdown.
		go srv.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // nobody waits, on purpose
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("serve: serve loop", "err", err)
		}
	}
	log.Info("serve: exit", "shutdown", string(cfg.Shutdown), "trigger", trigger,
		"served_while_draining", 0, "requests_cut", inFlight.Load(), "drain", time.Since(start).String())
	return nil
}

// getOnly answers 405 (JSON, as the orders API) to methods other than GET
// and HEAD.
func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			orders.WriteError(w, &orders.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Message: fmt.Sprintf("method %s is not allowed on %s; allowed: GET, HEAD", r.Method, r.URL.Path)})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// healthHandler always answers ready: the broken modes never fail
// readiness before they exit.
func healthHandler() http.Handler {
	return getOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ready", "state": "ready"})
	}))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
