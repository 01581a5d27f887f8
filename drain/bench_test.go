package drain_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/drain"
)

// benchHold is how long the last request stays in flight after the
// shutdown started: long enough for http.Server.Shutdown's polling
// interval to grow, as it does under a real drain.
const benchHold = 200 * time.Millisecond

// lastRequest is a handler that holds one request until released and
// records when it completed.
type lastRequest struct {
	started chan struct{}
	release chan struct{}
	doneAt  atomic.Int64
}

func newLastRequest() *lastRequest {
	return &lastRequest{started: make(chan struct{}, 1), release: make(chan struct{})}
}

func (l *lastRequest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() { l.doneAt.Store(time.Now().UnixNano()) }()
	l.started <- struct{}{}
	<-l.release
	io.WriteString(w, "done")
}

func (l *lastRequest) send(b *testing.B, addr string) <-chan error {
	got := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + addr + "/")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		got <- err
	}()
	<-l.started
	return got
}

// BenchmarkReturnAfterLastRequest measures, in one run, the time from the
// last in-flight request completing to the shutdown call returning: drain's
// Serve (tracks connection states, wakes at once) against plain
// http.Server.Shutdown (polls with a backoff up to 500 ms). Reported as
// ms/op; ns/op includes the fixed hold of the request.
func BenchmarkReturnAfterLastRequest(b *testing.B) {
	b.Run("drain", func(b *testing.B) {
		benchReturn(b, func(l *lastRequest, ln net.Listener) (func(), func() error) {
			s := drain.New(&http.Server{Handler: l}, drain.WithEnv(nil), drain.WithSignals(),
				drain.WithDelay(0), drain.WithTimeout(10*time.Second))
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- s.Serve(ctx, ln) }()
			return cancel, func() error { return <-served }
		})
	})
	b.Run("http.Server.Shutdown", func(b *testing.B) {
		benchReturn(b, func(l *lastRequest, ln net.Listener) (func(), func() error) {
			srv := &http.Server{Handler: l}
			go srv.Serve(ln)
			shut := make(chan error, 1)
			return func() { go func() { shut <- srv.Shutdown(context.Background()) }() },
				func() error { return <-shut }
		})
	})
}

// benchReturn measures one server variant: start serves l on ln and returns
// stop (begin the shutdown) and wait (block until the server's shutdown
// call returns). The last request is held in flight across stop.
func benchReturn(b *testing.B, start func(l *lastRequest, ln net.Listener) (stop func(), wait func() error)) {
	var total time.Duration
	for b.Loop() {
		l := newLastRequest()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		stop, wait := start(l, ln)
		got := l.send(b, ln.Addr().String())
		stop()
		time.Sleep(benchHold)
		close(l.release)
		if err := wait(); err != nil {
			b.Fatalf("shutdown: %v", err)
		}
		returned := time.Now()
		if err := <-got; err != nil {
			b.Fatalf("last request: %v", err)
		}
		total += returned.Sub(time.Unix(0, l.doneAt.Load()))
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/op")
}
