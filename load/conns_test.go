package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connServer is a loopback server that watches its connections through
// ConnState (the client's keep-alive behaviour as the load balancer would
// see it) and which user (X-User) sent each request on which connection.
type connServer struct {
	*httptest.Server
	open, total atomic.Int64
	mu          sync.Mutex
	users       map[string]map[string]bool // remote addr -> users seen on it
}

func newConnServer(t *testing.T) *connServer {
	t.Helper()
	cs := &connServer{users: map[string]map[string]bool{}}
	cs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-User"); u != "" {
			cs.mu.Lock()
			if cs.users[r.RemoteAddr] == nil {
				cs.users[r.RemoteAddr] = map[string]bool{}
			}
			cs.users[r.RemoteAddr][u] = true
			cs.mu.Unlock()
		}
		w.Write([]byte("ok"))
	}))
	cs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cs.open.Add(1)
			cs.total.Add(1)
		case http.StateClosed, http.StateHijacked:
			cs.open.Add(-1)
		}
	}
	cs.Start()
	t.Cleanup(cs.Close)
	return cs
}

// waitOpen waits up to 3 s for the server to see at most want open
// connections and returns the last count.
func (cs *connServer) waitOpen(want int64) int64 {
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := cs.open.Load()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connUsers returns, per connection, how many users it served, and how
// many connections each user used.
func (cs *connServer) connUsers() (perConn []int, perUser map[string]int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	perUser = map[string]int{}
	for _, us := range cs.users {
		perConn = append(perConn, len(us))
		for u := range us {
			perUser[u]++
		}
	}
	return perConn, perUser
}

// userGet is the get workload with the user's identity in a header: a
// closed-model user keeps its random source across sessions, so its
// address names the user.
type userGet struct {
	url   string
	think time.Duration
	conns Connections
}

func (w *userGet) Name() string                    { return "user-get" }
func (w *userGet) Think(*rand.Rand) time.Duration  { return w.think }
func (w *userGet) DefaultConnections() Connections { return w.conns }
func (w *userGet) Session(ctx context.Context, s *Session) {
	s.Do(ctx, Call{Method: http.MethodGet, URL: w.url, Header: http.Header{"X-User": {fmt.Sprintf("%p", s.Rand)}}})
}

// Per-session connections: each closed-model user keeps one connection
// for all its sessions and think time, never shares it, and closes it when
// the run ends. The shared pool, for contrast, serves several users on one
// connection (what the per-session check would catch).
func TestPerSessionConnectionsBelongToOneUser(t *testing.T) {
	for _, mode := range []Connections{PerSession, Shared} {
		t.Run(string(mode), func(t *testing.T) {
			cs := newConnServer(t)
			w := &userGet{url: cs.URL, think: 25 * time.Millisecond}
			r, err := NewRunner(Config{Workload: w, Model: Closed, Profile: Constant{4}, Duration: 500 * time.Millisecond, Connections: mode})
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			perConn, perUser := cs.connUsers()
			if len(perUser) != 4 || res.Totals.Counts["200"] < 20 {
				t.Fatalf("%d users sent %v requests, want 4 users and dozens of requests", len(perUser), res.Totals.Counts)
			}
			shared := 0
			for _, n := range perConn {
				if n > 1 {
					shared++
				}
			}
			if mode == PerSession {
				if shared > 0 || cs.total.Load() != 4 {
					t.Fatalf("per-session: %d connections for 4 users, %d of them served several users (%v)", cs.total.Load(), shared, perConn)
				}
				for u, n := range perUser {
					if n != 1 {
						t.Errorf("user %s used %d connections across its think time, want 1", u, n)
					}
				}
			} else if shared == 0 {
				t.Fatalf("shared pool: no connection served two users (%v); the per-session check could not fail", perConn)
			}
			if n := cs.waitOpen(0); n != 0 {
				t.Fatalf("%d connections still open after the run", n)
			}
		})
	}
}

// Many users come and go: the open model makes each arrival a new user
// with its own connection, and a steps profile sends closed-model users
// away mid-run. Every user's connections are closed when it leaves, so
// the server sees the open count follow the users and return to zero, and
// no pool or goroutine outlives the run.
func TestPerSessionConnectionsDoNotLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	cs := newConnServer(t)
	g, _ := NewGet([]string{cs.URL}, "", nil, nil)

	r, err := NewRunner(Config{Workload: g, Model: Open, Profile: Constant{400}, MaxInFlight: 16, Duration: 500 * time.Millisecond, Connections: PerSession})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Totals.Counts["200"]; n < 150 || cs.total.Load() != n {
		t.Fatalf("open model: %d sessions made %d connections, want one new connection per arriving user", n, cs.total.Load())
	}
	if n := cs.waitOpen(0); n != 0 {
		t.Fatalf("open model: %d of %d connections still open after the run", n, cs.total.Load())
	}
	if p := r.client.Pools(); p != 0 {
		t.Fatalf("%d per-user pools not closed", p)
	}

	// 8 users for 300 ms, then 2: the 6 that leave close their connections
	// while the run goes on.
	cs.total.Store(0)
	w := &userGet{url: cs.URL, think: 10 * time.Millisecond, conns: PerSession}
	r, err = NewRunner(Config{Workload: w, Model: Closed, Profile: Steps{Steps: []Step{{Value: 8, For: 300 * time.Millisecond}, {Value: 2, For: time.Hour}}}, Duration: 800 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mid := make(chan int64, 1)
	go func() {
		<-r.Started()
		time.Sleep(600 * time.Millisecond)
		mid <- cs.open.Load()
	}()
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, total := <-mid, cs.total.Load(); n != 2 || total != 8 {
		t.Fatalf("closed model: %d connections open with 2 users left (of %d made for 8 users), want 2", n, total)
	}
	if n := cs.waitOpen(0); n != 0 {
		t.Fatalf("closed model: %d connections still open after the run", n)
	}
	if p := r.client.Pools(); p != 0 {
		t.Fatalf("%d per-user pools not closed", p)
	}
	cs.Close()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("%d goroutines after the runs, %d before: connections or pools leaked", n, before)
	}
}

// A user's idle connection is closed after the idle timeout, as a browser
// does: with think time above it, every session dials anew; with the
// default (5 min) one connection lasts the whole run.
func TestIdleTimeoutClosesUserConnections(t *testing.T) {
	for _, tc := range []struct {
		idle    time.Duration
		perSess bool
	}{{40 * time.Millisecond, true}, {0, false}} {
		cs := newConnServer(t)
		w := &userGet{url: cs.URL, think: 120 * time.Millisecond, conns: PerSession}
		r, err := NewRunner(Config{Workload: w, Model: Closed, Profile: Constant{1}, Duration: 500 * time.Millisecond, IdleTimeout: tc.idle})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n, conns := res.Totals.Counts["200"], cs.total.Load()
		if n < 3 {
			t.Fatalf("idle %v: only %d sessions", tc.idle, n)
		}
		if tc.perSess && conns != n {
			t.Errorf("idle timeout %v below the think time: %d connections for %d sessions, want one each", tc.idle, conns, n)
		}
		if !tc.perSess && conns != 1 {
			t.Errorf("default idle timeout: %d connections for %d sessions of one user, want 1", conns, n)
		}
	}
}

func TestConnectionsDefaultByWorkload(t *testing.T) {
	g, _ := NewGet([]string{"http://127.0.0.1:1/"}, "", nil, nil)
	o, _ := NewOrders([]string{"http://127.0.0.1:1"}, nil)
	for _, tc := range []struct {
		w    Workload
		set  Connections
		want Connections
	}{{g, "", Shared}, {o, "", PerSession}, {g, PerSession, PerSession}, {o, Shared, Shared}} {
		r, err := NewRunner(Config{Workload: tc.w, Model: Closed, Profile: Constant{1}, Duration: time.Second, Connections: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		if r.cfg.Connections != tc.want {
			t.Errorf("%s with %q: %q, want %q", tc.w.Name(), tc.set, r.cfg.Connections, tc.want)
		}
	}
	if _, err := NewRunner(Config{Workload: g, Model: Closed, Profile: Constant{1}, Duration: time.Second, Connections: "pooled"}); err == nil {
		t.Error("connections \"pooled\" accepted")
	}
}
