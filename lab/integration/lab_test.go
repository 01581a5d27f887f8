//go:build !nolab

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"zerodrop.dev/zerodrop/lab/labevent"
)

func TestLabUp(t *testing.T) {
	t.Logf("lab up --nodes 3 ready in %s", shared.Startup.Round(10*time.Millisecond))
	nodes, err := shared.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("nodes: got %d, want 3", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		if !ready {
			t.Errorf("node %s not Ready: %+v", n.Name, n.Status.Conditions)
		}
		if _, err := shared.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), n.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("node %s has no lease: %v", n.Name, err)
		}
	}
	// lab status lists the components, nodes and pods.
	out, err := execCommand(binary, "lab", "status", "--dir", shared.dir, "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("lab status: %v %s", err, out)
	}
	var st struct {
		Components []struct {
			Name    string
			Running bool
		}
		Nodes []struct{ Name string }
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("lab status -o json: %v\n%s", err, out)
	}
	if len(st.Components) != 4 || len(st.Nodes) < 3 {
		t.Errorf("lab status: %d components, %d nodes: %s", len(st.Components), len(st.Nodes), out)
	}
	for _, c := range st.Components {
		if !c.Running {
			t.Errorf("component %s not running", c.Name)
		}
	}
	// RBAC is on: a node identity cannot list secrets.
	if out, err := shared.kubectl(t, "", "auth", "can-i", "list", "secrets", "--as", "system:node:lab-node-1", "--as-group", "system:nodes", "-A"); err == nil || !strings.Contains(out, "no") {
		t.Errorf("a node may list every secret (RBAC/Node authorizer off?): %v %s", err, out)
	}
}

func TestDeploymentServesOnPodAddresses(t *testing.T) {
	ns := "serve"
	shared.namespace(t, ns)
	start := time.Now()
	shared.apply(t, serveDeployment(ns, "orders", 6, "1", "1s", 30)+`---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: serve}
spec:
  selector: {app: orders}
  ports: [{port: 80, targetPort: http}]
`)
	pods := shared.waitReady(t, ns, "app=orders", 6, 60*time.Second)
	t.Logf("6 pods Ready in %s", time.Since(start).Round(10*time.Millisecond))
	seen := map[string]bool{}
	for _, p := range pods {
		if seen[p.Status.PodIP] {
			t.Errorf("pod address %s used twice", p.Status.PodIP)
		}
		seen[p.Status.PodIP] = true
		code, err := shared.get(context.Background(), "http://"+p.Status.PodIP+":8000/logistics/health")
		if err != nil || code != 200 {
			t.Errorf("pod %s at %s: %d %v", p.Name, p.Status.PodIP, code, err)
		}
	}
	waitFor(t, 30*time.Second, "an EndpointSlice with 6 ready endpoints", func() (bool, error) {
		slices, err := shared.client.DiscoveryV1().EndpointSlices(ns).List(context.Background(),
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=orders"})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready && seen[e.Addresses[0]] {
					ready++
				}
			}
		}
		return ready == 6, fmt.Errorf("%d ready endpoints", ready)
	})
	t.Logf("EndpointSlice with 6 ready endpoints %s after apply", time.Since(start).Round(10*time.Millisecond))
	// kubectl scale and rollout restart work as against any cluster.
	if out, err := shared.kubectl(t, "", "-n", ns, "scale", "deployment/orders", "--replicas=3"); err != nil {
		t.Fatalf("scale: %v %s", err, out)
	}
	shared.waitReady(t, ns, "app=orders", 3, 60*time.Second)
	if out, err := shared.kubectl(t, "", "-n", ns, "rollout", "restart", "deployment/orders"); err != nil {
		t.Fatalf("rollout restart: %v %s", err, out)
	}
	if out, err := shared.kubectl(t, "", "-n", ns, "rollout", "status", "deployment/orders", "--timeout=90s"); err != nil {
		t.Fatalf("rollout status: %v %s", err, out)
	}
	for _, p := range shared.waitReady(t, ns, "app=orders", 3, 60*time.Second) {
		if seen[p.Status.PodIP] && p.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
			t.Errorf("pod %s survived the rollout restart", p.Name)
		}
	}
}

// labEvents reads the lab's event stream for one pod.
func labEvents(t *testing.T, object string) []labevent.Event {
	t.Helper()
	f, err := os.Open(filepath.Join(shared.dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labevent.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e labevent.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Object == object {
			out = append(out, e)
		}
	}
	return out
}

func eventTime(t *testing.T, events []labevent.Event, kind string) time.Time {
	t.Helper()
	for _, e := range events {
		if e.Kind == kind {
			return e.Time
		}
	}
	t.Fatalf("no %s event in %+v", kind, events)
	return time.Time{}
}

func waitGone(t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "pod "+name+" deleted", func() (bool, error) {
		_, err := shared.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err != nil && strings.Contains(err.Error(), "not found"), err
	})
}

