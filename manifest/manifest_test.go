package manifest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseFile(t testing.TB, path string) *Model {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(Input{Name: path, Data: data})
}

func TestSeedAfter(t *testing.T) {
	m := parseFile(t, "testdata/seed/after.yaml")
	if len(m.Workloads) != 1 || len(m.Services) != 1 || len(m.Ingresses) != 1 || len(m.TargetGroups) != 1 {
		t.Fatalf("objects: %d workloads, %d services, %d ingresses, %d target groups", len(m.Workloads), len(m.Services), len(m.Ingresses), len(m.TargetGroups))
	}
	w := m.Workloads[0]
	c := w.Pod.Containers[0]
	if w.Replicas.Value != 20 || w.Replicas.Pos.Line != 14 {
		t.Errorf("replicas %+v", w.Replicas)
	}
	if g := w.Pod.TerminationGracePeriod; g.Value != 30*time.Second || !g.Default {
		t.Errorf("grace %+v: want the 30 s default", g)
	}
	r := c.Readiness
	if r == nil || r.Path.Value != "/logistics/health" || r.Period.Value != 3*time.Second || r.Period.Pos.Line != 41 ||
		r.InitialDelay.Value != 3*time.Second || r.FailureThreshold.Value != 3 || !r.FailureThreshold.Default || r.Timeout.Value != time.Second {
		t.Errorf("readiness %+v", r)
	}
	ps := c.PreStop
	if ps == nil || ps.Kind != PreStopShell || !ps.Known || ps.Duration.Value != 120*time.Second || ps.Duration.Pos.Line != 45 || !ps.NeedsShell || ps.Shell != "/bin/sh" {
		t.Errorf("preStop %+v", ps)
	}
	tg := m.TargetGroups[0]
	if tg.Service != m.Services[0] || len(tg.Workloads) != 1 || tg.Workloads[0] != w || len(w.TargetGroups) != 1 {
		t.Error("target group not linked to the Service and the Deployment")
	}
	hc := tg.HealthCheck
	if tg.TargetType.Value != TargetIP || hc.Path.Value != "/logistics/health" || hc.SuccessCodes.Value != "200-301" ||
		len(hc.Codes) != 1 || hc.Codes[0] != (CodeRange{200, 301}) || hc.HealthyThreshold.Value != 2 || hc.UnhealthyThreshold.Value != 2 {
		t.Errorf("health check %+v", hc)
	}
	// interval 3 is below the ALB minimum of 5: reported, default kept.
	if hc.Interval.Value != 15*time.Second || !hc.Interval.Default || hc.Interval.Pos.Line != 72 {
		t.Errorf("interval %+v", hc.Interval)
	}
	if len(m.Diagnostics) != 1 || m.Diagnostics[0].Pos.Line != 72 || !strings.Contains(m.Diagnostics[0].Message, "healthcheck-interval-seconds") {
		t.Errorf("diagnostics %+v", m.Diagnostics)
	}
	if d := tg.Attributes.DeregistrationDelay; d.Value != 300*time.Second || !d.Default {
		t.Errorf("deregistration delay %+v", d)
	}
	if tg.LB.IdleTimeout.Value != 60*time.Second {
		t.Errorf("idle timeout %+v", tg.LB.IdleTimeout)
	}
	if s, u := w.Strategy.Resolve(20); s != 5 || u != 5 {
		t.Errorf("25%%/25%% of 20: surge %d unavailable %d", s, u)
	}
}

func TestSeedBefore(t *testing.T) {
	m := parseFile(t, "testdata/seed/before.yaml")
	c := m.Workloads[0].Pod.Containers[0]
	if c.Readiness != nil || c.PreStop != nil || len(m.Diagnostics) != 0 {
		t.Errorf("before: readiness %v preStop %v diagnostics %v", c.Readiness, c.PreStop, m.Diagnostics)
	}
	hc := m.TargetGroups[0].HealthCheck
	if hc.Path.Value != "/" || !hc.Path.Default || hc.Interval.Value != 15*time.Second {
		t.Errorf("controller defaults not filled in: %+v", hc)
	}
}

const deployTpl = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {app: a}
  template:
    metadata:
      labels: {app: a}
    spec:
      containers:
        - name: app
          image: example/app
