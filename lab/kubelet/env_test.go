package kubelet

import (
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// Case 9: the container's environment (downward API, ConfigMap keys,
// $(VAR) references) and the lab's time scale applied to the zerodrop
// image's duration flags, env vars, and sleep hook.
func TestContainerEnvArgsAndScaling(t *testing.T) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: testNS},
		Data:       map[string]string{"greeting": "hello"},
	}
	pod := newPod("env", func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Image = zdImage
		c.Args = []string{"serve", "--name=$(POD_NAME)", "--shutdown-delay", "20s", "--shutdown-timeout=10s", "--greet", "$(GREETING)", "$(UNKNOWN)"}
		field := func(path string) *corev1.EnvVarSource {
			return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
		}
		c.Env = []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_IP", ValueFrom: field("status.podIP")},
			{Name: "NODE", ValueFrom: field("spec.nodeName")},
			{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "greeting",
			}}},
			{Name: "WHERE", Value: "$(POD_NAME)@$(NODE)"},
			{Name: "ZERODROP_SHUTDOWN_DELAY", Value: "20s"},
			{Name: "OTHER_DELAY", Value: "20s"},
		}
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"/zerodrop", "sleep", "20s"}},
		}}
	})
	h := start(t, harnessConfig{scale: 0.1, step: 50 * time.Millisecond, objects: objs(cm, pod)})
	h.waitFor("container started", h.has("ContainerStarted"))
	app := h.appProc(0)
	want := []string{"/zerodrop", "serve", "--name=env", "--shutdown-delay", "2s", "--shutdown-timeout=1s", "--greet", "hello", "$(UNKNOWN)"}
	if !slices.Equal(app.spec.Argv, want) {
		t.Errorf("argv %q\nwant %q", app.spec.Argv, want)
	}
	env := envMap(app.spec.Env)
	ip := h.first("PodAdmitted").Fields["podIP"]
	for k, v := range map[string]string{
		"POD_NAME": "env", "POD_IP": ip.(string), "NODE": testNode, "GREETING": "hello",
		"WHERE": "env@" + testNode, "ZERODROP_SHUTDOWN_DELAY": "2s", "OTHER_DELAY": "20s", "HOSTNAME": "env",
	} {
		if env[k] != v {
			t.Errorf("env %s=%q, want %q", k, env[k], v)
		}
	}
	h.waitFor("status posted", func() bool { return h.pod("env").Status.PodIP != "" })
	if got := h.pod("env").Status.PodIP; got != ip {
		t.Errorf("status.podIP %s, env POD_IP %s", got, ip)
	}
	if path.Base(app.spec.Dir) != "app" {
		t.Errorf("working directory %s, want the container's own", app.spec.Dir)
	}

	// A 30 s grace period and a 20 s preStop sleep become 3 s and 2 s.
	t0 := h.deletePod("env", 30)
	h.waitFor("preStop started", h.has("PreStopStarted"))
	h.advanceUntil("pod deleted", 5*time.Second, h.has("PodDeleted"))
	hooks := h.rt.started("fake:zerodrop")[1:]
	if len(hooks) != 1 || !slices.Equal(hooks[0].spec.Argv, []string{"/zerodrop", "sleep", "2s"}) {
		t.Fatalf("preStop processes %v, want one /zerodrop sleep 2s", hooks)
	}
	h.near("SIGTERM after the scaled 2 s preStop sleep", h.first("SIGTERM").Time.Sub(t0), 2*time.Second)
}

// A missing ConfigMap key keeps the container from starting
// (CreateContainerConfigError), as on a real node.
func TestMissingConfigMapKey(t *testing.T) {
	pod := newPod("nocfg", func(p *corev1.Pod) {
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k"},
		}}}
	})
	h := start(t, harnessConfig{objects: objs(pod)})
	h.waitFor("CreateContainerConfigError posted", func() bool { return h.waitingReason("nocfg", "app") == "CreateContainerConfigError" })
	if n := len(h.rt.started("")); n != 0 {
		t.Errorf("%d processes started without their ConfigMap", n)
	}
}

