package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zerodrop report and zerodrop analyze as a user runs them: exit codes,
// the table on stdout, the HTML file, malformed lines with file:line.
func TestReportAndAnalyzeCLI(t *testing.T) {
	for _, args := range [][]string{
		{"report"},
		{"report", "-o", "pdf", "results/testdata/v1-load.json"},
		{"report", "no-such-result.json"},
		{"analyze"},
		{"analyze", "no-such-dir/"},
		{"analyze", "--events", "no-such-events.json", "accesslog/testdata/corpus.log"},
		{"analyze", "--bucket", "-1s", "accesslog/testdata/corpus.log"},
	} {
		if r := zerodrop(t, "", args...); r.code != 2 || !strings.HasPrefix(r.stderr, "zerodrop: ") {
			t.Errorf("zerodrop %v: exit %d, stderr %q; want 2 and a message", args, r.code, r.stderr)
		}
	}

	r := zerodrop(t, "", "report", "results/testdata/v1-load.json")
	if r.code != 0 || !strings.Contains(r.stdout, "error rate in disruption windows") || !strings.Contains(r.stdout, "before") {
		t.Fatalf("report of a v1 result: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	dir := t.TempDir()
	logs := "accesslog/testdata/corpus.log"
	data, err := os.ReadFile(filepath.Join("..", "..", logs))
	if err != nil {
		t.Fatal(err)
	}
	out, page := filepath.Join(dir, "alb.json"), filepath.Join(dir, "alb.html")
	r = zerodrop(t, string(data)+"not a log line\n", "analyze", "-", "--out", out, "--html", page)
	if r.code != 0 || !strings.Contains(r.stdout, "13 entries, 1 malformed lines") || !strings.Contains(r.stdout, "malformed: stdin:14:") {
		t.Fatalf("analyze of stdin: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "likely cause: ALB-made 502") {
		t.Errorf("analyze printed no likely cause:\n%s", r.stdout)
	}
	html := filepath.Join(dir, "both.html")
	r = zerodrop(t, "", "report", out, "results/testdata/v1-load.json", "-o", html)
	if r.code != 0 || !strings.Contains(r.stderr, "wrote "+html+" (2 runs)") {
		t.Fatalf("report -o FILE.html: exit %d, %s", r.code, r.stderr)
	}
	for _, f := range []string{page, html} {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), `data-chart="requests"`) {
			t.Errorf("%s: %v, no requests chart", f, err)
		}
	}
	r = zerodrop(t, "", "report", out, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"runs"`) || !strings.Contains(r.stdout, `"source": "analyze"`) {
		t.Errorf("report -o json: exit %d\n%s", r.code, r.stdout)
	}
}