%s
`

func TestPreStopKinds(t *testing.T) {
	cases := []struct {
		hook       string
		kind       PreStopKind
		d          time.Duration
		known      bool
		shell, slp bool
		diag       string
	}{
		{`{exec: {command: ["sleep", "20"]}}`, PreStopExecSleep, 20 * time.Second, true, false, true, ""},
		{`{exec: {command: ["/bin/sleep", "1m"]}}`, PreStopExecSleep, time.Minute, true, false, true, ""},
		{`{exec: {command: [sh, -c, 'sleep 20']}}`, PreStopShell, 20 * time.Second, true, true, true, ""},
		{`{exec: {command: ["/bin/bash", "-c", "kill -TERM 1; sleep 5 && sleep 2.5"]}}`, PreStopShell, 7500 * time.Millisecond, true, true, true, ""},
		{`{exec: {command: ["/zerodrop", "sleep", "15s"]}}`, PreStopZerodropSleep, 15 * time.Second, true, false, false, ""},
		{`{exec: {command: ["zerodrop", "sleep", "20"]}}`, PreStopZerodropSleep, 20 * time.Second, true, false, false, ""},
		{`{sleep: {seconds: 25}}`, PreStopSleep, 25 * time.Second, true, false, false, ""},
		{`{httpGet: {path: /prestop, port: 8080}}`, PreStopHTTPGet, 0, false, false, false, ""},
		{`{exec: {command: ["/app", "drain"]}}`, PreStopExec, 0, false, false, false, "cannot tell how long the preStop command"},
		{`{exec: {command: [sh, -c, "nginx -s quit"]}}`, PreStopShell, 0, true, true, false, ""},
		{`{exec: {command: [sh, -c, "/app/drain.sh"]}}`, PreStopShell, 0, false, true, false, "neither sleeps nor stops"},
		{`{exec: {command: [sh, -c, "sleep 10 &"]}}`, PreStopShell, 0, true, true, true, ""},
		{`{exec: {command: [sh, -c, "sleep", "10"]}}`, PreStopShell, 0, true, true, true, "are $0, $1"},
		{`{exec: {command: ["nginx", "-s", "quit"]}}`, PreStopExec, 0, true, false, false, ""},
		{`{exec: {command: [sh, -c, "sleep infinity"]}}`, PreStopShell, 0, false, true, true, "cannot read the duration"},
		{`{exec: {command: ["sleep", "abc"]}}`, PreStopExecSleep, 0, false, false, true, "cannot read the preStop sleep duration"},
	}
	for _, c := range cases {
		t.Run(c.hook, func(t *testing.T) {
			doc := strings.Replace(deployTpl, "%s", "          lifecycle:\n            preStop: "+c.hook, 1)
			m := Parse(Input{Name: "d.yaml", Data: []byte(doc)})
			ps := m.Workloads[0].Pod.Containers[0].PreStop
			if ps == nil || ps.Kind != c.kind || ps.Known != c.known || (c.known && ps.Duration.Value != c.d) || ps.NeedsShell != c.shell || ps.NeedsSleep != c.slp {
				t.Fatalf("got %+v", ps)
			}
			if c.diag == "" && len(m.Diagnostics) != 0 {
				t.Fatalf("unexpected diagnostics %v", m.Diagnostics)
			}
			if c.diag != "" && (len(m.Diagnostics) != 1 || !strings.Contains(m.Diagnostics[0].Message, c.diag) || m.Diagnostics[0].Pos.Line != 16) {
				t.Fatalf("want diagnostic %q at line 16, got %+v", c.diag, m.Diagnostics)
			}
		})
	}
}

func TestDiagnostics(t *testing.T) {
	cases := []struct {
		name, doc, want string
		line            int
	}{
		{"bad yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n", "invalid YAML at key metadata.name (line 4", 4},
		{"bad indent", "apiVersion: v1\nkind: Service\nmetadata:\n  labels:\n    a: b\n   c: d\n", "invalid YAML at key metadata.labels (line 4", 4},
		{"unterminated quote", "apiVersion: v1\nkind: Service\nmetadata:\n  name: 'x\n", "invalid YAML", 4},
		{"wrong type", strings.Replace(deployTpl, "%s", "          readinessProbe:\n            periodSeconds: often", 1), "wrong type", 16},
		{"bad env", strings.Replace(deployTpl, "%s", "          env:\n            - name: ZERODROP_SHUTDOWN_DELAY\n              value: soon", 1), "ZERODROP_SHUTDOWN_DELAY", 17},
		{"env from ref", strings.Replace(deployTpl, "%s", "          env:\n            - name: ZERODROP_IDLE_TIMEOUT\n              valueFrom: {configMapKeyRef: {name: c, key: k}}", 1), "valueFrom", 16},
		{"no kind", "foo: bar\n", "no apiVersion/kind", 1},
		{"bad annotation", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\n  annotations:\n    alb.ingress.kubernetes.io/healthcheck-interval-seconds: \"abc\"\nspec:\n  ingressClassName: alb\n  defaultBackend: {service: {name: s, port: {number: 80}}}\n", "healthcheck-interval-seconds", 6},
		{"bad attrs", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\n  annotations:\n    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=9999\nspec:\n  ingressClassName: alb\n  defaultBackend: {service: {name: s, port: {number: 80}}}\n", "out of range", 6},
		{"bad codes", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\n  annotations:\n    alb.ingress.kubernetes.io/success-codes: \"200-600\"\nspec:\n  ingressClassName: alb\n  defaultBackend: {service: {name: s, port: {number: 80}}}\n", "success-codes", 6},
		{"bad action", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\n  annotations:\n    alb.ingress.kubernetes.io/actions.s: \"{nope\"\nspec:\n  ingressClassName: alb\n  defaultBackend: {service: {name: s, port: {name: use-annotation}}}\n", "action JSON", 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := Parse(Input{Name: "x.yaml", Data: []byte(c.doc)})
			for _, d := range m.Diagnostics {
				if strings.Contains(d.Message, c.want) {
					if d.Pos.Line != c.line || d.Pos.File != "x.yaml" {
						t.Fatalf("diagnostic at %s, want line %d", d.Pos, c.line)
					}
					return
				}
			}
			t.Fatalf("no diagnostic %q in %+v", c.want, m.Diagnostics)
		})
	}
}

func TestRolloutCanary(t *testing.T) {
	m := parseFile(t, "../check/testdata/rules/ZD015-fire.yaml")
	if len(m.Workloads) != 1 || m.Workloads[0].Kind != KindRollout {
		t.Fatalf("workloads %+v", m.Workloads)
	}
	w := m.Workloads[0]
	cn := w.Canary
	if cn == nil || cn.ALB == nil || !cn.DynamicStableScale.Value || cn.ScaleDownDelay.Value != 75*time.Second || cn.ALB.Ingresses[0] != "orders" || cn.ALB.ServicePort != 80 {
		t.Fatalf("canary %+v", cn)
	}
	if len(cn.Steps) != 4 || *cn.Steps[0].SetWeight != 10 || *cn.Steps[1].Pause != time.Minute || *cn.Steps[3].Pause != time.Minute {
		t.Fatalf("steps %+v", cn.Steps)
	}
	// use-annotation backend managed by the Rollout: stable and canary
	// target groups, no diagnostic.
	if len(m.TargetGroups) != 2 || len(w.TargetGroups) != 2 || len(m.Diagnostics) != 0 {
		t.Fatalf("target groups %d (workload %d), diagnostics %v", len(m.TargetGroups), len(w.TargetGroups), m.Diagnostics)
	}
	if w.NS == nil || !w.NS.ReadinessGateInject.Value || len(w.PDBs) != 1 {
		t.Fatal("namespace label or PDB not linked")
	}
}

func TestActionsWeights(t *testing.T) {
	doc := `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: i
  annotations:
    alb.ingress.kubernetes.io/actions.split: >
      {"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"a","servicePort":"80","weight":90},{"serviceName":"b","servicePort":80,"weight":10}]}}
spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: split, port: {name: use-annotation}}}
`
	m := Parse(Input{Name: "i.yaml", Data: []byte(doc)})
	if len(m.Diagnostics) != 0 || len(m.TargetGroups) != 2 {
		t.Fatalf("diagnostics %v, target groups %d", m.Diagnostics, len(m.TargetGroups))
	}
	if m.TargetGroups[0].Weight.Value != 90 || m.TargetGroups[1].Weight.Value != 10 || m.TargetGroups[1].ServiceName != "b" {
		t.Fatalf("weights %+v %+v", m.TargetGroups[0], m.TargetGroups[1])
	}
}

func TestLoadSources(t *testing.T) {
	ctx := context.Background()
	f, err := os.Open("testdata/seed/after.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(ctx, Sources{Files: []string{"testdata/seed", "-"}, Stdin: f})
	if err != nil {
		t.Fatal(err)
	}
	// before.yaml, after.yaml and stdin define the same objects: the last
	// definition is kept, each earlier one is reported.
	if len(m.Workloads) != 1 || m.Workloads[0].Pos.File != "<stdin>" {
		t.Fatalf("dir + stdin: %d workloads", len(m.Workloads))
	}
	dups := 0
	for _, d := range m.Diagnostics {
		if d.Kind == DiagDuplicate {
			dups++
		}
	}
	if dups != 6 { // Deployment, Service, Ingress: two earlier definitions each
		t.Errorf("want 6 duplicate diagnostics, got %d: %+v", dups, m.Diagnostics)
	}
	if _, err := Load(ctx, Sources{Files: []string{"testdata/missing.yaml"}}); err == nil {
		t.Fatal("missing file: want an error")
	}
	if _, err := Load(ctx, Sources{Kustomize: []string{"testdata/missing"}}); err == nil {
		t.Fatal("missing kustomization: want an error")
	}
}

func TestKustomize(t *testing.T) {
	dir := filepath.Join("testdata", "kustomize", "overlay")
	m, err := Load(context.Background(), Sources{Kustomize: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Workloads) != 1 {
		t.Fatalf("workloads %d", len(m.Workloads))
	}
	w := m.Workloads[0]
	c := w.Pod.Containers[0]
	if w.Pod.TerminationGracePeriod.Value != 40*time.Second || c.PreStop == nil || c.PreStop.Kind != PreStopSleep || c.PreStop.Duration.Value != 20*time.Second || c.Readiness == nil {
		t.Fatalf("patch not applied: grace %v preStop %+v", w.Pod.TerminationGracePeriod.Value, c.PreStop)
	}
	// Fields the overlay's patch sets point at the built output; fields
	// the base sets point at the base file (kustomize origin annotations).
	if !strings.HasSuffix(c.PreStop.Duration.Pos.File, KustomizeSuffix) || c.PreStop.Duration.Pos.Line == 0 {
		t.Fatalf("patched field: %s", c.PreStop.Duration.Pos)
	}
	base := filepath.Join("testdata", "kustomize", "base", "app.yaml")
	if c.Image.Pos.File != base || c.Image.Pos.Line != 23 || w.Pos.File != base || w.Origin != base {
		t.Fatalf("base field: image at %s, workload at %s (origin %q); want %s:23", c.Image.Pos, w.Pos, w.Origin, base)
	}
	// A default (no healthcheck-path annotation anywhere) points where to
	// add it: the Ingress's annotations in the base file.
	if p := m.TargetGroups[0].HealthCheck.Path.Pos; p.File != base || p.Line == 0 {
		t.Fatalf("default health-check path at %s; want in %s", p, base)
	}
	if _, ok := w.Annotations["config.kubernetes.io/origin"]; ok {
		t.Fatal("the origin annotation kustomize adds for us is left on the object")
	}
}

func TestParseSuccessCodes(t *testing.T) {
	for in, ok := range map[string]bool{"200": true, "200,302": true, "200-299": true, " 200 - 301 ": true, "199": false, "200-500": false, "": false, "abc": false, "300-200": false} {
		if _, got := ParseSuccessCodes(in); got != ok {
			t.Errorf("%q: got %v want %v", in, got, ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/seed/before.yaml", "testdata/seed/after.yaml", "testdata/kustomize/overlay/probe.yaml", "../check/testdata/rules/ZD015-fire.yaml", "../check/testdata/rules/ZD009-fire.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte(strings.Replace(deployTpl, "%s", "          lifecycle: {preStop: {exec: {command: [sh, -c, 'sleep 1e9']}}}", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := Parse(Input{Name: "fuzz.yaml", Data: data})
		for _, d := range m.Diagnostics {
			if d.Message == "" {
				t.Fatal("empty diagnostic")
			}
		}
	})
}
