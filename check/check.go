package check

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/manifest"
)

// Defaults of the estimates the checker reasons with.
const (
	// DefaultDeregistrationPropagation estimates the time from pod delete
	// until the ALB stops sending new requests to the target: controller
	// reconcile (watch event, a few seconds) + ELB API call + data-plane
	// propagation. Users report tens of seconds up to ~2 minutes at worst
	// (FACTS.md); 10 s is the typical case on a quiet controller.
	DefaultDeregistrationPropagation = 10 * time.Second
	// DefaultMaxRequestDuration is the longest request assumed when neither
	// the annotation nor the flag says otherwise.
	DefaultMaxRequestDuration = 10 * time.Second
	// DefaultWeightChangeLag is the lag from an Argo Rollouts setWeight to
	// the ALB ModifyRule (about 70 s observed in seed 004).
	DefaultWeightChangeLag = 70 * time.Second
	// DefaultDetectionGap is how far apart ALB and readiness failure
	// detection may be before ZD005 fires.
	DefaultDetectionGap = 10 * time.Second
	// GraceMargin is added to suggested grace periods.
	GraceMargin = 5 * time.Second
)

// Annotations read by the checker.
const (
	// AnnotationMaxRequest declares the longest request of a workload (Go
	// duration) on the workload, its pod template or the Ingress.
	AnnotationMaxRequest = "zerodrop.dev/max-request-duration"
	// AnnotationIgnore lists rule IDs to ignore on an object: "ZD004,ZD014".
	AnnotationIgnore = "zerodrop.dev/ignore"
)

// Config holds the estimates the checker reasons with.
type Config struct {
	DeregistrationPropagation time.Duration `json:"deregistrationPropagation"`
	MaxRequestDuration        time.Duration `json:"maxRequestDuration"`
	WeightChangeLag           time.Duration `json:"weightChangeLag"`
	DetectionGap              time.Duration `json:"detectionGap"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		DeregistrationPropagation: DefaultDeregistrationPropagation,
		MaxRequestDuration:        DefaultMaxRequestDuration,
		WeightChangeLag:           DefaultWeightChangeLag,
		DetectionGap:              DefaultDetectionGap,
	}
}

// Evidence is one source position that supports a finding.
type Evidence struct {
	Pos  manifest.Pos `json:"pos"`
	Note string       `json:"note"`
}

// Finding is one rule firing on one workload (or object).
type Finding struct {
	RuleID   string   `json:"ruleId"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Object is the workload (or other object) the finding is about.
	Object  string `json:"object"`
	Message string `json:"message"`
	// Evidence[0] is the primary location.
	Evidence []Evidence `json:"evidence"`
	Why      string     `json:"why"`
	Fix      string     `json:"fix"`

	objects []*manifest.Meta
}

// Event is one moment of a timeline, in time since the pod was deleted
// (termination) or created (startup).
type Event struct {
	At   time.Duration `json:"at"`
	What string        `json:"what"`
}

// Window is an interval in which requests can fail.
type Window struct {
	From time.Duration `json:"from"`
	To   time.Duration `json:"to"`
	Why  string        `json:"why"`
	// Risk marks a window that opens only when a real lag exceeds its
	// estimate (for example deregistration slower than the flag says).
	Risk bool `json:"risk,omitempty"`
}

// Timeline is a sequence of events and the windows in which requests fail.
type Timeline struct {
	Events  []Event  `json:"events"`
	Windows []Window `json:"windows,omitempty"`
}

// WorkloadReport is the result for one workload.
type WorkloadReport struct {
	Object      string       `json:"object"`
	Pos         manifest.Pos `json:"pos"`
	Routes      []string     `json:"routes,omitempty"`
	Container   string       `json:"container,omitempty"`
	Termination *Timeline    `json:"termination,omitempty"`
	// Containers is every container's termination schedule, for pods with
	// more than one container.
	Containers []manifest.ContainerStop `json:"containers,omitempty"`
	Startup    *Timeline                `json:"startup,omitempty"`
	Findings   []Finding                `json:"findings"`
	// Served is false for workloads behind no Service: they are not judged.
	Served bool `json:"served"`
}

