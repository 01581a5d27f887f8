//go:build !nolab

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"zerodrop.dev/zerodrop/alb"
	"zerodrop.dev/zerodrop/lab"
	"zerodrop.dev/zerodrop/lab/controlplane/components"
	"zerodrop.dev/zerodrop/lab/karpenter"
	"zerodrop.dev/zerodrop/lab/lbc"
	"zerodrop.dev/zerodrop/lab/rollouts"
)

func init() {
	register(newLabCmd)
	lab.RolloutsController = rollouts.Start
	lab.KarpenterCRDs = karpenter.InstallCRDs
}

func newLabCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "The seed's experiment on one machine: before vs after, on a real Kubernetes control plane",
		Long: `zerodrop lab with no arguments runs the main job: it boots a lab (the real
Kubernetes control plane, kubelet twins whose pods are real processes, the AWS
Load Balancer Controller and ALB twins, inside a network namespace of its own;
Linux, root or an unprivileged user namespace), applies the seed's broken
setup ("before") and the corrected one ("after"), runs the scale-down scenario
under load on each, and prints side by side what users saw.

The subcommands run a lab by hand (up, down, status, kill-node, drain, ...) or
a scenario on your own manifests (run).`,
		Args: cobra.NoArgs,
	}
	exp := &experimentFlags{}
	exp.register(cmd.Flags())
	cmd.RunE = runDefaultExperiment(exp)
	cmd.PersistentFlags().String("dir", dirDefault(), "lab directory (env ZERODROP_LAB_DIR)")
	cmd.AddCommand(newLabUpCmd(), newLabDownCmd(), newLabStatusCmd(), newLabNetnsCmd(), newLabComponentCmd(), newLabRunCmd(),
		newLabKillNodeCmd(), newLabAddNodeCmd(), newLabDrainCmd(), newLabExecCmd(), newLabTargetHealthCmd())
	return cmd
}

func dirDefault() string {
	if d := os.Getenv("ZERODROP_LAB_DIR"); d != "" {
		return d
	}
	return lab.DefaultDir
}

func labDir(cmd *cobra.Command) string {
	d, _ := cmd.Flags().GetString("dir")
	return d
}

