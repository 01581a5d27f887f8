//go:build !nolab

package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"zerodrop.dev/zerodrop/lab"
	"zerodrop.dev/zerodrop/lab/controlplane/components"
)

func init() { register(newKubectlCmd) }

func newKubectlCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl [ARGS...]",
		Short: "kubectl, built in, pointed at the running lab",
		Long: `kubectl (k8s.io/kubectl, the same version as the lab's control plane). Unless
--kubeconfig is given, it uses the kubeconfig of the lab in $ZERODROP_LAB_DIR
(default .zerodrop/lab) when one is running there, else $KUBECONFIG.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !hasKubeconfigFlag(args) {
				if s, err := lab.ReadState(dirDefault()); err == nil {
					os.Setenv("KUBECONFIG", s.Kubeconfig)
				} else if os.Getenv("KUBECONFIG") == "" {
					if p, err := filepath.Abs(filepath.Join(dirDefault(), "kubeconfig.yaml")); err == nil {
						os.Setenv("KUBECONFIG", p)
					}
				}
			}
			if code := components.Kubectl(args); code != 0 {
				return withExitCode(code, nil)
			}
			return nil
		},
	}
}

func hasKubeconfigFlag(args []string) bool {
	for _, a := range args {
		if a == "--kubeconfig" || len(a) > 13 && a[:13] == "--kubeconfig=" {
			return true
		}
	}
	return false
}
