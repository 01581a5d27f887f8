package controlplane

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ContextName is the kubeconfig context the lab writes.
const ContextName = "zerodrop-lab"

// WriteKubeconfig issues a client certificate for id and writes a
// kubeconfig with everything embedded, pointing at server.
func WriteKubeconfig(path string, ca *CA, id Identity, server string) error {
	kp, err := ca.Client(id)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[ContextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.CertPEM}
	cfg.AuthInfos[id.User] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts[ContextName] = &clientcmdapi.Context{Cluster: ContextName, AuthInfo: id.User}
	cfg.CurrentContext = ContextName
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// RESTConfig returns a client configuration for id against the API server
// inside the lab network, with certificates issued on the spot.
func RESTConfig(ca *CA, id Identity, server string) (*rest.Config, error) {
	kp, err := ca.Client(id)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: ca.CertPEM, CertData: kp.CertPEM, KeyData: kp.KeyPEM,
		},
		QPS: 50, Burst: 100,
		UserAgent: "zerodrop-lab/" + id.User,
	}, nil
}
