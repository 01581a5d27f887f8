package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialerInto returns a dial function whose sockets are created inside the
// network namespace of process pid (the lab process), so a program outside
// the lab can reach pod addresses. It needs the privilege to enter that
// namespace (root, as for nsenter).
func DialerInto(pid int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	path := fmt.Sprintf("/proc/%d/ns/net", pid)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		ch := make(chan result, 1)
		go func() {
			// The socket takes the namespace of the thread that creates it;
			// the thread goes back to its own namespace before it is
			// released, or dies with this goroutine if it cannot.
			runtime.LockOSThread()
			own, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{err: fmt.Errorf("opening own network namespace: %w", err)}
				return
			}
			defer own.Close()
			target, err := os.Open(path)
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{err: fmt.Errorf("opening the lab's network namespace: %w", err)}
				return
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread()
				ch <- result{err: fmt.Errorf("entering the lab's network namespace: %w", err)}
				return
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{conn, err}
		}()
		r := <-ch
		return r.conn, r.err
	}
}
