package analyze

import (
	"bytes"
	"encoding/json"

	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"zerodrop.dev/zerodrop/results"
)

// TimedEvent is an event at an absolute time, before it is placed on a
// result's timeline.
type TimedEvent struct {
	At    time.Time
	Event results.Event
}

// maxEventsInput bounds an events file (kubectl output for a busy cluster
// is a few MB).
const maxEventsInput = 256 << 20

// ReadKubeEvents reads Kubernetes events as `kubectl get events -o json`
// writes them (a List or EventList of core/v1 Events; a single Event is
// taken too) and returns them in time order with their kind mapped to the
// result model's (KubeEventKind). Events with no time at all are an error
// naming the item.
func ReadKubeEvents(r io.Reader) ([]TimedEvent, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxEventsInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	if len(data) > maxEventsInput {
		return nil, fmt.Errorf("reading events: more than %d MiB", maxEventsInput>>20)
	}
	return ParseKubeEvents(data)
}

// ParseKubeEvents is ReadKubeEvents for a byte slice.
func ParseKubeEvents(data []byte) ([]TimedEvent, error) {
	var probe struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("decoding events (want the JSON of kubectl get events -o json): %w", err)
	}
	items := probe.Items
	switch {
	case probe.Kind == "Event":
		items = []json.RawMessage{data}
	case probe.Kind != "List" && probe.Kind != "EventList" && !(probe.Kind == "" && probe.Items != nil):
		return nil, fmt.Errorf("decoding events: kind %q is not List, EventList or Event", probe.Kind)
	}
	out := make([]TimedEvent, 0, len(items))
	for i, raw := range items {
		var ev corev1.Event
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&ev); err != nil {
			return nil, fmt.Errorf("decoding events: item %d: %w", i, err)
		}
		at := eventTime(&ev)
		if at.IsZero() {
			return nil, fmt.Errorf("decoding events: item %d (%s %s/%s): no eventTime, firstTimestamp, lastTimestamp or creationTimestamp", i, ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name)
		}
		out = append(out, TimedEvent{At: at, Event: convert(&ev)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// eventTime is when an event first happened: eventTime (new-style events),
// else firstTimestamp, else lastTimestamp, else when the object was made.
func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.EventTime.IsZero():
		return ev.EventTime.UTC()
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp.UTC()
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.UTC()
	case !ev.CreationTimestamp.IsZero():
		return ev.CreationTimestamp.UTC()
	}
	return time.Time{}
}

func convert(ev *corev1.Event) results.Event {
	obj := ev.InvolvedObject
	attrs := map[string]string{"reason": ev.Reason}
	if ev.Type != "" {
		attrs["type"] = ev.Type
	}
	if obj.Namespace != "" {
		attrs["namespace"] = obj.Namespace
	}
	if ev.Count > 1 {
		attrs["count"] = fmt.Sprint(ev.Count)
	}
	if c := reporter(ev); c != "" {
		attrs["component"] = c
	}
	object := ""
	if obj.Name != "" {
		object = strings.ToLower(obj.Kind) + "/" + obj.Name
	}
	msg := ev.Reason
	if m := strings.TrimSpace(ev.Message); m != "" {
		msg += ": " + m
	}
	return results.Event{
		Kind: KubeEventKind(ev.Reason), Source: results.EventSourceKubernetes,
		Object: object, Message: msg, Attrs: attrs,
	}
}

func reporter(ev *corev1.Event) string {
	if ev.ReportingController != "" {
		return ev.ReportingController
	}
	return ev.Source.Component
}

// KubeEventKind maps a Kubernetes event reason to a result event kind:
// Killing (the kubelet runs preStop, then SIGTERM) is sigterm, replica set
// scaling is scale, pod deletion and eviction are kill, cordons and node
// disruption are node-drain, a node going NotReady is node-lost, a traffic
// weight change is weight-change; anything else is kubernetes.
func KubeEventKind(reason string) string {
	switch reason {
	case "Killing":
		return results.EventSIGTERM
	case "ScalingReplicaSet":
		return results.EventScale
	case "SuccessfulDelete", "Evicted", "TaintManagerEviction", "Preempted", "Preempting":
		return results.EventKill
	case "NodeNotSchedulable", "Disrupting", "DisruptionTerminating", "DisruptionLaunching", "Drain", "Draining":
		return results.EventNodeDrain
	case "NodeNotReady", "NodeUnreachable", "RemovingNode", "DeletingNode", "TerminatingNode":
		return results.EventNodeLost
	case "TrafficWeightUpdated", "SetWeight":
		return results.EventWeightChange
	}
	return results.EventKubernetes
}
