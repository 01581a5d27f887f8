package load

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// collect is an observer that keeps every sample.
type collect struct {
	mu      sync.Mutex
	samples []results.Sample
}

func (c *collect) observe(_ *Call, s results.Sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = append(c.samples, s)
}

func testClient(t *testing.T, connect, response time.Duration) (*Client, *collect) {
	t.Helper()
	c := NewClient(ClientOptions{ConnectTimeout: connect, ResponseTimeout: response, MaxConns: 4})
	obs := &collect{}
	c.obs = obs
	t.Cleanup(c.Close)
	return c, obs
}

func get(t *testing.T, c *Client, url string) Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Do(ctx, Call{Method: http.MethodGet, URL: url}, time.Time{})
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveRaw accepts connections and hands each to handle, until the test ends.
func serveRaw(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln := listen(t)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); handle(conn) }()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

// readRequest reads until the end of the request headers.
func readRequest(conn net.Conn) {
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil || len(got) >= 4 && string(got[len(got)-4:]) == "\r\n\r\n" {
			return
		}
	}
}

func TestTransportClassesForReal(t *testing.T) {
	t.Run("status", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
		defer srv.Close()
		c, obs := testClient(t, time.Second, time.Second)
		if rep := get(t, c, srv.URL); rep.Outcome != "418" || rep.Status != 418 {
			t.Fatalf("outcome %q", rep.Outcome)
		}
		if len(obs.samples) != 1 || obs.samples[0].Outcome != "418" {
			t.Fatalf("samples %+v", obs.samples)
		}
	})
	t.Run("refused", func(t *testing.T) {
		ln := listen(t)
		addr := ln.Addr().String()
		ln.Close() // nothing listens there any more
		c, _ := testClient(t, time.Second, time.Second)
		if rep := get(t, c, "http://"+addr+"/"); rep.Outcome != string(results.Refused) {
			t.Fatalf("outcome %q (%v), want refused", rep.Outcome, rep.Err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		url := serveRaw(t, func(conn net.Conn) {
			readRequest(conn)
			conn.(*net.TCPConn).SetLinger(0) // close sends RST
			conn.Close()
		})
		c, _ := testClient(t, time.Second, time.Second)
		if rep := get(t, c, url); rep.Outcome != string(results.Reset) {
			t.Fatalf("outcome %q (%v), want reset", rep.Outcome, rep.Err)
		}
	})
	t.Run("eof mid-response", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			bw.Flush()
			conn.Close() // FIN with 93 bytes outstanding
		}))
		defer srv.Close()
		c, _ := testClient(t, time.Second, time.Second)
		if rep := get(t, c, srv.URL); rep.Outcome != string(results.EOF) {
			t.Fatalf("outcome %q (%v), want eof", rep.Outcome, rep.Err)
		}
	})
	t.Run("eof before response", func(t *testing.T) {
		url := serveRaw(t, func(conn net.Conn) {
			readRequest(conn)
			conn.Close()
		})
		c, _ := testClient(t, time.Second, time.Second)
		if rep := get(t, c, url); rep.Outcome != string(results.EOF) {
			t.Fatalf("outcome %q (%v), want eof", rep.Outcome, rep.Err)
		}
	})
	t.Run("timeout-response: accepts, never answers", func(t *testing.T) {
		release := make(chan struct{})
		url := serveRaw(t, func(conn net.Conn) {
			readRequest(conn)
			<-release
			conn.Close()
		})
		defer close(release)
		c, _ := testClient(t, time.Second, 300*time.Millisecond)
		start := time.Now()
		rep := get(t, c, url)
		if rep.Outcome != string(results.TimeoutResponse) {
			t.Fatalf("outcome %q (%v), want timeout-response", rep.Outcome, rep.Err)
		}
		if el := time.Since(start); el < 300*time.Millisecond {
			t.Fatalf("gave up after %s, before the response timeout", el)
		}
	})
	t.Run("timeout-response: listener never accepts", func(t *testing.T) {
		ln := listen(t) // the kernel completes the handshake; nobody accepts
		c, _ := testClient(t, time.Second, 300*time.Millisecond)
		if rep := get(t, c, "http://"+ln.Addr().String()+"/"); rep.Outcome != string(results.TimeoutResponse) {
			t.Fatalf("outcome %q (%v), want timeout-response", rep.Outcome, rep.Err)
		}
	})
	t.Run("slow server", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(150 * time.Millisecond):
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusOK)
		}))
		defer srv.Close()
		c, obs := testClient(t, time.Second, time.Second)
		if rep := get(t, c, srv.URL); rep.Outcome != "200" {
			t.Fatalf("outcome %q", rep.Outcome)
		}
		if l := obs.samples[0].Latency; l < 150*time.Millisecond {
			t.Fatalf("latency %s, want at least the server's 150ms", l)
		}
		c2, _ := testClient(t, time.Second, 50*time.Millisecond)
		if rep := get(t, c2, srv.URL); rep.Outcome != string(results.TimeoutResponse) {
			t.Fatalf("outcome %q, want timeout-response", rep.Outcome)
		}
	})
	t.Run("other: malformed response", func(t *testing.T) {
		url := serveRaw(t, func(conn net.Conn) {
			readRequest(conn)
			conn.Write([]byte("this is not HTTP\r\n\r\n"))
			conn.Close()
		})
		c, _ := testClient(t, time.Second, time.Second)
		if rep := get(t, c, url); rep.Outcome != string(results.Other) {
			t.Fatalf("outcome %q (%v), want other", rep.Outcome, rep.Err)
		}
	})
	t.Run("load balancer made the status", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "awselb/2.0")
			w.WriteHeader(http.StatusBadGateway)
		}))
		defer srv.Close()
		c, obs := testClient(t, time.Second, time.Second)
		get(t, c, srv.URL)
		if s := obs.samples[0]; s.Outcome != "502" || !s.FromLB {
			t.Fatalf("sample %+v, want 502 from the LB", s)
		}
	})
	t.Run("aborted requests are not counted", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer srv.Close()
		c, obs := testClient(t, time.Second, 5*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if rep := c.Do(ctx, Call{Method: http.MethodGet, URL: srv.URL}, time.Time{}); !rep.Aborted {
			t.Fatalf("reply %+v, want aborted", rep)
		}
		if len(obs.samples) != 0 {
			t.Fatalf("an aborted request was recorded: %+v", obs.samples)
		}
	})
}