func TestDeletePodRunsTheChainInOrder(t *testing.T) {
	ns := "chain"
	shared.namespace(t, ns)
	shared.apply(t, serveDeployment(ns, "chain", 1, "2", "1s", 30))
	pod := shared.waitReady(t, ns, "app=chain", 1, 60*time.Second)[0]
	if out, err := shared.kubectl(t, "", "-n", ns, "delete", "pod", pod.Name, "--wait=false"); err != nil {
		t.Fatalf("delete: %v %s", err, out)
	}
	waitGone(t, ns, pod.Name, 60*time.Second)
	ev := labEvents(t, ns+"/"+pod.Name)
	term := eventTime(t, ev, "PodTerminating")
	pre := eventTime(t, ev, "PreStopStarted")
	preDone := eventTime(t, ev, "PreStopFinished")
	sigterm := eventTime(t, ev, "SIGTERM")
	exited := eventTime(t, ev, "ContainerExited")
	deleted := eventTime(t, ev, "PodDeleted")
	t.Logf("terminating→preStop %s, preStop %s, →SIGTERM %s, SIGTERM→exit %s, exit→deleted %s",
		pre.Sub(term), preDone.Sub(pre), sigterm.Sub(preDone), exited.Sub(sigterm), deleted.Sub(exited))
	if !(term.Compare(pre) <= 0 && pre.Before(preDone) && preDone.Compare(sigterm) <= 0 && sigterm.Before(exited) && exited.Compare(deleted) <= 0) {
		t.Fatalf("steps out of order: %+v", ev)
	}
	if d := preDone.Sub(pre); d < 2*time.Second || d > 3*time.Second {
		t.Errorf("preStop sleep of 2s took %s", d)
	}
	// zerodrop serve keeps serving for its 1s shutdown delay after SIGTERM.
	if d := exited.Sub(sigterm); d < time.Second || d > 5*time.Second {
		t.Errorf("SIGTERM→exit %s, want the app's 1s delay", d)
	}
	for _, e := range ev {
		if e.Kind == "SIGKILL" {
			t.Errorf("a graceful app was SIGKILLed: %+v", e)
		}
	}
	// The same steps as Kubernetes Events, for kubectl describe.
	events, err := shared.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range events.Items {
		reasons = append(reasons, e.Reason)
	}
	for _, want := range []string{"Scheduled", "Pulled", "Created", "Started", "Killing"} {
		if !strings.Contains(strings.Join(reasons, " "), want) {
			t.Errorf("no %s Event for the pod (have %v)", want, reasons)
		}
	}
}

