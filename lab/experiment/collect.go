package experiment

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
	"zerodrop.dev/zerodrop/lab/labevent"
	"zerodrop.dev/zerodrop/results"
)

// podEvent is a step of an app pod's life from the lab's event stream.
type podEvent struct {
	at   time.Time
	kind string
	pod  string
}

// labEventKinds maps the lab's event kinds to the result model's.
var labEventKinds = map[string]string{
	"PodTerminating":    results.EventKill,
	"PreStopStarted":    results.EventSIGTERM,
	"SIGTERM":           results.EventSIGTERM,
	"SIGKILL":           results.EventKill,
	"PodDeleted":        results.EventKill,
	"NodeLost":          results.EventNodeLost,
	"DeregisterTargets": results.EventDeregister,
	"RegisterTargets":   results.EventRegister,
	"ALBtarget_state":   results.EventTargetState,
	"ModifyRule":        results.EventWeightChange,
	"NodeRegistered":    "node",
	"NodeRemoved":       "node",
	"PodAdmitted":       "pod",
}

// collect reads what the lab recorded (event stream, access log), adds
// check's predictions and the failures' causes to res, writes the files
// and sums the variant up.
func (r *running) collect(res *results.Result) (*VariantResult, error) {
	evs, err := readLabEvents(filepath.Join(r.labDir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	from, to := res.Meta.Start.Add(-5*time.Second), res.Meta.End.Add(5*time.Second)
	podOfIP := ipHolders{}
	var podEvents []podEvent
	appPrefix := r.s.namespace + "/"
	for _, e := range evs {
		if ip, ok := e.Fields["podIP"].(string); ok && strings.HasPrefix(e.Source, "kubelet/") && strings.HasPrefix(e.Object, appPrefix) {
			podOfIP.add(ip, trimNS(e.Object), e.Time)
		}
		if e.Time.Before(from) || e.Time.After(to) {
			continue
		}
		kind, ok := labEventKinds[e.Kind]
		if !ok {
			continue
		}
		// Pods are the kubelets' objects; the controller twin names its
		// load balancers namespace/name too.
		isPod := strings.HasPrefix(e.Source, "kubelet/") && strings.HasPrefix(e.Object, appPrefix)
		isOther := strings.HasPrefix(e.Source, "alb/") || strings.HasPrefix(e.Source, "lbc") || e.Kind == "NodeLost" || e.Kind == "NodeRegistered" || e.Kind == "NodeRemoved"
		if !isPod && !isOther {
			continue
		}
		attrs := map[string]string{"lab_kind": e.Kind}
		for k, v := range e.Fields {
			s, ok := v.(string)
			if !ok {
				b, _ := json.Marshal(v)
				s = string(b)
			}
			if len(s) < 400 {
				attrs[k] = s
			}
		}
		object := e.Object
		switch {
		case strings.HasPrefix(e.Source, "alb/"):
			object = "target/" + e.Object
		case e.Kind == "RegisterTargets" || e.Kind == "DeregisterTargets":
			object = "targetgroup/" + e.Object
		case e.Kind == "ModifyRule" || e.Kind == "WeightChangeSeen":
			object = "loadbalancer/" + e.Object
		case strings.HasPrefix(e.Kind, "Node"):
			object = "node/" + e.Object
		}
		if isPod {
			object = "pod/" + trimNS(e.Object)
			podEvents = append(podEvents, podEvent{at: e.Time, kind: e.Kind, pod: trimNS(e.Object)})
		}
		msg := e.Kind
		if e.Message != "" {
			msg += ": " + e.Message
		}
		res.Events = append(res.Events, results.Event{AtMS: res.Offset(e.Time), Kind: kind, Message: msg, Source: results.EventSourceLab, Object: object, Attrs: attrs})
	}
	sort.SliceStable(res.Events, func(i, j int) bool { return res.Events[i].AtMS < res.Events[j].AtMS })

	// check's prediction for every app pod deleted during the run: its
	// termination timeline's failure windows from the deletion on (scaled
	// as the lab scales the manifests' durations).
	predicted := map[string][]results.Window{}
	if r.s.termination != nil {
		for _, pe := range podEvents {
			if pe.kind != "PodTerminating" {
				continue
			}
			for _, w := range r.s.termination.Windows {
				reason := w.Why
				if w.Risk {
					reason += " (only if a lag exceeds its estimate)"
				}
				pw := results.Window{
					Name:    "pod " + pe.pod + " deleted",
					StartMS: res.Offset(pe.at.Add(r.scaled(w.From))), EndMS: res.Offset(pe.at.Add(r.scaled(w.To))),
					Source: "check", Reason: reason,
				}
				res.Predicted = append(res.Predicted, pw)
				predicted[pe.pod] = append(predicted[pe.pod], pw)
			}
		}
	}

	// A lost node's targets keep getting requests until the ALB's health
	// checks fail them: interval × unhealthy threshold, the last check
	// waiting its timeout.
	if hc := r.s.healthCheck; hc != nil {
		detect := hc.Interval.Value*time.Duration(hc.UnhealthyThreshold.Value) + hc.Timeout.Value
		for _, e := range evs {
			if e.Kind != "NodeLost" || e.Time.Before(from) || e.Time.After(to) {
				continue
			}
			res.Predicted = append(res.Predicted, results.Window{
				Name:    "node " + e.Object + " lost",
				StartMS: res.Offset(e.Time), EndMS: res.Offset(e.Time.Add(r.scaled(detect))),
				Source: "check", Rule: "ALB health-check detection",
				Reason: fmt.Sprintf("the ALB keeps sending to the lost node's targets until %d health checks %s apart fail (%s)",
					hc.UnhealthyThreshold.Value, hc.Interval.Value, detect),
			})
		}
		res.Config["alb_health_check_interval"] = hc.Interval.Value.String()
	}

	att, err := r.attribute(res, podOfIP, podEvents)
	if err != nil {
		return nil, err
	}
	res.Failures = res.FindFailures(results.FailureOptions{Gap: r.scaled(5 * time.Second), Lead: r.scaled(60 * time.Second)})
	for i := range res.Failures {
		f := &res.Failures[i]
		f.Targets, f.Cause = att.inWindow(res, f.StartMS, f.EndMS)
	}

	resultsPath := filepath.Join(r.dir, "results.json")
	fh, err := os.Create(resultsPath)
	if err != nil {
		return nil, err
	}
	if err := results.Encode(fh, res); err != nil {
		fh.Close()
		return nil, fmt.Errorf("writing %s: %w", resultsPath, err)
	}
	if err := fh.Close(); err != nil {
		return nil, err
	}
	tol := Tolerances{PodDeletion: r.scaled(time.Second)}
	if r.s.healthCheck != nil {
		tol.NodeLoss = r.scaled(r.s.healthCheck.Interval.Value)
	}
	vr := summarize(r.v.Name, res, tol, windowPods(res, podEvents, predicted, att))
	vr.Dir, vr.Results = r.dir, resultsPath
	vr.AccessLogs = albLogs(r.labDir)
	vr.Events = filepath.Join(r.labDir, "events.jsonl")
	vr.Causes = att.causes()
	vr.Pods = att.pods()
	vr.CheckFindings = r.s.findings
	vr.PredictedWindows = len(res.Predicted)
	return vr, nil
}

func readLabEvents(path string) ([]labevent.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the lab's events: %w", err)
	}
	defer f.Close()
	var out []labevent.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e labevent.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// ipHolders tells which pod held an address when: the lab, like the VPC
// CNI, gives a deleted pod's address to a new pod, while the ALB may still
// send requests for the old one to it.
type ipHolders map[string][]ipHolder

type ipHolder struct {
	since time.Time
	pod   string
}

// add records that pod holds ip at t (events come in time order; a pod
// seen again with the address it holds changes nothing).
func (h ipHolders) add(ip, pod string, t time.Time) {
	if hs := h[ip]; len(hs) > 0 && hs[len(hs)-1].pod == pod {
		return
	}
	h[ip] = append(h[ip], ipHolder{since: t, pod: pod})
}

// at is the pod that held ip at t: the last to take it at or before t,
// or the first holder for a time before any ("" for an unknown address).
func (h ipHolders) at(ip string, t time.Time) string {
	hs := h[ip]
	if len(hs) == 0 {
		return ""
	}
	pod := hs[0].pod
	for _, x := range hs[1:] {
		if x.since.After(t) {
			break
		}
		pod = x.pod
	}
	return pod
}

// failedEntry is one failed request in the ALB's access log.
type failedEntry struct {
	at     time.Time // the request's start
	end    time.Time // when the ALB answered
	key    string    // "ALB 504 (Target.ConnectionTimeout)", "target 500"
	target string
	pod    string
	before string // the pod's last lifecycle step before the request
}

type attribution struct {
	entries []failedEntry
}

// attribute reads the ALB's access log for the run and names, for every
// failed request, who made the error, the reason the ALB logged, the pod
// behind the target and the pod's last lifecycle step before the request.
func (r *running) attribute(res *results.Result, podOfIP ipHolders, podEvents []podEvent) (*attribution, error) {
	att := &attribution{}
	files := albLogs(r.labDir)
	if len(files) == 0 {
		return att, nil
	}
	sort.Slice(podEvents, func(i, j int) bool { return podEvents[i].at.Before(podEvents[j].at) })
	lastStep := func(pod string, at time.Time) string {
		step := ""
		for _, pe := range podEvents {
			if pe.at.After(at) {
				break
			}
			if pe.pod == pod {
				step = pe.kind
			}
		}
		return step
	}
	_, err := accesslog.ReadFiles(context.Background(), files, accesslog.ReadOptions{}, func(e *accesslog.Entry) error {
		start := e.RequestCreationTime
		if start.IsZero() {
			start = e.Time
		}
		if start.Before(res.Meta.Start) || start.After(res.Meta.End) {
			return nil
		}
		fe := failedEntry{at: start, end: e.Time, target: e.Target}
		switch {
		case e.ELBStatusCode >= 500 && e.TargetStatusCode == 0:
			reason := e.ErrorReason
			if reason == "" {
				reason = "no reason logged"
			}
			fe.key = fmt.Sprintf("ALB %d (%s)", e.ELBStatusCode, reason)
		case e.TargetStatusCode >= 500:
			fe.key = fmt.Sprintf("target %d", e.TargetStatusCode)
		default:
			return nil
		}
		if host, _, ok := strings.Cut(e.Target, ":"); ok {
			fe.pod = podOfIP.at(host, start)
			if fe.pod != "" {
				fe.before = lastStep(fe.pod, start)
			}
		}
		att.entries = append(att.entries, fe)
		return nil
	})
	if err != nil {
		return att, fmt.Errorf("reading the ALB access log: %w", err)
	}
	return att, nil
}

// Cause counts failed requests of one kind after one pod lifecycle step.
type Cause struct {
	// What is who made the error and the ALB's error_reason ("ALB 504
	// (Target.ConnectionTimeout)") or the target's status ("target 500").
	What string `json:"what"`
	// After is the pod's last lifecycle step before the request
	// (PodTerminating, SIGTERM, ContainerExited, PodNetworkTornDown, ...),
	// or "running".
	After string `json:"after"`
	Count int64  `json:"count"`
}

func (a *attribution) causes() []Cause {
	m := map[[2]string]int64{}
	for _, e := range a.entries {
		after := e.before
		if after == "" {
			after = "running"
		}
		m[[2]string{e.key, after}]++
	}
	out := make([]Cause, 0, len(m))
	for k, n := range m {
		out = append(out, Cause{What: k[0], After: k[1], Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].What+out[i].After < out[j].What+out[j].After
	})
	return out
}

// PodFailures counts the failed requests a pod was behind.
type PodFailures struct {
	Pod   string `json:"pod"`
	Count int64  `json:"count"`
}

func (a *attribution) pods() []PodFailures {
	m := map[string]int64{}
	for _, e := range a.entries {
		p := e.pod
		if p == "" {
			p = e.target
		}
		if p == "" {
			p = "(no target)"
		}
		m[p]++
	}
	out := make([]PodFailures, 0, len(m))
	for p, n := range m {
		out = append(out, PodFailures{Pod: p, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Pod < out[j].Pod
	})
	return out
}

// inWindow names the targets (pods) and the commonest cause of the failed
// entries in a result window.
func (a *attribution) inWindow(res *results.Result, startMS, endMS int64) ([]string, string) {
	targets := map[string]int{}
	causes := map[string]int{}
	for _, e := range a.entries {
		off := res.Offset(e.at)
		if off < startMS || off >= endMS {
			continue
		}
		name := e.pod
		if name == "" {
			name = e.target
		}
		if name != "" {
			targets[name]++
		}
		c := e.key
		if e.before != "" {
			c += " after " + e.before
		}
		causes[c]++
	}
	var ts []string
	for t := range targets {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if targets[ts[i]] != targets[ts[j]] {
			return targets[ts[i]] > targets[ts[j]]
		}
		return ts[i] < ts[j]
	})
	best, n := "", 0
	for c, k := range causes {
		if k > n || (k == n && c < best) {
			best, n = c, k
		}
	}
	return ts, best
}
