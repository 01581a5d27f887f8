package load

import (
	"bytes"
	"context"
	"errors"
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

// Client sends requests with browser-like keep-alive and per-request
// connect and response timeouts, and classifies every outcome.
type Client struct {
	hc              *http.Client
	tr              *http.Transport
	responseTimeout time.Duration
	obs             observer
	inflight        atomic.Int64
}

// ClientOptions configure a Client.
type ClientOptions struct {
	ConnectTimeout  time.Duration // default DefaultConnectTimeout
	ResponseTimeout time.Duration // from connection to the end of the body; default DefaultResponseTimeout
	MaxConns        int           // idle keep-alive connections kept per host (default 100)
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
	d := &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil, // traffic goes where the URL says
		DialContext:         d.DialContext,
		MaxIdleConns:        opts.MaxConns * 4,
		MaxIdleConnsPerHost: opts.MaxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &Client{
		hc:              &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		tr:              tr,
		responseTimeout: opts.ResponseTimeout,
	}
}

// Close drops idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// InFlight returns the number of outstanding requests.
func (c *Client) InFlight() int64 { return c.inflight.Load() }

// Do sends call and classifies the result. start is when the request was
// meant to start (the open model's schedule) or zero for now; latency is
// measured from it, so queueing delay counts. A request cut short because
// ctx ended is returned with Aborted set and is not recorded.
func (c *Client) Do(ctx context.Context, call Call, start time.Time) Reply {
	now := time.Now()
	if start.IsZero() || start.After(now) {
		start = now
	}
	c.inflight.Add(1)
	defer c.inflight.Add(-1)
	rep := c.do(ctx, &call)
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

func (c *Client) do(parent context.Context, call *Call) Reply {
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
	resp, err := c.hc.Do(req)
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
