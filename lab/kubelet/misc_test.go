package kubelet

import "k8s.io/apimachinery/pkg/runtime"

func objs(o ...runtime.Object) []runtime.Object { return o }
