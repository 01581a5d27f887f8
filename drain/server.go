package drain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"
)

// ErrForced is wrapped by the error Serve returns when the drain did not end
// on its own: requests or connections were still open at the timeout, or a
// second signal cut the drain short. Test it with errors.Is.
var ErrForced = errors.New("drain: forced shutdown")

// ErrServed is returned by Serve and ListenAndServe when the Server already
// served once; a Server runs one lifecycle.
var ErrServed = errors.New("drain: server already served")

// Server runs one http.Server through the whole termination chain: serve,
// stop trigger, delay, drain, hooks. Create it with New.
type Server struct {
	srv *http.Server
	app http.Handler
	cfg config
	tr  *tracker

	state   atomic.Int32
	started atomic.Bool

	mu         sync.Mutex
	drainStart time.Time
	trigger    string
	hooks      []hook
	report     Report
	stopped    chan struct{} // closed when the lifecycle is over

	cut, forcedConns atomic.Int64
	drainNanos       atomic.Int64
}

// New wraps srv. srv.Handler is the application (nil means
// http.DefaultServeMux, as in net/http); New replaces it with a wrapper that
// tracks requests, retires connections while draining and serves the health
// paths set by options. It chains srv.ConnState, and fills IdleTimeout (75 s)
// and ReadHeaderTimeout (10 s) only when they are zero. Do not change srv
// after New.
func New(srv *http.Server, opts ...Option) *Server {
	s := &Server{srv: srv, cfg: defaultConfig(), tr: newTracker(), stopped: make(chan struct{})}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.app = srv.Handler
	if s.app == nil {
		s.app = http.DefaultServeMux
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = DefaultIdleTimeout
	}
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	user := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		s.tr.connState(c, st)
		if user != nil {
			user(c, st)
		}
	}
	srv.Handler = http.HandlerFunc(s.serveHTTP)
	return s
}

// HTTPServer returns the wrapped http.Server.
func (s *Server) HTTPServer() *http.Server { return s.srv }

// SetReady declares the service ready: Starting -> Ready. It does nothing in
// any other state (a draining server never becomes ready again).
func (s *Server) SetReady() {
	if s.state.CompareAndSwap(int32(Starting), int32(Ready)) {
		s.cfg.logger.Info("drain: ready")
	}
}

// Ready reports whether the readiness endpoint answers 200.
func (s *Server) Ready() bool { return s.State() == Ready }

// State returns the current lifecycle state.
func (s *Server) State() State { return State(s.state.Load()) }

// StartDrain starts the drain as a preStop call or a signal would: readiness
// fails and the delay clock starts. Serve still waits for its context or a
// signal before it closes listeners. It is safe to call repeatedly.
func (s *Server) StartDrain(reason string) { s.beginDrain(reason) }

// beginDrain moves to Draining once and returns the end of the delay.
func (s *Server) beginDrain(trigger string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drainStart.IsZero() {
		s.drainStart = time.Now()
		s.trigger = trigger
		s.tr.setDraining()
		for {
			cur := s.state.Load()
			if cur >= int32(Draining) || s.state.CompareAndSwap(cur, int32(Draining)) {
				break
			}
		}
		s.cfg.logger.Info("drain: draining", "trigger", trigger, "delay", s.cfg.delay.String())
	}
	return s.drainStart.Add(s.cfg.delay)
}

// serveHTTP is the handler installed in the http.Server.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	draining := s.State() >= Draining
	if draining {
		// Retire the keep-alive connection after this response: the client
		// sees the header, so there is no race with a request already on
		// its way (unlike closing idle connections). HTTP/2 turns it into
		// a GOAWAY.
		w.Header().Set("Connection", "close")
	}
	if p := r.URL.Path; p != "" {
		switch p {
		case s.cfg.healthPath:
			s.ReadinessHandler().ServeHTTP(w, r)
			return
		case s.cfg.livenessPath:
			s.LivenessHandler().ServeHTTP(w, r)
			return
		case s.cfg.preStopPath:
			s.PreStopHandler().ServeHTTP(w, r)
			return
		}
	}
	s.tr.requestStarted(draining)
	defer s.tr.requestDone()
	if draining {
		s.app.ServeHTTP(w, r)
		return
	}
	// The drain may start while this request runs: decide on the header
	// when the response is written, not when the request arrived.
	s.app.ServeHTTP(&retiringWriter{ResponseWriter: w, s: s}, r)
}

