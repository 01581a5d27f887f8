package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Input is one named YAML stream (a file, stdin or a kustomize build).
type Input struct {
	Name string
	Data []byte
	// Dir is the kustomization directory of a kustomize build: paths of
	// kustomize's origin annotations are relative to it.
	Dir string
}

// Parse reads every document of the inputs and links the objects into a
// Model. It never fails: what it cannot read or interpret becomes a
// Diagnostic with file, line and field path.
func Parse(inputs ...Input) *Model {
	b := newBuilder()
	for _, in := range inputs {
		b.dir = in.Dir
		b.parseStream(in.Name, in.Data)
	}
	b.dedupe()
	b.link()
	return b.m
}

type builder struct {
	m        *Model
	seen     map[string]bool // diagnostics already reported
	selector map[any]labels.Selector
	dir      string                 // kustomization directory of the input, if built
	sources  map[string][]*docIndex // origin files already read
	// objects maps kind/namespace/name to each definition, in input order.
	objects map[string][]objectDef
	nextSeq int
}

// objectDef is one definition of an object: where it starts and its
// sequence number among all objects read.
type objectDef struct {
	pos Pos
	seq int
}

func newBuilder() *builder {
	return &builder{m: &Model{}, seen: map[string]bool{}, selector: map[any]labels.Selector{}, objects: map[string][]objectDef{}}
}

// objectKey identifies an object across API versions.
func objectKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

func (b *builder) diag(p Pos, object, format string, args ...any) {
	d := Diagnostic{Pos: p, Object: object, Message: fmt.Sprintf(format, args...)}
	key := p.String() + "\x00" + d.Message
	if b.seen[key] {
		return
	}
	b.seen[key] = true
	b.m.Diagnostics = append(b.m.Diagnostics, d)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlErrorLine returns the 1-based line of a YAML syntax error. The
// parser reports a parser error ("did not find expected …") at the
// 0-based line where the enclosing block starts, a scanner error at the
// 1-based line of the problem.
func yamlErrorLine(err error) int {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	line, _ := strconv.Atoi(m[1])
	if strings.Contains(err.Error(), "did not find expected") {
		line++
	}
	return line
}

func yamlErrorPos(name string, data []byte, err error) Pos {
	line := yamlErrorLine(err)
	return Pos{File: name, Line: line, Path: keyPathAt(data, line)}
}

// yamlErrorMessage says what is wrong and where: the key whose block the
// parser was reading, and that line's text.
func yamlErrorMessage(data []byte, err error) string {
	msg := yamlLineRE.ReplaceAllString(err.Error(), "")
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := yamlErrorLine(err)
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return "invalid YAML: " + msg
	}
	where := fmt.Sprintf("line %d %q", line, strings.TrimRight(lines[line-1], "\r"))
	if k := keyPathAt(data, line); k != "" {
		where = "key " + k + " (" + where + ")"
	}
	return fmt.Sprintf("invalid YAML at %s: %s", where, msg)
}

var yamlKeyRE = regexp.MustCompile(`^(\s*)(?:- +)?([^\s#'"\-][^:#]*?|"[^"]*"|'[^']*'):(?:\s|$)`)

// keyPathAt names the key on a line (or the nearest key above it) with its
// parent keys, found by indentation: metadata.labels.
func keyPathAt(data []byte, line int) string {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	var path []string
	indent := -1
	for i := line - 1; i >= 0; i-- {
		text := strings.TrimRight(lines[i], "\r")
		if strings.TrimSpace(text) == "---" {
			break // the document starts here
		}
		m := yamlKeyRE.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		ind := len(m[1])
		if strings.HasPrefix(strings.TrimLeft(text, " "), "-") {
			ind += 2 // a key after "- " belongs to the item's mapping
		}
		if indent >= 0 && ind >= indent {
			continue
		}
		path = append([]string{strings.Trim(m[2], `"'`)}, path...)
		indent = ind
		if ind == 0 {
			break
		}
	}
	return strings.Join(path, ".")
}

func (b *builder) parseStream(name string, data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			b.diag(yamlErrorPos(name, data, err), "", "%s", yamlErrorMessage(data, err))
			return
		}
		b.parseDocument(name, &n)
	}
}

// header is what every object has.
type header struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
}

