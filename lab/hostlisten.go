package lab

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The lab process lives in its own network namespace; sockets on the
// host's loopback (for users to reach a load balancer) are opened by lab up
// and handed over through a unix socket (fd 5) with SCM_RIGHTS. This works
// for an unprivileged lab too, where lab up cannot enter the namespace.

// serveHostListeners answers the lab process's requests on conn: a line
// with a host address; the answer is "ok ADDR" with the listener's file
// descriptor attached, or "err MESSAGE".
func serveHostListeners(conn *net.UnixConn) {
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		addr := strings.TrimSpace(line)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			_, _ = conn.Write([]byte("err " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n"))
			continue
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close() // the duplicate in f keeps the socket open
		if err != nil {
			_, _ = conn.Write([]byte("err " + err.Error() + "\n"))
			continue
		}
		_, _, err = conn.WriteMsgUnix([]byte("ok "+ln.Addr().String()+"\n"), unix.UnixRights(int(f.Fd())), nil)
		f.Close()
		if err != nil {
			return
		}
	}
}

// hostListener asks lab up for host listeners.
type hostListener struct {
	mu   sync.Mutex
	conn *net.UnixConn
}

func newHostListener(f *os.File) (*hostListener, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("host listener channel: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, errors.New("host listener channel is not a unix socket")
	}
	return &hostListener{conn: uc}, nil
}

// Listen opens a TCP listener at addr in the host's network.
func (h *hostListener) Listen(addr string) (net.Listener, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.conn.Write([]byte(addr + "\n")); err != nil {
		return nil, fmt.Errorf("asking lab up for a host listener: %w", err)
	}
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := h.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("host listener: %w", err)
	}
	reply := strings.TrimSpace(string(buf[:n]))
	if msg, ok := strings.CutPrefix(reply, "err "); ok {
		return nil, fmt.Errorf("host listener %s: %s", addr, msg)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("host listener %s: no descriptor in the answer", addr)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("host listener %s: no descriptor in the answer", addr)
	}
	f := os.NewFile(uintptr(fds[0]), "host-listener")
	defer f.Close()
	return net.FileListener(f)
}
