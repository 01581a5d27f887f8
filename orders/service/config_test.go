package service

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func sp(s string) *string { return &s }

func TestLoadPrecedence(t *testing.T) {
	c, err := Load(env(nil), Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != DefaultAddr || c.DB != "sqlite:zerodrop-orders.db" || c.Shutdown != Graceful || c.Delay != 15*time.Second ||
		c.Timeout != 10*time.Second || !c.Work.IsZero() || c.LogFormat != "text" || c.AdminAddr != "" || c.IdleTimeout != 75*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	e := env(map[string]string{EnvAddr: "127.0.0.1:9001", EnvShutdown: "immediate", "ZERODROP_SHUTDOWN_DELAY": "2s", EnvWork: "exp:10ms", EnvDB: "postgres://u@127.0.0.1/db", EnvIdleTimeout: "5s"})
	c, err = Load(e, Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9001" || c.Shutdown != Immediate || c.Delay != 2*time.Second || c.Work.String() != "exp:10ms" || c.DB != "postgres://u@127.0.0.1/db" || c.IdleTimeout != 5*time.Second {
		t.Errorf("env: %+v", c)
	}
	c, err = Load(e, Flags{Addr: sp("127.0.0.1:9002"), Shutdown: sp("unwaited"), Delay: sp("0s"), Work: sp("1ms-2ms"), IdleTimeout: sp("2m")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9002" || c.Shutdown != Unwaited || c.Delay != 0 || c.Work.String() != "1ms-2ms" || c.IdleTimeout != 2*time.Minute {
		t.Errorf("flags over env: %+v", c)
	}
}

func TestLoadErrorsNameTheSource(t *testing.T) {
	cases := []struct {
		env   map[string]string
		flags Flags
		want  string
	}{
		{nil, Flags{Addr: sp("nope")}, "--addr"},
		{map[string]string{EnvAddr: "nope"}, Flags{}, EnvAddr},
		{nil, Flags{DB: sp("mysql://u:secret@x/db")}, "--db"},
		{map[string]string{EnvDB: "sqlite:"}, Flags{}, EnvDB},
		{nil, Flags{Work: sp("fast")}, "--work"},
		{map[string]string{EnvWork: "-5ms"}, Flags{}, EnvWork},
		{nil, Flags{Shutdown: sp("polite")}, "--shutdown"},
		{map[string]string{"ZERODROP_SHUTDOWN_DELAY": "soon"}, Flags{}, "ZERODROP_SHUTDOWN_DELAY"},
		{nil, Flags{Timeout: sp("-1s")}, "--shutdown-timeout"},
		{nil, Flags{LogFormat: sp("xml")}, "--log-format"},
		{nil, Flags{IdleTimeout: sp("0s")}, "--idle-timeout=\"0s\": must be positive"},
		{nil, Flags{IdleTimeout: sp("-5s")}, "--idle-timeout"},
		{map[string]string{EnvIdleTimeout: "75"}, Flags{}, EnvIdleTimeout + "=\"75\": want a Go duration"},
		{map[string]string{EnvAdminAddr: "9090"}, Flags{}, EnvAdminAddr},
		{nil, Flags{Addr: sp("127.0.0.1:8000"), AdminAddr: sp("127.0.0.1:8000")}, "--admin-addr=\"127.0.0.1:8000\": the same address as --addr"},
		{nil, Flags{AdminAddr: sp(DefaultAddr)}, "--admin-addr"},
		{nil, Flags{Addr: sp("127.0.0.1:80000")}, "--addr=\"127.0.0.1:80000\": port \"80000\" out of range"},
		{nil, Flags{AdminAddr: sp("127.0.0.1:-1")}, "--admin-addr"},
		{nil, Flags{DB: sp("sqlite:/nonexistent-zd-dir/orders.db")}, "directory /nonexistent-zd-dir does not exist; create it first"},
	}
	for _, c := range cases {
		_, err := Load(env(c.env), c.flags)
		if err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%v, %+v) = %v; want ErrUsage naming %s", c.env, c.flags, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks a password: %v", err)
		}
	}
}

func TestParseWork(t *testing.T) {
	for in, want := range map[string]string{"": "0", "0": "0", "none": "0", "50ms": "50ms", "20ms-200ms": "20ms-200ms",
		"exp:100ms": "exp:100ms", " 1s ": "1s", "0s-0s": "0s-0s", "exp:0s": "0"} {
		w, err := ParseWork(in)
		if err != nil || w.String() != want {
			t.Errorf("ParseWork(%q) = %v, %v; want %s", in, w, err, want)
		}
	}
	for _, in := range []string{"fast", "-1ms", "200ms-20ms", "exp:", "exp:-1s", "1ms-", "-", "2h", "1ms-2ms-3ms"} {
		if _, err := ParseWork(in); err == nil {
			t.Errorf("ParseWork(%q): no error", in)
		}
	}
	u, _ := ParseWork("20ms-40ms")
	e, _ := ParseWork("exp:5ms")
	f, _ := ParseWork("7ms")
	var sum time.Duration
	for range 2000 {
		if d := u.Sample(); d < 20*time.Millisecond || d > 40*time.Millisecond {
			t.Fatalf("uniform sample %v out of range", d)
		}
		d := e.Sample()
		if d < 0 || d > 100*time.Millisecond {
			t.Fatalf("exp sample %v out of [0, 20x mean]", d)
		}
		sum += d
		if f.Sample() != 7*time.Millisecond {
			t.Fatal("fixed sample differs")
		}
	}
	if mean := sum / 2000; mean < 4*time.Millisecond || mean > 6*time.Millisecond {
		t.Errorf("exp mean %v, want about 5ms", mean)
	}
}
