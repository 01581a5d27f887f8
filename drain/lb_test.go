package drain_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lb is a small loopback load balancer modelled on an ALB: it health-checks
// each target's readiness path on an interval, takes a target out after two
// failures, and proxies over keep-alive connection pools. Like the ALB it
// never retries a request on another target.
type lb struct {
	targets []*target
	next    atomic.Uint64
	proxy   *httputil.ReverseProxy
	srv     *http.Server
	addr    string
	errs    atomic.Int64
	errMu   sync.Mutex
	errLog  []string
}

type target struct {
	url     *url.URL
	healthy atomic.Bool
	seen    atomic.Bool // first health check answered
}

const (
	hcInterval  = 20 * time.Millisecond
	hcUnhealthy = 2
)

func newLB(t *testing.T, addrs ...string) *lb {
	t.Helper()
	l := &lb{}
	for _, a := range addrs {
		l.targets = append(l.targets, &target{url: &url.URL{Scheme: "http", Host: a}})
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 60 * time.Second}
	l.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(l.pick().url)
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			l.errs.Add(1)
			l.errMu.Lock()
			if len(l.errLog) < 5 {
				l.errLog = append(l.errLog, err.Error())
			}
			l.errMu.Unlock()
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.addr = ln.Addr().String()
	l.srv = &http.Server{Handler: l.proxy}
	go l.srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, tg := range l.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.healthCheck(ctx, tg)
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		l.srv.Close()
		tr.CloseIdleConnections()
	})
	waitFor(t, 10*time.Second, "all targets healthy", func() bool {
		for _, tg := range l.targets {
			if !tg.healthy.Load() {
				return false
			}
		}
		return true
	})
	return l
}

// pick chooses the next healthy target round robin; with none healthy it
// fails open like the ALB.
func (l *lb) pick() *target {
	n := uint64(len(l.targets))
	for range n {
		tg := l.targets[l.next.Add(1)%n]
		if tg.healthy.Load() {
			return tg
		}
	}
	return l.targets[l.next.Add(1)%n]
}

func (l *lb) healthCheck(ctx context.Context, tg *target) {
	c := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	fails := 0
	tick := time.NewTicker(hcInterval)
	defer tick.Stop()
	for {
		ok := false
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.url.String()+"/healthz", nil)
		if resp, err := c.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
		if ok {
			fails = 0
			tg.healthy.Store(true)
		} else if fails++; fails >= hcUnhealthy {
			tg.healthy.Store(false)
		}
		tg.seen.Store(true)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// loadResult counts what the clients saw.
type loadResult struct {
	ok, lost int64
	samples  []string
}

// runLoad sends POSTs (not idempotent, so no transport retries) through the
// load balancer from workers keep-alive clients, for at most d or
// maxPerWorker requests each. onTick runs once, after `at`.
func runLoad(t *testing.T, addr string, workers int, d time.Duration, at time.Duration, onTick func()) loadResult {
	t.Helper()
	var (
		ok, lost atomic.Int64
		mu       sync.Mutex
		samples  []string
		wg       sync.WaitGroup
	)
	const maxPerWorker = 50000
	end := time.Now().Add(d)
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxPerWorker && time.Now().Before(end); i++ {
				body := fmt.Sprintf(`{"worker":%d,"n":%d}`, w, i)
				resp, err := c.Post("http://"+addr+"/orders", "application/json", strings.NewReader(body))
				var why string
				if err != nil {
					why = err.Error()
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || string(b) != "ok" {
						why = fmt.Sprintf("status %d body %q", resp.StatusCode, b)
					}
				}
				if why == "" {
					ok.Add(1)
					continue
				}
				lost.Add(1)
				mu.Lock()
				if len(samples) < 5 {
					samples = append(samples, why)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(at)
	onTick()
	wg.Wait()
	return loadResult{ok: ok.Load(), lost: lost.Load(), samples: samples}
}
