package netns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The test runs in a child process in a network namespace of its own, so
// nothing it does reaches the machine's own nftables.
const freedChildEnv = "ZERODROP_NETNS_FREED_CHILD"

func TestFreedAddrsTimeOutInsteadOfRefusing(t *testing.T) {
	if os.Getenv(freedChildEnv) == "1" {
		freedChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and nftables")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreedAddrsTimeOutInsteadOfRefusing$", "-test.v")
	cmd.Env = append(os.Environ(), freedChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
}

// dialOutcome connects to addr with a short timeout and says how it ended.
func dialOutcome(addr string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	switch {
	case err == nil:
		c.Close()
		return "connected"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}

func freedChild(t *testing.T) {
	rng := netip.MustParsePrefix("10.244.1.0/24")
	if err := SetupPodNetwork(rng); err != nil {
		t.Fatal(err)
	}
	live, dead := "10.244.1.2:8000", "10.244.1.3:8000"
	ln, err := net.Listen("tcp", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// The failure mode first: a local address with nothing listening
	// refuses at once, which is not what a VPC does with a freed address.
	if got := dialOutcome(dead); got != "refused" {
		t.Fatalf("before Down: connect to %s: %s, want refused", dead, got)
	}
	var f FreedAddrs
	if err := f.Down(netip.MustParseAddr("10.244.1.3")); err != nil {
		t.Fatal(err)
	}
	if got := dialOutcome(dead); got != "timeout" {
		t.Errorf("after Down: connect to %s: %s, want timeout", dead, got)
	}
	if got := dialOutcome(live); got != "connected" {
		t.Errorf("a live pod's address %s: %s, want connected", live, got)
	}
	// Down twice and Up of an address never down are harmless.
	if err := f.Down(netip.MustParseAddr("10.244.1.3")); err != nil {
		t.Errorf("second Down: %v", err)
	}
	if err := f.Up(netip.MustParseAddr("10.244.1.9")); err != nil {
		t.Errorf("Up of an address never down: %v", err)
	}
	// The node-loss blackhole is a table of its own: setting and lifting it
	// leaves the freed address dropped.
	if err := Blackhole([]netip.Prefix{netip.MustParsePrefix("10.244.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	if err := Blackhole(nil); err != nil {
		t.Fatal(err)
	}
	if got := dialOutcome(dead); got != "timeout" {
		t.Errorf("after a node blackhole came and went: connect to %s: %s, want timeout", dead, got)
	}
	// The address goes to a new pod: set up, it answers again.
	if err := f.Up(netip.MustParseAddr("10.244.1.3")); err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", dead)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if got := dialOutcome(dead); got != "connected" {
		t.Errorf("after Up, with a new pod listening: connect to %s: %s, want connected", dead, got)
	}
	if err := f.Down(netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("Down of an IPv6 address: no error")
	}
}
