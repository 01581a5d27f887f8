package deploytest

import (
	"context"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"zerodrop.dev/zerodrop/manifest"
)

// deployRoot is deploy/, seen from this package.
const deployRoot = ".."

// notKubernetes are the YAML files under deploy/ that are no Kubernetes
// objects: eksctl's ClusterConfig and Helm values.
var notKubernetes = []string{"eks/cluster.yaml", "eks/lbc-values.yaml"}

// yamlFiles lists the YAML files under deploy/, relative to it.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(deployRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "deploytest" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			rel, err := filepath.Rel(deployRoot, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// kustomizeDirs lists the directories under deploy/ with a
// kustomization.yaml, relative to deploy/ (base, overlays/after, load,
// postgres, simulator when it is there...).
func kustomizeDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, f := range yamlFiles(t) {
		if filepath.Base(f) == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	if len(dirs) < 5 {
		t.Fatalf("kustomizations under deploy/: %v; want at least base, overlays/before, overlays/after, load, postgres", dirs)
	}
	return dirs
}

// plainManifests lists the Kubernetes manifests under deploy/ that no
// kustomization includes (deploy/eks/nodepool.yaml...), relative to deploy/.
func plainManifests(t *testing.T) []string {
	t.Helper()
	dirs := kustomizeDirs(t)
	var files []string
	for _, f := range yamlFiles(t) {
		if slices.Contains(notKubernetes, f) || slices.Contains(dirs, filepath.Dir(f)) {
			continue
		}
		files = append(files, f)
	}
	return files
}

// Every YAML file under deploy/ parses, field names checked strictly
// against no schema but YAML's (duplicate keys fail); every document of a
// Kubernetes manifest names its apiVersion, kind and name; every
// kustomization builds.
func TestEveryManifestParses(t *testing.T) {
	for _, f := range yamlFiles(t) {
		docs := readDocs(t, filepath.Join(deployRoot, f))
		if slices.Contains(notKubernetes, f) || filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for i, d := range docs {
			// A kustomize patch may delete an object ($patch: delete) but
			// still names it.
			if d["apiVersion"] == nil || d["kind"] == nil || get(d, "metadata", "name") == nil {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", f, i+1)
			}
		}
	}
	for _, dir := range kustomizeDirs(t) {
		if _, err := manifest.Load(context.Background(), manifest.Sources{Kustomize: []string{filepath.Join(deployRoot, dir)}}); err != nil {
			t.Errorf("kustomize build deploy/%s: %v", dir, err)
		}
	}
}

// zerodrop check is clean on every kustomization but those that show
// the problems on purpose (base lacks the after overlay's timings,
// overlays/before is the seed's setup, overlays/canary-before and
// keepalive-before add seed 004's scale-down and a short idle timeout; see
// check_test.go): the load
// sessions, the trial PostgreSQL (which names what it ignores and why),
// the simulator once it is there.
func TestCheckIsCleanOnTheOtherManifests(t *testing.T) {
	for _, dir := range kustomizeDirs(t) {
		if dir == "base" || dir == "overlays/before" || dir == "overlays/canary-before" || dir == "overlays/keepalive-before" {
			continue
		}
		t.Run(dir, func(t *testing.T) {
			r := checkOverlay(t, filepath.Join(deployRoot, dir))
			if r.HasErrors() || len(ruleIDs(r, "warning")) > 0 {
				t.Errorf("deploy/%s: errors %v, warnings %v; want none", dir, ruleIDs(r, "error"), ruleIDs(r, "warning"))
			}
		})
	}
}

func readDeployment(t *testing.T, path string) *appsv1.Deployment {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &d
}

// hardened reports what a pod template lacks of the base's security
// settings.
func hardened(spec *corev1.PodSpec, c *corev1.Container) []string {
	var miss []string
	psc, sc := spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		miss = append(miss, "pod runAsNonRoot with runAsUser 65532")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		miss = append(miss, "seccomp RuntimeDefault")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		miss = append(miss, "readOnlyRootFilesystem")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		miss = append(miss, "allowPrivilegeEscalation false")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		miss = append(miss, "capabilities drop ALL")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		miss = append(miss, "CPU and memory requests, memory limit")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		miss = append(miss, "automountServiceAccountToken false")
	}
	return miss
}

