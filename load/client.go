package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// Default timeouts: a browser-like connect timeout and a response timeout
// below the ALB's 60 s idle timeout.
const (
	DefaultConnectTimeout  = 3 * time.Second
	DefaultResponseTimeout = 10 * time.Second
)

// maxBody bounds how much of a response body is kept for the workload (the
// rest is read and discarded so the connection can be reused).
const maxBody = 1 << 20

// Call is one HTTP request of a session.
type Call struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Keep asks for the response body (JSON the workload needs).
	Keep bool
}

// Reply is a classified response.
type Reply struct {
	// Outcome is the outcome key: the status code or a transport class.
	Outcome string
	// Status is the HTTP status, 0 when there was none.
	Status int
	// Header and Body (when Call.Keep) of the response.
	Header http.Header
	Body   []byte
	// Err is the transport error, if any.
	Err error
	// Aborted is true when the run was stopped while the request was
	// outstanding; such a request is not counted.
	Aborted bool
}

// OK reports a 2xx response.
func (r Reply) OK() bool { return r.Status >= 200 && r.Status < 300 }

// observer receives every classified request.
type observer interface {
	observe(call *Call, s results.Sample)
}

// Connections says who owns the keep-alive connections of a run.
type Connections string

// Connection ownership.
const (
	// PerSession gives every simulated user its own pool, as a browser
	// has: at most BrowserConnsPerHost connections per host, reused for
	// the user's requests and kept open across think time, closed after
	// IdleTimeout unused and when the user leaves. In the closed model a
	// user runs session after session; in the open model each arrival is
	// a new user.
	PerSession Connections = "per-session"
	// Shared puts every session on one pool, as a load generator does:
	// the fewest connections and the most requests per second.
	Shared Connections = "shared"
)

// ParseConnections checks a --connections value.
func ParseConnections(s string) (Connections, error) {
	switch c := Connections(s); c {
	case PerSession, Shared:
		return c, nil
	}
	return "", fmt.Errorf("connections %q: want per-session or shared", s)
}

// Browser-like keep-alive: Chromium opens at most 6 connections per host
// and keeps a used idle connection for 5 minutes (Firefox: 115 s). Both
// are longer than an ALB's 60 s idle timeout, so behind an ALB the load
// balancer, not the browser, closes a user's idle connection.
const (
	BrowserConnsPerHost = 6
	DefaultIdleTimeout  = 300 * time.Second
)

// Client sends requests with keep-alive connections and per-request
// connect and response timeouts, and classifies every outcome. It has one
// shared pool (Do) and hands out per-user pools (NewConns).
type Client struct {
	shared          *Conns
	dial            func(ctx context.Context, network, addr string) (net.Conn, error)
	idleTimeout     time.Duration
	responseTimeout time.Duration
	obs             observer
	inflight        atomic.Int64
	pools           atomic.Int64
}

// ClientOptions configure a Client.
type ClientOptions struct {
	ConnectTimeout  time.Duration // default DefaultConnectTimeout
	ResponseTimeout time.Duration // from connection to the end of the body; default DefaultResponseTimeout
	MaxConns        int           // idle keep-alive connections the shared pool keeps per host (default 100)
	// IdleTimeout closes a keep-alive connection unused this long
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration
}

type responseTimeoutError struct{}

func (responseTimeoutError) Error() string   { return "response timeout" }
func (responseTimeoutError) Timeout() bool   { return true }
func (responseTimeoutError) Temporary() bool { return true }

var errResponseTimeout net.Error = responseTimeoutError{}

// NewClient builds a client. Connections are HTTP/1.1 with keep-alive, as a
// browser (and the ALB) uses them.
func NewClient(opts ClientOptions) *Client {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = DefaultResponseTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 100
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	d := &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	c := &Client{dial: d.DialContext, idleTimeout: opts.IdleTimeout, responseTimeout: opts.ResponseTimeout}
	c.shared = c.newConns(opts.MaxConns, 0)
	c.shared.shared = true
	return c
}

// Conns is a keep-alive connection pool: the client's shared pool, or one
// simulated user's own (NewConns). It is safe for concurrent use.
type Conns struct {
	c      *Client
	hc     *http.Client
	tr     *http.Transport
	shared bool
	closed atomic.Bool
}

