package manifest

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"mvdan.cc/sh/v3/syntax"
)

// StepAction classifies one command of a preStop hook.
type StepAction string

// Step actions.
const (
	// StepSleep blocks for Step.Sleep.
	StepSleep StepAction = "sleep"
	// StepStopServer stops the container's server: from then on it accepts
	// no new connections (nginx -s quit, kill 1, apachectl graceful-stop,
	// pkill, Envoy's quitquitquit …).
	StepStopServer StepAction = "stop-server"
	// StepWait waits for the commands started in the background.
	StepWait StepAction = "wait"
	// StepFail is a command that fails at once (sleep without a duration);
	// with && after it the rest does not run.
	StepFail StepAction = "fail"
	// StepOther is any other command; it is counted as taking no time.
	StepOther StepAction = "other"
)

// Step is one simple command of a preStop hook, in the order the shell
// runs it.
type Step struct {
	// At is when the command starts, from the start of the hook, assuming
	// every command succeeds (so the right side of `a || b` never runs).
	At      time.Duration `json:"at"`
	Command string        `json:"command"`
	Action  StepAction    `json:"action"`
	// Sleep is how long a StepSleep blocks.
	Sleep time.Duration `json:"sleep,omitempty"`
	// Graceful is true for a StepStopServer that lets in-flight requests
	// finish (nginx -s quit, SIGTERM, SIGQUIT) and false for one that cuts
	// them (nginx -s stop, SIGKILL).
	Graceful bool `json:"graceful,omitempty"`
	// Background is true for a command started with &: it delays nothing
	// unless a later `wait` waits for it.
	Background bool `json:"background,omitempty"`
	// Skipped is true for a command that runs only when an earlier one
	// fails (the right side of ||); it is not counted.
	Skipped bool `json:"skipped,omitempty"`
	// Uncertain is true inside a loop, condition or function: whether and
	// when it runs cannot be read from the script.
	Uncertain bool `json:"uncertain,omitempty"`
}

// Plan is what a preStop exec command does when it runs, read without
// running it: the shell script parsed with a real shell parser (;, &&,
// ||, |, &, subshells, wait), or the exec argv itself. The kubelet runs
// the hook, then sends SIGTERM when it returns; the lab runs the same
// steps.
type Plan struct {
	Steps []Step `json:"steps,omitempty"`
	// Duration is how long the hook blocks when every command succeeds;
	// valid when Known.
	Duration time.Duration `json:"duration"`
	Known    bool          `json:"known"`
	// Unknown says why Duration is not known.
	Unknown string `json:"unknown,omitempty"`
	// NeedsSleep is true when an external sleep binary runs.
	NeedsSleep bool `json:"needsSleep,omitempty"`
}

// StopServer returns the first step that stops the container's server,
// counted (not skipped), or nil.
func (p *Plan) StopServer() *Step {
	if p == nil {
		return nil
	}
	for i := range p.Steps {
		s := &p.Steps[i]
		if s.Action == StepStopServer && !s.Skipped {
			return s
		}
	}
	return nil
}

// maxScript bounds the script the parser reads.
const maxScript = 64 << 10

// ParseShellScript reads a shell script (the argument of sh -c) with a
// POSIX/bash parser and returns what it does. It returns an error only
// when the script is not valid shell syntax.
func ParseShellScript(script string) (*Plan, error) {
	if len(script) > maxScript {
		return nil, fmt.Errorf("shell script longer than %d KiB", maxScript>>10)
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(script), "")
	if err != nil {
		return nil, fmt.Errorf("parsing the shell script: %w", err)
	}
	w := &planWalker{plan: &Plan{Known: true}}
	end := w.stmts(f.Stmts, 0, flags{})
	w.finish(end)
	return w.plan, nil
}

// maxDepth bounds nested `sh -c` scripts.
const maxDepth = 4

// PlanArgv classifies an exec command run without a shell.
func PlanArgv(argv []string) *Plan {
	w := &planWalker{plan: &Plan{Known: true}}
	end := w.call(argv, strings.Join(argv, " "), 0, flags{})
	w.finish(end)
	return w.plan
}

type flags struct {
	background, skipped, uncertain bool
}

type planWalker struct {
	depth  int
	plan   *Plan
	bgEnd  time.Duration // when the last background job ends
	steps  int
	exited bool // an exit ran: nothing after it runs
}

// maxSteps bounds the steps recorded for one script.
const maxSteps = 1000

func (w *planWalker) finish(end time.Duration) {
	p := w.plan
	p.Duration = end
	if !p.Known {
		p.Duration = 0
	}
	if p.Known && !p.hasEffect() {
		p.Known = false
		p.Unknown = "it neither sleeps nor stops the server; how long it blocks cannot be read"
	}
}

