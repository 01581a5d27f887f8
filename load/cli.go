package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"zerodrop.dev/zerodrop/results"
)

// UsageError is a bad flag or argument (the command exits 2).
type UsageError struct{ Err error }

// Error returns the message of the underlying error.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

// InterruptedError says the run was stopped before its duration by a
// signal (Ctrl-C) or a cancelled context; the summary was still written.
// The command exits 130 (SIGINT) or 143 (SIGTERM).
type InterruptedError struct{ Cause error }

// Error says what stopped the run.
func (e *InterruptedError) Error() string { return "load interrupted: " + e.Cause.Error() }

// Unwrap returns the cause.
func (e *InterruptedError) Unwrap() error { return e.Cause }

// GateError is a breached gate (the command exits 1 with its one-line reason).
type GateError struct{ Err error }

// Error returns the gate's one-line reason.
func (e *GateError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *GateError) Unwrap() error { return e.Err }

// Options are the settings of `zerodrop load`, as flags give them.
type Options struct {
	URLs        []string
	Workload    string // get | orders
	Concurrency int    // closed model: sessions
	Rate        string // open model: arrivals per second, "R" or "R/s"
	Model       string // open | closed, when only Profile is given
	Profile     string // FILE or inline SHAPE:PARAMS
	Arrival     string // constant | poisson
	MaxInFlight int
	Duration    time.Duration

	ConnectTimeout, ResponseTimeout time.Duration
	// Connections is per-session, shared or empty (the workload's default:
	// per-session for orders, shared for get).
	Connections string
	// IdleTimeout closes keep-alive connections unused this long.
	IdleTimeout time.Duration
	Think       time.Duration
	ThinkSet    bool
	ThinkJitter float64

	Method   string
	Headers  []string
	Body     string
	BodyFile string

	Output      string // text | json
	Out         string // result JSON file
	CSV         string
	EMF         string // file or "-"
	Raw         string
	MetricsAddr string
	Marks       []string
	Labels      []string

	MaxErrors    int64
	MaxErrorRate float64
	MaxP99       time.Duration
	// MinSuccesses is the least number of 2xx/3xx responses a passing run
	// has (0: off; the command's default is 1).
	MinSuccesses int64
	Verify       bool

	Version string
	// TTY selects the live one-line progress display on Stderr.
	TTY bool
	// ProgressEvery is the interval of progress output (default 1 s on a
	// terminal, 5 s otherwise).
	ProgressEvery  time.Duration
	Stdout, Stderr io.Writer
}

