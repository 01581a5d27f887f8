package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// Model is how demand turns into requests.
type Model string

// Arrival models.
const (
	// Closed: Profile.At(t) concurrent sessions, each starting its next
	// session after the previous one and its think time.
	Closed Model = "closed"
	// Open: Profile.At(t) session arrivals per second, whether or not
	// earlier ones finished (up to MaxInFlight at once; later arrivals
	// wait, and their wait counts in their latency). The result's
	// Generator reports how late arrivals were dispatched.
	Open Model = "open"
)

// Config describes a run.
type Config struct {
	Workload Workload
	Model    Model
	// Profile is the demand over time (sessions or arrivals per second).
	Profile Profile
	// Poisson spaces open-model arrivals exponentially instead of evenly.
	Poisson bool
	// MaxInFlight caps concurrent sessions in the open model (default 1000).
	MaxInFlight int
	// Duration of the run (required).
	Duration time.Duration
	// ConnectTimeout and ResponseTimeout bound every request.
	ConnectTimeout, ResponseTimeout time.Duration
	// Connections is who owns keep-alive connections: PerSession (each
	// simulated user its own pool, as a browser) or Shared. Empty: the
	// workload's default (DefaultConnections), else PerSession.
	Connections Connections
	// IdleTimeout closes keep-alive connections unused this long (default
	// DefaultIdleTimeout, a browser's).
	IdleTimeout time.Duration
	// Bucket is the timeline bucket width (default 1 s).
	Bucket time.Duration
	// Meta is copied into the result (tool, version, targets, labels).
	Meta results.Meta
	// Marks are windows relative to the start.
	Marks []MarkSpec
	// Sinks receive every request and every finished bucket.
	Sinks []Sink
	// Progress, when set, is called every ProgressEvery (default 1 s).
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Seed makes the run's random choices repeatable (0: random).
	Seed uint64
}

// MarkSpec is a window relative to the start of the run.
type MarkSpec struct {
	Name   string
	Offset time.Duration
	// Duration 0 means until the end of the run.
	Duration time.Duration
}

// Sink receives live data: each request as it is classified, each bucket
// once its latency is final. Implementations must be safe for concurrent
// use of Request.
type Sink interface {
	Request(call *Call, s results.Sample)
	Bucket(b results.Bucket, start time.Time)
}

// Progress is a live view for progress lines.
type Progress struct {
	Elapsed, Remaining time.Duration
	// Duration is how long load is sent (Config.Duration).
	Duration time.Duration
	// Rate is requests per second since the previous progress call.
	Rate     float64
	Totals   results.Totals
	Latency  results.Latency
	InFlight int64
	// Demand is the profile's current value.
	Demand float64
	// Sessions is the number of sessions running (closed) or in flight (open).
	Sessions int64
	// Thinking is how many of the closed model's users are in their think
	// time between two sessions (not idle: they will send again).
	Thinking int64
	// Finishing is true once the load has stopped (Duration passed) and
	// only the requests still in flight are awaited.
	Finishing bool
}

// Ticker is an optional Sink interface: Tick is called several times a
// second while the run goes on and once with final set when it ends, so a
// sink can write what it has on a clock (EMF writes one line per second).
type Ticker interface {
	Tick(now time.Time, final bool)
}

// Runner runs a load test. Create it with NewRunner, then Run it; while it
// runs, AddMark and AddEvent annotate the result (the lab marks
// disruptions this way).
type Runner struct {
	cfg      Config
	client   *Client
	rec      *results.Recorder
	start    time.Time
	ready    chan struct{}
	sessions atomic.Int64
	thinking atomic.Int64
	ids      atomic.Uint64
	// stopAt is when the load ends: no request starts after it.
	stopAt time.Time
	// flushedUpTo is the offset (ms) below which buckets went to the sinks.
	flushedUpTo int64
}

