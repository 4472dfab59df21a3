//go:build !linux

package budget

import (
	"syscall"
	"time"
)

// Elsewhere than Linux there is no TCP_INFO to read: transfers are paced
// at the controller's rate but feed it no samples.

type tcpStats struct {
	rtt, minRTT, rcvRTT time.Duration
	acked, received     uint64
	retrans, outOfOrder uint32
	mss                 int
}

func readTCP(syscall.RawConn) (tcpStats, bool)             { return tcpStats{}, false }
func tuneTCP(syscall.RawConn, string, time.Duration) error { return nil }
func setMaxPacing(syscall.RawConn, float64)                {}
