package alb

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// hopByHop lists headers that apply to one connection only and are not
// forwarded (canonical form).
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// Headers the load balancer sets itself on forwarded requests.
var ownRequestHeaders = map[string]bool{
	"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Port": true,
	"X-Amzn-Trace-Id": true, "Expect": true, "Host": true, "Content-Length": true,
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// abort causes, in the order they are recorded.
const (
	causeNone int32 = iota
	causeClient
	causeCut
)

// ServeHTTP is the data plane: it matches the listener rules and forwards
// the request to a target, or answers itself as the ALB would.
func (lb *LoadBalancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	e := &accesslog.Entry{
		Type: "http", ELB: lb.elbID, Client: r.RemoteAddr,
		RequestProcessingTime: -1, TargetProcessingTime: -1, ResponseProcessingTime: -1,
		Request:             r.Method + " http://" + host + ":" + lb.listenPort + uri + " " + r.Proto,
		UserAgent:           r.UserAgent(),
		RequestCreationTime: received.UTC().Truncate(time.Microsecond),
		ReceivedBytes:       requestHeaderSize(r),
	}
	trace := r.Header.Get("X-Amzn-Trace-Id")
	if !strings.Contains(trace, "Root=") {
		trace = newTraceID(received)
	}
	e.TraceID = trace

	var matched *rule
	for _, ru := range *lb.rules.Load() {
		if ru.matches(r.Host, r.URL.Path) {
			matched = ru
			break
		}
	}
	noGroup := lb.noGroup
	if matched == nil {
		e.ActionsExecuted = "fixed-response"
		e.ELBStatusCode = http.StatusNotFound
		e.SentBytes = lb.writeFixed(w, http.StatusNotFound, "text/plain; charset=utf-8", "404 Not Found\n")
		lb.finish(e, noGroup)
		return
	}
	e.MatchedRulePriority = matched.priority
	e.ActionsExecuted = "forward"
	g := matched.pickGroup()
	if g == nil {
		e.ELBStatusCode = http.StatusServiceUnavailable
		e.ErrorReason = accesslog.ReasonNoRegisteredTargets
		e.SentBytes = lb.writeELBError(w, http.StatusServiceUnavailable)
		lb.finish(e, noGroup)
		return
	}
	e.TargetGroupARN = g.arn
	t := g.pick(received)
	if t == nil {
		e.ELBStatusCode = http.StatusServiceUnavailable
		e.ErrorReason = accesslog.ReasonNoRegisteredTargets
		e.SentBytes = lb.writeELBError(w, http.StatusServiceUnavailable)
		lb.finish(e, g.m)
		return
	}
	e.Target = t.addr
	e.TargetPortList = t.addr
	t.inflight.Add(1)
	lb.forward(w, r, g, t, e, received, trace)
}

// forward sends r to t over a pooled or new connection and relays the
// response. It classifies every target-side failure like the ALB does.
func (lb *LoadBalancer) forward(w http.ResponseWriter, r *http.Request, g *targetGroup, t *target, e *accesslog.Entry, received time.Time, trace string) {
	defer t.inflight.Add(-1)
	ctx := r.Context()
	fail := func(code int, reason string) {
		e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = -1, -1, -1
		e.ELBStatusCode, e.ErrorReason = code, reason
		if code != 460 {
			e.SentBytes = lb.writeELBError(w, code)
		}
		lb.finish(e, g.m)
	}
	tc := t.pool.get(received)
	if tc == nil {
		dctx, cancel := context.WithTimeout(ctx, lb.connectTimeout)
		stop := context.AfterFunc(t.cutCtx, cancel)
		var err error
		tc, err = t.pool.dial(dctx)
		stop()
		cancel()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				fail(460, accesslog.ReasonClientClosed)
			case t.cutCtx.Err() != nil:
				fail(http.StatusBadGateway, accesslog.ReasonDeregistrationCut)
			case isTimeout(err) || errors.Is(dctx.Err(), context.DeadlineExceeded):
				g.m.connErrors.Inc()
				fail(http.StatusGatewayTimeout, accesslog.ReasonTargetConnectTimeout)
			case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
				g.m.connErrors.Inc()
				fail(http.StatusBadGateway, accesslog.ReasonTargetConnectionRefused)
			default:
				g.m.connErrors.Inc()
				fail(http.StatusBadGateway, accesslog.ReasonTargetConnectionError)
			}
			return
		}
	}

	var cause atomic.Int32
	stopClient := context.AfterFunc(ctx, func() { cause.CompareAndSwap(causeNone, causeClient); tc.abort() })
	stopCut := context.AfterFunc(t.cutCtx, func() { cause.CompareAndSwap(causeNone, causeCut); tc.abort() })
	release := func(reuse bool) {
		c1, c2 := stopClient(), stopCut()
		if reuse && c1 && c2 {
			t.pool.put(tc, time.Now())
		} else {
			t.pool.discard(tc)
		}
	}
	classify := func(err error) (int, string) {
		switch cause.Load() {
		case causeClient:
			return 460, accesslog.ReasonClientClosed
		case causeCut:
			return http.StatusBadGateway, accesslog.ReasonDeregistrationCut
		}
		return classifyTargetError(err)
	}

	// The request goes out while the response is read, as HTTP/1.1 allows
	// a server to answer before it has read the whole request (RFC 9112
	// §9.6): a target that answers early (a 413 for a body over its limit)
	// and closes has answered, and its complete answer is relayed, as
	// proxies such as HAProxy relay it. Only a close before a complete
	// answer is the ALB's 502.
	dispatch := time.Now()
	body := &countingReader{r: r.Body}
	wrote := make(chan error, 1)
	// sent is set once the whole request is in the connection's buffer and
	// only its last flush is left: from then on, a writer that has not
	// reported yet is finishing, not waiting for the client's body.
	var sent atomic.Bool
	var headRead chan struct{}
	if lb.testHookWriterDone != nil {
		headRead = make(chan struct{})
	}
	go func() {
		err := writeRequest(tc.bw, r, body, lb.listenPort, trace, &sent)
		if headRead != nil {
			lb.testHookWriterDone(headRead)
		}
		wrote <- err
	}()
	var (
		writeErr  error
		writeDone bool
		released  bool
	)
	// stopWriting ends the request's transmission (the client's body is
	// no longer read, the target connection is dropped) and waits for the
	// writer, so that nothing reads the request after the handler returns.
	stopWriting := func() {
		if !released {
			released = true
			release(false)
		}
		if !writeDone {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			writeErr, writeDone = <-wrote, true
		}
	}
	clientBodyFailed := func() bool { return body.err != nil && !errors.Is(body.err, io.EOF) && !isTimeout(body.err) }

	tc.countHeaders(true)
	resp, err := http.ReadResponse(tc.br, r)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(tc.br, r)
	}
	tc.countHeaders(false)
	if headRead != nil {
		close(headRead)
	}
	if err != nil {
		// Whatever the writer saw, the request is outstanding and got no
		// answer: a failed write (RST, EPIPE) explains it best, then the
		// read error (FIN, timeout).
		select {
		case writeErr = <-wrote:
			writeDone = true
		default:
		}
		stopWriting()
		e.ReceivedBytes += body.n
		if clientBodyFailed() {
			fail(460, accesslog.ReasonClientClosed)
			return
		}
		if writeErr != nil && !errors.Is(writeErr, net.ErrClosed) && !isTimeout(writeErr) && cause.Load() == causeNone {
			fail(classify(writeErr))
			return
		}
		fail(classify(err))
		return
	}
	select {
	case writeErr = <-wrote:
		writeDone = true
	default:
	}
	// early: the target answered before it had the whole request; the
	// client's connection cannot carry another request after this one, nor
	// can the target's. A writer that has sent everything but its last
	// flush is not early, even when it has not reported yet: how soon the
	// scheduler runs it again must not decide whether a connection is
	// kept (it is waited for below, once the response is read).
	early := writeErr != nil || !writeDone && !sent.Load()
	respStart := time.Now()
	e.RequestProcessingTime = accesslog.Seconds(dispatch.Sub(received))
	e.TargetProcessingTime = accesslog.Seconds(respStart.Sub(dispatch))
	e.TargetStatusCode = resp.StatusCode
	e.TargetStatusCodeList = strconv.Itoa(resp.StatusCode)
	g.m.responseTime.Observe(respStart.Sub(dispatch).Seconds())

	h := w.Header()
	for k, vv := range resp.Header {
		if !hopByHop[k] {
			h[k] = vv
		}
	}
	for _, c := range resp.Header.Values("Connection") {
		for name := range strings.SplitSeq(c, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	if early {
		h.Set("Connection", "close")
	}
	if resp.ContentLength >= 0 && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified && r.Method != http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	src := &countingReader{r: resp.Body}
	n, copyErr := relayBody(w, src, resp.ContentLength, tc.br)
	resp.Body.Close()
	if early {
		stopWriting()
	}
	e.ReceivedBytes += body.n
	e.SentBytes = responseHeaderSize(resp) + n
	e.ResponseProcessingTime = accesslog.Seconds(time.Since(respStart))
	e.ELBStatusCode = resp.StatusCode
	switch {
	case src.err != nil && !errors.Is(src.err, io.EOF):
		// The target failed mid-body: the client already has the status,
		// so the only thing left is to cut its connection.
		stopWriting()
		_, e.ErrorReason = classify(src.err)
		lb.finish(e, g.m)
		panic(http.ErrAbortHandler)
	case copyErr != nil:
		stopWriting()
		e.ErrorReason = accesslog.ReasonClientClosed
		lb.finish(e, g.m)
		return
	}
	if !writeDone {
		// Only the request's last flush was left when the answer came; it
		// ends by itself, or at the idle timeout's write deadline, or when
		// the client goes (abort).
		writeErr, writeDone = <-wrote, true
	}
	if !released {
		released = true
		release(!resp.Close && !early && writeErr == nil)
	}
	lb.finish(e, g.m)
}

// relayBody copies a response body to the client. It flushes to the client
// whenever it has relayed everything the target sent so far and more is to
// come, so streamed responses stream, while a response that arrived whole
// goes out in one write. A write error is the client's; a read error is
// left in src.err.
func relayBody(w http.ResponseWriter, src *countingReader, length int64, br *bufio.Reader) (int64, error) {
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp
	flusher, _ := w.(http.Flusher)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			more := length < 0 || n < length
			if err == nil && more && br.Buffered() == 0 && flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return n, nil
		}
	}
}

