package alb

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
)

func TestForwardPassesThroughAndSetsHeaders(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		mu.Lock()
		got = r.Header.Clone()
		got.Set("Host", r.Host)
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", "a")
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.WriteHeader(http.StatusCreated)
		}
		w.Write(body)
	}), time.Minute)
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr))

	req, _ := http.NewRequest(http.MethodPost, tl.URL()+"/orders?x=1", strings.NewReader("hello"))
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("User-Agent", "zerodrop-test/1")
	resp, err := tl.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != "hello" || resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("got %d %q backend %q", resp.StatusCode, body, resp.Header.Get("X-Backend"))
	}
	mu.Lock()
	h := got
	mu.Unlock()
	_, port, _ := net.SplitHostPort(tl.Addr())
	if h.Get("X-Forwarded-For") != "203.0.113.9, 127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Port") != port {
		t.Errorf("forwarding headers: %v", h)
	}
	if !strings.HasPrefix(h.Get("X-Amzn-Trace-Id"), "Root=1-") {
		t.Errorf("X-Amzn-Trace-Id = %q", h.Get("X-Amzn-Trace-Id"))
	}
	if h.Get("Host") != tl.Addr() {
		t.Errorf("Host = %q, want %q", h.Get("Host"), tl.Addr())
	}

	// A target's own 500 is passed through and counted as a target error.
	if code, _, _ := tl.get(t, "/fail"); code != http.StatusInternalServerError {
		t.Fatalf("/fail: %d", code)
	}
	all := tl.waitEntries(t, 2)
	e := all[1]
	if e.ELBStatusCode != 500 || e.TargetStatusCode != 500 || e.Target != be.addr || e.ErrorReason != "" || e.TargetProcessingTime < 0 {
		t.Fatalf("entry for target 500: %s", fmtEntry(e))
	}
	if metricValue(t, tl.LoadBalancer, "HTTPCode_Target_5XX_Count", "app") != 1 || metricValue(t, tl.LoadBalancer, "HTTPCode_ELB_5XX_Count", "app") != 0 {
		t.Fatal("target 500 not counted as HTTPCode_Target_5XX_Count")
	}
	if e0 := all[0]; e0.TraceID != h.Get("X-Amzn-Trace-Id") || e0.MatchedRulePriority != 1 || e0.ActionsExecuted != "forward" ||
		e0.Request != "POST http://127.0.0.1:"+port+"/orders?x=1 HTTP/1.1" || e0.UserAgent != "zerodrop-test/1" {
		t.Fatalf("entry: %s", fmtEntry(e0))
	}
}

func TestDefaultActionFixed404(t *testing.T) {
	be := startBackend(t, nameHandler("a", nil), time.Minute)
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr)
	cfg.Rules[0].PathPrefixes = []string{"/api"}
	cfg.Rules = append(cfg.Rules, RuleConfig{Priority: 2, Hosts: []string{"*.example.com"}, Forward: []WeightedTargetGroup{{TargetGroup: "app"}}})
	tl := startLB(t, cfg)
	if code, _, b := tl.get(t, "/api/x"); code != 200 || b != "a" {
		t.Fatalf("/api/x: %d %q", code, b)
	}
	if code, _, b := tl.get(t, "/other"); code != 404 || b != "" {
		t.Fatalf("/other: %d backend %q, want the default fixed 404", code, b)
	}
	req, _ := http.NewRequest("GET", tl.URL()+"/other", nil)
	req.Host = "shop.Example.com"
	resp, err := tl.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("host rule: %d", resp.StatusCode)
	}
	all := tl.waitEntries(t, 3)
	if e := all[1]; e.ActionsExecuted != "fixed-response" || e.MatchedRulePriority != 0 || e.Target != "" || e.TargetStatusCode != 0 {
		t.Fatalf("fixed 404 entry: %s", fmtEntry(e))
	}
	if all[2].MatchedRulePriority != 2 {
		t.Fatalf("host rule entry: %s", fmtEntry(all[2]))
	}
}

func TestNoRegisteredTargets503(t *testing.T) {
	tl := startLB(t, oneGroup(HealthCheckConfig{}))
	code, _, _ := tl.get(t, "/")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", code)
	}
	e := tl.waitEntries(t, 1)[0]
	if e.Target != "" || e.TargetStatusCode != 0 || e.RequestProcessingTime != -1 || e.TargetProcessingTime != -1 ||
		e.ResponseProcessingTime != -1 || e.ErrorReason != accesslog.ReasonNoRegisteredTargets {
		t.Fatalf("entry: %s", fmtEntry(e))
	}
	if metricValue(t, tl.LoadBalancer, "HTTPCode_ELB_503_Count", "app") != 1 {
		t.Fatal("HTTPCode_ELB_503_Count not 1")
	}
}

