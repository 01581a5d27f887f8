package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

const (
	freedTable = "zerodrop-freed"
	freedSet   = "freed"
)

// FreedAddrs makes the addresses of deleted pods behave as on a VPC: once a
// pod's sandbox is torn down its address stops answering, so a connect to
// it times out (no RST, no ICMP) instead of being refused, until the
// address is given to a new pod. Inside the lab's network namespace every
// pod address is local, so without this a connect to a dead pod's address
// is refused at once; on EKS (VPC CNI) nothing answers, which is why an ALB
// still routing to such a target gives 504 after its 10 s connect timeout,
// not 502.
//
// The addresses live in an nftables set of a table of their own, apart from
// the node-loss Blackhole, so the two never replace each other. The zero
// value is ready to use; its methods are safe for concurrent use and must
// run in the lab's network namespace.
type FreedAddrs struct {
	mu    sync.Mutex
	ready bool
	conn  *nftables.Conn
	set   *nftables.Set
}

// setup creates the table, set and rules once (replacing any left by an
// earlier run in the same namespace). Called with f.mu held.
func (f *FreedAddrs) setup() error {
	if f.ready {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: freedTable}
	c.AddTable(table)
	c.DelTable(table)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("clearing the freed-address table: %w", err)
	}
	table = c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: freedTable})
	set := &nftables.Set{Table: table, Name: freedSet, KeyType: nftables.TypeIPAddr}
	if err := c.AddSet(set, nil); err != nil {
		return fmt.Errorf("making the freed-address set: %w", err)
	}
	policy := nftables.ChainPolicyAccept
	// Input, like Blackhole: every packet in the namespace crosses it, and a
	// drop there leaves the sender waiting instead of failing its call.
	chain := c.AddChain(&nftables.Chain{
		Name: "freed", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
	for _, offset := range []uint32{12, 16} { // source, destination address
		c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing the freed-address rules: %w", err)
	}
	f.conn, f.set, f.ready = c, set, true
	return nil
}

// Down makes addr silent, as the pod holding it is gone: every packet from
// or to it is dropped.
func (f *FreedAddrs) Down(addr netip.Addr) error {
	return f.change(addr, true)
}

// Up lets packets from and to addr pass again, as the address goes to a
// new pod. An address that was never down is not an error.
func (f *FreedAddrs) Up(addr netip.Addr) error {
	return f.change(addr, false)
}

func (f *FreedAddrs) change(addr netip.Addr, drop bool) error {
	if !addr.Is4() {
		return fmt.Errorf("freed address %s: only IPv4 addresses", addr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.setup(); err != nil {
		return err
	}
	key := addr.As4()
	elems := []nftables.SetElement{{Key: key[:]}}
	if drop {
		if err := f.conn.SetAddElements(f.set, elems); err != nil {
			return fmt.Errorf("dropping %s: %w", addr, err)
		}
	} else {
		if err := f.conn.SetDeleteElements(f.set, elems); err != nil {
			return fmt.Errorf("lifting %s: %w", addr, err)
		}
	}
	if err := f.conn.Flush(); err != nil {
		if !drop && errors.Is(err, unix.ENOENT) {
			return nil // not in the set
		}
		verb := "dropping"
		if !drop {
			verb = "lifting"
		}
		return fmt.Errorf("%s %s: %w", verb, addr, err)
	}
	return nil
}
