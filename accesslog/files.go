package accesslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Stdin is the name that stands for standard input in Files and ReadFiles.
const Stdin = "-"

// IsLogFile reports whether a file name looks like an access-log file:
// AWS writes NAME.log.gz; plain .log and .gz files are taken too.
func IsLogFile(name string) bool {
	return strings.HasSuffix(name, ".log") || strings.HasSuffix(name, ".log.gz") || strings.HasSuffix(name, ".gz")
}

// Files expands paths into the access-log files they name, in order: a
// file is taken as it is, "-" stands for standard input, and a directory is
// walked to any depth for log files (IsLogFile), sorted by path, so the S3
// layout AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/ comes
// out in time order. A directory without any log file is an error.
func Files(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == Stdin {
			out = append(out, p)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("access log %s: %w", p, err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && IsLogFile(d.Name()) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walking access-log directory %s: %w", p, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("access-log directory %s: no .log or .log.gz file in it", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// ReadOptions tune ReadFiles.
type ReadOptions struct {
	// Stdin is read for the name "-" (default os.Stdin).
	Stdin io.Reader
	// OnBad is called with every malformed line (file and line number in
	// it); the read goes on. May be nil.
	OnBad func(*ParseError)
	// OnFile is called before file i (0-based) of n is read, for progress.
	// May be nil.
	OnFile func(i, n int, name string)
}

// Stats count what ReadFiles read.
type Stats struct {
	Files   int   // files opened
	Entries int64 // well-formed lines
	Bad     int64 // malformed lines (see ReadOptions.OnBad)
}

// ReadFiles streams every entry of the named files (see Files), one file
// after the other, into fn. The Entry passed to fn is reused for the next
// line: copy what you keep. Memory does not grow with the number of lines.
// Malformed lines are counted and passed to OnBad, never fatal; an error
// from fn, a file that cannot be opened or read, or ctx ending stops the
// read with that error.
func ReadFiles(ctx context.Context, names []string, o ReadOptions, fn func(*Entry) error) (Stats, error) {
	var st Stats
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	var e Entry
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("reading access logs: %w", err)
		}
		if o.OnFile != nil {
			o.OnFile(i, len(names), name)
		}
		if err := readOne(ctx, name, o, &st, &e, fn); err != nil {
			return st, err
		}
	}
	return st, nil
}

// checkEvery is how many lines pass between two looks at the context.
const checkEvery = 4096

func readOne(ctx context.Context, name string, o ReadOptions, st *Stats, e *Entry, fn func(*Entry) error) error {
	var src io.Reader
	display := name
	if name == Stdin {
		src, display = o.Stdin, "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("opening access log: %w", err)
		}
		defer f.Close()
		src = f
	}
	st.Files++
	rd, err := NewReader(src)
	if err != nil {
		return fmt.Errorf("access log %s: %w", display, err)
	}
	defer rd.Close()
	rd.SetName(display)
	for n := 0; ; n++ {
		if n%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("reading access log %s: %w", display, err)
			}
		}
		err := rd.Read(e)
		if err == io.EOF {
			return nil
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			st.Bad++
			if o.OnBad != nil {
				o.OnBad(pe)
			}
			continue
		}
		if err != nil {
			return err
		}
		st.Entries++
		if err := fn(e); err != nil {
			return err
		}
	}
}
