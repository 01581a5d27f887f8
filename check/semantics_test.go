package check

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/manifest"
)

// These tests vary one manifest at a time from the semantics of each class
// of issue 13: where the rule must fire, and the twins where it must not.

const fixedBase = "testdata/rules/ZD019-fixed.yaml"

func findings(t *testing.T, m *manifest.Model, cfg Config) []Finding {
	t.Helper()
	return Run(m, cfg).All()
}

func has(fs []Finding, id string) *Finding {
	for i := range fs {
		if fs[i].RuleID == id {
			return &fs[i]
		}
	}
	return nil
}

func multi(t *testing.T, file string, pairs ...string) *manifest.Model {
	t.Helper()
	data := readFile(t, file)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == "" { // append documents
			data += pairs[i+1]
			continue
		}
		if !strings.Contains(data, pairs[i]) {
			t.Fatalf("%s does not contain %q", file, pairs[i])
		}
		data = strings.Replace(data, pairs[i], pairs[i+1], 1)
	}
	return manifest.Parse(manifest.Input{Name: file, Data: []byte(data)})
}

func TestHealthCheckPortTimeline(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DeregistrationPropagation = 60 * time.Second
	// Same port: the ALB sees the drain at 10 s, well before 60 s.
	if f := has(findings(t, load(t, fixedBase), cfg), IDDelayBelowDereg); f != nil {
		t.Errorf("same port: the ALB detects the drain; got %s", f.Message)
	}
	// Admin port: only deregistration (60 s) stops traffic; a 15 s delay is short.
	fs := findings(t, load(t, "testdata/rules/ZD021-fire.yaml"), cfg)
	if has(fs, IDHealthCheckPort) == nil || has(fs, IDDelayBelowDereg) == nil {
		t.Errorf("admin port with a 60 s propagation: want ZD021 and ZD007, got %v", idsOf(fs))
	}
	cases := []struct {
		port string
		fire bool
	}{{"\"8000\"", false}, {"\"9000\"", true}, {"traffic-port", false}, {"http", false}, {"admin", true}}
	for _, c := range cases {
		m := multi(t, "testdata/rules/ZD021-fixed.yaml", "healthcheck-port: http", "healthcheck-port: "+c.port)
		if got := has(findings(t, m, DefaultConfig()), IDHealthCheckPort) != nil; got != c.fire {
			t.Errorf("healthcheck-port %s: fires %v, want %v", c.port, got, c.fire)
		}
	}
	// Readiness on the admin port while the ALB checks the traffic port.
	m := multi(t, "testdata/rules/ZD021-fixed.yaml", "healthcheck-port: http", "healthcheck-port: traffic-port",
		"              path: /healthz\n              port: http", "              path: /healthz\n              port: admin")
	if has(findings(t, m, DefaultConfig()), IDHealthCheckPort) == nil {
		t.Error("readiness on admin, ALB on traffic-port: want ZD021")
	}
}

func TestPreStopScripts(t *testing.T) {
	cases := []struct {
		script string
		want   string // rule that must fire; "" for none
	}{
		{"sleep 15 && nginx -s quit", ""},
		{"nginx -s quit; sleep 15", IDPreStopStopsServer},
		{"kill -QUIT 1 && sleep 20", IDPreStopStopsServer},
		{"apachectl graceful-stop; sleep 20", IDPreStopStopsServer},
		{"pkill -TERM nginx; sleep 20", IDPreStopStopsServer},
		{"sleep 15 &", IDNoTerminationDelay},
		{"sleep 3 && nginx -s quit", IDPreStopStopsServer},
		{"sleep 15 || nginx -s quit", ""},
		{"sleep 20; kill -TERM 1", ""},
	}
	for _, c := range cases {
		m := multi(t, "testdata/rules/ZD022-fixed.yaml", "sleep 15 && nginx -s quit", c.script)
		fs := findings(t, m, DefaultConfig())
		for _, id := range []string{IDPreStopStopsServer, IDNoTerminationDelay, IDDelayBelowDereg} {
			if got := has(fs, id) != nil; got != (id == c.want) {
				t.Errorf("%q: %s fires %v; findings %v", c.script, id, got, idsOf(fs))
			}
		}
	}
}