// NewRunner checks cfg and prepares a run.
func NewRunner(cfg Config) (*Runner, error) {
	if cfg.Workload == nil {
		return nil, errors.New("load: no workload")
	}
	if cfg.Profile == nil {
		return nil, errors.New("load: no demand profile")
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("load: duration must be positive")
	}
	switch cfg.Model {
	case Open, Closed:
	default:
		return nil, fmt.Errorf("load: model %q is not open or closed", cfg.Model)
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1000
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = DefaultResponseTimeout
	}
	if cfg.Connections == "" {
		cfg.Connections = PerSession
		if d, ok := cfg.Workload.(interface{ DefaultConnections() Connections }); ok {
			cfg.Connections = d.DefaultConnections()
		}
	}
	if _, err := ParseConnections(string(cfg.Connections)); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	conns := cfg.MaxInFlight
	if cfg.Model == Closed {
		conns = int(math.Min(maxDemand, math.Max(1, peakDemand(cfg.Profile, cfg.Duration))))
	}
	r := &Runner{cfg: cfg, ready: make(chan struct{})}
	r.client = NewClient(ClientOptions{ConnectTimeout: cfg.ConnectTimeout, ResponseTimeout: cfg.ResponseTimeout, MaxConns: conns, IdleTimeout: cfg.IdleTimeout})
	r.client.obs = r
	return r, nil
}

// peakDemand samples the profile for its largest value over d.
func peakDemand(p Profile, d time.Duration) float64 {
	peak := 0.0
	step := max(d/1000, time.Millisecond)
	for t := time.Duration(0); t <= d; t += step {
		peak = math.Max(peak, p.At(t))
	}
	return peak
}

func (r *Runner) observe(call *Call, s results.Sample) {
	r.rec.Record(s)
	for _, sk := range r.cfg.Sinks {
		sk.Request(call, s)
	}
}

// Started is closed when the run has started (AddMark works from then on).
func (r *Runner) Started() <-chan struct{} { return r.ready }

// AddMark marks a window [start, end) of the run; a zero end leaves it open
// until EndMark or the end of the run. Call it after Started.
func (r *Runner) AddMark(name string, start, end time.Time) {
	<-r.ready
	r.rec.AddMark(name, start, end)
}

// EndMark closes the open window called name.
func (r *Runner) EndMark(name string, end time.Time) bool {
	<-r.ready
	return r.rec.EndMark(name, end)
}

// AddEvent records a point-in-time event. Call it after Started.
func (r *Runner) AddEvent(at time.Time, kind, msg string, attrs map[string]string) {
	<-r.ready
	r.rec.AddEvent(at, kind, msg, attrs)
}

// Profile returns the run's demand profile.
func (r *Runner) Profile() Profile { return r.cfg.Profile }

