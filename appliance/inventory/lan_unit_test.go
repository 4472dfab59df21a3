package inventory

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/vishvananda/netlink"
)

func TestNeighbourSeen(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		n      netlink.Neigh
		want   time.Duration // before now
		wantOK bool
	}{
		{"reachable is now", netlink.Neigh{State: netlink.NUD_REACHABLE, Confirmed: 2000, Updated: 2000}, 0, true},
		{"stale from its confirmation", netlink.Neigh{State: netlink.NUD_STALE, Confirmed: 500, Updated: 9000}, 5 * time.Second, true},
		{"stale from a device's own packet", netlink.Neigh{State: netlink.NUD_STALE, Confirmed: 360000, Updated: 100}, time.Second, true},
		{"delay", netlink.Neigh{State: netlink.NUD_DELAY, Confirmed: 300, Updated: 50}, 500 * time.Millisecond, true},
		{"probe", netlink.Neigh{State: netlink.NUD_PROBE, Confirmed: 300, Updated: 400}, 3 * time.Second, true},
		{"failed", netlink.Neigh{State: netlink.NUD_FAILED}, 0, false},
		{"incomplete", netlink.Neigh{State: netlink.NUD_INCOMPLETE}, 0, false},
		{"noarp", netlink.Neigh{State: netlink.NUD_NOARP}, 0, false},
		{"permanent", netlink.Neigh{State: netlink.NUD_PERMANENT}, 0, false},
	}
	for _, tt := range tests {
		got, ok := neighbourSeen(tt.n, now)
		if ok != tt.wantOK || (ok && now.Sub(got) != tt.want) {
			t.Errorf("%s: got %v ago, %v; want %v ago, %v", tt.name, now.Sub(got), ok, tt.want, tt.wantOK)
		}
	}
	if got := stateName(netlink.NUD_STALE); got != "STALE" {
		t.Errorf("stateName(STALE) = %q", got)
	}
}

func TestServeTwice(t *testing.T) {
	inv := newTestInventory(t, Config{}, newClock())
	inv.serving.Store(true)
	if err := inv.Serve(context.Background()); !errors.Is(err, ErrServing) {
		t.Errorf("second Serve: got %v, want ErrServing", err)
	}
}

// The metrics, and Prometheus's linter on them.
func TestCollector(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{OUIDir: t.TempDir()}, clock)
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:80:77:12:34:56")})
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "3c:22:fb:aa:bb:01")})
	clock.Advance(5 * time.Minute)
	observe(t, inv, Observation{Source: SourcePortal, MAC: mustMAC(t, "3c:22:fb:aa:bb:01"), UserAgent: "x"})
	clock.Advance(6 * time.Minute)
	p, err := NewPusher(GLPIConfig{URL: "https://glpi.example.fr/front/inventory.php"}, inv, http.DefaultClient, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(inv.Collector(), p.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&buf, mf)
	}
	for _, want := range []string{
		`preau_inventory_devices{state="absent"} 1`, `preau_inventory_devices{state="present"} 1`,
		"preau_inventory_vendor_list_blocks 0", `preau_inventory_observations_total{source="dhcp"} 2`,
		`preau_inventory_observations_total{source="portal"} 1`, `preau_inventory_glpi_pushes_total{result="accepted"} 0`,
	} {
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
