// Package alb emulates an AWS Application Load Balancer on real sockets:
// an HTTP/1.1 listener with prioritised rules and weighted forward actions,
// target groups with health checks, slow start and deregistration delay,
// keep-alive connection pools to targets that fail exactly where an ALB
// fails (502/503/504 made by the load balancer), an access log in the ALB
// format, CloudWatch-named Prometheus metrics and an admin API named after
// the ELBv2 API with configurable control-plane latency.
//
// One time-scale factor multiplies every duration, so tests and the lab run
// the same semantics faster.
package alb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"zerodrop.dev/zerodrop/accesslog"
)

// Options are the Go-side hooks of a LoadBalancer; all are optional.
type Options struct {
	// Dialer connects to targets and injects faults; NewDialer() by default.
	Dialer *Dialer
	// Logf receives progress lines (registrations, state changes, drains)
	// as sentences.
	Logf func(format string, args ...any)
	// OnEvent receives the same progress as structured events (see
	// ProgressLogger for a writer of text or JSON lines).
	OnEvent func(Event)
	// Registry receives the metrics; a new registry by default. The names
	// are fixed (CloudWatch's), so one registry holds one load balancer.
	Registry *prometheus.Registry
	// AccessLog, when set, receives the access log instead of Config.AccessLog.
	AccessLog io.Writer
	// OnRequest, when set, is called with every finished request's
	// access-log entry (the same one the access log gets), from the
	// request's goroutine; it must not block.
	OnRequest func(e *accesslog.Entry)
}

// LoadBalancer is a running ALB emulator. Create it with New, start it with
// Start and stop it with Close.
type LoadBalancer struct {
	cfg            Config
	idle           time.Duration // scaled idle timeout
	connectTimeout time.Duration // scaled
	dialer         *Dialer
	hcClient       *http.Client
	accessLog      *accesslog.Writer
	logFile        *os.File
	logfFn         func(format string, args ...any)
	onEvent        func(Event)
	onRequest      func(e *accesslog.Entry)
	metrics        *metrics
	noGroup        *tgMetrics // series for requests no target group took
	elbID          string
	sched          *scheduler

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards groups and rule replacement
	groups map[string]*targetGroup
	order  []*targetGroup
	rules  atomic.Pointer[[]*rule]

	ln, adminLn     net.Listener
	srv, adminSrv   *http.Server
	listenPort      string
	started, closed atomic.Bool

	// testHookWriterDone, when set (by tests), runs in a request's writer
	// after the request is written and before the writer reports; it gets
	// a channel closed once the response head was read (or failed).
	testHookWriterDone func(headRead <-chan struct{})
}

// New validates cfg, fills in defaults and builds a load balancer. Nothing
// listens until Start.
func New(cfg Config, opts Options) (*LoadBalancer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("load balancer config: %w", err)
	}
	lb := &LoadBalancer{
		cfg:       cfg,
		dialer:    opts.Dialer,
		logfFn:    opts.Logf,
		onEvent:   opts.OnEvent,
		onRequest: opts.OnRequest,
		groups:    map[string]*targetGroup{},
		sched:     newScheduler(),
	}
	lb.idle = lb.scaled(time.Duration(cfg.IdleTimeout))
	lb.connectTimeout = lb.scaled(time.Duration(cfg.ConnectTimeout))
	if lb.dialer == nil {
		lb.dialer = NewDialer()
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	lb.metrics = newMetrics(lb, reg)
	lb.noGroup = lb.metrics.forGroup("")
	var id [8]byte
	rand.Read(id[:])
	lb.elbID = "app/" + cfg.Name + "/" + hex.EncodeToString(id[:])
	lb.ctx, lb.cancel = context.WithCancel(context.Background())
	lb.hcClient = &http.Client{
		Transport: &http.Transport{DialContext: lb.dialer.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	for _, tc := range cfg.TargetGroups {
		g, err := newTargetGroup(lb, tc)
		if err != nil {
			return nil, fmt.Errorf("target group %s: %w", tc.Name, err)
		}
		lb.groups[g.name] = g
		lb.order = append(lb.order, g)
	}
	rules := make([]*rule, 0, len(cfg.Rules))
	for _, rc := range cfg.Rules {
		rules = append(rules, lb.buildRule(rc.Priority, rc.Hosts, rc.PathPrefixes, rc.Forward))
	}
	lb.setRules(rules)
	if opts.AccessLog != nil {
		lb.accessLog = accesslog.NewWriter(opts.AccessLog)
	} else {
		switch cfg.AccessLog {
		case "":
		case "-":
			lb.accessLog = accesslog.NewWriter(os.Stdout)
		default:
			f, err := os.OpenFile(cfg.AccessLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, fmt.Errorf("opening access log: %w", err)
			}
			lb.logFile = f
			lb.accessLog = accesslog.NewWriter(f)
		}
	}
	return lb, nil
}

// Config returns the effective configuration (defaults filled in).
func (lb *LoadBalancer) Config() Config { return lb.cfg }

// Dialer returns the dialer, to inject faults from Go.
func (lb *LoadBalancer) Dialer() *Dialer { return lb.dialer }

// Registry returns the Prometheus registry holding the metrics.
func (lb *LoadBalancer) Registry() *prometheus.Registry { return lb.metrics.reg }

// scaled multiplies d by the time scale.
func (lb *LoadBalancer) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * lb.cfg.TimeScale)
}

func (lb *LoadBalancer) idleTimeout() time.Duration { return lb.idle }

