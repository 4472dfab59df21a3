package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string // "" means valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"no interface", func(c *Config) { c.Interfaces = nil }, "interfaces is empty"},
		{"bad interface", func(c *Config) { c.Interfaces = []string{"a/b"} }, "interface name"},
		{"short timeout", func(c *Config) { c.PresenceTimeout = time.Millisecond }, "presence timeout"},
		{"poll not shorter than timeout", func(c *Config) { c.PresenceTimeout, c.NeighbourPoll = time.Minute, time.Minute }, "neighbour poll"},
		{"browse interval", func(c *Config) { c.BrowseInterval = time.Second }, "browse interval"},
		{"service", func(c *Config) { c.Services = []string{"_ipp._tcp", "ipp"} }, "service"},
		{"extra types", func(c *Config) { c.MaxExtraTypes = 100 }, "max extra types"},
		{"no extra types", func(c *Config) { c.MaxExtraTypes = -1 }, ""},
		{"tag", func(c *Config) { c.GLPITag = "a\nb" }, "glpi tag"},
		{"retention", func(c *Config) { c.RetainPresence = time.Second }, "retain presence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Interfaces: []string{"br-lan"}}
			tt.edit(&c)
			_, err := New(c, openDB(t), nil, nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
	got := Config{Interfaces: []string{"br-lan"}}.WithDefaults()
	if got.PresenceTimeout != 10*time.Minute || got.NeighbourPoll != 30*time.Second || got.BrowseInterval != 15*time.Minute ||
		got.OUIDir != "/usr/share/ieee-data" || got.MaxExtraTypes != 8 || len(got.Services) != len(DefaultServices) {
		t.Errorf("defaults: got %+v", got)
	}
}

func TestObserveRefuses(t *testing.T) {
	inv := newTestInventory(t, Config{}, newClock())
	tests := []struct {
		name string
		o    Observation
		want error
	}{
		{"nothing", Observation{Source: SourceDHCP}, ErrBadMAC},
		{"group MAC", Observation{Source: SourceDHCP, MAC: mustMAC(t, "01:00:5e:00:00:fb")}, ErrBadMAC},
		{"zero MAC", Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:00:00:00:00:00")}, ErrBadMAC},
		{"long MAC", Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01")}, ErrBadMAC},
		{"loopback only", Observation{Source: SourcePortal, IP: netip.MustParseAddr("127.0.0.1")}, ErrBadMAC},
	}
	for _, tt := range tests {
		if err := inv.Observe(context.Background(), tt.o); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := inv.Observe(context.Background(), Observation{Source: "telepathy", MAC: mustMAC(t, "00:80:77:00:00:01")}); err == nil {
		t.Error("unknown source accepted")
	}
}

// A device observed by the DHCP server, then the portal, then DNS-SD: one
// device with every fact merged, vendor and class derived, and one
// "appeared" event.
func TestObserveMerges(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{}, clock)
	events, cancel := inv.Subscribe()
	defer cancel()
	mac := mustMAC(t, "3c:22:fb:aa:bb:01")
	t0 := clock.Now()
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mac, IP: netip.MustParseAddr("10.0.0.12"), Hostname: "mbp-salle-3", ClientID: "01:3c:22:fb:aa:bb:01"})
	clock.Advance(time.Minute)
	observe(t, inv, Observation{Source: SourcePortal, MAC: mac, UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"})
	clock.Advance(time.Minute)
	observe(t, inv, Observation{Source: SourceMDNS, MAC: mac, Services: []string{"_device-info._tcp", "not a type"},
		Hints: map[string]string{"Model": "MacBookAir10,1", "secret": "x"}, Name: "MacBook de la salle 3"})

	d := device(t, inv, "3C-22-FB-AA-BB-01")
	want := Device{
		ID: "3c:22:fb:aa:bb:01", MAC: "3c:22:fb:aa:bb:01", IP: "10.0.0.12", Name: "mbp-salle-3", Hostname: "mbp-salle-3",
		MDNSName: "MacBook de la salle 3", Vendor: "Apple, Inc.", VendorStatus: VendorKnown, Model: "MacBookAir10,1",
		OS: "macOS", Class: ClassLaptop, ClientID: "013c22fbaabb01",
	}
	if d.ID != want.ID || d.MAC != want.MAC || d.IP != want.IP || d.Name != want.Name || d.MDNSName != want.MDNSName ||
		d.Vendor != want.Vendor || d.VendorStatus != want.VendorStatus || d.Model != want.Model || d.OS != want.OS ||
		d.Class != want.Class || d.ClientID != want.ClientID {
		t.Errorf("device:\n got  %+v\n want %+v", d, want)
	}
	if d.ClassConfidence < 90 || !strings.Contains(d.ClassReason, "MacBookAir10,1") {
		t.Errorf("class %s confidence %d reason %q: want ≥ 90 on the Apple model", d.Class, d.ClassConfidence, d.ClassReason)
	}
	if got, want := d.Services, []string{"_device-info._tcp"}; !slices.Equal(got, want) {
		t.Errorf("services: got %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(d.Hints), "map[model:MacBookAir10,1]"; got != want {
		t.Errorf("hints: got %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(d.Sources), "[dhcp mdns portal]"; got != want {
		t.Errorf("sources: got %s, want %s", got, want)
	}
	if !d.FirstSeen.Equal(t0) || !d.LastSeen.Equal(clock.Now()) || !d.Present {
		t.Errorf("first %v last %v present %v; want %v %v true", d.FirstSeen, d.LastSeen, d.Present, t0, clock.Now())
	}
	evs := drain(events)
	if len(evs) == 0 || evs[0].Kind != EventAppeared || evs[0].Device.ID != want.ID {
		t.Fatalf("events: got %+v, want appeared first", evs)
	}
	for _, ev := range evs[1:] {
		if ev.Kind != EventChanged {
			t.Errorf("later event %s, want changed", ev.Kind)
		}
	}
}

// Presence is a compact timeline: sightings closer than the timeout make
// one interval, a longer gap starts another, an old sighting that arrives
// late merges in, and the current stay is open.
func TestPresenceTimeline(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{PresenceTimeout: 10 * time.Minute}, clock)
	mac := mustMAC(t, "00:80:77:12:34:56")
	t0 := clock.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	see := func(d time.Duration) {
		t.Helper()
		if now := clock.Now(); at(d).After(now) {
			clock.Advance(at(d).Sub(now))
		}
		observe(t, inv, Observation{Source: SourceCaptive, MAC: mac, At: at(d)})
	}
	// Morning 8:00–8:20 seen every 4 min, then a break, 9:00–9:05.
	for m := 0; m <= 20; m += 4 {
		see(time.Duration(m) * time.Minute)
	}
	see(60 * time.Minute)
	see(65 * time.Minute)
	// A late report of 8:30 (within 10 min of 8:20): merges into the first.
	see(30 * time.Minute)

	ctx := context.Background()
	var rows int
	inv.db.QueryRow(`SELECT count(*) FROM inventory_presence`).Scan(&rows)
	if rows != 2 {
		t.Errorf("stored intervals: got %d rows, want 2 (not one per sighting)", rows)
	}
	type iv struct {
		start, end time.Duration
		open       bool
	}
	tests := []struct {
		name     string
		now      time.Duration // clock position
		from, to time.Duration
		want     []iv
	}{
		{"whole day, present now", 66 * time.Minute, -time.Hour, 10 * time.Hour, []iv{{0, 30 * time.Minute, false}, {60 * time.Minute, 66 * time.Minute, true}}},
		{"clipped", 66 * time.Minute, 10 * time.Minute, 62 * time.Minute, []iv{{10 * time.Minute, 30 * time.Minute, false}, {60 * time.Minute, 62 * time.Minute, true}}},
		{"in the break", 66 * time.Minute, 40 * time.Minute, 50 * time.Minute, nil},
		{"gone: closed at last sighting", 120 * time.Minute, 0, 10 * time.Hour, []iv{{0, 30 * time.Minute, false}, {60 * time.Minute, 65 * time.Minute, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := at(tt.now).Sub(clock.Now()); d > 0 {
				clock.Advance(d)
			}
			got, err := inv.Presence(ctx, "00:80:77:12:34:56", at(tt.from), at(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			var gotIv []iv
			for _, g := range got {
				gotIv = append(gotIv, iv{g.Start.Sub(t0), g.End.Sub(t0), g.Open})
			}
			if fmt.Sprint(gotIv) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", gotIv, tt.want)
			}
		})
	}
	if _, err := inv.Presence(ctx, "00:80:77:00:00:00", t0, at(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown MAC: got %v, want ErrNotFound", err)
	}
}

// Two devices over a day, as the energy package reads them.
func TestPresentBetween(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{PresenceTimeout: 10 * time.Minute}, clock)
	t0 := clock.Now()
	for m := 0; m <= 60; m += 5 {
		observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:80:77:12:34:56")})
		if m == 30 {
			observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "6c:dc:6a:00:00:12")})
		}
		if m < 60 {
			clock.Advance(5 * time.Minute)
		}
	}
	clock.Advance(3 * time.Hour)
	got, err := inv.PresentBetween(context.Background(), t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, dp := range got {
		lines = append(lines, fmt.Sprintf("%s %s %v %d", dp.Device.ID, dp.Device.Class, dp.Total, len(dp.Intervals)))
	}
	want := []string{"00:80:77:12:34:56 printer 1h0m0s 1", "6c:dc:6a:00:00:12 interactive-display 0s 1"}
	if !slices.Equal(lines, want) {
		t.Errorf("PresentBetween:\n got  %q\n want %q", lines, want)
	}
}

// With a fake clock: a device not seen for the presence timeout is absent,
// and the sweep says it left once.
func TestAbsentAfterTimeout(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{PresenceTimeout: 10 * time.Minute}, clock)
	ctx := context.Background()
	if err := inv.loadPresent(ctx); err != nil {
		t.Fatal(err)
	}
	events, cancel := inv.Subscribe()
	defer cancel()
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:80:77:12:34:56")})
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "3c:22:fb:aa:bb:01")})
	clock.Advance(6 * time.Minute)
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "3c:22:fb:aa:bb:01")})
	clock.Advance(5 * time.Minute) // printer unseen for 11 min, laptop for 5
	if err := inv.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inv.sweep(ctx); err != nil { // a second sweep says nothing more
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range drain(events) {
		kinds = append(kinds, string(ev.Kind)+" "+ev.Device.ID)
	}
	want := []string{"appeared 00:80:77:12:34:56", "appeared 3c:22:fb:aa:bb:01", "left 00:80:77:12:34:56"}
	if !slices.Equal(kinds, want) {
		t.Errorf("events:\n got  %q\n want %q", kinds, want)
	}
	if d := device(t, inv, "00:80:77:12:34:56"); d.Present {
		t.Error("printer still present after the timeout")
	}
	if d := device(t, inv, "3c:22:fb:aa:bb:01"); !d.Present {
		t.Error("laptop absent within the timeout")
	}
	// Back: appeared again.
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:80:77:12:34:56")})
	if evs := drain(events); len(evs) != 1 || evs[0].Kind != EventAppeared {
		t.Errorf("return: got %+v, want one appeared", evs)
	}
}

