// Package e2e holds zerodrop's end-to-end tests: the whole termination chain
// on one machine, with real processes and real sockets on loopback.
//
// The tests build the zerodrop binary, start three `zerodrop serve`
// processes sharing one SQLite file, put the ALB emulator (package alb) in
// front of them, drive the orders workload (package load) through it, and
// terminate one pod the way Kubernetes and the AWS Load Balancer Controller
// do: SIGTERM to the process and, at the same moment, a deregistration that
// reaches the load balancer after a controller lag. Each shutdown mode of
// `zerodrop serve` is judged by what the users saw (failed requests, lost
// and duplicated writes) and by what the load balancer logged.
//
// The package has no non-test code; run it with
//
//	go test -race ./e2e/
package e2e
