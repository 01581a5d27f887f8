// Package service assembles and runs the orders service process (zerodrop
// serve): the orders API over a store, health and metrics endpoints, and one
// of three shutdown behaviours — graceful (the drain library), immediate and
// unwaited (the broken behaviours from the field reports, kept to reproduce
// them).
package service

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"zerodrop.dev/zerodrop/drain"
	"zerodrop.dev/zerodrop/orders/store"
)

// ShutdownMode is what the process does on SIGTERM.
type ShutdownMode string

// Shutdown modes.
const (
	// Graceful: readiness fails at once, the server keeps serving for the
	// delay (responses carry Connection: close), then stops accepting and
	// lets in-flight requests finish until the timeout (the drain library).
	Graceful ShutdownMode = "graceful"
	// Immediate: every connection is closed at once and the process exits;
	// in-flight requests are cut. Readiness never fails first.
	Immediate ShutdownMode = "immediate"
	// Unwaited: http.Server.Shutdown is started but the process exits as
	// soon as Serve returns ErrServerClosed, without waiting for Shutdown,
	// which cuts in-flight requests. Readiness never fails first.
	Unwaited ShutdownMode = "unwaited"
)

// Environment variables read by Load (besides drain's
// ZERODROP_SHUTDOWN_DELAY and ZERODROP_SHUTDOWN_TIMEOUT).
const (
	EnvAddr      = "ZERODROP_ADDR"
	EnvDB        = "ZERODROP_DB"
	EnvAdminAddr = "ZERODROP_ADMIN_ADDR"
	EnvWork      = "ZERODROP_WORK"
	EnvShutdown  = "ZERODROP_SHUTDOWN"
	EnvLogFormat = "ZERODROP_LOG_FORMAT"
	// EnvIdleTimeout is the keep-alive idle timeout (--idle-timeout).
	EnvIdleTimeout = "ZERODROP_IDLE_TIMEOUT"
)

// Defaults.
const (
	DefaultAddr = "127.0.0.1:8000"
	// HealthPath is the readiness endpoint on the service port.
	HealthPath = "/logistics/health"
	// LivenessPath is the liveness endpoint on the service port.
	LivenessPath = "/livez"
	// MetricsPath serves Prometheus metrics on the service port.
	MetricsPath = "/metrics"
)

// ErrUsage is wrapped by every configuration error (exit code 2).
var ErrUsage = errors.New("invalid configuration")

// Config is a resolved service configuration.
type Config struct {
	Addr      string       // listen address
	DB        string       // store address (see store.ParseDSN)
	AdminAddr string       // optional separate health/metrics listener
	Work      Work         // extra time per API request
	Shutdown  ShutdownMode // behaviour on SIGTERM
	Delay     time.Duration
	Timeout   time.Duration
	LogFormat string // text or json
	// IdleTimeout closes a keep-alive connection that carried no request
	// for this long (http.Server.IdleTimeout). Keep it above the load
	// balancer's idle timeout (ALB: 60 s): a shorter one closes connections
	// the load balancer may be sending on (a 502).
	IdleTimeout time.Duration
	// StoreTimeout bounds each store call (0: orders.DefaultStoreTimeout).
	StoreTimeout time.Duration
}

// Flags holds command-line values; nil means the flag was not given.
type Flags struct {
	Addr, DB, AdminAddr, Work, Shutdown, Delay, Timeout, LogFormat, IdleTimeout *string
}