// Exec probes expand $(VAR) against the container's static env only, as
// the kubelet's ExpandContainerCommandOnlyStatic does (a valueFrom
// variable expands to ""), also in images whose durations the lab scales;
// exec hooks are run as written.
func TestExecProbeAndHookCommandExpansion(t *testing.T) {
	for _, image := range []string{appImage, zdImage} {
		t.Run(path.Base(image), func(t *testing.T) {
			prog := "/bin/probe"
			if image == zdImage {
				prog = "/zerodrop"
			}
			pod := newPod("expand", func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.Image = image
				c.Env = []corev1.EnvVar{
					{Name: "MODE", Value: "fast"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				}
				c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					Exec: &corev1.ExecAction{Command: []string{prog, "check", "$(MODE)", "[$(POD_NAME)]", "$(NONE)"}},
				}}
				hook := []string{"/bin/hook", "exit=0", "$(MODE)"}
				if image == zdImage {
					hook = []string{"/zerodrop", "check", "$(MODE)"}
				}
				c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
					Exec: &corev1.ExecAction{Command: hook},
				}}
			})
			h := start(t, harnessConfig{objects: objs(pod)})
			h.waitFor("ready", h.readyBecame(true))
			var probe *fakeProc
			for _, p := range h.rt.started("") {
				if len(p.spec.Argv) > 1 && p.spec.Argv[1] == "check" {
					probe = p
					break
				}
			}
			if probe == nil {
				t.Fatal("no probe process")
			}
			if want := []string{prog, "check", "fast", "[]", "$(NONE)"}; !slices.Equal(probe.spec.Argv, want) {
				t.Errorf("probe argv %q, want %q", probe.spec.Argv, want)
			}
			h.deletePod("expand", 30)
			h.advanceUntil("pod deleted", 5*time.Second, h.has("PodDeleted"))
			var hook *fakeProc
			for _, p := range h.rt.started("") {
				if len(p.spec.Argv) == 3 {
					hook = p
				}
			}
			if hook == nil {
				t.Fatal("no preStop process")
			}
			if hook.spec.Argv[2] != "$(MODE)" {
				t.Errorf("preStop argv %q, want it as written", hook.spec.Argv)
			}
		})
	}
}

func TestScaleArgv(t *testing.T) {
	for _, tc := range []struct {
		argv  []string
		scale float64
		want  []string
	}{
		{[]string{"/zerodrop", "serve", "--shutdown-delay", "20s"}, 0.1, []string{"/zerodrop", "serve", "--shutdown-delay", "2s"}},
		{[]string{"/zerodrop", "serve", "--shutdown-delay=20s", "--shutdown-timeout", "30"}, 0.1, []string{"/zerodrop", "serve", "--shutdown-delay=2s", "--shutdown-timeout", "3s"}},
		{[]string{"/usr/local/bin/zerodrop", "sleep", "20s"}, 0.1, []string{"/usr/local/bin/zerodrop", "sleep", "2s"}},
		{[]string{"zerodrop", "sleep", "1m30s"}, 2, []string{"zerodrop", "sleep", "3m0s"}},
		{[]string{"/zerodrop", "serve", "--idle-timeout=5s"}, 0.1, []string{"/zerodrop", "serve", "--idle-timeout=500ms"}},
		{[]string{"/zerodrop", "serve", "--shutdown-delay", "20s"}, 1, []string{"/zerodrop", "serve", "--shutdown-delay", "20s"}},
		// Not durations, or not zerodrop's: left alone.
		{[]string{"/zerodrop", "serve", "--shutdown-delay", "soon"}, 0.1, []string{"/zerodrop", "serve", "--shutdown-delay", "soon"}},
		{[]string{"/zerodrop", "serve", "--listen", "20s"}, 0.1, []string{"/zerodrop", "serve", "--listen", "20s"}},
		{[]string{"/bin/sleep", "sleep", "20s"}, 0.1, []string{"/bin/sleep", "sleep", "20s"}},
		{[]string{"/zerodrop", "serve", "--shutdown-delay"}, 0.1, []string{"/zerodrop", "serve", "--shutdown-delay"}},
	} {
		in := slices.Clone(tc.argv)
		got := ScaleArgv(tc.argv, tc.scale)
		if !slices.Equal(got, tc.want) {
			t.Errorf("ScaleArgv(%q, %v) = %q, want %q", tc.argv, tc.scale, got, tc.want)
		}
		if !slices.Equal(tc.argv, in) {
			t.Errorf("ScaleArgv modified its input: %q", tc.argv)
		}
	}
}