func TestDependencyContainers(t *testing.T) {
	fire := "testdata/rules/ZD023-fire.yaml"
	fpm := "        - name: php-fpm\n          image: php:8.3-fpm\n          ports:\n            - name: fastcgi\n              containerPort: 9000\n"
	// sidecar moves php-fpm to a native sidecar, with a preStop script.
	sidecar := func(script string) *manifest.Model {
		sc := strings.Replace(fpm, "          image:", "          restartPolicy: Always\n          image:", 1)
		if script != "" {
			sc += fmt.Sprintf("          lifecycle:\n            preStop:\n              exec:\n                command: [\"sh\", \"-c\", %q]\n", script)
		}
		return multi(t, fire, fpm, "", "      containers:\n", "      initContainers:\n"+sc+"      containers:\n")
	}
	cases := []struct {
		name string
		m    *manifest.Model
		fire bool
	}{
		// A native sidecar gets SIGTERM after the main containers.
		{"native sidecar", sidecar(""), false},
		// Its preStop hook runs from the delete, like every other: a
		// sleep there changes nothing, a stop command stops it at once.
		{"native sidecar, preStop sleep", sidecar("sleep 5"), false},
		{"native sidecar, preStop stops it", sidecar("kill -QUIT 1"), true},
		{"native sidecar, preStop stops it late", sidecar("sleep 20; kill -QUIT 1"), false},
		// A log shipper with no port and an unknown image is not a dependency.
		{"log shipper", multi(t, fire, fpm, "        - name: logs\n          image: fluent/fluent-bit:3.1\n"), false},
		// A database proxy without a declared port is known by its image.
		{"cloud-sql-proxy", multi(t, fire, fpm, "        - name: db\n          image: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11\n"), true},
		// A dependency that sleeps too little still stops first.
		{"short sleep", multi(t, fire, "              containerPort: 9000\n", "              containerPort: 9000\n          lifecycle:\n            preStop:\n              sleep:\n                seconds: 5\n"), true},
	}
	for _, c := range cases {
		fs := findings(t, c.m, DefaultConfig())
		if got := has(fs, IDDependencyStops) != nil; got != c.fire {
			t.Errorf("%s: ZD023 fires %v, want %v (%v)", c.name, got, c.fire, idsOf(fs))
		}
	}
	// Every container's schedule is in the report, sidecars last. The
	// sidecar's preStop starts at the delete; its SIGTERM waits for the
	// main container's exit (15 s preStop + 10 s longest request).
	for _, script := range []string{"", "sleep 5"} {
		cs := Run(sidecar(script), DefaultConfig()).Workloads[0].Containers
		if len(cs) != 2 || cs[1].Name != "php-fpm" || !cs[1].Sidecar || cs[0].Exit != 25*time.Second ||
			cs[1].PreStopStart != 0 || cs[1].Turn != cs[0].Exit || cs[1].SIGTERM != cs[0].Exit {
			t.Errorf("preStop %q: schedule %+v", script, cs)
		}
	}
	// The finding for a sidecar names it and says why.
	f := has(findings(t, sidecar("kill -QUIT 1"), DefaultConfig()), IDDependencyStops)
	if f == nil || !strings.Contains(f.Message, "native sidecar php-fpm stops accepting 0s") || !strings.Contains(f.Fix, "take `kill -QUIT 1` out of the preStop hook") {
		t.Errorf("sidecar finding: %+v", f)
	}
}