// Repeated identical sightings are not rewritten more often than the
// write granularity.
func TestObserveCoalesces(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{PresenceTimeout: 10 * time.Minute}, clock)
	mac := mustMAC(t, "00:80:77:12:34:56")
	t0 := clock.Now()
	observe(t, inv, Observation{Source: SourceCaptive, MAC: mac})
	clock.Advance(30 * time.Second)
	observe(t, inv, Observation{Source: SourceCaptive, MAC: mac})
	if d := device(t, inv, "00:80:77:12:34:56"); !d.LastSeen.Equal(t0) {
		t.Errorf("last seen moved to %v on a repeat within the granularity", d.LastSeen)
	}
	observe(t, inv, Observation{Source: SourceCaptive, MAC: mac, Hostname: "imprimante-cdi"})
	if d := device(t, inv, "00:80:77:12:34:56"); d.Hostname != "imprimante-cdi" {
		t.Errorf("a new fact was not written: %+v", d)
	}
	clock.Advance(time.Minute)
	observe(t, inv, Observation{Source: SourceCaptive, MAC: mac, Hostname: "imprimante-cdi"})
	if d := device(t, inv, "00:80:77:12:34:56"); !d.LastSeen.Equal(clock.Now()) {
		t.Errorf("last seen %v, want %v after the granularity", d.LastSeen, clock.Now())
	}
}

