package lab

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"zerodrop.dev/zerodrop/lab/controlplane"
	"zerodrop.dev/zerodrop/lab/lbc"
)

// lbcIdentity is the load balancer controller twin's user, bound to a
// ClusterRole with the permissions the real controller's chart grants for
// what the twin does.
var lbcIdentity = controlplane.Identity{User: "system:serviceaccount:kube-system:aws-load-balancer-controller"}

func (l *Lab) componentClient(id controlplane.Identity) (kubernetes.Interface, error) {
	cfg, err := controlplane.RESTConfig(l.ca, id, APIServerInside)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", id.User, err)
	}
	return cs, nil
}

func (l *Lab) installLBCRBAC(ctx context.Context) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "zerodrop-lab:aws-load-balancer-controller"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "endpoints", "pods", "nodes", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods/status"}, Verbs: []string{"patch", "update"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "ingressclasses"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{"elbv2.k8s.aws"}, Resources: []string{"targetgroupbindings", "ingressclassparams"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{"elbv2.k8s.aws"}, Resources: []string{"targetgroupbindings/status"}, Verbs: []string{"update", "patch"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: lbcIdentity.User}},
	}
	// The IngressClass the controller's chart installs.
	class := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "alb"},
		Spec:       networkingv1.IngressClassSpec{Controller: "ingress.k8s.aws/alb"},
	}
	if _, err := l.admin.NetworkingV1().IngressClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("IngressClass alb: %w", err)
	}
	if _, err := l.admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("load balancer controller role: %w", err)
	}
	if _, err := l.admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("load balancer controller role binding: %w", err)
	}
	return nil
}

// webhookAddr is where the readiness-gate webhook listens, inside the lab
// network (the API server calls it there).
const webhookAddr = "127.0.0.1:9443"

func (l *Lab) startGateWebhook(ctx context.Context) error {
	kp, err := l.ca.Serving("aws-load-balancer-webhook", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	ln, err := net.Listen("tcp", webhookAddr)
	if err != nil {
		return fmt.Errorf("readiness-gate webhook: %w", err)
	}
	go l.lbc.ServeWebhook(ctx, ln, cert)
	cfg := lbc.WebhookConfiguration("https://"+webhookAddr+lbc.WebhookPath(), l.ca.CertPEM)
	if _, err := l.admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("readiness-gate webhook configuration: %w", err)
	}
	return nil
}

// RolloutsController, when set (by the full binary), runs the real Argo
// Rollouts controller with the given identity's client configuration until
// ctx ends, after installing its CRDs with the admin configuration; its
// logs go to the writer.
var RolloutsController func(ctx context.Context, admin, own *rest.Config, logs io.Writer) error

// rolloutsIdentity is the Argo Rollouts controller's user.
var rolloutsIdentity = controlplane.Identity{User: "system:serviceaccount:argo-rollouts:argo-rollouts"}

func (l *Lab) startRollouts(ctx context.Context) error {
	if RolloutsController == nil {
		return nil
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "zerodrop-lab:argo-rollouts"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"argoproj.io"}, Resources: []string{"*"}, Verbs: []string{"*"}},
			{APIGroups: []string{"apps"}, Resources: []string{"replicasets", "deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch", "patch", "create", "delete", "update"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"endpoints"}, Verbs: []string{"get"}},
			{APIGroups: []string{"networking.k8s.io", "extensions"}, Resources: []string{"ingresses"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
			{APIGroups: []string{"elbv2.k8s.aws"}, Resources: []string{"targetgroupbindings"}, Verbs: []string{"get", "list"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: rolloutsIdentity.User}},
	}
	if _, err := l.admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("argo rollouts role: %w", err)
	}
	if _, err := l.admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("argo rollouts role binding: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "argo-rollouts"}}
	if _, err := l.admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("argo-rollouts namespace: %w", err)
	}
	admin, err := controlplane.RESTConfig(l.ca, controlplane.AdminIdentity, APIServerInside)
	if err != nil {
		return err
	}
	own, err := controlplane.RESTConfig(l.ca, rolloutsIdentity, APIServerInside)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(l.cp.Dir, "logs", "argo-rollouts.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("argo rollouts log: %w", err)
	}
	go func() {
		defer logf.Close()
		if err := RolloutsController(ctx, admin, own, logf); err != nil {
			l.log.Error("argo rollouts controller", "err", err)
		}
	}()
	l.out.say("rollouts", "Argo Rollouts controller running", nil)
	return nil
}
