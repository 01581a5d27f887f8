package alb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// startHealthChecks runs t's health checks with settings s until ctx ends.
// The first check runs at once; each result holds for the interval.
func (lb *LoadBalancer) startHealthChecks(ctx context.Context, g *targetGroup, t *target, gen int, s tgSettings) {
	host, port, _ := net.SplitHostPort(t.addr)
	if s.hc.Port != "traffic-port" {
		port = s.hc.Port
	}
	url := "http://" + net.JoinHostPort(host, port) + s.hc.Path
	interval := lb.scaled(time.Duration(s.hc.Interval))
	timeout := lb.scaled(time.Duration(s.hc.Timeout))
	lb.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			ok, reason, desc := lb.checkOnce(ctx, url, timeout, s.matcher)
			if ctx.Err() != nil {
				return
			}
			g.recordHealth(t, gen, ok, reason, desc)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

// checkOnce performs one health check: GET url within timeout.
func (lb *LoadBalancer) checkOnce(ctx context.Context, url string, timeout time.Duration, m Matcher) (ok bool, reason, desc string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, ReasonFailedHealthChecks, err.Error()
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := lb.hcClient.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return false, ReasonTimeout, "Request timed out"
		}
		return false, ReasonFailedHealthChecks, "Health checks failed"
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !m.Match(resp.StatusCode) {
		return false, ReasonResponseCodeMismatch, fmt.Sprintf("Health checks failed with these codes: [%d]", resp.StatusCode)
	}
	return true, "", ""
}
