// Package manifest reads Kubernetes manifests (plain YAML, multi-document,
// or kustomize) into one Model of the pod termination chain: workloads with
// their probes, preStop hooks, grace periods and ZERODROP_* settings; the
// Services, Ingresses and TargetGroupBindings that route to them with the
// AWS Load Balancer Controller's health-check and attribute defaults filled
// in; Argo Rollouts canary routing; HPAs and PDBs; and the namespace
// readiness-gate label.
//
// Every value carries its source position (file, line, field path), and a
// field that matters to the chain but cannot be interpreted becomes a
// Diagnostic rather than being ignored. The package holds no rules: the
// checker (package check) judges the Model and the lab runs it, so both
// work from the same timings.
package manifest
