package energy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// plugServer answers like a plug: the documented endpoint of its kind
// with body(), and 404 elsewhere.
func plugServer(t *testing.T, kind PlugKind, channel int, body func() []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := false
		switch kind {
		case PlugShellyGen1:
			ok = r.URL.Path == "/status"
		case PlugShellyGen2:
			ok = r.URL.Path == "/rpc/Switch.GetStatus" && r.URL.Query().Get("id") == fmt.Sprint(channel)
		case PlugTasmota:
			ok = r.URL.Path == "/cm" && r.URL.Query().Get("cmnd") == "Status 8"
		}
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "plugs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadPlugs(t *testing.T) {
	for _, tc := range []struct {
		file    string
		kind    PlugKind
		channel int
		want    PlugReading
	}{
		{"shelly-gen1-plug-s.json", PlugShellyGen1, 0, PlugReading{Watts: 43.27, TotalWh: 1234567.0 / 60, HasTotal: true}},
		{"shelly-gen1-em.json", PlugShellyGen1, 0, PlugReading{Watts: 151.42, TotalWh: 8421.7, HasTotal: true}},
		{"shelly-gen2-switch.json", PlugShellyGen2, 0, PlugReading{Watts: 12.3, TotalWh: 4567.891, HasTotal: true}},
		{"shelly-gen2-switch.json", PlugShellyGen2, 1, PlugReading{Watts: 12.3, TotalWh: 4567.891, HasTotal: true}},
		{"tasmota-status8.json", PlugTasmota, 0, PlugReading{Watts: 23, TotalWh: 12345, HasTotal: true}},
		{"tasmota-status8-dual.json", PlugTasmota, 1, PlugReading{Watts: 61, TotalWh: 3500, HasTotal: true}},
	} {
		body := fixture(t, tc.file)
		srv := plugServer(t, tc.kind, tc.channel, func() []byte { return body })
		got, err := ReadPlug(context.Background(), srv.Client(), Plug{Device: "d", Kind: tc.kind, URL: srv.URL + "/", Channel: tc.channel})
		if err != nil {
			t.Errorf("%s channel %d: %v", tc.file, tc.channel, err)
			continue
		}
		if !near(got.Watts, tc.want.Watts) || !near(got.TotalWh, tc.want.TotalWh) || got.HasTotal != tc.want.HasTotal {
			t.Errorf("%s channel %d: got %+v, want %+v", tc.file, tc.channel, got, tc.want)
		}
	}
}

func TestReadPlugErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    PlugKind
		channel int
		body    string
	}{
		{"gen1 missing channel", PlugShellyGen1, 3, string(fixture(t, "shelly-gen1-plug-s.json"))},
		{"gen1 invalid meter", PlugShellyGen1, 0, `{"meters":[{"power":0,"is_valid":false,"total":5}]}`},
		{"gen2 switch without meter", PlugShellyGen2, 0, `{"id":0,"output":true}`},
		{"tasmota without energy", PlugTasmota, 0, `{"StatusSNS":{"Time":"2025-11-10T14:02:00"}}`},
		{"tasmota channel out of range", PlugTasmota, 2, string(fixture(t, "tasmota-status8-dual.json"))},
		{"not json", PlugTasmota, 0, `<html>login</html>`},
		{"implausible power", PlugShellyGen2, 0, `{"apower":99999}`},
	} {
		body := []byte(tc.body)
		srv := plugServer(t, tc.kind, tc.channel, func() []byte { return body })
		if r, err := ReadPlug(context.Background(), srv.Client(), Plug{Device: "d", Kind: tc.kind, URL: srv.URL, Channel: tc.channel}); err == nil {
			t.Errorf("%s: read %+v, want an error", tc.name, r)
		}
	}
	// A plug that is not there.
	srv := plugServer(t, PlugTasmota, 0, func() []byte { return nil })
	url := srv.URL
	srv.Close()
	if _, err := ReadPlug(context.Background(), http.DefaultClient, Plug{Device: "d", Kind: PlugTasmota, URL: url}); err == nil {
		t.Error("closed server: want an error")
	}
}

// TestPlugReplacesEstimate: an interactive display (150 W by its class)
// is measured by a Shelly Gen2 plug at 100 W; its counter restarts once.
// The measure replaces the estimate where the plug covered the hour.
func TestPlugReplacesEstimate(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(at(10, 9, 0))
	var mu sync.Mutex
	totalWh := 5000.0
	last := clock.Now()
	srv := plugServer(t, PlugShellyGen2, 0, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		now := clock.Now()
		totalWh += 100 * now.Sub(last).Hours()
		last = now
		if now.Equal(at(10, 11, 0)) {
			totalWh = 0.5 // the plug restarted
		}
		return fmt.Appendf(nil, `{"id":0,"output":true,"apower":100,"aenergy":{"total":%.6f}}`, totalWh)
	})
	pres := &fakePresence{clock: clock,
		devices: []Device{{ID: "disp1", Name: "TNI", Class: ClassDisplay}, {ID: "tab1", Class: ClassTablet}},
		ivs: map[string][]Interval{
			"disp1": {{at(10, 8, 0), at(10, 14, 0)}},
			"tab1":  {{at(10, 8, 0), at(10, 14, 0)}},
		}}
	cfg := Config{Profile: "n100", Plugs: []Plug{{Device: "disp1", Kind: PlugShellyGen2, URL: srv.URL}}}
	m := newTestMeter(t, cfg, Deps{Presence: pres, Now: clock.Now, HTTP: srv.Client(),
		CPU: &fakeCPU{clock: clock, cpus: 1}})
	run(t, m, clock, at(10, 13, 0), 5*time.Minute)
	clock.Set(at(10, 14, 0)) // the plug is no longer read after 13:00

	wv, err := m.Week(context.Background(), at(10, 12, 0))
	if err != nil {
		t.Fatal(err)
	}
	var disp, tab DeviceEnergy
	for _, d := range wv.Days[6].Devices {
		switch d.ID {
		case "disp1":
			disp = d
		case "tab1":
			tab = d
		}
	}
	// 08:00–09:00 and 13:00–14:00 estimated (150 W), 09:00–13:00
	// measured (100 W; the 10:55–11:00 interval after the restart from
	// power × time, also 100 W).
	if want := (150*2 + 100*4) / 1000.0; !near(disp.KWh, want) {
		t.Errorf("display: %.6f kWh, want %.6f", disp.KWh, want)
	}
	if disp.Source.Kind != SourceMixed || disp.Source.Label("fr") != "en partie mesuré, en partie estimé" {
		t.Errorf("display source %q", disp.Source.Label("fr"))
	}
	if want := 5 * 6 / 1000.0; !near(tab.KWh, want) || tab.Source.Label("fr") != "estimé (profil tablette)" {
		t.Errorf("tablet: %.6f kWh %q, want %.6f estimated", tab.KWh, tab.Source.Label("fr"), want)
	}

	// A day where the plug covered every hour the display was present:
	// measured only.
	devs, err := m.deviceHours(context.Background(), at(10, 9, 0), at(10, 13, 0), clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	tot := m.deviceTotal(devs["disp1"], func(int64) bool { return true })
	if !near(tot.kwh, 0.4) || tot.src.Label("fr") != "mesuré (prise Shelly)" || !tot.src.Measured() {
		t.Errorf("09:00–13:00: %.6f kWh %q, want 0.4 mesuré (prise Shelly)", tot.kwh, tot.src.Label("fr"))
	}
}
