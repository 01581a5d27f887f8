package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// HTMLOptions tune WriteHTML.
type HTMLOptions struct {
	// Title heads the page (default "zerodrop report").
	Title string
	// Generated is the time printed as the report's date (default now).
	Generated time.Time
}

// maxEventRows bounds the event table; the markers carry refs into it.
const maxEventRows = 500

type htmlRun struct {
	Name, Source, Workload, Start, Duration, Targets string
	Config                                           [][2]string
}

type htmlFailure struct {
	Run, Start, End, Requests, Errors, Rate, Mix, Targets, Cause string
}

type htmlPredicted struct {
	Run, Start, End, Rule, Reason, Measured string
}

type htmlEvent struct {
	Ref, Run, At, Source, Kind, Object, Message string
}

type htmlPage struct {
	Title, Generated string
	Runs             []htmlRun
	Names            []string
	Rows             []Row
	Charts           []htmlChart
	Failures         []htmlFailure
	Predicted        []htmlPredicted
	Events           []htmlEvent
	EventsCut        int
	NoSeries         bool
}

type htmlChart struct {
	Chart
	SVGHTML template.HTML
}

// WriteHTML writes the report as one self-contained HTML file: inline CSS
// and inline SVG charts, no script, nothing fetched from the network.
func WriteHTML(w io.Writer, runs []Run, o HTMLOptions) error {
	if len(runs) == 0 {
		return fmt.Errorf("writing HTML report: no runs")
	}
	if o.Title == "" {
		o.Title = "zerodrop report"
	}
	if o.Generated.IsZero() {
		o.Generated = time.Now()
	}
	charts, err := Charts(runs)
	if err != nil {
		return fmt.Errorf("writing HTML report: %w", err)
	}
	page := htmlPage{Title: o.Title, Generated: o.Generated.UTC().Format(time.RFC3339), Rows: Table(runs), NoSeries: true}
	for _, c := range charts {
		// The SVG comes from gonum/plot, which escapes every text it draws.
		page.Charts = append(page.Charts, htmlChart{Chart: c, SVGHTML: template.HTML(c.SVG)})
		if strings.HasPrefix(c.ID, "series-") {
			page.NoSeries = false
		}
	}
	for _, run := range runs {
		r := run.Result
		page.Names = append(page.Names, run.Name)
		hr := htmlRun{
			Name: run.Name, Source: string(r.Source), Workload: r.Meta.Workload,
			Start: r.Meta.Start.UTC().Format(time.RFC3339), Duration: r.Duration().Round(time.Millisecond).String(),
			Targets: strings.Join(r.Meta.Targets, ", "),
		}
		hr.Config = append(hr.Config, [2]string{"tool", strings.TrimSpace(r.Meta.Tool + " " + r.Meta.Version)})
		if r.Meta.Model != "" {
			hr.Config = append(hr.Config, [2]string{"model", r.Meta.Model})
		}
		hr.Config = append(hr.Config, [2]string{"bucket", (time.Duration(r.BucketMS) * time.Millisecond).String()})
		for _, k := range sortedKeys(r.Meta.Labels) {
			hr.Config = append(hr.Config, [2]string{"label " + k, r.Meta.Labels[k]})
		}
		for _, k := range sortedKeys(r.Config) {
			hr.Config = append(hr.Config, [2]string{k, r.Config[k]})
		}
		page.Runs = append(page.Runs, hr)
		fs := failures(r)
		for _, f := range fs {
			page.Failures = append(page.Failures, htmlFailure{
				Run: run.Name, Start: offsetText(f.StartMS), End: offsetText(f.EndMS),
				Requests: fmt.Sprint(f.Totals.Requests), Errors: fmt.Sprint(f.Totals.Errors), Rate: pct(f.Totals.ErrorRate),
				Mix: Mix(f.Totals), Targets: targetList(f.Targets, 10), Cause: explain(r, f),
			})
		}
		for _, p := range r.Predicted {
			page.Predicted = append(page.Predicted, htmlPredicted{
				Run: run.Name, Start: offsetText(p.StartMS), End: offsetText(p.EndMS),
				Rule: p.Rule, Reason: firstNonEmpty(p.Reason, p.Name), Measured: overlap(p, fs),
			})
		}
	}
	for _, ref := range eventRefs(runs) {
		if len(page.Events) == maxEventRows {
			page.EventsCut++
			continue
		}
		e := ref.Event
		page.Events = append(page.Events, htmlEvent{
			Ref: ref.Ref, Run: ref.Run, At: offsetText(e.AtMS), Source: e.Source, Kind: e.Kind, Object: e.Object, Message: e.Message,
		})
	}
	tmpl, err := template.New("report").Funcs(template.FuncMap{"inc": func(n int) int { return n + 1 }}).Parse(pageTemplate)
	if err != nil {
		return fmt.Errorf("writing HTML report: %w", err)
	}
	if err := tmpl.Execute(w, page); err != nil {
		return fmt.Errorf("writing HTML report: %w", err)
	}
	return nil
}

