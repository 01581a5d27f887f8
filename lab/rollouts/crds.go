//go:build !nolab

package rollouts

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// InstallCRDs installs the argoproj.io CustomResourceDefinitions the
// controller serves: Rollout (with the status and scale subresources, so
// kubectl scale and autoscalers work on it), AnalysisRun,
// AnalysisTemplate, ClusterAnalysisTemplate and Experiment. Their schemas
// keep every field (the controller reads them through tolerant informers
// and validates them itself).
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
	cs, err := apiextensions.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	preserve := true
	schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
		Type: "object", XPreserveUnknownFields: &preserve,
	}}
	type kind struct {
		plural, singular, kind, short string
		scope                         apiextensionsv1.ResourceScope
		scale                         bool
	}
	kinds := []kind{
		{"rollouts", "rollout", "Rollout", "ro", apiextensionsv1.NamespaceScoped, true},
		{"analysisruns", "analysisrun", "AnalysisRun", "ar", apiextensionsv1.NamespaceScoped, false},
		{"analysistemplates", "analysistemplate", "AnalysisTemplate", "at", apiextensionsv1.NamespaceScoped, false},
		{"clusteranalysistemplates", "clusteranalysistemplate", "ClusterAnalysisTemplate", "cat", apiextensionsv1.ClusterScoped, false},
		{"experiments", "experiment", "Experiment", "exp", apiextensionsv1.NamespaceScoped, false},
	}
	var names []string
	for _, k := range kinds {
		sub := &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}}
		if k.scale {
			selector := ".status.selector"
			sub.Scale = &apiextensionsv1.CustomResourceSubresourceScale{
				SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.HPAReplicas", LabelSelectorPath: &selector,
			}
		}
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: k.plural + ".argoproj.io"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "argoproj.io",
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: k.plural, Singular: k.singular, Kind: k.kind,
					ListKind: k.kind + "List", ShortNames: []string{k.short}},
				Scope: k.scope,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1alpha1", Served: true, Storage: true, Schema: schema, Subresources: sub,
				}},
			},
		}
		if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("installing the %s CRD: %w", k.kind, err)
		}
		names = append(names, crd.Name)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			established := false
			if err == nil {
				for _, c := range got.Status.Conditions {
					established = established || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
				}
			}
			if established {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after 30s: %v", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
