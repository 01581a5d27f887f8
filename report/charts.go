package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"zerodrop.dev/zerodrop/results"
)

// Chart is one SVG chart of the HTML report.
type Chart struct {
	// ID names the chart in the page (data-chart attribute).
	ID string
	// Title is the chart's heading.
	Title string
	// SVG is the chart, an <svg> element without XML prologue.
	SVG string
	// Legend lists the legend entries drawn in the chart.
	Legend []string
	// Units are the axis labels, with their units.
	Units []string
	// Caption says how to read the chart.
	Caption string
}

// Okabe–Ito colours: told apart with every common colour-vision
// deficiency, and the dash pattern of each run tells runs apart in print.
func palette(i int) color.Color {
	cs := [...]uint32{0x0072B2, 0xD55E00, 0x009E73, 0xCC79A7, 0xE69F00, 0x56B4E9, 0x000000}
	c := cs[i%len(cs)]
	return color.RGBA{uint8(c >> 16), uint8(c >> 8), uint8(c), 0xff}
}

func runDashes(i int) []vg.Length {
	ds := [][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)}, {vg.Points(8), vg.Points(3), vg.Points(2), vg.Points(3)}}
	return ds[i%len(ds)]
}

// Band colours (translucent over lines) and the event-marker colour.
func bandDisruption() color.NRGBA { return color.NRGBA{0x99, 0x99, 0x99, 0x30} }
func bandPredicted() color.NRGBA  { return color.NRGBA{0xCC, 0x79, 0xA7, 0x60} }
func bandMeasured() color.NRGBA   { return color.NRGBA{0xD5, 0x5E, 0x00, 0x40} }

const (
	chartW = 9 * vg.Inch
	chartH = 3.2 * vg.Inch
)

// timeAxis is the shared x axis: seconds, or minutes for runs over 30 min.
type timeAxis struct {
	div   float64 // milliseconds per unit
	label string
	max   float64 // in units
}

func newTimeAxis(runs []Run) timeAxis {
	var longest int64
	for _, r := range runs {
		longest = max(longest, r.Result.Duration().Milliseconds(), lastOffset(r.Result))
	}
	ta := timeAxis{div: 1000, label: "time since run start (s)"}
	if longest > 30*60*1000 {
		ta = timeAxis{div: 60000, label: "time since run start (min)"}
	}
	ta.max = math.Max(float64(longest)/ta.div, 1)
	return ta
}

func lastOffset(r *results.Result) int64 {
	var m int64
	if n := len(r.Timeline); n > 0 {
		m = r.Timeline[n-1].OffsetMS + r.BucketMS
	}
	return m
}

func (ta timeAxis) x(ms int64) float64 { return float64(ms) / ta.div }

func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	sans := func(s *font.Font, size vg.Length) {
		s.Typeface, s.Variant, s.Size = "Liberation", "Sans", size
	}
	p.Title.Text = title
	sans(&p.Title.TextStyle.Font, 13)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		sans(&ax.Label.TextStyle.Font, 11)
		sans(&ax.Tick.Label.Font, 10)
	}
	sans(&p.Legend.TextStyle.Font, 10)
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(8)
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{0xdd}
	grid.Horizontal.Color = color.Gray{0xdd}
	p.Add(grid)
	return p
}

// render draws p as an SVG element for inlining in HTML.
func render(p *plot.Plot, w, h vg.Length) (string, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", fmt.Errorf("drawing chart %q: %w", p.Title.Text, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("drawing chart %q: %w", p.Title.Text, err)
	}
	s := buf.String()
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	// Text measured with Liberation Sans; where it is missing, a sans
	// serif of similar width rather than the browser's default serif.
	s = strings.ReplaceAll(s, "font-family:Liberation Sans;", "font-family:'Liberation Sans',Arimo,Arial,Helvetica,sans-serif;")
	// Scale with the page: the viewBox keeps the proportions.
	s = strings.Replace(s, "<svg ", `<svg role="img" preserveAspectRatio="xMidYMid meet" `, 1)
	return s, nil
}

func line(xys plotter.XYs, c color.Color, dashes []vg.Length, width float64) *plotter.Line {
	l, err := plotter.NewLine(xys)
	if err != nil {
		// NewLine fails only on NaN or infinite values, which results
		// never holds (Validate).
		l = &plotter.Line{XYs: plotter.XYs{}}
	}
	l.LineStyle = draw.LineStyle{Color: c, Width: vg.Points(width), Dashes: dashes}
	return l
}