// classifyTargetError maps an I/O or parse error on a target connection to
// the ALB's status and the access log's error_reason.
func classifyTargetError(err error) (int, string) {
	switch {
	case errors.Is(err, errHeaderTooLarge):
		return http.StatusBadGateway, accesslog.ReasonTargetMalformedResponse
	case isTimeout(err):
		return http.StatusGatewayTimeout, accesslog.ReasonTargetResponseTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return http.StatusBadGateway, accesslog.ReasonTargetConnectionReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return http.StatusBadGateway, accesslog.ReasonTargetClosedConnection
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return http.StatusBadGateway, accesslog.ReasonTargetConnectionReset
	}
	return http.StatusBadGateway, accesslog.ReasonTargetMalformedResponse
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// writeRequest writes r to a target as HTTP/1.1 with the ALB's forwarding
// headers, streaming body. It sets sent when only the final flush is left.
func writeRequest(bw *bufio.Writer, r *http.Request, body *countingReader, port, trace string, sent *atomic.Bool) error {
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	var connHeaders []string
	for _, c := range r.Header.Values("Connection") {
		for name := range strings.SplitSeq(c, ",") {
			connHeaders = append(connHeaders, http.CanonicalHeaderKey(strings.TrimSpace(name)))
		}
	}
	for k, vv := range r.Header {
		if hopByHop[k] || ownRequestHeaders[k] {
			continue
		}
		skip := false
		for _, c := range connHeaders {
			if c == k {
				skip = true
			}
		}
		if skip {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		clientIP = r.RemoteAddr
	}
	xff := clientIP
	if prior := r.Header.Values("X-Forwarded-For"); len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + clientIP
	}
	bw.WriteString("X-Forwarded-For: ")
	bw.WriteString(xff)
	bw.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ")
	bw.WriteString(port)
	bw.WriteString("\r\nX-Amzn-Trace-Id: ")
	bw.WriteString(trace)
	bw.WriteString("\r\n")
	switch {
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		if _, err := io.CopyN(bw, body, r.ContentLength); err != nil {
			return fmt.Errorf("sending request body: %w", err)
		}
	case r.ContentLength < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.Copy(cw, body); err != nil {
			return fmt.Errorf("sending request body: %w", err)
		}
		if err := cw.Close(); err != nil {
			return fmt.Errorf("sending request body: %w", err)
		}
		bw.WriteString("\r\n")
	default:
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
		bw.WriteString("\r\n")
	}
	sent.Store(true)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sending request: %w", err)
	}
	return nil
}

