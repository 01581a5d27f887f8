package manifest

import (
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

var shells = map[string]bool{"sh": true, "bash": true, "ash": true, "dash": true, "zsh": true, "ksh": true}

func (b *builder) preStop(meta *Meta, base string, h *corev1.LifecycleHandler) *PreStop {
	out := &PreStop{Pos: meta.At(base)}
	switch {
	case h.Sleep != nil:
		out.Kind = PreStopSleep
		out.Known = true
		out.Duration = Field[time.Duration]{Value: time.Duration(h.Sleep.Seconds) * time.Second, Pos: meta.At(base + ".sleep.seconds")}
		if h.Sleep.Seconds < 0 {
			b.diag(out.Duration.Pos, meta.Ref(), "preStop sleep seconds %d is negative", h.Sleep.Seconds)
			out.Known = false
		}
	case h.HTTPGet != nil:
		out.Kind = PreStopHTTPGet
		out.HTTPPath = h.HTTPGet.Path
		out.HTTPPort = h.HTTPGet.Port
		out.Duration = Field[time.Duration]{Pos: meta.At(base + ".httpGet")}
	case h.Exec != nil:
		out.Command = h.Exec.Command
		b.execPreStop(meta, base+".exec.command", out)
	case h.TCPSocket != nil:
		out.Kind = PreStopExec
		out.Duration = Field[time.Duration]{Pos: meta.At(base + ".tcpSocket")}
		b.diag(out.Duration.Pos, meta.Ref(), "preStop tcpSocket is deprecated and does not delay termination")
		out.Known = true
	default:
		b.diag(out.Pos, meta.Ref(), "preStop has no handler (exec, httpGet or sleep)")
	}
	return out
}

func (b *builder) execPreStop(meta *Meta, cmdPath string, out *PreStop) {
	cmd := out.Command
	pos := meta.At(cmdPath)
	out.Duration = Field[time.Duration]{Pos: pos}
	if len(cmd) == 0 {
		out.Kind = PreStopExec
		b.diag(pos, meta.Ref(), "preStop exec command is empty")
		return
	}
	if i, err := shellScript(cmd); err == nil {
		out.Kind = PreStopShell
		out.Shell = cmd[0]
		out.NeedsShell = true
		script := cmd[i]
		sp := indexPathPos(meta, cmdPath, i)
		out.Duration = Field[time.Duration]{Pos: sp}
		plan, err := ParseShellScript(script)
		if err != nil {
			b.diag(sp, meta.Ref(), "the preStop script %q is not valid shell (%v): the hook fails at once and SIGTERM follows", script, err)
			out.Known = true
			return
		}
		out.Plan = plan
		out.NeedsSleep = plan.NeedsSleep
		for _, st := range plan.Steps {
			if st.Action == StepFail && strings.HasPrefix(st.Command, "sleep") && len(cmd) > i+1 {
				b.diag(sp, meta.Ref(), "`%s` has no duration: the words after the script (%q) are $0, $1 … of the shell, not arguments of sleep; write the whole command in one string", st.Command, strings.Join(cmd[i+1:], " "))
			}
		}
		if !plan.Known {
			b.diag(sp, meta.Ref(), "cannot tell how long the preStop script blocks: %s (script %q)", plan.Unknown, script)
			return
		}
		out.Known = true
		out.Duration = Field[time.Duration]{Value: plan.Duration, Pos: sp}
		return
	}
	bin := path.Base(cmd[0])
	switch {
	case bin == "sleep" && len(cmd) == 2:
		out.Kind = PreStopExecSleep
		out.NeedsSleep = true
		b.setSleep(meta, out, cmd[1], indexPath(cmdPath, 1), parseSleepArg)
	case bin == "zerodrop" && len(cmd) == 3 && cmd[1] == "sleep":
		out.Kind = PreStopZerodropSleep
		b.setSleep(meta, out, cmd[2], indexPath(cmdPath, 2), parseZerodropSleep)
	default:
		out.Kind = PreStopExec
		plan := PlanArgv(cmd)
		if plan.StopServer() != nil {
			out.Plan = plan
			out.Known = true
			return
		}
		b.diag(pos, meta.Ref(), "cannot tell how long the preStop command %q blocks; use sleep N, the native sleep action or zerodrop sleep D", strings.Join(cmd, " "))
	}
}

func indexPathPos(meta *Meta, p string, i int) Pos { return meta.At(indexPath(p, i)) }

func (b *builder) setSleep(meta *Meta, out *PreStop, arg, argPath string, parse func(string) (time.Duration, bool)) {
	p := meta.At(argPath)
	d, ok := parse(arg)
	if !ok {
		b.diag(p, meta.Ref(), "cannot read the preStop sleep duration %q", arg)
		out.Duration = Field[time.Duration]{Pos: p}
		return
	}
	out.Known = true
	out.Duration = Field[time.Duration]{Value: d, Pos: p}
}

// maxSleep is the longest sleep read as a number (a longer one is as good
// as forever for a preStop hook, and sums of them cannot overflow).
const maxSleep = 1000 * time.Hour

// parseSleepArg reads a sleep(1) argument: a number of seconds, optionally
// fractional, with an optional s, m, h or d suffix.
func parseSleepArg(s string) (time.Duration, bool) {
	s = strings.Trim(s, `"'`)
	if s == "" {
		return 0, false
	}
	unit := time.Second
	switch s[len(s)-1] {
	case 's':
		s = s[:len(s)-1]
	case 'm':
		unit, s = time.Minute, s[:len(s)-1]
	case 'h':
		unit, s = time.Hour, s[:len(s)-1]
	case 'd':
		unit, s = 24*time.Hour, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || s != strings.TrimSpace(s) || strings.ContainsAny(s, "eEnNxX+") {
		return 0, false
	}
	d := f * float64(unit)
	if d > float64(maxSleep) {
		return 0, false
	}
	return time.Duration(d), true
}

// parseZerodropSleep reads the argument of `zerodrop sleep`: Go duration
// syntax or a whole number of seconds.
func parseZerodropSleep(s string) (time.Duration, bool) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}