func band(x0, x1, y0, y1 float64, c color.Color) *plotter.Polygon {
	pg, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
	if err != nil {
		pg = &plotter.Polygon{}
	}
	pg.Color = c
	pg.LineStyle.Width = 0
	return pg
}

// rateXY turns a run's buckets into a per-second rate of what count picks,
// with zero buckets filled in so lines drop to zero between bursts.
func rateXY(r *results.Result, ta timeAxis, count func(b results.Bucket) float64) plotter.XYs {
	perSec := 1000 / float64(r.BucketMS)
	end := lastOffset(r)
	xys := make(plotter.XYs, 0, len(r.Timeline)+2)
	next := int64(0)
	for _, b := range r.Timeline {
		if b.OffsetMS > next {
			xys = append(xys, plotter.XY{X: ta.x(next), Y: 0})
			if b.OffsetMS-r.BucketMS > next {
				xys = append(xys, plotter.XY{X: ta.x(b.OffsetMS - r.BucketMS), Y: 0})
			}
		}
		xys = append(xys, plotter.XY{X: ta.x(b.OffsetMS), Y: count(b) * perSec})
		next = b.OffsetMS + r.BucketMS
	}
	if next < end {
		xys = append(xys, plotter.XY{X: ta.x(next), Y: 0})
	}
	return xys
}

func total(b results.Bucket) float64 {
	var n int64
	for _, c := range b.Counts {
		n += c
	}
	return float64(n)
}

// failureClass names the chart class of a failed outcome key in a bucket.
func failureClasses(b results.Bucket) map[string]float64 {
	out := map[string]float64{}
	for k, n := range b.Counts {
		if !results.IsError(k) || n == 0 {
			continue
		}
		if !results.IsStatus(k) {
			out["no response: "+k] += float64(n)
			continue
		}
		lb := b.FromLB[k]
		if lb > 0 {
			out["ALB-made "+k] += float64(lb)
		}
		if n-lb > 0 {
			out["target "+k] += float64(n - lb)
		}
	}
	return out
}

// markedEvents are the events drawn as markers: at most maxMarkers per
// run, those that can start a disruption first.
const maxMarkers = 40

// eventRef numbers events for the markers and the event table.
type eventRef struct {
	Ref   string
	Run   string
	RunIx int
	Event results.Event
}

func eventRefs(runs []Run) []eventRef {
	var out []eventRef
	n := 0
	for i, run := range runs {
		evs := append([]results.Event(nil), run.Result.Events...)
		sort.SliceStable(evs, func(a, b int) bool { return evs[a].AtMS < evs[b].AtMS })
		for _, e := range evs {
			n++
			out = append(out, eventRef{Ref: fmt.Sprintf("E%d", n), Run: run.Name, RunIx: i, Event: e})
		}
	}
	return out
}

func markers(refs []eventRef, run int) []eventRef {
	var all, key []eventRef
	for _, r := range refs {
		if r.RunIx != run {
			continue
		}
		all = append(all, r)
		if r.Event.Source != "analyze" && keyKind(r.Event.Kind) {
			key = append(key, r)
		}
	}
	if len(all) <= maxMarkers {
		return all
	}
	if len(key) > maxMarkers {
		key = key[:maxMarkers]
	}
	return key
}

func allMarkers(refs []eventRef, runs int) []eventRef {
	var out []eventRef
	for i := range runs {
		out = append(out, markers(refs, i)...)
	}
	return out
}

func keyKind(kind string) bool {
	switch kind {
	case results.EventScale, results.EventSIGTERM, results.EventKill, results.EventDeregister, results.EventTargetState,
		results.EventNodeDrain, results.EventNodeLost, results.EventWeightChange:
		return true
	}
	return false
}

