//go:build !nolab

package karpenter

import (
	"sync"

	"github.com/awslabs/operatorpkg/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// Group is the API group of the lab's node class.
const Group = "karpenter.lab.zerodrop.dev"

// GroupVersion is LabNodeClass's group and version.
var GroupVersion = schema.GroupVersion{Group: Group, Version: "v1alpha1"}

// LabNodeClass is the lab cloud's node class: what a NodePool's
// spec.template.spec.nodeClassRef points at (group
// karpenter.lab.zerodrop.dev, kind LabNodeClass). It has no settings; the
// API server defaults its status to Ready, so a NodePool that references
// an existing LabNodeClass becomes Ready.
type LabNodeClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LabNodeClassSpec   `json:"spec,omitempty"`
	Status LabNodeClassStatus `json:"status,omitempty"`
}

// LabNodeClassSpec is empty: the catalog and latencies are the lab's
// (lab up --karpenter-*).
type LabNodeClassSpec struct{}

// LabNodeClassStatus holds the class's conditions (Ready).
type LabNodeClassStatus struct {
	Conditions []status.Condition `json:"conditions,omitempty"`
}

// LabNodeClassList is a list of LabNodeClass.
type LabNodeClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LabNodeClass `json:"items"`
}

// StatusConditions is the class's condition set (Ready only).
func (in *LabNodeClass) StatusConditions() status.ConditionSet {
	return status.NewReadyConditions().For(in)
}

// GetConditions returns the class's conditions.
func (in *LabNodeClass) GetConditions() []status.Condition { return in.Status.Conditions }

// SetConditions replaces the class's conditions.
func (in *LabNodeClass) SetConditions(c []status.Condition) { in.Status.Conditions = c }

// DeepCopyInto copies in into out.
func (in *LabNodeClass) DeepCopyInto(out *LabNodeClass) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Status.Conditions != nil {
		out.Status.Conditions = make([]status.Condition, len(in.Status.Conditions))
		for i := range in.Status.Conditions {
			in.Status.Conditions[i].DeepCopyInto(&out.Status.Conditions[i])
		}
	}
}

// DeepCopy returns a copy of in.
func (in *LabNodeClass) DeepCopy() *LabNodeClass {
	if in == nil {
		return nil
	}
	out := new(LabNodeClass)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject returns a copy of in as a runtime.Object.
func (in *LabNodeClass) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject returns a copy of in as a runtime.Object.
func (in *LabNodeClassList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &LabNodeClassList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]LabNodeClass, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

var registerOnce sync.Once

// Register adds LabNodeClass to client-go's scheme, the one Karpenter's
// manager and clients use (as Karpenter's own API types do in their init).
func Register() {
	registerOnce.Do(func() {
		metav1.AddToGroupVersion(scheme.Scheme, GroupVersion)
		scheme.Scheme.AddKnownTypes(GroupVersion, &LabNodeClass{}, &LabNodeClassList{})
	})
}
