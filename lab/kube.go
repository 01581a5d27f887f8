package lab

import (
	"context"
	"fmt"
	"io"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubectl/pkg/drain"
)

// PodInfo is one pod in status output.
type PodInfo struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node"`
	IP        string `json:"ip"`
	Phase     string `json:"phase"`
	Ready     bool   `json:"ready"`
}

// Clientset builds a client from a kubeconfig file.
func Clientset(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
	}
	return kubernetes.NewForConfig(cfg)
}

// ListPods lists every pod of the lab.
func ListPods(ctx context.Context, kubeconfig string) ([]PodInfo, error) {
	cs, err := Clientset(kubeconfig)
	if err != nil {
		return nil, err
	}
	list, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	var out []PodInfo
	for _, p := range list.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		out = append(out, PodInfo{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP, Phase: string(p.Status.Phase), Ready: ready})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Drain cordons node and evicts its pods through the eviction API, as
// kubectl drain does (the API server enforces PodDisruptionBudgets and
// drain retries while a budget refuses).
func Drain(ctx context.Context, kubeconfig, node string, out io.Writer) error {
	cs, err := Clientset(kubeconfig)
	if err != nil {
		return err
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	h := &drain.Helper{
		Ctx: ctx, Client: cs, Force: true, GracePeriodSeconds: -1, IgnoreAllDaemonSets: true,
		DeleteEmptyDirData: true, Out: out, ErrOut: out,
		OnPodDeletionOrEvictionFinished: func(pod *corev1.Pod, usingEviction bool, err error) {
			if err == nil {
				fmt.Fprintf(out, "pod %s/%s evicted\n", pod.Namespace, pod.Name)
			}
		},
	}
	if err := drain.RunCordonOrUncordon(h, n, true); err != nil {
		return fmt.Errorf("cordoning %s: %w", node, err)
	}
	fmt.Fprintf(out, "node %s cordoned\n", node)
	if err := drain.RunNodeDrain(h, node); err != nil {
		return fmt.Errorf("draining %s: %w", node, err)
	}
	fmt.Fprintf(out, "node %s drained\n", node)
	return nil
}
