package check

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/manifest"
)

// TextOptions control the text output.
type TextOptions struct {
	// Color adds ANSI colours (use it only on a terminal).
	Color bool
	// Explain adds each rule's why and fix text under its findings.
	Explain bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
)

// WriteText writes the report for people, grouped by workload.
func (r *Report) WriteText(w io.Writer, opt TextOptions) error {
	tw := &textWriter{w: w, color: opt.Color}
	paint := func(code, s string) string {
		if !opt.Color {
			return s
		}
		return code + s + ansiReset
	}
	sev := func(s Severity) string {
		switch s {
		case Error:
			return paint(ansiRed+ansiBold, "error  ")
		case Warning:
			return paint(ansiYellow, "warning")
		default:
			return paint(ansiCyan, "note   ")
		}
	}
	finding := func(f Finding, indent string) {
		tw.printf("%s%s %s %s\n", indent, sev(f.Severity), paint(ansiBold, f.RuleID), f.Message)
		for _, e := range f.Evidence {
			if e.Pos.File == "" {
				tw.printf("%s          %s\n", indent, paint(ansiDim, e.Note))
				continue
			}
			tw.printf("%s          at %s: %s\n", indent, e.Pos.String(), e.Note)
		}
		if opt.Explain {
			tw.printf("%s          why: %s\n", indent, f.Why)
		}
		tw.printf("%s          fix: %s\n", indent, f.Fix)
	}
	timeline := func(title string, t *Timeline) {
		if t == nil {
			return
		}
		tw.printf("  %s:\n", title)
		for _, e := range t.Events {
			tw.printf("    %8s  %s\n", fmtAt(e.At), e.What)
		}
		if len(t.Windows) == 0 {
			tw.printf("    %s\n", paint(ansiDim, "no window in which requests fail"))
		}
		for _, win := range t.Windows {
			label := paint(ansiRed, "!! requests fail ")
			if win.Risk {
				label = paint(ansiYellow, "!  at risk       ")
			}
			tw.printf("    %s %s–%s: %s\n", label, fmtAt(win.From), fmtAt(win.To), win.Why)
		}
	}
	tw.printf("zerodrop check: deregistration propagation %s, longest request %s, weight-change lag %s\n\n",
		secs(r.Config.DeregistrationPropagation), secs(r.Config.MaxRequestDuration), secs(r.Config.WeightChangeLag))
	for _, wr := range r.Workloads {
		tw.printf("%s  %s\n", paint(ansiBold, wr.Object), paint(ansiDim, wr.Pos.File+":"+fmt.Sprint(wr.Pos.Line)))
		if !wr.Served && wr.Container == "" {
			tw.printf("  not behind a Service, Ingress or TargetGroupBinding and listens on no port: not checked\n\n")
			continue
		}
		if !wr.Served {
			tw.printf("  no Service, Ingress or TargetGroupBinding among the manifests routes to it: only the rules that need no load balancer ran\n")
		}
		for _, rt := range wr.Routes {
			tw.printf("  routed by %s\n", rt)
		}
		if wr.Container != "" {
			tw.printf("  serving container: %s\n", wr.Container)
		}
		timeline("termination timeline (from delete)", wr.Termination)
		if wr.Served {
			timeline("startup timeline (from container start)", wr.Startup)
		}
		if len(wr.Containers) > 0 {
			tw.printf("  every container (from delete):\n")
			for _, c := range wr.Containers {
				kind := "container"
				if c.Sidecar {
					kind = "sidecar  "
				}
				hook := ""
				switch {
				case c.HookFails:
					hook = " (preStop fails)"
				case !c.HookKnown:
					hook = " (preStop duration unknown)"
				}
				if c.Sidecar {
					hook += ", its turn " + fmtAt(c.Turn)
				}
				tw.printf("    %s %-14s preStop %s%s, SIGTERM %s, stops accepting %s, gone by %s\n", kind, c.Name, fmtAt(c.PreStopStart), hook, fmtAt(c.SIGTERM), fmtAt(c.StopsAccepting), fmtAt(c.Exit))
			}
		}
		if len(wr.Findings) == 0 {
			tw.printf("  %s\n", paint(ansiDim, "no findings"))
		} else {
			tw.printf("  findings:\n")
		}
		for _, f := range wr.Findings {
			finding(f, "    ")
		}
		tw.printf("\n")
	}
	if len(r.Findings) > 0 {
		tw.printf("%s\n", paint(ansiBold, "manifests"))
		for _, f := range r.Findings {
			finding(f, "    ")
		}
		tw.printf("\n")
	}
	tw.printf("%d error(s), %d warning(s), %d note(s)", r.Counts["error"], r.Counts["warning"], r.Counts["note"])
	if r.Ignored > 0 {
		tw.printf(", %d ignored by %s", r.Ignored, AnnotationIgnore)
	}
	tw.printf("\n")
	return tw.err
}

