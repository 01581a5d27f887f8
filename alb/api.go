package alb

import "fmt"

// Operations lists the admin API's operations. Each is served at
// POST /v1/<Operation> with a JSON body and answers JSON.
var Operations = []string{
	"RegisterTargets", "DeregisterTargets", "DescribeTargetHealth", "ModifyRule",
	"ModifyTargetGroup", "ModifyTargetGroupAttributes", "DescribeLoadBalancer", "SetTargetFault",
}

// APIError is an admin API error: an HTTP status, an AWS-style code and a
// message. The server sends it as {"Error":{"Code":..,"Message":..}}.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// TargetDescription names a target: an IP address and a port.
type TargetDescription struct {
	ID   string `json:"Id"`
	Port int    `json:"Port"`
}

// String returns ip:port.
func (t TargetDescription) String() string {
	if t.Port == 0 {
		return t.ID
	}
	return fmt.Sprintf("%s:%d", bracketIPv6(t.ID), t.Port)
}

func bracketIPv6(ip string) string {
	for i := 0; i < len(ip); i++ {
		if ip[i] == ':' {
			return "[" + ip + "]"
		}
	}
	return ip
}

// TargetsInput is the input of RegisterTargets and DeregisterTargets.
type TargetsInput struct {
	TargetGroupName string              `json:"TargetGroupName"`
	Targets         []TargetDescription `json:"Targets"`
}

// AcceptedOutput answers an operation the data plane acts on later.
type AcceptedOutput struct {
	// EffectiveAt is when the data plane acts on the change (RFC 3339).
	EffectiveAt string `json:"EffectiveAt"`
}

// DescribeTargetHealthInput selects a target group and optionally targets.
type DescribeTargetHealthInput struct {
	TargetGroupName string              `json:"TargetGroupName"`
	Targets         []TargetDescription `json:"Targets,omitempty"`
}

// DescribeTargetHealthOutput lists target health.
type DescribeTargetHealthOutput struct {
	TargetHealthDescriptions []TargetHealthDescription `json:"TargetHealthDescriptions"`
}

// TargetHealthDescription is one target's health.
type TargetHealthDescription struct {
	Target          TargetDescription `json:"Target"`
	HealthCheckPort string            `json:"HealthCheckPort"`
	TargetHealth    TargetHealth      `json:"TargetHealth"`
	// InFlight is the number of requests in flight (emulator extension).
	InFlight int64 `json:"InFlight"`
	// DrainEndsAt is when the deregistration delay ends (emulator extension).
	DrainEndsAt string `json:"DrainEndsAt,omitempty"`
}

// TargetHealth is a state with its reason code.
type TargetHealth struct {
	State       string `json:"State"`
	Reason      string `json:"Reason,omitempty"`
	Description string `json:"Description,omitempty"`
}

// ModifyRuleInput replaces the forward action of the rule with Priority.
type ModifyRuleInput struct {
	Priority int      `json:"Priority"`
	Actions  []Action `json:"Actions"`
}

// Action is a rule action; only "forward" is supported.
type Action struct {
	Type          string        `json:"Type"`
	ForwardConfig ForwardConfig `json:"ForwardConfig"`
}

// ForwardConfig lists weighted target groups.
type ForwardConfig struct {
	TargetGroups []TargetGroupTuple `json:"TargetGroups"`
}

// TargetGroupTuple is a target group with its weight (0–999, default 1).
type TargetGroupTuple struct {
	TargetGroupName string `json:"TargetGroupName"`
	Weight          *int   `json:"Weight,omitempty"`
}

// ModifyTargetGroupInput changes a target group's health check; unset
// fields keep their value.
type ModifyTargetGroupInput struct {
	TargetGroupName            string           `json:"TargetGroupName"`
	HealthCheckEnabled         *bool            `json:"HealthCheckEnabled,omitempty"`
	HealthCheckPath            string           `json:"HealthCheckPath,omitempty"`
	HealthCheckPort            string           `json:"HealthCheckPort,omitempty"`
	HealthCheckIntervalSeconds int              `json:"HealthCheckIntervalSeconds,omitempty"`
	HealthCheckTimeoutSeconds  int              `json:"HealthCheckTimeoutSeconds,omitempty"`
	HealthyThresholdCount      int              `json:"HealthyThresholdCount,omitempty"`
	UnhealthyThresholdCount    int              `json:"UnhealthyThresholdCount,omitempty"`
	Matcher                    *HTTPCodeMatcher `json:"Matcher,omitempty"`
}

// HTTPCodeMatcher is the API form of a success-code matcher.
type HTTPCodeMatcher struct {
	HTTPCode string `json:"HttpCode"`
}

// ModifyTargetGroupAttributesInput sets target group attributes:
// deregistration_delay.timeout_seconds, slow_start.duration_seconds,
// load_balancing.algorithm.type.
type ModifyTargetGroupAttributesInput struct {
	TargetGroupName string      `json:"TargetGroupName"`
	Attributes      []Attribute `json:"Attributes"`
}

// Attribute is a key and its value, as strings.
type Attribute struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// SetTargetFaultInput injects a network fault for an address (IP or
// ip:port): "blackhole", "refuse" or "none". It acts at once.
type SetTargetFaultInput struct {
	Address string `json:"Address"`
	Fault   string `json:"Fault"`
}

// DescribeLoadBalancerOutput describes the whole load balancer.
type DescribeLoadBalancerOutput struct {
	LoadBalancerName   string                   `json:"LoadBalancerName"`
	LoadBalancerID     string                   `json:"LoadBalancerId"`
	ListenerAddress    string                   `json:"ListenerAddress"`
	IdleTimeoutSeconds float64                  `json:"IdleTimeoutSeconds"`
	TimeScale          float64                  `json:"TimeScale"`
	Rules              []RuleDescription        `json:"Rules"`
	TargetGroups       []TargetGroupDescription `json:"TargetGroups"`
	Faults             map[string]string        `json:"Faults,omitempty"`
}

// RuleDescription is one listener rule; the default action (fixed 404) is not listed.
type RuleDescription struct {
	Priority     int                `json:"Priority"`
	Hosts        []string           `json:"Hosts,omitempty"`
	PathPrefixes []string           `json:"PathPrefixes,omitempty"`
	TargetGroups []TargetGroupTuple `json:"TargetGroups"`
}

// TargetGroupDescription is one target group with its settings and targets.
type TargetGroupDescription struct {
	TargetGroupName            string                    `json:"TargetGroupName"`
	TargetGroupArn             string                    `json:"TargetGroupArn"`
	HealthCheckEnabled         bool                      `json:"HealthCheckEnabled"`
	HealthCheckPath            string                    `json:"HealthCheckPath"`
	HealthCheckPort            string                    `json:"HealthCheckPort"`
	HealthCheckIntervalSeconds float64                   `json:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  float64                   `json:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int                       `json:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int                       `json:"UnhealthyThresholdCount"`
	Matcher                    HTTPCodeMatcher           `json:"Matcher"`
	Attributes                 []Attribute               `json:"Attributes"`
	Targets                    []TargetHealthDescription `json:"Targets"`
}
