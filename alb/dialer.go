package alb

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Fault is a network failure the Dialer injects for an address.
type Fault int

const (
	// FaultNone removes any fault.
	FaultNone Fault = iota
	// FaultBlackhole drops every packet: connects hang until their timeout,
	// and open connections stop delivering data in either direction (as
	// when a node vanishes).
	FaultBlackhole
	// FaultRefuse refuses connects and resets open connections (as when the
	// host is up but nothing listens any more).
	FaultRefuse
)

// String returns the fault's name as used by the admin API.
func (f Fault) String() string {
	switch f {
	case FaultBlackhole:
		return "blackhole"
	case FaultRefuse:
		return "refuse"
	}
	return "none"
}

// ParseFault parses "none", "blackhole" or "refuse".
func ParseFault(s string) (Fault, error) {
	switch s {
	case "none", "":
		return FaultNone, nil
	case "blackhole":
		return FaultBlackhole, nil
	case "refuse":
		return FaultRefuse, nil
	}
	return FaultNone, fmt.Errorf("fault %q: want none, blackhole or refuse", s)
}

// Dialer connects to targets (for traffic and health checks) and injects
// faults per address. An address is an IP ("127.0.0.5", every port) or an
// ip:port. The zero value is not usable; call NewDialer.
type Dialer struct {
	mu     sync.Mutex
	faults atomic.Pointer[map[string]Fault] // copy on write; read on every I/O
	dialer net.Dialer
}

// NewDialer returns a Dialer with no faults.
func NewDialer() *Dialer {
	d := &Dialer{}
	m := map[string]Fault{}
	d.faults.Store(&m)
	return d
}

// SetFault sets (or with FaultNone clears) the fault for addr, an IP or an
// ip:port. It takes effect at once, also on open connections. A fault on
// an ip:port takes precedence over one on its IP, and each is cleared on
// its own: clearing an ip:port whose IP has a fault is an error (the IP's
// fault would still apply to it).
func (d *Dialer) SetFault(addr string, f Fault) error {
	key, err := faultKey(addr)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.faults.Load()
	if f == FaultNone && net.ParseIP(key) == nil {
		host, _, _ := net.SplitHostPort(key)
		if hf, ok := old[host]; ok {
			return fmt.Errorf("%s would still be %s: that fault is set on %s (every port); clear it with Address %s", key, hf, host, host)
		}
	}
	m := make(map[string]Fault, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if f == FaultNone {
		delete(m, key)
	} else {
		m[key] = f
	}
	d.faults.Store(&m)
	return nil
}

// FaultOf returns the fault in effect for addr (ip:port, or an IP).
func (d *Dialer) FaultOf(addr string) Fault {
	key, err := faultKey(addr)
	if err != nil {
		return FaultNone
	}
	if net.ParseIP(key) != nil {
		return (*d.faults.Load())[key]
	}
	return d.fault(key)
}

// Faults returns the faults in effect, by address.
func (d *Dialer) Faults() map[string]Fault {
	old := *d.faults.Load()
	m := make(map[string]Fault, len(old))
	for k, v := range old {
		m[k] = v
	}
	return m
}

func faultKey(addr string) (string, error) {
	if ip := net.ParseIP(addr); ip != nil {
		return ip.String(), nil
	}
	t, err := parseTarget(addr)
	if err != nil {
		return "", fmt.Errorf("fault address %q: want an IP or ip:port", addr)
	}
	return t, nil
}

// fault returns the fault in effect for addr (ip:port).
func (d *Dialer) fault(addr string) Fault {
	m := *d.faults.Load()
	if len(m) == 0 {
		return FaultNone
	}
	if f, ok := m[addr]; ok {
		return f
	}
	host, _, _ := net.SplitHostPort(addr)
	return m[host]
}

// DialContext connects to addr (ip:port) over TCP, applying its fault.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch d.fault(addr) {
	case FaultBlackhole:
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: tcpAddr(addr), Err: timeoutError{}}
	case FaultRefuse:
		return nil, &net.OpError{Op: "dial", Net: network, Addr: tcpAddr(addr), Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	c, err := d.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &faultConn{Conn: c, d: d, addr: addr, closed: make(chan struct{})}, nil
}

func tcpAddr(addr string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil
	}
	return a
}

// timeoutError is a net.Error that reports a timeout, as a dial or read
// that ran out of time does.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

// faultConn applies the Dialer's current fault to an open connection.
type faultConn struct {
	net.Conn
	d         *Dialer
	addr      string
	readDL    atomic.Int64 // unix nanos, 0 = none
	writeDL   atomic.Int64
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *faultConn) Read(b []byte) (int, error) {
	switch c.d.fault(c.addr) {
	case FaultBlackhole:
		return 0, c.hang(&c.readDL)
	case FaultRefuse:
		return 0, c.reset("read")
	}
	n, err := c.Conn.Read(b)
	if err != nil {
		switch c.d.fault(c.addr) {
		case FaultBlackhole:
			// The peer's FIN or RST would never have reached us.
			return 0, c.hang(&c.readDL)
		}
	}
	return n, err
}

func (c *faultConn) Write(b []byte) (int, error) {
	switch c.d.fault(c.addr) {
	case FaultBlackhole:
		return len(b), nil // sent into the void
	case FaultRefuse:
		return 0, c.reset("write")
	}
	return c.Conn.Write(b)
}

func (c *faultConn) reset(op string) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, syscall.ECONNRESET)}
}

// hang blocks until the deadline in dl passes or the connection is closed,
// then fails the way a blackholed socket does.
func (c *faultConn) hang(dl *atomic.Int64) error {
	for {
		select {
		case <-c.closed:
			return net.ErrClosed
		default:
		}
		wait := 5 * time.Millisecond
		if d := dl.Load(); d != 0 {
			left := time.Until(time.Unix(0, d))
			if left <= 0 {
				return &net.OpError{Op: "read", Net: "tcp", Addr: c.RemoteAddr(), Err: timeoutError{}}
			}
			wait = min(wait, left)
		}
		if c.d.fault(c.addr) != FaultBlackhole {
			return &net.OpError{Op: "read", Net: "tcp", Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", syscall.ECONNRESET)}
		}
		t := time.NewTimer(wait)
		select {
		case <-c.closed:
			t.Stop()
			return net.ErrClosed
		case <-t.C:
		}
	}
}

func deadlineNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (c *faultConn) SetDeadline(t time.Time) error {
	c.readDL.Store(deadlineNanos(t))
	c.writeDL.Store(deadlineNanos(t))
	return c.Conn.SetDeadline(t)
}

func (c *faultConn) SetReadDeadline(t time.Time) error {
	c.readDL.Store(deadlineNanos(t))
	return c.Conn.SetReadDeadline(t)
}

func (c *faultConn) SetWriteDeadline(t time.Time) error {
	c.writeDL.Store(deadlineNanos(t))
	return c.Conn.SetWriteDeadline(t)
}

func (c *faultConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