func fmtAt(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

type textWriter struct {
	w     io.Writer
	color bool
	err   error
}

func (t *textWriter) printf(format string, args ...any) {
	if t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.w, format, args...)
}

// JSONVersion names the schema of WriteJSON's output. v2 writes every
// duration as Kubernetes does ("30s", "1m30s"); v1 wrote nanoseconds.
const JSONVersion = "zerodrop.check/v2"

// dur is a duration written as Kubernetes writes one: "30s", "1m30s".
type dur time.Duration

func (d dur) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

type jsonReport struct {
	Version   string         `json:"version"`
	Config    jsonConfig     `json:"config"`
	Workloads []jsonWorkload `json:"workloads"`
	Findings  []Finding      `json:"findings"`
	Ignored   int            `json:"ignored"`
	Counts    map[string]int `json:"counts"`
}

type jsonConfig struct {
	DeregistrationPropagation dur `json:"deregistrationPropagation"`
	MaxRequestDuration        dur `json:"maxRequestDuration"`
	WeightChangeLag           dur `json:"weightChangeLag"`
	DetectionGap              dur `json:"detectionGap"`
}

type jsonWorkload struct {
	Object      string          `json:"object"`
	Pos         manifest.Pos    `json:"pos"`
	Routes      []string        `json:"routes,omitempty"`
	Container   string          `json:"container,omitempty"`
	Termination *jsonTimeline   `json:"termination,omitempty"`
	Startup     *jsonTimeline   `json:"startup,omitempty"`
	Containers  []jsonContainer `json:"containers,omitempty"`
	Findings    []Finding       `json:"findings"`
	Served      bool            `json:"served"`
}

type jsonTimeline struct {
	Events  []jsonEvent  `json:"events"`
	Windows []jsonWindow `json:"windows,omitempty"`
}

type jsonEvent struct {
	At   dur    `json:"at"`
	What string `json:"what"`
}

type jsonWindow struct {
	From dur    `json:"from"`
	To   dur    `json:"to"`
	Why  string `json:"why"`
	Risk bool   `json:"risk,omitempty"`
}

type jsonContainer struct {
	Name           string `json:"name"`
	Sidecar        bool   `json:"sidecar,omitempty"`
	PreStopStart   dur    `json:"preStopStart"`
	HookKnown      bool   `json:"hookKnown"`
	HookFails      bool   `json:"hookFails,omitempty"`
	Turn           dur    `json:"turn,omitempty"`
	SIGTERM        dur    `json:"sigterm"`
	StopsAccepting dur    `json:"stopsAccepting"`
	Exit           dur    `json:"exit"`
	Kill           dur    `json:"kill"`
}

func toJSONTimeline(t *Timeline) *jsonTimeline {
	if t == nil {
		return nil
	}
	out := &jsonTimeline{Events: []jsonEvent{}}
	for _, e := range t.Events {
		out.Events = append(out.Events, jsonEvent{At: dur(e.At), What: e.What})
	}
	for _, w := range t.Windows {
		out.Windows = append(out.Windows, jsonWindow{From: dur(w.From), To: dur(w.To), Why: w.Why, Risk: w.Risk})
	}
	return out
}

