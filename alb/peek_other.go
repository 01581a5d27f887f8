//go:build !unix

package alb

import "net"

// connAlive cannot look at the socket on this platform; it assumes the
// connection is alive.
func connAlive(net.Conn) bool { return true }
