package budget

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The scheduler's connections carry the retransmission-timeout ceiling
// and the user timeout, so that a cut link is retried within a second of
// coming back.
func TestConnectionsCapTheRetransmissionTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			defer c.Close()
		}
	}()
	s, err := New(alwaysOpen(Config{}), online(true), time.Now, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.dialer(ClassHandIn)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*pacedConn).Conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rto, user int
	var rtoErr, userErr error
	raw.Control(func(fd uintptr) {
		rto, rtoErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_RTO_MAX_MS)
		user, userErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	})
	if userErr != nil || user != int(userTimeout.Milliseconds()) {
		t.Errorf("TCP_USER_TIMEOUT = %d (%v), want %d", user, userErr, userTimeout.Milliseconds())
	}
	if rtoErr == unix.ENOPROTOOPT {
		t.Skipf("this kernel has no TCP_RTO_MAX_MS (Linux 6.15+): %v", rtoErr)
	}
	if rtoErr != nil || rto != int(minMaxRTO.Milliseconds()) {
		t.Errorf("TCP_RTO_MAX_MS = %d (%v), want %d", rto, rtoErr, minMaxRTO.Milliseconds())
	}
}
