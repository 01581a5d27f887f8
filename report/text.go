package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"zerodrop.dev/zerodrop/results"
)

// TextOptions tune WriteText.
type TextOptions struct {
	// Width is the number of columns of a sparkline (default 60).
	Width int
	// Color marks failures in red on a terminal.
	Color bool
}

// sparkBlocks are the sparkline's levels; a column without failures is a
// space, so the smallest failure still shows.
const sparkBlocks = "▁▂▃▄▅▆▇█"

// WriteText writes the comparison table, then per run a sparkline of
// failures over time (one scale for every run, so heights compare), its
// failure windows with targets and likely cause, and its disruption and
// predicted windows.
func WriteText(w io.Writer, runs []Run, o TextOptions) error {
	if o.Width <= 0 {
		o.Width = 60
	}
	bw := bufio.NewWriter(w)
	writeTable(bw, runs)
	fmt.Fprintln(bw)
	lines := make([][]int64, len(runs))
	var peak int64
	for i, run := range runs {
		lines[i] = failureColumns(run.Result, o.Width)
		for _, v := range lines[i] {
			peak = max(peak, v)
		}
	}
	nameW := 0
	for _, run := range runs {
		nameW = max(nameW, utf8.RuneCountInString(run.Name))
	}
	fmt.Fprintf(bw, "failures over time (each column %s of the run; tallest = %d failures):\n", "1/"+fmt.Sprint(o.Width), peak)
	for i, run := range runs {
		spark := sparkline(lines[i], peak)
		if o.Color {
			spark = "\x1b[31m" + spark + "\x1b[0m"
		}
		fmt.Fprintf(bw, "  %-*s |%s| %s\n", nameW, run.Name, spark, run.Result.Duration().Round(1e9))
	}
	for _, run := range runs {
		writeWindows(bw, run)
	}
	return bw.Flush()
}

func writeTable(bw *bufio.Writer, runs []Run) {
	rows := Table(runs)
	labelW := 0
	for _, r := range rows {
		labelW = max(labelW, utf8.RuneCountInString(r.Label))
	}
	colW := make([]int, len(runs))
	for i, run := range runs {
		colW[i] = utf8.RuneCountInString(run.Name)
	}
	for _, r := range rows {
		for i, c := range r.Cells {
			colW[i] = max(colW[i], utf8.RuneCountInString(c))
		}
	}
	pad := func(s string, n int) string { return strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s))) + s }
	fmt.Fprintf(bw, "%-*s", labelW, "")
	for i, run := range runs {
		fmt.Fprintf(bw, "  %s", pad(run.Name, colW[i]))
	}
	fmt.Fprintln(bw)
	for _, r := range rows {
		if r.Head {
			fmt.Fprintf(bw, "%s\n", r.Label+":")
			continue
		}
		fmt.Fprintf(bw, "  %-*s", labelW-2, r.Label)
		for i, c := range r.Cells {
			fmt.Fprintf(bw, "  %s", pad(c, colW[i]))
		}
		fmt.Fprintln(bw)
	}
}

// failureColumns spreads a run's failed requests over width columns by
// time.
func failureColumns(r *results.Result, width int) []int64 {
	cols := make([]int64, width)
	span := max(r.Duration().Milliseconds(), r.BucketMS)
	for _, b := range r.Timeline {
		var errs int64
		for k, n := range b.Counts {
			if results.IsError(k) {
				errs += n
			}
		}
		if errs == 0 {
			continue
		}
		c := int(b.OffsetMS * int64(width) / span)
		cols[min(max(c, 0), width-1)] += errs
	}
	return cols
}

func sparkline(cols []int64, peak int64) string {
	blocks := []rune(sparkBlocks)
	var sb strings.Builder
	for _, v := range cols {
		if v == 0 || peak == 0 {
			sb.WriteByte(' ')
			continue
		}
		lvl := int((v*int64(len(blocks)) - 1) / peak)
		sb.WriteRune(blocks[min(max(lvl, 0), len(blocks)-1)])
	}
	return sb.String()
}

func writeWindows(bw *bufio.Writer, run Run) {
	r := run.Result
	fs := failures(r)
	if len(fs) == 0 && len(r.Marks) == 0 && len(r.Predicted) == 0 {
		return
	}
	fmt.Fprintf(bw, "\n%s:\n", run.Name)
	for _, m := range r.Marks {
		fmt.Fprintf(bw, "  disruption %-18s %s..%s  %d requests, %d errors (%s)\n", m.Name, offsetText(m.StartMS), offsetText(m.EndMS), m.Totals.Requests, m.Totals.Errors, pct(m.Totals.ErrorRate))
	}
	for _, p := range r.Predicted {
		fmt.Fprintf(bw, "  predicted  %s..%s  %s %s\n", offsetText(p.StartMS), offsetText(p.EndMS), p.Rule, firstNonEmpty(p.Reason, p.Name))
	}
	const maxShown = 10
	for i, f := range fs {
		if i == maxShown {
			fmt.Fprintf(bw, "  ... %d more failure windows\n", len(fs)-maxShown)
			break
		}
		fmt.Fprintf(bw, "  failures   %s..%s  %d of %d requests failed (%s): %s", offsetText(f.StartMS), offsetText(f.EndMS), f.Totals.Errors, f.Totals.Requests, pct(f.Totals.ErrorRate), Mix(f.Totals))
		if len(f.Targets) > 0 {
			t := f.Targets
			more := ""
			if len(t) > 4 {
				t, more = t[:4], fmt.Sprintf(" +%d", len(f.Targets)-4)
			}
			fmt.Fprintf(bw, "; targets %s%s", strings.Join(t, ", "), more)
		}
		fmt.Fprintln(bw)
		if c := explain(r, f); c != "" {
			fmt.Fprintf(bw, "             likely cause: %s\n", c)
		}
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
