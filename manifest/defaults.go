package manifest

import "time"

// Kubernetes defaults (FACTS.md, "Kubernetes pod termination").
const (
	DefaultTerminationGracePeriod = 30 * time.Second
	DefaultProbeInitialDelay      = 0
	DefaultProbePeriod            = 10 * time.Second
	DefaultProbeTimeout           = 1 * time.Second
	DefaultProbeSuccessThreshold  = 1
	DefaultProbeFailureThreshold  = 3
	DefaultMaxSurge               = "25%"
	DefaultMaxUnavailable         = "25%"
	// PreStopGraceExtension is the least time the kubelet leaves between
	// SIGTERM and SIGKILL (its minimumGracePeriodInSeconds): a preStop hook
	// still running at the end of the grace period gets this one-off
	// extension, and so does a SIGTERM sent less than 2 s before that end.
	PreStopGraceExtension = 2 * time.Second
)

// AWS Load Balancer Controller defaults for Ingress annotations.
const (
	ControllerTargetType         = TargetInstance
	ControllerHealthCheckPath    = "/"
	ControllerHealthCheckPort    = "traffic-port"
	ControllerHealthCheckProto   = "HTTP"
	ControllerHealthInterval     = 15 * time.Second
	ControllerHealthTimeout      = 5 * time.Second
	ControllerHealthyThreshold   = 2
	ControllerUnhealthyThreshold = 2
	ControllerSuccessCodes       = "200"
)

// ALB API defaults, used for target groups made outside Kubernetes and
// bound with a TargetGroupBinding.
const (
	ALBHealthInterval     = 30 * time.Second
	ALBHealthTimeout      = 5 * time.Second
	ALBHealthyThreshold   = 5
	ALBUnhealthyThreshold = 2
)

// Target-group and load-balancer attribute defaults.
const (
	DefaultDeregistrationDelay = 300 * time.Second
	DefaultSlowStart           = 0
	DefaultAlgorithm           = "round_robin"
	DefaultIdleTimeout         = 60 * time.Second
)

// Argo Rollouts defaults.
const DefaultScaleDownDelay = 30 * time.Second

// Annotation and label keys.
const (
	ALBAnnotationPrefix    = "alb.ingress.kubernetes.io/"
	ReadinessGateInjectKey = "elbv2.k8s.aws/pod-readiness-gate-inject"
	ReadinessGateInjectOn  = "enabled"
	ReadinessGatePrefix    = "target-health.elbv2.k8s.aws/"
	IngressClassAnnotation = "kubernetes.io/ingress.class"
	// DefaultClassAnnotation marks the cluster's default IngressClass.
	DefaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
	// ALBController is the spec.controller of the AWS Load Balancer
	// Controller's IngressClass.
	ALBController = "ingress.k8s.aws/alb"
	// EKSAutoALBController is the spec.controller of EKS Auto Mode's ALB
	// IngressClass.
	EKSAutoALBController = "eks.amazonaws.com/alb"
	// LegacyALBClass is the kubernetes.io/ingress.class value (and the
	// conventional IngressClass name) the controller serves by default.
	LegacyALBClass = "alb"
	// NLBTypeAnnotation and NLBClass make a LoadBalancer Service an NLB
	// of the AWS Load Balancer Controller.
	NLBTypeAnnotation = "service.beta.kubernetes.io/aws-load-balancer-type"
	NLBClass          = "service.k8s.aws/nlb"
	UseAnnotationPort = "use-annotation"
	defaultNamespace  = "default"
)
