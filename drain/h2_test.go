package drain_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/drain"
)

// TestHTTP2RetiredDuringDelay: on HTTP/2 (cleartext, prior knowledge) the
// Connection: close of the delay becomes a GOAWAY: the request is answered,
// and the client opens a new connection for the next one.
func TestHTTP2RetiredDuringDelay(t *testing.T) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srvProtos := protos
	srvProtos.SetHTTP1(true)

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "want HTTP/2, got "+r.Proto, http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
	r := startHTTPServer(t, &http.Server{Handler: app, Protocols: &srvProtos}, drain.WithDelay(500*time.Millisecond))
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}

	do := func() (reused bool) {
		t.Helper()
		var info httptrace.GotConnInfo
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { info = i }})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("h2 request: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("h2 request: %d %s %q", resp.StatusCode, resp.Proto, body)
		}
		return info.Reused
	}
	do()
	if !do() {
		t.Fatal("second request before the drain did not reuse the HTTP/2 connection")
	}
	r.cancel()
	waitFor(t, time.Second, "draining", func() bool { return r.s.State() == drain.Draining })
	if !do() {
		t.Fatal("request during the delay did not use the existing connection")
	}
	// GOAWAY is processed asynchronously by the client.
	waitFor(t, 2*time.Second, "a fresh connection after GOAWAY", func() bool { return !do() })
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
