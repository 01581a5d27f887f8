//go:build !nolab

package karpenter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	karpenterapis "sigs.k8s.io/karpenter/pkg/apis"

	"zerodrop.dev/zerodrop/lab/crd"
)

// InstallCRDs installs the CustomResourceDefinitions Karpenter v1.8.0
// ships (NodePool, NodeClaim, NodeOverlay: its own files, schemas and CEL
// validations included) and the lab's LabNodeClass, and waits until they
// are established. It is the lab's KarpenterCRDs.
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
	nc, err := NodeClassCRD(time.Now())
	if err != nil {
		return err
	}
	return crd.Install(ctx, cfg, append(append([]*apiextensionsv1.CustomResourceDefinition{}, karpenterapis.CRDs...), nc)...)
}

// NodeClassCRD is the LabNodeClass CustomResourceDefinition (cluster
// scoped, short name labnc, status subresource). Its status defaults to a
// Ready condition dated since, as Karpenter's kwok node class does: the
// lab's node classes have nothing to resolve.
func NodeClassCRD(since time.Time) (*apiextensionsv1.CustomResourceDefinition, error) {
	ready, err := json.Marshal(map[string]any{"conditions": []map[string]any{{
		"type": "Ready", "status": "True", "reason": "Ready", "message": "",
		"lastTransitionTime": since.UTC().Format(time.RFC3339),
	}}})
	if err != nil {
		return nil, fmt.Errorf("LabNodeClass CRD: %w", err)
	}
	preserve := true
	schema := &apiextensionsv1.JSONSchemaProps{
		Type: "object",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"apiVersion": {Type: "string"},
			"kind":       {Type: "string"},
			"metadata":   {Type: "object"},
			"spec":       {Type: "object"},
			"status": {
				Type:    "object",
				Default: &apiextensionsv1.JSON{Raw: ready},
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"conditions": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: &preserve,
					}}},
				},
			},
		},
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "labnodeclasses." + Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "labnodeclasses", Singular: "labnodeclass", Kind: "LabNodeClass", ListKind: "LabNodeClassList",
				ShortNames: []string{"labnc"}, Categories: []string{"karpenter"},
			},
			Scope: apiextensionsv1.ClusterScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: GroupVersion.Version, Served: true, Storage: true,
				Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: schema},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}, nil
}
