package lbc

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSuitableAsTrafficProxy(t *testing.T) {
	cases := []struct {
		name  string
		taint *corev1.Taint
		want  bool
	}{
		{"untainted", nil, true},
		{"cluster autoscaler removing it", &corev1.Taint{Key: "ToBeDeletedByClusterAutoscaler", Value: "1700000000", Effect: corev1.TaintEffectNoSchedule}, false},
		{"Karpenter disrupting it", &corev1.Taint{Key: "karpenter.sh/disrupted", Effect: corev1.TaintEffectNoSchedule}, false},
		{"karpenter.sh/disrupted with another effect", &corev1.Taint{Key: "karpenter.sh/disrupted", Effect: corev1.TaintEffectPreferNoSchedule}, true},
		{"Karpenter's startup taint", &corev1.Taint{Key: "karpenter.sh/unregistered", Effect: corev1.TaintEffectNoExecute}, true},
		{"a user's dedicated taint", &corev1.Taint{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}, true},
	}
	for _, tc := range cases {
		n := &corev1.Node{}
		if tc.taint != nil {
			n.Spec.Taints = []corev1.Taint{*tc.taint}
		}
		if got := suitableAsTrafficProxy(n); got != tc.want {
			t.Errorf("%s: suitable %v, want %v", tc.name, got, tc.want)
		}
	}
}
