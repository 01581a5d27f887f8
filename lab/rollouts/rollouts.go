//go:build !nolab

// Package rollouts runs the real Argo Rollouts controller (v1.10.0, the
// github.com/argoproj/argo-rollouts/controller library) inside the lab,
// with its CustomResourceDefinitions. Its ALB traffic routing rewrites the
// Ingress actions annotation, which the lab's load balancer controller twin
// turns into ModifyRule calls after its lag. Weight verification against
// the ELBv2 API (--aws-verify-target-group) stays off: there is no ELBv2 API
// in the lab.
package rollouts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/argoproj/argo-rollouts/controller"
	"github.com/argoproj/argo-rollouts/controller/metrics"
	"github.com/argoproj/argo-rollouts/metricproviders"
	jobprovider "github.com/argoproj/argo-rollouts/metricproviders/job"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	argoclient "github.com/argoproj/argo-rollouts/pkg/client/clientset/versioned"
	"github.com/argoproj/argo-rollouts/rollout"
	awsutil "github.com/argoproj/argo-rollouts/utils/aws"
	"github.com/argoproj/argo-rollouts/utils/defaults"
	ingressutil "github.com/argoproj/argo-rollouts/utils/ingress"
	istioutil "github.com/argoproj/argo-rollouts/utils/istio"
	logutil "github.com/argoproj/argo-rollouts/utils/log"
	"github.com/argoproj/argo-rollouts/utils/record"
	"github.com/argoproj/argo-rollouts/utils/tolerantinformer"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	smiclient "github.com/servicemeshinterface/smi-sdk-go/pkg/gen/client/split/clientset/versioned"
	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Namespace is where the controller keeps its notification ConfigMap and
// Secret (the real install's namespace).
const Namespace = "argo-rollouts"

// Ports of the controller's metrics and health endpoints inside the lab
// network, away from the ports apps usually take (8080, 8090).
const (
	MetricsPort = 10931
	HealthzPort = 10932
)

// errNoELBv2 answers any use of the AWS client: the lab has no ELBv2 API.
var errNoELBv2 = errors.New("the lab has no ELBv2 API (weight verification is off)")

// Start installs the CRDs with the admin configuration, then runs the
// controller with its own until ctx ends; logs go to logOut. It is the
// lab's RolloutsController.
func Start(ctx context.Context, admin, own *rest.Config, logOut io.Writer) error {
	if err := InstallCRDs(ctx, admin); err != nil {
		return err
	}
	return Run(ctx, own, logOut)
}

// Run runs the controller with cfg's identity until ctx ends; its logs go
// to logOut.
func Run(ctx context.Context, cfg *rest.Config, logOut io.Writer) error {
	logger := logrus.New()
	logger.SetOutput(logOut)
	logrus.SetOutput(logOut)
	logutil.SetKLogLogger(logger)
	defaults.SetVerifyTargetGroup(false)
	// The ALB reconciler asks for an AWS client when it is built; the lab
	// gives it one that fails if ever used.
	awsutil.NewClient = func() (awsutil.Client, error) { return noELBv2{}, nil }

	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("argo rollouts: %w", err)
	}
	argo, err := argoclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("argo rollouts: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("argo rollouts: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("argo rollouts: %w", err)
	}
	smi, err := smiclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("argo rollouts: %w", err)
	}
	resync := time.Duration(controller.DefaultRolloutResyncPeriod) * time.Second
	all := metav1.NamespaceAll
	kubeInformers := informers.NewSharedInformerFactoryWithOptions(kube, resync)
	rsInformers := informers.NewSharedInformerFactoryWithOptions(kube, resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = v1alpha1.DefaultRolloutUniqueLabelKey }))
	jobKube, _, err := metricproviders.GetAnalysisJobClientset(kube)
	if err != nil {
		return fmt.Errorf("argo rollouts: %w", err)
	}
	jobInformers := informers.NewSharedInformerFactoryWithOptions(jobKube, resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = jobprovider.AnalysisRunUIDLabelKey }))
	dynInformers := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, resync, all, nil)
	clusterDynInformers := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, resync, all, nil)
	istioDynInformers := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, resync, all, nil)
	notifSecrets := informers.NewSharedInformerFactoryWithOptions(kube, resync, informers.WithNamespace(Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "metadata.name=" + record.NotificationSecret
		}))
	notifConfigMaps := informers.NewSharedInformerFactoryWithOptions(kube, resync, informers.WithNamespace(Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "metadata.name=" + record.NotificationConfigMap
		}))
	mode, err := ingressutil.DetermineIngressMode("", kube.DiscoveryClient)
	if err != nil {
		return fmt.Errorf("argo rollouts: ingress mode: %w", err)
	}
	ingresses, err := ingressutil.NewIngressWrapper(mode, kube, kubeInformers)
	if err != nil {
		return fmt.Errorf("argo rollouts: %w", err)
	}
	requests := &metrics.K8sRequestsCountProvider{}
	m := controller.NewManager(all, kube, argo, dyn, smi, disc,
		rsInformers.Apps().V1().ReplicaSets(),
		kubeInformers.Core().V1().Services(),
		ingresses,
		jobInformers.Batch().V1().Jobs(),
		jobInformers.Core().V1().Pods(),
		tolerantinformer.NewTolerantRolloutInformer(dynInformers),
		tolerantinformer.NewTolerantExperimentInformer(dynInformers),
		tolerantinformer.NewTolerantAnalysisRunInformer(dynInformers),
		tolerantinformer.NewTolerantAnalysisTemplateInformer(dynInformers),
		tolerantinformer.NewTolerantClusterAnalysisTemplateInformer(clusterDynInformers),
		dyn,
		istioDynInformers.ForResource(istioutil.GetIstioVirtualServiceGVR()).Informer(),
		istioDynInformers.ForResource(istioutil.GetIstioDestinationRuleGVR()).Informer(),
		notifConfigMaps, notifSecrets,
		resync, "", MetricsPort, HealthzPort, requests,
		[]string{"nginx"}, []string{"alb"},
		dynInformers, clusterDynInformers, istioDynInformers,
		false, kubeInformers, rsInformers, jobInformers,
		rollout.DefaultEphemeralMetadataThreads, rollout.DefaultEphemeralMetadataPodRetries,
		false)
	elect := controller.NewLeaderElectionOptions()
	elect.LeaderElect = false
	return m.Run(ctx, controller.DefaultRolloutThreads, controller.DefaultServiceThreads, controller.DefaultIngressThreads,
		controller.DefaultExperimentThreads, controller.DefaultAnalysisThreads, elect)
}

// noELBv2 is the AWS client the ALB reconciler gets: every call fails, as
// nothing in the lab answers the ELBv2 API.
type noELBv2 struct{}

func (noELBv2) GetTargetGroupHealth(context.Context, string) ([]elbv2types.TargetHealthDescription, error) {
	return nil, errNoELBv2
}

func (noELBv2) GetTargetGroupMetadata(context.Context, string) ([]awsutil.TargetGroupMeta, error) {
	return nil, errNoELBv2
}

func (noELBv2) FindLoadBalancerByDNSName(context.Context, string) (*elbv2types.LoadBalancer, error) {
	return nil, errNoELBv2
}
