package manifest

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// PodPort is a port of a pod: its number and, when a container declares
// it, that container and the port's name.
type PodPort struct {
	Port      int32      `json:"port"`
	Name      string     `json:"name,omitempty"`
	Container *Container `json:"-"`
}

// ResolvePort resolves a probe port (a number or one of the container's
// own port names, as the kubelet does) to a pod port.
func (c *Container) ResolvePort(port intstr.IntOrString) (PodPort, bool) {
	if port.Type == intstr.Int {
		if port.IntVal <= 0 {
			return PodPort{}, false
		}
		for _, p := range c.Ports {
			if p.Port == port.IntVal {
				return PodPort{Port: p.Port, Name: p.Name, Container: c}, true
			}
		}
		// A port the container does not declare still belongs to its
		// network namespace; which process listens is not known.
		return PodPort{Port: port.IntVal}, true
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil && n > 0 {
		return c.ResolvePort(intstr.FromInt32(int32(n)))
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return PodPort{Port: p.Port, Name: p.Name, Container: c}, true
		}
	}
	return PodPort{}, false
}

// ResolvePort resolves a Service targetPort (a number or a port name of
// any container of the pod, sidecars included) to a pod port.
func (p *Pod) ResolvePort(port intstr.IntOrString) (PodPort, bool) {
	all := append(append([]*Container(nil), p.Containers...), p.Sidecars...)
	if port.Type == intstr.Int {
		for _, c := range all {
			if pp, ok := c.ResolvePort(port); ok && pp.Container != nil {
				return pp, true
			}
		}
		if port.IntVal > 0 {
			return PodPort{Port: port.IntVal}, true
		}
		return PodPort{}, false
	}
	for _, c := range all {
		if pp, ok := c.ResolvePort(port); ok && pp.Container != nil {
			return pp, true
		}
	}
	return PodPort{}, false
}

// Port finds the Service port a backend names: a port name, or a port
// number written as a string.
func (s *Service) Port(nameOrNumber string) (ServicePort, bool) {
	for _, p := range s.Ports {
		if p.Name == nameOrNumber && p.Name != "" || strconv.Itoa(int(p.Port)) == nameOrNumber {
			return p, true
		}
	}
	if len(s.Ports) == 1 && nameOrNumber == "" {
		return s.Ports[0], true
	}
	return ServicePort{}, false
}

// HealthCheckTarget is where the ALB health check of a target group
// reaches a pod.
type HealthCheckTarget struct {
	PodPort
	// TrafficPort is true when the check uses the port requests go to.
	TrafficPort bool `json:"trafficPort,omitempty"`
	// Known is false when the port cannot be resolved from the manifests.
	Known bool `json:"known"`
	// How says how the port was resolved, or why it could not be.
	How string `json:"how"`
}

// TrafficPort resolves the pod port the target group sends requests to for
// a workload: the Service port the backend names, then its targetPort.
func (tg *TargetGroup) TrafficPort(w *Workload) (PodPort, bool) {
	if tg.Service == nil {
		return PodPort{}, false
	}
	sp, ok := tg.Service.Port(tg.ServicePort)
	if !ok {
		return PodPort{}, false
	}
	return w.Pod.ResolvePort(sp.TargetPort)
}

// HealthCheckPort resolves the target group's health-check port for the
// pods of w, as the AWS Load Balancer Controller does:
//   - traffic-port: the port requests go to (the Service port's
//     targetPort, through the containers' named ports);
//   - a number: that port on the pod with ip targets; with instance targets
//     a port on the node, resolved through a Service nodePort when one
//     matches;
//   - a name: the Service port of that name, then its targetPort.
func (tg *TargetGroup) HealthCheckPort(w *Workload) HealthCheckTarget {
	v := tg.HealthCheck.Port.Value
	traffic, tok := tg.TrafficPort(w)
	if v == "" || v == ControllerHealthCheckPort {
		if !tok {
			return HealthCheckTarget{How: "traffic-port, but the Service port or its targetPort cannot be resolved"}
		}
		return HealthCheckTarget{PodPort: traffic, TrafficPort: true, Known: true, How: "traffic-port: " + describePort(traffic)}
	}
	if n, err := strconv.Atoi(v); err == nil {
		if tg.TargetType.Value == TargetInstance {
			if tg.Service != nil {
				for _, sp := range tg.Service.Ports {
					if sp.NodePort == int32(n) {
						pp, ok := w.Pod.ResolvePort(sp.TargetPort)
						return HealthCheckTarget{PodPort: pp, Known: ok, TrafficPort: ok && tok && pp.Port == traffic.Port,
							How: fmt.Sprintf("node port %d of Service port %s", n, sp.Name)}
					}
				}
			}
			return HealthCheckTarget{How: fmt.Sprintf("port %d on the node (instance targets); no Service nodePort among the manifests matches", n)}
		}
		pp, _ := w.Pod.ResolvePort(intstr.FromInt32(int32(n)))
		return HealthCheckTarget{PodPort: pp, Known: true, TrafficPort: tok && pp.Port == traffic.Port, How: "port " + describePort(pp)}
	}
	if tg.Service == nil {
		return HealthCheckTarget{How: fmt.Sprintf("named port %q, but the Service is not among the manifests", v)}
	}
	sp, ok := tg.Service.Port(v)
	if !ok {
		return HealthCheckTarget{How: fmt.Sprintf("named port %q is not a port of Service %s", v, tg.Service.Name)}
	}
	pp, ok := w.Pod.ResolvePort(sp.TargetPort)
	if !ok {
		return HealthCheckTarget{How: fmt.Sprintf("Service port %s targets %s, which no container declares", v, sp.TargetPort.String())}
	}
	return HealthCheckTarget{PodPort: pp, Known: true, TrafficPort: tok && pp.Port == traffic.Port, How: fmt.Sprintf("Service port %s → %s", v, describePort(pp))}
}

func describePort(p PodPort) string {
	s := strconv.Itoa(int(p.Port))
	if p.Name != "" {
		s += " (" + p.Name + ")"
	}
	if p.Container != nil {
		s += " of container " + p.Container.Name
	}
	return s
}