// Randomised MACs: never a vendor, and linked to a known device only by a
// stable hint, as linkRandom documents.
func TestRandomisedMACs(t *testing.T) {
	const (
		old    = "5a:1e:2d:3c:4b:5a"
		other  = "6e:00:11:22:33:44"
		nonRnd = "00:80:77:12:34:56"
	)
	tests := []struct {
		name  string
		first Observation // of old (or nonRnd when universal)
		gap   time.Duration
		next  Observation // of other
		want  string      // device id of other
	}{
		{"client id links", Observation{ClientID: "ff:00:11:22:33"}, time.Hour, Observation{ClientID: "FF0011-2233"}, old},
		{"distinctive host name links", Observation{Hostname: "iPad-de-Lucie"}, time.Hour, Observation{Hostname: "ipad-de-lucie"}, old},
		{"generic host name does not", Observation{Hostname: "iPad"}, time.Hour, Observation{Hostname: "iPad"}, other},
		{"model host name does not", Observation{Hostname: "Galaxy-Tab-A7"}, time.Hour, Observation{Hostname: "Galaxy-Tab-A7"}, other},
		{"windows default name links", Observation{Hostname: "DESKTOP-4F2K9Q1"}, time.Hour, Observation{Hostname: "DESKTOP-4F2K9Q1"}, old},
		{"no hint, no link", Observation{}, time.Hour, Observation{}, other},
		{"seen just now under another MAC", Observation{Hostname: "iPad-de-Lucie"}, 10 * time.Second, Observation{Hostname: "iPad-de-Lucie"}, other},
		{"hint without first sighting does not", Observation{}, time.Hour, Observation{Hostname: "iPad-de-Lucie"}, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			inv := newTestInventory(t, Config{}, clock)
			tt.first.Source, tt.first.MAC = SourceDHCP, mustMAC(t, old)
			observe(t, inv, tt.first)
			clock.Advance(tt.gap)
			tt.next.Source, tt.next.MAC = SourceDHCP, mustMAC(t, other)
			observe(t, inv, tt.next)
			d := device(t, inv, other)
			if d.ID != tt.want {
				t.Errorf("device of %s: got %s, want %s", other, d.ID, tt.want)
			}
			if !d.Randomised || d.Vendor != "" || d.VendorStatus != VendorRandomised || d.VendorLabel("fr") != "adresse aléatoire" {
				t.Errorf("randomised device: got randomised %v vendor %q status %s", d.Randomised, d.Vendor, d.VendorStatus)
			}
			if tt.want == old && (!slices.Equal(d.MACs, []string{old, other}) || d.MAC != other) {
				t.Errorf("linked MACs: got %q last %s", d.MACs, d.MAC)
			}
		})
	}
	// A universal MAC is never linked, even with the same host name.
	clock := newClock()
	inv := newTestInventory(t, Config{}, clock)
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, old), Hostname: "poste-direction"})
	clock.Advance(time.Hour)
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, nonRnd), Hostname: "poste-direction"})
	if d := device(t, inv, nonRnd); d.ID != nonRnd || d.Randomised || d.Vendor != "Brother industries, LTD." {
		t.Errorf("universal MAC: got %+v", d)
	}
}

