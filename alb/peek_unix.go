//go:build unix

package alb

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// connAlive reports whether an idle connection can still carry a request:
// the peer has sent neither a FIN nor data (which on an idle HTTP/1.1
// connection can only be an unsolicited response before a close). It never
// blocks.
func connAlive(c net.Conn) bool {
	if fc, ok := c.(*faultConn); ok {
		c = fc.Conn
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EWOULDBLOCK):
			alive = true
		case rerr != nil, n == 0, n > 0:
			alive = false
		}
		return true // never wait for readiness
	})
	return err == nil && alive
}
