package accesslog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A line in the layout of a real ALB log, with fields appended after
// classification_reason by newer ALB versions (conn_trace_id and friends).
const realLine = `https 2026-03-02T10:15:31.123456Z app/prod-web/50dc6c495c0c9188 192.0.2.7:41622 10.0.4.17:8080 0.001 0.048 0.000 200 200 412 1893 "GET https://shop.example.com:443/api/orders?id=7 HTTP/1.1" "Mozilla/5.0 (X11; Linux x86_64; "rv"/1.0)" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-tg/73e2d6bc24d8a067 "Root=1-65e2fd83-0b1c2d3e4f5a6b7c8d9e0f1a" "shop.example.com" "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012" 3 2026-03-02T10:15:31.074000Z "forward" "-" "-" "10.0.4.17:8080" "200" "-" "-" TID_9f8e7d6c5b4a39281706 "-" "-"`

func TestParseRealLine(t *testing.T) {
	e, err := ParseLine(realLine)
	if err != nil {
		t.Fatal(err)
	}
	want := &Entry{
		Type: "https", Time: time.Date(2026, 3, 2, 10, 15, 31, 123456000, time.UTC),
		ELB: "app/prod-web/50dc6c495c0c9188", Client: "192.0.2.7:41622", Target: "10.0.4.17:8080",
		RequestProcessingTime: 0.001, TargetProcessingTime: 0.048, ResponseProcessingTime: 0,
		ELBStatusCode: 200, TargetStatusCode: 200, ReceivedBytes: 412, SentBytes: 1893,
		Request:   "GET https://shop.example.com:443/api/orders?id=7 HTTP/1.1",
		UserAgent: `Mozilla/5.0 (X11; Linux x86_64; "rv"/1.0)`,
		SSLCipher: "ECDHE-RSA-AES128-GCM-SHA256", SSLProtocol: "TLSv1.2",
		TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-tg/73e2d6bc24d8a067",
		TraceID:        "Root=1-65e2fd83-0b1c2d3e4f5a6b7c8d9e0f1a", DomainName: "shop.example.com",
		ChosenCertARN:       "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
		MatchedRulePriority: 3, RequestCreationTime: time.Date(2026, 3, 2, 10, 15, 31, 74000000, time.UTC),
		ActionsExecuted: "forward", TargetPortList: "10.0.4.17:8080", TargetStatusCodeList: "200",
		Extra: []string{"TID_9f8e7d6c5b4a39281706", "-", "-"},
	}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", e, want)
	}
	if got := TargetGroupName(e.TargetGroupARN); got != "web-tg" {
		t.Errorf("TargetGroupName = %q", got)
	}
	m, u, p := e.RequestParts()
	if m != "GET" || u != "https://shop.example.com:443/api/orders?id=7" || p != "HTTP/1.1" {
		t.Errorf("RequestParts = %q %q %q", m, u, p)
	}
}

func TestParseELBGenerated502(t *testing.T) {
	line := `http 2026-03-02T10:15:31.000001Z app/x/1 127.0.0.1:5000 - -1 -1 -1 502 - 120 272 "GET http://a:80/ HTTP/1.1" "-" - - arn:aws:elasticloadbalancing:local:000000000000:targetgroup/app/0 "Root=1-1-2" "-" "-" 1 2026-03-02T10:15:30.990000Z "forward" "-" "TargetClosedConnection" "-" "-" "-" "-"`
	e, err := ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	if !e.ELBGenerated() || e.Target != "" || e.TargetProcessingTime != -1 || e.ELBStatusCode != 502 {
		t.Fatalf("unexpected entry %+v", e)
	}
	if got := TransportClass(e.ErrorReason); got != ClassEOF {
		t.Fatalf("TransportClass(%q) = %q, want %q", e.ErrorReason, got, ClassEOF)
	}
}

