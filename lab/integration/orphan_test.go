//go:build !nolab

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// descendants lists the live processes under pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state := statOf(p); ppid > 0 && state != "Z" {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// statOf returns a process's parent and state ("" when it is gone).
func statOf(pid int) (int, string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, ""
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	if i < 0 || i+2 >= len(s) {
		return 0, ""
	}
	f := strings.Fields(s[i+2:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid, f[0]
}

func TestNoOrphanAfterSIGKILL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab")
	l, err := startLab(dir, "--nodes", "1")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	if out, err := l.kubectl(t, serveDeployment("default", "orphan", 2, "1", "1s", 30), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v %s", err, out)
	}
	waitFor(t, 60*time.Second, "2 running pods", func() (bool, error) {
		list, err := l.client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=orphan"})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 2, nil
	})
	procs := descendants(l.Cmd.Process.Pid)
	// lab run, etcd, apiserver, controller-manager, scheduler, 2 pods.
	if len(procs) < 7 {
		t.Fatalf("expected at least 7 processes under lab up, found %d: %v", len(procs), procs)
	}
	if err := l.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-l.Exited()
	waitFor(t, 15*time.Second, "every process of the lab to be gone", func() (bool, error) {
		var left []string
		for _, p := range procs {
			if _, state := statOf(p); state != "" && state != "Z" {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				left = append(left, fmt.Sprintf("%d %s", p, strings.ReplaceAll(string(cmd), "\x00", " ")))
			}
		}
		return len(left) == 0, fmt.Errorf("still running: %v", left)
	})
	t.Logf("%d processes of the lab gone after SIGKILL of lab up", len(procs))
}