// Run sends load for the configured duration and returns the result. No
// request starts after the duration (a session stops between two of its
// requests); the requests in flight at that moment finish within their own
// bounds (ConnectTimeout + ResponseTimeout), so Run returns at most that
// long after the duration. The result's window (Meta.Start to Meta.End) is
// the real elapsed time, in-flight tail included. Cancel ctx to stop early:
// requests cut short are not counted and the result covers the time run so
// far.
func (r *Runner) Run(ctx context.Context) (*results.Result, error) {
	defer r.client.Close()
	meta := r.cfg.Meta
	meta.Workload = r.cfg.Workload.Name()
	meta.Model = string(r.cfg.Model)
	r.start = time.Now()
	r.stopAt = r.start.Add(r.cfg.Duration)
	r.rec = results.NewRecorder(r.start, results.RecorderOptions{
		Meta:   meta,
		Bucket: r.cfg.Bucket,
		Grace:  r.cfg.ConnectTimeout + r.cfg.ResponseTimeout + time.Second,
	})
	for _, m := range r.cfg.Marks {
		var end time.Time
		if m.Duration > 0 {
			end = r.start.Add(m.Offset + m.Duration)
		}
		r.rec.AddMark(m.Name, r.start.Add(m.Offset), end)
	}
	close(r.ready)

	seed := r.cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	loadCtx, stopLoad := context.WithDeadline(ctx, r.start.Add(r.cfg.Duration))
	defer stopLoad()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if r.cfg.Model == Open {
			r.runOpen(loadCtx, ctx, seed)
		} else {
			r.runClosed(loadCtx, ctx, seed)
		}
	}()

	tick := time.NewTicker(min(250*time.Millisecond, r.cfg.ProgressEvery))
	defer tick.Stop()
	lastProgress := r.start
	var lastCount int64
	for running := true; running; {
		select {
		case <-done:
			running = false
		case now := <-tick.C:
			r.flush(now)
			r.tickSinks(now, false)
			if r.cfg.Progress != nil && now.Sub(lastProgress) >= r.cfg.ProgressEvery {
				p := r.progress(now)
				p.Rate = float64(p.Totals.Requests-lastCount) / now.Sub(lastProgress).Seconds()
				lastCount, lastProgress = p.Totals.Requests, now
				r.cfg.Progress(p)
			}
		}
	}
	// The window is the real elapsed time: rates computed on it are true
	// even when requests in flight at the end kept the run going.
	end := time.Now()
	res := r.rec.Finish(end)
	for _, b := range unflushed(res, r.flushedUpTo) {
		for _, sk := range r.cfg.Sinks {
			sk.Bucket(b, r.start)
		}
	}
	r.tickSinks(end, true)
	return res, ctx.Err()
}

func (r *Runner) tickSinks(now time.Time, final bool) {
	for _, sk := range r.cfg.Sinks {
		if t, ok := sk.(Ticker); ok {
			t.Tick(now, final)
		}
	}
}

// flush finalises old buckets and hands them to the sinks.
func (r *Runner) flush(now time.Time) {
	for _, b := range r.rec.Flush(now) {
		r.flushedUpTo = b.OffsetMS + 1
		for _, sk := range r.cfg.Sinks {
			sk.Bucket(b, r.start)
		}
	}
}

func unflushed(res *results.Result, upTo int64) []results.Bucket {
	var out []results.Bucket
	for _, b := range res.Timeline {
		if b.OffsetMS >= upTo {
			out = append(out, b)
		}
	}
	return out
}

func (r *Runner) progress(now time.Time) Progress {
	snap := r.rec.Snapshot()
	el := now.Sub(r.start)
	return Progress{
		Elapsed:   el,
		Remaining: max(0, r.cfg.Duration-el),
		Duration:  r.cfg.Duration,
		Totals:    snap.Totals,
		Latency:   snap.Latency,
		InFlight:  r.client.InFlight(),
		Demand:    r.cfg.Profile.At(el),
		Sessions:  r.sessions.Load(),
		Thinking:  r.thinking.Load(),
		Finishing: !now.Before(r.stopAt),
	}
}

// userConns returns the connection pool of a new simulated user: its own
// (close it when the user leaves) or the shared one.
func (r *Runner) userConns() *Conns {
	if r.cfg.Connections == Shared {
		return r.client.shared
	}
	return r.client.NewConns()
}

// session runs one session of the workload on conns.
func (r *Runner) session(ctx context.Context, conns *Conns, rng *rand.Rand, start time.Time) {
	r.sessions.Add(1)
	defer r.sessions.Add(-1)
	s := &Session{conns: conns, start: start, stopAt: r.stopAt, ID: r.ids.Add(1), Rand: rng}
	r.cfg.Workload.Session(ctx, s)
}

// arrival is one scheduled open-model session handed to a worker.
type arrival struct {
	// at is the scheduled start; the session's latency counts from it.
	at time.Time
	// waited is true when no worker was free at the time it was due.
	waited bool
}