// The load Deployment is hardened like the base, runs the orders sessions
// with a fixed number per pod (the one its annotation tells the
// simulator), writes EMF to stdout, serves /metrics where its scrape
// annotations say, and runs under a ServiceAccount without a token.
func TestLoadDeployment(t *testing.T) {
	base := readDeployment(t, filepath.Join(deployRoot, "base/deployment.yaml"))
	if miss := hardened(&base.Spec.Template.Spec, &base.Spec.Template.Spec.Containers[0]); len(miss) > 0 {
		t.Fatalf("the base itself lacks %v: the comparison is void", miss)
	}
	d := readDeployment(t, filepath.Join(deployRoot, "load/deployment.yaml"))
	spec := &d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("load: %d containers, want 1", len(spec.Containers))
	}
	c := &spec.Containers[0]
	if miss := hardened(spec, c); len(miss) > 0 {
		t.Errorf("load lacks %v", miss)
	}
	if c.Image != base.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("load image %q, want the app's %q (one image, kustomize sets both)", c.Image, base.Spec.Template.Spec.Containers[0].Image)
	}
	args := map[string]string{}
	if len(c.Args) == 0 || c.Args[0] != "load" {
		t.Fatalf("load args %v: want the load command", c.Args)
	}
	for _, a := range c.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	for k, want := range map[string]string{"--workload": "orders", "--emf": "-", "--url": "$(TARGET_URL)"} {
		if args[k] != want {
			t.Errorf("load %s=%q, want %q", k, args[k], want)
		}
	}
	if _, ok := args["--verify"]; !ok {
		t.Errorf("load runs without --verify: lost writes go unseen")
	}
	if args["--concurrency"] == "" || args["--concurrency"] != d.Annotations["zerodrop.dev/sessions-per-pod"] {
		t.Errorf("load --concurrency %q, annotation zerodrop.dev/sessions-per-pod %q: want one fixed number, the same", args["--concurrency"], d.Annotations["zerodrop.dev/sessions-per-pod"])
	}
	_, port, _ := strings.Cut(args["--metrics-addr"], ":")
	if port == "" || d.Spec.Template.Annotations["prometheus.io/port"] != port || d.Spec.Template.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("load --metrics-addr %q, scrape annotations %v: want the same port", args["--metrics-addr"], d.Spec.Template.Annotations)
	}
	var sa corev1.ServiceAccount
	b, err := os.ReadFile(filepath.Join(deployRoot, "load/serviceaccount.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &sa); err != nil {
		t.Fatal(err)
	}
	if spec.ServiceAccountName != sa.Name || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("load runs as %q; ServiceAccount %q automount %v: want its own account without a token", spec.ServiceAccountName, sa.Name, sa.AutomountServiceAccountToken)
	}
	// No RBAC: the load calls no API.
	for _, f := range yamlFiles(t) {
		if strings.HasPrefix(f, "load/") {
			for _, doc := range readDocs(t, filepath.Join(deployRoot, f)) {
				if k, _ := doc["kind"].(string); strings.Contains(k, "Role") {
					t.Errorf("deploy/%s: %s; the load needs no API access", f, k)
				}
			}
		}
	}
}

// The trial PostgreSQL's Secret is the one the app reads (name and key),
// and its DSN reaches the StatefulSet's Service with its user, password
// and database.
func TestPostgresFeedsTheApp(t *testing.T) {
	app := readDeployment(t, filepath.Join(deployRoot, "base/deployment.yaml"))
	var ref *corev1.SecretKeySelector
	for _, e := range app.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "ZERODROP_DB" && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	if ref == nil {
		t.Fatal("base Deployment: ZERODROP_DB comes from no Secret")
	}
	var secret corev1.Secret
	var svc corev1.Service
	var sts appsv1.StatefulSet
	for name, into := range map[string]any{"secret.yaml": &secret, "service.yaml": &svc, "statefulset.yaml": &sts} {
		b, err := os.ReadFile(filepath.Join(deployRoot, "postgres", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(b, into); err != nil {
			t.Fatalf("postgres/%s: %v", name, err)
		}
	}
	if secret.Name != ref.Name || secret.StringData[ref.Key] == "" {
		t.Fatalf("postgres Secret %q keys %v; the app reads %s/%s", secret.Name, secret.StringData, ref.Name, ref.Key)
	}
	u, err := url.Parse(secret.StringData[ref.Key])
	if err != nil {
		t.Fatalf("dsn: %v", err)
	}
	env := map[string]string{}
	c := sts.Spec.Template.Spec.Containers[0]
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			if e.ValueFrom.SecretKeyRef.Name != secret.Name {
				t.Errorf("StatefulSet env %s from Secret %q, want %q", e.Name, e.ValueFrom.SecretKeyRef.Name, secret.Name)
			}
			env[e.Name] = secret.StringData[e.ValueFrom.SecretKeyRef.Key]
		}
	}
	pw, _ := u.User.Password()
	ns := readDocs(t, filepath.Join(deployRoot, "base/kustomization.yaml"))[0]["namespace"]
	if pns := readDocs(t, filepath.Join(deployRoot, "postgres/kustomization.yaml"))[0]["namespace"]; pns != ns {
		t.Errorf("postgres in namespace %v, the app in %v", pns, ns)
	}
	wantHost := svc.Name + "." + ns.(string) + ".svc"
	if u.Scheme != "postgres" || u.Hostname() != wantHost || u.Port() != "5432" || svc.Spec.Ports[0].Port != 5432 {
		t.Errorf("dsn host %s port %s, want %s:%d", u.Hostname(), u.Port(), wantHost, svc.Spec.Ports[0].Port)
	}
	if u.User.Username() != env["POSTGRES_USER"] || pw != env["POSTGRES_PASSWORD"] || strings.TrimPrefix(u.Path, "/") != env["POSTGRES_DB"] {
		t.Errorf("dsn user %q db %q (password matches: %v); StatefulSet user %q db %q", u.User.Username(), u.Path, pw == env["POSTGRES_PASSWORD"], env["POSTGRES_USER"], env["POSTGRES_DB"])
	}
	if sel := svc.Spec.Selector["app"]; sel != sts.Spec.Template.Labels["app"] {
		t.Errorf("Service selects app=%s, the pods are app=%s", sel, sts.Spec.Template.Labels["app"])
	}
}
