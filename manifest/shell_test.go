package manifest

import (
	"strings"
	"testing"
	"time"
)

// TestParseShellScript: what a preStop script does, by the shell's
// semantics: ; runs in order, && only after success, || only after
// failure, & in the background (wait waits for it), | at once.
func TestParseShellScript(t *testing.T) {
	s := time.Second
	cases := []struct {
		script   string
		known    bool
		d        time.Duration
		stopAt   time.Duration // -1: no stop
		graceful bool
	}{
		{"sleep 15", true, 15 * s, -1, false},
		{"sleep 15 &", true, 0, -1, false},
		{"sleep 15 & wait", true, 15 * s, -1, false},
		{"nohup sleep 30 >/dev/null 2>&1 &", true, 0, -1, false},
		{"nginx -s quit; sleep 15", true, 15 * s, 0, true},
		{"/usr/sbin/nginx -s stop && sleep 15", true, 15 * s, 0, false},
		{"sleep 15 && nginx -s quit", true, 15 * s, 15 * s, true},
		{"sleep 5 || sleep 10", true, 5 * s, -1, false},
		{"false && sleep 10", true, 0, -1, false},
		{"false || sleep 10", true, 10 * s, -1, false},
		{"kill -TERM 1 && sleep 20", true, 20 * s, 0, true},
		{"kill -s QUIT 1", true, 0, 0, true},
		{"kill -9 1", true, 0, 0, false},
		{"kill 1", true, 0, 0, true},
		{"kill -0 1 && sleep 5", true, 5 * s, -1, false},
		{"kill -HUP 1; sleep 5", true, 5 * s, -1, false},
		{"pkill -f gunicorn; sleep 10", true, 10 * s, 0, true},
		{"kill -QUIT $(cat /run/nginx.pid); sleep 3", true, 3 * s, 0, true},
		{"apachectl -k graceful-stop", true, 0, 0, true},
		{"sleep 3; sleep 2 | cat", true, 5 * s, -1, false},
		{"(sleep 5; echo done) && sleep 2", true, 7 * s, -1, false},
		{"{ sleep 4; }; sleep 1", true, 5 * s, -1, false},
		{"sleep 5; exit 0; sleep 10", true, 5 * s, -1, false},
		{"sleep 20 # wait for the ALB", true, 20 * s, -1, false},
		{"sleep '20'", true, 20 * s, -1, false},
		{"sleep 1m", true, time.Minute, -1, false},
		{"exec sleep 12", true, 12 * s, -1, false},
		{"sh -c 'sleep 8'; sleep 2", true, 10 * s, -1, false},
		{"curl -s -X POST http://127.0.0.1:15000/quitquitquit", true, 0, 0, true},
		{"sleep 10 && curl -sf -XPOST http://localhost:15000/drain_listeners?graceful", true, 10 * s, 10 * s, true},
		{"while true; do sleep 1; done", false, 0, -1, false},
		{"nginx -s quit && while pgrep -x nginx; do sleep 1; done", false, 0, 0, true},
		{"if [ -f /tmp/x ]; then sleep 5; fi", false, 0, -1, false},
		{"sleep $DELAY", false, 0, -1, false},
		{"sleep infinity", false, 0, -1, false},
		{"echo bye", false, 0, -1, false},
		{"/app/drain", false, 0, -1, false},
	}
	for _, c := range cases {
		t.Run(c.script, func(t *testing.T) {
			p, err := ParseShellScript(c.script)
			if err != nil {
				t.Fatal(err)
			}
			if p.Known != c.known || (c.known && p.Duration != c.d) {
				t.Errorf("known %v duration %v (%s), want %v %v; steps %+v", p.Known, p.Duration, p.Unknown, c.known, c.d, p.Steps)
			}
			if !p.Known && p.Unknown == "" {
				t.Error("unknown duration without a reason")
			}
			st := p.StopServer()
			switch {
			case c.stopAt < 0 && st != nil:
				t.Errorf("stop-server step %+v, want none", st)
			case c.stopAt >= 0 && st == nil:
				t.Errorf("no stop-server step; steps %+v", p.Steps)
			case st != nil && (st.At != c.stopAt || st.Graceful != c.graceful):
				t.Errorf("stop at %v graceful %v, want %v %v", st.At, st.Graceful, c.stopAt, c.graceful)
			}
		})
	}
}

func TestParseShellScriptErrors(t *testing.T) {
	for _, bad := range []string{"sleep 5 &&", "(sleep 5", "if then fi", strings.Repeat("x", maxScript+1)} {
		if _, err := ParseShellScript(bad); err == nil {
			t.Errorf("%q: want a syntax error", bad)
		}
	}
}

func TestPlanArgv(t *testing.T) {
	if p := PlanArgv([]string{"/usr/sbin/nginx", "-s", "quit"}); p.StopServer() == nil || !p.Known {
		t.Errorf("nginx -s quit: %+v", p)
	}
	if p := PlanArgv([]string{"/app/drain"}); p.StopServer() != nil || p.Known {
		t.Errorf("/app/drain: %+v", p)
	}
}

// FuzzParseShellScript: any script gives a plan or an error, never a
// panic, and a known plan never runs backwards in time.
func FuzzParseShellScript(f *testing.F) {
	for _, s := range []string{"sleep 15", "nginx -s quit; sleep 5 &", "a || b && (c | d) & wait", "while :; do sleep 1; done", "kill -s TERM -- 1", "sh -c 'sh -c \"sleep 1\"'", "case $x in a) sleep 1;; esac", "f() { sleep 2; }; f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		p, err := ParseShellScript(script)
		if err != nil {
			return
		}
		if p.Duration < 0 {
			t.Fatalf("negative duration %v", p.Duration)
		}
		for _, s := range p.Steps {
			if s.At < 0 {
				t.Fatalf("step before the start: %+v", s)
			}
		}
	})
}