func (b *builder) parseDocument(name string, n *yaml.Node) {
	root := n
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && (root.Tag == "!!null" || root.Value == "") {
		return // empty document
	}
	ix := newLineIndex(name, n)
	if root.Kind != yaml.MappingNode {
		b.diag(Pos{File: name, Line: root.Line}, "", "document is not a mapping (a Kubernetes object)")
		return
	}
	var raw any
	if err := root.Decode(&raw); err != nil {
		b.diag(Pos{File: name, Line: root.Line}, "", "cannot read document: %v", err)
		return
	}
	data, err := json.Marshal(raw)
	if err != nil {
		b.diag(Pos{File: name, Line: root.Line}, "", "cannot convert document to JSON (non-string keys?): %v", err)
		return
	}
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		b.typeDiag(ix, "", err)
		return
	}
	if h.Kind == "" || h.APIVersion == "" {
		b.diag(ix.pos("kind"), "", "document has no apiVersion/kind: not a Kubernetes object")
		return
	}
	if h.Kind == "List" && strings.HasSuffix(h.APIVersion, "v1") {
		b.diag(ix.pos("items"), "", "kind List is not read; give the objects as separate YAML documents")
		return
	}
	meta := Meta{
		APIVersion:  h.APIVersion,
		Kind:        h.Kind,
		Namespace:   h.Metadata.Namespace,
		Name:        h.Metadata.Name,
		Labels:      h.Metadata.Labels,
		Annotations: h.Metadata.Annotations,
		Pos:         Pos{File: name, Line: ix.start},
		ix:          ix,
	}
	if o, ok := meta.Annotations[originAnnotation]; ok && b.dir != "" {
		b.origin(&meta, o)
	}
	if meta.Namespace == "" && !clusterScoped[h.Kind] {
		meta.Namespace = defaultNamespace
	}
	b.nextSeq++
	meta.seq = b.nextSeq
	key := objectKey(meta.Kind, meta.Namespace, meta.Name)
	b.objects[key] = append(b.objects[key], objectDef{pos: meta.Pos, seq: meta.seq})
	group := h.APIVersion
	if i := strings.Index(group, "/"); i >= 0 {
		group = group[:i]
	} else {
		group = ""
	}
	switch {
	case h.Kind == "Namespace" && group == "":
		b.namespace(meta, data)
	case h.Kind == KindDeployment && group == "apps":
		b.deployment(meta, data)
	case h.Kind == KindStatefulSet && group == "apps":
		b.statefulSet(meta, data)
	case h.Kind == KindRollout && group == "argoproj.io":
		b.rollout(meta, data)
	case h.Kind == "Service" && group == "":
		b.service(meta, data)
	case h.Kind == "Ingress" && (group == "networking.k8s.io" || group == "extensions"):
		b.ingress(meta, data)
	case h.Kind == "TargetGroupBinding" && group == "elbv2.k8s.aws":
		b.targetGroupBinding(meta, data)
	case h.Kind == "HorizontalPodAutoscaler" && group == "autoscaling":
		b.hpa(meta, data)
	case h.Kind == "PodDisruptionBudget" && group == "policy":
		b.pdb(meta, data)
	case h.Kind == "IngressClass" && group == "networking.k8s.io":
		b.ingressClass(meta, data)
	case h.Kind == "IngressClassParams" && (group == "elbv2.k8s.aws" || group == "eks.amazonaws.com"):
		b.ingressClassParams(meta, data)
	default:
		b.m.Others++
	}
}

// clusterScoped are the kinds read without a namespace.
var clusterScoped = map[string]bool{"Namespace": true, "IngressClass": true, "IngressClassParams": true}

// dedupe keeps the last definition of every object defined more than once
// and reports each earlier one.
func (b *builder) dedupe() {
	dup := map[string]int{} // key -> sequence number of the definition to keep
	for _, key := range sortedKeys(b.objects) {
		defs := b.objects[key]
		if len(defs) < 2 {
			continue
		}
		last := defs[len(defs)-1].pos
		dup[key] = defs[len(defs)-1].seq
		for _, d := range defs[:len(defs)-1] {
			p := d.pos
			kind, rest, _ := strings.Cut(key, "/")
			ns, name, _ := strings.Cut(rest, "/")
			ref := kind + " " + name
			if ns != "" {
				ref = kind + " " + ns + "/" + name
			}
			b.m.Diagnostics = append(b.m.Diagnostics, Diagnostic{
				Pos: last, Object: key, Kind: DiagDuplicate, Related: []Pos{p},
				Message: fmt.Sprintf("%s is defined twice: at %s and at %s; only the last one is checked (as kubectl apply would leave it), nothing is merged", ref, p, last),
			})
		}
	}
	if len(dup) == 0 {
		return
	}
	keep := func(m *Meta) bool {
		seq, ok := dup[objectKey(m.Kind, m.Namespace, m.Name)]
		return !ok || seq == m.seq
	}
	m := b.m
	m.Namespaces = filter(m.Namespaces, func(x *Namespace) bool { return keep(&x.Meta) })
	m.Workloads = filter(m.Workloads, func(x *Workload) bool { return keep(&x.Meta) })
	m.Services = filter(m.Services, func(x *Service) bool { return keep(&x.Meta) })
	m.Ingresses = filter(m.Ingresses, func(x *Ingress) bool { return keep(&x.Meta) })
	m.TargetGroupBindings = filter(m.TargetGroupBindings, func(x *TargetGroupBinding) bool { return keep(&x.Meta) })
	m.HPAs = filter(m.HPAs, func(x *HPA) bool { return keep(&x.Meta) })
	m.PDBs = filter(m.PDBs, func(x *PDB) bool { return keep(&x.Meta) })
	m.IngressClasses = filter(m.IngressClasses, func(x *IngressClass) bool { return keep(&x.Meta) })
	m.IngressClassParams = filter(m.IngressClassParams, func(x *IngressClassParams) bool { return keep(&x.Meta) })
}