// runOpen schedules arrivals at Profile.At(t) per second. A pool of
// MaxInFlight workers takes arrivals in order; when all are busy, arrivals
// wait and their latency counts from the scheduled time. Each arrival's
// dispatch lag (scheduled start to the moment a worker begins it) goes to
// the recorder apart, so the generator's own lateness is visible. Arrivals
// stop at the deadline of loadCtx; hardCtx cancels requests in flight.
func (r *Runner) runOpen(loadCtx, hardCtx context.Context, seed uint64) {
	// Unbuffered: a send that does not block at once found no idle worker,
	// which is exactly "every in-flight slot is busy".
	arrivals := make(chan arrival)
	var wg sync.WaitGroup
	for i := range r.cfg.MaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for a := range arrivals {
				r.rec.RecordDispatch(time.Since(a.at), a.waited)
				// Each arrival is a new user: its connections end with it.
				conns := r.userConns()
				r.session(hardCtx, conns, rng, a.at)
				conns.Close()
			}
		}()
	}
	defer wg.Wait()
	defer close(arrivals)
	rng := rand.New(rand.NewPCG(seed, math.MaxUint64))
	next := r.start
	end := r.start.Add(r.cfg.Duration)
	drain, stopDrain := context.WithDeadline(hardCtx, end.Add(r.cfg.ConnectTimeout+r.cfg.ResponseTimeout))
	defer stopDrain()
	const idle = 50 * time.Millisecond // re-check a zero demand this often
	for {
		rate := r.cfg.Profile.At(next.Sub(r.start))
		if rate <= 0 {
			next = next.Add(idle)
		} else {
			gap := 1 / rate
			if r.cfg.Poisson {
				gap = rng.ExpFloat64() / rate
			}
			next = next.Add(time.Duration(gap * float64(time.Second)))
		}
		if !next.Before(end) {
			return
		}
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-loadCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if rate <= 0 {
			continue
		}
		select {
		case arrivals <- arrival{at: next}:
			continue
		default:
		}
		// Every worker is busy: the arrival waits (its latency runs from
		// next). Arrivals due before the end are still sent after it, up
		// to one request timeout later.
		select {
		case arrivals <- arrival{at: next, waited: true}:
		case <-drain.Done():
			r.rec.AddEvent(time.Now(), "overload", "scheduled arrivals were never sent: every worker stayed busy past the end of the run", nil)
			return
		}
	}
}

// runClosed keeps round(Profile.At(t)) sessions running, adjusting every
// 100 ms. A session stops only between two of its sessions, never in the
// middle of a request.
func (r *Runner) runClosed(loadCtx, hardCtx context.Context, seed uint64) {
	type user struct{ stop chan struct{} }
	var users []user
	var wg sync.WaitGroup
	defer wg.Wait()
	var n uint64
	adjust := func(now time.Time) {
		want := int(math.Round(r.cfg.Profile.At(now.Sub(r.start))))
		for len(users) < want {
			u := user{stop: make(chan struct{})}
			users = append(users, u)
			n++
			rng := rand.New(rand.NewPCG(seed, n))
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The user's connections live across its sessions and
				// think time, until it leaves.
				conns := r.userConns()
				defer conns.Close()
				for {
					select {
					case <-u.stop:
						return
					case <-loadCtx.Done():
						return
					default:
					}
					r.session(hardCtx, conns, rng, time.Time{})
					think := r.cfg.Workload.Think(rng)
					if think <= 0 {
						continue
					}
					r.thinking.Add(1)
					t := time.NewTimer(think)
					select {
					case <-u.stop:
						t.Stop()
						r.thinking.Add(-1)
						return
					case <-loadCtx.Done():
						t.Stop()
						r.thinking.Add(-1)
						return
					case <-t.C:
					}
					r.thinking.Add(-1)
				}
			}()
		}
		for len(users) > want {
			close(users[len(users)-1].stop)
			users = users[:len(users)-1]
		}
	}
	adjust(r.start)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-loadCtx.Done():
			return
		case now := <-tick.C:
			adjust(now)
		}
	}
}