// after runs fn after d on the scheduler (d <= 0: at once, inline).
func (lb *LoadBalancer) after(d time.Duration, fn func()) {
	if d <= 0 {
		fn()
		return
	}
	lb.sched.at(time.Now().Add(d), fn)
}

func (lb *LoadBalancer) buildRule(priority int, hosts, prefixes []string, fwd []WeightedTargetGroup) *rule {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.buildRuleLocked(priority, hosts, prefixes, fwd)
}

func (lb *LoadBalancer) buildRuleLocked(priority int, hosts, prefixes []string, fwd []WeightedTargetGroup) *rule {
	r := &rule{priority: priority, prefixes: slices.Clone(prefixes)}
	for _, h := range hosts {
		r.hosts = append(r.hosts, strings.ToLower(h))
	}
	for _, w := range fwd {
		wt := 1
		if w.Weight != nil {
			wt = *w.Weight
		}
		r.forward = append(r.forward, weightedGroup{g: lb.groups[w.TargetGroup], weight: wt})
		r.total += wt
	}
	return r
}

func (lb *LoadBalancer) setRules(rules []*rule) {
	slices.SortFunc(rules, func(a, b *rule) int { return a.priority - b.priority })
	lb.rules.Store(&rules)
}

func (lb *LoadBalancer) groupList() []*targetGroup {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return slices.Clone(lb.order)
}

func (lb *LoadBalancer) group(name string) (*targetGroup, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	g, ok := lb.groups[name]
	if !ok {
		return nil, &APIError{Status: 400, Code: "TargetGroupNotFound", Message: fmt.Sprintf("target group %q not found", name)}
	}
	return g, nil
}

// Start binds the listener and the admin API, registers the configured
// targets and starts serving. It returns once both listen.
func (lb *LoadBalancer) Start(ctx context.Context) error {
	if !lb.started.CompareAndSwap(false, true) {
		return errors.New("load balancer already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", lb.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	lb.ln = ln
	_, lb.listenPort, _ = net.SplitHostPort(ln.Addr().String())
	if lb.cfg.Admin != "off" {
		aln, err := lc.Listen(ctx, "tcp", lb.cfg.Admin)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin listener: %w", err)
		}
		lb.adminLn = aln
	}
	lb.wg.Go(func() { lb.sched.run(lb.ctx) })
	lb.wg.Go(lb.sweepPools)
	for _, tc := range lb.cfg.TargetGroups {
		g := lb.groups[tc.Name]
		for _, addr := range tc.Targets {
			if ok, _ := g.acceptRegister(addr); ok {
				g.applyRegister(addr)
			}
		}
	}
	lb.srv = &http.Server{
		Handler:           lb,
		IdleTimeout:       lb.idle,
		ReadHeaderTimeout: lb.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          discardLogger(),
	}
	lb.wg.Go(func() { lb.srv.Serve(ln) })
	if lb.adminLn != nil {
		lb.adminSrv = &http.Server{Handler: lb.adminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLogger()}
		lb.wg.Go(func() { lb.adminSrv.Serve(lb.adminLn) })
	}
	adminAt := lb.AdminAddr()
	if adminAt == "" {
		adminAt = "off"
	}
	lb.emit(Event{Kind: EventListening, Listen: ln.Addr().String(), Admin: adminAt,
		Msg: fmt.Sprintf("alb %s: listening on %s, admin %s, time scale %g", lb.cfg.Name, ln.Addr(), adminAt, lb.cfg.TimeScale)})
	return nil
}

// Addr returns the listener's address (after Start).
func (lb *LoadBalancer) Addr() string {
	if lb.ln == nil {
		return ""
	}
	return lb.ln.Addr().String()
}

// AdminAddr returns the admin API's address, "" when off or not started.
func (lb *LoadBalancer) AdminAddr() string {
	if lb.adminLn == nil {
		return ""
	}
	return lb.adminLn.Addr().String()
}

// URL returns the listener's base URL.
func (lb *LoadBalancer) URL() string { return "http://" + lb.Addr() }

// AdminURL returns the admin API's base URL.
func (lb *LoadBalancer) AdminURL() string { return "http://" + lb.AdminAddr() }

// Close stops the listeners, waits for requests in flight until ctx ends,
// then cuts the rest and stops health checks and pending operations.
func (lb *LoadBalancer) Close(ctx context.Context) error {
	if !lb.closed.CompareAndSwap(false, true) {
		return nil
	}
	var errs []error
	if lb.srv != nil {
		if err := lb.srv.Shutdown(ctx); err != nil {
			lb.srv.Close()
			errs = append(errs, fmt.Errorf("stopping listener: %w", err))
		}
	}
	if lb.adminSrv != nil {
		if err := lb.adminSrv.Shutdown(ctx); err != nil {
			lb.adminSrv.Close()
		}
	}
	lb.cancel()
	for _, g := range lb.groupList() {
		g.mu.Lock()
		ts := slices.Clone(g.targets)
		g.mu.Unlock()
		for _, t := range ts {
			t.cut()
			t.pool.closeIdle(true)
		}
	}
	lb.wg.Wait()
	if lb.logFile != nil {
		if err := lb.logFile.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing access log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sweepPools closes target connections idle for the whole idle timeout.
func (lb *LoadBalancer) sweepPools() {
	every := max(lb.idle/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-lb.ctx.Done():
			return
		case now := <-t.C:
			for _, g := range lb.groupList() {
				g.mu.Lock()
				ts := slices.Clone(g.targets)
				g.mu.Unlock()
				for _, tg := range ts {
					tg.pool.sweep(now)
				}
			}
		}
	}
}