func TestConnectRefused502(t *testing.T) {
	dead := deadAddr(t)
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, dead))
	code, _, _ := tl.get(t, "/")
	if code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", code)
	}
	e := tl.waitEntries(t, 1)[0]
	if e.Target != dead || e.TargetStatusCode != 0 || e.ErrorReason != accesslog.ReasonTargetConnectionRefused || e.TargetProcessingTime != -1 {
		t.Fatalf("entry: %s", fmtEntry(e))
	}
	if metricValue(t, tl.LoadBalancer, "TargetConnectionErrorCount", "app") != 1 || metricValue(t, tl.LoadBalancer, "HTTPCode_ELB_502_Count", "app") != 1 {
		t.Fatal("refused connect not counted")
	}
}

func TestInjectedFaults(t *testing.T) {
	be := startBackend(t, nameHandler("a", nil), time.Minute)
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr)
	// 2 s scaled: the pooled connection must outlive the admin call that
	// sets the fault, however slowly a loaded machine runs it.
	cfg.IdleTimeout = Duration(200 * time.Second)
	tl := startLB(t, cfg)
	if code, _, _ := tl.get(t, "/"); code != 200 {
		t.Fatalf("before faults: %d", code)
	}
	ctx := context.Background()
	host, _, _ := net.SplitHostPort(be.addr)

	// Blackholed address: the pooled connection goes silent (no response
	// within the idle timeout: 504) and new connects hang until the
	// connect timeout (504).
	if err := tl.admin.SetTargetFault(ctx, SetTargetFaultInput{Address: host, Fault: "blackhole"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, _ := tl.get(t, "/")
	if code != http.StatusGatewayTimeout {
		t.Fatalf("blackholed pooled connection: %d, want 504", code)
	}
	if el := time.Since(start); el < tl.idle {
		t.Fatalf("504 after %v, before the idle timeout %v", el, tl.idle)
	}
	start = time.Now()
	if code, _, _ = tl.get(t, "/"); code != http.StatusGatewayTimeout {
		t.Fatalf("blackholed connect: %d, want 504", code)
	}
	if el := time.Since(start); el < tl.connectTimeout {
		t.Fatalf("504 after %v, before the connect timeout %v", el, tl.connectTimeout)
	}
	// Refused: 502 at once.
	if err := tl.admin.SetTargetFault(ctx, SetTargetFaultInput{Address: be.addr, Fault: "refuse"}); err != nil {
		t.Fatal(err)
	}
	if err := tl.admin.SetTargetFault(ctx, SetTargetFaultInput{Address: host, Fault: "none"}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ = tl.get(t, "/"); code != http.StatusBadGateway {
		t.Fatalf("refused: %d, want 502", code)
	}
	if err := tl.admin.SetTargetFault(ctx, SetTargetFaultInput{Address: be.addr, Fault: "none"}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ = tl.get(t, "/"); code != 200 {
		t.Fatalf("after clearing faults: %d", code)
	}
	all := tl.waitEntries(t, 5)
	want := []string{"", accesslog.ReasonTargetResponseTimeout, accesslog.ReasonTargetConnectTimeout, accesslog.ReasonTargetConnectionRefused, ""}
	for i, e := range all {
		if e.ErrorReason != want[i] {
			t.Errorf("entry %d: error_reason %q, want %q (%s)", i, e.ErrorReason, want[i], fmtEntry(e))
		}
	}
	if err := tl.admin.SetTargetFault(ctx, SetTargetFaultInput{Address: "nonsense", Fault: "blackhole"}); err == nil {
		t.Error("bad fault address accepted")
	}
}

func TestSlowTarget504(t *testing.T) {
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		io.WriteString(w, "done")
	}), time.Minute)
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr)
	cfg.IdleTimeout = Duration(20 * time.Second) // 200 ms scaled
	tl := startLB(t, cfg)
	if code, _, _ := tl.get(t, "/?sleep=50ms"); code != 200 {
		t.Fatalf("response within the idle timeout: %d, want 200", code)
	}
	if code, _, _ := tl.get(t, "/?sleep=500ms"); code != http.StatusGatewayTimeout {
		t.Fatalf("response after the idle timeout: %d, want 504", code)
	}
	e := tl.waitEntries(t, 2)[1]
	if e.ErrorReason != accesslog.ReasonTargetResponseTimeout || e.TargetStatusCode != 0 || e.Target != be.addr {
		t.Fatalf("entry: %s", fmtEntry(e))
	}
	if metricValue(t, tl.LoadBalancer, "HTTPCode_ELB_504_Count", "app") != 1 {
		t.Fatal("504 not counted")
	}
}

