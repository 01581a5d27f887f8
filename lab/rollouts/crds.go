//go:build !nolab

package rollouts

import (
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	labcrd "zerodrop.dev/zerodrop/lab/crd"
)

// InstallCRDs installs the argoproj.io CustomResourceDefinitions the
// controller serves: Rollout (with the status and scale subresources, so
// kubectl scale and autoscalers work on it), AnalysisRun,
// AnalysisTemplate, ClusterAnalysisTemplate and Experiment. Their schemas
// keep every field (the controller reads them through tolerant informers
// and validates them itself).
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
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
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, k := range kinds {
		sub := &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}}
		if k.scale {
			selector := ".status.selector"
			sub.Scale = &apiextensionsv1.CustomResourceSubresourceScale{
				SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.HPAReplicas", LabelSelectorPath: &selector,
			}
		}
		crds = append(crds, &apiextensionsv1.CustomResourceDefinition{
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
		})
	}
	return labcrd.Install(ctx, cfg, crds...)
}
