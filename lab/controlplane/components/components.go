//go:build !nolab

// Package components runs the real Kubernetes control-plane programs (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler) and kubectl from
// inside the zerodrop binary. It is the only package that links
// k8s.io/kubernetes; builds tagged nolab leave it out.
package components

import (
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/client-go/kubernetes"
)