// hasEffect: the plan sleeps (in the foreground or background), stops the
// server or fails: something whose timing the plan knows.
func (p *Plan) hasEffect() bool {
	for _, s := range p.Steps {
		if s.Action != StepOther && s.Action != StepWait {
			return true
		}
	}
	return false
}

func (w *planWalker) unknown(why string) {
	if w.plan.Known {
		w.plan.Known = false
		w.plan.Unknown = why
	}
}

func (w *planWalker) add(s Step) {
	if w.steps >= maxSteps {
		w.unknown("the script has too many commands")
		return
	}
	if w.exited {
		s.Skipped = true
	}
	w.steps++
	w.plan.Steps = append(w.plan.Steps, s)
}

// stmts runs a statement list from t and returns when it ends.
func (w *planWalker) stmts(list []*syntax.Stmt, t time.Duration, fl flags) time.Duration {
	for _, s := range list {
		t = w.stmt(s, t, fl)
	}
	return t
}

func (w *planWalker) stmt(s *syntax.Stmt, t time.Duration, fl flags) time.Duration {
	if s == nil || s.Cmd == nil {
		return t
	}
	if s.Background || s.Coprocess || s.Disown {
		bf := fl
		bf.background = true
		end := w.command(s.Cmd, t, bf)
		if !fl.skipped {
			w.bgEnd = max(w.bgEnd, end)
		}
		return t
	}
	return w.command(s.Cmd, t, fl)
}

func (w *planWalker) command(c syntax.Command, t time.Duration, fl flags) time.Duration {
	switch c := c.(type) {
	case *syntax.CallExpr:
		argv := make([]string, 0, len(c.Args))
		literal := true
		for _, a := range c.Args {
			s, ok := wordLit(a)
			if !ok {
				literal = false
				s = printWord(a)
			}
			argv = append(argv, s)
		}
		if len(argv) == 0 {
			return t // assignments only
		}
		if !literal {
			return w.dynamicCall(argv, t, fl)
		}
		return w.call(argv, strings.Join(argv, " "), t, fl)
	case *syntax.BinaryCmd:
		switch c.Op {
		case syntax.AndStmt:
			end := w.stmt(c.X, t, fl)
			if w.failedAt(c.X) {
				sf := fl
				sf.skipped = true
				w.stmt(c.Y, end, sf)
				return end
			}
			return w.stmt(c.Y, end, fl)
		case syntax.OrStmt:
			end := w.stmt(c.X, t, fl)
			if w.failedAt(c.X) {
				return w.stmt(c.Y, end, fl)
			}
			sf := fl
			sf.skipped = true
			w.stmt(c.Y, end, sf)
			return end
		default: // pipes run both sides at once
			return max(w.stmt(c.X, t, fl), w.stmt(c.Y, t, fl))
		}
	case *syntax.Subshell:
		return w.stmts(c.Stmts, t, fl)
	case *syntax.Block:
		return w.stmts(c.Stmts, t, fl)
	case *syntax.TimeClause:
		return w.stmt(c.Stmt, t, fl)
	case *syntax.IfClause:
		if !fl.skipped {
			w.unknown("an if/else: which branch runs cannot be read")
		}
		uf := fl
		uf.uncertain = true
		for cl := c; cl != nil; cl = cl.Else {
			w.stmts(cl.Cond, t, uf)
			w.stmts(cl.Then, t, uf)
		}
		return t
	case *syntax.WhileClause:
		if !fl.skipped {
			w.unknown("a loop: how long it runs cannot be read")
		}
		uf := fl
		uf.uncertain = true
		w.stmts(c.Cond, t, uf)
		w.stmts(c.Do, t, uf)
		return t
	case *syntax.ForClause:
		if !fl.skipped {
			w.unknown("a loop: how long it runs cannot be read")
		}
		uf := fl
		uf.uncertain = true
		w.stmts(c.Do, t, uf)
		return t
	case *syntax.CaseClause:
		if !fl.skipped {
			w.unknown("a case: which branch runs cannot be read")
		}
		uf := fl
		uf.uncertain = true
		for _, it := range c.Items {
			w.stmts(it.Stmts, t, uf)
		}
		return t
	case *syntax.FuncDecl:
		return t // runs only when called; a call is an unknown command
	case *syntax.DeclClause, *syntax.LetClause, *syntax.TestClause, *syntax.ArithmCmd:
		return t
	default:
		if !fl.skipped {
			w.unknown(fmt.Sprintf("a %T cannot be read", c))
		}
		return t
	}
}

// failedAt reports whether the statement ended with a command that fails
// at once (negated with !, it succeeds).
func (w *planWalker) failedAt(s *syntax.Stmt) bool {
	st := w.plan.Steps
	failed := len(st) > 0 && st[len(st)-1].Action == StepFail
	if s != nil && s.Negated {
		return !failed
	}
	return failed
}

