package drain

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the environment variables read by Serve and ListenAndServe. Both
// take Go duration syntax ("20s", "1m30s"); see [ParseEnvDuration].
const (
	// EnvShutdownDelay sets the delay (see WithDelay).
	EnvShutdownDelay = "ZERODROP_SHUTDOWN_DELAY"
	// EnvShutdownTimeout sets the timeout (see WithTimeout).
	EnvShutdownTimeout = "ZERODROP_SHUTDOWN_TIMEOUT"
)

// Defaults used when neither an option nor an environment variable sets a
// value. docs/drain.md gives the reasoning behind each number.
const (
	// DefaultDelay is how long the server keeps serving after the stop
	// trigger. It equals the AWS Load Balancer Controller's default health
	// check interval (15 s), covers typical controller reconcile and API lag
	// for the deregistration, and leaves room for the timeout inside
	// Kubernetes' default 30 s grace period.
	DefaultDelay = 15 * time.Second
	// DefaultTimeout is how long in-flight requests may run after the
	// delay. Delay + Timeout + one hook (25 s + 3 s) stay below the default
	// terminationGracePeriodSeconds of 30 s.
	DefaultTimeout = 10 * time.Second
	// DefaultHookTimeout bounds each OnShutdown hook.
	DefaultHookTimeout = 3 * time.Second
	// DefaultIdleTimeout is set as http.Server.IdleTimeout when it is zero:
	// above the ALB idle timeout of 60 s, so the load balancer, not the
	// target, closes idle keep-alive connections.
	DefaultIdleTimeout = 75 * time.Second
	// DefaultReadHeaderTimeout is set as http.Server.ReadHeaderTimeout
	// when it is zero, against slow-header clients.
	DefaultReadHeaderTimeout = 10 * time.Second
)

// Paths served on the admin listener (WithAdminAddr).
const (
	AdminReadyPath   = "/readyz"
	AdminLivePath    = "/livez"
	AdminPreStopPath = "/prestop"
	AdminMetricsPath = "/metrics"
)

// ErrConfig is wrapped by every configuration error (bad option value, bad
// environment variable).
var ErrConfig = errors.New("drain: invalid configuration")

// Option configures a Server.
type Option func(*config)

// config holds resolved settings. The set* flags record explicit options so
// that they win over environment variables.
type config struct {
	delay, timeout, hookTimeout time.Duration
	setDelay, setTimeout        bool
	signals                     []os.Signal
	readyOnListen               bool
	healthPath                  string
	livenessPath                string
	preStopPath                 string
	adminAddr                   string
	adminGatherer               prometheus.Gatherer
	logger                      *slog.Logger
	forceOnSecond               bool
	lookupEnv                   func(string) (string, bool)
	errs                        []error
}

func defaultConfig() config {
	return config{
		delay:         DefaultDelay,
		timeout:       DefaultTimeout,
		hookTimeout:   DefaultHookTimeout,
		signals:       []os.Signal{syscall.SIGTERM, syscall.SIGINT},
		logger:        slog.New(slog.DiscardHandler),
		forceOnSecond: true,
		lookupEnv:     os.LookupEnv,
	}
}

func (c *config) bad(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
}

// WithDelay sets how long the server keeps accepting and serving after the
// stop trigger while readiness fails, so that the load balancer can take the
// target out of rotation. It wins over ZERODROP_SHUTDOWN_DELAY. Zero means no
// delay; negative values are an error.
func WithDelay(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.bad("WithDelay(%s): must not be negative", d)
			return
		}
		c.delay, c.setDelay = d, true
	}
}

// WithTimeout sets how long in-flight requests may still run once the delay
// is over; requests still running then are cut and Serve returns an error
// wrapping ErrForced. It wins over ZERODROP_SHUTDOWN_TIMEOUT. Zero cuts at
// once; negative values are an error.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.bad("WithTimeout(%s): must not be negative", d)
			return
		}
		c.timeout, c.setTimeout = d, true
	}
}

// WithHookTimeout bounds each OnShutdown hook (default 3 s). It must be
// positive.
func WithHookTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.bad("WithHookTimeout(%s): must be positive", d)
			return
		}
		c.hookTimeout = d
	}
}

