package alb

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A target that answers a request before reading its whole body and then
// closes (a 413 for a body over its limit, as net/http's MaxBytesReader
// gives) has answered: the load balancer relays that complete answer, as
// HTTP/1.1 allows (RFC 9112 §9.6) and proxies such as HAProxy do, instead
// of turning the close into a 502. It is counted as the target's 4xx.
func TestEarlyAnswerThenCloseIsRelayed(t *testing.T) {
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, "ok")
	}), 0)
	tl := startLB(t, oneGroup(HealthCheckConfig{Enabled: boolp(false)}, be.addr))
	for _, size := range []int{1 << 10, 10 << 20} {
		resp, err := tl.client.Post(tl.URL()+"/upload", "application/octet-stream", bytes.NewReader(make([]byte, size)))
		if err != nil {
			t.Fatalf("POST %d bytes: %v", size, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := 200
		if size > 64<<10 {
			want = 413
		}
		e := lastEntry(t, tl)
		if resp.StatusCode != want || e.TargetStatusCode != want || e.ELBStatusCode != want {
			t.Errorf("POST %d bytes: %d %q; access log %s; want the target's %d", size, resp.StatusCode, strings.TrimSpace(string(body)), fmtEntry(e), want)
		}
		if e.ErrorReason != "" {
			t.Errorf("POST %d bytes: error_reason %q, want none (the target answered)", size, e.ErrorReason)
		}
	}
}
