//go:build !nolab

package deploytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"zerodrop.dev/zerodrop/lab/labtest"
)

// The lab is booted once for the dry-run tests, by the first that needs it.
var (
	labOnce sync.Once
	labErr  error
	theLab  *lab
)

type lab struct {
	*labtest.Lab
	binary string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theLab != nil {
		theLab.Stop()
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
	binary, err := labtest.Binary(tmp)
	if err != nil {
		return nil, err
	}
	// --karpenter: the lab installs Karpenter's CRDs (NodePool, NodeClaim,
	// NodeOverlay) and its LabNodeClass, so the NodePools under deploy/ are
	// dry-run against their schemas.
	l, err := labtest.Start(binary, filepath.Join(tmp, "lab"), "--nodes", "1", "--karpenter")
	if err != nil {
		return nil, err
	}
	return &lab{Lab: l, binary: binary}, nil
}

func (l *lab) kubectl(args ...string) (string, error) {
	cmd := exec.Command(l.binary, append([]string{"kubectl", "--kubeconfig", l.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ensureNamespace creates a namespace for real: a dry-run creates nothing,
// not even the Namespace of the same apply, and the objects in it need it.
func ensureNamespace(t *testing.T, l *lab, ns string) {
	t.Helper()
	out, err := l.kubectl("create", "namespace", ns, "--save-config")
	if err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("kubectl create namespace %s: %v\n%s", ns, err, out)
	}
}

// rendered is one object of a kustomize build.
type rendered struct{ kind, name, namespace string }

// render builds a kustomization with the lab's kubectl and lists its
// objects.
func render(t *testing.T, l *lab, dir string) []rendered {
	t.Helper()
	out, err := l.kubectl("kustomize", dir)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	var objs []rendered
	for _, doc := range strings.Split(out, "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("kubectl kustomize %s: %v", dir, err)
		}
		if m == nil {
			continue
		}
		name, _ := get(m, "metadata", "name").(string)
		ns, _ := get(m, "metadata", "namespace").(string)
		kind, _ := m["kind"].(string)
		objs = append(objs, rendered{kind, name, ns})
	}
	return objs
}

// Every kustomization under deploy/ (the overlays, the load sessions, the
// trial PostgreSQL, the simulator once it is there) is accepted by the
// real kube-apiserver (v1.34): schema, defaulting, validation and
// admission, with field validation strict, so a misspelt field fails too.
func TestServerSideDryRun(t *testing.T) {
	l := bootLab(t)
	dirs := kustomizeDirs(t)
	for _, want := range []string{"overlays/before", "overlays/after", "load", "postgres"} {
		if !slices.Contains(dirs, want) {
			t.Errorf("no kustomization deploy/%s", want)
		}
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			path := filepath.Join(deployRoot, dir)
			objs := render(t, l, path)
			namespaces := map[string]bool{}
			for _, o := range objs {
				if o.kind == "Namespace" {
					namespaces[o.name] = true
				} else if o.namespace != "" {
					namespaces[o.namespace] = true
				}
			}
			for ns := range namespaces {
				ensureNamespace(t, l, ns)
			}
			out, err := l.kubectl("apply", "--dry-run=server", "--validate=strict", "-k", path)
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server -k deploy/%s: %v\n%s", dir, err, out)
			}
			// One line per object: "<resource>/<name> created (server dry run)".
			if got := strings.Count(out, "(server dry run)"); got != len(objs) {
				t.Errorf("kubectl apply -k deploy/%s: %d objects accepted, kustomize renders %d:\n%s", dir, got, len(objs), out)
			}
			for _, o := range objs {
				if !strings.Contains(out, "/"+o.name+" ") {
					t.Errorf("kubectl apply -k deploy/%s: no %s %s in\n%s", dir, o.kind, o.name, out)
				}
			}
			switch dir {
			case "overlays/before", "overlays/after":
				for _, obj := range []string{"namespace/zerodrop", "deployment.apps/logistics", "service/logistics", "ingress.networking.k8s.io/logistics"} {
					if !strings.Contains(out, obj) {
						t.Errorf("kubectl apply -k deploy/%s: no %s in\n%s", dir, obj, out)
					}
				}
				if dir == "overlays/after" && !strings.Contains(out, "poddisruptionbudget.policy/logistics") {
					t.Errorf("kubectl apply -k deploy/%s: no PodDisruptionBudget in\n%s", dir, out)
				}
			}
			// Nothing was created.
			for ns := range namespaces {
				if out, err := l.kubectl("get", "deployments,statefulsets,secrets,serviceaccounts", "-n", ns, "-o", "name"); err != nil || strings.Contains(out, "deployment") || strings.Contains(out, "statefulset") || strings.Contains(out, "zerodrop-db") {
					t.Errorf("after a dry-run, in %s: %q, %v; want none of ours", ns, out, err)
				}
			}
		})
	}
}