// addMarkers draws a run's events as thin vertical lines with their
// reference at the top.
func addMarkers(p *plot.Plot, ta timeAxis, refs []eventRef, ymax float64) {
	if len(refs) == 0 {
		return
	}
	// Events of several runs at the same time share one marker.
	refs = append([]eventRef(nil), refs...)
	sort.SliceStable(refs, func(i, j int) bool { return refs[i].Event.AtMS < refs[j].Event.AtMS })
	var merged []eventRef
	for _, r := range refs {
		if n := len(merged); n > 0 && merged[n-1].Event.AtMS == r.Event.AtMS {
			merged[n-1].Ref += "," + r.Ref
			continue
		}
		merged = append(merged, r)
	}
	lbl := plotter.XYLabels{}
	level, prev := 0, math.Inf(-1)
	for _, r := range merged {
		x := ta.x(r.Event.AtMS)
		p.Add(line(plotter.XYs{{X: x, Y: 0}, {X: x, Y: ymax}}, color.Gray{0x44}, []vg.Length{vg.Points(1), vg.Points(2)}, 0.6))
		// Labels of events close together step down so they stay legible.
		if x-prev < ta.max/40 {
			level = (level + 1) % 4
		} else {
			level = 0
		}
		prev = x
		lbl.XYs = append(lbl.XYs, plotter.XY{X: x, Y: ymax * (1 - 0.06*float64(level))})
		lbl.Labels = append(lbl.Labels, r.Ref)
	}
	if labels, err := plotter.NewLabels(lbl); err == nil {
		for i := range labels.TextStyle {
			labels.TextStyle[i].Font.Typeface, labels.TextStyle[i].Font.Variant = "Liberation", "Sans"
			labels.TextStyle[i].Font.Size = 8
			labels.TextStyle[i].Color = color.Gray{0x44}
			labels.TextStyle[i].XAlign = draw.XCenter
		}
		p.Add(labels)
	}
}

// headroom leaves space above the data for the legend in the top left.
func headroom(v float64) float64 {
	if v <= 0 {
		return 1
	}
	return v * 1.35
}