// Report is the outcome of a check.
type Report struct {
	Config    Config           `json:"config"`
	Workloads []WorkloadReport `json:"workloads"`
	// Findings not tied to a workload (manifest diagnostics).
	Findings []Finding `json:"findings"`
	// Ignored counts findings suppressed by zerodrop.dev/ignore.
	Ignored int            `json:"ignored"`
	Counts  map[string]int `json:"counts"`
}

// All returns every finding, workload findings first.
func (r *Report) All() []Finding {
	var out []Finding
	for _, w := range r.Workloads {
		out = append(out, w.Findings...)
	}
	return append(out, r.Findings...)
}

// HasErrors reports whether an error-level finding exists.
func (r *Report) HasErrors() bool { return r.Counts["error"] > 0 }

// Run checks a model.
func Run(m *manifest.Model, cfg Config) *Report {
	r := &Report{Config: cfg, Counts: map[string]int{"error": 0, "warning": 0, "note": 0}}
	diagObjects := map[string]*manifest.Meta{}
	for _, w := range m.Workloads {
		wr := checkWorkload(m, w, cfg, &r.Ignored)
		r.Workloads = append(r.Workloads, wr)
		diagObjects[w.Ref()] = &w.Meta
	}
	for _, d := range m.Diagnostics {
		var f Finding
		switch d.Kind {
		case manifest.DiagDuplicate:
			f = newFinding(IDDuplicateObject, d.Object, d.Message, Evidence{Pos: d.Pos, Note: "the definition that is checked"})
			for _, p := range d.Related {
				f.Evidence = append(f.Evidence, Evidence{Pos: p, Note: "an earlier definition, ignored"})
			}
			f.Fix = "check one setup per command (for example zerodrop check -f before.yaml, then -f after.yaml), or rename one of the objects"
		case manifest.DiagIngressClass:
			f = newFinding(IDIngressClass, d.Object, d.Message, Evidence{Pos: d.Pos, Note: "ingress class"})
			f.Fix = fmt.Sprintf("include the IngressClass (spec.controller: %s) with the manifests, or set spec.ingressClassName: alb", manifest.ALBController)
		default:
			f = newFinding(IDManifest, d.Object, d.Message, Evidence{Pos: d.Pos, Note: "rejected or not interpretable"})
			f.Fix = "Correct the value: " + d.Message
		}
		if obj := findMeta(m, d.Object); obj != nil {
			f.objects = append(f.objects, obj)
		}
		if ignored(f) {
			r.Ignored++
			continue
		}
		r.Findings = append(r.Findings, f)
	}
	for _, f := range r.All() {
		r.Counts[f.Severity.String()]++
	}
	return r
}

func findMeta(m *manifest.Model, ref string) *manifest.Meta {
	for _, w := range m.Workloads {
		if w.Ref() == ref {
			return &w.Meta
		}
	}
	for _, x := range m.Ingresses {
		if x.Ref() == ref {
			return &x.Meta
		}
	}
	for _, x := range m.Services {
		if x.Ref() == ref {
			return &x.Meta
		}
	}
	for _, x := range m.TargetGroupBindings {
		if x.Ref() == ref {
			return &x.Meta
		}
	}
	for _, x := range m.Namespaces {
		if x.Ref() == ref {
			return &x.Meta
		}
	}
	return nil
}

func newFinding(id, object, msg string, ev ...Evidence) Finding {
	r := ruleOf(id)
	return Finding{RuleID: r.ID, Rule: r.Name, Severity: r.Severity, Object: object, Message: msg, Evidence: ev, Why: r.Why, Fix: r.Fix}
}

// ignored reports whether an object of the finding lists its rule in
// zerodrop.dev/ignore.
func ignored(f Finding) bool {
	for _, m := range f.objects {
		if m == nil {
			continue
		}
		for _, id := range strings.Split(m.Annotations[AnnotationIgnore], ",") {
			id = strings.TrimSpace(id)
			if strings.EqualFold(id, f.RuleID) || id == f.Rule {
				return true
			}
		}
	}
	return false
}

// secs formats a duration compactly: 10s, 1.5s, 2m0s.
func secs(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// ceilSeconds rounds a duration up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