func TestPublishNotReadyNLB(t *testing.T) {
	nlb := `apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: example/api:1
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /healthz, port: http}}
          lifecycle: {preStop: {sleep: {seconds: 15}}}
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop
  annotations: {service.beta.kubernetes.io/aws-load-balancer-type: external}
spec:
  type: LoadBalancer
  publishNotReadyAddresses: true
  selector: {app: api}
  ports: [{port: 80, targetPort: http}]
`
	fs := findings(t, manifest.Parse(manifest.Input{Name: "nlb.yaml", Data: []byte(nlb)}), DefaultConfig())
	if has(fs, IDPublishNotReady) == nil {
		t.Errorf("NLB with publishNotReadyAddresses: want ZD024, got %v", idsOf(fs))
	}
	plain := strings.Replace(strings.Replace(nlb, "  type: LoadBalancer\n", "", 1), "  annotations: {service.beta.kubernetes.io/aws-load-balancer-type: external}\n", "", 1)
	if fs := findings(t, manifest.Parse(manifest.Input{Name: "svc.yaml", Data: []byte(plain)}), DefaultConfig()); has(fs, IDPublishNotReady) != nil {
		t.Error("a ClusterIP Service no load balancer routes to: ZD024 must not fire")
	}
}

func TestBlueGreenVariants(t *testing.T) {
	fire := "testdata/rules/ZD025-fire.yaml"
	// Abort scale-down 0 means never: only scaleDownDelaySeconds is judged.
	m := multi(t, fire, "      previewService: orders-preview\n", "      previewService: orders-preview\n      abortScaleDownDelaySeconds: 0\n")
	n := 0
	for _, f := range findings(t, m, DefaultConfig()) {
		if f.RuleID == IDBlueGreenScaleDown {
			n++
			if !strings.Contains(f.Message, "scaleDownDelaySeconds 30") {
				t.Errorf("unexpected %s", f.Message)
			}
		}
	}
	if n != 1 {
		t.Errorf("want one ZD025 (scaleDownDelaySeconds), got %d", n)
	}
	// A longer propagation estimate makes the fixed 60 s short.
	cfg := DefaultConfig()
	cfg.DeregistrationPropagation = 40 * time.Second
	if has(findings(t, load(t, "testdata/rules/ZD025-fixed.yaml"), cfg), IDBlueGreenScaleDown) == nil {
		t.Error("60 s delays against 40 s + 25 s: want ZD025")
	}
	w := load(t, "testdata/rules/ZD025-fixed.yaml").Workloads[0]
	bg := w.BlueGreen
	if bg == nil || bg.ActiveService != "orders" || bg.PreviewService != "orders-preview" || !bg.AutoPromotionEnabled.Value || !bg.AutoPromotionEnabled.Default || bg.ScaleDownDelay.Value != time.Minute {
		t.Errorf("blue-green read: %+v", bg)
	}
}

func TestIngressClassResolution(t *testing.T) {
	base := fixedBase
	nginxClass := "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: public\nspec:\n  controller: k8s.io/ingress-nginx\n"
	albDefault := "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: web\n  annotations:\n    ingressclass.kubernetes.io/is-default-class: \"true\"\nspec:\n  controller: ingress.k8s.aws/alb\n  parameters: {apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: web}\n---\napiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata:\n  name: web\nspec:\n  targetType: instance\n"
	cases := []struct {
		name     string
		m        *manifest.Model
		alb      bool
		diag     bool
		target   string
		extraIDs []string
	}{
		{"legacy annotation alb", multi(t, base, "  ingressClassName: alb\n", "", "  annotations:\n    alb.ingress", "  annotations:\n    kubernetes.io/ingress.class: alb\n    alb.ingress"), true, false, "ip", nil},
		{"legacy annotation nginx", multi(t, base, "  ingressClassName: alb\n", "", "  annotations:\n    alb.ingress", "  annotations:\n    kubernetes.io/ingress.class: nginx\n    alb.ingress"), false, true, "", nil},
		{"class of another controller", multi(t, base+"", "  ingressClassName: alb", "  ingressClassName: public", "", nginxClass), false, true, "", nil},
		{"no class, ALB annotations", multi(t, base, "  ingressClassName: alb\n", ""), true, true, "ip", nil},
		{"default class with params", multi(t, base, "  ingressClassName: alb\n", "", "", albDefault), true, false, "instance", []string{IDInstanceWithGates}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ing := c.m.Ingresses[0]
			if ing.ALB != c.alb {
				t.Errorf("ALB %v, want %v", ing.ALB, c.alb)
			}
			fs := findings(t, c.m, DefaultConfig())
			if got := has(fs, IDIngressClass) != nil; got != c.diag {
				t.Errorf("ZD026 %v, want %v: %v", got, c.diag, idsOf(fs))
			}
			if c.target != "" && (len(c.m.TargetGroups) != 1 || c.m.TargetGroups[0].TargetType.Value != c.target) {
				t.Errorf("target type: %+v", c.m.TargetGroups)
			}
			for _, id := range c.extraIDs {
				if has(fs, id) == nil {
					t.Errorf("want %s, got %v", id, idsOf(fs))
				}
			}
		})
	}
}