// countingReader counts bytes and keeps the first error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// finish completes the access-log entry and the metrics of one request.
func (lb *LoadBalancer) finish(e *accesslog.Entry, m *tgMetrics) {
	e.Time = time.Now().UTC().Truncate(time.Microsecond)
	target := e.TargetStatusCode
	m.count(e.ELBStatusCode, target)
	if lb.onRequest != nil {
		lb.onRequest(e)
	}
	if lb.accessLog != nil {
		if err := lb.accessLog.Write(e); err != nil {
			lb.emit(Event{Kind: EventAccessLogErr, Error: err.Error(), Msg: fmt.Sprintf("access log: %v", err)})
		}
	}
}

// writeELBError writes an error page the way the ALB does (Server: awselb/2.0).
func (lb *LoadBalancer) writeELBError(w http.ResponseWriter, code int) int64 {
	text := fmt.Sprintf("%d %s", code, http.StatusText(code))
	body := "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text + "</h1></center>\r\n</body>\r\n</html>\r\n"
	return lb.writeFixed(w, code, "text/html", body)
}

func (lb *LoadBalancer) writeFixed(w http.ResponseWriter, code int, ctype, body string) int64 {
	h := w.Header()
	clear(h)
	h.Set("Server", "awselb/2.0")
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	io.WriteString(w, body)
	return int64(len(body)) + 120
}

func newTraceID(now time.Time) string {
	var b [12]byte
	x, y := rand.Uint64(), rand.Uint32()
	for i := range 8 {
		b[i] = byte(x >> (8 * i))
	}
	for i := range 4 {
		b[8+i] = byte(y >> (8 * i))
	}
	return fmt.Sprintf("Root=1-%08x-%s", uint32(now.Unix()), hex.EncodeToString(b[:]))
}

func requestHeaderSize(r *http.Request) int64 {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: \r\n") + len(r.Host) + 2
	for k, vv := range r.Header {
		for _, v := range vv {
			n += len(k) + len(v) + 4
		}
	}
	return int64(n)
}

func responseHeaderSize(resp *http.Response) int64 {
	n := len("HTTP/1.1 200 OK\r\n") + 2
	for k, vv := range resp.Header {
		for _, v := range vv {
			n += len(k) + len(v) + 4
		}
	}
	return int64(n)
}
