//go:build !nolab

// Package components runs the real Kubernetes control-plane programs (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler) and kubectl from
// inside the zerodrop binary. It is the only package that links
// k8s.io/kubernetes; builds tagged nolab leave it out.
package components

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// Names lists the programs Run knows.
var Names = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// Run runs the named program with its own command-line flags and returns
// its exit code. It is meant to be the whole life of a child process.
func Run(name string, args []string) int {
	var cmd *cobra.Command
	switch name {
	case "etcd":
		return runEtcd(args)
	case "kube-apiserver":
		cmd = apiserver.NewAPIServerCommand()
	case "kube-controller-manager":
		cmd = controllermanager.NewControllerManagerCommand()
	case "kube-scheduler":
		cmd = scheduler.NewSchedulerCommand()
	default:
		fmt.Fprintf(os.Stderr, "zerodrop lab component: unknown component %q (known: %v)\n", name, Names)
		return 2
	}
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

// Kubectl runs kubectl with args (without "kubectl") and returns its exit
// code; KUBECONFIG in the environment selects the cluster.
func Kubectl(args []string) int {
	cmd := kubectlcmd.NewDefaultKubectlCommand()
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func runEtcd(args []string) int {
	cfg, err := etcdConfig(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 2
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd: starting:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 1
	case <-ctx.Done():
		e.Close()
		return 0
	}
	select {
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd:", err)
		e.Close()
		return 1
	case <-ctx.Done():
		e.Close()
		return 0
	}
}

// etcdConfig reads the few flags the lab passes to its single-member etcd.
func etcdConfig(args []string) (*embed.Config, error) {
	fs := pflag.NewFlagSet("etcd", pflag.ContinueOnError)
	name := fs.String("name", "lab", "member name")
	dir := fs.String("data-dir", "", "data directory")
	listenClient := fs.String("listen-client-urls", "", "client URL")
	advertiseClient := fs.String("advertise-client-urls", "", "advertised client URL")
	listenPeer := fs.String("listen-peer-urls", "", "peer URL")
	certFile := fs.String("cert-file", "", "serving certificate")
	keyFile := fs.String("key-file", "", "serving key")
	caFile := fs.String("trusted-ca-file", "", "client CA")
	clientCertAuth := fs.Bool("client-cert-auth", false, "require client certificates")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	parse := func(flag, s string) (url.URL, error) {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return url.URL{}, fmt.Errorf("--%s %q: not a URL", flag, s)
		}
		return *u, nil
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = *name, *dir
	lc, err := parse("listen-client-urls", *listenClient)
	if err != nil {
		return nil, err
	}
	ac, err := parse("advertise-client-urls", *advertiseClient)
	if err != nil {
		return nil, err
	}
	lp, err := parse("listen-peer-urls", *listenPeer)
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{lc}, []url.URL{ac}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{lp}, []url.URL{lp}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = *certFile, *keyFile
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = *caFile, *clientCertAuth
	// The lab's etcd is thrown away with the lab: skip fsync, as test
	// clusters do, so 300 pods' status updates do not wait on the disk.
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "warn"
	return cfg, nil
}