// rawBackend accepts connections and hands each to fn.
func rawBackend(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fn(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func readRequestHead(c net.Conn) error {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

func TestTargetFailuresMake502(t *testing.T) {
	cases := []struct {
		name   string
		fn     func(c net.Conn)
		reason string
	}{
		{"FIN with request outstanding", func(c net.Conn) { readRequestHead(c) }, accesslog.ReasonTargetClosedConnection},
		{"RST with request outstanding", func(c net.Conn) {
			readRequestHead(c)
			c.(*net.TCPConn).SetLinger(0)
		}, accesslog.ReasonTargetConnectionReset},
		{"malformed response", func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, "HTTP/1.1 abc nonsense\r\n\r\n")
		}, accesslog.ReasonTargetMalformedResponse},
		{"headers over 32 KiB", func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 40<<10)+"\r\nContent-Length: 0\r\n\r\n")
		}, accesslog.ReasonTargetMalformedResponse},
		{"headers under 32 KiB pass", func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 20<<10)+"\r\nContent-Length: 0\r\n\r\n")
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawBackend(t, tc.fn)
			tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, addr))
			code, _, _ := tl.get(t, "/")
			e := tl.waitEntries(t, 1)[0]
			if tc.reason == "" {
				if code != 200 {
					t.Fatalf("status %d, want 200 (%s)", code, fmtEntry(e))
				}
				return
			}
			if code != http.StatusBadGateway || e.ErrorReason != tc.reason || e.TargetStatusCode != 0 || e.TargetProcessingTime != -1 {
				t.Fatalf("status %d, entry %s; want 502 with %s", code, fmtEntry(e), tc.reason)
			}
		})
	}
}

func TestClientClosed460(t *testing.T) {
	release := make(chan struct{})
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), time.Minute)
	defer close(release)
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", tl.URL()+"/", nil)
	if _, err := tl.client.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client error %v, want its deadline", err)
	}
	e := tl.waitEntries(t, 1)[0]
	if e.ELBStatusCode != 460 || e.ErrorReason != accesslog.ReasonClientClosed {
		t.Fatalf("entry: %s", fmtEntry(e))
	}
}

func TestAccessLogLinesParseBack(t *testing.T) {
	be := startBackend(t, nameHandler("a", nil), time.Minute)
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr, deadAddr(t))
	tl := startLB(t, cfg)
	for range 20 {
		tl.get(t, "/x?q=\"quoted\"")
	}
	seen := tl.waitEntries(t, 20)
	rd, err := accesslog.NewReader(strings.NewReader(tl.log.String()))
	if err != nil {
		t.Fatal(err)
	}
	var codes = map[int]int{}
	for i, want := range seen {
		got, err := rd.Next()
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("line %d parsed back differently:\n got %+v\nwant %+v", i+1, *got, want)
		}
		codes[got.ELBStatusCode]++
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("extra lines: %v", err)
	}
	if codes[200] != 10 || codes[502] != 10 {
		t.Fatalf("status counts %v, want 10×200 and 10×502 (round robin over a live and a dead target)", codes)
	}
}

func TestStreamedResponseIsRelayedAsItArrives(t *testing.T) {
	release := make(chan struct{})
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "second\n")
	}), time.Minute)
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr))
	resp, err := tl.client.Get(tl.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	// The first chunk arrived while the target still holds the response.
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
}

func TestChunkedRequestAndHEAD(t *testing.T) {
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("Content-Length", "11")
		if r.Method == http.MethodHead {
			return
		}
		w.Write([]byte(strings.ToUpper(string(b) + strings.Repeat(".", 11))[:11]))
	}), time.Minute)
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr))
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "hello ")
		io.WriteString(pw, "world!")
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, tl.URL()+"/", pr) // unknown length: chunked
	resp, err := tl.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HELLO WORLD" || resp.Header.Get("X-TE") != "chunked" {
		t.Fatalf("chunked POST: %q, target saw TE %q", b, resp.Header.Get("X-TE"))
	}
	resp, err = tl.client.Head(tl.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 11 {
		t.Fatalf("HEAD: %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	// The pooled connection is still good after HEAD.
	if code, _, _ := tl.get(t, "/"); code != 200 {
		t.Fatalf("GET after HEAD: %d", code)
	}
}