// dynamicCall is a command whose words hold expansions ($VAR, $(…)).
func (w *planWalker) dynamicCall(argv []string, t time.Duration, fl flags) time.Duration {
	args := stripWrappers(argv)
	cmd := strings.Join(argv, " ")
	if len(args) > 0 && path.Base(args[0]) == "sleep" {
		if !fl.skipped && !fl.background {
			w.unknown(fmt.Sprintf("`%s`: the duration comes from an expansion", cmd))
		}
		w.plan.NeedsSleep = true
		w.add(Step{At: t, Command: cmd, Action: StepSleep, Background: fl.background, Skipped: fl.skipped, Uncertain: true})
		return t
	}
	if a, graceful := classifyStop(args); a == StepStopServer {
		w.add(Step{At: t, Command: cmd, Action: a, Graceful: graceful, Background: fl.background, Skipped: fl.skipped, Uncertain: fl.uncertain})
		return t
	}
	w.add(Step{At: t, Command: cmd, Action: StepOther, Background: fl.background, Skipped: fl.skipped, Uncertain: fl.uncertain})
	return t
}

// call runs one simple command with literal words from t.
func (w *planWalker) call(argv []string, cmd string, t time.Duration, fl flags) time.Duration {
	args := stripWrappers(argv)
	step := Step{At: t, Command: cmd, Action: StepOther, Background: fl.background, Skipped: fl.skipped, Uncertain: fl.uncertain}
	if len(args) == 0 || w.exited {
		w.add(step)
		return t
	}
	switch path.Base(args[0]) {
	case "sleep":
		w.plan.NeedsSleep = true
		var total time.Duration
		if len(args) < 2 {
			step.Action = StepFail
			w.add(step)
			return t
		}
		for _, a := range args[1:] { // GNU sleep adds its arguments
			d, ok := parseSleepArg(a)
			if !ok {
				if !fl.skipped && !fl.background && !fl.uncertain {
					w.unknown(fmt.Sprintf("cannot read the duration of `%s`", cmd))
				}
				step.Action = StepSleep
				step.Uncertain = true
				w.add(step)
				return t
			}
			total = min(total+d, maxSleep)
		}
		step.Action, step.Sleep = StepSleep, total
		w.add(step)
		return min(t+total, maxSleep*maxSteps)
	case "wait":
		step.Action = StepWait
		w.add(step)
		if fl.background || fl.skipped {
			return t
		}
		return max(t, w.bgEnd)
	case "sh", "bash", "ash", "dash", "zsh", "ksh":
		if i, err := shellScript(args); err == nil && w.depth < maxDepth {
			return w.nested(args[i], cmd, t, fl)
		}
	case "false":
		step.Action = StepFail
		w.add(step)
		return t
	case "exit":
		w.add(step)
		if !fl.background && !fl.skipped && !fl.uncertain {
			w.exited = true
		}
		return t
	}
	if a, graceful := classifyStop(args); a == StepStopServer {
		step.Action, step.Graceful = a, graceful
	}
	w.add(step)
	return t
}

// nested runs the script of a `sh -c SCRIPT` inside the script.
func (w *planWalker) nested(script, cmd string, t time.Duration, fl flags) time.Duration {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(script), "")
	if err != nil {
		w.add(Step{At: t, Command: cmd, Action: StepFail, Background: fl.background, Skipped: fl.skipped, Uncertain: fl.uncertain})
		return t
	}
	inner := &planWalker{depth: w.depth + 1, plan: w.plan, steps: w.steps}
	end := inner.stmts(f.Stmts, t, fl)
	w.steps = inner.steps
	// The inner shell exits without waiting for its background jobs.
	return end
}

// stripWrappers removes command prefixes that run the rest of the words:
// exec, command, nohup, busybox, env (with its assignments).
func stripWrappers(argv []string) []string {
	for len(argv) > 0 {
		switch path.Base(argv[0]) {
		case "exec", "command", "nohup", "busybox", "builtin":
			argv = argv[1:]
			for len(argv) > 0 && strings.HasPrefix(argv[0], "-") {
				argv = argv[1:]
			}
			continue
		case "env":
			argv = argv[1:]
			for len(argv) > 0 && (strings.Contains(argv[0], "=") || strings.HasPrefix(argv[0], "-")) {
				argv = argv[1:]
			}
			continue
		}
		return argv
	}
	return argv
}

// terminating signals stop a server; graceful ones let it finish what is
// in flight.
var stopSignals = map[string]bool{"TERM": true, "15": true, "QUIT": true, "3": true, "INT": true, "2": true, "KILL": false, "9": false, "WINCH": true, "28": true, "USR1": false}