func filter[T any](in []T, keep func(T) bool) []T {
	out := in[:0]
	for _, x := range in {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

// decode unmarshals an object; on a type error it reports the field.
func (b *builder) decode(meta *Meta, data []byte, v any) bool {
	if err := json.Unmarshal(data, v); err != nil {
		b.typeDiag(meta.ix, meta.Ref(), err)
		return false
	}
	return true
}

func (b *builder) typeDiag(ix *lineIndex, object string, err error) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		p := ix.fuzzyPos(te.Field)
		b.diag(p, object, "field has the wrong type: got %s, want %s", te.Value, te.Type)
		return
	}
	b.diag(ix.pos(""), object, "cannot read object: %v", err)
}

func (b *builder) namespace(meta Meta, data []byte) {
	var ns corev1.Namespace
	if !b.decode(&meta, data, &ns) {
		return
	}
	n := &Namespace{Meta: meta}
	key := joinPath("metadata.labels", ReadinessGateInjectKey)
	v, ok := ns.Labels[ReadinessGateInjectKey]
	n.ReadinessGateInject = Field[bool]{Value: v == ReadinessGateInjectOn, Default: !ok, Pos: meta.At(key)}
	if ok && v != ReadinessGateInjectOn && v != "disabled" {
		b.diag(meta.At(key), meta.Ref(), "label %s=%q: want %q", ReadinessGateInjectKey, v, ReadinessGateInjectOn)
	}
	b.m.Namespaces = append(b.m.Namespaces, n)
}

func (b *builder) deployment(meta Meta, data []byte) {
	var d appsv1.Deployment
	if !b.decode(&meta, data, &d) {
		return
	}
	w := &Workload{Meta: meta}
	w.Replicas = int32Field(&meta, "spec.replicas", d.Spec.Replicas, 1)
	w.MinReadySeconds = Field[int32]{Value: d.Spec.MinReadySeconds, Default: !meta.ix.has("spec.minReadySeconds"), Pos: meta.At("spec.minReadySeconds")}
	st := string(d.Spec.Strategy.Type)
	w.Strategy.Type = stringField(&meta, "spec.strategy.type", st, string(appsv1.RollingUpdateDeploymentStrategyType))
	var ru *appsv1.RollingUpdateDeployment = d.Spec.Strategy.RollingUpdate
	var surge, unav *intstr.IntOrString
	if ru != nil {
		surge, unav = ru.MaxSurge, ru.MaxUnavailable
	}
	if w.Strategy.Type.Value == string(appsv1.RecreateDeploymentStrategyType) {
		// Recreate removes every old pod before creating new ones.
		w.Strategy.MaxSurge = Field[intstr.IntOrString]{Value: intstr.FromInt32(0), Default: true, Pos: meta.At("spec.strategy.type")}
		w.Strategy.MaxUnavailable = Field[intstr.IntOrString]{Value: intstr.FromString("100%"), Default: true, Pos: meta.At("spec.strategy.type")}
	} else {
		w.Strategy.MaxSurge = b.intOrPercent(&meta, "spec.strategy.rollingUpdate.maxSurge", surge, DefaultMaxSurge)
		w.Strategy.MaxUnavailable = b.intOrPercent(&meta, "spec.strategy.rollingUpdate.maxUnavailable", unav, DefaultMaxUnavailable)
	}
	b.podWorkload(w, d.Spec.Selector, d.Spec.Template)
}