// ListenAndServe binds srv.Addr (":http" when empty) and the admin address if
// set, then runs the lifecycle like Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrServed
	}
	if err := s.resolveConfig(); err != nil {
		return err
	}
	addr := s.srv.Addr
	if addr == "" {
		addr = ":http"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("drain: listening on %s: %w", addr, err)
	}
	return s.serve(ctx, ln)
}

// Serve runs the whole lifecycle on ln (and binds the admin address if set):
// it serves until ctx is cancelled or a configured signal arrives, fails
// readiness at once, keeps serving for the delay with "Connection: close" on
// every response, then closes the listeners and idle connections, lets
// in-flight requests finish until the timeout, closes what remains, runs the
// OnShutdown hooks (last registered first) and returns.
//
// It returns nil after a clean drain. It returns an error wrapping ErrForced
// when requests were cut at the timeout or a second signal forced the exit,
// an error wrapping ErrConfig for bad options or environment variables
// (before serving anything), and hook errors joined with errors.Join.
// Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrServed
	}
	if err := s.resolveConfig(); err != nil {
		ln.Close()
		return err
	}
	return s.serve(ctx, ln)
}

// resolveConfig applies the environment; handlers read the delay under
// s.mu, so it is written under s.mu too.
func (s *Server) resolveConfig() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.resolve()
}

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	var adminLn net.Listener
	if s.cfg.adminAddr != "" {
		var lc net.ListenConfig
		var err error
		adminLn, err = lc.Listen(ctx, "tcp", s.cfg.adminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("drain: listening on admin address %s: %w", s.cfg.adminAddr, err)
		}
	}
	return s.run(ctx, ln, adminLn)
}

// Addr returns the bound address of the main listener once Serve or
// ListenAndServe started (useful with port 0), or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.report.addr
}

// AdminAddr returns the bound admin address once Serve started, or nil.
func (s *Server) AdminAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.report.adminAddr
}

