//go:build !nolab

package karpenter

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	v1 "sigs.k8s.io/karpenter/pkg/apis/v1"
	"sigs.k8s.io/karpenter/pkg/cloudprovider"
	"sigs.k8s.io/karpenter/pkg/scheduling"

	"zerodrop.dev/zerodrop/lab"
)

// Region is the topology.kubernetes.io/region of every lab node Karpenter
// launches.
const Region = "lab"

// InstanceTypes turns the lab's catalog into Karpenter's instance types:
// requirements on the well-known labels (instance type, arch, os linux,
// region, the zones and capacity types of its offerings), one offering per
// zone and capacity type, capacity as listed and no overhead (a kubelet twin
// reserves nothing, so allocatable is the capacity).
func InstanceTypes(catalog []lab.InstanceType) ([]*cloudprovider.InstanceType, error) {
	if err := lab.ValidateInstanceTypes(catalog); err != nil {
		return nil, err
	}
	var out []*cloudprovider.InstanceType
	for _, it := range catalog {
		arch := it.Arch
		if arch == "" {
			arch = v1.ArchitectureAmd64
		}
		cpu, err := resource.ParseQuantity(it.CPU)
		if err != nil {
			return nil, fmt.Errorf("instance type %s: cpu: %w", it.Name, err)
		}
		mem, err := resource.ParseQuantity(it.Memory)
		if err != nil {
			return nil, fmt.Errorf("instance type %s: memory: %w", it.Name, err)
		}
		var zones, capacityTypes []string
		var offerings cloudprovider.Offerings
		for _, o := range it.Offerings {
			zones = appendNew(zones, o.Zone)
			capacityTypes = appendNew(capacityTypes, o.CapacityType)
			offerings = append(offerings, &cloudprovider.Offering{
				Requirements: scheduling.NewRequirements(
					scheduling.NewRequirement(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, o.Zone),
					scheduling.NewRequirement(v1.CapacityTypeLabelKey, corev1.NodeSelectorOpIn, o.CapacityType),
				),
				Price:     o.Price,
				Available: !o.Unavailable,
			})
		}
		out = append(out, &cloudprovider.InstanceType{
			Name: it.Name,
			Requirements: scheduling.NewRequirements(
				scheduling.NewRequirement(corev1.LabelInstanceTypeStable, corev1.NodeSelectorOpIn, it.Name),
				scheduling.NewRequirement(corev1.LabelArchStable, corev1.NodeSelectorOpIn, arch),
				scheduling.NewRequirement(corev1.LabelOSStable, corev1.NodeSelectorOpIn, string(corev1.Linux)),
				scheduling.NewRequirement(corev1.LabelTopologyRegion, corev1.NodeSelectorOpIn, Region),
				scheduling.NewRequirement(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, zones...),
				scheduling.NewRequirement(v1.CapacityTypeLabelKey, corev1.NodeSelectorOpIn, capacityTypes...),
			),
			Offerings: offerings,
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    cpu,
				corev1.ResourceMemory: mem,
				corev1.ResourcePods:   *resource.NewQuantity(int64(it.Pods), resource.DecimalSI),
			},
			Overhead: &cloudprovider.InstanceTypeOverhead{},
		})
	}
	return out, nil
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