func (b *builder) statefulSet(meta Meta, data []byte) {
	var s appsv1.StatefulSet
	if !b.decode(&meta, data, &s) {
		return
	}
	w := &Workload{Meta: meta}
	w.Replicas = int32Field(&meta, "spec.replicas", s.Spec.Replicas, 1)
	w.MinReadySeconds = Field[int32]{Value: s.Spec.MinReadySeconds, Default: !meta.ix.has("spec.minReadySeconds"), Pos: meta.At("spec.minReadySeconds")}
	w.Strategy.Type = stringField(&meta, "spec.updateStrategy.type", string(s.Spec.UpdateStrategy.Type), string(appsv1.RollingUpdateStatefulSetStrategyType))
	var unav *intstr.IntOrString
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		unav = ru.MaxUnavailable
	}
	// StatefulSets replace one pod at a time by default and never surge.
	w.Strategy.MaxSurge = Field[intstr.IntOrString]{Value: intstr.FromInt32(0), Default: true, Pos: meta.At("spec.updateStrategy")}
	if unav == nil {
		w.Strategy.MaxUnavailable = Field[intstr.IntOrString]{Value: intstr.FromInt32(1), Default: true, Pos: meta.At("spec.updateStrategy.rollingUpdate.maxUnavailable")}
	} else {
		w.Strategy.MaxUnavailable = b.intOrPercent(&meta, "spec.updateStrategy.rollingUpdate.maxUnavailable", unav, "1")
	}
	b.podWorkload(w, s.Spec.Selector, s.Spec.Template)
}

// podWorkload fills selector and pod template and adds the workload.
func (b *builder) podWorkload(w *Workload, sel *metav1.LabelSelector, tpl corev1.PodTemplateSpec) {
	if sel != nil {
		w.Selector = sel.MatchLabels
	}
	w.PodLabels = tpl.Labels
	w.PodAnnotations = tpl.Annotations
	w.Pod = b.pod(&w.Meta, "spec.template.spec", tpl.Spec)
	b.m.Workloads = append(b.m.Workloads, w)
}

func (b *builder) intOrPercent(meta *Meta, path string, v *intstr.IntOrString, def string) Field[intstr.IntOrString] {
	if v == nil {
		return Field[intstr.IntOrString]{Value: intstr.Parse(def), Default: true, Pos: meta.At(path)}
	}
	f := Field[intstr.IntOrString]{Value: *v, Pos: meta.At(path)}
	if v.Type == intstr.String {
		s := strings.TrimSuffix(v.StrVal, "%")
		n, err := strconv.Atoi(s)
		if err != nil || !strings.HasSuffix(v.StrVal, "%") || n < 0 {
			b.diag(f.Pos, meta.Ref(), "%q is not a count or a percentage such as 25%%; using the default %s", v.StrVal, def)
			return Field[intstr.IntOrString]{Value: intstr.Parse(def), Default: true, Pos: f.Pos}
		}
	} else if v.IntVal < 0 {
		b.diag(f.Pos, meta.Ref(), "%d must not be negative; using the default %s", v.IntVal, def)
		return Field[intstr.IntOrString]{Value: intstr.Parse(def), Default: true, Pos: f.Pos}
	}
	return f
}

func (b *builder) pod(meta *Meta, base string, spec corev1.PodSpec) Pod {
	var p Pod
	gp := base + ".terminationGracePeriodSeconds"
	if spec.TerminationGracePeriodSeconds != nil {
		p.TerminationGracePeriod = Field[time.Duration]{Value: time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second, Pos: meta.At(gp)}
		if *spec.TerminationGracePeriodSeconds < 0 {
			b.diag(meta.At(gp), meta.Ref(), "terminationGracePeriodSeconds %d is negative", *spec.TerminationGracePeriodSeconds)
		}
	} else {
		p.TerminationGracePeriod = Field[time.Duration]{Value: DefaultTerminationGracePeriod, Default: true, Pos: meta.At(gp)}
	}
	for i, g := range spec.ReadinessGates {
		p.ReadinessGates = append(p.ReadinessGates, Field[string]{Value: string(g.ConditionType), Pos: meta.At(indexPath(base+".readinessGates", i))})
	}
	for i, c := range spec.Containers {
		p.Containers = append(p.Containers, b.container(meta, indexPath(base+".containers", i), c))
	}
	for i, c := range spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			p.Sidecars = append(p.Sidecars, b.container(meta, indexPath(base+".initContainers", i), c))
		}
	}
	return p
}

