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

// userTimeout is how long a connection may go without its data being
// acknowledged before the kernel gives up on it: long cuts of a rural
// line outlast the default of about 15 minutes of retries at the default
// retransmission back-off, but not this (the outbox then tries again).
// It also keeps the retry count from deciding once maxRTO shortens the
// back-off.
const userTimeout = 5 * time.Minute

// tuneTCP sets the congestion control (best effort: the kernel may lack
// it or refuse it to an unprivileged process), the unsent-data bound,
// and the longest retransmission timeout (Linux 6.15 and later; older
// kernels keep their 120 s).
//
// The retransmission timeout doubles at each attempt while the link is
// cut; with the default ceiling the first segment after a 5 s cut waits
// on average another 2–3 s, and after a minute's cut up to a minute.
// Capping it at maxRTO bounds that wait at the price of a few
// retransmitted segments while the link is down.
func tuneTCP(raw syscall.RawConn, congestion string, maxRTO time.Duration) (ccErr error) {
	raw.Control(func(fd uintptr) {
		if congestion != "system" {
			ccErr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, congestion)
		}
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout.Milliseconds()))
		if maxRTO > 0 {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_RTO_MAX_MS, int(maxRTO.Milliseconds()))
		}
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