func TestUnroutedWorkloads(t *testing.T) {
	doc := `apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: example/api:1
          ports: [{name: http, containerPort: 8080}]
          livenessProbe: {httpGet: {path: /healthz, port: http}}
`
	r := Run(manifest.Parse(manifest.Input{Name: "d.yaml", Data: []byte(doc)}), DefaultConfig())
	fs := r.All()
	if has(fs, IDNoReadiness) == nil || has(fs, IDNoTerminationDelay) == nil {
		t.Fatalf("unrouted workload with a port: want ZD001 and ZD006, got %v", idsOf(fs))
	}
	for _, f := range fs {
		if !strings.Contains(f.Message, "routing was not seen") {
			t.Errorf("%s does not say the routing was not seen: %s", f.RuleID, f.Message)
		}
		if f.RuleID != IDNoReadiness && f.RuleID != IDReadinessIsLiveness && f.RuleID != IDNoTerminationDelay {
			t.Errorf("a rule that needs a load balancer ran: %s", f.RuleID)
		}
	}
	// Readiness equal to liveness is found without a Service too.
	same := strings.Replace(doc, "          livenessProbe:", "          readinessProbe: {httpGet: {path: /healthz, port: http}}\n          lifecycle: {preStop: {sleep: {seconds: 10}}}\n          livenessProbe:", 1)
	if fs := findings(t, manifest.Parse(manifest.Input{Name: "d.yaml", Data: []byte(same)}), DefaultConfig()); len(fs) != 1 || fs[0].RuleID != IDReadinessIsLiveness {
		t.Errorf("want only ZD002, got %v", idsOf(fs))
	}
	// A worker that listens on no port is not judged.
	worker := strings.Replace(doc, "          ports: [{name: http, containerPort: 8080}]\n", "", 1)
	if fs := findings(t, manifest.Parse(manifest.Input{Name: "w.yaml", Data: []byte(worker)}), DefaultConfig()); len(fs) != 0 {
		t.Errorf("worker without ports: want no findings, got %v", idsOf(fs))
	}
}

func TestShelllessTable(t *testing.T) {
	cases := map[string]bool{ // image -> flagged as shell-less
		"gcr.io/distroless/static-debian12:nonroot":   true,
		"gcr.io/distroless/base-debian12":             true,
		"gcr.io/distroless/java21-debian12:debug":     false,
		"gcr.io/distroless/static:debug-nonroot":      false,
		"cgr.dev/chainguard/nginx:latest":             true,
		"cgr.dev/chainguard/python:latest-dev":        false,
		"cgr.dev/chainguard/static@sha256:abcd":       true,
		"scratch":                                     true,
		"ko://github.com/example/cmd/api":             true,
		"myorg/static:1.0":                            false,
		"example.com/distroless-but-not-really/app:1": false,
		"nginx:1.27": false,
		"mcr.microsoft.com/azurelinux/distroless/base:3": true,
	}
	for img, want := range cases {
		got := manifest.ImageShellOf(img)
		if (!got.HasShell) != want {
			t.Errorf("%s: shell-less %v, want %v (%+v)", img, !got.HasShell, want, got)
		}
		m := multi(t, "testdata/rules/ZD009-fire.yaml", "gcr.io/distroless/static-debian12:nonroot", img)
		if fired := has(findings(t, m, DefaultConfig()), IDShellless) != nil; fired != want {
			t.Errorf("%s: ZD009 fires %v, want %v", img, fired, want)
		}
	}
}

