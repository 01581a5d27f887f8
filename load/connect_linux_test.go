//go:build linux

package load

import (
	"net"
	"syscall"
	"testing"
	"time"

	"zerodrop.dev/zerodrop/results"
)

// saturatedListener returns the address of a loopback listener whose
// accept queue is full: it listens with backlog 0 and is filled with
// connections nobody accepts. Linux drops further SYNs, so connecting times
// out (reliably: a full accept queue drops SYNs whatever the syncookie
// setting).
func saturatedListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	// Fill the queue: dial until a dial times out.
	for i := 0; i < 16; i++ {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { conn.Close() })
	}
	t.Fatalf("accept queue of %s never filled", addr)
	return ""
}

func TestTimeoutConnectForReal(t *testing.T) {
	addr := saturatedListener(t)
	c, obs := testClient(t, 300*time.Millisecond, time.Second)
	start := time.Now()
	rep := get(t, c, "http://"+addr+"/")
	if rep.Outcome != string(results.TimeoutConnect) {
		t.Fatalf("outcome %q (%v), want timeout-connect", rep.Outcome, rep.Err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 5*time.Second {
		t.Fatalf("took %s, want about the 300ms connect timeout", el)
	}
	if obs.samples[0].Outcome != string(results.TimeoutConnect) {
		t.Fatalf("recorded %+v", obs.samples[0])
	}
}
