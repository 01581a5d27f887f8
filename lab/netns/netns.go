// Package netns gives the lab a network of its own: a Linux network
// namespace in which every pod address is local (one route makes the whole
// pod range bindable on the loopback device), with nothing routed out of
// it. The lab's processes run inside; the host sees only the sockets the
// lab hands out on purpose (the API server's forwarder, load balancers).
//
// Pod addresses cannot be 127.x: the API server rejects loopback addresses
// in EndpointSlices, so the real EndpointSlice controller could not publish
// them. Inside the namespace the pod range is an ordinary private range
// that no packet can leave.
package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IsolationAttrs returns the process attributes that start a child in a new
// network namespace: a plain one as root, or inside a new user namespace
// (where the caller's uid maps to root) for an unprivileged user.
func IsolationAttrs() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Cloneflags: syscall.CLONE_NEWNET}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	return attr
}

// SetupPodNetwork brings the loopback device up and makes every address of
// podRange local to it, so each pod can bind its own address. Call it in
// the namespace, once.
func SetupPodNetwork(podRange netip.Prefix) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding the loopback device: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bringing the loopback device up: %w", err)
	}
	route := &netlink.Route{
		LinkIndex: lo.Attrs().Index,
		Dst:       prefixNet(podRange),
		Type:      unix.RTN_LOCAL,
		Table:     unix.RT_TABLE_LOCAL,
		Scope:     netlink.SCOPE_HOST,
	}
	if err := netlink.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("making %s local: %w", podRange, err)
	}
	return nil
}

const tableName = "zerodrop-lab"

// Blackhole drops, silently, every packet from or to the given prefixes
// inside the namespace, replacing the previous set: connections to those
// addresses time out (as on AWS when an instance is lost) instead of being
// refused, and their peers get no FIN or RST. An empty list lifts it.
func Blackhole(prefixes []netip.Prefix) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: tableName}
	c.AddTable(table)
	c.DelTable(table) // start from nothing: the set of lost nodes is replaced whole
	if len(prefixes) == 0 {
		if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("lifting the blackhole: %w", err)
		}
		return nil
	}
	table = c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: tableName})
	policy := nftables.ChainPolicyAccept
	// Dropped on input, not output: a packet dropped on output makes the
	// sender's system call fail at once, which is not what a lost host does.
	// Every packet in the namespace crosses the input hook (all addresses are
	// local), so matching source and destination there covers both ways.
	chain := c.AddChain(&nftables.Chain{
		Name: "lost", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
	for _, p := range prefixes {
		if !p.Addr().Is4() {
			return fmt.Errorf("blackhole %s: only IPv4 prefixes", p)
		}
		for _, offset := range []uint32{12, 16} { // source, destination address
			c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: matchPrefix(offset, p)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing the blackhole for %v: %w", prefixes, err)
	}
	return nil
}

func matchPrefix(offset uint32, p netip.Prefix) []expr.Any {
	mask := net.CIDRMask(p.Bits(), 32)
	addr := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
