package accesslog

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"
)

// benchLines returns n access-log lines in the shape of a busy real ALB's:
// mostly forwarded 200s from a few targets, some ELB-made 502/504 and
// target 5xx, full field set with appended fields.
func benchLines(n int) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	t := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	targets := []string{"10.0.4.17:8080", "10.0.4.18:8080", "10.0.5.3:8080", "10.0.5.9:8080"}
	for i := range n {
		e := &Entry{
			Type: "https", Time: t.Add(time.Duration(i) * 137 * time.Microsecond),
			ELB: "app/prod-web/50dc6c495c0c9188", Client: "192.0.2.7:41622", Target: targets[i%len(targets)],
			RequestProcessingTime: 0.001, TargetProcessingTime: 0.048, ResponseProcessingTime: 0,
			ELBStatusCode: 200, TargetStatusCode: 200, ReceivedBytes: 412, SentBytes: 1893,
			Request:   "GET https://shop.example.com:443/api/orders?id=7 HTTP/1.1",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
			SSLCipher: "ECDHE-RSA-AES128-GCM-SHA256", SSLProtocol: "TLSv1.2",
			TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-tg/73e2d6bc24d8a067",
			TraceID:        "Root=1-65e2fd83-0b1c2d3e4f5a6b7c8d9e0f1a", DomainName: "shop.example.com",
			ChosenCertARN:       "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
			MatchedRulePriority: 3, RequestCreationTime: t.Add(time.Duration(i)*137*time.Microsecond - 49*time.Millisecond),
			ActionsExecuted: "forward", TargetPortList: targets[i%len(targets)], TargetStatusCodeList: "200",
			Extra: []string{"TID_9f8e7d6c5b4a39281706"},
		}
		switch i % 100 {
		case 7:
			e.ELBStatusCode, e.TargetStatusCode = 502, 0
			e.TargetProcessingTime, e.ResponseProcessingTime = -1, -1
			e.TargetStatusCodeList = ""
		case 13:
			e.ELBStatusCode, e.TargetStatusCode = 500, 500
		}
		if err := w.Write(e); err != nil {
			panic(err)
		}
	}
	return buf.Bytes()
}

const benchN = 100_000

// BenchmarkReader reads plain lines through Reader.Read (one reused Entry),
// the way zerodrop analyze does. Reported: lines/s and MB/s of log text.
func BenchmarkReader(b *testing.B) {
	data := benchLines(benchN)
	benchRead(b, data, len(data))
}

// BenchmarkReaderGzip is BenchmarkReader on a gzip'd file, as ALB logs are
// stored; decompression is part of the cost.
func BenchmarkReaderGzip(b *testing.B) {
	plain := benchLines(benchN)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	benchRead(b, gz.Bytes(), len(plain))
}

// BenchmarkNext is the allocating Next (a fresh Entry per line).
func BenchmarkNext(b *testing.B) {
	data := benchLines(benchN)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var lines int
	for b.Loop() {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			lines++
		}
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}

func benchRead(b *testing.B, data []byte, plainBytes int) {
	b.SetBytes(int64(plainBytes))
	b.ReportAllocs()
	var lines int
	var e Entry
	for b.Loop() {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			err := rd.Read(&e)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			lines++
		}
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}

// repeatReader yields data n times over without holding more than data.
type repeatReader struct {
	data []byte
	off  int
	n    int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	c := copy(p, r.data[r.off:])
	r.off += c
	if r.off == len(r.data) {
		r.off, r.n = 0, r.n-1
	}
	return c, nil
}

// BenchmarkReaderMemory streams 100k and 2M lines through one Reader and
// reports the largest live heap seen (sampled every 100k lines, after a
// GC): it must not grow with the number of lines.
func BenchmarkReaderMemory(b *testing.B) {
	block := benchLines(10_000)
	for _, reps := range []int{10, 200} {
		b.Run(fmt.Sprintf("lines=%d", reps*10_000), func(b *testing.B) {
			var peak uint64
			for b.Loop() {
				rd, err := NewReader(&repeatReader{data: block, n: reps})
				if err != nil {
					b.Fatal(err)
				}
				var e Entry
				for i := 1; ; i++ {
					if err := rd.Read(&e); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
					if i%100_000 == 0 {
						runtime.GC()
						var ms runtime.MemStats
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapAlloc)
					}
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heapMB")
		})
	}
}
