package drain_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"zerodrop.dev/zerodrop/drain"
)

// A service behind an ALB: readiness on the main listener at the health
// check path, 15 s delay and 10 s timeout by default (or from
// ZERODROP_SHUTDOWN_DELAY / ZERODROP_SHUTDOWN_TIMEOUT). In a real main
// SIGTERM stops ListenAndServe; here a context cancel plays the signal.
func Example() {
	mux := http.NewServeMux()
	mux.HandleFunc("/logistics/orders", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "[]")
	})
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: mux}
	s := drain.New(srv,
		drain.WithHealthPath("/logistics/health"),
		drain.WithDelay(100*time.Millisecond), // a test-sized delay
		drain.WithTimeout(time.Second),
		drain.WithEnv(nil), // ignore the environment in this example
	)

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	for s.Addr() == nil {
		time.Sleep(time.Millisecond)
	}

	health := "http://" + s.Addr().String() + "/logistics/health"
	fmt.Println("before SetReady:", status(health))
	s.SetReady() // after warm-up: DB pool open, caches loaded
	fmt.Println("after SetReady:", status(health))

	stop() // SIGTERM in production
	for s.State() != drain.Draining {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("draining:", status(health), "liveness state:", s.State())
	fmt.Println("Serve:", <-done)
	// Output:
	// before SetReady: 503
	// after SetReady: 200
	// draining: 503 liveness state: draining
	// Serve: <nil>
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Images without a shell cannot run "sleep" in a preStop exec hook. Mount
// the preStop handler and point lifecycle.preStop.httpGet at it: the call
// fails readiness and blocks for the delay; the SIGTERM that follows does
// not wait again.
func ExampleServer_PreStopHandler() {
	s := drain.New(&http.Server{Handler: http.NotFoundHandler()},
		drain.WithPreStopPath("/prestop"), // or the admin listener's /prestop
		drain.WithDelay(50*time.Millisecond), drain.WithEnv(nil), drain.WithReadyOnListen())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	for !s.Ready() {
		time.Sleep(time.Millisecond)
	}

	fmt.Println("preStop:", status("http://"+ln.Addr().String()+"/prestop"))
	stop() // the kubelet sends SIGTERM after the hook returned
	fmt.Println("Serve:", <-done)
	fmt.Println("delay left after the signal < 10ms:", s.Report().DelayAfterTrigger < 10*time.Millisecond)
	// Output:
	// preStop: 200
	// Serve: <nil>
	// delay left after the signal < 10ms: true
}

// Hooks run after the last connection closed, last registered first, each
// bounded by the hook timeout.
func ExampleServer_OnShutdown() {
	s := drain.New(&http.Server{}, drain.WithDelay(0), drain.WithEnv(nil), drain.WithSignals())
	s.OnShutdown("close db pool", func(ctx context.Context) error {
		fmt.Println("closing db pool")
		return nil
	})
	s.OnShutdown("flush events", func(ctx context.Context) error {
		fmt.Println("flushing events")
		return errors.New("broker unreachable")
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, stop := context.WithCancel(context.Background())
	stop()
	err := s.Serve(ctx, ln)
	fmt.Println("Serve:", err)
	for _, h := range s.Report().Hooks {
		fmt.Printf("hook %q error=%q\n", h.Name, h.Err)
	}
	// Output:
	// flushing events
	// closing db pool
	// Serve: drain: shutdown hook "flush events": broker unreachable
	// hook "flush events" error="drain: shutdown hook \"flush events\": broker unreachable"
	// hook "close db pool" error=""
}