func (b *builder) container(meta *Meta, base string, c corev1.Container) *Container {
	out := &Container{
		Name:    c.Name,
		Pos:     meta.At(base),
		Image:   Field[string]{Value: c.Image, Pos: meta.At(base + ".image")},
		Command: c.Command,
		Args:    c.Args,
	}
	for i, p := range c.Ports {
		out.Ports = append(out.Ports, Port{Name: p.Name, Port: p.ContainerPort, Pos: meta.At(indexPath(base+".ports", i))})
	}
	out.Readiness = b.probe(meta, base+".readinessProbe", c.ReadinessProbe)
	out.Liveness = b.probe(meta, base+".livenessProbe", c.LivenessProbe)
	out.Startup = b.probe(meta, base+".startupProbe", c.StartupProbe)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		out.PreStop = b.preStop(meta, base+".lifecycle.preStop", c.Lifecycle.PreStop)
	}
	for i, e := range c.Env {
		if !strings.HasPrefix(e.Name, "ZERODROP_") {
			continue
		}
		p := meta.At(indexPath(base+".env", i) + ".value")
		v := EnvVar{Name: e.Name, Value: e.Value, FromRef: e.ValueFrom != nil, Pos: p}
		out.Env = append(out.Env, v)
		b.appEnv(meta, &out.App, v)
	}
	return out
}

func (b *builder) appEnv(meta *Meta, app *App, v EnvVar) {
	if v.FromRef {
		switch v.Name {
		case EnvShutdownDelay, EnvShutdownTimeout, EnvShutdown, EnvIdleTimeout:
			b.diag(v.Pos, meta.Ref(), "%s comes from valueFrom; its value cannot be read from the manifest, write it as a literal value", v.Name)
		}
		return
	}
	dur := func() *Field[time.Duration] {
		d, err := time.ParseDuration(strings.TrimSpace(v.Value))
		if err != nil || d < 0 {
			b.diag(v.Pos, meta.Ref(), "%s=%q is not a Go duration such as 15s or 1m30s", v.Name, v.Value)
			return nil
		}
		return &Field[time.Duration]{Value: d, Pos: v.Pos}
	}
	switch v.Name {
	case EnvShutdownDelay:
		app.ShutdownDelay = dur()
	case EnvShutdownTimeout:
		app.ShutdownTimeout = dur()
	case EnvIdleTimeout:
		app.IdleTimeout = dur()
	case EnvShutdown:
		switch v.Value {
		case "graceful", "immediate", "unwaited":
			app.Shutdown = &Field[string]{Value: v.Value, Pos: v.Pos}
		default:
			b.diag(v.Pos, meta.Ref(), "%s=%q: want graceful, immediate or unwaited", v.Name, v.Value)
		}
	}
}

func (b *builder) probe(meta *Meta, base string, p *corev1.Probe) *Probe {
	if p == nil {
		return nil
	}
	out := &Probe{Pos: meta.At(base)}
	switch {
	case p.HTTPGet != nil:
		out.Handler = HandlerHTTPGet
		path := p.HTTPGet.Path
		if path == "" {
			out.Path = Field[string]{Value: "/", Default: true, Pos: meta.At(base + ".httpGet.path")}
		} else {
			out.Path = Field[string]{Value: path, Pos: meta.At(base + ".httpGet.path")}
		}
		out.Port = Field[intstr.IntOrString]{Value: p.HTTPGet.Port, Pos: meta.At(base + ".httpGet.port")}
		out.Scheme = string(p.HTTPGet.Scheme)
		if out.Scheme == "" {
			out.Scheme = "HTTP"
		}
	case p.TCPSocket != nil:
		out.Handler = HandlerTCPSocket
		out.Port = Field[intstr.IntOrString]{Value: p.TCPSocket.Port, Pos: meta.At(base + ".tcpSocket.port")}
	case p.Exec != nil:
		out.Handler = HandlerExec
		out.Command = p.Exec.Command
	case p.GRPC != nil:
		out.Handler = HandlerGRPC
		out.Port = Field[intstr.IntOrString]{Value: intstr.FromInt32(p.GRPC.Port), Pos: meta.At(base + ".grpc.port")}
	default:
		b.diag(out.Pos, meta.Ref(), "probe has no handler (httpGet, tcpSocket, exec or grpc)")
	}
	out.InitialDelay = secondsField(meta, base+".initialDelaySeconds", p.InitialDelaySeconds, DefaultProbeInitialDelay)
	out.Period = secondsField(meta, base+".periodSeconds", p.PeriodSeconds, DefaultProbePeriod)
	out.Timeout = secondsField(meta, base+".timeoutSeconds", p.TimeoutSeconds, DefaultProbeTimeout)
	out.SuccessThreshold = countField(meta, base+".successThreshold", p.SuccessThreshold, DefaultProbeSuccessThreshold)
	out.FailureThreshold = countField(meta, base+".failureThreshold", p.FailureThreshold, DefaultProbeFailureThreshold)
	for _, f := range []*Field[time.Duration]{&out.InitialDelay, &out.Period, &out.Timeout} {
		if f.Value < 0 {
			b.diag(f.Pos, meta.Ref(), "negative value %v", f.Value)
		}
	}
	return out
}

