package drain_test

import (
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"zerodrop.dev/zerodrop/drain"
)

func TestSecondSignalForcesExit(t *testing.T) {
	c := startChild(t, modeDrain, "ZERODROP_SHUTDOWN_DELAY=20s", "ZERODROP_SHUTDOWN_TIMEOUT=20s")
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + c.addr + "/slow?d=30s")
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	waitFor(t, 5*time.Second, "slow request in flight", func() bool { return inFlight(c.addr) == 2 })
	c.signal(t, syscall.SIGTERM)
	waitFor(t, 5*time.Second, "readiness to fail", func() bool { return healthCode(c.addr) == http.StatusServiceUnavailable })
	sent := time.Now()
	c.signal(t, syscall.SIGINT)
	code := c.wait(t, 10*time.Second)
	took := time.Since(sent)
	if code != exitForced {
		t.Fatalf("exit code after second signal = %d, want %d (forced)", code, exitForced)
	}
	// The delay and the timeout are 20 s each: only the second signal can
	// end the process this early.
	if took > 5*time.Second {
		t.Fatalf("exit took %s after the second signal", took)
	}
	// The slow request's connection is force-closed; a health check's may
	// still be closing too.
	if !c.report.ForcedBySignal || c.report.RequestsCut != 1 || c.report.ConnsForceClosed < 1 {
		t.Fatalf("report = %+v, want forced by signal with 1 request cut", c.report)
	}
	if err := <-got; err == nil {
		t.Fatal("the cut request succeeded")
	}
}

func TestPreStopThenSigtermDoesNotWaitTwice(t *testing.T) {
	const delay = 800 * time.Millisecond
	c := startChild(t, modeDrain, "ZERODROP_SHUTDOWN_DELAY=800ms", "ZERODROP_SHUTDOWN_TIMEOUT=2s")
	type result struct {
		code int
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		resp, err := http.Get("http://" + c.addr + "/prestop")
		if err != nil {
			done <- result{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{code: resp.StatusCode, took: time.Since(start)}
	}()
	waitFor(t, 2*time.Second, "readiness to fail after preStop", func() bool { return healthCode(c.addr) == http.StatusServiceUnavailable })
	select {
	case r := <-done:
		t.Fatalf("preStop returned while readiness already failed: %+v (it must block for the delay)", r)
	default:
	}
	r := <-done
	if r.err != nil || r.code != http.StatusOK || r.took < delay {
		t.Fatalf("preStop = %+v, want 200 after >= %s", r, delay)
	}
	c.signal(t, syscall.SIGTERM)
	if code := c.wait(t, 10*time.Second); code != exitClean {
		t.Fatalf("exit code = %d, want 0", code)
	}
	if c.report.Trigger != "prestop" {
		t.Errorf("Trigger = %q, want prestop", c.report.Trigger)
	}
	// The whole delay was served by the preStop call: after SIGTERM the
	// server must not wait for it again.
	if c.report.DelayAfterTrigger >= delay/2 {
		t.Fatalf("served %s of delay after SIGTERM, want ~0 (delay %s already spent in preStop)", c.report.DelayAfterTrigger, delay)
	}
}

func healthCode(addr string) int {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// inFlight reads zerodrop_drain_in_flight_requests from the child's
// /metrics, which counts the scrape itself.
func inFlight(addr string) int {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return -1
	}
	f, ok := fams[drain.MetricInFlight]
	if !ok || len(f.GetMetric()) != 1 {
		return -1
	}
	return int(f.GetMetric()[0].GetGauge().GetValue())
}

func TestSecondSignalIgnoredWhenNotForcing(t *testing.T) {
	c := startChild(t, modeDrain, "ZERODROP_SHUTDOWN_DELAY=700ms", "ZERODROP_SHUTDOWN_TIMEOUT=2s", childNoForceEnv+"=1")
	c.signal(t, syscall.SIGTERM)
	waitFor(t, 5*time.Second, "readiness to fail", func() bool { return healthCode(c.addr) == http.StatusServiceUnavailable })
	c.signal(t, syscall.SIGINT)
	c.signal(t, syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	// Still serving the delay despite the extra signals.
	if code := healthCode(c.addr); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness after extra signals = %d, want 503 (still draining)", code)
	}
	if code := c.wait(t, 10*time.Second); code != exitClean {
		t.Fatalf("exit code = %d, want 0", code)
	}
	if c.report.ForcedBySignal || c.report.DelayAfterTrigger < 700*time.Millisecond {
		t.Fatalf("report %+v: the extra signals cut the delay", c.report)
	}
}