func usage(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// Config turns options into a run configuration (and the ledger for
// --verify). Errors are *UsageError.
func (o *Options) Config() (Config, *Ledger, error) {
	var cfg Config
	if o.Duration <= 0 {
		return cfg, nil, usage("--duration is required and must be positive (for example 60s)")
	}
	if o.ThinkJitter < 0 || o.ThinkJitter > 1 {
		return cfg, nil, usage("--think-jitter %g: want a fraction from 0 to 1", o.ThinkJitter)
	}
	given := 0
	var ceiling float64
	if o.Concurrency != 0 {
		if o.Concurrency < 0 || o.Concurrency > maxDemand {
			return cfg, nil, usage("--concurrency %d: want 1..%d", o.Concurrency, int(maxDemand))
		}
		given++
		cfg.Model = Closed
		ceiling = float64(o.Concurrency)
	}
	if o.Rate != "" {
		r, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(o.Rate), "/s"), 64)
		if err != nil || r <= 0 || r > maxDemand {
			return cfg, nil, usage("--rate %q: want arrivals per second such as 200 or 200/s (up to %g)", o.Rate, float64(maxDemand))
		}
		given++
		cfg.Model = Open
		ceiling = r
	}
	if given > 1 {
		return cfg, nil, usage("--concurrency and --rate are exclusive: closed model (sessions) or open model (arrivals per second)")
	}
	if o.Profile != "" {
		p, err := LoadProfile(o.Profile)
		if err != nil {
			return cfg, nil, usage("--profile: %v", err)
		}
		if given == 0 {
			switch o.Model {
			case "closed", "":
				cfg.Model = Closed
			case "open":
				cfg.Model = Open
			default:
				return cfg, nil, usage("--model %q: want open or closed", o.Model)
			}
		}
		cfg.Profile = Scaled{Profile: p, Max: ceiling}
	} else {
		if given == 0 {
			return cfg, nil, usage("give --concurrency N (closed model), --rate R (open model) or --profile")
		}
		cfg.Profile = Constant{ceiling}
	}
	switch o.Arrival {
	case "", "constant":
	case "poisson":
		cfg.Poisson = true
	default:
		return cfg, nil, usage("--arrival %q: want constant or poisson", o.Arrival)
	}
	cfg.MaxInFlight = o.MaxInFlight
	cfg.Duration = o.Duration
	cfg.ConnectTimeout, cfg.ResponseTimeout = o.ConnectTimeout, o.ResponseTimeout
	if o.ConnectTimeout < 0 || o.ResponseTimeout < 0 || o.IdleTimeout < 0 {
		return cfg, nil, usage("timeouts must not be negative")
	}
	cfg.IdleTimeout = o.IdleTimeout
	if o.Connections != "" {
		c, err := ParseConnections(o.Connections)
		if err != nil {
			return cfg, nil, usage("--%v", err)
		}
		cfg.Connections = c
	}
	var ledger *Ledger
	switch o.Workload {
	case "get", "":
		if o.Verify {
			return cfg, nil, usage("--verify needs --workload orders (it reads orders back)")
		}
		h := http.Header{}
		for _, hv := range o.Headers {
			k, v, ok := strings.Cut(hv, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return cfg, nil, usage("--header %q: want 'Name: value'", hv)
			}
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		var body []byte
		if o.Body != "" && o.BodyFile != "" {
			return cfg, nil, usage("--body and --body-file are exclusive")
		}
		if o.Body != "" {
			body = []byte(o.Body)
		}
		if o.BodyFile != "" {
			b, err := os.ReadFile(o.BodyFile)
			if err != nil {
				return cfg, nil, usage("--body-file: %v", err)
			}
			body = b
		}
		g, err := NewGet(o.URLs, o.Method, h, body)
		if err != nil {
			return cfg, nil, usage("%v", err)
		}
		if o.ThinkSet {
			g.ThinkFn = ThinkTime(o.Think, o.ThinkJitter)
		}
		cfg.Workload = g
	case "orders":
		if o.Verify {
			ledger = NewLedger()
		}
		w, err := NewOrders(o.URLs, ledger)
		if err != nil {
			return cfg, nil, usage("%v", err)
		}
		if o.ThinkSet {
			w.ThinkFn = ThinkTime(o.Think, o.ThinkJitter)
		}
		cfg.Workload = w
	default:
		return cfg, nil, usage("--workload %q: want get or orders", o.Workload)
	}
	for _, ms := range o.Marks {
		m, err := ParseMark(ms)
		if err != nil {
			return cfg, nil, usage("--mark: %v", err)
		}
		if m.Offset >= o.Duration {
			return cfg, nil, usage("--mark %q: starts at %v, not before the end of the run (--duration %v)", ms, m.Offset, o.Duration)
		}
		if m.Duration > 0 && m.Offset+m.Duration > o.Duration {
			return cfg, nil, usage("--mark %q: ends at %v, after the end of the run (--duration %v); shorten it or leave out +DURATION (until the end)", ms, m.Offset+m.Duration, o.Duration)
		}
		cfg.Marks = append(cfg.Marks, m)
	}
	cfg.Meta = results.Meta{Tool: "zerodrop", Version: o.Version, Targets: o.URLs}
	for _, l := range o.Labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return cfg, nil, usage("--label %q: want KEY=VALUE", l)
		}
		if cfg.Meta.Labels == nil {
			cfg.Meta.Labels = map[string]string{}
		}
		cfg.Meta.Labels[k] = v
	}
	switch o.Output {
	case "", "text", "json":
	default:
		return cfg, nil, usage("-o %q: want text or json", o.Output)
	}
	if o.MaxErrorRate > 1 {
		return cfg, nil, usage("--max-error-rate %g: want a fraction from 0 to 1", o.MaxErrorRate)
	}
	if o.MinSuccesses < 0 {
		return cfg, nil, usage("--min-successes %d: want 0 (off) or more", o.MinSuccesses)
	}
	if o.MetricsAddr != "" {
		if err := checkHostPort(o.MetricsAddr); err != nil {
			return cfg, nil, usage("--metrics-addr %q: %v", o.MetricsAddr, err)
		}
	}
	return cfg, ledger, nil
}

