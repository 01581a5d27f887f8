//go:build !nolab

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"zerodrop.dev/zerodrop/load"
	"zerodrop.dev/zerodrop/simulate"
)

// simWorkload is a Deployment whose pods only sleep: the test looks at
// spec.replicas, not at the pods.
func simWorkload(ns, name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: shell
        args: ["-c", "exec /bin/sleep 3600"]
`, ns, name, replicas)
}

// asServiceAccount is the lab's admin config impersonating a service
// account (the API server adds the account's groups).
func asServiceAccount(t *testing.T, l *testLab, ns, name string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", l.state.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", ns, name)}
	return cfg
}

// deploy/simulator's objects in namespace ns: the RBAC applied for real,
// the simulator's Deployment checked by a server-side dry run.
func applySimulatorManifests(t *testing.T, l *testLab, ns string) {
	t.Helper()
	out, err := l.kubectl(t, "", "kustomize", "../../deploy/simulator")
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/simulator: %v\n%s", err, out)
	}
	var rbac, workloads []string
	for _, doc := range strings.Split(out, "\n---\n") {
		doc = strings.ReplaceAll(doc, "namespace: zerodrop", "namespace: "+ns)
		if strings.Contains(doc, "kind: Deployment") {
			workloads = append(workloads, doc)
		} else {
			rbac = append(rbac, doc)
		}
	}
	if len(rbac) != 3 || len(workloads) != 1 {
		t.Fatalf("deploy/simulator: %d RBAC objects and %d Deployments, want 3 and 1:\n%s", len(rbac), len(workloads), out)
	}
	if out, err := l.kubectl(t, strings.Join(workloads, "\n---\n"), "apply", "--dry-run=server", "--validate=strict", "-f", "-"); err != nil {
		t.Fatalf("server-side dry run of deploy/simulator's Deployments: %v\n%s", err, out)
	}
	l.apply(t, strings.Join(rbac, "\n---\n"))
}

// The simulator runs as deploy/simulator's service account: it scales the
// app and the load Deployment through /scale with get and patch only, and
// keeps its state in the one ConfigMap; a restart resumes the cycle. The
// same identity cannot patch a Deployment's spec, scale anything else,
// update /scale, read other ConfigMaps or list pods.
func TestSimulatorAsItsServiceAccount(t *testing.T) {
	l := shared
	ns, other := "simulate-it", "simulate-other"
	l.namespace(t, ns)
	l.namespace(t, other)
	applySimulatorManifests(t, l, ns)
	l.apply(t, simWorkload(ns, "logistics", 1)+"---\n"+simWorkload(ns, "load", 0)+"---\n"+
		simWorkload(ns, "unlisted", 1)+"---\n"+simWorkload(other, "logistics", 1))

	cfg := asServiceAccount(t, l, ns, "simulate")
	client, scaler, err := simulate.Clients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app, _ := simulate.ParseTarget("deployment/logistics")
	loadTarget, _ := simulate.ParseTarget("deployment/load")

	// A fast cycle: a half sine over 4 one-second steps; replicas 1, 2, 3,
	// 2 and sessions 0, 3, 4, 3 (2 per load pod: 0, 2, 2, 2 pods).
	cycle := simulate.DefaultCycle()
	cycle.Profile = load.HalfSine{Min: 0, Max: 1, Period: 4 * time.Second, Step: time.Second}
	cycle.Step = time.Second
	cycle.Scale, cycle.AppRatio, cycle.AppMin, cycle.SessionRatio, cycle.SessionMin = 4, 0.5, 1, 1, 0
	var mu sync.Mutex
	var events []simulate.Event
	simCfg := simulate.Config{
		Cycle: cycle, Namespace: ns, Target: app, Scaler: scaler, Client: client, StateConfigMap: "simulate-state",
		Sessions: simulate.LoadDeployment{Scaler: scaler, Namespace: ns, Target: loadTarget, PerPod: 2},
		Duration: 2500 * time.Millisecond,
		Events:   func(ev simulate.Event) { mu.Lock(); events = append(events, ev); mu.Unlock() },
	}
	run := func() []simulate.Event {
		t.Helper()
		mu.Lock()
		events = nil
		mu.Unlock()
		s, err := simulate.New(simCfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]simulate.Event(nil), events...)
	}
	replicas := func(ns, name string) int32 {
		d, err := l.client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}

	evs := run()
	var steps []simulate.Point
	for _, ev := range evs {
		switch ev.Kind {
		case simulate.EventError:
			t.Errorf("error event: %s", ev.Error)
		case simulate.EventStep:
			steps = append(steps, ev.Point)
		}
	}
	if evs[0].Kind != simulate.EventStart || len(steps) < 2 {
		t.Fatalf("events %+v", evs)
	}
	lastStep := steps[len(steps)-1]
	if got := replicas(ns, "logistics"); got != int32(lastStep.Replicas) {
		t.Errorf("logistics at %d replicas, the last step (%+v) wants %d", got, lastStep, lastStep.Replicas)
	}
	if got := replicas(ns, "load"); got != (simulate.LoadDeployment{PerPod: 2}).Pods(lastStep.Sessions) {
		t.Errorf("load at %d replicas after step %+v", got, lastStep)
	}
	if got := replicas(other, "logistics"); got != 1 {
		t.Errorf("the other namespace's logistics moved to %d", got)
	}
	cm, err := l.client.CoreV1().ConfigMaps(ns).Get(context.Background(), "simulate-state", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["step"] != strconv.Itoa(lastStep.Step) {
		t.Errorf("state %v after step %d", cm.Data, lastStep.Step)
	}
	start := cm.Data["start"]

	// A restart resumes from the ConfigMap: the same start, later steps.
	evs = run()
	if evs[0].Kind != simulate.EventResume || evs[0].Start.UTC().Format(time.RFC3339Nano) != start {
		t.Errorf("restart began with %+v, want a resume of the cycle started %s", evs[0], start)
	}
	// The step the clock is at is applied at once; if it is the one
	// applied last, nothing changes (the app already has its replicas).
	later := false
	for _, ev := range evs {
		switch {
		case ev.Kind == simulate.EventError:
			t.Errorf("error event after the restart: %s", ev.Error)
		case ev.Kind != simulate.EventStep:
		case ev.Point.Step < lastStep.Step:
			t.Errorf("after the restart step %d (the last one before was %d)", ev.Point.Step, lastStep.Step)
		case ev.Point.Step == lastStep.Step && ev.PrevReplicas != int32(ev.Point.Replicas):
			t.Errorf("re-applying step %d found %d replicas, want %d", ev.Point.Step, ev.PrevReplicas, ev.Point.Replicas)
		case ev.Point.Step > lastStep.Step:
			later = true
		}
	}
	if !later {
		t.Errorf("no step after %d following the restart: %+v", lastStep.Step, evs)
	}
	cm, err = l.client.CoreV1().ConfigMaps(ns).Get(context.Background(), "simulate-state", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(cm.Data["step"]); cm.Data["start"] != start || n <= lastStep.Step {
		t.Errorf("state after the restart %v (start was %s, step %d)", cm.Data, start, lastStep.Step)
	}

	// What the identity must not do.
	ctx := context.Background()
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	forbidden := map[string]error{}
	_, forbidden["patch the Deployment's spec"] = sa.AppsV1().Deployments(ns).Patch(ctx, "logistics", types.MergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"terminationGracePeriodSeconds":2}}}}`), metav1.PatchOptions{})
	forbidden["scale in another namespace"] = scaler.SetReplicas(ctx, other, app, 5)
	forbidden["scale another Deployment"] = scaler.SetReplicas(ctx, ns, simulate.Target{Resource: deployments, Name: "unlisted"}, 5)
	_, forbidden["update /scale"] = sa.AppsV1().Deployments(ns).UpdateScale(ctx, "logistics",
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "logistics", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}}, metav1.UpdateOptions{})
	_, forbidden["list pods"] = sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	_, forbidden["get the Deployment"] = sa.AppsV1().Deployments(ns).Get(ctx, "logistics", metav1.GetOptions{})
	_, forbidden["read another ConfigMap"] = sa.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as the simulator's service account: %v, want Forbidden", what, err)
		}
	}
	if got := replicas(other, "logistics"); got != 1 {
		t.Errorf("the other namespace's logistics moved to %d", got)
	}
	if got := replicas(ns, "unlisted"); got != 1 {
		t.Errorf("unlisted moved to %d", got)
	}

	// An Argo Rollout is scaled the same way (the Role's argoproj.io rule).
	l.apply(t, fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: logistics, namespace: %s}
