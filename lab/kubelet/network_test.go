package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeNetwork records Up and Down calls, with what the kubelet had done by
// then.
type fakeNetwork struct {
	h *harness

	mu    sync.Mutex
	calls []string // "up 127.77.0.2", "down 127.77.0.2"
	// deletesAtDown is how many pod deletes the kubelet had made when Down
	// ran; exitedAtDown whether the pod's container had exited.
	deletesAtDown []int
	exitedAtDown  []bool
	failUp        bool
}

func (n *fakeNetwork) Up(a netip.Addr) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failUp {
		return errors.New("no address on the ENI")
	}
	n.calls = append(n.calls, "up "+a.String())
	return nil
}

func (n *fakeNetwork) Down(a netip.Addr) error {
	dels := len(n.h.podDeletes())
	exited := n.h.count("ContainerExited") > 0
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, "down "+a.String())
	n.deletesAtDown = append(n.deletesAtDown, dels)
	n.exitedAtDown = append(n.exitedAtDown, exited)
	return nil
}

func (n *fakeNetwork) log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.calls, ", ")
}

// A pod's address is set up before its container starts and torn down
// once the container has exited, before the final delete; the next pod
// gets the address only after that, and sets it up again.
func TestPodNetworkTornDownBeforeFinalDeleteAndReused(t *testing.T) {
	net := &fakeNetwork{}
	h := start(t, harnessConfig{objects: objs(newPod("web")), network: net})
	net.h = h
	h.waitFor("container started", h.has("ContainerStarted"))
	ip := h.first("ContainerStarted").Fields["podIP"].(string)
	if got := net.log(); got != "up "+ip {
		t.Fatalf("network calls before the container started: %q, want %q", got, "up "+ip)
	}
	if h.index("PodNetworkSetUp") > h.index("ContainerStarted") {
		t.Errorf("the container started before its address was set up:\n%s", h.timeline())
	}
	h.deletePod("web", 30)
	h.advanceUntil("pod deleted", 40*time.Second, h.has("PodDeleted"))
	h.waitFor("address torn down", func() bool { return strings.Contains(net.log(), "down") })
	if got, want := net.log(), "up "+ip+", down "+ip; got != want {
		t.Fatalf("network calls: %q, want %q", got, want)
	}
	net.mu.Lock()
	exited, dels := net.exitedAtDown[0], net.deletesAtDown[0]
	net.mu.Unlock()
	if !exited || dels != 0 {
		t.Errorf("address torn down with container exited=%v and %d pod deletes made, want after the exit and before the final delete", exited, dels)
	}
	if h.index("PodNetworkTornDown") > h.index("PodDeleted") {
		t.Errorf("PodNetworkTornDown after PodDeleted:\n%s", h.timeline())
	}

	// The address is free again: the next pod takes it, set up afresh.
	// (The worker frees it just after PodDeleted; wait for that.)
	h.waitFor("address freed", func() bool {
		h.k.mu.Lock()
		defer h.k.mu.Unlock()
		return len(h.k.ips) == 0
	})
	if _, err := h.client.CoreV1().Pods(testNS).Create(context.Background(), newPod("web2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("second pod started", h.hasN("ContainerStarted", 2))
	if ip2 := h.nth("ContainerStarted", 1).Fields["podIP"].(string); ip2 != ip {
		t.Fatalf("second pod got %s, want the freed %s", ip2, ip)
	}
	if got, want := net.log(), fmt.Sprintf("up %s, down %s, up %s", ip, ip, ip); got != want {
		t.Errorf("network calls: %q, want %q", got, want)
	}
}

// When the network cannot be set up, no container starts and the pod gets
// FailedCreatePodSandBox, as the kubelet reports a CNI failure.
func TestPodNetworkSetupFailureStartsNothing(t *testing.T) {
	net := &fakeNetwork{failUp: true}
	h := start(t, harnessConfig{objects: objs(newPod("web")), network: net})
	net.h = h
	h.waitFor("FailedCreatePodSandBox", h.hasKubeEvent("web", corev1.EventTypeWarning, "FailedCreatePodSandBox", "no address on the ENI"))
	h.advance(2 * time.Second)
	if n := h.count("ContainerStarted"); n != 0 {
		t.Errorf("%d containers started without a pod network", n)
	}
	h.k.mu.Lock()
	held := len(h.k.ips)
	h.k.mu.Unlock()
	if held != 0 {
		t.Errorf("%d addresses held after a failed setup, want 0", held)
	}
}
