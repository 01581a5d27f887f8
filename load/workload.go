package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Workload is what one user session does.
type Workload interface {
	// Name is the workload's name in results ("get", "orders").
	Name() string
	// Session runs one session through s.
	Session(ctx context.Context, s *Session)
	// Think is the pause between two sessions of the same user in the
	// closed model.
	Think(rng *rand.Rand) time.Duration
}

// Session is one user session in flight. Its first request is timed from
// the session's intended start (the open model's schedule), later ones from
// when they are sent.
type Session struct {
	conns *Conns
	start time.Time
	// stopAt is the end of the run's load (zero: none): a request that
	// would start after it is not sent.
	stopAt time.Time
	// ID numbers the session (unique within a run).
	ID uint64
	// Rand is the session's random source.
	Rand *rand.Rand
}

// Do sends one request of the session. Once the run's duration has passed
// it sends nothing and returns a Reply with Aborted set, so a session stops
// between two requests; the one exception is an open-model session's first
// request scheduled before the end (it was due in the run, and its wait
// counts in its latency).
func (s *Session) Do(ctx context.Context, call Call) Reply {
	st := s.start
	s.start = time.Time{}
	if !s.stopAt.IsZero() && !time.Now().Before(s.stopAt) && (st.IsZero() || !st.Before(s.stopAt)) {
		return Reply{Aborted: true, Err: errRunOver}
	}
	return s.conns.Do(ctx, call, st)
}

// errRunOver is the error of a request not sent because the run's duration
// had passed.
var errRunOver = errors.New("not sent: the run's duration has passed")

// Get is the plain workload: one request per session to one of URLs in
// turn, with a fixed method, headers and body.
type Get struct {
	URLs    []string
	Method  string // default GET
	Header  http.Header
	Body    []byte
	ThinkFn func(*rand.Rand) time.Duration // nil: no think time
	next    atomic.Uint64
}

// NewGet checks the URLs and builds a Get workload.
func NewGet(urls []string, method string, header http.Header, body []byte) (*Get, error) {
	if err := checkURLs(urls); err != nil {
		return nil, err
	}
	if method == "" {
		method = http.MethodGet
	}
	return &Get{URLs: urls, Method: strings.ToUpper(method), Header: header, Body: body}, nil
}

func checkURLs(urls []string) error {
	if len(urls) == 0 {
		return fmt.Errorf("at least one --url is needed")
	}
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("url %q: want an absolute http:// or https:// URL", u)
		}
		if port := p.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("url %q: port %s out of range 1-65535", u, port)
			}
		}
	}
	return nil
}

// Name implements Workload.
func (g *Get) Name() string { return "get" }

// DefaultConnections is Shared: plain requests are a load generator's
// traffic (one pool, the most requests per second). Use PerSession to
// model browser users.
func (g *Get) DefaultConnections() Connections { return Shared }

// Think implements Workload.
func (g *Get) Think(rng *rand.Rand) time.Duration {
	if g.ThinkFn == nil {
		return 0
	}
	return g.ThinkFn(rng)
}

// Session implements Workload.
func (g *Get) Session(ctx context.Context, s *Session) {
	u := g.URLs[int((g.next.Add(1)-1)%uint64(len(g.URLs)))]
	s.Do(ctx, Call{Method: g.Method, URL: u, Header: g.Header, Body: g.Body})
}

// ThinkTime returns a think-time function: base with uniform jitter of
// ±jitter×base (jitter in 0..1).
func ThinkTime(base time.Duration, jitter float64) func(*rand.Rand) time.Duration {
	return func(rng *rand.Rand) time.Duration {
		if base <= 0 {
			return 0
		}
		if jitter <= 0 {
			return base
		}
		f := 1 + jitter*(2*rng.Float64()-1)
		return time.Duration(float64(base) * f)
	}
}
