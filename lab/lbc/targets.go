package lbc

import (
	"net"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Target is one ip-mode target with why it is in the set.
type Target struct {
	Addr   string // ip:port
	Pod    string // namespace/name, when known
	Reason string // "ready" or "ready-containers-pending-gates"
}

// PodLookup finds a pod by namespace and name; nil when unknown.
type PodLookup func(namespace, name string) *corev1.Pod

// NodeLookup finds a node by name; nil when unknown.
type NodeLookup func(name string) *corev1.Node

// IPTargets computes the ip-mode target set of a Service port from its
// EndpointSlices as the AWS Load Balancer Controller does (FACTS.md): every
// endpoint that is ready (or whose readiness is unset), plus not-ready
// endpoints that are not terminating whose pod has all containers ready on a
// Ready node — pods held back only by their readiness gates, which must be
// registered so the target can become healthy and the gate open.
// Terminating endpoints leave the set. portName is the Service port's name
// (EndpointSlice ports carry it); the result is sorted.
func IPTargets(slices []*discoveryv1.EndpointSlice, portName string, pods PodLookup, nodes NodeLookup) []Target {
	seen := map[string]bool{}
	var out []Target
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port := int32(-1)
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name == portName && p.Port != nil {
				port = *p.Port
			}
		}
		if port < 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			reason := ""
			terminating := e.Conditions.Terminating != nil && *e.Conditions.Terminating
			switch {
			case terminating:
			case e.Conditions.Ready == nil || *e.Conditions.Ready:
				reason = "ready"
			case containersReadyOnReadyNode(e, pods, nodes):
				reason = "ready-containers-pending-gates"
			}
			if reason == "" {
				continue
			}
			addr := net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(port)))
			if seen[addr] {
				continue
			}
			seen[addr] = true
			t := Target{Addr: addr, Reason: reason}
			if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
				t.Pod = e.TargetRef.Namespace + "/" + e.TargetRef.Name
			}
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

func containersReadyOnReadyNode(e discoveryv1.Endpoint, pods PodLookup, nodes NodeLookup) bool {
	if e.TargetRef == nil || e.TargetRef.Kind != "Pod" || pods == nil || nodes == nil {
		return false
	}
	pod := pods(e.TargetRef.Namespace, e.TargetRef.Name)
	if pod == nil || pod.DeletionTimestamp != nil || len(pod.Spec.ReadinessGates) == 0 {
		return false
	}
	containersReady := false
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.ContainersReady {
			containersReady = c.Status == corev1.ConditionTrue
		}
	}
	if !containersReady {
		return false
	}
	node := nodes(pod.Spec.NodeName)
	if node == nil {
		return false
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
