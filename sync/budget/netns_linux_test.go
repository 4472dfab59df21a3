package budget

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"preau/sync/internal/linkemu"
	"preau/sync/uplink"
)

// The monitor of sync/uplink takes the scheduler's reports.
var _ PathObserver = (*uplink.Monitor)(nil)

// The uplink of the issue: 2 Mbit/s each way, 300 ms RTT, 1 % loss each
// way, and a modem's deep buffer (96 KiB ≈ 390 ms at 2 Mbit/s), where a
// plain upload queues up and a video call suffers.
var lossy2M = linkemu.Path{Rate: 2_000_000, Delay: 150 * time.Millisecond, QueueBytes: 96 << 10, Loss: 0.01}

const linkBytesPerSecond = 2_000_000 / 8

// sinkResult is what the sink saw of one upload.
type sinkResult struct {
	bytes             int64
	first, half, last time.Time // first body bytes read, half of them, all of them
}

// goodput over the whole body and over its second half, in bytes/s.
func (r sinkResult) goodput() (whole, secondHalf float64) {
	return float64(r.bytes) / r.last.Sub(r.first).Seconds(), float64(r.bytes/2) / r.last.Sub(r.half).Seconds()
}

// startSink runs an HTTP sink in the server namespace: it reads the body
// of every request and reports the timing on the returned channel.
func startSink(t *testing.T, tb *linkemu.Testbed) (string, <-chan sinkResult) {
	t.Helper()
	l, err := tb.ListenServer("tcp4", netip.AddrPortFrom(tb.ServerAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan sinkResult, 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res sinkResult
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				if res.bytes == 0 {
					res.first = time.Now()
				}
				res.bytes += int64(n)
				res.last = time.Now()
				if res.half.IsZero() && res.bytes >= r.ContentLength/2 {
					res.half = res.last
				}
			}
			if err != nil {
				break
			}
		}
		results <- res
		w.Write([]byte(strconv.FormatInt(res.bytes, 10)))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/", results
}