// classifyStop tells whether argv stops a server process.
func classifyStop(args []string) (StepAction, bool) {
	bin := path.Base(args[0])
	rest := args[1:]
	has := func(vals ...string) bool {
		for _, a := range rest {
			for _, v := range vals {
				if a == v {
					return true
				}
			}
		}
		return false
	}
	switch bin {
	case "nginx", "openresty":
		for i, a := range rest {
			if a == "-s" && i+1 < len(rest) {
				switch rest[i+1] {
				case "quit":
					return StepStopServer, true
				case "stop":
					return StepStopServer, false
				}
			}
		}
	case "apachectl", "apache2ctl", "httpd", "apache2":
		if has("graceful-stop") {
			return StepStopServer, true
		}
		if has("stop") {
			return StepStopServer, false
		}
	case "kill", "pkill", "killall", "killall5", "pkill.sh":
		sig, ok := killSignal(rest)
		if !ok {
			return StepOther, false
		}
		graceful, terminating := stopSignals[sig]
		if !terminating && sig != "KILL" && sig != "9" {
			return StepOther, false
		}
		if bin == "kill" && !killsProcess(rest) {
			return StepOther, false
		}
		return StepStopServer, graceful
	case "supervisorctl", "s6-svc", "sv", "service", "rc-service":
		if has("stop", "-d", "down") {
			return StepStopServer, true
		}
	case "redis-cli":
		if has("shutdown", "SHUTDOWN") {
			return StepStopServer, true
		}
	case "pg_ctl":
		if has("stop") {
			return StepStopServer, true
		}
	case "haproxy":
		if has("-sf", "-st") {
			return StepOther, false
		}
	case "curl", "wget", "pilot-agent":
		for _, a := range rest {
			if strings.Contains(a, "quitquitquit") || strings.Contains(a, "drain_listeners") {
				return StepStopServer, true
			}
		}
	}
	return StepOther, false
}

// killSignal returns the signal a kill/pkill/killall command sends
// (TERM when none is given).
func killSignal(args []string) (string, bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return "TERM", true
		case a == "-s" || a == "--signal" || a == "-n":
			if i+1 < len(args) {
				return normSignal(args[i+1]), true
			}
			return "", false
		case a == "-l" || a == "-L" || a == "-0" || a == "-s0":
			return "", false // list signals, or only test for the process
		case strings.HasPrefix(a, "--signal="):
			return normSignal(strings.TrimPrefix(a, "--signal=")), true
		case strings.HasPrefix(a, "-") && len(a) > 1:
			s := a[1:]
			if isSignalName(s) {
				return normSignal(s), true
			}
			// pkill/killall flags such as -f, -x, -u USER
		}
	}
	return "TERM", true
}

func isSignalName(s string) bool {
	n := normSignal(s)
	if _, ok := stopSignals[n]; ok {
		return true
	}
	switch n {
	case "HUP", "1", "USR2", "12", "10", "STOP", "CONT", "0":
		return true
	}
	return false
}

func normSignal(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "SIG")
}

// killsProcess reports whether kill names a process: PID 1 (the
// container's main process), another PID, or a PID from an expansion such
// as $(pidof nginx) or $(cat /run/nginx.pid).
func killsProcess(args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-s" || a == "-n" || a == "--signal" {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") && a != "-1" {
			continue
		}
		return true
	}
	return false
}

// wordLit returns a word's value when it holds no expansion: plain text,
// 'single' and "double" quotes with no $ inside.
func wordLit(w *syntax.Word) (string, bool) {
	var b strings.Builder
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(p.Value)
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok {
					return "", false
				}
				b.WriteString(l.Value)
			}
		default:
			return "", false
		}
	}
	return b.String(), true
}

func printWord(w *syntax.Word) string {
	var b strings.Builder
	if err := syntax.NewPrinter().Print(&b, w); err != nil {
		return "?"
	}
	return b.String()
}

// errNotShell is returned by shellScript for a command that does not run
// a shell script.
var errNotShell = errors.New("not a shell -c command")

// shellScript returns the index of the script in ["sh", "-c", SCRIPT, …]
// (flags such as -e, -ec, -x may come before or with -c). The words after
// the script are $0, $1 …, not part of it.
func shellScript(cmd []string) (int, error) {
	if len(cmd) < 2 || !shells[path.Base(cmd[0])] {
		return 0, errNotShell
	}
	c := false
	i := 1
	for ; i < len(cmd) && strings.HasPrefix(cmd[i], "-") && cmd[i] != "-" && cmd[i] != "--"; i++ {
		if !strings.HasPrefix(cmd[i], "--") && strings.Contains(cmd[i], "c") {
			c = true
		}
	}
	if !c || i >= len(cmd) {
		return 0, errNotShell
	}
	return i, nil
}
