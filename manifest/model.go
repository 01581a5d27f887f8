package manifest

import (
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// Model is everything zerodrop reads from a set of manifests: the objects
// of the termination chain, linked to each other (which Service and target
// group routes to which pods), with every timing resolved and defaults
// filled in. The checker judges it and the lab runs it, so both reason
// about the same numbers.
type Model struct {
	Namespaces          []*Namespace          `json:"namespaces,omitempty"`
	Workloads           []*Workload           `json:"workloads,omitempty"`
	Services            []*Service            `json:"services,omitempty"`
	Ingresses           []*Ingress            `json:"ingresses,omitempty"`
	TargetGroupBindings []*TargetGroupBinding `json:"targetGroupBindings,omitempty"`
	HPAs                []*HPA                `json:"hpas,omitempty"`
	PDBs                []*PDB                `json:"pdbs,omitempty"`
	// IngressClasses and IngressClassParams decide which Ingresses the AWS
	// Load Balancer Controller serves, and with which defaults.
	IngressClasses     []*IngressClass       `json:"ingressClasses,omitempty"`
	IngressClassParams []*IngressClassParams `json:"ingressClassParams,omitempty"`
	// TargetGroups are the ALB target groups the manifests create, one per
	// (Ingress or TargetGroupBinding, Service, port).
	TargetGroups []*TargetGroup `json:"targetGroups,omitempty"`
	// Others counts objects of kinds outside the termination chain.
	Others int `json:"others,omitempty"`
	// Diagnostics are the fields that could not be read or interpreted.
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`
}

// Diagnostic reports a field that matters to the termination chain but
// could not be read or interpreted, or an input problem such as an object
// defined twice.
type Diagnostic struct {
	Pos     Pos    `json:"pos"`
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
	// Kind tells what sort of problem it is; empty for a field that cannot
	// be read or interpreted.
	Kind DiagnosticKind `json:"kind,omitempty"`
	// Related are further positions the message refers to (the other
	// definition of a duplicate object).
	Related []Pos `json:"related,omitempty"`
}

// DiagnosticKind classifies a Diagnostic.
type DiagnosticKind string

// Diagnostic kinds.
const (
	// DiagField is a field that cannot be read or interpreted.
	DiagField DiagnosticKind = ""
	// DiagDuplicate is an object (same kind, namespace and name) defined
	// more than once in the inputs. The last definition is the one in the
	// Model, as `kubectl apply` of the same inputs would leave it.
	DiagDuplicate DiagnosticKind = "duplicate"
	// DiagIngressClass is an Ingress whose class cannot be resolved to a
	// controller, or whose ALB annotations its controller ignores.
	DiagIngressClass DiagnosticKind = "ingress-class"
)

// Meta identifies one object and where it was read.
type Meta struct {
	APIVersion  string            `json:"apiVersion"`
	Kind        string            `json:"kind"`
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Pos is the start of the object's document.
	Pos Pos `json:"pos"`

	// Origin is the source file of an object built by kustomize (from its
	// origin annotation), when that file holds the object.
	Origin string `json:"origin,omitempty"`

	ix     *lineIndex
	origin *lineIndex // the object in its source file (kustomize)
	seq    int        // order among the objects read
}

// Ref is Kind/namespace/name.
func (m *Meta) Ref() string { return m.Kind + "/" + m.Namespace + "/" + m.Name }

// At returns the source position of a field path of this object (the
// nearest existing ancestor's line when the field is not set). For an
// object built by kustomize it is the line in the source file when the
// field holds the same value there or is not set at all, else (a patch
// set it) the line in the built output.
func (m *Meta) At(path string) Pos {
	if o := m.origin; o != nil {
		switch {
		case o.has(path) && m.ix.has(path) && o.values[path] == m.ix.values[path]:
			return o.pos(path)
		case !m.ix.has(path) && o.nearest(path) == m.ix.nearest(path):
			// A field set nowhere (a default) whose parent comes from the
			// source file: point where to add it, in that file.
			return o.pos(path)
		}
	}
	return m.ix.pos(path)
}

// AnnotationPos returns the position of one annotation of the object.
func (m *Meta) AnnotationPos(key string) Pos {
	return m.At(joinPath("metadata.annotations", key))
}

// Namespace is a Namespace object.
type Namespace struct {
	Meta
	// ReadinessGateInject is true when the namespace carries
	// elbv2.k8s.aws/pod-readiness-gate-inject=enabled.
	ReadinessGateInject Field[bool] `json:"readinessGateInject"`
}

// Workload kinds.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindRollout     = "Rollout"
)

// Workload is a Deployment, StatefulSet or Argo Rollout: its pods and how
// they are replaced.
type Workload struct {
	Meta
	Replicas Field[int32] `json:"replicas"`
	// Selector is spec.selector.matchLabels.
	Selector        map[string]string `json:"selector,omitempty"`
	PodLabels       map[string]string `json:"podLabels,omitempty"`
	PodAnnotations  map[string]string `json:"podAnnotations,omitempty"`
	MinReadySeconds Field[int32]      `json:"minReadySeconds"`
	Strategy        Strategy          `json:"strategy"`
	Pod             Pod               `json:"pod"`
	// Canary is the Argo Rollouts canary strategy (Rollout only).
	Canary *Canary `json:"canary,omitempty"`
	// BlueGreen is the Argo Rollouts blue-green strategy (Rollout only).
	BlueGreen *BlueGreen `json:"blueGreen,omitempty"`

	// Links, filled in by the linker. NS is the Namespace object, if read.
	NS           *Namespace     `json:"-"`
	Services     []*Service     `json:"-"`
	TargetGroups []*TargetGroup `json:"-"`
	HPA          *HPA           `json:"-"`
	PDBs         []*PDB         `json:"-"`
}

// Strategy is the rolling-update strategy of a workload.
type Strategy struct {
	// Type is RollingUpdate, Recreate, OnDelete, Canary or BlueGreen.
	Type           Field[string]             `json:"type"`
	MaxSurge       Field[intstr.IntOrString] `json:"maxSurge"`
	MaxUnavailable Field[intstr.IntOrString] `json:"maxUnavailable"`
}

// Resolve turns maxSurge and maxUnavailable into pod counts for replicas,
// rounding surge up and unavailable down as the Deployment controller does.
// When both come out as zero, unavailable is 1 (the controller's rule).
func (s Strategy) Resolve(replicas int32) (surge, unavailable int32) {
	su, err := intstr.GetScaledValueFromIntOrPercent(&s.MaxSurge.Value, int(replicas), true)
	if err != nil {
		su = 0
	}
	un, err := intstr.GetScaledValueFromIntOrPercent(&s.MaxUnavailable.Value, int(replicas), false)
	if err != nil {
		un = 0
	}
	if su == 0 && un == 0 {
		un = 1
	}
	return int32(su), int32(un)
}

// Pod is the timing-relevant part of a pod template.
type Pod struct {
	TerminationGracePeriod Field[time.Duration] `json:"terminationGracePeriod"`
	ReadinessGates         []Field[string]      `json:"readinessGates,omitempty"`
	Containers             []*Container         `json:"containers"`
	// Sidecars are the native sidecars: init containers with
	// restartPolicy: Always. They start before the main containers and
	// stop after them, in reverse order.
	Sidecars []*Container `json:"sidecars,omitempty"`
}

// Container is one container of a pod template with its probes, preStop
// hook and zerodrop settings.
type Container struct {
	Name      string        `json:"name"`
	Pos       Pos           `json:"pos"`
	Image     Field[string] `json:"image"`
	Command   []string      `json:"command,omitempty"`
	Args      []string      `json:"args,omitempty"`
	Ports     []Port        `json:"ports,omitempty"`
	Readiness *Probe        `json:"readiness,omitempty"`
	Liveness  *Probe        `json:"liveness,omitempty"`
	Startup   *Probe        `json:"startup,omitempty"`
	PreStop   *PreStop      `json:"preStop,omitempty"`
	// Env holds the container's ZERODROP_* variables as written.
	Env []EnvVar `json:"env,omitempty"`
	// App is what the ZERODROP_* variables configure.
	App App `json:"app"`
}

// Port is a named container port.
type Port struct {
	Name string `json:"name,omitempty"`
	Port int32  `json:"port"`
	Pos  Pos    `json:"pos"`
}

// EnvVar is one ZERODROP_* environment variable. FromRef is true when the
// value comes from a ConfigMap, Secret or field reference and is unknown.
type EnvVar struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	FromRef bool   `json:"fromRef,omitempty"`
	Pos     Pos    `json:"pos"`
}

// Environment variables of the zerodrop drain library and service.
const (
	EnvShutdownDelay   = "ZERODROP_SHUTDOWN_DELAY"
	EnvShutdownTimeout = "ZERODROP_SHUTDOWN_TIMEOUT"
	EnvShutdown        = "ZERODROP_SHUTDOWN"
	EnvIdleTimeout     = "ZERODROP_IDLE_TIMEOUT"
)

// App is the application's own termination behaviour, as declared by
// ZERODROP_* environment variables. Nil fields are not declared.
type App struct {
	// ShutdownDelay: after SIGTERM (or the drain preStop endpoint) the app
	// keeps serving for this long before it stops accepting.
	ShutdownDelay *Field[time.Duration] `json:"shutdownDelay,omitempty"`
	// ShutdownTimeout bounds how long in-flight requests may finish.
	ShutdownTimeout *Field[time.Duration] `json:"shutdownTimeout,omitempty"`
	// Shutdown is the shutdown mode: graceful, immediate or unwaited.
	Shutdown *Field[string] `json:"shutdown,omitempty"`
	// IdleTimeout is the app's keep-alive idle timeout.
	IdleTimeout *Field[time.Duration] `json:"idleTimeout,omitempty"`
}

// Probe handler kinds.
const (
	HandlerHTTPGet   = "httpGet"
	HandlerTCPSocket = "tcpSocket"
	HandlerExec      = "exec"
	HandlerGRPC      = "grpc"
)

// Probe is a readiness, liveness or startup probe with Kubernetes defaults
// filled in.
type Probe struct {
	Pos     Pos    `json:"pos"`
	Handler string `json:"handler"`
	// Path, Port and Scheme are set for httpGet (Port also for tcpSocket
	// and grpc).
	Path             Field[string]             `json:"path"`
	Port             Field[intstr.IntOrString] `json:"port"`
	Scheme           string                    `json:"scheme,omitempty"`
	Command          []string                  `json:"command,omitempty"`
	InitialDelay     Field[time.Duration]      `json:"initialDelay"`
	Period           Field[time.Duration]      `json:"period"`
	Timeout          Field[time.Duration]      `json:"timeout"`
	SuccessThreshold Field[int32]              `json:"successThreshold"`
	FailureThreshold Field[int32]              `json:"failureThreshold"`
}

// PreStopKind is how a preStop hook delays termination.
type PreStopKind string

// PreStop kinds.
const (
	// PreStopSleep is the native lifecycle.preStop.sleep action.
	PreStopSleep PreStopKind = "sleep"
	// PreStopExecSleep is exec of a sleep binary: ["sleep", "20"].
	PreStopExecSleep PreStopKind = "exec-sleep"
	// PreStopShell is exec of a shell script: ["/bin/sh", "-c", "… sleep 20"].
	PreStopShell PreStopKind = "exec-shell"
	// PreStopZerodropSleep is exec of ["/zerodrop", "sleep", "20s"].
	PreStopZerodropSleep PreStopKind = "zerodrop-sleep"
	// PreStopHTTPGet is an httpGet hook (for example the drain preStop
	// endpoint); it lasts as long as the endpoint blocks.
	PreStopHTTPGet PreStopKind = "http-get"
	// PreStopExec is any other exec command; its duration is unknown.
	PreStopExec PreStopKind = "exec"
)

// PreStop is a container's preStop hook.
type PreStop struct {
	Kind PreStopKind `json:"kind"`
	Pos  Pos         `json:"pos"`
	// Duration is how long the hook blocks; valid when Known.
	Duration Field[time.Duration] `json:"duration"`
	Known    bool                 `json:"known"`
	Command  []string             `json:"command,omitempty"`
	// Shell is the shell the command runs (PreStopShell).
	Shell string `json:"shell,omitempty"`
	// NeedsShell and NeedsSleep tell which binaries the image must hold.
	NeedsShell bool `json:"needsShell,omitempty"`
	NeedsSleep bool `json:"needsSleep,omitempty"`
	// HTTPPath and HTTPPort are set for PreStopHTTPGet.
	HTTPPath string             `json:"httpPath,omitempty"`
	HTTPPort intstr.IntOrString `json:"httpPort,omitzero"`
	// Plan is what an exec hook does, step by step (a shell script read
	// with a shell parser, or the argv itself); nil for sleep and httpGet
	// hooks and for commands that cannot be read.
	Plan *Plan `json:"plan,omitempty"`
}

// StopsServer returns the step of the hook that stops the container's
// server (nginx -s quit, kill 1 …), or nil. From Step.At on, the container
// accepts no new connections while the load balancer may still send.
func (p *PreStop) StopsServer() *Step {
	if p == nil {
		return nil
	}
	return p.Plan.StopServer()
}

// Service is a Kubernetes Service.
type Service struct {
	Meta
	Type     string            `json:"type"`
	Selector map[string]string `json:"selector,omitempty"`
	Ports    []ServicePort     `json:"ports,omitempty"`
	// PublishNotReadyAddresses is spec.publishNotReadyAddresses: the
	// endpoints of not-ready and terminating pods stay ready, so a load
	// balancer fed from them keeps routing to terminating pods.
	PublishNotReadyAddresses Field[bool] `json:"publishNotReadyAddresses"`
	// NLB is true for a type LoadBalancer Service the AWS Load Balancer
	// Controller turns into a Network Load Balancer
	// (service.beta.kubernetes.io/aws-load-balancer-type external, nlb or
	// nlb-ip, or loadBalancerClass service.k8s.aws/nlb).
	NLB bool `json:"nlb,omitempty"`
	// Workloads are the workloads whose pods the selector matches.
	Workloads []*Workload `json:"-"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name       string             `json:"name,omitempty"`
	Port       int32              `json:"port"`
	NodePort   int32              `json:"nodePort,omitempty"`
	TargetPort intstr.IntOrString `json:"targetPort"`
	Pos        Pos                `json:"pos"`
}

// Ingress is a Kubernetes Ingress; ALB is true when the AWS Load Balancer
// Controller serves it: its class is an IngressClass whose controller is
// ingress.k8s.aws/alb, the legacy kubernetes.io/ingress.class annotation
// says alb, or (with a diagnostic) its class cannot be resolved but it
// carries alb.ingress.kubernetes.io annotations.
type Ingress struct {
	Meta
	Class string `json:"class,omitempty"`
	ALB   bool   `json:"alb"`
	// ClassFrom tells where Class comes from: spec.ingressClassName, the
	// kubernetes.io/ingress.class annotation, or the default IngressClass.
	ClassFrom string `json:"classFrom,omitempty"`
	// IngressClass and Params are the class objects, when among the inputs.
	IngressClass *IngressClass       `json:"-"`
	Params       *IngressClassParams `json:"-"`
	Backends     []Backend           `json:"backends,omitempty"`
	LB           LBAttributes        `json:"lb"`
	Actions      []*Action           `json:"actions,omitempty"`
	Paths        []Field[string]     `json:"paths,omitempty"`
}

// IngressClass is a networking.k8s.io IngressClass.
type IngressClass struct {
	Meta
	// Controller is spec.controller; ALBControllers serve ALB Ingresses.
	Controller string `json:"controller"`
	// Default is true with ingressclass.kubernetes.io/is-default-class: "true".
	Default bool `json:"default,omitempty"`
	// ParamsName names the IngressClassParams of spec.parameters, if any.
	ParamsName string `json:"paramsName,omitempty"`
}

// IsALB reports whether the AWS Load Balancer Controller (or EKS Auto
// Mode's ALB controller) serves the class.
func (c *IngressClass) IsALB() bool {
	return c != nil && (c.Controller == ALBController || c.Controller == EKSAutoALBController)
}

// IngressClassParams is an elbv2.k8s.aws IngressClassParams: settings
// that apply to every Ingress of the classes that reference it and take
// precedence over the Ingresses' annotations.
type IngressClassParams struct {
	Meta
	// TargetType is spec.targetType; nil when not set.
	TargetType *Field[string] `json:"targetType,omitempty"`
	// IdleTimeout is idle_timeout.timeout_seconds of
	// spec.loadBalancerAttributes; nil when not set.
	IdleTimeout *Field[time.Duration] `json:"idleTimeout,omitempty"`
}

// Backend is one Ingress backend (a rule path or the default backend).
type Backend struct {
	Path        string `json:"path,omitempty"`
	ServiceName string `json:"serviceName"`
	// ServicePort is the port name or number; "use-annotation" routes to
	// the actions.<ServiceName> annotation.
	ServicePort string `json:"servicePort"`
	Pos         Pos    `json:"pos"`
}

// Action is an alb.ingress.kubernetes.io/actions.<name> forward action.
type Action struct {
	Name         string           `json:"name"`
	Pos          Pos              `json:"pos"`
	Type         string           `json:"type"`
	TargetGroups []WeightedTarget `json:"targetGroups,omitempty"`
}

// WeightedTarget is one weighted target group of a forward action.
type WeightedTarget struct {
	ServiceName string `json:"serviceName"`
	ServicePort string `json:"servicePort"`
	Weight      int32  `json:"weight"`
}

// LBAttributes are the load-balancer attributes (controller annotation
// load-balancer-attributes).
type LBAttributes struct {
	IdleTimeout Field[time.Duration] `json:"idleTimeout"`
}

// TargetGroupBinding is an elbv2.k8s.aws TargetGroupBinding.
type TargetGroupBinding struct {
	Meta
	ServiceName    string        `json:"serviceName"`
	ServicePort    string        `json:"servicePort"`
	TargetType     Field[string] `json:"targetType"`
	TargetGroupARN string        `json:"targetGroupARN,omitempty"`
}

// Target types.
const (
	TargetIP       = "ip"
	TargetInstance = "instance"
)

// TargetGroup is one ALB target group made from an Ingress backend (or a
// TargetGroupBinding) and the pods behind its Service.
type TargetGroup struct {
	// Ingress or Binding is set, whichever creates the target group.
	Ingress     *Ingress            `json:"-"`
	Binding     *TargetGroupBinding `json:"-"`
	Source      string              `json:"source"`
	Service     *Service            `json:"-"`
	ServiceName string              `json:"serviceName"`
	ServicePort string              `json:"servicePort"`
	Pos         Pos                 `json:"pos"`
	TargetType  Field[string]       `json:"targetType"`
	HealthCheck HealthCheck         `json:"healthCheck"`
	Attributes  TGAttributes        `json:"attributes"`
	LB          LBAttributes        `json:"lb"`
	// Weight is the forward weight when an action routes to the group.
	Weight *Field[int32] `json:"weight,omitempty"`
	// Workloads are the workloads whose pods are the targets.
	Workloads []*Workload `json:"-"`
}

// HealthCheck is a target group's health check with controller (Ingress)
// or ALB API (TargetGroupBinding) defaults filled in.
type HealthCheck struct {
	Path               Field[string]        `json:"path"`
	Port               Field[string]        `json:"port"`
	Protocol           Field[string]        `json:"protocol"`
	Interval           Field[time.Duration] `json:"interval"`
	Timeout            Field[time.Duration] `json:"timeout"`
	HealthyThreshold   Field[int32]         `json:"healthyThreshold"`
	UnhealthyThreshold Field[int32]         `json:"unhealthyThreshold"`
	SuccessCodes       Field[string]        `json:"successCodes"`
	// Codes are SuccessCodes parsed into inclusive ranges.
	Codes []CodeRange `json:"codes,omitempty"`
}

// CodeRange is an inclusive range of HTTP status codes.
type CodeRange struct{ From, To int }

// TGAttributes are target-group attributes.
type TGAttributes struct {
	DeregistrationDelay Field[time.Duration] `json:"deregistrationDelay"`
	SlowStart           Field[time.Duration] `json:"slowStart"`
	Algorithm           Field[string]        `json:"algorithm"`
}

// HPA is a HorizontalPodAutoscaler.
type HPA struct {
	Meta
	TargetKind  string       `json:"targetKind"`
	TargetName  string       `json:"targetName"`
	MinReplicas Field[int32] `json:"minReplicas"`
	MaxReplicas Field[int32] `json:"maxReplicas"`
}

// PDB is a PodDisruptionBudget.
type PDB struct {
	Meta
	Selector       map[string]string          `json:"selector,omitempty"`
	MinAvailable   *Field[intstr.IntOrString] `json:"minAvailable,omitempty"`
	MaxUnavailable *Field[intstr.IntOrString] `json:"maxUnavailable,omitempty"`
	Workloads      []*Workload                `json:"-"`
}

// Canary is the subset of an Argo Rollouts canary strategy that changes
// which pods receive traffic.
type Canary struct {
	Pos                Pos                  `json:"pos"`
	CanaryService      string               `json:"canaryService,omitempty"`
	StableService      string               `json:"stableService,omitempty"`
	Steps              []CanaryStep         `json:"steps,omitempty"`
	ALB                *ALBRouting          `json:"alb,omitempty"`
	DynamicStableScale Field[bool]          `json:"dynamicStableScale"`
	ScaleDownDelay     Field[time.Duration] `json:"scaleDownDelay"`
}

// BlueGreen is an Argo Rollouts blue-green strategy. At promotion the
// controller points the active Service's selector at the new pods, then
// scales the old ones down after ScaleDownDelay; on abort it scales the
// new ones down after AbortScaleDownDelay (0: never).
type BlueGreen struct {
	Pos            Pos    `json:"pos"`
	ActiveService  string `json:"activeService"`
	PreviewService string `json:"previewService,omitempty"`
	// AutoPromotionEnabled defaults to true: promote as soon as the new
	// pods are available (after AutoPromotionAfter, when set).
	AutoPromotionEnabled Field[bool]           `json:"autoPromotionEnabled"`
	AutoPromotionAfter   *Field[time.Duration] `json:"autoPromotionAfter,omitempty"`
	// ScaleDownDelay and AbortScaleDownDelay default to 30 s.
	ScaleDownDelay      Field[time.Duration] `json:"scaleDownDelay"`
	AbortScaleDownDelay Field[time.Duration] `json:"abortScaleDownDelay"`
	PreviewReplicaCount *int32               `json:"previewReplicaCount,omitempty"`
}

// ALBRouting is canary.trafficRouting.alb.
type ALBRouting struct {
	Pos         Pos      `json:"pos"`
	Ingresses   []string `json:"ingresses"`
	ServicePort int32    `json:"servicePort"`
	RootService string   `json:"rootService,omitempty"`
}

// CanaryStep is one canary step; exactly one field is set.
type CanaryStep struct {
	Pos             Pos            `json:"pos"`
	SetWeight       *int32         `json:"setWeight,omitempty"`
	Pause           *time.Duration `json:"pause,omitempty"`
	PauseIndefinite bool           `json:"pauseIndefinite,omitempty"`
	SetCanaryScale  *CanaryScale   `json:"setCanaryScale,omitempty"`
}

// CanaryScale is a setCanaryScale step.
type CanaryScale struct {
	Weight             *int32 `json:"weight,omitempty"`
	Replicas           *int32 `json:"replicas,omitempty"`
	MatchTrafficWeight bool   `json:"matchTrafficWeight,omitempty"`
}