func TestHealthPaths(t *testing.T) {
	for _, p := range []string{"/healthz", "/up", "/hc", "/health", "/health/ready", "/actuator/health", "/actuator/health/readiness", "/q/health/live", "/-/ready", "/readyz", "/livez", "/ping", "/status", "/api/v1/health", "/_ah/health", "/heartbeat"} {
		m := multi(t, fixedBase, "healthcheck-path: /healthz", "healthcheck-path: "+p, "              path: /healthz", "              path: "+p)
		if f := has(findings(t, m, DefaultConfig()), IDUserPathHealthCheck); f != nil {
			t.Errorf("%s is a health endpoint: %s", p, f.Message)
		}
	}
	// An unknown path with no evidence: a note, not a warning.
	m := multi(t, fixedBase, "healthcheck-path: /healthz", "healthcheck-path: /internal/probe", "              path: /healthz", "              path: /internal/probe")
	if f := has(findings(t, m, DefaultConfig()), IDUserPathHealthCheck); f == nil || f.Severity != Note {
		t.Errorf("unknown path without evidence: want a ZD004 note, got %+v", f)
	}
	// The root page: a warning.
	m = multi(t, fixedBase, "healthcheck-path: /healthz", "healthcheck-path: /", "              path: /healthz", "              path: /")
	if f := has(findings(t, m, DefaultConfig()), IDUserPathHealthCheck); f == nil || f.Severity != Warning {
		t.Errorf("health check on /: want a ZD004 warning, got %+v", f)
	}
}

func TestMessagesReadRight(t *testing.T) {
	m := multi(t, "testdata/rules/ZD019-fire.yaml", "replicas: 3", "replicas: 1")
	f := has(findings(t, m, DefaultConfig()), IDDisruptionRemovesAll)
	if f == nil || !strings.Contains(f.Message, "the only pod") || strings.Contains(f.Message, "all 1") || strings.Contains(f.Message, "(s)") {
		t.Errorf("one replica: %+v", f)
	}
	// A fix never asks to raise a value to below what it is.
	for _, rule := range Rules() {
		r := Run(load(t, "testdata/rules/"+rule.ID+"-fire.yaml"), DefaultConfig())
		for _, f := range r.All() {
			if strings.Contains(f.Fix, "terminationGracePeriodSeconds to at least") || strings.Contains(f.Fix, "terminationGracePeriodSeconds at least") {
				g := graceOf(t, "testdata/rules/"+rule.ID+"-fire.yaml")
				var n int64
				for _, word := range strings.Fields(f.Fix[strings.Index(f.Fix, "at least"):]) {
					if v, err := parseInt(word); err == nil {
						n = v
						break
					}
				}
				if time.Duration(n)*time.Second <= g {
					t.Errorf("%s: fix %q asks to raise the grace period %v to %d s", f.RuleID, f.Fix, g, n)
				}
			}
		}
	}
}

func graceOf(t *testing.T, file string) time.Duration {
	t.Helper()
	m := load(t, file)
	if len(m.Workloads) == 0 {
		return 0
	}
	return m.Workloads[0].Pod.TerminationGracePeriod.Value
}

func idsOf(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.RuleID)
	}
	slices.Sort(out)
	return out
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func parseInt(s string) (int64, error) {
	return strconv.ParseInt(strings.TrimRight(s, ",;.)"), 10, 64)
}
