// Package drain runs a net/http server through the whole termination chain
// of a Kubernetes pod behind a Service or an AWS Application Load Balancer,
// so that scale-down, rollouts and node drains lose no request.
//
// # The chain
//
// When a pod is deleted, the endpoint is marked terminating and the kubelet
// runs the preStop hook and then sends SIGTERM, all at the same time as the
// AWS Load Balancer Controller starts to deregister the target. The
// deregistration reaches the ALB data plane tens of seconds later (no
// documented bound; up to ~2 minutes reported), and until then the ALB
// keeps sending new requests, also on pooled keep-alive connections. A
// server that stops listening or closes idle keep-alive connections at
// SIGTERM makes the ALB answer 502.
//
// A drain.Server therefore, on SIGTERM/SIGINT, a context cancel or a preStop
// call:
//
//  1. fails readiness at once (503) while liveness stays 200;
//  2. keeps accepting and serving for the delay (default 15 s), adding
//     "Connection: close" to every response so that keep-alive connections
//     are retired by the client, never closed under it (HTTP/2: GOAWAY);
//  3. then closes the listeners and idle connections and lets in-flight
//     requests finish until the timeout (default 10 s), after which the
//     remaining connections are closed and the cut requests counted;
//  4. returns within a millisecond of the last request completing (it
//     follows connection states itself instead of polling like
//     http.Server.Shutdown), after running the OnShutdown hooks, last
//     registered first, each bounded by the hook timeout (default 3 s).
//
// A second signal during the drain forces the exit. The preStop handler lets
// images without a shell run the delay from a lifecycle.preStop.httpGet
// hook; the SIGTERM that follows only waits for what is left of it.
//
// # Configuration
//
// Explicit options win over the environment variables
// ZERODROP_SHUTDOWN_DELAY and ZERODROP_SHUTDOWN_TIMEOUT (Go duration syntax),
// which win over the defaults. A bad value is an error wrapping ErrConfig
// returned by Serve or ListenAndServe before anything is served. Zero
// http.Server IdleTimeout and ReadHeaderTimeout are set to 75 s (above the
// ALB's 60 s idle timeout) and 10 s.
//
// Keep Delay + Timeout + hooks below terminationGracePeriodSeconds (default
// 30 s): 15 s + 10 s + 3 s per hook with the defaults.
//
// # Minimal use
//
//	srv := &http.Server{Addr: ":8080", Handler: mux}
//	s := drain.New(srv, drain.WithHealthPath("/healthz"), drain.WithReadyOnListen())
//	s.OnShutdown("db", func(ctx context.Context) error { pool.Close(); return nil })
//	if err := s.ListenAndServe(context.Background()); err != nil {
//		log.Fatal(err) // errors.Is(err, drain.ErrForced): requests were cut
//	}
//
// Register s.Collector() with Prometheus for the zerodrop_drain_* metrics.
package drain