func TestParseOlderShorterLine(t *testing.T) {
	// Lines written before the later fields existed end after "request" or "user_agent".
	line := `http 2016-08-10T22:08:42.945958Z app/my-loadbalancer/50dc6c495c0c9188 192.0.2.1:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0"`
	e, err := ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	if e.UserAgent != "curl/7.46.0" || e.TraceID != "" || e.MatchedRulePriority != 0 || !e.RequestCreationTime.IsZero() {
		t.Fatalf("unexpected entry %+v", e)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"too few fields":   `http 2016-08-10T22:08:42.945958Z app/x 1.2.3.4:5`,
		"bad time":         strings.Replace(realLine, "2026-03-02T10:15:31.123456Z", "yesterday", 1),
		"bad status":       strings.Replace(realLine, " 200 200 ", " 2x0 200 ", 1),
		"negative seconds": strings.Replace(realLine, "0.001 0.048", "-0.5 0.048", 1),
		"unterminated":     `http 2016-08-10T22:08:42.945958Z a b c 0 0 0 200 200 1 1 "GET / HTTP/1.1`,
	}
	for name, line := range cases {
		if _, err := ParseLine(line); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func randomEntry(r *rand.Rand) *Entry {
	str := func() string {
		const alphabet = "abcXYZ09 -\"\\/:=\t\x01é"
		n := r.IntN(12)
		var b []byte
		for range n {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		s := string(b)
		if s == "-" {
			return ""
		}
		return s
	}
	secs := func() float64 {
		if r.IntN(4) == 0 {
			return -1
		}
		return float64(r.IntN(100000)) / 1000
	}
	status := func() int {
		if r.IntN(3) == 0 {
			return 0
		}
		return 100 + r.IntN(500)
	}
	tm := func() time.Time {
		return time.Unix(1.7e9+r.Int64N(1e8), r.Int64N(1e6)*1000).UTC()
	}
	e := &Entry{
		Type: "http", Time: tm(), ELB: str(), Client: str(), Target: str(),
		RequestProcessingTime: secs(), TargetProcessingTime: secs(), ResponseProcessingTime: secs(),
		ELBStatusCode: status(), TargetStatusCode: status(),
		ReceivedBytes: r.Int64N(1 << 40), SentBytes: r.Int64N(1 << 40),
		Request: str(), UserAgent: str(), SSLCipher: str(), SSLProtocol: str(), TargetGroupARN: str(),
		TraceID: str(), DomainName: str(), ChosenCertARN: str(), MatchedRulePriority: r.IntN(50001) - 1,
		RequestCreationTime: tm(), ActionsExecuted: str(), RedirectURL: str(), ErrorReason: str(),
		TargetPortList: str(), TargetStatusCodeList: str(), Classification: str(), ClassificationReason: str(),
	}
	if r.IntN(3) == 0 {
		e.Extra = []string{"TID_1", "x"}
	}
	return e
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var want []*Entry
	for range 2000 {
		e := randomEntry(r)
		want = append(want, e)
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, we := range want {
		got, err := rd.Next()
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, we) {
			t.Fatalf("entry %d:\n got %+v\nwant %+v\nline %s", i, got, we, AppendLine(nil, we))
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after last entry: %v, want EOF", err)
	}
}

func TestReaderGzipAndBadLines(t *testing.T) {
	var plain bytes.Buffer
	plain.WriteString(realLine + "\n\nnot a log line\n" + realLine + "\r\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	// A second gzip member, as when files are concatenated.
	zw = gzip.NewWriter(&gz)
	zw.Write([]byte(realLine + "\n"))
	zw.Close()
	rd, err := NewReader(&gz)
	if err != nil {
		t.Fatal(err)
	}
	var good int
	var bad []int
	for {
		_, err := rd.Next()
		if err == io.EOF {
			break
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			bad = append(bad, pe.Line)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		good++
	}
	if good != 3 || !reflect.DeepEqual(bad, []int{3}) {
		t.Fatalf("good=%d bad lines=%v, want 3 and [3]", good, bad)
	}
}

func TestSeconds(t *testing.T) {
	if got := Seconds(1234567 * time.Microsecond); got != 1.235 {
		t.Errorf("Seconds = %v", got)
	}
	if got := Seconds(-1); got != -1 {
		t.Errorf("Seconds(-1) = %v", got)
	}
}