func (c *Client) newConns(idlePerHost, maxPerHost int) *Conns {
	tr := &http.Transport{
		Proxy:               nil, // traffic goes where the URL says
		DialContext:         c.dial,
		MaxIdleConns:        idlePerHost * 4,
		MaxIdleConnsPerHost: idlePerHost,
		MaxConnsPerHost:     maxPerHost,
		IdleConnTimeout:     c.idleTimeout,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &Conns{
		c:  c,
		hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		tr: tr,
	}
}

// NewConns returns a pool for one simulated user, as a browser keeps it:
// at most BrowserConnsPerHost connections per host (further requests wait
// for one), idle ones closed after the idle timeout. Close it when the
// user leaves.
func (c *Client) NewConns() *Conns {
	c.pools.Add(1)
	return c.newConns(BrowserConnsPerHost, BrowserConnsPerHost)
}

// Pools returns the number of per-user pools not yet closed.
func (c *Client) Pools() int64 { return c.pools.Load() }

// Do sends call on the pool (see Client.Do).
func (p *Conns) Do(ctx context.Context, call Call, start time.Time) Reply {
	return p.c.send(ctx, p.hc, call, start)
}

// Close closes the pool's connections: idle ones now, busy ones as soon as
// they go idle. Closing the client's shared pool this way does nothing
// (Client.Close does it).
func (p *Conns) Close() {
	if p.shared || !p.closed.CompareAndSwap(false, true) {
		return
	}
	p.tr.CloseIdleConnections()
	p.c.pools.Add(-1)
}

// Close drops the shared pool's idle connections.
func (c *Client) Close() { c.shared.tr.CloseIdleConnections() }

// InFlight returns the number of outstanding requests.
func (c *Client) InFlight() int64 { return c.inflight.Load() }

// Do sends call on the shared pool and classifies the result. start is
// when the request was meant to start (the open model's schedule) or zero
// for now; latency is measured from it, so queueing delay counts. A
// request cut short because ctx ended is returned with Aborted set and is
// not recorded.
func (c *Client) Do(ctx context.Context, call Call, start time.Time) Reply {
	return c.send(ctx, c.shared.hc, call, start)
}

func (c *Client) send(ctx context.Context, hc *http.Client, call Call, start time.Time) Reply {
	now := time.Now()
	if start.IsZero() || start.After(now) {
		start = now
	}
	c.inflight.Add(1)
	defer c.inflight.Add(-1)
	rep := c.do(ctx, hc, &call)
	if rep.Aborted {
		return rep
	}
	if c.obs != nil {
		c.obs.observe(&call, results.Sample{
			Start:   start,
			Latency: time.Since(start),
			Outcome: rep.Outcome,
			FromLB:  rep.Status != 0 && madeByLB(rep.Header),
		})
	}
	return rep
}

// madeByLB tells a response the load balancer made itself: an ALB signs its
// own error pages with "Server: awselb/2.0".
func madeByLB(h http.Header) bool {
	return strings.HasPrefix(strings.ToLower(h.Get("Server")), "awselb")
}

func (c *Client) do(parent context.Context, hc *http.Client, call *Call) Reply {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var connected atomic.Bool
	var timer atomic.Pointer[time.Timer]
	trace := &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			connected.Store(true)
			timer.Store(time.AfterFunc(c.responseTimeout, func() { cancel(errResponseTimeout) }))
		},
	}
	defer func() {
		if t := timer.Load(); t != nil {
			t.Stop()
		}
	}()
	var body io.Reader
	if call.Body != nil {
		body = bytes.NewReader(call.Body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), call.Method, call.URL, body)
	if err != nil {
		return Reply{Outcome: string(results.Other), Err: err}
	}
	for k, vs := range call.Header {
		req.Header[k] = vs
	}
	if call.Body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err == nil {
		var kept []byte
		if call.Keep {
			kept, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		}
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
		if err == nil {
			return Reply{Outcome: results.StatusKey(resp.StatusCode), Status: resp.StatusCode, Header: resp.Header, Body: kept}
		}
	}
	return c.classify(parent, ctx, err, connected.Load())
}

func (c *Client) classify(parent, ctx context.Context, err error, connected bool) Reply {
	if parent.Err() != nil {
		return Reply{Err: err, Aborted: true}
	}
	if errors.Is(context.Cause(ctx), errResponseTimeout) {
		return Reply{Outcome: string(results.TimeoutResponse), Err: errResponseTimeout}
	}
	return Reply{Outcome: string(results.ClassifyError(err, connected)), Err: err}
}
