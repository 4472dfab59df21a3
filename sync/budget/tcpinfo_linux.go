package budget

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tcpStats is what the scheduler reads of one connection's TCP_INFO.
type tcpStats struct {
	rtt, minRTT, rcvRTT time.Duration
	acked, received     uint64 // bytes delivered each way, holes included (no burst when a hole fills)
	retrans             uint32 // segments retransmitted, total
	outOfOrder          uint32 // segments received out of order, total
	mss                 int
}

func readTCP(raw syscall.RawConn) (tcpStats, bool) {
	var info *unix.TCPInfo
	var err error
	if cerr := raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return tcpStats{}, false
	}
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return tcpStats{
		rtt: us(info.Rtt), minRTT: us(info.Min_rtt), rcvRTT: us(info.Rcv_rtt),
		// Segment counts rather than tcpi_bytes_acked: cumulative ACKs
		// jump when a loss is repaired, segments are counted as they are
		// SACKed or arrive.
		acked:    uint64(info.Delivered) * uint64(info.Snd_mss),
		received: uint64(info.Data_segs_in) * uint64(info.Rcv_mss),
		retrans:  info.Total_retrans, outOfOrder: info.Rcv_ooopack, mss: int(info.Snd_mss),
	}, true
}

// notSentLowat bounds the data a connection holds unsent in the kernel:
// without it the socket buffer (megabytes) would absorb the pacer's
// chunks, hide from it whether TCP is the bottleneck, and keep sending
// long after the rate fell.
const notSentLowat = 16 << 10

// tuneTCP sets the congestion control (best effort: the kernel may lack
// it or refuse it to an unprivileged process) and the unsent-data bound.
func tuneTCP(raw syscall.RawConn, congestion string) (ccErr error) {
	raw.Control(func(fd uintptr) {
		if congestion != "system" {
			ccErr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, congestion)
		}
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
	})
	return ccErr
}

// setMaxPacing asks the kernel to space the connection's packets at no
// more than rate bytes/s, which smooths the pacer's chunks on the wire.
func setMaxPacing(raw syscall.RawConn, rate float64) {
	v := int(min(rate, 1<<31-1))
	raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, v)
	})
}
