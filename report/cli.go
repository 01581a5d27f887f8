package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Options are the command line of zerodrop report.
type Options struct {
	// Files are the result files to show, in column order.
	Files []string
	// Output is text (default), json, html, or a file name ending in
	// .html, .htm or .json to write that format to instead of stdout.
	Output string
	// Title heads the HTML page.
	Title string
	// Width is the sparkline width in columns.
	Width int
	// Color colours the sparklines (the caller decides from the terminal).
	Color bool
	// Stdout receives the report (unless Output names a file); Stderr
	// receives one line saying where a file went.
	Stdout, Stderr io.Writer
}

// UsageError is a bad command line: the command exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// IsUsage reports whether err is a usage error (or bad input file).
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// format resolves Output to a format and an optional file.
func (o Options) format() (format, file string, err error) {
	out := o.Output
	switch lower := strings.ToLower(out); {
	case out == "" || out == "text":
		return "text", "", nil
	case out == "json" || out == "html":
		return out, "", nil
	case strings.HasSuffix(lower, ".html") || strings.HasSuffix(lower, ".htm"):
		return "html", out, nil
	case strings.HasSuffix(lower, ".json"):
		return "json", out, nil
	}
	return "", "", &UsageError{fmt.Errorf("report: flag -o: %q is not text, json, html or a file name ending in .html or .json", out)}
}

// Main runs zerodrop report: it reads the result files and writes the
// comparison as text, JSON or HTML.
func Main(ctx context.Context, o Options) error {
	if len(o.Files) == 0 {
		return &UsageError{errors.New("report: give one or more result files (zerodrop load --out, zerodrop analyze --out)")}
	}
	format, file, err := o.format()
	if err != nil {
		return err
	}
	if o.Width < 0 {
		return &UsageError{fmt.Errorf("report: flag --width: %d is negative", o.Width)}
	}
	runs, err := Load(o.Files)
	if err != nil {
		return &UsageError{fmt.Errorf("report: %w", err)}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w := o.Stdout
	var f *os.File
	if file != "" {
		if f, err = os.Create(file); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		w = f
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(Compare(runs))
	case "html":
		err = WriteHTML(w, runs, HTMLOptions{Title: o.Title})
	default:
		err = WriteText(w, runs, TextOptions{Width: o.Width, Color: o.Color})
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && o.Stderr != nil {
			fmt.Fprintf(o.Stderr, "report: wrote %s (%d runs)\n", file, len(runs))
		}
	}
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