// secondsField reads an int32 seconds field; zero (unset) means the default,
// as in the Kubernetes API.
func secondsField(m *Meta, path string, v int32, def time.Duration) Field[time.Duration] {
	if !m.ix.has(path) || v == 0 && def != 0 {
		return Field[time.Duration]{Value: def, Default: true, Pos: m.At(path)}
	}
	return Field[time.Duration]{Value: time.Duration(v) * time.Second, Pos: m.At(path)}
}

func countField(m *Meta, path string, v int32, def int32) Field[int32] {
	if !m.ix.has(path) || v == 0 {
		return Field[int32]{Value: def, Default: true, Pos: m.At(path)}
	}
	return Field[int32]{Value: v, Pos: m.At(path)}
}

func int32Field(m *Meta, path string, v *int32, def int32) Field[int32] {
	if v == nil {
		return Field[int32]{Value: def, Default: true, Pos: m.At(path)}
	}
	return Field[int32]{Value: *v, Pos: m.At(path)}
}

func stringField(m *Meta, path, v, def string) Field[string] {
	if v == "" {
		return Field[string]{Value: def, Default: true, Pos: m.At(path)}
	}
	return Field[string]{Value: v, Pos: m.At(path)}
}

func (b *builder) service(meta Meta, data []byte) {
	var s corev1.Service
	if !b.decode(&meta, data, &s) {
		return
	}
	out := &Service{Meta: meta, Type: string(s.Spec.Type), Selector: s.Spec.Selector}
	if out.Type == "" {
		out.Type = string(corev1.ServiceTypeClusterIP)
	}
	out.PublishNotReadyAddresses = Field[bool]{Value: s.Spec.PublishNotReadyAddresses, Default: !meta.ix.has("spec.publishNotReadyAddresses"), Pos: meta.At("spec.publishNotReadyAddresses")}
	if out.Type == string(corev1.ServiceTypeLoadBalancer) {
		switch meta.Annotations[NLBTypeAnnotation] {
		case "external", "nlb", "nlb-ip":
			out.NLB = true
		}
		if c := s.Spec.LoadBalancerClass; c != nil && *c == NLBClass {
			out.NLB = true
		}
	}
	for i, p := range s.Spec.Ports {
		tp := p.TargetPort
		if tp.Type == intstr.Int && tp.IntVal == 0 {
			tp = intstr.FromInt32(p.Port)
		}
		out.Ports = append(out.Ports, ServicePort{Name: p.Name, Port: p.Port, NodePort: p.NodePort, TargetPort: tp, Pos: meta.At(indexPath("spec.ports", i))})
	}
	b.m.Services = append(b.m.Services, out)
}

func (b *builder) ingress(meta Meta, data []byte) {
	var ing networkingv1.Ingress
	if !b.decode(&meta, data, &ing) {
		return
	}
	out := &Ingress{Meta: meta}
	if ing.Spec.IngressClassName != nil {
		out.Class, out.ClassFrom = *ing.Spec.IngressClassName, "spec.ingressClassName"
	} else if v, ok := meta.Annotations[IngressClassAnnotation]; ok {
		out.Class, out.ClassFrom = v, "metadata.annotations[\""+IngressClassAnnotation+"\"]"
	}
	backend := func(path, base string, be networkingv1.IngressBackend) {
		if be.Service == nil {
			return
		}
		port := be.Service.Port.Name
		if port == "" {
			port = strconv.Itoa(int(be.Service.Port.Number))
		}
		out.Backends = append(out.Backends, Backend{Path: path, ServiceName: be.Service.Name, ServicePort: port, Pos: meta.At(base + ".service")})
	}
	if ing.Spec.DefaultBackend != nil {
		backend("", "spec.defaultBackend", *ing.Spec.DefaultBackend)
	}
	for i, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for j, p := range r.HTTP.Paths {
			base := indexPath(indexPath("spec.rules", i)+".http.paths", j)
			path := p.Path
			if path == "" {
				path = "/"
			}
			out.Paths = append(out.Paths, Field[string]{Value: path, Pos: meta.At(base + ".path")})
			backend(path, base+".backend", p.Backend)
		}
	}
	b.m.Ingresses = append(b.m.Ingresses, out)
}