func TestDistinctiveName(t *testing.T) {
	tests := map[string]bool{
		"": false, "iPad": false, "iPad-5": false, "iPhone-de-Lucie": true, "Galaxy-Tab-A7": false,
		"android": false, "android-3f2a9b8c7d6e5f40": true, "DESKTOP-4F2K9Q1": true, "MacBook-Air": false,
		"salle-info-12": true, "localhost": false, "PC-12": false, "Redmi-Note-8": false,
	}
	for name, want := range tests {
		if got := distinctiveName(name); got != want {
			t.Errorf("distinctiveName(%q) = %v, want %v", name, got, want)
		}
	}
}

// The portal knows only the address: the MAC comes from a device seen
// recently with it, else the observation waits for the neighbour table.
func TestObserveByAddress(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{}, clock)
	ctx := context.Background()
	ipad := "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "5a:1e:2d:3c:4b:5a"), IP: netip.MustParseAddr("10.0.0.13")})
	observe(t, inv, Observation{Source: SourcePortal, IP: netip.MustParseAddr("10.0.0.13"), UserAgent: ipad})
	if d := device(t, inv, "5a:1e:2d:3c:4b:5a"); d.Class != ClassTablet || d.OS != "iPadOS" {
		t.Errorf("by recent address: class %s os %q, want tablet iPadOS", d.Class, d.OS)
	}
	// Unknown address: waits, then the neighbour table names it.
	observe(t, inv, Observation{Source: SourcePortal, IP: netip.MustParseAddr("10.0.0.14"), UserAgent: ipad})
	if devs, _ := inv.Devices(ctx); len(devs) != 1 {
		t.Fatalf("an unresolved observation made a device: %d devices", len(devs))
	}
	inv.flushPending(ctx, netip.MustParseAddr("10.0.0.14"), "6e:00:11:22:33:44")
	if d := device(t, inv, "6e:00:11:22:33:44"); d.Class != ClassTablet {
		t.Errorf("after the neighbour table: class %s, want tablet", d.Class)
	}
}

