package alb

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// maxResponseHeader is the largest response header the ALB accepts from a
// target; a larger one is a 502.
const maxResponseHeader = 32 << 10

var errHeaderTooLarge = errors.New("response headers larger than 32 KiB")

// targetConn is one keep-alive connection from the load balancer to a
// target. Every read and write refreshes an idle deadline (the load
// balancer's idle timeout), and abort makes any blocked I/O fail at once.
type targetConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Duration

	mu       sync.Mutex
	aborted  bool
	counting bool // counting header bytes against maxResponseHeader
	hdrBytes int

	idleSince time.Time // when it went back to the pool
	reused    bool      // served a request before
}

func newTargetConn(c net.Conn, idle time.Duration) *targetConn {
	tc := &targetConn{conn: c, idle: idle}
	tc.br = bufio.NewReaderSize(tc, 4096)
	tc.bw = bufio.NewWriterSize(connWriter{tc}, 4096)
	return tc
}

var errAborted = errors.New("target connection aborted")

// Read implements io.Reader for the connection's bufio.Reader.
func (tc *targetConn) Read(b []byte) (int, error) {
	tc.mu.Lock()
	if tc.aborted {
		tc.mu.Unlock()
		return 0, errAborted
	}
	if tc.idle > 0 {
		tc.conn.SetReadDeadline(time.Now().Add(tc.idle))
	}
	counting := tc.counting
	tc.mu.Unlock()
	if counting {
		if tc.hdrBytes > maxResponseHeader+4096 {
			return 0, errHeaderTooLarge
		}
	}
	n, err := tc.conn.Read(b)
	if counting {
		tc.hdrBytes += n
	}
	return n, err
}

// connWriter is the io.Writer side of a targetConn.
type connWriter struct{ tc *targetConn }

func (w connWriter) Write(b []byte) (int, error) {
	tc := w.tc
	tc.mu.Lock()
	if tc.aborted {
		tc.mu.Unlock()
		return 0, errAborted
	}
	if tc.idle > 0 {
		tc.conn.SetWriteDeadline(time.Now().Add(tc.idle))
	}
	tc.mu.Unlock()
	return tc.conn.Write(b)
}

// countHeaders turns header-size accounting on or off.
func (tc *targetConn) countHeaders(on bool) {
	tc.mu.Lock()
	tc.counting = on
	tc.hdrBytes = tc.br.Buffered()
	tc.mu.Unlock()
}

// abort makes blocked and future I/O on the connection fail at once.
func (tc *targetConn) abort() {
	tc.mu.Lock()
	tc.aborted = true
	tc.conn.SetDeadline(time.Unix(1, 0))
	tc.mu.Unlock()
}

// pool holds the idle keep-alive connections to one target. It reuses the
// most recently used connection first. Like the ALB, it looks at an idle
// connection's socket before reusing it and drops one the target has
// closed (a FIN, or unsolicited bytes ahead of a close), which leaves only
// the true keep-alive race: a close that crosses the request on the wire.
// With reuseClosed set (Config.ReuseClosedIdleConnections) it skips that
// look, and a connection the target closed while idle is found dead only by
// the request sent on it.
type pool struct {
	addr        string
	dialer      *Dialer
	idle        time.Duration // load balancer idle timeout (scaled)
	reuseClosed bool          // do not look for a FIN before reusing an idle connection

	mu     sync.Mutex
	free   []*targetConn
	open   int
	closed bool
}

// get returns an idle connection, or nil when there is none to reuse.
// Connections idle longer than the load balancer's idle timeout are closed.
func (p *pool) get(now time.Time) *targetConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.free) > 0 {
		tc := p.free[len(p.free)-1]
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
		if p.idle > 0 && now.Sub(tc.idleSince) >= p.idle || !p.reuseClosed && !connAlive(tc.conn) {
			tc.conn.Close()
			p.open--
			continue
		}
		return tc
	}
	return nil
}

// dial opens a new connection to the target.
func (p *pool) dial(ctx context.Context) (*targetConn, error) {
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.open++
	p.mu.Unlock()
	return newTargetConn(c, p.idle), nil
}

// put returns a healthy connection after a complete exchange.
func (p *pool) put(tc *targetConn, now time.Time) {
	tc.reused = true
	tc.idleSince = now
	p.mu.Lock()
	if p.closed {
		p.open--
		p.mu.Unlock()
		tc.conn.Close()
		return
	}
	p.free = append(p.free, tc)
	p.mu.Unlock()
}

// discard closes a connection that cannot be reused.
func (p *pool) discard(tc *targetConn) {
	tc.conn.Close()
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
}

// closeIdle closes every idle connection; with stop set the pool keeps no
// connection from now on (draining or removed target).
func (p *pool) closeIdle(stop bool) {
	p.mu.Lock()
	free := p.free
	p.free = nil
	p.open -= len(free)
	if stop {
		p.closed = true
	}
	p.mu.Unlock()
	for _, tc := range free {
		tc.conn.Close()
	}
}

// sweep closes connections idle for the whole idle timeout.
func (p *pool) sweep(now time.Time) {
	p.mu.Lock()
	keep := p.free[:0]
	var drop []*targetConn
	for _, tc := range p.free {
		if p.idle > 0 && now.Sub(tc.idleSince) >= p.idle {
			drop = append(drop, tc)
			continue
		}
		keep = append(keep, tc)
	}
	for i := len(keep); i < len(p.free); i++ {
		p.free[i] = nil
	}
	p.free = keep
	p.open -= len(drop)
	p.mu.Unlock()
	for _, tc := range drop {
		tc.conn.Close()
	}
}

// openConns returns the number of open connections (idle and busy).
func (p *pool) openConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}
