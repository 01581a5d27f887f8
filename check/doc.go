// Package check judges a manifest.Model for configurations that drop
// requests when pods terminate or start behind a load balancer: probes,
// preStop and grace periods against the ALB's health checks, deregistration
// and controller lag, Argo Rollouts canary scale-down, update strategies
// and disruption budgets.
//
// For every served workload it computes the termination timeline (delete →
// load balancer stops sending → SIGTERM → app stops accepting → in-flight
// deadline → SIGKILL) and the startup timeline (pod Ready vs target
// healthy) with the windows in which requests can fail, and it reports
// findings (rule ID, severity, evidence with file:line and field path, why,
// and a fix with concrete values) as text, JSON or SARIF 2.1.0.
package check