// Load resolves the configuration: flag, else environment variable (read
// through lookup), else default. Errors wrap ErrUsage and name the flag or
// variable at fault.
func Load(lookup func(string) (string, bool), f Flags) (Config, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	var errs []error
	pick := func(flag *string, flagName, env, def string) (val, source string) {
		if flag != nil {
			return *flag, "--" + flagName
		}
		if v, ok := lookup(env); ok {
			return v, env
		}
		return def, "default"
	}
	bad := func(source, val string, err error) {
		errs = append(errs, fmt.Errorf("%w: %s=%q: %v", ErrUsage, source, val, err))
	}
	var c Config

	addr, addrSrc := pick(f.Addr, "addr", EnvAddr, DefaultAddr)
	if err := checkAddr(addr); err != nil {
		bad(addrSrc, addr, fmt.Errorf("%v, such as %s", err, DefaultAddr))
	}
	c.Addr = addr

	db, src := pick(f.DB, "db", EnvDB, store.DefaultDSN)
	if kind, path, err := store.ParseDSN(db); err != nil {
		// ParseDSN's message shows the value with any password hidden.
		errs = append(errs, fmt.Errorf("%w: %s: %v", ErrUsage, src, err))
	} else if kind == store.KindSQLite {
		// serve does not create directories: a missing one is a typo as
		// often as not, and SQLite would only say "unable to open
		// database file".
		if dir := filepath.Dir(path); dir != "." {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				bad(src, db, fmt.Errorf("directory %s does not exist; create it first (serve does not create directories)", dir))
			}
		}
	}
	c.DB = db

	admin, src := pick(f.AdminAddr, "admin-addr", EnvAdminAddr, "")
	if admin != "" {
		if err := checkAddr(admin); err != nil {
			bad(src, admin, fmt.Errorf("%v, such as 127.0.0.1:9090", err))
		} else if sameListenAddr(admin, addr) {
			bad(src, admin, fmt.Errorf("the same address as %s; give the health and metrics listener its own port", addrSrc))
		}
	}
	c.AdminAddr = admin

	work, src := pick(f.Work, "work", EnvWork, "")
	w, err := ParseWork(work)
	if err != nil {
		bad(src, work, err)
	}
	c.Work = w

	mode, src := pick(f.Shutdown, "shutdown", EnvShutdown, string(Graceful))
	switch ShutdownMode(mode) {
	case Graceful, Immediate, Unwaited:
		c.Shutdown = ShutdownMode(mode)
	default:
		bad(src, mode, errors.New("want graceful, immediate or unwaited"))
	}

	for _, d := range []struct {
		flag      *string
		name, env string
		def       time.Duration
		dst       *time.Duration
	}{
		{f.Delay, "shutdown-delay", drain.EnvShutdownDelay, drain.DefaultDelay, &c.Delay},
		{f.Timeout, "shutdown-timeout", drain.EnvShutdownTimeout, drain.DefaultTimeout, &c.Timeout},
	} {
		v, src := pick(d.flag, d.name, d.env, d.def.String())
		dur, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(src, v, errors.New("want a Go duration such as 15s or 1m30s"))
		case dur < 0:
			bad(src, v, errors.New("must not be negative"))
		default:
			*d.dst = dur
		}
	}

	idle, src := pick(f.IdleTimeout, "idle-timeout", EnvIdleTimeout, drain.DefaultIdleTimeout.String())
	if d, err := time.ParseDuration(idle); err != nil {
		bad(src, idle, errors.New("want a Go duration such as 75s or 2m"))
	} else if d <= 0 {
		bad(src, idle, errors.New("must be positive (keep it above the load balancer's idle timeout, 60 s on an ALB)"))
	} else {
		c.IdleTimeout = d
	}

	format, src := pick(f.LogFormat, "log-format", EnvLogFormat, "text")
	if format != "text" && format != "json" {
		bad(src, format, errors.New("want text or json"))
	}
	c.LogFormat = format
	return c, errors.Join(errs...)
}

// checkAddr checks a host:port to listen on, port 0-65535.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q out of range 0-65535", port)
	}
	return nil
}

// sameListenAddr reports whether two listen addresses would collide: the
// same non-zero port on the same host (or on a wildcard host).
func sameListenAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb) || (ha == "localhost" && hb == "127.0.0.1") || (ha == "127.0.0.1" && hb == "localhost")
}

// NewLogger returns the process logger in format ("text" or "json").
func NewLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