// stubborn is a pod whose app ignores SIGTERM.
func stubborn(ns, name, preStop string, grace int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  terminationGracePeriodSeconds: %d
  containers:
  - name: app
    image: shell
    args: ["-c", "trap '' TERM; while :; do sleep 0.2; done"]
    lifecycle:
      preStop:
        exec: {command: ["/bin/sleep", "%s"]}
`, name, ns, grace, preStop)
}

func TestSIGKILLAtGracePeriod(t *testing.T) {
	ns := "stubborn"
	shared.namespace(t, ns)
	cases := []struct {
		name, preStop string
		grace         int
		wantKillAfter time.Duration // from deletion
	}{
		{"prestop-done", "1", 4, 4 * time.Second},
		// preStop still running at the end of the grace period: SIGTERM
		// then, SIGKILL 2 s later (the kubelet's one-off extension).
		{"prestop-overrun", "30", 3, 5 * time.Second},
	}
	for _, tc := range cases {
		shared.apply(t, stubborn(ns, tc.name, tc.preStop, tc.grace))
	}
	for _, tc := range cases {
		waitFor(t, 60*time.Second, tc.name+" running", func() (bool, error) {
			p, err := shared.client.CoreV1().Pods(ns).Get(context.Background(), tc.name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		if out, err := shared.kubectl(t, "", "-n", ns, "delete", "pod", tc.name, "--wait=false"); err != nil {
			t.Fatalf("delete: %v %s", err, out)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			waitGone(t, ns, tc.name, 60*time.Second)
			ev := labEvents(t, ns+"/"+tc.name)
			term := eventTime(t, ev, "PodTerminating")
			sigterm := eventTime(t, ev, "SIGTERM")
			kill := eventTime(t, ev, "SIGKILL")
			exited := eventTime(t, ev, "ContainerExited")
			t.Logf("SIGTERM at +%s, SIGKILL at +%s, exit at +%s", sigterm.Sub(term), kill.Sub(term), exited.Sub(term))
			if d := kill.Sub(term); d < tc.wantKillAfter-100*time.Millisecond || d > tc.wantKillAfter+time.Second {
				t.Errorf("SIGKILL %s after deletion, want %s", d, tc.wantKillAfter)
			}
			if tc.name == "prestop-overrun" {
				if d := kill.Sub(sigterm); d < 1900*time.Millisecond || d > 2500*time.Millisecond {
					t.Errorf("SIGTERM→SIGKILL %s after an overrunning preStop, want the 2s extension", d)
				}
				eventTime(t, ev, "PreStopTimedOut")
			}
		})
	}
}

func TestDrainHonoursPodDisruptionBudget(t *testing.T) {
	// Without a budget the drain evicts a node's pods together: the failure
	// the budget exists for. With maxUnavailable 1 the real API server
	// refuses the second eviction until a replacement is Ready.
	if lowest := drainAndWatch(t, "drain-nopdb", false); lowest > 4 {
		t.Errorf("without a PodDisruptionBudget the drain never had two pods down (min available %d of 6): the test cannot tell", lowest)
	}
	if lowest := drainAndWatch(t, "drain-pdb", true); lowest < 5 {
		t.Errorf("two pods of the deployment were down at once during the drain despite maxUnavailable 1 (min available %d of 6)", lowest)
	}
}

// drainAndWatch deploys 6 pods (2 per node), drains the node with the most
// and returns the fewest available pods seen during the drain.
func drainAndWatch(t *testing.T, ns string, withPDB bool) int {
	shared.namespace(t, ns)
	manifest := serveDeployment(ns, "web", 6, "1", "1s", 30)
	if withPDB {
		manifest += fmt.Sprintf(`---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: %s}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: web}}
`, ns)
	}
	shared.apply(t, manifest)
	pods := shared.waitReady(t, ns, "app=web", 6, 90*time.Second)
	perNode := map[string]int{}
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
	}
	victim, most := "", 0
	for n, c := range perNode {
		if c > most {
			victim, most = n, c
		}
	}
	if most < 2 {
		t.Fatalf("no node holds 2 pods of the deployment: %v", perNode)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := shared.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	available := map[string]bool{}
	for _, p := range pods {
		available[p.Name] = true
	}
	minAvailable := len(available)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for e := range w.ResultChan() {
			p, ok := e.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			available[p.Name] = e.Type != watch.Deleted && p.DeletionTimestamp == nil && podReady(p)
			n := 0
			for _, a := range available {
				if a {
					n++
				}
			}
			minAvailable = min(minAvailable, n)
		}
	}()
	start := time.Now()
	out, err := shared.kubectlDrain(t, victim)
	if err != nil {
		t.Fatalf("drain %s: %v\n%s", victim, err, out)
	}
	shared.waitReady(t, ns, "app=web", 6, 90*time.Second)
	cancel()
	<-watchDone
	t.Logf("%s: drained %s (%d pods of the deployment) in %s; min available %d of 6",
		ns, victim, most, time.Since(start).Round(10*time.Millisecond), minAvailable)
	if !strings.Contains(out, "evicted") {
		t.Errorf("drain output shows no eviction:\n%s", out)
	}
	if out, err := shared.kubectl(t, "", "uncordon", victim); err != nil {
		t.Errorf("uncordon: %v %s", err, out)
	}
	if out, err := shared.kubectl(t, "", "delete", "namespace", ns, "--wait=false"); err != nil {
		t.Errorf("delete namespace: %v %s", err, out)
	}
	return minAvailable
}

func (l *testLab) kubectlDrain(t *testing.T, node string) (string, error) {
	t.Helper()
	cmd := execCommand(binary, "lab", "drain", "--dir", l.dir, node)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestBadInput(t *testing.T) {
	ns := "bad"
	shared.namespace(t, ns)
	out, err := shared.kubectl(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: neg, namespace: bad}
spec:
  replicas: -1
  selector: {matchLabels: {app: neg}}
  template:
    metadata: {labels: {app: neg}}
    spec: {containers: [{name: a, image: zerodrop}]}
`, "apply", "-f", "-")
	if err == nil || !strings.Contains(out, "spec.replicas: Invalid value: -1") {
		t.Errorf("a negative replica count: want the API server's message, got %v\n%s", err, out)
	}
	shared.apply(t, `apiVersion: v1
kind: Pod
metadata: {name: unknown-image, namespace: bad}
spec:
  containers: [{name: a, image: registry.example/nothing:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: port-taken, namespace: bad}
spec:
  containers:
  - {name: a, image: zerodrop, args: ["serve", "--addr", "$(POD_IP):8000", "--db", "sqlite:a.db"], env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]}
  - {name: b, image: zerodrop, args: ["serve", "--addr", "$(POD_IP):8000", "--db", "sqlite:b.db"], env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]}
`)
	// A command the image does not have: the runtime's StartError, as for a
	// shell-less image asked to run /bin/sh.
	shared.apply(t, `apiVersion: v1
kind: Pod
metadata: {name: no-binary, namespace: bad}
spec:
  containers: [{name: a, image: zerodrop, command: ["/bin/sh", "-c", "sleep 1"]}]
`)
	waitFor(t, 30*time.Second, "StartError for a command missing from the image", func() (bool, error) {
		p, err := shared.client.CoreV1().Pods(ns).Get(context.Background(), "no-binary", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, err
		}
		cs := p.Status.ContainerStatuses[0]
		for _, term := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if term != nil && term.Reason == "StartError" && strings.Contains(term.Message, "executable file not found") {
				return true, nil
			}
		}
		return false, fmt.Errorf("%+v", cs)
	})
	waitFor(t, 30*time.Second, "ErrImagePull on the unknown image", func() (bool, error) {
		p, err := shared.client.CoreV1().Pods(ns).Get(context.Background(), "unknown-image", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, err
		}
		r := p.Status.ContainerStatuses[0].State.Waiting.Reason
		return r == "ErrImagePull" || r == "ImagePullBackOff", errors.New(r)
	})
	out, _ = shared.kubectl(t, "", "-n", ns, "describe", "pod", "unknown-image")
	if !strings.Contains(out, "Failed to pull image") {
		t.Errorf("describe shows no pull failure:\n%s", out)
	}
	waitFor(t, 60*time.Second, "a restarting container when the port is taken", func() (bool, error) {
		p, err := shared.client.CoreV1().Pods(ns).Get(context.Background(), "port-taken", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount > 0 && c.LastTerminationState.Terminated != nil && c.LastTerminationState.Terminated.ExitCode != 0 {
				return true, nil
			}
		}
		return false, fmt.Errorf("%+v", p.Status.ContainerStatuses)
	})
}

