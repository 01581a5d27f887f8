//go:build !nolab

package deploytest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The lab is booted once for the dry-run tests, by the first that needs it.
var (
	labOnce sync.Once
	labErr  error
	theLab  *lab
)

type lab struct {
	binary     string
	kubeconfig string
	cmd        *exec.Cmd
	out        *bytes.Buffer
	exited     chan struct{}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theLab != nil {
		theLab.stop()
	}
	os.Exit(code)
}

// bootLab starts "zerodrop lab up --nodes 1" with the binary from
// ZERODROP_LAB_BIN (or one built here with the control plane: minutes on
// a cold build cache) and waits for its kubeconfig.
func bootLab(t *testing.T) *lab {
	t.Helper()
	labOnce.Do(func() { theLab, labErr = startLab() })
	if labErr != nil {
		t.Fatal(labErr)
	}
	return theLab
}

func startLab() (*lab, error) {
	tmp, err := os.MkdirTemp("", "zerodrop-deploytest-")
	if err != nil {
		return nil, err
	}
	binary := os.Getenv("ZERODROP_LAB_BIN")
	if binary == "" {
		binary = filepath.Join(tmp, "zerodrop")
		fmt.Fprintln(os.Stderr, "building zerodrop with the lab (set ZERODROP_LAB_BIN to reuse a build)")
		build := exec.Command("go", "build", "-o", binary, "zerodrop.dev/zerodrop/cmd/zerodrop")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building zerodrop: %w", err)
		}
	}
	dir := filepath.Join(tmp, "lab")
	cmd := exec.Command(binary, "lab", "up", "--dir", dir, "--nodes", "1")
	out := &bytes.Buffer{}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(out, pw)
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting lab up: %w", err)
	}
	l := &lab{binary: binary, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); pw.Close(); close(l.exited) }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if kc, ok := strings.CutPrefix(sc.Text(), "export KUBECONFIG="); ok {
				ready <- kc
				_, _ = io.Copy(io.Discard, pr)
				return
			}
		}
		ready <- ""
	}()
	select {
	case kc := <-ready:
		if kc == "" {
			return nil, fmt.Errorf("lab up failed:\n%s", out)
		}
		l.kubeconfig = kc
	case <-time.After(120 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("lab up not ready in 120s:\n%s", out)
	}
	return l, nil
}

func (l *lab) stop() {
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-time.After(90 * time.Second):
		_ = l.cmd.Process.Kill()
	}
}

func (l *lab) kubectl(args ...string) (string, error) {
	cmd := exec.Command(l.binary, append([]string{"kubectl", "--kubeconfig", l.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The namespace must exist for a dry-run of the objects in it: a dry-run
// creates nothing, not even the Namespace of the same apply.
func ensureNamespace(t *testing.T, l *lab) {
	t.Helper()
	out, err := l.kubectl("create", "namespace", "zerodrop", "--save-config")
	if err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("kubectl create namespace zerodrop: %v\n%s", err, out)
	}
}

// Every overlay is accepted by the real kube-apiserver (v1.34): schema,
// defaulting, validation and admission, with field validation strict, so
// a misspelt field fails too.
func TestServerSideDryRun(t *testing.T) {
	l := bootLab(t)
	ensureNamespace(t, l)
	for _, overlay := range []string{"../overlays/before", "../overlays/after"} {
		t.Run(filepath.Base(overlay), func(t *testing.T) {
			out, err := l.kubectl("apply", "--dry-run=server", "--validate=strict", "-k", overlay)
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server -k %s: %v\n%s", overlay, err, out)
			}
			for _, obj := range []string{"namespace/zerodrop", "deployment.apps/logistics", "service/logistics", "ingress.networking.k8s.io/logistics"} {
				if !strings.Contains(out, obj) {
					t.Errorf("kubectl apply -k %s: no %s in\n%s", overlay, obj, out)
				}
			}
			if overlay == "../overlays/after" && !strings.Contains(out, "poddisruptionbudget.policy/logistics") {
				t.Errorf("kubectl apply -k %s: no PodDisruptionBudget in\n%s", overlay, out)
			}
			// Nothing was created.
			if out, err := l.kubectl("get", "deployment", "-n", "zerodrop", "-o", "name"); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("after a dry-run, deployments in zerodrop: %q, %v; want none", out, err)
			}
		})
	}
}

// The dry-run fails when a manifest is wrong, so the test above can fail:
// a misspelt field and a value the API server rejects.
func TestServerSideDryRunRejects(t *testing.T) {
	l := bootLab(t)
	ensureNamespace(t, l)
	after, err := filepath.Abs("../overlays/after")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, patch, want string }{
		{"unknown field", `[{"op": "add", "path": "/spec/template/spec/terminationGracePeriod", "value": 60}]`, "unknown field"},
		{"invalid value", `[{"op": "replace", "path": "/spec/replicas", "value": -1}]`, "spec.replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// kustomize takes a base by a relative path only.
			rel, err := filepath.Rel(dir, after)
			if err != nil {
				t.Fatal(err)
			}
			k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [%q]
patches:
  - target: {kind: Deployment, name: logistics}
    patch: '%s'
`, rel, tc.patch)
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := l.kubectl("apply", "--dry-run=server", "--validate=strict", "-k", dir)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("dry-run of a broken Deployment: err %v, output %q; want a failure naming %q", err, out, tc.want)
			}
		})
	}
}
