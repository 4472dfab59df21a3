package captive

import (
	"bytes"
	"context"
	"database/sql"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

var execLookPath = exec.LookPath

func TestMigrationsNumbered(t *testing.T) {
	for i, m := range Migrations() {
		if m.Version != i+1 || m.Name == "" || m.SQL == "" {
			t.Errorf("migration %d: version %d name %q", i, m.Version, m.Name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{"defaults", Config{}, ""},
		{"https base", Config{HTTPSURL: "https://preau.ecole.example/"}, ""},
		{"portal without slash", Config{PortalURL: "http://preau.lan"}, "PortalURL"},
		{"portal in a folder", Config{PortalURL: "http://preau.lan/portail/"}, "PortalURL"},
		{"portal ftp", Config{PortalURL: "ftp://preau.lan/"}, "PortalURL"},
		{"https url over http", Config{HTTPSURL: "http://preau.lan/"}, "HTTPSURL"},
		{"cert without key", Config{CertFile: "c.pem"}, "CertFile"},
		{"api path relative", Config{APIPath: "api"}, "APIPath"},
		{"api path is charter", Config{APIPath: "/charte"}, "APIPath"},
		{"day end", Config{DayEnd: "25:00"}, "DayEnd"},
		{"day end words", Config{DayEnd: "evening"}, "DayEnd"},
		{"accept for negative", Config{AcceptFor: -time.Hour}, "AcceptFor"},
		{"forget too soon", Config{ForgetAfter: time.Minute}, "ForgetAfter"},
		{"language", Config{DefaultLanguage: "de"}, "DefaultLanguage"},
		{"school two lines", Config{SchoolName: "a\nb"}, "SchoolName"},
		{"charter not utf8", Config{Charter: Charter{Text: "\xff"}}, "Charter.Text"},
		{"charter too long", Config{Charter: Charter{TextEN: strings.Repeat("a", maxCharterBytes+1)}}, "Charter.TextEN"},
		{"venue", Config{VenueInfoURL: "javascript:alert(1)"}, "VenueInfoURL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.WithDefaults().Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{CertFile: "c.pem", KeyFile: "k.pem"}.WithDefaults()
	tests := []struct{ name, got, want string }{
		{"PortalURL", c.PortalURL, "http://preau.lan/"},
		{"HTTPSURL from cert", c.HTTPSURL, "https://preau.lan/"},
		{"APIPath", c.APIPath, "/captive-portal/api"},
		{"VenueInfoURL", c.VenueInfoURL, "https://preau.lan/"},
		{"DayEnd", c.DayEnd, "17:30"},
		{"DefaultLanguage", c.DefaultLanguage, "fr"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if c.Charter.Enabled {
		t.Error("Charter.Enabled defaulted to true; appliance owns that default")
	}
}

func TestExpiry(t *testing.T) {
	at := func(day, h, m int) time.Time { return time.Date(2025, 3, day, h, m, 0, 0, paris) }
	tests := []struct {
		name      string
		dayEnd    string
		acceptFor time.Duration
		now       time.Time
		want      time.Time
	}{
		{"morning", "17:30", 0, at(10, 8, 15), at(10, 17, 30)},
		{"a minute before", "17:30", 0, at(10, 17, 29), at(10, 17, 30)},
		{"at day end", "17:30", 0, at(10, 17, 30), at(11, 17, 30)},
		{"evening", "17:30", 0, at(10, 19, 0), at(11, 17, 30)},
		{"custom day end", "12:00", 0, at(10, 11, 0), at(10, 12, 0)},
		{"end of month", "17:30", 0, time.Date(2025, 3, 31, 18, 0, 0, 0, paris), time.Date(2025, 4, 1, 17, 30, 0, 0, paris)},
		// 30 March 2025: clocks go forward in Paris; the day end stays 17:30 local.
		{"dst change", "17:30", 0, at(29, 20, 0), at(30, 17, 30)},
		{"accept for", "17:30", 90 * time.Minute, at(10, 17, 0), at(10, 18, 30)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{DayEnd: tc.dayEnd, AcceptFor: tc.acceptFor, Charter: Charter{Enabled: true}})
			if got := e.c.expiry(tc.now); !got.Equal(tc.want) {
				t.Fatalf("expiry(%s) = %s, want %s", tc.now, got, tc.want)
			}
		})
	}
}

func TestAcceptanceExpiresAtDayEnd(t *testing.T) {
	e := newEnv(t, charterOn())
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.10")
	if e.c.Accepted(ip) {
		t.Fatal("Accepted before Accept")
	}
	dev, err := e.c.Accept(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 3, 10, 17, 30, 0, 0, paris)
	if !dev.ExpiresAt.Equal(want) || !dev.Accepted || dev.IP != ip {
		t.Fatalf("Accept = %+v, want accepted until %s", dev, want)
	}
	steps := []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2025, 3, 10, 12, 0, 0, 0, paris), true},
		{time.Date(2025, 3, 10, 17, 29, 59, 0, paris), true},
		{time.Date(2025, 3, 10, 17, 30, 0, 0, paris), false},
		{time.Date(2025, 3, 11, 9, 0, 0, 0, paris), false},
	}
	for _, s := range steps {
		e.clock.Set(s.at)
		if got := e.c.Accepted(ip); got != s.want {
			t.Errorf("at %s: Accepted = %v, want %v", s.at.Format(time.DateTime), got, s.want)
		}
	}
	if err := e.c.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	got := e.rec.all()
	if len(got) != 2 || !got[0].Accepted || got[1].Accepted || got[1].IP != ip {
		t.Fatalf("OnChange calls = %+v, want accepted then expired for %s", got, ip)
	}
	// A second sweep does not report the same expiry again.
	e.c.sweep(ctx)
	if n := len(e.rec.all()); n != 2 {
		t.Fatalf("OnChange called %d times after a second sweep, want 2", n)
	}
}

func TestAcceptFor(t *testing.T) {
	cfg := charterOn()
	cfg.AcceptFor = 45 * time.Minute
	e := newEnv(t, cfg)
	ip := netip.MustParseAddr("192.0.2.11")
	if _, err := e.c.Accept(context.Background(), ip); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(44 * time.Minute)
	if !e.c.Accepted(ip) {
		t.Fatal("not accepted after 44 min")
	}
	e.clock.Add(time.Minute)
	if e.c.Accepted(ip) {
		t.Fatal("still accepted after 45 min")
	}
}

func TestRestartKeepsAcceptance(t *testing.T) {
	e := newEnv(t, charterOn())
	ctx := context.Background()
	e.neigh.set("192.0.2.20", "02:00:5e:00:53:20")
	accepted := netip.MustParseAddr("192.0.2.20")
	byIP := netip.MustParseAddr("192.0.2.21") // no MAC known
	for _, ip := range []netip.Addr{accepted, byIP} {
		if _, err := e.c.Accept(ctx, ip); err != nil {
			t.Fatal(err)
		}
	}
	seenOnly := netip.MustParseAddr("192.0.2.22")
	e.c.seen(ctx, seenOnly)
	before, _ := e.c.Devices(ctx)

	// Close the database as a restart would, reopen it, build a new Captive.
	e.db.Close()
	e.db = openTestDB(t, e.path)
	c2 := e.newCaptive(t, charterOn())
	for _, tc := range []struct {
		ip   netip.Addr
		want bool
	}{{accepted, true}, {byIP, true}, {seenOnly, false}} {
		if got := c2.Accepted(tc.ip); got != tc.want {
			t.Errorf("after restart: Accepted(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	after, err := c2.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || len(after) != 3 {
		t.Fatalf("devices after restart = %+v, want %+v", after, before)
	}
	for i := range after {
		a, b := after[i], before[i]
		if a.IP != b.IP || a.MAC != b.MAC || a.Accepted != b.Accepted || !a.ExpiresAt.Equal(b.ExpiresAt) || !a.LastSeen.Equal(b.LastSeen) {
			t.Errorf("device %d after restart = %+v, want %+v", i, a, b)
		}
	}
	if after[0].MAC != "02:00:5e:00:53:20" {
		t.Errorf("first device MAC = %q, want the neighbour's", after[0].MAC)
	}
}

func TestCharterDisabled(t *testing.T) {
	e := newEnv(t, Config{Charter: Charter{Enabled: false}})
	for _, s := range []string{"192.0.2.30", "2001:db8::30", "::ffff:192.0.2.31"} {
		if !e.c.Accepted(netip.MustParseAddr(s)) {
			t.Errorf("charter off: Accepted(%s) = false, want true", s)
		}
	}
}

// TestKnownByMAC: a device accepted at its IPv4 address is accepted at its
// IPv6 address too (same MAC); OnChange learns the new address through
// Serve; another device is not accepted; revoking by one address revokes
// the device.
func TestKnownByMAC(t *testing.T) {
	e := newEnv(t, charterOn())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.c.Serve(ctx) }()

	e.neigh.set("192.0.2.40", "02:00:5e:00:53:40")
	e.neigh.set("2001:db8::40", "02:00:5e:00:53:40")
	e.neigh.set("192.0.2.41", "02:00:5e:00:53:41")
	v4, v6, other := netip.MustParseAddr("192.0.2.40"), netip.MustParseAddr("2001:db8::40"), netip.MustParseAddr("192.0.2.41")
	if _, err := e.c.Accept(ctx, v4); err != nil {
		t.Fatal(err)
	}
	if !e.c.Accepted(v6) {
		t.Fatal("IPv6 address of an accepted device is not accepted")
	}
	if e.c.Accepted(other) {
		t.Fatal("another device is accepted")
	}
	waitFor(t, func() bool {
		got := e.rec.all()
		return len(got) == 2 && got[1].IP == v6 && len(got[1].Addrs) == 2 && got[1].Accepted
	}, "OnChange with the new IPv6 address")

	if err := e.c.Revoke(ctx, v6); err != nil {
		t.Fatal(err)
	}
	if e.c.Accepted(v4) || e.c.Accepted(v6) {
		t.Fatal("still accepted after Revoke")
	}
	devs, _ := e.c.Devices(ctx)
	if len(devs) != 1 || devs[0].MAC != "02:00:5e:00:53:40" || devs[0].Accepted {
		t.Fatalf("Devices = %+v, want one revoked device", devs)
	}
	var ip string
	if err := e.db.QueryRow(`SELECT ip FROM captive_devices WHERE key = 'mac:02:00:5e:00:53:40'`).Scan(&ip); err != nil || ip != "2001:db8::40" {
		t.Fatalf("stored ip = %q, %v; want the last address", ip, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

// TestAdoptRecordByIP: a device accepted before the box knew its MAC keeps
// its acceptance when the MAC appears, under one record.
func TestAdoptRecordByIP(t *testing.T) {
	e := newEnv(t, charterOn())
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.50")
	if _, err := e.c.Accept(ctx, ip); err != nil {
		t.Fatal(err)
	}
	e.neigh.set("192.0.2.50", "02:00:5e:00:53:50")
	e.c.seen(ctx, ip)
	if !e.c.Accepted(ip) {
		t.Fatal("lost acceptance when the MAC appeared")
	}
	var keys []string
	rows, err := e.db.Query(`SELECT key FROM captive_devices`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys = append(keys, k)
	}
	rows.Close()
	if len(keys) != 1 || keys[0] != "mac:02:00:5e:00:53:50" {
		t.Fatalf("stored keys = %v, want only the MAC record", keys)
	}
}

func TestForgetIdleDevices(t *testing.T) {
	e := newEnv(t, charterOn())
	ctx := context.Background()
	old, fresh := netip.MustParseAddr("192.0.2.60"), netip.MustParseAddr("192.0.2.61")
	e.c.seen(ctx, old)
	e.clock.Add(29 * 24 * time.Hour)
	e.c.seen(ctx, fresh)
	e.clock.Add(2 * 24 * time.Hour)
	if err := e.c.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	devs, _ := e.c.Devices(ctx)
	if len(devs) != 1 || devs[0].IP != fresh {
		t.Fatalf("Devices after 31 days = %+v, want only %s", devs, fresh)
	}
	var n int
	e.db.QueryRow(`SELECT count(*) FROM captive_devices`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d rows stored, want 1", n)
	}
}

func TestSeenWritesAreThrottled(t *testing.T) {
	e := newEnv(t, charterOn())
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.70")
	stored := func() time.Time {
		var ms int64
		if err := e.db.QueryRow(`SELECT last_seen FROM captive_devices`).Scan(&ms); err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		return time.UnixMilli(ms)
	}
	e.c.seen(ctx, ip)
	first := e.clock.Now()
	e.clock.Add(time.Minute)
	e.c.seen(ctx, ip)
	if got := stored(); !got.Equal(first) {
		t.Fatalf("last_seen written again after 1 min: %s", got)
	}
	e.clock.Add(5 * time.Minute)
	e.c.seen(ctx, ip)
	if got := stored(); !got.Equal(e.clock.Now()) {
		t.Fatalf("last_seen = %s after 6 min, want %s", got, e.clock.Now())
	}
}

func TestWriteStatus(t *testing.T) {
	e := newEnv(t, charterOn())
	ctx := context.Background()
	e.neigh.set("192.0.2.80", "02:00:5e:00:53:80")
	e.c.Accept(ctx, netip.MustParseAddr("192.0.2.80"))
	e.c.seen(ctx, netip.MustParseAddr("192.0.2.81"))
	tests := []struct{ lang, want string }{
		{"fr", "192.0.2.80  02:00:5e:00:53:80  acceptée  10 mars à 17h30  10 mars à 10h00\n192.0.2.81  -                  non       -                10 mars à 10h00\n"},
		{"en", "192.0.2.80  02:00:5e:00:53:80  accepted  March 10 at 17:30  March 10 at 10:00\n192.0.2.81  -                  no        -                  March 10 at 10:00\n"},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := e.c.WriteStatus(ctx, &b, tc.lang); err != nil {
			t.Fatal(err)
		}
		_, body, _ := strings.Cut(b.String(), "\n") // skip the header line
		if body != tc.want {
			t.Errorf("%s status:\n%s\nwant:\n%s", tc.lang, body, tc.want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
