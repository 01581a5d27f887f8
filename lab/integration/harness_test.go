//go:build !nolab

package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"zerodrop.dev/zerodrop/lab"
	"zerodrop.dev/zerodrop/lab/labtest"
	"zerodrop.dev/zerodrop/lab/netns"
)

var (
	binary string
	shared *testLab
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "zerodrop-lab-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if binary, err = labtest.Binary(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	images := filepath.Join(tmp, "images.yaml")
	if err := os.WriteFile(images, []byte(shellImage()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shared, err = startLab(filepath.Join(tmp, "lab"), "--nodes", "3",
		"--node-monitor-grace-period", "25s", "--toleration-seconds", "4", "--images", images,
		"--lb-reconcile-lag", "1s", "--lb-api-latency", "500ms", "--lb-propagation", "3s", "--lb-modify-rule-lag", "4s")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	shared.Stop()
	return code
}

// shellImage maps a busybox-like image to this machine's shell and sleep,
// for apps that misbehave on purpose (ignore SIGTERM).
func shellImage() string {
	sleep, _ := exec.LookPath("sleep")
	return fmt.Sprintf(`- match: shell
  entrypoint: ["/bin/sh"]
  files: {"/bin/sh": "/bin/sh", "/bin/sleep": %q}
`, sleep)
}

// testLab is a running lab with a client and a dialer into its network
// namespace.
type testLab struct {
	*labtest.Lab
	dir     string
	state   lab.State
	client  kubernetes.Interface
	podDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func startLab(dir string, args ...string) (*testLab, error) {
	ll, err := labtest.Start(binary, dir, args...)
	if err != nil {
		return nil, err
	}
	l := &testLab{Lab: ll, dir: dir}
	if l.state, err = lab.ReadState(dir); err != nil {
		ll.Stop()
		return nil, err
	}
	if l.client, err = lab.Clientset(l.state.Kubeconfig); err != nil {
		ll.Stop()
		return nil, err
	}
	l.podDial = netns.DialerInto(l.state.LabPID)
	return l, nil
}

// kubectl runs the built-in kubectl against the lab.
func (l *testLab) kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"kubectl", "--kubeconfig", l.state.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *testLab) apply(t *testing.T, yaml string) {
	t.Helper()
	if out, err := l.kubectl(t, yaml, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

func (l *testLab) namespace(t *testing.T, name string) {
	t.Helper()
	l.apply(t, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", name))
}

// waitFor polls cond every 100 ms until it returns true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (l *testLab) pods(t *testing.T, ns, selector string) []corev1.Pod {
	t.Helper()
	list, err := l.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	return list.Items
}

func (l *testLab) waitReady(t *testing.T, ns, selector string, n int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	waitFor(t, timeout, fmt.Sprintf("%d ready pods %s in %s", n, selector, ns), func() (bool, error) {
		pods = pods[:0]
		for _, p := range l.pods(t, ns, selector) {
			if podReady(&p) && p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
		return len(pods) == n, nil
	})
	return pods
}

// get does an HTTP GET to a pod address inside the lab network.
func (l *testLab) get(ctx context.Context, url string) (int, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: l.podDial, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// serveDeployment is a Deployment of zerodrop serve listening on its pod
// address, with a readiness probe, a preStop sleep and a shutdown delay.
func serveDeployment(ns, name string, replicas int, preStop, delay string, grace int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      terminationGracePeriodSeconds: %[6]d
      containers:
      - name: app
        image: zerodrop.dev/zerodrop:lab
        args: ["serve", "--addr", "$(POD_IP):8000", "--db", "sqlite:orders.db", "--shutdown-delay", "%[5]s"]
        env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        ports: [{name: http, containerPort: 8000}]
        readinessProbe:
          httpGet: {path: /logistics/health, port: http}
          periodSeconds: 1
        lifecycle:
          preStop:
            sleep: {seconds: %[4]s}
`, ns, name, replicas, preStop, delay, grace)
}

// trafficDuring sends bounded steady traffic (each of workers users sends
// at most 2000 requests) through host while fn runs and
// returns the status counts and transport errors.
func trafficDuring(host, path string, workers int, fn func()) (map[int]int, []string) {
	client := &http.Client{Timeout: 20 * time.Second} // above the ALB's 10 s connect timeout, so every failure is the ALB's answer
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	codes := map[int]int{}
	var errs []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000 && ctx.Err() == nil; i++ {
				resp, err := client.Get("http://" + host + path)
				mu.Lock()
				if err != nil {
					errs = append(errs, err.Error())
				} else {
					codes[resp.StatusCode]++
					resp.Body.Close()
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	fn()
	stop()
	wg.Wait()
	return codes, errs
}