// overlap says how a predicted window met the measured ones.
func overlap(p results.Window, fs []results.Failure) string {
	var hit []string
	for _, f := range fs {
		if f.StartMS < p.EndMS && f.EndMS > p.StartMS {
			hit = append(hit, offsetText(f.StartMS)+".."+offsetText(f.EndMS))
		}
	}
	if len(hit) == 0 {
		return "no failures measured in it"
	}
	return "failures measured at " + strings.Join(hit, ", ")
}

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { color-scheme: light; }
body { font-family: "Liberation Sans", "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 1.5rem auto; max-width: 72rem; padding: 0 1rem; color: #111; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; }
p.meta { color: #444; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
th, td { border: 1px solid #bbb; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.head td { background: #f7f7f7; font-weight: bold; }
figure { margin: 1rem 0 1.5rem; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 0.9rem; color: #333; margin-top: 0.3rem; }
.runs { display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1rem; }
.note { color: #555; font-style: italic; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { break-inside: auto; }
  tr { break-inside: avoid; }
}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">{{len .Runs}} run(s): {{range $i, $n := .Names}}{{if $i}}, {{end}}<strong>{{$n}}</strong>{{end}} · generated {{.Generated}} by zerodrop report</p>

<h2 id="comparison">Comparison</h2>
<table data-table="comparison">
<thead><tr><th></th>{{range .Names}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}{{if .Head}}<tr class="head"><td colspan="{{len $.Names | inc}}">{{.Label}}</td></tr>
{{else}}<tr><td>{{.Label}}</td>{{range .Cells}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}{{end}}</tbody>
</table>

<h2 id="charts">Charts</h2>
{{range .Charts}}<figure data-chart="{{.ID}}" data-legend="{{range $i, $l := .Legend}}{{if $i}}|{{end}}{{$l}}{{end}}">
{{.SVGHTML}}
<figcaption><strong>{{.Title}}.</strong> {{.Caption}}</figcaption>
</figure>
{{end}}{{if .NoSeries}}<p class="note" data-note="no-series">No run carries sampled series (healthy targets, pods ready, nodes): lab runs record them; analyze records the targets receiving requests.</p>
{{end}}
<h2 id="failure-windows">Failure windows</h2>
{{if .Failures}}<table data-table="failures">
<thead><tr><th>run</th><th>from</th><th>to</th><th>requests</th><th>failed</th><th>rate</th><th>what failed</th><th>targets</th><th>likely cause</th></tr></thead>
<tbody>
{{range .Failures}}<tr><td>{{.Run}}</td><td class="num">{{.Start}}</td><td class="num">{{.End}}</td><td class="num">{{.Requests}}</td><td class="num">{{.Errors}}</td><td class="num">{{.Rate}}</td><td>{{.Mix}}</td><td>{{.Targets}}</td><td>{{.Cause}}</td></tr>
{{end}}</tbody>
</table>
{{else}}<p class="note">No failed request in any run.</p>
{{end}}
<h2 id="predicted">Predicted vs measured</h2>
{{if .Predicted}}<table data-table="predicted">
<thead><tr><th>run</th><th>from</th><th>to</th><th>rule</th><th>why requests fail</th><th>measured</th></tr></thead>
<tbody>
{{range .Predicted}}<tr><td>{{.Run}}</td><td class="num">{{.Start}}</td><td class="num">{{.End}}</td><td>{{.Rule}}</td><td>{{.Reason}}</td><td>{{.Measured}}</td></tr>
{{end}}</tbody>
</table>
{{else}}<p class="note">No run carries predicted windows (the lab adds those of zerodrop check).</p>
{{end}}
<h2 id="events">Event timeline</h2>
{{if .Events}}<table data-table="events">
<thead><tr><th>ref</th><th>run</th><th>at</th><th>source</th><th>kind</th><th>object</th><th>what happened</th></tr></thead>
<tbody>
{{range .Events}}<tr><td>{{.Ref}}</td><td>{{.Run}}</td><td class="num">{{.At}}</td><td>{{.Source}}</td><td>{{.Kind}}</td><td>{{.Object}}</td><td>{{.Message}}</td></tr>
{{end}}</tbody>
</table>
{{if .EventsCut}}<p class="note">{{.EventsCut}} more events not shown.</p>{{end}}
{{else}}<p class="note">No events in these runs.</p>
{{end}}
<h2 id="configuration">Configuration</h2>
<div class="runs">
{{range .Runs}}<table data-table="config">
<thead><tr><th colspan="2">{{.Name}}</th></tr></thead>
<tbody>
<tr><td>source</td><td>{{.Source}}</td></tr>
{{if .Workload}}<tr><td>workload</td><td>{{.Workload}}</td></tr>{{end}}
<tr><td>start</td><td>{{.Start}}</td></tr>
<tr><td>duration</td><td>{{.Duration}}</td></tr>
{{if .Targets}}<tr><td>targets</td><td>{{.Targets}}</td></tr>{{end}}
{{range .Config}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>
{{end}}</tbody>
</table>
{{end}}</div>
</body>
</html>
`

// targetList joins the first n targets and says how many more there are.
func targetList(ts []string, n int) string {
	if len(ts) <= n {
		return strings.Join(ts, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ts[:n], ", "), len(ts)-n)
}