// Charts builds every chart of the report.
func Charts(runs []Run) ([]Chart, error) {
	ta := newTimeAxis(runs)
	refs := eventRefs(runs)
	var out []Chart
	add := func(c Chart, p *plot.Plot, h vg.Length) error {
		svg, err := render(p, chartW, h)
		if err != nil {
			return err
		}
		c.SVG = svg
		c.Units = []string{p.X.Label.Text, p.Y.Label.Text}
		out = append(out, c)
		return nil
	}

	// Requests per second, every run on the same axes.
	p := newPlot("Requests per second", ta.label, "requests/s")
	var peak float64
	var legend []string
	for i, run := range runs {
		xys := rateXY(run.Result, ta, total)
		for _, xy := range xys {
			peak = math.Max(peak, xy.Y)
		}
		l := line(xys, palette(i), runDashes(i), 1.5)
		p.Add(l)
		p.Legend.Add(run.Name, l)
		legend = append(legend, run.Name)
	}
	ymax := headroom(peak)
	drawn := map[[2]int64]bool{}
	for i := range runs {
		for _, m := range runs[i].Result.Marks {
			if k := [2]int64{m.StartMS, m.EndMS}; !drawn[k] {
				drawn[k] = true
				p.Add(band(ta.x(m.StartMS), ta.x(m.EndMS), 0, ymax, bandDisruption()))
			}
		}
	}
	addMarkers(p, ta, allMarkers(refs, len(runs)), ymax*0.97)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, ta.max, 0, ymax
	if err := add(Chart{ID: "requests", Title: "Requests per second", Legend: legend,
		Caption: "All requests by start time, runs on the same axes (line style per run). Grey bands: disruption windows; dotted lines: events (see the event table)."}, p, chartH); err != nil {
		return nil, err
	}

	// Failures per second by class: one chart per run, same axes.
	classPeak := 0.0
	for _, run := range runs {
		for _, b := range run.Result.Timeline {
			var sum float64
			for _, v := range failureClasses(b) {
				sum = math.Max(sum, v)
			}
			classPeak = math.Max(classPeak, sum*1000/float64(run.Result.BucketMS))
		}
	}
	fmax := headroom(math.Max(classPeak, 1))
	for i, run := range runs {
		r := run.Result
		p := newPlot("Failures per second by class: "+run.Name, ta.label, "failed requests/s")
		classes := map[string]bool{}
		for _, b := range r.Timeline {
			for k := range failureClasses(b) {
				classes[k] = true
			}
		}
		names := make([]string, 0, len(classes))
		for k := range classes {
			names = append(names, k)
		}
		sort.Strings(names)
		var legend []string
		for _, m := range r.Marks {
			p.Add(band(ta.x(m.StartMS), ta.x(m.EndMS), 0, fmax, bandDisruption()))
		}
		for _, w := range r.Predicted {
			p.Add(band(ta.x(w.StartMS), ta.x(w.EndMS), fmax*0.5, fmax, bandPredicted()))
		}
		for _, f := range failures(r) {
			p.Add(band(ta.x(f.StartMS), ta.x(f.EndMS), 0, fmax*0.5, bandMeasured()))
		}
		if len(r.Marks) > 0 {
			p.Legend.Add("disruption window", band(0, 0, 0, 0, bandDisruption()))
			legend = append(legend, "disruption window")
		}
		if len(r.Predicted) > 0 {
			p.Legend.Add("predicted failure window (upper half)", band(0, 0, 0, 0, bandPredicted()))
			legend = append(legend, "predicted failure window (upper half)")
		}
		if len(failures(r)) > 0 {
			p.Legend.Add("measured failure window (lower half)", band(0, 0, 0, 0, bandMeasured()))
			legend = append(legend, "measured failure window (lower half)")
		}
		for j, name := range names {
			l := line(rateXY(r, ta, func(b results.Bucket) float64 { return failureClasses(b)[name] }), palette(j+1), runDashes(i), 1.5)
			p.Add(l)
			p.Legend.Add(name, l)
			legend = append(legend, name)
		}
		if len(names) == 0 {
			p.Legend.Add("no failed request", line(nil, color.Gray{0x88}, nil, 1))
			legend = append(legend, "no failed request")
		}
		addMarkers(p, ta, markers(refs, i), fmax*0.97)
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, ta.max, 0, fmax
		if err := add(Chart{ID: fmt.Sprintf("failures-%d", i+1), Title: "Failures per second: " + run.Name, Legend: legend,
			Caption: "Failed requests (5xx and no response) by class; ALB-made codes apart from the targets' own. Same axes for every run."}, p, chartH); err != nil {
			return nil, err
		}
	}

	// Series: healthy targets, targets serving, pods ready, nodes.
	type skey struct{ name, unit string }
	var skeys []skey
	seen := map[skey]bool{}
	for _, run := range runs {
		for _, s := range run.Result.Series {
			k := skey{s.Name, s.Unit}
			if !seen[k] {
				seen[k] = true
				skeys = append(skeys, k)
			}
		}
	}
	for _, k := range skeys {
		p := newPlot(seriesTitle(k.name), ta.label, firstNonEmpty(k.unit, "value"))
		var legend []string
		peak := 0.0
		n := 0
		for i, run := range runs {
			for _, s := range run.Result.Series {
				if s.Name != k.name || s.Unit != k.unit {
					continue
				}
				xys := make(plotter.XYs, 0, len(s.Points)+1)
				for _, pt := range s.Points {
					xys = append(xys, plotter.XY{X: ta.x(pt.AtMS), Y: pt.Value})
					peak = math.Max(peak, pt.Value)
				}
				if len(xys) > 0 {
					xys = append(xys, plotter.XY{X: math.Max(ta.x(lastOffset(run.Result)), xys[len(xys)-1].X), Y: xys[len(xys)-1].Y})
				}
				l := line(xys, palette(n), runDashes(i), 1.5)
				l.StepStyle = plotter.PostStep
				name := run.Name
				if s.Group != "" {
					name += ": " + s.Group
				}
				p.Add(l)
				p.Legend.Add(name, l)
				legend = append(legend, name)
				n++
			}
		}
		ymax := headroom(math.Max(peak, 1))
		if peak <= 12 {
			p.Y.Tick.Marker = integerTicks{}
		}
		addMarkers(p, ta, allMarkers(refs, len(runs)), ymax*0.97)
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, ta.max, 0, ymax
		if err := add(Chart{ID: "series-" + k.name, Title: seriesTitle(k.name), Legend: legend,
			Caption: "Sampled values; each holds until the next sample."}, p, chartH*0.85); err != nil {
			return nil, err
		}
	}

	// Latency p50 and p99 per bucket.
	p = newPlot("Latency per second (p50 and p99)", ta.label, "latency (ms, log scale)")
	legend = nil
	lo, hi := math.Inf(1), 0.0
	for i, run := range runs {
		for j, q := range []struct {
			name string
			get  func(l results.Latency) float64
		}{{"p50", func(l results.Latency) float64 { return l.P50MS }}, {"p99", func(l results.Latency) float64 { return l.P99MS }}} {
			var xys plotter.XYs
			for _, b := range run.Result.Timeline {
				v := q.get(b.Latency)
				if b.Latency.Count == 0 || v <= 0 {
					continue
				}
				xys = append(xys, plotter.XY{X: ta.x(b.OffsetMS), Y: v})
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			if len(xys) == 0 {
				continue
			}
			l := line(xys, palette(j), runDashes(i), 1.2)
			name := q.name + " " + run.Name
			p.Add(l)
			p.Legend.Add(name, l)
			legend = append(legend, name)
		}
	}
	if hi > 0 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = math.Pow(10, math.Floor(math.Log10(lo))), hi*20
	} else {
		p.Legend.Add("no latency recorded", line(nil, color.Gray{0x88}, nil, 1))
		legend = append(legend, "no latency recorded")
		p.Y.Min, p.Y.Max = 0, 1
	}
	p.X.Min, p.X.Max = 0, ta.max
	if err := add(Chart{ID: "latency", Title: "Latency per second", Legend: legend,
		Caption: "Per-bucket p50 and p99 of the requests that started in the bucket (load: client side; analyze: the ALB's processing times)."}, p, chartH); err != nil {
		return nil, err
	}

	// Windows: disruption, predicted and measured failure windows per run.
	p = newPlot("Disruption, predicted and measured failure windows", ta.label, "")
	var rows []string
	legend = []string{"disruption window", "predicted failure window", "measured failure window"}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i].Result
		// One row per kind of window the run has; measured always, so a
		// run without failures shows an empty row.
		kinds := []struct {
			name string
			wins [][2]int64
			c    color.NRGBA
		}{{name: "measured", c: opaque(bandMeasured())}, {name: "predicted", c: opaque(bandPredicted())}, {name: "disruption", c: opaque(bandDisruption())}}
		for _, f := range failures(r) {
			kinds[0].wins = append(kinds[0].wins, [2]int64{f.StartMS, f.EndMS})
		}
		for _, w := range r.Predicted {
			kinds[1].wins = append(kinds[1].wins, [2]int64{w.StartMS, w.EndMS})
		}
		for _, m := range r.Marks {
			kinds[2].wins = append(kinds[2].wins, [2]int64{m.StartMS, m.EndMS})
		}
		for j, k := range kinds {
			if j > 0 && len(k.wins) == 0 {
				continue
			}
			y := float64(len(rows))
			rows = append(rows, runs[i].Name+": "+k.name)
			for _, w := range k.wins {
				p.Add(band(ta.x(w[0]), math.Max(ta.x(w[1]), ta.x(w[0])+ta.max/400), y-0.35, y+0.35, k.c))
			}
		}
	}
	p.Legend.Add(legend[0], band(0, 0, 0, 0, opaque(bandDisruption())))
	p.Legend.Add(legend[1], band(0, 0, 0, 0, opaque(bandPredicted())))
	p.Legend.Add(legend[2], band(0, 0, 0, 0, opaque(bandMeasured())))
	p.Legend.Top, p.Legend.Left = true, false
	p.NominalY(rows...)
	p.Y.Min, p.Y.Max = -0.6, float64(len(rows))+0.8
	p.X.Min, p.X.Max = 0, ta.max
	if err := add(Chart{ID: "windows", Title: "Failure windows: predicted vs measured", Legend: legend,
		Caption: "One row per run and kind of window: disruption windows (marks), windows a static analysis predicted, and windows in which failures clustered."}, p, vg.Length(1.2+0.45*float64(len(rows)))*vg.Inch); err != nil {
		return nil, err
	}
	return out, nil
}

// opaque is c as it looks over white, at full alpha.
func opaque(c color.NRGBA) color.NRGBA {
	a := float64(c.A) / 255
	mix := func(v uint8) uint8 { return uint8(float64(v)*a + 255*(1-a)) }
	return color.NRGBA{mix(c.R), mix(c.G), mix(c.B), 0xff}
}

func seriesTitle(name string) string {
	switch name {
	case results.SeriesHealthyTargets:
		return "Healthy targets per target group"
	case results.SeriesPodsReady:
		return "Pods ready"
	case results.SeriesNodes:
		return "Nodes"
	case "targets-serving":
		return "Targets receiving requests per target group"
	}
	return name
}

// integerTicks labels every whole number: counts of targets, pods, nodes.
type integerTicks struct{}

// Ticks implements plot.Ticker.
func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for v := math.Ceil(lo); v <= hi; v++ {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return ts
}

// plainTicks are gonum's default ticks labelled without trailing zeros
// ("250", not "250.00").
type plainTicks struct{}

// Ticks implements plot.Ticker.
func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(math.Round(ts[i].Value*1e6)/1e6, 'f', -1, 64)
		}
	}
	return ts
}