func TestNodeLossTimesOutAndEvicts(t *testing.T) {
	ns := "loss"
	shared.namespace(t, ns)
	// A fourth node, so losing it leaves the others for the shared tests.
	out, err := execCommand(binary, "lab", "add-node", "--dir", shared.dir, "doomed").CombinedOutput()
	if err != nil {
		t.Fatalf("add-node: %v %s", err, out)
	}
	shared.apply(t, serveDeployment(ns, "victim", 2, "1", "1s", 30)+`      nodeSelector: {kubernetes.io/hostname: doomed}
`)
	pods := shared.waitReady(t, ns, "app=victim", 2, 60*time.Second)
	addr := pods[0].Status.PodIP + ":8000"
	conn, err := shared.podDial(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s before the loss: %v", addr, err)
	}
	lost := time.Now()
	if out, err := execCommand(binary, "lab", "kill-node", "--dir", shared.dir, "doomed").CombinedOutput(); err != nil {
		t.Fatalf("kill-node: %v %s", err, out)
	}
	// The open connection gets no FIN or RST: a read just waits.
	_ = conn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	_, err = conn.Write([]byte("GET /logistics/health HTTP/1.1\r\nHost: x\r\n\r\n"))
	if err == nil {
		_, err = conn.Read(make([]byte, 1))
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("an open connection to a lost node: want a timeout, got %v", err)
	}
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	_, err = shared.podDial(ctx, "tcp", addr)
	cancel()
	if err == nil || !(errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout")) {
		t.Errorf("a new connection to a lost node: want a connect timeout (as on AWS), got %v", err)
	}
	waitFor(t, 60*time.Second, "the node-lifecycle controller to mark doomed not ready", func() (bool, error) {
		n, err := shared.client.CoreV1().Nodes().Get(context.Background(), "doomed", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("node NotReady %s after the loss", time.Since(lost).Round(100*time.Millisecond))
	waitFor(t, 60*time.Second, "taint-based eviction of the lost node's pods", func() (bool, error) {
		for _, p := range shared.pods(t, ns, "app=victim") {
			if p.Spec.NodeName == "doomed" && p.DeletionTimestamp == nil {
				return false, nil
			}
		}
		return true, nil
	})
	t.Logf("pods evicted %s after the loss", time.Since(lost).Round(100*time.Millisecond))
}