func (b *builder) ingressClass(meta Meta, data []byte) {
	var c networkingv1.IngressClass
	if !b.decode(&meta, data, &c) {
		return
	}
	out := &IngressClass{Meta: meta, Controller: c.Spec.Controller, Default: meta.Annotations[DefaultClassAnnotation] == "true"}
	if p := c.Spec.Parameters; p != nil && p.Kind == "IngressClassParams" {
		out.ParamsName = p.Name
	}
	b.m.IngressClasses = append(b.m.IngressClasses, out)
}

func (b *builder) ingressClassParams(meta Meta, data []byte) {
	var p struct {
		Spec struct {
			TargetType             string `json:"targetType"`
			LoadBalancerAttributes []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"loadBalancerAttributes"`
		} `json:"spec"`
	}
	if !b.decode(&meta, data, &p) {
		return
	}
	out := &IngressClassParams{Meta: meta}
	if v := p.Spec.TargetType; v != "" {
		pos := meta.At("spec.targetType")
		if v != TargetIP && v != TargetInstance {
			b.diag(pos, meta.Ref(), "spec.targetType %q: want ip or instance", v)
		} else {
			out.TargetType = &Field[string]{Value: v, Pos: pos}
		}
	}
	for i, a := range p.Spec.LoadBalancerAttributes {
		if a.Key != "idle_timeout.timeout_seconds" {
			continue
		}
		pos := meta.At(indexPath("spec.loadBalancerAttributes", i) + ".value")
		n, err := strconv.Atoi(strings.TrimSpace(a.Value))
		if err != nil || n < 1 || n > 4000 {
			b.diag(pos, meta.Ref(), "loadBalancerAttributes idle_timeout.timeout_seconds=%q: want a whole number from 1 to 4000", a.Value)
			continue
		}
		out.IdleTimeout = &Field[time.Duration]{Value: time.Duration(n) * time.Second, Pos: pos}
	}
	b.m.IngressClassParams = append(b.m.IngressClassParams, out)
}

// resolveIngressClass decides whether the AWS Load Balancer Controller
// serves ing, and reads its ALB settings when it does.
func (b *builder) resolveIngressClass(ing *Ingress) {
	hasALB := false
	for k := range ing.Annotations {
		if strings.HasPrefix(k, ALBAnnotationPrefix) {
			hasALB = true
		}
	}
	if ing.ClassFrom == "" {
		for _, c := range b.m.IngressClasses {
			if c.Default {
				ing.Class, ing.ClassFrom = c.Name, "the default IngressClass "+c.Name
			}
		}
	}
	pos := ing.At("spec.ingressClassName")
	if strings.HasPrefix(ing.ClassFrom, "metadata.") {
		pos = ing.AnnotationPos(IngressClassAnnotation)
	}
	var cls *IngressClass
	for _, c := range b.m.IngressClasses {
		if c.Name == ing.Class {
			cls = c
		}
	}
	switch {
	case ing.ClassFrom == "":
		if hasALB {
			ing.ALB = true
			b.m.Diagnostics = append(b.m.Diagnostics, Diagnostic{Pos: ing.At("spec"), Object: ing.Ref(), Kind: DiagIngressClass,
				Message: fmt.Sprintf("Ingress %s has no class and no default IngressClass is among the manifests, but it carries %s* annotations: checked as an ALB Ingress; the controller serves it only if the cluster's default class is %s", ing.Name, ALBAnnotationPrefix, ALBController)})
		}
	case strings.HasPrefix(ing.ClassFrom, "metadata."):
		// The legacy annotation names the controller's --ingress-class.
		ing.ALB = ing.Class == LegacyALBClass
		if !ing.ALB && hasALB {
			b.m.Diagnostics = append(b.m.Diagnostics, Diagnostic{Pos: pos, Object: ing.Ref(), Kind: DiagIngressClass,
				Message: fmt.Sprintf("%s: %q is not %q, the class the AWS Load Balancer Controller serves by default, yet the Ingress carries %s* annotations: not checked as an ALB Ingress", IngressClassAnnotation, ing.Class, LegacyALBClass, ALBAnnotationPrefix)})
		}
	case cls != nil:
		ing.IngressClass = cls
		ing.ALB = cls.IsALB()
		if !ing.ALB && hasALB {
			b.m.Diagnostics = append(b.m.Diagnostics, Diagnostic{Pos: pos, Object: ing.Ref(), Kind: DiagIngressClass, Related: []Pos{cls.At("spec.controller")},
				Message: fmt.Sprintf("IngressClass %s is served by %s, which ignores the Ingress's %s* annotations: not checked as an ALB Ingress", cls.Name, cls.Controller, ALBAnnotationPrefix)})
		}
		if ing.ALB && cls.ParamsName != "" {
			for _, p := range b.m.IngressClassParams {
				if p.Name == cls.ParamsName {
					ing.Params = p
				}
			}
			if ing.Params == nil {
				b.m.Diagnostics = append(b.m.Diagnostics, Diagnostic{Pos: cls.At("spec.parameters"), Object: cls.Ref(), Kind: DiagIngressClass,
					Message: fmt.Sprintf("IngressClassParams %s is not among the manifests: its target type and load-balancer attributes, which override the Ingress annotations, could not be read", cls.ParamsName)})
			}
		}
	case ing.Class == LegacyALBClass:
		ing.ALB = true // the class the controller's Helm chart installs
	case hasALB:
		ing.ALB = true
		b.m.Diagnostics = append(b.m.Diagnostics, Diagnostic{Pos: pos, Object: ing.Ref(), Kind: DiagIngressClass,
			Message: fmt.Sprintf("IngressClass %s is not among the manifests, so its controller is unknown; the Ingress carries %s* annotations and is checked as an ALB Ingress", ing.Class, ALBAnnotationPrefix)})
	}
	if ing.ALB {
		ing.LB = b.lbAttributes(&ing.Meta)
		if p := ing.Params; p != nil && p.IdleTimeout != nil {
			ing.LB.IdleTimeout = *p.IdleTimeout
		}
		ing.Actions = b.actions(&ing.Meta)
	}
}

func (b *builder) targetGroupBinding(meta Meta, data []byte) {
	var t struct {
		Spec struct {
			TargetGroupARN string `json:"targetGroupARN"`
			TargetType     string `json:"targetType"`
			ServiceRef     struct {
				Name string             `json:"name"`
				Port intstr.IntOrString `json:"port"`
			} `json:"serviceRef"`
		} `json:"spec"`
	}
	if !b.decode(&meta, data, &t) {
		return
	}
	out := &TargetGroupBinding{Meta: meta, ServiceName: t.Spec.ServiceRef.Name, ServicePort: t.Spec.ServiceRef.Port.String(), TargetGroupARN: t.Spec.TargetGroupARN}
	out.TargetType = stringField(&meta, "spec.targetType", t.Spec.TargetType, TargetInstance)
	if v := out.TargetType.Value; v != TargetIP && v != TargetInstance {
		b.diag(out.TargetType.Pos, meta.Ref(), "targetType %q: want ip or instance", v)
	}
	if out.ServiceName == "" {
		b.diag(meta.At("spec.serviceRef.name"), meta.Ref(), "spec.serviceRef.name is empty: the binding routes to no pods")
	}
	b.m.TargetGroupBindings = append(b.m.TargetGroupBindings, out)
}

func (b *builder) hpa(meta Meta, data []byte) {
	var h struct {
		Spec struct {
			ScaleTargetRef struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"scaleTargetRef"`
			MinReplicas *int32 `json:"minReplicas"`
			MaxReplicas int32  `json:"maxReplicas"`
		} `json:"spec"`
	}
	if !b.decode(&meta, data, &h) {
		return
	}
	out := &HPA{Meta: meta, TargetKind: h.Spec.ScaleTargetRef.Kind, TargetName: h.Spec.ScaleTargetRef.Name}
	out.MinReplicas = int32Field(&meta, "spec.minReplicas", h.Spec.MinReplicas, 1)
	out.MaxReplicas = Field[int32]{Value: h.Spec.MaxReplicas, Pos: meta.At("spec.maxReplicas")}
	b.m.HPAs = append(b.m.HPAs, out)
}

func (b *builder) pdb(meta Meta, data []byte) {
	var p policyv1.PodDisruptionBudget
	if !b.decode(&meta, data, &p) {
		return
	}
	out := &PDB{Meta: meta}
	if p.Spec.Selector != nil {
		out.Selector = p.Spec.Selector.MatchLabels
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			b.diag(meta.At("spec.selector"), meta.Ref(), "invalid selector: %v", err)
		} else {
			b.selector[out] = sel
		}
	}
	if p.Spec.MinAvailable != nil {
		f := b.intOrPercent(&meta, "spec.minAvailable", p.Spec.MinAvailable, "1")
		out.MinAvailable = &f
	}
	if p.Spec.MaxUnavailable != nil {
		f := b.intOrPercent(&meta, "spec.maxUnavailable", p.Spec.MaxUnavailable, "1")
		out.MaxUnavailable = &f
	}
	b.m.PDBs = append(b.m.PDBs, out)
}
