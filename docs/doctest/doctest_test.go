package doctest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The documents run here, and for README.md the sections run (by their
// "## " heading prefix; other sections belong to other docs' owners and
// are left out until they are made runnable).
var documents = []struct {
	file     string
	sections []string // nil: the whole file
	timeout  time.Duration
}{
	{"README.md", []string{"Try the whole chain on one machine", "The drain library"}, 3 * time.Minute},
	{"docs/alb.md", nil, time.Minute},
	{"docs/serve.md", nil, time.Minute},
	{"docs/load.md", nil, 2 * time.Minute},
	{"docs/drain.md", nil, 3 * time.Minute},
	{"docs/commands.md", nil, time.Minute},
	{"docs/termination-chain.md", nil, time.Minute},
	{"docs/architecture.md", nil, time.Minute},
	{"docs/eks.md", nil, time.Minute},
	{"docs/simulate.md", nil, time.Minute},
}

// runInRepo are the documents whose blocks run at the root of this
// repository (they name its files, deploy/...) instead of a fresh
// directory; they must not write there.
var runInRepo = map[string]bool{"docs/eks.md": true}

// Rules:
//
//   - A block fenced as ```sh or ```bash runs. All runnable blocks of one
//     document run in order in one bash script (set -euo pipefail), in a
//     fresh temporary directory, with the zerodrop binary first on PATH
//     and as ./zerodrop; processes a block starts in the background are
//     killed when the document ends. A block that fails fails the test.
//   - A block fenced as ```go is a complete program (package main) using
//     the drain library; it is compiled in a module outside this
//     repository that depends on drain through a replace directive, as
//     docs/drain.md tells users to.
//   - A block whose first line is a comment starting with "not run by the
//     doc test:" (# for shell, // for Go) is skipped; the rest of that
//     line says why (it needs AWS, a cluster, PostgreSQL, an hour...). The
//     reader sees the same line.
//   - substitutions below replace a whole line before it runs: the binary
//     is built once, with -tags nolab, instead of by each document.
const skipMarker = "not run by the doc test:"

var substitutions = map[string]string{
	"go build -o zerodrop ./cmd/zerodrop": `cp "$ZERODROP_BIN" zerodrop`,
}

type block struct {
	lang string
	line int // first line of the block's content, 1-based
	text string
}

var fence = regexp.MustCompile("^```([a-zA-Z]*)\\s*$")

// blocks returns the fenced blocks of a Markdown document, restricted to
// the sections whose "## " heading starts with one of sections (all when
// sections is nil).
func blocks(data []byte, sections []string) []block {
	var out []block
	sc := bufio.NewScanner(bytes.NewReader(data))
	in := sections == nil
	var cur *block
	var buf strings.Builder
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if cur == nil && strings.HasPrefix(line, "## ") {
			if sections != nil {
				in = false
				for _, s := range sections {
					if strings.HasPrefix(strings.TrimPrefix(line, "## "), s) {
						in = true
					}
				}
			}
			continue
		}
		m := fence.FindStringSubmatch(line)
		switch {
		case cur == nil && m != nil:
			cur = &block{lang: m[1], line: n + 1}
			buf.Reset()
		case cur != nil && strings.HasPrefix(line, "```"):
			cur.text = buf.String()
			if in {
				out = append(out, *cur)
			}
			cur = nil
		case cur != nil:
			buf.WriteString(line)
			buf.WriteByte('\n')
		}
	}
	return out
}

// prepare turns a document's blocks into one bash script (empty when no
// block runs), the Go programs to compile, and the skipped blocks that do
// not say why.
func prepare(file string, bs []block) (script string, programs, unexplained []block) {
	var sb strings.Builder
	sb.WriteString("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n")
	runnable := 0
	for _, b := range bs {
		if skip, why := skipped(b); skip {
			if why == "" {
				unexplained = append(unexplained, b)
			}
			continue
		}
		switch b.lang {
		case "sh", "bash":
			runnable++
			fmt.Fprintf(&sb, "echo '>>> %s:%d' >&2\n", file, b.line)
			for _, l := range strings.Split(b.text, "\n") {
				if sub, ok := substitutions[strings.TrimSpace(l)]; ok {
					l = sub
				}
				sb.WriteString(l + "\n")
			}
		case "go":
			programs = append(programs, b)
		}
	}
	if runnable == 0 {
		return "", programs, unexplained
	}
	return sb.String(), programs, unexplained
}

