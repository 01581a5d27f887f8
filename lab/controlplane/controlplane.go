// Package controlplane prepares and supervises the lab's real Kubernetes
// control plane: a lab CA and every certificate, the service-account signing
// key, kubeconfigs for each identity, and etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler as child processes of the
// zerodrop binary (hidden "lab component" subcommands, busybox style).
//
// The package itself does not link Kubernetes; the programs run from the
// components package, which only the full (not nolab) binary carries.
package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Fixed loopback ports of the control plane. The lab runs in a network
// namespace of its own, so they never collide with the host's.
const (
	EtcdClientPort        = 2379
	EtcdPeerPort          = 2380
	APIServerPort         = 6443
	ControllerManagerPort = 10257
	SchedulerPort         = 10259
)

// ServiceCIDR is the Service ClusterIP range. Nothing routes it (there is no
// kube-proxy for ClusterIPs in the lab), so no traffic ever goes there.
const ServiceCIDR = "10.96.0.0/16"

// Identities of the components, with the groups the RBAC bootstrap policy
// binds for them.
var (
	AdminIdentity             = Identity{User: "zerodrop-admin", Groups: []string{"system:masters"}}
	ControllerManagerIdentity = Identity{User: "system:kube-controller-manager"}
	SchedulerIdentity         = Identity{User: "system:kube-scheduler"}
	APIServerEtcdIdentity     = Identity{User: "kube-apiserver-etcd-client"}
)

// NodeIdentity is a kubelet's identity: the Node authorizer and the
// NodeRestriction admission plugin confine it to its own Node and pods.
func NodeIdentity(node string) Identity {
	return Identity{User: "system:node:" + node, Groups: []string{"system:nodes"}}
}

// Config is what the control plane needs to know.
type Config struct {
	// Dir holds pki/, etcd/, logs/ and the kubeconfigs.
	Dir string
	// Binary is the zerodrop executable that carries the components.
	Binary string
	// TimeScale multiplies the control-plane timings the lab owns.
	TimeScale float64
	// NodeMonitorGracePeriod is how long a node may miss heartbeats before
	// the node-lifecycle controller marks it NotReady (Kubernetes: 50s),
	// before the time scale.
	NodeMonitorGracePeriod time.Duration
	// TolerationSeconds is the default not-ready/unreachable toleration the
	// API server adds to pods (Kubernetes: 300), before the time scale.
	TolerationSeconds int64
	// ExtraArgs are appended to a component's flags, by component name.
	ExtraArgs map[string][]string
}

func (c Config) pki(name string) string { return filepath.Join(c.Dir, "pki", name) }

// KubeconfigPath is the kubeconfig of an identity written by Prepare.
func (c Config) KubeconfigPath(name string) string {
	return filepath.Join(c.Dir, "kubeconfig", name+".kubeconfig")
}

func (c Config) scaled(d time.Duration) time.Duration {
	if c.TimeScale <= 0 {
		return d
	}
	return time.Duration(float64(d) * c.TimeScale)
}

// Prepare writes the CA, certificates, service-account key and kubeconfigs
// under Dir. serverForUsers is the API server address written into the
// admin kubeconfig handed to users (the host-side forwarder).
func Prepare(c Config, serverForUsers string) (*CA, error) {
	for _, d := range []string{"pki", "kubeconfig", "logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("creating lab directory: %w", err)
		}
	}
	ca, err := NewCA("zerodrop-lab-ca")
	if err != nil {
		return nil, err
	}
	if err := ca.Save(c.pki("")); err != nil {
		return nil, err
	}
	loop := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	serving := map[string]KeyPair{}
	if serving["apiserver"], err = ca.Serving("kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		append(loop, net.IPv4(10, 96, 0, 1))); err != nil {
		return nil, err
	}
	if serving["etcd-server"], err = ca.Serving("etcd", []string{"localhost"}, loop); err != nil {
		return nil, err
	}
	if serving["controller-manager-serving"], err = ca.Serving("kube-controller-manager", []string{"localhost"}, loop); err != nil {
		return nil, err
	}
	if serving["scheduler-serving"], err = ca.Serving("kube-scheduler", []string{"localhost"}, loop); err != nil {
		return nil, err
	}
	if serving["apiserver-etcd-client"], err = ca.Client(APIServerEtcdIdentity); err != nil {
		return nil, err
	}
	for name, kp := range serving {
		if err := kp.Save(c.pki(""), name); err != nil {
			return nil, err
		}
	}
	if err := NewServiceAccountKey(c.pki("")); err != nil {
		return nil, err
	}
	inside := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(APIServerPort))
	for name, id := range map[string]Identity{
		"admin":              AdminIdentity,
		"controller-manager": ControllerManagerIdentity,
		"scheduler":          SchedulerIdentity,
	} {
		if err := WriteKubeconfig(c.KubeconfigPath(name), ca, id, inside); err != nil {
			return nil, err
		}
	}
	if err := WriteKubeconfig(filepath.Join(c.Dir, "kubeconfig.yaml"), ca, AdminIdentity, serverForUsers); err != nil {
		return nil, err
	}
	return ca, nil
}

// Component is one control-plane program and its flags.
type Component struct {
	Name string
	Args []string
	// Health is the HTTPS URL that answers 200 once the component serves.
	Health string
}

