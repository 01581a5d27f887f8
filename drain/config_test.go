package drain_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/drain"
)

func envMap(kv ...string) drain.Option {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return drain.WithEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

// serveOnce runs one cancelled lifecycle and returns Serve's error and report.
func serveOnce(t *testing.T, opts ...drain.Option) (error, drain.Report) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := drain.New(&http.Server{Handler: okHandler()}, append([]drain.Option{drain.WithSignals()}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.Serve(ctx, ln)
	if _, derr := net.DialTimeout("tcp", ln.Addr().String(), time.Second); derr == nil {
		t.Error("listener left open after Serve returned")
	}
	return err, s.Report()
}

func TestEnvConfig(t *testing.T) {
	err, rep := serveOnce(t, envMap(drain.EnvShutdownDelay, "20ms", drain.EnvShutdownTimeout, "1m30s"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Delay != 20*time.Millisecond || rep.Timeout != 90*time.Second {
		t.Fatalf("delay %s timeout %s, want 20ms 1m30s from env", rep.Delay, rep.Timeout)
	}
	if rep.DelayAfterTrigger < 20*time.Millisecond {
		t.Fatalf("delay from env not served: %s", rep.DelayAfterTrigger)
	}

	// Explicit options win over the environment, even over a bad value.
	err, rep = serveOnce(t, envMap(drain.EnvShutdownDelay, "5s", drain.EnvShutdownTimeout, "bogus"),
		drain.WithDelay(0), drain.WithTimeout(time.Second))
	if err != nil || rep.Delay != 0 || rep.Timeout != time.Second {
		t.Fatalf("options over env: err=%v delay=%s timeout=%s, want nil 0 1s", err, rep.Delay, rep.Timeout)
	}

	// Defaults without env.
	s := drain.New(&http.Server{}, drain.WithEnv(nil))
	if s.HTTPServer().IdleTimeout != drain.DefaultIdleTimeout || s.HTTPServer().ReadHeaderTimeout != drain.DefaultReadHeaderTimeout {
		t.Fatalf("defaults not filled: %+v", s.HTTPServer())
	}
	// Values the caller set are kept.
	s = drain.New(&http.Server{IdleTimeout: 3 * time.Minute, ReadHeaderTimeout: time.Second})
	if s.HTTPServer().IdleTimeout != 3*time.Minute || s.HTTPServer().ReadHeaderTimeout != time.Second {
		t.Fatalf("caller's timeouts overridden: %+v", s.HTTPServer())
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []drain.Option
		want []string
	}{
		{"env seconds without unit", []drain.Option{envMap(drain.EnvShutdownDelay, "15")}, []string{drain.EnvShutdownDelay, `"15"`}},
		{"env negative", []drain.Option{envMap(drain.EnvShutdownTimeout, "-1s")}, []string{drain.EnvShutdownTimeout, "negative"}},
		{"env garbage", []drain.Option{envMap(drain.EnvShutdownTimeout, "soon")}, []string{drain.EnvShutdownTimeout, `"soon"`}},
		{"env empty", []drain.Option{envMap(drain.EnvShutdownDelay, "")}, []string{drain.EnvShutdownDelay}},
		{"both env bad", []drain.Option{envMap(drain.EnvShutdownDelay, "x", drain.EnvShutdownTimeout, "y")}, []string{drain.EnvShutdownDelay, drain.EnvShutdownTimeout}},
		{"negative delay", []drain.Option{noEnv, drain.WithDelay(-time.Second)}, []string{"WithDelay"}},
		{"negative timeout", []drain.Option{noEnv, drain.WithTimeout(-time.Second)}, []string{"WithTimeout"}},
		{"zero hook timeout", []drain.Option{noEnv, drain.WithHookTimeout(0)}, []string{"WithHookTimeout"}},
		{"relative health path", []drain.Option{noEnv, drain.WithHealthPath("health")}, []string{"WithHealthPath", "/"}},
		{"empty admin addr", []drain.Option{noEnv, drain.WithAdminAddr("")}, []string{"WithAdminAddr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, _ := serveOnce(t, tc.opts...)
			if !errors.Is(err, drain.ErrConfig) {
				t.Fatalf("Serve = %v, want ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

func TestParseEnvDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"15s": 15 * time.Second, "1m30s": 90 * time.Second, " 0s ": 0, "250ms": 250 * time.Millisecond} {
		got, err := drain.ParseEnvDuration("X", in)
		if err != nil || got != want {
			t.Errorf("ParseEnvDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "15", "-1s", "1d", "abc", "1e9"} {
		if _, err := drain.ParseEnvDuration("X", in); !errors.Is(err, drain.ErrConfig) {
			t.Errorf("ParseEnvDuration(%q) error = %v, want ErrConfig", in, err)
		}
	}
}

func FuzzParseEnvDuration(f *testing.F) {
	for _, s := range []string{"15s", "1m30s", "-1s", "", "15", "9223372036854775807ns", "1h1h1h", "0.5s", " 3s\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := drain.ParseEnvDuration(drain.EnvShutdownDelay, s)
		if err != nil {
			if !errors.Is(err, drain.ErrConfig) || !strings.Contains(err.Error(), drain.EnvShutdownDelay) {
				t.Fatalf("error %v does not wrap ErrConfig and name the variable", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("negative duration %s accepted from %q", d, s)
		}
		ref, rerr := time.ParseDuration(strings.TrimSpace(s))
		if rerr != nil || ref != d {
			t.Fatalf("ParseEnvDuration(%q) = %s, time.ParseDuration = %s, %v", s, d, ref, rerr)
		}
	})
}

func TestHooksRunLIFOWithTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := drain.New(&http.Server{Handler: okHandler()}, noEnv, drain.WithSignals(), drain.WithDelay(0),
		drain.WithHookTimeout(100*time.Millisecond))
	var (
		mu    sync.Mutex
		order []string
	)
	record := func(name string) {
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
	}
	errDB := errors.New("pool busy")
	stuck := make(chan struct{})
	defer close(stuck)
	s.OnShutdown("db", func(ctx context.Context) error { record("db"); return errDB })
	s.OnShutdown("stuck", func(ctx context.Context) error { record("stuck"); <-stuck; return nil })
	s.OnShutdown("polite", func(ctx context.Context) error { record("polite"); <-ctx.Done(); return ctx.Err() })
	s.OnShutdown("panics", func(ctx context.Context) error { record("panics"); panic("boom") })
	s.OnShutdown("flush", func(ctx context.Context) error {
		record("flush")
		if s.State() != drain.Stopping {
			return fmt.Errorf("hook ran in state %s, want stopping", s.State())
		}
		if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			return errors.New("hook ran before the listener closed")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err = s.Serve(ctx, ln)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Serve took %s: a stuck hook was not abandoned", took)
	}
	if !errors.Is(err, errDB) || !errors.Is(err, drain.ErrHookTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Serve = %v, want the db error, a hook timeout and the polite hook's ctx error joined", err)
	}
	if !strings.Contains(err.Error(), "boom") || errors.Is(err, drain.ErrForced) {
		t.Fatalf("Serve = %v: want the panic reported, not ErrForced", err)
	}
	want := []string{"flush", "panics", "polite", "stuck", "db"}
	mu.Lock()
	got := strings.Join(order, ",")
	mu.Unlock()
	if got != strings.Join(want, ",") {
		t.Fatalf("hook order %s, want %s (last registered first)", got, strings.Join(want, ","))
	}
	rep := s.Report()
	if len(rep.Hooks) != len(want) {
		t.Fatalf("report hooks %+v", rep.Hooks)
	}
	for i, h := range rep.Hooks {
		if h.Name != want[i] || (h.Err == "") != (h.Name == "flush") {
			t.Errorf("hook result %d = %+v", i, h)
		}
	}
}
