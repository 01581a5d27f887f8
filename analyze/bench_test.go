package analyze

import (
	"bytes"
	"io"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
)

// BenchmarkAnalyze reads and aggregates an hour-long log of 360k lines
// (100 a second, 1% ALB-made 502s): reader plus timeline, per-second
// latency, targets and failure windows, on one core.
func BenchmarkAnalyze(b *testing.B) {
	var buf bytes.Buffer
	w := accesslog.NewWriter(&buf)
	targets := []string{"10.1.2.30:8000", "10.1.2.31:8000", "10.1.2.32:8000", "10.1.2.33:8000"}
	const n = 360_000
	for i := range n {
		off := time.Duration(i) * 10 * time.Millisecond
		e := entry(off, targets[i%len(targets)], 200, 200)
		e.UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
		e.TraceID = "Root=1-65e2fd83-0b1c2d3e4f5a6b7c8d9e0f1a"
		if i%100 == 7 {
			e = entry(off, targets[0], 502, 0)
		}
		w.Write(e)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	var lines int64
	for b.Loop() {
		a := New(Options{})
		rd, err := accesslog.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		var e accesslog.Entry
		for {
			if err := rd.Read(&e); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			a.Add(&e)
		}
		if r := a.Result(nil); r.Totals.Requests != n {
			b.Fatalf("requests = %d", r.Totals.Requests)
		}
		lines += n
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