// Main runs `zerodrop load` with o: it sends the load, shows progress,
// writes the outputs, verifies the ledger and checks the gates. Errors are
// *UsageError (exit 2), *GateError (exit 1), *InterruptedError (stopped by
// a signal; the command exits 130 or 143) or others (exit 1).
func Main(ctx context.Context, o Options) error {
	cfg, ledger, err := o.Config()
	if err != nil {
		return err
	}
	stderr := o.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	stdout := o.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	// Every output file is opened before the run, so a path that cannot be
	// written is a usage error now, not after an hour of load.
	files := map[string]*os.File{}
	for _, out := range []struct{ flag, path string }{{"out", o.Out}, {"csv", o.CSV}, {"emf", o.EMF}, {"raw", o.Raw}} {
		if out.path == "" || (out.flag == "emf" && out.path == "-") {
			continue
		}
		f, err := os.Create(out.path)
		if err != nil {
			return usage("--%s: %v", out.flag, err)
		}
		closers = append(closers, f.Close)
		files[out.flag] = f
	}
	var emf *EMF
	if o.EMF != "" {
		w := stdout
		if f := files["emf"]; f != nil {
			w = f
		}
		emf = NewEMF(w, cfg.Workload.Name())
		cfg.Sinks = append(cfg.Sinks, emf)
	}
	var raw *Raw
	rawFile := files["raw"]
	if o.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		m, err := NewMetrics(reg)
		if err != nil {
			return err
		}
		cfg.Sinks = append(cfg.Sinks, m)
		ln, err := net.Listen("tcp", o.MetricsAddr)
		if err != nil {
			return usage("--metrics-addr %s: %v", o.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		closers = append(closers, srv.Close)
		fmt.Fprintf(stderr, "metrics on http://%s/metrics\n", ln.Addr())
	}
	if rawFile != nil {
		raw = NewRaw(rawFile)
		cfg.Sinks = append(cfg.Sinks, raw)
	}
	every := o.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
		if o.TTY {
			every = time.Second
		}
	}
	cfg.ProgressEvery = every
	cfg.Progress = func(p Progress) {
		if o.TTY {
			fmt.Fprintf(stderr, "\r\033[K%s", FormatProgress(p))
		} else {
			fmt.Fprintln(stderr, FormatProgress(p))
		}
	}
	r, err := NewRunner(cfg)
	if err != nil {
		return usage("%v", err)
	}
	res, runErr := r.Run(ctx)
	if o.TTY {
		fmt.Fprintln(stderr)
	}
	if raw != nil {
		if err := raw.Flush(); err != nil {
			return fmt.Errorf("--raw: %w", err)
		}
	}
	if emf != nil {
		if err := emf.Err(); err != nil {
			return fmt.Errorf("--emf: %w", err)
		}
	}
	loadFor := cfg.Duration
	if runErr != nil {
		loadFor = min(loadFor, res.Duration())
		fmt.Fprintf(stderr, "load stopped early: %v\n", context.Cause(ctx))
		if ledger != nil {
			fmt.Fprintln(stderr, "--verify skipped: the run was interrupted")
		}
	}
	if ledger != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "verifying %d acknowledged orders...\n", ledger.Len())
		v, err := ledger.Verify(ctx, VerifyOptions{Base: o.URLs[0], Concurrency: 8})
		if err != nil {
			return err
		}
		res.Verify = v
	}
	if f := files["out"]; f != nil {
		if err := finishFile(f, func(w io.Writer) error { return results.Encode(w, res) }); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	if f := files["csv"]; f != nil {
		if err := finishFile(f, func(w io.Writer) error { return WriteCSV(w, res) }); err != nil {
			return fmt.Errorf("--csv: %w", err)
		}
	}
	if o.Output == "json" {
		if err := results.Encode(stdout, res); err != nil {
			return err
		}
	} else if err := WriteSummary(stdout, res, loadFor); err != nil {
		return err
	}
	if runErr != nil {
		// Interrupted: the summary is out; the gates do not judge a run
		// that did not run its course.
		return &InterruptedError{Cause: context.Cause(ctx)}
	}
	g := Gates{MaxErrors: o.MaxErrors, MaxErrorRate: o.MaxErrorRate, MaxP99: o.MaxP99, MinSuccesses: o.MinSuccesses, Verify: o.Verify}
	if err := g.Check(res); err != nil {
		return &GateError{err}
	}
	return nil
}

// finishFile writes to an output file opened before the run and closes it.
func finishFile(f *os.File, write func(io.Writer) error) error {
	if err := write(f); err != nil {
		return err
	}
	return f.Close()
}

// checkHostPort checks a host:port listen address, port 0-65535.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port such as 127.0.0.1:9100")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 0-65535", port)
	}
	return nil
}

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}