func startEcho(t *testing.T, tb *linkemu.Testbed) net.Addr {
	t.Helper()
	c, err := linkemu.ListenPacket(tb.Server, "udp4", netip.AddrPortFrom(tb.ServerAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go linkemu.ServeEcho(c)
	return c.LocalAddr()
}

func startPings(t *testing.T, tb *linkemu.Testbed, echo net.Addr) *linkemu.PingTrain {
	t.Helper()
	c, err := linkemu.ListenPacket(tb.Box, "udp4", netip.AddrPortFrom(tb.BoxAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	// A voice call's packets: 160 bytes every 20 ms would do; 100 ms is
	// enough to see the queue.
	return linkemu.StartPingTrain(c, echo, 100*time.Millisecond, 160)
}

// watch logs the controller's state every second until the test ends.
func watch(t *testing.T, s *Scheduler) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			st := s.Status()
			s.mu.Lock()
			c := s.ctl[up]
			cuts := [2]int64{c.cutsLoss, c.cutsDelay}
			s.mu.Unlock()
			if os.Getenv("PREAU_BUDGET_TRACE") != "" {
				debugConns(t, s)
			}
			t.Logf("up: rate %4.0f kbit/s, base %v, queue %v, cuts loss %d delay %d, sent %d B",
				st.Up.Rate*8/1000, st.Up.BaseRTT.Round(time.Millisecond), st.Up.QueueDelay.Round(time.Millisecond),
				cuts[0], cuts[1], st.Classes[0].SentBytes)
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

func startScheduler(t *testing.T, tb *linkemu.Testbed) *Scheduler {
	t.Helper()
	s, err := New(alwaysOpen(Config{Dialer: dialFunc(tb.DialBox)}), online(true), time.Now, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	if testing.Verbose() {
		watch(t, s)
	}
	if os.Getenv("PREAU_BUDGET_TRACE") != "" {
		start := time.Now()
		s.trace = func(d direction, smp sample, c *controller) {
			if d == up && smp.rtt > 0 {
				t.Logf("trace %6.2fs rtt %3dms bytes %6d loss %-5v lim %-5v | q %3dms deliv %5.0f rate %5.0f kbit/s %s",
					time.Since(start).Seconds(), smp.rtt.Milliseconds(), smp.bytes, smp.loss, smp.limited,
					c.q.Milliseconds(), c.delivered*8/1000, c.rate()*8/1000, connInfo(s))
			}
		}
	}
	return s
}

func post(t *testing.T, d interface {
	Do(*http.Request) (*http.Response, error)
}, url string, size int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(make([]byte, size)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := d.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != strconv.Itoa(size) {
		t.Fatalf("sink got %q bytes, want %d", body, size)
	}
}

// plainClient is a client without the scheduler whose connections use
// the congestion control cc: the baseline the scheduler must beat. (A
// plain cubic upload cannot fill a 1 % lossy line at 300 ms, so it would
// not show the queue; BBR does.)
func plainClient(tb *linkemu.Testbed, cc string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := tb.DialBox(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		raw, err := c.(syscall.Conn).SyscallConn()
		if err == nil {
			raw.Control(func(fd uintptr) {
				unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
			})
		}
		return c, nil
	}}}
}

// foreground measures the ping train's RTT while upload runs, after a
// warm-up, against its RTT on the idle link, and returns the inflation
// at the median and the 90th percentile.
func foreground(t *testing.T, tb *linkemu.Testbed, warmup time.Duration, upload func()) (p50, p90 time.Duration) {
	t.Helper()
	echo := startEcho(t, tb)
	pings := startPings(t, tb, echo)
	time.Sleep(3 * time.Second)
	idleEnd := time.Now()
	upload()
	end := time.Now()
	samples := pings.Stop(time.Second)
	idle, _ := linkemu.RTTs(samples, time.Time{}, idleEnd)
	loaded, lost := linkemu.RTTs(samples, idleEnd.Add(warmup), end)
	base := linkemu.Percentile(idle, 50)
	p50 = linkemu.Percentile(loaded, 50) - base
	p90 = linkemu.Percentile(loaded, 90) - base
	t.Logf("foreground RTT idle %v; during the upload (after %v) median %v (+%v), p90 %v (+%v), max %v, %d of %d probes lost",
		base.Round(time.Millisecond), warmup, (base + p50).Round(time.Millisecond), p50.Round(time.Millisecond),
		(base + p90).Round(time.Millisecond), p90.Round(time.Millisecond), linkemu.Percentile(loaded, 100).Round(time.Millisecond),
		lost, len(loaded)+lost)
	return p50, p90
}

// TestForegroundKeepsItsLatency: an upload through the scheduler beside a
// foreground flow raises the flow's RTT by about the target delay, while
// a plain upload fills the modem's buffer.
func TestForegroundKeepsItsLatency(t *testing.T) {
	const size = 3 << 20
	var plainP90 time.Duration
	t.Run("plain upload", func(t *testing.T) {
		requireBBR(t)
		tb := linkemu.StartTestbed(t, linkemu.TestbedConfig{Up: lossy2M, Down: lossy2M, Seed: 1})
		url, _ := startSink(t, tb)
		_, plainP90 = foreground(t, tb, 3*time.Second, func() { post(t, plainClient(tb, "bbr"), url, size) })
		// The rig must have a real bottleneck queue that a greedy upload
		// fills, or the test below proves nothing.
		if plainP90 < 150*time.Millisecond {
			t.Errorf("a plain upload raised the foreground RTT by only %v at the 90th percentile: the emulated modem has no queue", plainP90)
		}
	})
	t.Run("scheduler", func(t *testing.T) {
		tb := linkemu.StartTestbed(t, linkemu.TestbedConfig{Up: lossy2M, Down: lossy2M, Seed: 1})
		url, _ := startSink(t, tb)
		s := startScheduler(t, tb)
		p50, p90 := foreground(t, tb, 3*time.Second, func() { post(t, s.Doer(ClassHandIn), url, size) })
		st := s.Status()
		t.Logf("scheduler: rate %.0f kbit/s, base RTT %v, queueing delay %v", st.Up.Rate*8/1000, st.Up.BaseRTT, st.Up.QueueDelay)
		t.Logf("foreground RTT inflation: median %v, p90 %v (target %v; plain upload p90 %v)",
			p50.Round(time.Millisecond), p90.Round(time.Millisecond), DefaultTargetDelay, plainP90.Round(time.Millisecond))
		const tolerance = 15 * time.Millisecond
		if p50 > DefaultTargetDelay+tolerance {
			t.Errorf("foreground RTT inflation %v at the median, want ≤ target %v + %v", p50, DefaultTargetDelay, tolerance)
		}
		if plainP90 > 0 && p90 > plainP90/2 {
			t.Errorf("foreground RTT inflation %v at the 90th percentile, want well under a plain upload's %v", p90, plainP90)
		}
	})
}

// TestUploadFillsAnIdleLink: with no foreground flow, the scheduler's
// upload uses most of the link once it has found the link's rate (the
// first seconds of a cold start ramp up from InitialRate).
func TestUploadFillsAnIdleLink(t *testing.T) {
	const size = 3 << 20
	requireBBR(t)
	tb := linkemu.StartTestbed(t, linkemu.TestbedConfig{Up: lossy2M, Down: lossy2M, Seed: 2})
	url, results := startSink(t, tb)
	s := startScheduler(t, tb)
	post(t, s.Doer(ClassHandIn), url, size)
	res := <-results
	whole, steady := res.goodput()
	st := tb.Link.Stats()
	t.Logf("%d bytes in %v: goodput %.0f kbit/s = %.0f %% of the link over the whole upload, %.0f kbit/s = %.0f %% over its second half; link drops: %d tail, %d random; queue max %d B",
		res.bytes, res.last.Sub(res.first).Round(time.Millisecond), whole*8/1000, 100*whole/linkBytesPerSecond,
		steady*8/1000, 100*steady/linkBytesPerSecond, st.AB.DropQueue, st.AB.DropLoss, st.AB.QueueMax)
	if steady < 0.8*linkBytesPerSecond {
		t.Errorf("goodput %.0f kbit/s once ramped up, want ≥ 80 %% of 2 Mbit/s", steady*8/1000)
	}
}

// requireBBR skips when the kernel has no BBR: under a loss-based TCP a
// 1 % lossy line cannot be filled, with or without the scheduler.
func requireBBR(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil || !strings.Contains(" "+strings.TrimSpace(string(b))+" ", " bbr ") {
		t.Skipf("the kernel offers no BBR (%q): a 1 %% lossy line cannot be filled", strings.TrimSpace(string(b)))
	}
}

func debugConns(t *testing.T, s *Scheduler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.raw == nil {
			continue
		}
		c.raw.Control(func(fd uintptr) {
			i, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				return
			}
			cc, _ := unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
			t.Logf("   conn %s cwnd %d unacked %d sndwnd %d notsent %d pacing %d kbit/s deliv %d kbit/s rwndlim %dms sndbuflim %dms busy %dms retrans %d lost %d",
				cc, i.Snd_cwnd, i.Unacked, i.Snd_wnd, i.Notsent_bytes, i.Pacing_rate*8/1000, i.Delivery_rate*8/1000,
				i.Rwnd_limited/1000, i.Sndbuf_limited/1000, i.Busy_time/1000, i.Total_retrans, i.Lost)
		})
	}
}

// connInfo is called with s.mu held.
func connInfo(s *Scheduler) string {
	out := ""
	for c := range s.conns {
		if c.raw == nil {
			continue
		}
		c.raw.Control(func(fd uintptr) {
			i, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				return
			}
			out += fmt.Sprintf("[ca %d cwnd %d infl %d notsent %5d kpace %4d kdeliv %4d]", i.Ca_state, i.Snd_cwnd, i.Unacked, i.Notsent_bytes, i.Pacing_rate*8/1000, i.Delivery_rate*8/1000)
		})
	}
	return out
}
