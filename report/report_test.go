package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

func TestTextComparison(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, sampleRuns(t), TextOptions{Width: 60}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, re := range []string{
		`(?m)^\s+before\s+after$`,
		`(?m)^  502\s+160 \(ALB\)\s+-$`,
		`(?m)^  503\s+-\s+1$`,
		`(?m)^  reset\s+65\s+-$`,
		`(?m)^  5xx ALB-made\s+170\s+-$`,
		`(?m)^  5xx from targets\s+-\s+1$`,
		`(?m)^  error rate\s+3\.92%\s+0\.017%$`,
		`(?m)^  error rate in disruption windows\s+11\.75% \(235/2000\)\s+0\.050% \(1/2000\)$`,
		`(?m)^  lost writes\s+2\s+0$`,
		`(?m)^  failure windows\s+2 \(12s\)\s+1 \(1s\)$`,
		`failures\s+\+41\.0s\.\.\+52\.0s  225 of 550 requests failed \(40\.91%\): 502 \(ALB\) ×160, reset ×65`,
		`likely cause: began 0\.7 s after sigterm pod/orders-4`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("text output lacks %s:\n%s", re, out)
		}
	}
	// One scale for every run: the broken run's burst is full height, the
	// fixed run's single failure the lowest block, both in the same columns.
	spark := regexp.MustCompile(`(?m)^  (before|after) +\|(.*)\| 2m0s$`).FindAllStringSubmatch(out, -1)
	if len(spark) != 2 {
		t.Fatalf("sparklines: %q", spark)
	}
	before, after := []rune(spark[0][2]), []rune(spark[1][2])
	if len(before) != 60 || len(after) != 60 {
		t.Fatalf("sparkline widths %d, %d, want 60", len(before), len(after))
	}
	if !strings.ContainsRune(string(before), '█') || strings.Count(string(after), " ") != 59 || after[23] != '▁' {
		t.Errorf("sparklines:\n%s\n%s", string(before), string(after))
	}
	for i := range 20 {
		if before[i] != ' ' {
			t.Errorf("before has failures in column %d, before the disruption", i)
		}
	}
}

func TestSparklineScale(t *testing.T) {
	if got := sparkline([]int64{0, 1, 4, 8}, 8); got != " ▁▄█" {
		t.Errorf("sparkline = %q", got)
	}
	if got := sparkline([]int64{0, 0}, 0); got != "  " {
		t.Errorf("empty sparkline = %q", got)
	}
}

// Result files of both schema versions load; runs are named by their
// variant label or file name, and repeats get a suffix.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	v2 := sampleRun(t, "after", false).Result
	delete(v2.Meta.Labels, "variant")
	var buf bytes.Buffer
	if err := results.Encode(&buf, v2); err != nil {
		t.Fatal(err)
	}
	p2 := filepath.Join(dir, "fixed-run.json")
	os.WriteFile(p2, buf.Bytes(), 0o644)
	v1 := filepath.Join("..", "results", "testdata", "v1-load.json")
	runs, err := Load([]string{v1, p2, v1})
	if err != nil {
		t.Fatal(err)
	}
	if runs[0].Name != "before" || runs[1].Name != "fixed-run" || runs[2].Name != "before #2" {
		t.Fatalf("names = %q, %q, %q", runs[0].Name, runs[1].Name, runs[2].Name)
	}
	if runs[0].Result.SchemaVersion != results.SchemaVersion || runs[0].Result.Totals.Requests != 1536 {
		t.Fatalf("v1 run = %+v", runs[0].Result.Totals)
	}
	var out bytes.Buffer
	if err := WriteText(&out, runs, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&out, runs, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema_version": 9}`), 0o644)
	if _, err := Load([]string{bad}); err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), "schema_version") {
		t.Fatalf("bad file: %v", err)
	}
}

func TestCompareJSONShape(t *testing.T) {
	c := Compare(sampleRuns(t))
	b, a := c.Runs[0], c.Runs[1]
	if b.Disruption == nil || b.Disruption.Errors != 235 || *b.LostWrites != 2 || *a.LostWrites != 0 {
		t.Fatalf("comparison = %+v / %+v", b, a)
	}
	if b.Classes[ClassALB5xx] != 170 || b.Classes[ClassTransport] != 65 || a.Classes[ClassTarget5xx] != 1 {
		t.Errorf("classes = %v / %v", b.Classes, a.Classes)
	}
	if len(b.Failures) != 2 || len(a.Failures) != 1 {
		t.Errorf("failure windows = %d / %d", len(b.Failures), len(a.Failures))
	}
}

// A run with no request at all, and one of a single bucket, still render.
func TestDegenerateRuns(t *testing.T) {
	empty := results.NewRecorder(t0, results.RecorderOptions{}).Finish(t0)
	rec := results.NewRecorder(t0, results.RecorderOptions{})
	rec.Record(results.Sample{Start: t0, Latency: 0, Outcome: "502", FromLB: true})
	one := rec.Finish(t0.Add(10 * time.Millisecond))
	runs := []Run{{Name: "empty", Result: empty}, {Name: "one", Result: one}}
	var buf bytes.Buffer
	if err := WriteText(&buf, runs, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&buf, runs, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `data-chart="windows"`) {
		t.Fatal("no windows chart")
	}
}
