package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is the zerodrop binary built once for the CLI tests, so exit codes,
// stdout and stderr are those a user sees.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zerodrop-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "zerodrop")
	if prebuilt := os.Getenv("ZERODROP_BIN"); prebuilt != "" {
		binary = prebuilt // scripts/test.sh builds the binary once per run
	} else {
		build := exec.Command("go", "build", "-o", binary, ".")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			os.RemoveAll(dir)
			panic("building zerodrop: " + err.Error())
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// zerodrop runs the binary with args and a 60 s bound.
func zerodrop(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = "../.." // repository root, so testdata paths read as in the docs
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting zerodrop %v: %v", args, err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("zerodrop %v did not exit within 60s", args)
	}
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("zerodrop %v: %v", args, err)
	}
	return res
}

func TestVersionJSON(t *testing.T) {
	r := zerodrop(t, "", "version", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("version -o json is not JSON: %v\n%s", err, r.stdout)
	}
	if v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("incomplete version: %+v", v)
	}
	if r := zerodrop(t, "", "version", "-o", "yaml"); r.code != 2 || !strings.Contains(r.stderr, `unknown output format "yaml"`) {
		t.Fatalf("version -o yaml: exit %d, stderr %q; want 2 and a clear message", r.code, r.stderr)
	}
}

func TestSleep(t *testing.T) {
	start := time.Now()
	if r := zerodrop(t, "", "sleep", "300ms"); r.code != 0 {
		t.Fatalf("sleep 300ms: exit %d, stderr %q", r.code, r.stderr)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("sleep 300ms returned after %v", el)
	}
	if r := zerodrop(t, "", "sleep", "0"); r.code != 0 {
		t.Fatalf("sleep 0: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, bad := range []string{"soon", "5x", ""} {
		r := zerodrop(t, "", "sleep", bad)
		if r.code != 2 || !strings.Contains(r.stderr, "invalid duration") {
			t.Errorf("sleep %q: exit %d, stderr %q; want exit 2 naming the invalid duration", bad, r.code, r.stderr)
		}
	}
	if r := zerodrop(t, "", "sleep", "--", "-5s"); r.code != 2 || !strings.Contains(r.stderr, "must not be negative") {
		t.Errorf("sleep -- -5s: exit %d, stderr %q; want 2 and a clear message", r.code, r.stderr)
	}
	for _, args := range [][]string{{"sleep"}, {"sleep", "-5s"}, {"sleep", "1s", "2s"}} {
		if r := zerodrop(t, "", args...); r.code != 2 {
			t.Errorf("zerodrop %v: exit %d, stderr %q; want usage error 2", args, r.code, r.stderr)
		}
	}
}

func TestParseSleepDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"20": 20 * time.Second, "20s": 20 * time.Second, "1m30s": 90 * time.Second, "0": 0, "150ms": 150 * time.Millisecond} {
		got, err := parseSleepDuration(in)
		if err != nil || got != want {
			t.Errorf("parseSleepDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// TestCheckExitCodes pins the contract CI pipelines rely on: 0 clean, 1 for
// an error-level finding, 2 for unreadable input.
func TestCheckExitCodes(t *testing.T) {
	if r := zerodrop(t, "", "check", "-f", "check/testdata/rules/ZD001-fixed.yaml"); r.code != 0 {
		t.Errorf("check on a fixed manifest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := zerodrop(t, "", "check", "-f", "manifest/testdata/seed/before.yaml", "-o", "json")
	if r.code != 1 {
		t.Fatalf("check on the seed's before setup: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, "ZD001") {
		t.Errorf("check -o json on the seed's before setup: want JSON naming ZD001, got\n%s", r.stdout)
	}
	// Empty input is not a pass (issue 14).
	r = zerodrop(t, "", "check", "-f", "-", "-o", "sarif")
	if r.code != 2 || !strings.Contains(r.stderr, "no Kubernetes objects") {
		t.Errorf("check -f - with empty stdin: exit %d, stderr %q; want 2 saying there are no objects", r.code, r.stderr)
	}
	r = zerodrop(t, "", "check", "-f", "no/such/file.yaml")
	if r.code != 2 || !strings.Contains(r.stderr, "no/such/file.yaml") {
		t.Errorf("check on a missing file: exit %d, stderr %q; want 2 naming the file", r.code, r.stderr)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"load", "--url", "http://127.0.0.1:1", "--workload", "nope", "--duration", "1s"},
		{"load", "--no-such-flag"},
		{"serve", "--work", "forever"},
		{"serve", "--shutdown", "sometimes"},
		{"serve", "--db", "mysql://x"},
	} {
		r := zerodrop(t, "", args...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("zerodrop %v: exit %d, stderr %q; want exit 2 with a message", args, r.code, r.stderr)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	r := zerodrop(t, "", "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, "frobnicate") {
		t.Fatalf("unknown command: exit %d, stderr %q", r.code, r.stderr)
	}
}

func FuzzParseSleepDuration(f *testing.F) {
	for _, s := range []string{"20", "20s", "1m30s", "-1s", "", "9999999999999", "1e3s", "0x10", " 5s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseSleepDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("parseSleepDuration(%q) = %v: accepted a negative duration", s, d)
		}
		if err != nil && !strings.Contains(err.Error(), "invalid duration") {
			t.Fatalf("parseSleepDuration(%q): unclear error %v", s, err)
		}
	})
}

func TestALBUsageErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"alb", "--listen", "127.0.0.1:0", "--admin", "off", "--target", "127.0.0.2:1", "--interval", "1s"}, "--interval"},
		{[]string{"alb", "-o", "xml"}, `-o "xml"`},
		{[]string{"alb", "--config", "no/such/lb.yaml"}, "no/such/lb.yaml"},
		{[]string{"alb", "--config", "lb.yaml", "--target", "127.0.0.2:1"}, "--target cannot be combined with --config"},
	} {
		r := zerodrop(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("zerodrop %v: exit %d, stderr %q; want exit 2 naming %s", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