// noCRDHere are the API groups of deploy/ manifests whose CRDs neither the
// lab nor a module of go.mod carries: the dry-run cannot check them, and
// this list says so instead of skipping them without a word. (The lab
// installs TargetGroupBinding, Argo Rollouts' CRDs, and with --karpenter
// Karpenter's and its LabNodeClass.)
var noCRDHere = map[string]string{
	"karpenter.k8s.aws": "EC2NodeClass's CRD is in github.com/aws/karpenter-provider-aws, not in go.mod",
}

// The manifests under deploy/ that no kustomization includes (the
// Karpenter NodePool and EC2NodeClass in deploy/eks/, the lab's NodePool
// and LabNodeClass in deploy/lab/) are dry-run one document at a time.
func TestServerSideDryRunPlainManifests(t *testing.T) {
	l := bootLab(t)
	files := plainManifests(t)
	if !slices.Contains(files, "eks/nodepool.yaml") {
		t.Errorf("plain manifests %v: want eks/nodepool.yaml among them", files)
	}
	for _, f := range files {
		for i, doc := range readDocs(t, filepath.Join(deployRoot, f)) {
			apiVersion, _ := doc["apiVersion"].(string)
			group, _, ok := strings.Cut(apiVersion, "/")
			if !ok {
				group = ""
			}
			name := fmt.Sprintf("%s#%d_%v", f, i+1, doc["kind"])
			t.Run(name, func(t *testing.T) {
				if why, ok := noCRDHere[group]; ok {
					t.Logf("deploy/%s: %v %v not dry-run: %s", f, doc["kind"], get(doc, "metadata", "name"), why)
					return
				}
				if ns, _ := get(doc, "metadata", "namespace").(string); ns != "" {
					ensureNamespace(t, l, ns)
				}
				b, err := yaml.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "doc.yaml")
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := l.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", path)
				if err != nil || !strings.Contains(out, "(server dry run)") {
					t.Fatalf("kubectl apply --dry-run=server deploy/%s document %d: %v\n%s", f, i+1, err, out)
				}
			})
		}
	}
}

// The dry-run fails when a manifest is wrong, so the test above can fail:
// a misspelt field and a value the API server rejects.
func TestServerSideDryRunRejects(t *testing.T) {
	l := bootLab(t)
	ensureNamespace(t, l, "zerodrop")
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

// The NodePool's dry-run can fail too: with Karpenter's CRD installed (by
// lab up --karpenter), the
// API server checks the custom resource against its schema (a misspelt
// field) and its validation rules (a requirement operator it does not
// know).
func TestServerSideDryRunRejectsABrokenNodePool(t *testing.T) {
	l := bootLab(t)
	var pool map[string]any
	for _, d := range readDocs(t, filepath.Join(deployRoot, "eks/nodepool.yaml")) {
		if d["kind"] == "NodePool" {
			pool = d
		}
	}
	if pool == nil {
		t.Fatal("no NodePool in deploy/eks/nodepool.yaml")
	}
	for _, tc := range []struct {
		name   string
		mutate func(spec map[string]any)
		want   string
	}{
		{"unknown field", func(spec map[string]any) { spec["requirement"] = spec["requirements"] }, "unknown field"},
		{"invalid operator", func(spec map[string]any) {
			reqs := spec["requirements"].([]any)
			reqs[0].(map[string]any)["operator"] = "Within"
		}, "operator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := yaml.Marshal(pool)
			if err != nil {
				t.Fatal(err)
			}
			var broken map[string]any // a deep copy
			if err := yaml.Unmarshal(b, &broken); err != nil {
				t.Fatal(err)
			}
			tc.mutate(get(broken, "spec", "template", "spec").(map[string]any))
			if b, err = yaml.Marshal(broken); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "nodepool.yaml")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := l.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", path)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("dry-run of a broken NodePool: err %v, output %q; want a failure naming %q", err, out, tc.want)
			}
		})
	}
}
