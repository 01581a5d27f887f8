package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"zerodrop.dev/zerodrop/accesslog"
	"zerodrop.dev/zerodrop/report"
	"zerodrop.dev/zerodrop/results"
)

// CLIOptions are the command line of zerodrop analyze.
type CLIOptions struct {
	// Paths are access-log files, directories (S3 layout) or "-" (stdin).
	Paths []string
	// Events is a file of Kubernetes events (kubectl get events -o json).
	Events string
	// Bucket, Gap and Lead are Options'.
	Bucket, Gap, Lead time.Duration
	// Output is text (default) or json (the result on stdout).
	Output string
	// Out writes the result as JSON to this file (for zerodrop report).
	Out string
	// HTML writes the HTML report of the result to this file.
	HTML string
	// Version is written into the result.
	Version string
	// TTY makes progress one line rewritten in place; otherwise progress is
	// plain lines at most every few seconds.
	TTY bool
	// Stdin, Stdout and Stderr are the process's streams.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// UsageError is a bad command line or unreadable input: exit 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// IsUsage reports whether err is a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

func usage(format string, args ...any) error {
	return &UsageError{fmt.Errorf("analyze: "+format, args...)}
}

// Main runs zerodrop analyze: reads the logs (and events), writes the
// summary, the result and the HTML report.
func Main(ctx context.Context, o CLIOptions) error {
	if len(o.Paths) == 0 {
		return usage("give access-log files, directories or - for stdin")
	}
	switch o.Output {
	case "", "text", "json":
	default:
		return usage("flag -o: %q is not text or json", o.Output)
	}
	for name, d := range map[string]time.Duration{"--bucket": o.Bucket, "--gap": o.Gap, "--lead": o.Lead} {
		if d < 0 || name == "--bucket" && d > 0 && d < time.Millisecond {
			return usage("flag %s: %v is not a positive duration of at least 1ms", name, d)
		}
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	files, err := accesslog.Files(o.Paths)
	if err != nil {
		return &UsageError{fmt.Errorf("analyze: %w", err)}
	}
	var events []TimedEvent
	if o.Events != "" {
		f, err := os.Open(o.Events)
		if err != nil {
			return usage("flag --events: %w", err)
		}
		events, err = ReadKubeEvents(f)
		f.Close()
		if err != nil {
			return usage("flag --events: %s: %w", o.Events, err)
		}
	}
	prog := &progress{w: o.Stderr, tty: o.TTY, n: len(files)}
	ro := accesslog.ReadOptions{Stdin: o.Stdin, OnFile: prog.file}
	sum, err := Files(ctx, files, events, Options{Bucket: o.Bucket, Gap: o.Gap, Lead: o.Lead, Version: o.Version}, ro)
	if sum != nil {
		prog.done(sum.Stats)
	}
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	r := sum.Result
	if r == nil {
		return &UsageError{fmt.Errorf("analyze: no access-log entry in %d file(s) (%d malformed lines)", sum.Stats.Files, sum.Stats.Bad)}
	}
	if o.Out != "" {
		if err := writeFile(o.Out, func(w io.Writer) error { return results.Encode(w, r) }); err != nil {
			return err
		}
	}
	run := []report.Run{{Name: "access logs", Result: r}}
	if o.HTML != "" {
		if err := writeFile(o.HTML, func(w io.Writer) error {
			return report.WriteHTML(w, run, report.HTMLOptions{Title: "zerodrop analyze"})
		}); err != nil {
			return err
		}
	}
	if o.Output == "json" {
		return results.Encode(o.Stdout, r)
	}
	return writeSummary(o.Stdout, sum, run)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("analyze: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("analyze: writing %s: %w", path, err)
	}
	return nil
}

func writeSummary(w io.Writer, sum *Summary, run []report.Run) error {
	r := sum.Result
	fmt.Fprintf(w, "read %d file(s): %d entries, %d malformed lines; %s to %s (%s)\n",
		sum.Stats.Files, sum.Stats.Entries, sum.Stats.Bad, r.Meta.Start.Format(time.RFC3339), r.Meta.End.Format(time.RFC3339), r.Duration().Round(time.Second))
	for _, b := range sum.Bad {
		fmt.Fprintf(w, "  malformed: %s\n", b)
	}
	if int64(len(sum.Bad)) < sum.Stats.Bad {
		fmt.Fprintf(w, "  ... %d more malformed lines\n", sum.Stats.Bad-int64(len(sum.Bad)))
	}
	if n := r.Config["events_outside_logs"]; n != "" && n != "0" {
		fmt.Fprintf(w, "%s event(s) lay outside the logs' time span and were left out\n", n)
	}
	fmt.Fprintln(w)
	return report.WriteText(w, run, report.TextOptions{})
}

// progress reports reading many files: on a terminal one line rewritten
// in place, otherwise a plain line at most every plainEvery.
type progress struct {
	w     io.Writer
	tty   bool
	n     int
	last  time.Time
	shown bool
}

const plainEvery = 5 * time.Second

func (p *progress) file(i, n int, name string) {
	if n < 2 {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\ranalyze: file %d/%d %s\x1b[K", i+1, n, name)
		p.shown = true
		return
	}
	if now := time.Now(); now.Sub(p.last) >= plainEvery {
		p.last = now
		fmt.Fprintf(p.w, "analyze: file %d/%d %s\n", i+1, n, name)
	}
}

func (p *progress) done(st accesslog.Stats) {
	if p.tty && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	if !p.tty && p.n >= 2 {
		fmt.Fprintf(p.w, "analyze: read %d files, %d entries, %d malformed lines\n", st.Files, st.Entries, st.Bad)
	}
}
