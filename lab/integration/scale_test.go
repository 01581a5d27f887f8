//go:build !nolab

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pssKiB reads a process's proportional set size: its private memory plus
// its share of pages it shares (the binary's text is shared by every pod
// running the same binary, so RSS would count it once per pod).
func pssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// BenchmarkLabScale boots a lab of 30 nodes, applies a Deployment of 300
// zerodrop serve pods and reports the time until all are Ready and the
// memory of the control plane and of a pod. One iteration is the whole
// experiment: run it with -benchtime 1x.
//
// ZERODROP_POD_BIN picks the pods' binary (scripts/test.sh builds the slim
// one), as lab up --pod-binary does.
//
//	ZERODROP_LAB_BIN=bin/zerodrop ZERODROP_POD_BIN=bin/zerodrop-slim go test -run '^$' -bench LabScale -benchtime 1x ./lab/integration/
func BenchmarkLabScale(b *testing.B) {
	const nodes, replicas = 30, 300
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "lab")
		start := time.Now()
		l, err := startLab(dir, "--nodes", strconv.Itoa(nodes))
		if err != nil {
			b.Fatal(err)
		}
		up := time.Since(start)
		t := &testing.T{}
		applyStart := time.Now()
		if out, err := l.kubectl(t, serveDeployment("default", "scale", replicas, "1", "1s", 30), "apply", "-f", "-"); err != nil {
			l.Stop()
			b.Fatalf("apply: %v %s", err, out)
		}
		deadline := time.Now().Add(10 * time.Minute)
		lastReport := time.Now()
		for {
			list, err := l.client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=scale"})
			ready := 0
			if err == nil {
				for _, p := range list.Items {
					if podReady(&p) {
						ready++
					}
				}
			}
			if ready == replicas {
				break
			}
			if time.Now().After(deadline) {
				l.Stop()
				b.Fatalf("only %d of %d pods Ready after 10 minutes", ready, replicas)
			}
			if time.Since(lastReport) > 5*time.Second {
				fmt.Fprintf(os.Stderr, "scale: %d/%d pods Ready after %s\n", ready, replicas, time.Since(applyStart).Round(time.Second))
				lastReport = time.Now()
			}
			time.Sleep(250 * time.Millisecond)
		}
		allReady := time.Since(applyStart)
		var controlPlane, labProc, pods, podCount int
		for _, pid := range descendants(l.Cmd.Process.Pid) {
			c := cmdline(pid)
			switch {
			case strings.Contains(c, " lab component "):
				controlPlane += pssKiB(pid)
			case strings.Contains(c, " lab netns "):
				labProc += pssKiB(pid)
			case strings.Contains(c, " serve "):
				pods += pssKiB(pid)
				podCount++
			}
		}
		l.Stop()
		b.ReportMetric(up.Seconds(), "s-lab-up")
		b.ReportMetric(allReady.Seconds(), "s-300-pods-ready")
		b.ReportMetric(float64(controlPlane)/1024, "MiB-control-plane")
		b.ReportMetric(float64(labProc)/1024, "MiB-lab-process")
		if podCount > 0 {
			b.ReportMetric(float64(pods)/1024/float64(podCount), "MiB-per-pod")
		}
		fmt.Fprintf(os.Stderr, "scale: lab up (%d nodes) %s; %d pods Ready %s after apply; control plane %d MiB, lab process (kubelets) %d MiB, pods %d MiB (%d processes)\n",
			nodes, up.Round(100*time.Millisecond), replicas, allReady.Round(100*time.Millisecond), controlPlane/1024, labProc/1024, pods/1024, podCount)
	}
}
