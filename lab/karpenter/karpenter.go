//go:build !nolab

// Package karpenter runs the real Karpenter (the sigs.k8s.io/karpenter
// v1.8.0 core: its operator and every controller, provisioning,
// disruption and consolidation, node termination through the eviction
// API) inside the lab, with a cloud provider of the lab's whose instances
// are kubelet-twin nodes. It is modelled on Karpenter's own kwok provider.
//
// Karpenter's operator reads its settings from the process's flags and
// environment and keeps global state (metrics registry, scheme), so it runs
// as a process of its own, the hidden "zerodrop lab component karpenter --
// DIR", which the lab starts in its network namespace under the identity
// system:serviceaccount:kube-system:karpenter. Its cloud provider reaches the
// lab's nodes through the lab's control socket.
package karpenter

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"sigs.k8s.io/karpenter/pkg/cloudprovider/overlay"
	"sigs.k8s.io/karpenter/pkg/controllers"
	"sigs.k8s.io/karpenter/pkg/controllers/state"
	"sigs.k8s.io/karpenter/pkg/operator"

	"zerodrop.dev/zerodrop/lab"
)

// Ports of Karpenter's metrics and health endpoints inside the lab network,
// away from the ports apps take (Karpenter's defaults are 8080 and 8081).
const (
	MetricsPort     = 10941
	HealthProbePort = 10942
)

// Env is the environment Karpenter's operator reads its settings from, for
// the lab in dir with configuration cfg: the lab's kubeconfig for Karpenter,
// no leader election, the ports above, and the batch window scaled by the
// lab's time scale.
func Env(dir string, cfg lab.Config) map[string]string {
	scale := cfg.TimeScale
	if scale <= 0 {
		scale = 1
	}
	scaled := func(d time.Duration) string { return time.Duration(float64(d) * scale).String() }
	return map[string]string{
		"KUBECONFIG":              lab.KarpenterKubeconfig(dir),
		"DISABLE_LEADER_ELECTION": "true",
		"METRICS_PORT":            strconv.Itoa(MetricsPort),
		"HEALTH_PROBE_PORT":       strconv.Itoa(HealthProbePort),
		"BATCH_IDLE_DURATION":     scaled(cfg.Karpenter.BatchIdleDuration),
		"BATCH_MAX_DURATION":      scaled(cfg.Karpenter.BatchMaxDuration),
		"LOG_LEVEL":               "info",
		"LOG_OUTPUT_PATHS":        "stdout",
		"LOG_ERROR_OUTPUT_PATHS":  "stdout",
	}
}

// Main is the whole life of the hidden "lab component karpenter -- DIR"
// process: it reads the lab's configuration, sets Karpenter's environment,
// and runs Karpenter's operator and controllers with the lab cloud
// provider until the process is stopped. It returns only on a setup error.
func Main(args []string) error {
	if len(args) != 1 || args[0] == "" {
		return errors.New("usage: zerodrop lab component karpenter -- DIR")
	}
	dir := args[0]
	cfg, err := lab.ReadConfig(dir)
	if err != nil {
		return err
	}
	if !cfg.Karpenter.Enabled {
		return fmt.Errorf("karpenter is not enabled in the lab configuration in %s", dir)
	}
	for k, v := range Env(dir, cfg) {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("setting %s: %w", k, err)
		}
	}
	// Karpenter's operator parses os.Args[1:] as its own flags: it gets
	// none, its settings come from the environment above.
	os.Args = os.Args[:1]
	Register()
	ctx, op := operator.NewOperator()
	scale := cfg.TimeScale
	if scale <= 0 {
		scale = 1
	}
	provider, err := New(ctx, Config{
		Catalog:             cfg.Karpenter.InstanceTypes,
		LaunchLatency:       time.Duration(float64(cfg.Karpenter.LaunchLatency) * scale),
		RegistrationLatency: time.Duration(float64(cfg.Karpenter.RegistrationLatency) * scale),
		Nodes:               lab.SocketClient(dir),
		Kube:                op.GetClient(),
		Log:                 slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("logger", "lab-cloudprovider"),
	})
	if err != nil {
		return err
	}
	if err := provider.Recover(); err != nil {
		return err
	}
	cloudProvider := overlay.Decorate(provider, op.GetClient(), op.InstanceTypeStore)
	cluster := state.NewCluster(op.Clock, op.GetClient(), cloudProvider)
	op.WithControllers(ctx, controllers.NewControllers(ctx, op.Manager, op.Clock, op.GetClient(), op.EventRecorder,
		cloudProvider, provider, cluster, op.InstanceTypeStore)...).Start(ctx)
	return errors.New("karpenter's operator stopped")
}