func skipped(b block) (bool, string) {
	first, _, _ := strings.Cut(strings.TrimSpace(b.text), "\n")
	first = strings.TrimSpace(strings.TrimLeft(first, "#/ "))
	if rest, ok := strings.CutPrefix(first, skipMarker); ok {
		return true, strings.TrimSpace(rest)
	}
	return false, ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDocs runs every document's blocks.
func TestDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("the documentation runs for minutes; skipped with -short")
	}
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "bin")
	build := exec.Command("go", "build", "-tags", "nolab", "-o", filepath.Join(bin, "zerodrop"), "./cmd/zerodrop")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building zerodrop: %v\n%s", err, out)
	}
	for _, doc := range documents {
		t.Run(strings.ReplaceAll(doc.file, "/", "_"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, doc.file))
			if err != nil {
				t.Fatal(err)
			}
			script, programs, unexplained := prepare(doc.file, blocks(data, doc.sections))
			for _, b := range unexplained {
				t.Errorf("%s:%d: a skipped block must say why", doc.file, b.line)
			}
			for _, p := range programs {
				compileOutside(t, root, doc.file, p)
			}
			if script == "" {
				return
			}
			runScript(t, root, bin, doc.file, doc.timeout, script)
		})
	}
}

func runScript(t *testing.T, root, bin, file string, timeout time.Duration, script string) {
	t.Helper()
	dir := t.TempDir()
	// drain.md's blocks run in a service module next to a clone of this
	// repository (../zerodrop), as its text says.
	svc := filepath.Join(dir, "svc")
	if err := os.MkdirAll(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(dir, "zerodrop")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(svc, "main.go"), []byte(readmeDrainExample(t, root)), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(svc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/svc\n\ngo 1.26\n")
	if err := exec.Command("cp", filepath.Join(bin, "zerodrop"), filepath.Join(svc, "zerodrop")).Run(); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ZERODROP_BIN="+filepath.Join(bin, "zerodrop"),
		// The service module is outside this repository: its workspace
		// and the CI's -mod=readonly do not apply to it.
		"GOWORK=off", "GOFLAGS=")
	cwd := svc
	if runInRepo[file] {
		cwd = root
	}
	out, err := execScript(cwd, env, timeout, script)
	if err != nil || testing.Verbose() {
		t.Logf("%s output:\n%s", file, out)
	}
	if err != nil {
		t.Fatalf("%s: %v (the line after the last '>>>' marker is the block that failed)", file, err)
	}
}

// execScript runs a bash script in dir, in its own process group, and
// returns its output. When the script ends, whatever it left running (a
// service still draining after the SIGTERM its trap sent) is killed with
// the group; only the script's own exit status counts.
func execScript(dir string, env []string, timeout time.Duration, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pgid := cmd.Process.Pid
	err := cmd.Wait()
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // bash exited 0; a leftover held the output pipe
	}
	return out.String(), err
}

// readmeDrainExample is the README's Go example of the drain library.
func readmeDrainExample(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks(data, []string{"The drain library"}) {
		if b.lang == "go" {
			return b.text
		}
	}
	t.Fatal("README.md has no Go example under \"The drain library\"")
	return ""
}

// compileOutside builds a Go block as the main package of a module outside
// this repository that requires the drain module through a replace
// directive.
func compileOutside(t *testing.T, root, file string, b block) {
	t.Helper()
	dir := t.TempDir()
	gomod := "module example.com/docexample\n\ngo 1.26\n\nrequire zerodrop.dev/zerodrop/drain v0.0.0\n\nreplace zerodrop.dev/zerodrop/drain => " + filepath.Join(root, "drain") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(b.text), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	for _, args := range [][]string{{"mod", "tidy"}, {"vet", "."}, {"build", "-o", os.DevNull, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s:%d: go %s: %v\n%s", file, b.line, strings.Join(args, " "), err, out)
			return
		}
	}
}

// The extraction itself: sections, languages, the skip marker and the
// substitutions; and a failing block fails the script.
func TestExtraction(t *testing.T) {
	md := "# T\n\n## Mine\n\n```sh\necho one\ngo build -o zerodrop ./cmd/zerodrop\n```\n\n" +
		"```sh\n# not run by the doc test: needs AWS\naws elbv2 describe-load-balancers\n```\n\n" +
		"```sh\n# not run by the doc test:\nfalse\n```\n\n```yaml\na: 1\n```\n\n```go\npackage main\n```\n\n" +
		"## Theirs\n\n```sh\necho theirs\n```\n"
	bs := blocks([]byte(md), []string{"Mine"})
	script, programs, unexplained := prepare("x.md", bs)
	if !strings.Contains(script, "echo one\n") || strings.Contains(script, "theirs") || strings.Contains(script, "aws ") ||
		strings.Contains(script, "a: 1") || !strings.Contains(script, `cp "$ZERODROP_BIN" zerodrop`) || strings.Contains(script, "go build") {
		t.Errorf("script:\n%s", script)
	}
	if len(programs) != 1 || len(unexplained) != 1 || unexplained[0].line != 16 {
		t.Errorf("programs %v, unexplained %v", programs, unexplained)
	}
	if _, err := execScript(t.TempDir(), os.Environ(), 10*time.Second, "set -euo pipefail\ntrue\nfalse\necho after\n"); err == nil {
		t.Error("a failing line did not fail the script")
	}
	out, err := execScript(t.TempDir(), os.Environ(), 10*time.Second, "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\nsleep 30 &\necho ok\n")
	if err != nil || !strings.Contains(out, "ok") {
		t.Errorf("a background process outlived its document: %v %q", err, out)
	}
}