func newLabUpCmd() *cobra.Command {
	var cfg lab.Config
	var output, imagesFile, instanceTypesFile string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a lab and stay in the foreground (Ctrl-C stops it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return withExitCode(2, fmt.Errorf("-o %q: want text or json", output))
			}
			if cfg.TimeScale <= 0 {
				return withExitCode(2, fmt.Errorf("--time-scale %g: must be > 0", cfg.TimeScale))
			}
			if cfg.Nodes < 0 {
				return withExitCode(2, fmt.Errorf("--nodes %d: must be ≥ 0", cfg.Nodes))
			}
			cfg.Dir = labDir(cmd)
			cfg.JSON = output == "json"
			if imagesFile != "" {
				images, err := lab.ReadImages(imagesFile)
				if err != nil {
					return withExitCode(2, err)
				}
				cfg.Images = images
			}
			if instanceTypesFile != "" {
				if !cfg.Karpenter.Enabled {
					return withExitCode(2, fmt.Errorf("--karpenter-instance-types needs --karpenter"))
				}
				types, err := lab.ReadInstanceTypes(instanceTypesFile)
				if err != nil {
					return withExitCode(2, fmt.Errorf("--karpenter-instance-types %s: %w", instanceTypesFile, err))
				}
				cfg.Karpenter.InstanceTypes = types
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.ErrOrStderr()
			return lab.Up(ctx, cfg, out, func(s lab.State) {
				if cfg.JSON {
					b, _ := json.Marshal(map[string]any{"step": "up", "kubeconfig": s.Kubeconfig, "apiServer": s.APIServer, "pid": s.PID})
					fmt.Fprintln(cmd.OutOrStdout(), string(b))
					return
				}
				fmt.Fprintf(cmd.OutOrStdout(), "lab up in %.1fs: API server %s\nexport KUBECONFIG=%s\n",
					time.Since(s.Started).Seconds(), s.APIServer, s.Kubeconfig)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 3, "nodes at start")
	f.Float64Var(&cfg.TimeScale, "time-scale", 1, "multiply every duration the lab owns (0.1 runs ten times faster)")
	f.StringVar(&cfg.APIAddr, "api-addr", "127.0.0.1:0", "host address of the API server (port 0: a free one)")
	f.DurationVar(&cfg.NodeMonitorGracePeriod, "node-monitor-grace-period", 50*time.Second, "silence before a node is NotReady (before time scale)")
	f.Int64Var(&cfg.TolerationSeconds, "toleration-seconds", 300, "default not-ready/unreachable toleration of pods (before time scale)")
	f.StringVar(&cfg.NodeCPU, "node-cpu", "4", "CPU capacity of each node")
	f.StringVar(&cfg.NodeMemory, "node-memory", "16Gi", "memory capacity of each node")
	f.IntVar(&cfg.NodePods, "node-pods", 110, "pod capacity of each node (at most 253)")
	f.StringVarP(&output, "output", "o", "text", "progress format: text|json")
	f.DurationVar(&cfg.LBReconcileLag, "lb-reconcile-lag", lbc.DefaultReconcileLag, "load balancer controller: reaction to a change (before time scale)")
	f.DurationVar(&cfg.LBAPILatency, "lb-api-latency", lbc.DefaultAPILatency, "load balancer controller: ELBv2 API call latency (before time scale)")
	f.DurationVar(&cfg.LBPropagation, "lb-propagation", lbc.DefaultPropagation, "ALB data plane: propagation of a target change after the API accepted it (before time scale)")
	f.DurationVar(&cfg.LBModifyRule, "lb-modify-rule-lag", lbc.DefaultModifyRuleLag, "load balancer controller: from a weight change in an actions annotation to ModifyRule (seed 004: ~70s; before time scale)")
	f.StringVar(&cfg.PodBinary, "pod-binary", os.Getenv("ZERODROP_POD_BIN"), "binary the zerodrop image runs in pods (default: this one; the slim build, go build -tags nolab, starts faster; env ZERODROP_POD_BIN)")
	f.StringVar(&imagesFile, "images", "", "YAML or JSON list of extra image mappings (match, entrypoint, cmd, files)")
	f.BoolVar(&cfg.Karpenter.Enabled, "karpenter", false, "run the real Karpenter with the lab cloud provider (NodePools with a LabNodeClass get kubelet-twin nodes)")
	f.StringVar(&instanceTypesFile, "karpenter-instance-types", "", "YAML or JSON catalog of the lab cloud (name, cpu, memory, pods, arch, offerings: zone, capacityType, price); default lab.small/medium/large")
	f.DurationVar(&cfg.Karpenter.LaunchLatency, "karpenter-launch-latency", 2*time.Second, "lab cloud: duration of an instance launch call (before time scale)")
	f.DurationVar(&cfg.Karpenter.RegistrationLatency, "karpenter-registration-latency", 15*time.Second, "lab cloud: from launch to the node registering (before time scale)")
	f.DurationVar(&cfg.Karpenter.BatchIdleDuration, "karpenter-batch-idle", time.Second, "Karpenter's BATCH_IDLE_DURATION (before time scale)")
	f.DurationVar(&cfg.Karpenter.BatchMaxDuration, "karpenter-batch-max", 10*time.Second, "Karpenter's BATCH_MAX_DURATION (before time scale)")
	return cmd
}

// newLabNetnsCmd is the lab process inside its network namespace; lab up
// starts it (zerodrop lab run is the experiment).
func newLabNetnsCmd() *cobra.Command {
	var output string
	return &cobra.Command{
		Use:    "netns",
		Short:  "The lab process inside its network namespace (started by lab up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return lab.Run(ctx, labDir(cmd), output == "json", cmd.ErrOrStderr())
		},
	}
}

func newLabComponentCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "component NAME -- FLAGS...",
		Short:              "Run one control-plane program (started by the lab)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return withExitCode(2, fmt.Errorf("component name missing (one of %v)", components.Names))
			}
			rest := args[1:]
			if len(rest) > 0 && rest[0] == "--" {
				rest = rest[1:]
			}
			if args[0] == "karpenter" {
				return karpenter.Main(rest)
			}
			if code := components.Run(args[0], rest); code != 0 {
				return withExitCode(code, fmt.Errorf("%s exited with %d", args[0], code))
			}
			return nil
		},
	}
}

func newLabDownCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the lab running in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.Down(labDir(cmd), timeout); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "lab stopped")
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 90*time.Second, "SIGKILL the lab if it has not stopped by then")
	return cmd
}

func newLabStatusCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the lab's components, nodes and pods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := lab.Connect(labDir(cmd))
			if err != nil {
				return err
			}
			st, err := c.Status()
			if err != nil {
				return err
			}
			pods, err := lab.ListPods(cmd.Context(), c.State.Kubeconfig)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"state": c.State, "components": st.Components, "nodes": st.Nodes, "pods": pods})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintf(w, "API server %s, up %s, time scale %g\nexport KUBECONFIG=%s\n\n", c.State.APIServer,
				time.Since(c.State.Started).Round(time.Second), c.State.TimeScale, c.State.Kubeconfig)
			fmt.Fprintln(w, "COMPONENT\tPID\tRUNNING")
			for _, comp := range st.Components {
				fmt.Fprintf(w, "%s\t%d\t%v\n", comp.Name, comp.PID, comp.Running)
			}
			fmt.Fprintln(w, "\nNODE\tIP\tPOD RANGE\tLOST")
			for _, n := range st.Nodes {
				fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", n.Name, n.IP, n.PodRange, n.Lost)
			}
			fmt.Fprintln(w, "\nPOD\tNODE\tIP\tPHASE\tREADY")
			for _, p := range pods {
				fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%v\n", p.Namespace, p.Name, p.Node, p.IP, p.Phase, p.Ready)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text|json")
	return cmd
}

func newLabKillNodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "kill-node NODE",
		Short: "Lose a node abruptly: pods SIGKILLed, addresses silent (connections time out), heartbeat stopped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := lab.Connect(labDir(cmd))
			if err != nil {
				return err
			}
			if err := c.LoseNode(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s lost\n", args[0])
			return nil
		},
	}
}

func newLabAddNodeCmd() *cobra.Command {
	var spec lab.NodeSpec
	cmd := &cobra.Command{
		Use:   "add-node [NAME]",
		Short: "Add a node to the running lab",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				spec.Name = args[0]
			}
			c, err := lab.Connect(labDir(cmd))
			if err != nil {
				return err
			}
			n, err := c.AddNode(spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s added (%s)\n", n.Name, n.IP)
			return nil
		},
	}
	cmd.Flags().StringToStringVar(&spec.Labels, "label", nil, "node labels (key=value)")
	return cmd
}

func newLabDrainCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Cordon a node and evict its pods through the eviction API (PodDisruptionBudgets apply)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := lab.ReadState(labDir(cmd))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return lab.Drain(ctx, s.Kubeconfig, args[0], cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	return cmd
}

func newLabExecCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "exec -- COMMAND [ARGS...]",
		Short: "Run a command inside the lab network (to reach pod addresses), e.g. zerodrop lab exec -- curl http://10.244.1.2:8000/",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := lab.ReadState(labDir(cmd))
			if err != nil {
				return err
			}
			nsenter, err := exec.LookPath("nsenter")
			if err != nil {
				return fmt.Errorf("zerodrop lab exec needs nsenter (util-linux): %w", err)
			}
			nsArgs := []string{"-t", strconv.Itoa(s.LabPID), "-n"}
			if os.Geteuid() != 0 {
				nsArgs = append(nsArgs, "-U", "--preserve-credentials")
			}
			c := exec.Command(nsenter, append(append(nsArgs, "--"), args...)...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					return withExitCode(ee.ExitCode(), nil)
				}
				return err
			}
			return nil
		},
	}
}

func newLabTargetHealthCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe-target-health [GROUP]",
		Short: "Each load balancer's targets with state and reason, as aws elbv2 describe-target-health",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := lab.Connect(labDir(cmd))
			if err != nil {
				return err
			}
			th, err := c.TargetHealth()
			if err != nil {
				return err
			}
			lbs, err := c.LoadBalancers()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if _, ok := th[args[0]]; !ok {
					return fmt.Errorf("no load balancer for Ingress group %q", args[0])
				}
				th = map[string]map[string][]alb.TargetHealthDescription{args[0]: th[args[0]]}
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(th)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GROUP\tLB (LAB / HOST)\tTARGET GROUP\tTARGET\tSTATE\tREASON\tIN FLIGHT")
			for group, tgs := range th {
				for tg, targets := range tgs {
					for _, t := range targets {
						fmt.Fprintf(w, "%s\t%s / %s\t%s\t%s\t%s\t%s\t%d\n", group, lbs[group][0], lbs[group][1], tg,
							t.Target.String(), t.TargetHealth.State, t.TargetHealth.Reason, t.InFlight)
					}
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text|json")
	return cmd
}
