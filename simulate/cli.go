package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"zerodrop.dev/zerodrop/load"
)

// Options are the flags of zerodrop simulate.
type Options struct {
	Kubeconfig     string
	Namespace      string
	Target         string // KIND/NAME
	LoadTarget     string // KIND/NAME of the load Deployment
	SessionsPerPod int
	Profile        string // inline spec or YAML file
	Step           time.Duration
	Scale          float64
	AppRatio       float64
	AppMin         int
	SessionRatio   float64
	SessionMin     int
	MaxReplicas    int
	MaxSessions    int
	StateConfigMap string
	Duration       time.Duration
	MetricsAddr    string
	EMF            bool
	Output         string // text | json
	DryRun         bool

	Stdout, Stderr io.Writer
}

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	c := DefaultCycle()
	return Options{
		SessionsPerPod: 10,
		Profile:        DefaultProfileSpec,
		Scale:          c.Scale,
		AppRatio:       c.AppRatio,
		AppMin:         c.AppMin,
		SessionRatio:   c.SessionRatio,
		SessionMin:     c.SessionMin,
		StateConfigMap: "simulate-state",
		Output:         "text",
	}
}

// UsageError is a bad flag or value, found before anything starts.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// IsUsage reports whether err is a usage error (exit status 2).
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

func usage(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// Cycle builds the cycle from the flags. Errors are *UsageError naming the
// flag.
func (o Options) Cycle() (Cycle, error) {
	p, err := load.LoadProfile(o.Profile)
	if err != nil {
		return Cycle{}, usage("--profile: %v", err)
	}
	step := o.Step
	if step == 0 {
		step = DefaultStep
		if h, ok := p.(load.HalfSine); ok && h.Step > 0 {
			step = h.Step
		}
	}
	c := Cycle{Profile: p, Step: step, Scale: o.Scale, AppRatio: o.AppRatio, AppMin: o.AppMin,
		SessionRatio: o.SessionRatio, SessionMin: o.SessionMin, MaxReplicas: o.MaxReplicas, MaxSessions: o.MaxSessions}
	if err := c.Validate(); err != nil {
		lines := strings.Split(err.Error(), "\n")
		for i, l := range lines {
			lines[i] = "--" + l
		}
		return Cycle{}, usage("%s", strings.Join(lines, "; "))
	}
	return c, nil
}

// Main runs zerodrop simulate: it checks every flag, connects to the
// cluster (kubeconfig, or in-cluster config in a pod), serves /metrics and
// runs the Simulator until --duration passes or ctx ends. Errors found
// before the start are *UsageError.
func Main(ctx context.Context, o Options) error {
	cycle, err := o.Cycle()
	if err != nil {
		return err
	}
	if o.Output != "text" && o.Output != "json" {
		return usage("-o %q: want text or json", o.Output)
	}
	if o.Duration < 0 {
		return usage("--duration %s: must not be negative", o.Duration)
	}
	var target, loadTarget Target
	if o.Target != "" {
		if target, err = ParseTarget(o.Target); err != nil {
			return usage("--target: %v", err)
		}
	}
	if o.LoadTarget != "" {
		if loadTarget, err = ParseTarget(o.LoadTarget); err != nil {
			return usage("--load-target: %v", err)
		}
		if o.SessionsPerPod <= 0 {
			return usage("--sessions-per-pod %d: must be positive", o.SessionsPerPod)
		}
		if loadTarget == target {
			return usage("--load-target %s: the same workload as --target", o.LoadTarget)
		}
	}
	if o.DryRun {
		return printCycle(o.Stdout, cycle, o.Output == "json")
	}
	if target.IsZero() && loadTarget.IsZero() {
		return usage("--target or --load-target is required (or --dry-run)")
	}
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		return err
	}
	if o.MetricsAddr != "" {
		ln, err := net.Listen("tcp", o.MetricsAddr)
		if err != nil {
			return usage("--metrics-addr %s: %v", o.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}

	// --kubeconfig, else $KUBECONFIG or ~/.kube/config, else the pod's
	// in-cluster config (service account token, namespace).
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{}
	overrides.Context.Namespace = o.Namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	restCfg, err := cc.ClientConfig()
	if err != nil {
		return usage("--kubeconfig: %v", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return usage("--namespace: %v", err)
	}
	restCfg.UserAgent = "zerodrop-simulate"
	client, scaler, err := Clients(restCfg)
	if err != nil {
		return err
	}

	// EMF lines go to stdout for CloudWatch; the progress then goes to
	// stderr so the two never mix.
	logW := o.Stdout
	var emf *EMF
	if o.EMF {
		logW = o.Stderr
		perPod := 0
		if !loadTarget.IsZero() {
			perPod = o.SessionsPerPod
		}
		emf = NewEMF(o.Stdout, perPod)
	}
	log := NewEventLog(logW, o.Output == "json")
	cfg := Config{Cycle: cycle, Namespace: ns, Target: target, Scaler: scaler, Client: client,
		StateConfigMap: o.StateConfigMap, Duration: o.Duration, Metrics: metrics,
		Events: func(ev Event) {
			log.Event(ev)
			if emf != nil {
				emf.Event(ev)
			}
		}}
	if !loadTarget.IsZero() {
		cfg.Sessions = LoadDeployment{Scaler: scaler, Namespace: ns, Target: loadTarget, PerPod: o.SessionsPerPod}
	}
	sim, err := New(cfg)
	if err != nil {
		return usage("%v", err)
	}
	if err := sim.Run(ctx); err != nil {
		return err
	}
	if emf != nil {
		if err := emf.Err(); err != nil {
			return fmt.Errorf("--emf: writing: %w", err)
		}
	}
	return nil
}

// Clients builds the Kubernetes clientset (for the state ConfigMap) and
// the scale client from a REST config.
func Clients(cfg *rest.Config) (kubernetes.Interface, *ScaleClient, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("building the Kubernetes client: %w", err)
	}
	sc, err := NewScaleClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cs, sc, nil
}

// printCycle writes one period of the cycle (at most 200 steps): the
// steps, demand, replicas and sessions, without touching a cluster.
func printCycle(w io.Writer, c Cycle, asJSON bool) error {
	n, _, ok := horizon(c.Profile, c.Step)
	if !ok || n <= 0 || n > 200 {
		n = min(max(n, 20), 200)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		for i := range n {
			if err := enc.Encode(c.PointAt(i)); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(w, "%s\n%6s %9s %7s %9s %9s\n", c, "step", "at", "demand", "replicas", "sessions")
	for i := range n {
		p := c.PointAt(i)
		if _, err := fmt.Fprintf(w, "%6d %9s %7.3f %9d %9d\n", p.Step, p.Offset, p.Demand, p.Replicas, p.Sessions); err != nil {
			return err
		}
	}
	return nil
}
