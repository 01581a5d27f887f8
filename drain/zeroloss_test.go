package drain_test

import (
	"syscall"
	"testing"
	"time"
)

// shutdownUnderLoad runs two backends in mode behind the load balancer,
// sends SIGTERM to one of them under keep-alive load, and returns what the
// clients saw and the terminated child.
func shutdownUnderLoad(t *testing.T, mode string) (loadResult, *child, *lb) {
	env := []string{"ZERODROP_SHUTDOWN_DELAY=600ms", "ZERODROP_SHUTDOWN_TIMEOUT=2s"}
	a := startChild(t, mode, env...)
	b := startChild(t, mode, env...)
	l := newLB(t, a.addr, b.addr)
	res := runLoad(t, l.addr, 8, 2500*time.Millisecond, 700*time.Millisecond, func() {
		a.signal(t, syscall.SIGTERM)
	})
	a.wait(t, 10*time.Second)
	t.Logf("%s: ok=%d lost=%d proxy-errors=%d samples=%q proxy=%q", mode, res.ok, res.lost, l.errs.Load(), res.samples, l.errLog)
	if res.ok < 100 {
		t.Fatalf("%s: only %d requests succeeded; the load did not run", mode, res.ok)
	}
	b.signal(t, syscall.SIGKILL)
	return res, a, l
}

func TestGracefulShutdownLosesNothing(t *testing.T) {
	res, a, l := shutdownUnderLoad(t, modeDrain)
	if res.lost != 0 || l.errs.Load() != 0 {
		t.Fatalf("drain server: %d requests lost, %d proxy errors, want 0 (samples %q)", res.lost, l.errs.Load(), res.samples)
	}
	if a.code != exitClean || !a.gotRep {
		t.Fatalf("drain child exit code %d (report %v), want clean exit with report", a.code, a.gotRep)
	}
	rep := a.report
	if rep.Trigger != "signal: terminated" {
		t.Errorf("Trigger = %q, want signal: terminated", rep.Trigger)
	}
	if rep.Delay != 600*time.Millisecond || rep.Timeout != 2*time.Second {
		t.Errorf("env config not applied: delay %s timeout %s", rep.Delay, rep.Timeout)
	}
	// The proxy kept its pooled connections to the target; they were
	// retired, not dropped.
	if rep.ConnsRetired == 0 {
		t.Errorf("ConnsRetired = 0, want > 0")
	}
	// The load balancer routed here for a few health-check intervals after
	// SIGTERM; those requests were served, not refused.
	if rep.ServedWhileDraining == 0 {
		t.Errorf("ServedWhileDraining = 0, want > 0")
	}
	t.Logf("report: served while draining %d, connections retired %d, drain %s", rep.ServedWhileDraining, rep.ConnsRetired, rep.DrainDuration)
	if rep.RequestsCut != 0 || rep.Forced {
		t.Errorf("RequestsCut = %d Forced = %v, want a clean drain", rep.RequestsCut, rep.Forced)
	}
}

func TestImmediateExitLosesRequests(t *testing.T) {
	res, _, l := shutdownUnderLoad(t, modeExit)
	if res.lost == 0 || l.errs.Load() == 0 {
		t.Fatalf("os.Exit at SIGTERM lost %d requests (%d proxy errors); the test cannot tell a broken shutdown", res.lost, l.errs.Load())
	}
}

// TestShutdownAtOnceLosesRequests is the keep-alive race seen from the load
// balancer: closing the listener and the idle keep-alive connections at
// SIGTERM, while the load balancer still routes, makes proxy errors.
func TestShutdownAtOnceLosesRequests(t *testing.T) {
	res, _, l := shutdownUnderLoad(t, modeShutdown)
	if res.lost == 0 || l.errs.Load() == 0 {
		t.Fatalf("Shutdown at SIGTERM lost %d requests (%d proxy errors); the test cannot tell a broken shutdown", res.lost, l.errs.Load())
	}
}