// WithSignals sets the signals that start the drain (default SIGTERM and
// SIGINT). With no arguments the server ignores signals and only the context
// passed to Serve (or the preStop handler) starts the drain.
func WithSignals(sigs ...os.Signal) Option {
	return func(c *config) { c.signals = append([]os.Signal(nil), sigs...) }
}

// WithReadyOnListen makes the server ready as soon as its listeners are
// bound, for services that need no warm-up. Without it, call SetReady.
func WithReadyOnListen() Option {
	return func(c *config) { c.readyOnListen = true }
}

// WithHealthPath serves the readiness handler on the main listener at path
// (for example "/logistics/health", what an ALB health check and a
// Kubernetes readinessProbe would ask for).
func WithHealthPath(path string) Option {
	return func(c *config) { c.healthPath = c.checkPath("WithHealthPath", path) }
}

// WithLivenessPath serves the liveness handler on the main listener at path.
func WithLivenessPath(path string) Option {
	return func(c *config) { c.livenessPath = c.checkPath("WithLivenessPath", path) }
}

// WithPreStopPath serves the preStop handler on the main listener at path,
// for a lifecycle.preStop.httpGet hook.
func WithPreStopPath(path string) Option {
	return func(c *config) { c.preStopPath = c.checkPath("WithPreStopPath", path) }
}

func (c *config) checkPath(opt, path string) string {
	if !strings.HasPrefix(path, "/") {
		c.bad("%s(%q): path must start with /", opt, path)
		return ""
	}
	return path
}

// WithAdminAddr serves readiness (/readyz), liveness (/livez) and preStop
// (/prestop) on a separate listener at addr (for example "127.0.0.1:9090"),
// plus /metrics when WithAdminMetrics is given. The admin listener stays up
// through the drain and closes after the hooks ran.
func WithAdminAddr(addr string) Option {
	return func(c *config) {
		if addr == "" {
			c.bad("WithAdminAddr(%q): address must not be empty", addr)
			return
		}
		c.adminAddr = addr
	}
}

// WithAdminMetrics serves g in the Prometheus text format at /metrics on the
// admin listener. Register s.Collector() in the registry behind g to get the
// drain metrics.
func WithAdminMetrics(g prometheus.Gatherer) Option {
	return func(c *config) { c.adminGatherer = g }
}

// WithLogger logs lifecycle events to l (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithForceOnSecondSignal decides whether a second signal during the drain
// cuts it short (default true): remaining connections are closed at once
// and Serve returns an error wrapping ErrForced. With false, further signals
// are ignored.
func WithForceOnSecondSignal(force bool) Option {
	return func(c *config) { c.forceOnSecond = force }
}

// WithEnv replaces os.LookupEnv as the source of ZERODROP_SHUTDOWN_DELAY and
// ZERODROP_SHUTDOWN_TIMEOUT. A nil lookup disables environment
// configuration.
func WithEnv(lookup func(string) (string, bool)) Option {
	return func(c *config) {
		if lookup == nil {
			lookup = func(string) (string, bool) { return "", false }
		}
		c.lookupEnv = lookup
	}
}

// ParseEnvDuration parses the value of a duration environment variable:
// Go duration syntax, not negative. The error names the variable and value.
func ParseEnvDuration(name, value string) (time.Duration, error) {
	v := strings.TrimSpace(value)
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q: want a Go duration such as 15s or 1m30s", ErrConfig, name, value)
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: %s=%q: must not be negative", ErrConfig, name, value)
	}
	return d, nil
}

// resolve applies environment variables to settings that no option set and
// returns every configuration error found.
func (c *config) resolve() error {
	errs := append([]error(nil), c.errs...)
	for _, v := range []struct {
		name string
		set  bool
		dst  *time.Duration
	}{
		{EnvShutdownDelay, c.setDelay, &c.delay},
		{EnvShutdownTimeout, c.setTimeout, &c.timeout},
	} {
		raw, ok := c.lookupEnv(v.name)
		if !ok || v.set {
			continue
		}
		d, err := ParseEnvDuration(v.name, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*v.dst = d
	}
	return errors.Join(errs...)
}
