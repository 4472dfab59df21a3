package httpcache

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// TestMetricsPassPromtool checks the counters after a miss and a hit, and
// the exposition with Prometheus's linter.
func TestMetricsPassPromtool(t *testing.T) {
	e := newEnv(t)
	e.origin.set(reply(200, "abc", "Cache-Control: max-age=60")(e.clock.Now))
	e.get("/m")
	e.get("/m")
	st := e.c.Status(t.Context())
	if st.Hits != 1 || st.Misses != 1 || st.Stored != 1 || st.Entries != 1 || st.Bytes != 3 || st.HitBytes != 3 || !st.Ready {
		t.Errorf("status %+v", st)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.c.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&buf, mf)
	}
	for _, want := range []string{`preau_httpcache_requests_total{outcome="hit"} 1`, "preau_httpcache_entries 1", "preau_httpcache_quota_bytes 2.147483648e+09"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("%q missing from\n%s", want, buf.String())
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal("promtool not found: .ci/run must install it (Debian package prometheus)")
		}
		t.Skip("promtool not installed; skipping (CI installs it)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