func TestScaleEnv(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        string
	}{
		{"ZERODROP_SHUTDOWN_DELAY", "20s", "2s"},
		{"ZERODROP_SHUTDOWN_TIMEOUT", "30", "3s"},
		{"ZERODROP_IDLE_TIMEOUT", "75s", "7.5s"},
		{"ZERODROP_SHUTDOWN_DELAY", "later", "later"},
		{"SHUTDOWN_DELAY", "20s", "20s"},
	} {
		if got := ScaleEnv(tc.name, tc.value, 0.1); got != tc.want {
			t.Errorf("ScaleEnv(%s, %s, 0.1) = %s, want %s", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestResolveImage(t *testing.T) {
	images := testImages()
	for ref, want := range map[string]string{
		"ghcr.io/acme/zerodrop:v1":                  "zerodrop",
		"zerodrop":                                  "zerodrop",
		"localhost:5000/zerodrop":                   "zerodrop",
		"zerodrop@sha256:0123abcd":                  "zerodrop",
		"123.dkr.ecr.us-east-1.amazonaws.com/app:3": "app",
		"nginx:1.27":                                "",
		"zerodrop-sidecar:v1":                       "",
		"localhost:5000/other":                      "",
	} {
		im, err := ResolveImage(images, ref)
		switch {
		case want == "" && err == nil:
			t.Errorf("%s resolved to %s, want ErrImagePull", ref, im.Match)
		case want == "" && !strings.Contains(err.Error(), ref):
			t.Errorf("%s: error %q does not name the image", ref, err)
		case want != "" && (err != nil || im.Match != want):
			t.Errorf("%s resolved to %v (%v), want %s", ref, im, err, want)
		}
	}
	zd := &testImages()[1]
	for name, want := range map[string]string{"zerodrop": "fake:zerodrop", "/zerodrop": "fake:zerodrop", "/usr/local/bin/zerodrop": "fake:zerodrop"} {
		if got, err := zd.Lookup(name); err != nil || got != want {
			t.Errorf("Lookup(%s) = %s, %v", name, got, err)
		}
	}
	for _, name := range []string{"sh", "/bin/sh", "./zerodrop", "bin/zerodrop"} {
		if _, err := zd.Lookup(name); err == nil {
			t.Errorf("Lookup(%s) found a file the image does not hold", name)
		}
	}
}

// FuzzScaleArgv: any command line scales without panicking, keeps its
// length and program, leaves non-duration words alone, and is the
// identity at scale 1.
func FuzzScaleArgv(f *testing.F) {
	f.Add("/zerodrop serve --shutdown-delay 20s", 0.1)
	f.Add("/zerodrop serve --shutdown-timeout=1.5", 0.5)
	f.Add("zerodrop sleep 9223372036s", 1e6)
	f.Add("/zerodrop sleep NaN", 0.1)
	f.Add("/zerodrop serve --shutdown-delay", 3.0)
	f.Fuzz(func(t *testing.T, line string, scale float64) {
		argv := strings.Fields(line)
		if len(argv) == 0 {
			return
		}
		got := ScaleArgv(argv, scale)
		if len(got) != len(argv) || got[0] != argv[0] {
			t.Fatalf("ScaleArgv(%q) = %q", argv, got)
		}
		if scale == 1 && !slices.Equal(got, argv) {
			t.Fatalf("scale 1 changed %q to %q", argv, got)
		}
		for i := 1; i < len(argv); i++ {
			if got[i] == argv[i] {
				continue
			}
			prev := argv[i-1]
			k, _, _ := strings.Cut(argv[i], "=")
			if !durationFlags[prev] && !durationFlags[k] && !(i == 2 && argv[1] == "sleep") {
				t.Fatalf("word %d (%q) of %q changed to %q", i, argv[i], argv, got[i])
			}
		}
	})
}

// FuzzResolveImage: any reference resolves or fails with an error naming
// it, without panicking; a resolved zerodrop image is named zerodrop.
func FuzzResolveImage(f *testing.F) {
	for _, s := range []string{"ghcr.io/acme/zerodrop:v1", "zerodrop@sha256:00", "localhost:5000/app", ":", "/", "@", "a:b/c:d@e:f", "[", "app:"} {
		f.Add(s)
	}
	images := testImages()
	f.Fuzz(func(t *testing.T, ref string) {
		im, err := ResolveImage(images, ref)
		if err != nil {
			return
		}
		name := imageName(ref)
		if strings.Contains(name, "@") || strings.LastIndex(name, ":") > strings.LastIndex(name, "/") {
			t.Fatalf("imageName(%q) = %q keeps a tag or digest", ref, name)
		}
		if im.Match == "zerodrop" && path.Base(name) != "zerodrop" {
			t.Fatalf("%q resolved to the zerodrop image", ref)
		}
	})
}
