package main

import (
	"github.com/spf13/cobra"

	"zerodrop.dev/zerodrop/simulate"
)

func init() { register(newSimulateCmd) }

func newSimulateCmd() *cobra.Command {
	o := simulate.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "simulate (--target KIND/NAME | --load-target KIND/NAME) [--profile SPEC] [--duration D]",
		Short: "Drive an app's replicas and the load sessions through a demand cycle (the seed's appsimulator)",
		Long: `Run the seed's demand cycle against a cluster: at every step of a demand
profile in [0,1] (default: a half sine in 19 one-minute steps, then again),
set the replicas of --target through its scale subresource (a Deployment,
an Argo Rollout, anything with /scale) and the load sessions, by scaling
--load-target to ceil(sessions / --sessions-per-pod) pods:

  replicas = round(demand * --scale * --app-ratio) + --app-min
  sessions = round(demand * --scale * --session-ratio) + --session-min

The cycle's start and last step are kept in --state-configmap, so a restart
resumes where the cycle was. Works with --kubeconfig (or $KUBECONFIG) and
in a pod with its service account. Progress on stdout (-o json: one JSON
object per line); with --emf, CloudWatch EMF lines (namespace appsimulator)
on stdout and the progress on stderr.

Exit status: 0 after --duration or a signal (the state is kept); 1 the
state could not be read; 2 usage. See docs/simulate.md.`,
		Example: `  zerodrop simulate --dry-run
  zerodrop simulate --namespace zerodrop --target deployment/logistics \
    --load-target deployment/load --sessions-per-pod 10 --duration 2h
  zerodrop simulate --target rollout/logistics --profile half-sine:min=0,max=1,period=10m,step=30s --scale 50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Stdout, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			err := simulate.Main(cmd.Context(), o)
			if simulate.IsUsage(err) {
				return withExitCode(2, err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, ~/.kube/config, or the pod's service account)")
	f.StringVarP(&o.Namespace, "namespace", "n", "", "namespace of the targets and the state ConfigMap (default: the kubeconfig's, or the pod's)")
	f.StringVar(&o.Target, "target", "", "app to scale: deployment/NAME, rollout/NAME, or RESOURCE.GROUP/NAME")
	f.StringVar(&o.LoadTarget, "load-target", "", "load Deployment to scale to the sessions (KIND/NAME)")
	f.IntVar(&o.SessionsPerPod, "sessions-per-pod", o.SessionsPerPod, "sessions each load pod runs")
	f.StringVar(&o.Profile, "profile", o.Profile, "demand in [0,1]: inline (load's syntax) or a YAML file")
	f.DurationVar(&o.Step, "step", 0, "how often the cycle changes (default: the half-sine's step, else 1m)")
	f.Float64Var(&o.Scale, "scale", o.Scale, "demand that 1.0 stands for")
	f.Float64Var(&o.AppRatio, "app-ratio", o.AppRatio, "app replicas per unit of scaled demand (> 0)")
	f.IntVar(&o.AppMin, "app-min", o.AppMin, "replicas added to the formula")
	f.Float64Var(&o.SessionRatio, "session-ratio", o.SessionRatio, "sessions per unit of scaled demand (> 0)")
	f.IntVar(&o.SessionMin, "session-min", o.SessionMin, "sessions added to the formula")
	f.IntVar(&o.MaxReplicas, "max-replicas", 0, "cap on the app's replicas (0: none)")
	f.IntVar(&o.MaxSessions, "max-sessions", 0, "cap on the sessions (0: none)")
	f.StringVar(&o.StateConfigMap, "state-configmap", o.StateConfigMap, "ConfigMap keeping the cycle's start and last step (\"\": keep nothing)")
	f.DurationVar(&o.Duration, "duration", 0, "stop after this long (0: until a signal)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this address (e.g. :9100)")
	f.BoolVar(&o.EMF, "emf", false, "write CloudWatch EMF lines (namespace appsimulator) to stdout")
	f.StringVarP(&o.Output, "output", "o", o.Output, "progress format: text or json")
	f.BoolVar(&o.DryRun, "dry-run", false, "print one period of the cycle and exit, without a cluster")
	return cmd
}
