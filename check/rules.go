package check

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Severity is how bad a finding is. Error-level findings make
// `zerodrop check` exit 1.
type Severity int

// Severities, lowest first.
const (
	Note Severity = iota
	Warning
	Error
)

// String returns note, warning or error.
func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	default:
		return "note"
	}
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Rule describes one check.
type Rule struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Severity Severity `json:"severity"`
	// Summary is one line: what is wrong.
	Summary string `json:"summary"`
	// Why explains how the configuration drops requests.
	Why string `json:"why"`
	// Fix says what to change, in general terms; each finding carries the
	// concrete values for its workload.
	Fix string `json:"fix"`
}

// Rule IDs.
const (
	IDManifest             = "ZD000"
	IDNoReadiness          = "ZD001"
	IDReadinessIsLiveness  = "ZD002"
	IDPathMismatch         = "ZD003"
	IDUserPathHealthCheck  = "ZD004"
	IDDetectionMismatch    = "ZD005"
	IDNoTerminationDelay   = "ZD006"
	IDDelayBelowDereg      = "ZD007"
	IDGraceTooShort        = "ZD008"
	IDShellless            = "ZD009"
	IDInstanceWithGates    = "ZD010"
	IDNamespaceNoGateLabel = "ZD011"
	IDLaxSuccessCodes      = "ZD012"
	IDDeregBelowRequest    = "ZD013"
	IDDeregAboveGrace      = "ZD014"
	IDDynamicStableScale   = "ZD015"
	IDScaleDownBelow30     = "ZD016"
	IDScaleDownBelowLag    = "ZD017"
	IDRolloutRemovesAll    = "ZD018"
	IDDisruptionRemovesAll = "ZD019"
	IDIdleTimeout          = "ZD020"
	IDHealthCheckPort      = "ZD021"
	IDPreStopStopsServer   = "ZD022"
	IDDependencyStops      = "ZD023"
	IDPublishNotReady      = "ZD024"
	IDBlueGreenScaleDown   = "ZD025"
	IDIngressClass         = "ZD026"
	IDDuplicateObject      = "ZD027"
)