spec:
  replicas: 1
  selector: {matchLabels: {app: logistics-ro}}
  strategy: {canary: {}}
  template:
    metadata: {labels: {app: logistics-ro}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: shell
        args: ["-c", "exec /bin/sleep 3600"]
`, ns))
	ro, _ := simulate.ParseTarget("rollout/logistics")
	if err := scaler.SetReplicas(ctx, ns, ro, 2); err != nil {
		t.Fatalf("scaling the Rollout as the simulator: %v", err)
	}
	if n, err := scaler.Replicas(ctx, ns, ro); err != nil || n != 2 {
		t.Errorf("the Rollout's scale after the patch: %d (%v), want 2", n, err)
	}
}

// zerodrop simulate from a kubeconfig: progress as JSON lines on stderr
// and EMF lines on stdout (--emf), the Deployment at the cycle's replicas.
func TestSimulateCommand(t *testing.T) {
	l := shared
	ns := "simulate-cmd"
	l.namespace(t, ns)
	l.apply(t, simWorkload(ns, "logistics", 1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(binary, "simulate", "--kubeconfig", l.state.Kubeconfig, "-n", ns, "--target", "deployment/logistics",
		"--profile", "constant:1", "--step", "1s", "--scale", "4", "--app-ratio", "0.5", "--duration", "3s",
		"--state-configmap", "", "--emf", "-o", "json", "--metrics-addr", metricsAddr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	// While it runs, /metrics shows the wanted replicas.
	var metrics string
	for i := 0; i < 200 && len(done) == 0 && !strings.Contains(metrics, "zerodrop_simulate_replicas_wanted 3"); i++ {
		time.Sleep(50 * time.Millisecond)
		if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
		}
	}
	if !strings.Contains(metrics, "zerodrop_simulate_replicas_wanted 3") || !strings.Contains(metrics, `zerodrop_simulate_scale_errors_total{what="app"} 0`) {
		t.Errorf("/metrics while running:\n%s", metrics)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("zerodrop simulate: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("zerodrop simulate did not stop after --duration\n%s", stderr.String())
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var ev simulate.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("progress line %q: %v", line, err)
		}
		kinds = append(kinds, string(ev.Kind))
	}
	if got := strings.Join(kinds, ","); got != "start,step,step,step,stop" {
		t.Errorf("events %s, want start,step,step,step,stop:\n%s", got, stderr.String())
	}
	emf := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(emf) != 3 || !strings.Contains(emf[0], `"Namespace":"appsimulator"`) || !strings.Contains(emf[0], `"app_workers":3`) {
		t.Errorf("EMF lines:\n%s", stdout.String())
	}
	d, err := l.client.AppsV1().Deployments(ns).Get(context.Background(), "logistics", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("logistics after the command: %d replicas, want 3", *d.Spec.Replicas)
	}
}