func TestSetClass(t *testing.T) {
	clock := newClock()
	inv := newTestInventory(t, Config{}, clock)
	ctx := context.Background()
	mac := "6c:dc:6a:00:00:12"
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, mac)})
	if d := device(t, inv, mac); d.Class != ClassInteractiveDisplay || d.ClassSet {
		t.Fatalf("guess: got %s set %v, want interactive-display from the vendor", d.Class, d.ClassSet)
	}
	events, cancel := inv.Subscribe()
	defer cancel()
	if err := inv.SetClass(ctx, "6C:DC:6A:00:00:12", ClassDesktop, "m.durand"); err != nil {
		t.Fatal(err)
	}
	if evs := drain(events); len(evs) != 1 || evs[0].Kind != EventChanged || evs[0].Device.Class != ClassDesktop {
		t.Errorf("events: got %+v, want one changed to desktop", evs)
	}
	// New evidence does not override the technician.
	clock.Advance(time.Hour)
	observe(t, inv, Observation{Source: SourceMDNS, MAC: mustMAC(t, mac), Services: []string{"_googlecast._tcp"}})
	d := device(t, inv, mac)
	if d.Class != ClassDesktop || !d.ClassSet || d.ClassBy != "m.durand" || d.ClassConfidence != 100 || d.Guess != ClassInteractiveDisplay {
		t.Errorf("after new evidence: got class %s set %v by %q conf %d guess %s", d.Class, d.ClassSet, d.ClassBy, d.ClassConfidence, d.Guess)
	}
	for _, tt := range []struct {
		mac   string
		class Class
		by    string
		want  error
	}{
		{mac, "toaster", "m.durand", ErrBadClass},
		{"00:80:77:00:00:00", ClassPrinter, "m.durand", ErrNotFound},
		{"nonsense", ClassPrinter, "m.durand", ErrBadMAC},
	} {
		if err := inv.SetClass(ctx, tt.mac, tt.class, tt.by); !errors.Is(err, tt.want) {
			t.Errorf("SetClass(%s, %s): got %v, want %v", tt.mac, tt.class, err, tt.want)
		}
	}
	if err := inv.SetClass(ctx, mac, ClassPrinter, ""); err == nil {
		t.Error("SetClass without a technician accepted")
	}
	if err := inv.SetClass(ctx, mac, "", "m.durand"); err != nil {
		t.Fatal(err)
	}
	if d := device(t, inv, mac); d.ClassSet || d.Class != ClassInteractiveDisplay {
		t.Errorf("after reset: got class %s set %v, want the guess", d.Class, d.ClassSet)
	}
}

func TestVendorListMissing(t *testing.T) {
	inv := newTestInventory(t, Config{OUIDir: t.TempDir()}, newClock())
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:80:77:12:34:56")})
	observe(t, inv, Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:80:77:12:34:57")})
	d := device(t, inv, "00:80:77:12:34:56")
	if d.VendorStatus != VendorNoList || d.VendorLabel("fr") != "fabricant inconnu (liste IEEE absente : installez ieee-data)" ||
		d.VendorLabel("en") != "unknown vendor (IEEE list missing: install ieee-data)" {
		t.Errorf("vendor without the list: %s %q", d.VendorStatus, d.VendorLabel("fr"))
	}
	other := newTestInventory(t, Config{}, newClock())
	observe(t, other, Observation{Source: SourceDHCP, MAC: mustMAC(t, "00:00:01:00:00:01")})
	if d := device(t, other, "00:00:01:00:00:01"); d.VendorStatus != VendorUnknown || d.VendorLabel("fr") != "fabricant inconnu" {
		t.Errorf("vendor not in the list: %s %q", d.VendorStatus, d.VendorLabel("fr"))
	}
}