var catalog = []Rule{
	{IDManifest, "manifest-field-uninterpretable", Error,
		"A field of the termination chain cannot be read or interpreted.",
		"The checker cannot reason about a timing it cannot read, and the AWS Load Balancer Controller or the API server usually rejects such a value, so the setting you believe is live is not (for example healthcheck-interval-seconds: \"3\" is below the ALB minimum of 5 and the old value stays).",
		"Correct the value named in the finding; the message gives the accepted syntax and range."},
	{IDNoReadiness, "no-readiness-probe", Error,
		"A container that serves traffic has no readiness probe.",
		"Without a readiness probe a pod is Ready as soon as its container starts, before the app listens, so the endpoint and the ALB target receive requests that are refused (502). When the app stops serving, nothing takes it out of the Service.",
		"Add a readinessProbe with httpGet on a dedicated health path (the same path as the ALB health check), periodSeconds at most the ALB interval."},
	{IDReadinessIsLiveness, "readiness-equals-liveness", Warning,
		"The readiness and liveness probes check the same endpoint.",
		"Readiness should fail while the pod drains or is overloaded; liveness must not. When both hit the same endpoint, a pod that correctly reports not-ready (draining, saturated) is restarted by the kubelet, cutting its in-flight requests, and under load restarts cascade across replicas.",
		"Give liveness its own endpoint that stays 200 while the process runs (for example /livez), and keep readiness on the health path the ALB checks."},
	{IDPathMismatch, "readiness-path-differs-from-health-check", Warning,
		"The readiness probe path differs from the ALB health-check path.",
		"Kubernetes and the ALB then judge the pod by different endpoints: when the app fails its readiness path (draining, broken dependency) the ALB keeps it healthy and in service, and the other way round.",
		"Set alb.ingress.kubernetes.io/healthcheck-path to the readiness probe's path (or the other way round)."},
	{IDUserPathHealthCheck, "health-check-on-user-path", Warning,
		"The ALB health check requests a user path instead of a health endpoint (the controller default is /).",
		"A user page is neither a health signal nor cheap: it can answer 200 while the app drains or its dependencies are down, it redirects (3xx) or needs a session, and it costs a real request every interval from every ALB node. The health endpoints of common frameworks (/healthz, /readyz, /livez, /health…, /up, /hc, /ping, /status, /actuator/health…, /q/health…) are not flagged; / and paths the Ingress routes to users are warnings, any other unknown path only a note (a guess).",
		"Serve a dedicated health endpoint (for example /healthz) that turns 503 when the app drains, and set alb.ingress.kubernetes.io/healthcheck-path to it."},
	{IDDetectionMismatch, "failure-detection-mismatch", Warning,
		"ALB failure detection (interval × unhealthy threshold) and readiness failure detection (period × failureThreshold) are far apart.",
		"The two checks sample independently. When the kubelet has already marked the pod not ready and the ALB has not yet marked the target unhealthy (or the other way round), requests go to a pod that Kubernetes no longer routes to (seed 002: 9 s of ELB 5xx).",
		"Make interval × unhealthy threshold equal to period × failureThreshold (the finding gives values), and use ip targets with the readiness gate so the pod is only Ready once the target is healthy."},
	{IDNoTerminationDelay, "no-termination-delay", Error,
		"The pod has no termination delay: no preStop hook and no app delay after SIGTERM.",
		"At delete the endpoint removal and SIGTERM start at the same moment. The app stops accepting at once while the controller still needs seconds to deregister the target and the ALB keeps sending new requests, which fail (502, or 504 on a blackholed address).",
		"Add a preStop delay at least as long as the deregistration propagation estimate: native sleep (Kubernetes ≥ 1.30), `zerodrop sleep 15s`, or ZERODROP_SHUTDOWN_DELAY for apps using the drain library."},
	{IDDelayBelowDereg, "delay-below-deregistration", Error,
		"The termination delay is shorter than the load balancer's deregistration propagation estimate.",
		"The app stops accepting before the ALB has stopped sending new requests to the target; every request routed in between fails.",
		"Lengthen the preStop sleep (or ZERODROP_SHUTDOWN_DELAY) to at least the estimate; raise the grace period with it."},
	{IDGraceTooShort, "grace-period-too-short", Error,
		"terminationGracePeriodSeconds is shorter than preStop + app delay + the longest request.",
		"The grace countdown starts before preStop. When it ends the kubelet sends SIGKILL (after a one-off 2 s extension for a running preStop), cutting requests still in flight and any preStop still sleeping.",
		"Set terminationGracePeriodSeconds to preStop + app delay + longest request + a few seconds of margin (the finding gives the value)."},
	{IDShellless, "prestop-needs-shell", Error,
		"The preStop hook runs a shell or sleep binary that the image does not contain (known shell-less images: distroless without a debug tag, Chainguard without -dev, scratch, ko's default base).",
		"The exec hook fails at once, so there is no termination delay at all: the kubelet sends SIGTERM immediately while the target is still registered.",
		"Use the native sleep action (Kubernetes ≥ 1.30): lifecycle.preStop.sleep.seconds, or exec [\"/zerodrop\", \"sleep\", \"15s\"], or an httpGet preStop on the drain library's preStop endpoint."},
	{IDInstanceWithGates, "instance-target-with-readiness-gates", Warning,
		"The target type is instance where readiness gates are expected.",
		"Readiness gates only work with ip targets. With instance targets the ALB checks nodes, not pods, so a pod is Ready (and old pods are removed) before the load balancer has confirmed the new pod serves, and a terminating pod is only taken out by kube-proxy, behind an extra hop.",
		"Set alb.ingress.kubernetes.io/target-type: ip (needs the VPC CNI) so the controller injects the target-health readiness gate."},
	{IDNamespaceNoGateLabel, "namespace-missing-readiness-gate-label", Warning,
		"ip targets are used but the namespace lacks elbv2.k8s.aws/pod-readiness-gate-inject=enabled.",
		"Without the label the webhook injects no readiness gate: a new pod is Ready as soon as its probe passes, a rolling update then terminates old pods while the new targets are still in initial health checking, and the ALB has fewer (or no) healthy targets: 503s or fail-open routing. When the Namespace is not among the manifests the label cannot be checked, and the finding is a note.",
		"Label the namespace: kubectl label namespace NS elbv2.k8s.aws/pod-readiness-gate-inject=enabled (gates are injected at pod creation: restart the pods)."},
	{IDLaxSuccessCodes, "success-codes-accept-redirects-or-errors", Warning,
		"The health check's success codes accept redirects or errors.",
		"A health endpoint that breaks often answers with a redirect (a trailing-slash 301) or a 4xx; when those count as success the ALB keeps the target healthy while it cannot serve. The seed's 200-301 kept the check green through a redirect.",
		"Set alb.ingress.kubernetes.io/success-codes: '200' and have the health endpoint answer 200 exactly."},
	{IDDeregBelowRequest, "deregistration-delay-below-longest-request", Error,
		"The deregistration delay is shorter than the longest request.",
		"When the delay ends the ALB cuts every request still in flight on the target (502).",
		"Set target-group-attributes deregistration_delay.timeout_seconds to at least the longest request (the finding gives the value)."},
	{IDDeregAboveGrace, "deregistration-delay-far-above-grace", Warning,
		"The deregistration delay is far longer than the pod's grace period.",
		"The pod is killed long before the ALB finishes draining, so the delay protects nothing: requests still in flight end with the pod anyway, the target sits in draining for minutes, rollouts and scale-downs look stuck, and an ip target's address cannot be registered again until the delay has passed.",
		"Set deregistration_delay.timeout_seconds close to the grace period (the finding gives the value)."},
	{IDDynamicStableScale, "argo-dynamic-stable-scale", Error,
		"An Argo Rollout with ALB traffic routing uses dynamicStableScale: true.",
		"Stable pods are scaled down as soon as the canary weight rises, but the ALB applies the new weights only after the controller's ModifyRule lag (about 70 s observed, seed 004), so it keeps sending stable's share to pods that are gone: 502/503 at the last step.",
		"Set dynamicStableScale: false and keep scaleDownDelaySeconds at or above the weight-change lag."},
	{IDScaleDownBelow30, "argo-scale-down-delay-below-30s", Error,
		"scaleDownDelaySeconds is below 30 s with ALB traffic routing.",
		"The old ReplicaSet is scaled down before the ALB has applied the final weights, so its pods still receive traffic when they terminate. Argo Rollouts itself recommends at least 30 s.",
		"Set scaleDownDelaySeconds to at least 30, better at least the weight-change lag."},
	{IDScaleDownBelowLag, "argo-scale-down-delay-below-weight-lag", Warning,
		"scaleDownDelaySeconds is below the weight-change lag estimate.",
		"The controller turns a weight change into ModifyRule after a lag (about 70 s observed in seed 004, more under API throttling). Stable pods scaled down before then still carry traffic.",
		"Raise scaleDownDelaySeconds above the lag, or enable Argo's target-group verification (--aws-verify-target-group) so the step waits until the ALB shows the weights."},
	{IDRolloutRemovesAll, "rollout-removes-all-ready-pods", Error,
		"The update strategy lets a rollout remove every ready pod at once.",
		"With maxUnavailable at or above the replica count (or Recreate) all old pods terminate before new ones are Ready and healthy in the target group: the ALB has no healthy targets (503, or fail-open to pods that are starting).",
		"Use RollingUpdate with maxUnavailable 0 and maxSurge ≥ 1 (or maxUnavailable below the replica count), and run at least 2 replicas."},
	{IDDisruptionRemovesAll, "disruption-removes-all-ready-pods", Warning,
		"No PodDisruptionBudget stops a node drain from evicting all ready pods at once.",
		"Node drains (autoscaler scale-in, upgrades, spot reclaim) evict through the eviction API; without a PDB, or with one that allows as many disruptions as there are replicas, all pods on the drained nodes go at once and the target group can empty.",
		"Add a PodDisruptionBudget selecting the pods with maxUnavailable: 1 (or minAvailable below the replica count), and run at least 2 replicas."},
	{IDIdleTimeout, "app-idle-timeout-not-above-alb", Error,
		"The app's keep-alive idle timeout is at or below the ALB idle timeout.",
		"The ALB reuses idle keep-alive connections to targets for up to its idle timeout (60 s by default). If the app closes an idle connection first, a request the ALB sends on it at that moment fails with 502.",
		"Set the app's idle timeout above the ALB's (for example 75 s for the default 60 s)."},
	{IDHealthCheckPort, "health-check-port-differs-from-readiness", Warning,
		"The ALB health check and the readiness probe check different ports.",
		"When the app fails readiness on its serving port at shutdown (or when it breaks), the ALB keeps checking another port (an admin listener, a sidecar) that stays 200: the target stays healthy, and only the deregistration after the endpoint change stops traffic. The ALB never sees the drain.",
		"Point alb.ingress.kubernetes.io/healthcheck-port at the port the readiness probe checks (traffic-port when it is the serving port), or probe readiness on the port the ALB checks."},
	{IDPreStopStopsServer, "prestop-stops-server-before-deregistration", Error,
		"The preStop hook stops the server (nginx -s quit, kill 1, apachectl graceful-stop, pkill …) before the load balancer stops sending.",
		"The preStop hook runs while the load balancer still routes to the pod. A command that stops the server makes it refuse new connections from that moment on; a sleep after it delays only SIGTERM, not the refusals (502).",
		"Sleep first, then stop: `sleep 15 && nginx -s quit` (or drop the stop command and let SIGTERM stop the server after the sleep)."},
	{IDDependencyStops, "dependency-container-stops-first", Error,
		"A container the serving one depends on (FastCGI backend, proxy, database proxy, mesh sidecar) stops while the serving container still takes requests.",
		"At the delete the kubelet starts every container's preStop hook at once, native sidecars included; a main container gets SIGTERM when its own hook returns. A backend container with no delay of its own exits at once, and the serving container, still receiving requests during its own delay, fails them (502 from nginx to a gone php-fpm, connection refused to a gone database proxy). A native sidecar gets SIGTERM only after the main containers have exited, but a preStop hook that stops its server (kill 1, nginx -s quit) acts at the delete.",
		"Give the dependency a preStop delay at least as long as the serving container's delay plus the longest request, or run it as a native sidecar (an init container with restartPolicy: Always, Kubernetes ≥ 1.29), whose SIGTERM waits until the main containers have exited; keep stop commands out of a sidecar's preStop hook, which runs at the delete."},
	{IDPublishNotReady, "service-publishes-not-ready-addresses", Error,
		"A Service behind a load balancer has publishNotReadyAddresses: true.",
		"The endpoints of terminating (and not ready) pods then stay ready, so the load-balancer controller never deregisters a terminating pod: the ALB or NLB keeps sending it new requests until the container is gone, and readiness cannot take a broken pod out.",
		"Remove publishNotReadyAddresses from the Service the load balancer routes to (keep it only on a headless Service used for peer discovery)."},
	{IDBlueGreenScaleDown, "argo-bluegreen-scale-down-before-targets-switch", Warning,
		"An Argo Rollouts blue-green rollout scales the old pods down before the ALB can have switched its targets.",
		"At promotion the active Service's selector moves to the new pods; the controller then deregisters the old targets and registers the new ones, which serve only after they pass the healthy threshold. Old pods scaled down before then still receive requests, and the new targets are not yet healthy (503 or fail-open).",
		"Set scaleDownDelaySeconds (and abortScaleDownDelaySeconds for the preview Service) to at least the deregistration propagation plus healthy threshold × interval (the finding gives the value), or run Argo Rollouts with --aws-verify-target-group."},
	{IDIngressClass, "ingress-class-unresolved", Warning,
		"An Ingress carries ALB annotations but its class does not resolve to the AWS Load Balancer Controller.",
		"The class decides which controller serves the Ingress. When it names an IngressClass that is not among the manifests (or none), the checker cannot tell whether the ALB settings apply; when it names another controller, the alb.ingress.kubernetes.io annotations are ignored and the timings you set are not live.",
		"Include the IngressClass (controller ingress.k8s.aws/alb) with the manifests, or set spec.ingressClassName: alb."},
	{IDDuplicateObject, "duplicate-object", Error,
		"The same object (kind, namespace, name) is defined twice in the inputs.",
		"Applied together, the later definition replaces the earlier one: the settings of the earlier file are not live, and checking both would mix the evidence of two setups.",
		"Check one setup at a time (one file or overlay per command), or rename one of the objects."},
}

// Rules returns every rule, ordered by ID.
func Rules() []Rule {
	out := append([]Rule(nil), catalog...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lookup finds a rule by ID (case-insensitive) or name.
func Lookup(idOrName string) (Rule, bool) {
	for _, r := range catalog {
		if strings.EqualFold(r.ID, idOrName) || r.Name == idOrName {
			return r, true
		}
	}
	return Rule{}, false
}

func ruleOf(id string) Rule {
	r, ok := Lookup(id)
	if !ok {
		panic(fmt.Sprintf("check: unknown rule %s", id))
	}
	return r
}

// Explain writes a rule's documentation.
func Explain(r Rule) string {
	return fmt.Sprintf("%s %s (%s)\n\n%s\n\nWhy it drops requests:\n  %s\n\nFix:\n  %s\n", r.ID, r.Name, r.Severity, r.Summary, r.Why, r.Fix)
}