// Components returns the four programs in start order.
func Components(c Config) []Component {
	sec := func(d time.Duration) string {
		return strconv.Itoa(int(max(1, c.scaled(d).Round(time.Second)/time.Second)))
	}
	tol := c.TolerationSeconds
	if tol == 0 {
		tol = 300
	}
	grace := c.NodeMonitorGracePeriod
	if grace == 0 {
		grace = 50 * time.Second
	}
	scaledTol := strconv.FormatInt(int64(max(1, c.scaled(time.Duration(tol)*time.Second).Round(time.Second)/time.Second)), 10)
	etcdURL := fmt.Sprintf("https://127.0.0.1:%d", EtcdClientPort)
	comps := []Component{
		{
			Name: "etcd",
			Args: []string{
				"--name=lab", "--data-dir=" + filepath.Join(c.Dir, "etcd"),
				"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
				fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", EtcdPeerPort),
				"--cert-file=" + c.pki("etcd-server.crt"), "--key-file=" + c.pki("etcd-server.key"),
				"--trusted-ca-file=" + c.pki("ca.crt"), "--client-cert-auth",
			},
			Health: etcdURL + "/health",
		},
		{
			Name: "kube-apiserver",
			Args: []string{
				"--etcd-servers=" + etcdURL,
				"--etcd-cafile=" + c.pki("ca.crt"),
				"--etcd-certfile=" + c.pki("apiserver-etcd-client.crt"),
				"--etcd-keyfile=" + c.pki("apiserver-etcd-client.key"),
				"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
				"--secure-port=" + strconv.Itoa(APIServerPort),
				"--tls-cert-file=" + c.pki("apiserver.crt"), "--tls-private-key-file=" + c.pki("apiserver.key"),
				"--client-ca-file=" + c.pki("ca.crt"),
				"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
				"--service-account-key-file=" + c.pki("sa.pub"),
				"--service-account-signing-key-file=" + c.pki("sa.key"),
				"--authorization-mode=Node,RBAC",
				"--enable-admission-plugins=NodeRestriction",
				"--service-cluster-ip-range=" + ServiceCIDR,
				"--endpoint-reconciler-type=none",
				"--allow-privileged=true",
				"--profiling=false",
				"--cert-dir=" + c.pki("generated"),
				"--default-not-ready-toleration-seconds=" + scaledTol,
				"--default-unreachable-toleration-seconds=" + scaledTol,
				"--max-requests-inflight=800", "--max-mutating-requests-inflight=400",
			},
			Health: fmt.Sprintf("https://127.0.0.1:%d/readyz", APIServerPort),
		},
		{
			Name: "kube-controller-manager",
			Args: []string{
				"--kubeconfig=" + c.KubeconfigPath("controller-manager"),
				"--authentication-kubeconfig=" + c.KubeconfigPath("controller-manager"),
				"--authorization-kubeconfig=" + c.KubeconfigPath("controller-manager"),
				"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ControllerManagerPort),
				"--leader-elect=false",
				"--use-service-account-credentials=true",
				"--service-account-private-key-file=" + c.pki("sa.key"),
				"--root-ca-file=" + c.pki("ca.crt"),
				"--cluster-signing-cert-file=" + c.pki("ca.crt"), "--cluster-signing-key-file=" + c.pki("ca.key"),
				"--tls-cert-file=" + c.pki("controller-manager-serving.crt"),
				"--tls-private-key-file=" + c.pki("controller-manager-serving.key"),
				"--node-monitor-grace-period=" + sec(grace) + "s",
				"--node-monitor-period=" + sec(5*time.Second) + "s",
				"--node-startup-grace-period=" + sec(60*time.Second) + "s",
				"--kube-api-qps=200", "--kube-api-burst=400",
				"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
				"--concurrent-service-endpoint-syncs=10",
			},
			Health: fmt.Sprintf("https://127.0.0.1:%d/healthz", ControllerManagerPort),
		},
		{
			Name: "kube-scheduler",
			Args: []string{
				"--kubeconfig=" + c.KubeconfigPath("scheduler"),
				"--authentication-kubeconfig=" + c.KubeconfigPath("scheduler"),
				"--authorization-kubeconfig=" + c.KubeconfigPath("scheduler"),
				"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(SchedulerPort),
				"--tls-cert-file=" + c.pki("scheduler-serving.crt"),
				"--tls-private-key-file=" + c.pki("scheduler-serving.key"),
				"--leader-elect=false",
				"--kube-api-qps=200", "--kube-api-burst=400",
			},
			Health: fmt.Sprintf("https://127.0.0.1:%d/healthz", SchedulerPort),
		},
	}
	for i := range comps {
		comps[i].Args = append(comps[i].Args, c.ExtraArgs[comps[i].Name]...)
	}
	return comps
}

// WaitHealthy polls url with the admin client certificate until it answers
// 200, ctx ends, or exited is closed (the process died).
func WaitHealthy(ctx context.Context, c Config, url string, exited <-chan struct{}) error {
	client, err := adminHTTPClient(c)
	if err != nil {
		return err
	}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", url, ctx.Err(), last)
		case <-exited:
			return fmt.Errorf("exited before %s answered (last: %v)", url, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func adminHTTPClient(c Config) (*http.Client, error) {
	caPEM, err := os.ReadFile(c.pki("ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading lab CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("lab CA is not PEM")
	}
	ca, err := LoadCA(c.pki(""))
	if err != nil {
		return nil, err
	}
	kp, err := ca.Client(AdminIdentity)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading admin certificate: %w", err)
	}
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		}},
	}, nil
}