// WriteJSON writes the report as indented JSON (schema JSONVersion), with
// durations as Kubernetes writes them ("30s").
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{Version: JSONVersion, Findings: r.Findings, Ignored: r.Ignored, Counts: r.Counts, Workloads: []jsonWorkload{},
		Config: jsonConfig{dur(r.Config.DeregistrationPropagation), dur(r.Config.MaxRequestDuration), dur(r.Config.WeightChangeLag), dur(r.Config.DetectionGap)}}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	for _, wr := range r.Workloads {
		jw := jsonWorkload{Object: wr.Object, Pos: wr.Pos, Routes: wr.Routes, Container: wr.Container, Findings: wr.Findings, Served: wr.Served,
			Termination: toJSONTimeline(wr.Termination), Startup: toJSONTimeline(wr.Startup)}
		for _, c := range wr.Containers {
			jw.Containers = append(jw.Containers, jsonContainer{Name: c.Name, Sidecar: c.Sidecar, PreStopStart: dur(c.PreStopStart), HookKnown: c.HookKnown, HookFails: c.HookFails, Turn: dur(c.Turn),
				SIGTERM: dur(c.SIGTERM), StopsAccepting: dur(c.StopsAccepting), Exit: dur(c.Exit), Kill: dur(c.Kill)})
		}
		out.Workloads = append(out.Workloads, jw)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing JSON report: %w", err)
	}
	return nil
}

// SARIF 2.1.0 types (the subset code scanning reads).
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string        `json:"id"`
	Name                 string        `json:"name"`
	ShortDescription     sarifText     `json:"shortDescription"`
	FullDescription      sarifText     `json:"fullDescription"`
	Help                 sarifText     `json:"help"`
	DefaultConfiguration sarifRuleConf `json:"defaultConfiguration"`
}

type sarifRuleConf struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

const kustomizeSuffix = " (kustomize build)"

// sarifLocationOf maps a position to a SARIF location: file paths become
// slash-separated URIs; a kustomize build points at its kustomization.yaml
// without a line (the lines belong to the built output).
func sarifLocationOf(p manifest.Pos) sarifLocation {
	uri, line := p.File, p.Line
	switch {
	case strings.HasSuffix(uri, kustomizeSuffix):
		uri = filepath.Join(strings.TrimSuffix(uri, kustomizeSuffix), "kustomization.yaml")
		line = 0
	case uri == "<stdin>" || uri == "":
		uri = "stdin"
	}
	uri = filepath.ToSlash(filepath.Clean(uri))
	uri = strings.TrimPrefix(uri, "./")
	loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: uri}}}
	if line > 0 {
		loc.PhysicalLocation.Region = &sarifRegion{StartLine: line}
	}
	return loc
}

// WriteSARIF writes the report as SARIF 2.1.0 for code scanning.
func (r *Report) WriteSARIF(w io.Writer) error {
	rules := Rules()
	index := map[string]int{}
	driver := sarifDriver{Name: "zerodrop", InformationURI: "https://zerodrop.dev/docs/check"}
	for i, rule := range rules {
		index[rule.ID] = i
		driver.Rules = append(driver.Rules, sarifRule{
			ID:                   rule.ID,
			Name:                 rule.Name,
			ShortDescription:     sarifText{Text: rule.Summary},
			FullDescription:      sarifText{Text: rule.Why},
			Help:                 sarifText{Text: "Why: " + rule.Why + "\nFix: " + rule.Fix, Markdown: "**Why.** " + rule.Why + "\n\n**Fix.** " + rule.Fix},
			DefaultConfiguration: sarifRuleConf{Level: rule.Severity.String()},
		})
	}
	run := sarifRun{Tool: sarifTool{Driver: driver}, Results: []sarifResult{}}
	for _, f := range r.All() {
		res := sarifResult{RuleID: f.RuleID, RuleIndex: index[f.RuleID], Level: f.Severity.String(),
			Message: sarifText{Text: f.Object + ": " + f.Message + ". Fix: " + f.Fix}}
		for _, e := range f.Evidence {
			if e.Pos.File == "" {
				continue
			}
			res.Locations = append(res.Locations, sarifLocationOf(e.Pos))
			break // the primary location; the rest is in the message
		}
		if len(res.Locations) == 0 {
			res.Locations = []sarifLocation{}
		}
		run.Results = append(run.Results, res)
	}
	log := sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(log); err != nil {
		return fmt.Errorf("writing SARIF report: %w", err)
	}
	return nil
}
