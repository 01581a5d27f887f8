package lbc

import (
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	labcrd "zerodrop.dev/zerodrop/lab/crd"
)

// TargetGroupBindingResource is the elbv2.k8s.aws TargetGroupBinding
// resource the controller keeps one of per ip target group.
var TargetGroupBindingResource = schema.GroupVersionResource{Group: "elbv2.k8s.aws", Version: "v1beta1", Resource: "targetgroupbindings"}

// InstallCRDs installs the TargetGroupBinding CustomResourceDefinition (the
// fields the lab reads; unknown ones are kept) and waits until it serves.
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
	str := apiextensionsv1.JSONSchemaProps{Type: "string"}
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "targetgroupbindings.elbv2.k8s.aws"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "elbv2.k8s.aws",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "targetgroupbindings", Singular: "targetgroupbinding", Kind: "TargetGroupBinding",
				ListKind: "TargetGroupBindingList", ShortNames: []string{"tgb"}, Categories: []string{"all"},
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1beta1", Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
					{Name: "SERVICE-NAME", Type: "string", JSONPath: ".spec.serviceRef.name"},
					{Name: "SERVICE-PORT", Type: "string", JSONPath: ".spec.serviceRef.port"},
					{Name: "TARGET-TYPE", Type: "string", JSONPath: ".spec.targetType"},
					{Name: "AGE", Type: "date", JSONPath: ".metadata.creationTimestamp"},
				},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"apiVersion": str, "kind": str, "metadata": {Type: "object"},
						"spec": {
							Type: "object", Required: []string{"serviceRef"}, XPreserveUnknownFields: &preserve,
							Properties: map[string]apiextensionsv1.JSONSchemaProps{
								"targetGroupARN":  str,
								"targetGroupName": str,
								"targetType":      {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"instance"`)}, {Raw: []byte(`"ip"`)}}},
								"serviceRef": {
									Type: "object", Required: []string{"name", "port"},
									Properties: map[string]apiextensionsv1.JSONSchemaProps{
										"name": str,
										"port": {XIntOrString: true, AnyOf: []apiextensionsv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}}},
									},
								},
							},
						},
						"status": {Type: "object", XPreserveUnknownFields: &preserve},
					},
				}},
			}},
		},
	}
	return labcrd.Install(ctx, cfg, crd)
}