func (s *Server) run(ctx context.Context, ln, adminLn net.Listener) error {
	log := s.cfg.logger
	sigCh := make(chan os.Signal, 4)
	if len(s.cfg.signals) > 0 {
		signal.Notify(sigCh, s.cfg.signals...)
		defer signal.Stop(sigCh)
	}

	s.mu.Lock()
	s.report.addr = ln.Addr()
	s.mu.Unlock()
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.srv.Serve(ln) }()

	var admin *http.Server
	adminErr := make(chan error, 1)
	if adminLn != nil {
		admin = s.adminServer()
		s.mu.Lock()
		s.report.adminAddr = adminLn.Addr()
		s.mu.Unlock()
		go func() { adminErr <- admin.Serve(adminLn) }()
	}
	log.Info("drain: serving", "addr", ln.Addr().String(), "delay", s.cfg.delay.String(), "timeout", s.cfg.timeout.String())
	if s.cfg.readyOnListen {
		s.SetReady()
	}

	var errs []error
	serveFailed := func(what string, err error) {
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("drain: %s: %w", what, err))
		}
	}
	// serveGot/adminGot record that the serve loop already returned and
	// its error was taken into errs.
	var serveGot, adminGot bool

	// Phase 1: serve until the stop trigger.
	var trigger string
	select {
	case <-ctx.Done():
		trigger = "context: " + context.Cause(ctx).Error()
	case sig := <-sigCh:
		trigger = "signal: " + sig.String()
	case err := <-serveErr:
		serveGot = true
		serveFailed("serving", err)
		trigger = "serve error"
	case err := <-adminErr:
		adminGot = true
		serveFailed("serving admin", err)
		trigger = "admin serve error"
	}
	deadline := s.beginDrain(trigger)
	triggerAt := time.Now()
	log.Info("drain: stop requested", "trigger", trigger)

	// Phase 2: the rest of the delay (all of it unless a preStop call
	// started it earlier). The listener keeps accepting and serving.
	var forcedBySignal bool
	delayLeft := max(time.Until(deadline), 0)
	if !serveGot && delayLeft > 0 { // no delay when the main listener failed
		timer := time.NewTimer(delayLeft)
	delay:
		for {
			select {
			case <-timer.C:
				break delay
			case sig := <-sigCh:
				if s.cfg.forceOnSecond {
					log.Warn("drain: second signal, forcing exit", "signal", sig.String())
					forcedBySignal = true
					break delay
				}
				log.Info("drain: signal ignored while draining", "signal", sig.String())
			case err := <-serveErr:
				serveGot = true
				serveFailed("serving", err)
				break delay
			}
		}
		timer.Stop()
	}
	delayServed := time.Since(triggerAt)

	// Phase 3: close listeners and idle connections (and send HTTP/2
	// GOAWAY) through Shutdown, but wait on our own tracker, which wakes on
	// every connection state change instead of polling.
	s.state.Store(int32(Stopping))
	stopAt := time.Now()
	log.Info("drain: stopping", "open_connections", s.tr.snapshot().open)
	shCtx, cancelShutdown := context.WithCancel(context.WithoutCancel(ctx))
	shDone := make(chan struct{})
	go func() {
		defer close(shDone)
		s.srv.Shutdown(shCtx) //nolint:errcheck // cancelled on purpose below
	}()
	timedOut := false
	if !forcedBySignal {
		timedOut, forcedBySignal = s.waitQuiet(sigCh, stopAt.Add(s.cfg.timeout))
	}
	cutReqs, cutConns := s.tr.forceClosing()
	if err := s.srv.Close(); err != nil {
		log.Debug("drain: closing server", "err", err)
	}
	cancelShutdown()
	<-shDone
	s.tr.waitClosed(100 * time.Millisecond)
	if !serveGot {
		serveFailed("serving", <-serveErr)
	}
	drainDur := time.Since(s.drainStartTime())
	s.drainNanos.Store(int64(drainDur))
	shutdownDur := time.Since(stopAt)

	forced := timedOut || forcedBySignal || cutReqs > 0 || cutConns > 0
	if forced {
		s.cut.Add(int64(cutReqs))
		s.forcedConns.Add(int64(cutConns))
		var why string
		if forcedBySignal {
			why = "second signal"
		} else {
			why = fmt.Sprintf("timeout %s", s.cfg.timeout)
		}
		log.Warn("drain: forced close", "reason", why, "requests_cut", cutReqs, "connections_closed", cutConns)
		errs = append(errs, fmt.Errorf("drain: %d requests cut, %d connections closed by %s: %w", cutReqs, cutConns, why, ErrForced))
	}

	// Phase 4: hooks, last registered first.
	hookResults, hookErr := s.runHooks(context.WithoutCancel(ctx))
	if hookErr != nil {
		errs = append(errs, hookErr)
	}

	if admin != nil {
		admin.Close()
		if !adminGot {
			serveFailed("serving admin", <-adminErr)
		}
	}

	snap := s.tr.snapshot()
	s.mu.Lock()
	s.report.Trigger = s.trigger
	s.report.Delay = s.cfg.delay
	s.report.Timeout = s.cfg.timeout
	s.report.DelayAfterTrigger = delayServed
	s.report.ShutdownDuration = shutdownDur
	s.report.DrainDuration = drainDur
	s.report.ServedWhileDraining = snap.served
	s.report.ConnsRetired = snap.retired
	s.report.RequestsCut = int64(cutReqs)
	s.report.ConnsForceClosed = int64(cutConns)
	s.report.Forced = forced
	s.report.ForcedBySignal = forcedBySignal
	s.report.Hooks = hookResults
	s.mu.Unlock()
	s.state.Store(int32(Stopped))
	close(s.stopped)
	err := errors.Join(errs...)
	log.Info("drain: stopped", "drain", drainDur.String(), "served_while_draining", snap.served,
		"connections_retired", snap.retired, "requests_cut", cutReqs, "err", err)
	return err
}

func (s *Server) drainStartTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drainStart
}

// waitQuiet blocks until no request is in flight and no connection is
// active, until deadline, or until a forcing signal.
func (s *Server) waitQuiet(sigCh <-chan os.Signal, deadline time.Time) (timedOut, bySignal bool) {
	dl := time.NewTimer(time.Until(deadline))
	defer dl.Stop()
	for {
		busy, changed := s.tr.busy()
		if !busy {
			return false, false
		}
		select {
		case <-changed:
		case <-dl.C:
			return true, false
		case sig := <-sigCh:
			if s.cfg.forceOnSecond {
				s.cfg.logger.Warn("drain: second signal, forcing exit", "signal", sig.String())
				return false, true
			}
		}
	}
}

// Report returns what the last drain did. It is complete once Serve
// returned.
func (s *Server) Report() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.report
	r.Hooks = append([]HookResult(nil), r.Hooks...)
	return r
}

// Done is closed when the lifecycle is over (state Stopped).
func (s *Server) Done() <-chan struct{} { return s.stopped }
