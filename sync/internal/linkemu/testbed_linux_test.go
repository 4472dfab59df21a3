package linkemu

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// The uplink of the issue: 2 Mbit/s, 300 ms RTT.
var (
	up2M   = Path{Rate: 2_000_000, Delay: 150 * time.Millisecond, QueueBytes: 64 << 10}
	down2M = Path{Rate: 2_000_000, Delay: 150 * time.Millisecond, QueueBytes: 64 << 10}
)

func echoServer(t *testing.T, tb *Testbed) net.Addr {
	t.Helper()
	c, err := ListenPacket(tb.Server, "udp4", tb.ServerAddr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go ServeEcho(c)
	return c.LocalAddr()
}

func pings(t *testing.T, tb *Testbed, every time.Duration, n int) []PingSample {
	t.Helper()
	echo := echoServer(t, tb)
	c, err := ListenPacket(tb.Box, "udp4", tb.BoxAddr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	p := StartPingTrain(c, echo, every, 64)
	// A loaded machine skips ticks: wait for n probes rather than n ticks.
	for len(p.Samples()) < n {
		time.Sleep(every)
	}
	return p.Stop(time.Second)[:n]
}

func TestTestbedRTT(t *testing.T) {
	tb := StartTestbed(t, TestbedConfig{Up: up2M, Down: down2M})
	rtts, lost := RTTs(pings(t, tb, 100*time.Millisecond, 20), time.Time{}, time.Now())
	p50 := Percentile(rtts, 50)
	t.Logf("ping over the emulated link: median %v, min %v, max %v, %d lost",
		p50, Percentile(rtts, 0), Percentile(rtts, 100), lost)
	if lost > 0 || p50 < 300*time.Millisecond || p50 > 305*time.Millisecond {
		t.Errorf("median RTT %v with %d lost, want 300–305 ms and none lost", p50, lost)
	}
}

func TestTestbedLoss(t *testing.T) {
	up := up2M
	up.Loss = 0.01
	tb := StartTestbed(t, TestbedConfig{Up: up, Down: down2M, Seed: 3})
	const n = 3000
	_, lost := RTTs(pings(t, tb, 2*time.Millisecond, n), time.Time{}, time.Now())
	st := tb.Link.Stats()
	t.Logf("%d of %d probes lost (%.2f %%); link stats %+v", lost, n, 100*float64(lost)/n, st)
	// Binomial(3000, 0.01): mean 30, sd 5.5.
	if lost < 15 || lost > 50 || st.AB.DropQueue != 0 {
		t.Errorf("lost %d of %d, want about 1 %% and no tail drop", lost, n)
	}
}

// TestTestbedThroughput sends 1 MB over TCP from the box to an HTTP sink,
// with the bottleneck in user space and in the kernel's tbf.
func TestTestbedThroughput(t *testing.T) {
	for _, tbf := range []bool{false, true} {
		t.Run("tbf="+strconv.FormatBool(tbf), func(t *testing.T) {
			tb := StartTestbed(t, TestbedConfig{Up: up2M, Down: down2M, TBF: tbf})
			got := upload(t, tb, 1_000_000)
			t.Logf("1 MB box → server in %v (%.2f Mbit/s)", got, 8e6/got.Seconds()/1e6)
			if got < 4*time.Second || got > 5500*time.Millisecond {
				t.Errorf("1 MB took %v, want 4–5.5 s at 2 Mbit/s and 300 ms RTT", got)
			}
		})
	}
}

// upload POSTs size bytes from the box to a sink in the server namespace
// and returns the time until the sink has read them all.
func upload(t *testing.T, tb *Testbed, size int) time.Duration {
	t.Helper()
	l, err := tb.ListenServer("tcp4", netip.AddrPortFrom(tb.ServerAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Write([]byte(strconv.FormatInt(n, 10)))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	client := &http.Client{Transport: &http.Transport{DialContext: tb.DialBox}}
	start := time.Now()
	resp, err := client.Post("http://"+l.Addr().String()+"/", "application/octet-stream", bytes.NewReader(make([]byte, size)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The answer crossed the link back: take off half an RTT.
	took := time.Since(start) - 150*time.Millisecond
	if string(body) != strconv.Itoa(size) {
		t.Fatalf("sink read %s bytes, want %d", body, size)
	}
	return took
}
