package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

const (
	macA = "02:00:00:00:00:0a"
	macB = "02:00:00:00:00:0b"
	macC = "02:00:00:00:00:0c"
	macD = "02:00:00:00:00:0d"
	macE = "02:00:00:00:00:0e"
	macS = "02:00:00:00:00:5a" // has the static lease .50
)

var (
	discover = dhcpv4.MessageTypeDiscover
	request  = dhcpv4.MessageTypeRequest
	decline  = dhcpv4.MessageTypeDecline
	release  = dhcpv4.MessageTypeRelease
	inform   = dhcpv4.MessageTypeInform
)

// step is one client message and the expected answer, written
// "OFFER 10.20.0.100", "ACK 10.20.0.100 -> 10.20.0.100" (destination when
// not broadcast), "NAK" or "" (silence).
type step struct {
	advance time.Duration
	msg     *dhcpv4.DHCPv4
	want    string
}

// bindSteps makes mac go through DISCOVER/OFFER/REQUEST/ACK for ip.
func bindSteps(mac, ip string) []step {
	return []step{
		{0, pkt(discover, mac), "OFFER " + ip},
		{0, pkt(request, mac, serverID("10.20.0.1"), requested(ip)), "ACK " + ip},
	}
}

func seq(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(advance time.Duration, msg *dhcpv4.DHCPv4, want string) []step {
	return []step{{advance, msg, want}}
}

func describe(reply *dhcpv4.DHCPv4, dst *net.UDPAddr) string {
	if reply == nil {
		return ""
	}
	s := reply.MessageType().String()
	switch reply.MessageType() {
	case dhcpv4.MessageTypeOffer:
		s = "OFFER"
	case dhcpv4.MessageTypeAck:
		s = "ACK"
	case dhcpv4.MessageTypeNak:
		s = "NAK"
	}
	if y := addrOf(reply.YourIPAddr); y.IsValid() && !y.IsUnspecified() {
		s += " " + y.String()
	}
	if dst != nil && !dst.IP.Equal(net.IPv4bcast) {
		s += " -> " + dst.IP.String()
	}
	return s
}

func TestDecisions(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		steps []step
	}{
		{"new client", nil, bindSteps(macA, "10.20.0.100")},
		{"second client gets the next address", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			bindSteps(macB, "10.20.0.101"))},
		{"an offer reserves its address", nil, seq(
			one(0, pkt(discover, macA), "OFFER 10.20.0.100"),
			one(0, pkt(discover, macB), "OFFER 10.20.0.101"))},
		{"never-used addresses before expired offers", nil, seq(
			one(0, pkt(discover, macA), "OFFER 10.20.0.100"),
			one(3*time.Minute, pkt(discover, macB), "OFFER 10.20.0.101"))},
		{"same client, same address", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			one(0, pkt(discover, macA), "OFFER 10.20.0.100"))},
		{"an expired lease is remembered", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			bindSteps(macB, "10.20.0.101"),
			one(2*time.Hour, pkt(discover, macA), "OFFER 10.20.0.100"))},
		{"full pool reuses the oldest expired lease", nil, seq(
			bindSteps(macB, "10.20.0.100"),
			one(time.Minute, pkt(discover, macA), "OFFER 10.20.0.101"),
			one(0, pkt(request, macA, serverID("10.20.0.1"), requested("10.20.0.101")), "ACK 10.20.0.101"),
			bindSteps(macC, "10.20.0.102"),
			bindSteps(macD, "10.20.0.103"),
			one(2*time.Hour, pkt(discover, macE), "OFFER 10.20.0.100"))},
		{"exhausted pool stays silent", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			bindSteps(macB, "10.20.0.101"),
			bindSteps(macC, "10.20.0.102"),
			bindSteps(macD, "10.20.0.103"),
			one(0, pkt(discover, macE), ""))},
		{"static lease", nil, seq(
			one(0, pkt(discover, macS), "OFFER 10.20.0.50"),
			one(0, pkt(request, macS, requested("10.20.0.100")), "NAK"),
			one(0, pkt(request, macS, serverID("10.20.0.1"), requested("10.20.0.50")), "ACK 10.20.0.50"))},
		{"a static address is reserved", nil, seq(
			one(0, pkt(discover, macA, requested("10.20.0.50")), "OFFER 10.20.0.100"),
			one(0, pkt(request, macA, requested("10.20.0.50")), "NAK"))},
		{"requested address honoured", nil, seq(
			one(0, pkt(discover, macA, requested("10.20.0.102")), "OFFER 10.20.0.102"))},
		{"requested address outside the pool", nil, seq(
			one(0, pkt(discover, macA, requested("10.20.0.20")), "OFFER 10.20.0.100"))},
		{"client chose another server", nil, seq(
			one(0, pkt(discover, macA), "OFFER 10.20.0.100"),
			one(0, pkt(request, macA, serverID("10.20.0.9"), requested("10.20.0.5")), ""),
			one(0, pkt(discover, macB), "OFFER 10.20.0.100"))},
		{"selecting an address not offered", nil, seq(
			one(0, pkt(discover, macA), "OFFER 10.20.0.100"),
			one(0, pkt(request, macA, serverID("10.20.0.1"), requested("10.20.0.101")), "NAK"))},
		{"init-reboot adopts a free address", nil, seq(
			one(0, pkt(request, macA, requested("10.20.0.102"), hostname("tab-1")), "ACK 10.20.0.102"))},
		{"init-reboot for a taken address", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			one(0, pkt(request, macB, requested("10.20.0.100")), "NAK"))},
		{"init-reboot from another network", nil, seq(
			one(0, pkt(request, macA, requested("192.168.1.5")), "NAK"))},
		{"init-reboot for the server's address", nil, seq(
			one(0, pkt(request, macA, requested("10.20.0.1")), "NAK"))},
		{"renew is unicast", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			one(30*time.Minute, pkt(request, macA, ciaddr("10.20.0.100")), "ACK 10.20.0.100 -> 10.20.0.100"))},
		{"decline", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			one(0, pkt(decline, macA, serverID("10.20.0.1"), requested("10.20.0.100")), ""),
			one(0, pkt(discover, macA), "OFFER 10.20.0.101"),
			one(0, pkt(discover, macB), "OFFER 10.20.0.102"),
			// The decline lasts one lease time.
			one(2*time.Hour, pkt(discover, macC), "OFFER 10.20.0.100"))},
		{"decline by a stranger is ignored", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			one(0, pkt(decline, macB, requested("10.20.0.100")), ""),
			one(0, pkt(request, macA, ciaddr("10.20.0.100")), "ACK 10.20.0.100 -> 10.20.0.100"),
			one(0, pkt(discover, macC), "OFFER 10.20.0.101"))},
		{"release", nil, seq(
			bindSteps(macA, "10.20.0.100"),
			one(0, pkt(release, macA, ciaddr("10.20.0.100"), serverID("10.20.0.1")), ""),
			one(0, pkt(discover, macB), "OFFER 10.20.0.101"),
			one(0, pkt(discover, macA), "OFFER 10.20.0.100"))},
		{"released address goes to another when needed", func(c *Config) { c.PoolEnd = addr("10.20.0.100") }, seq(
			bindSteps(macA, "10.20.0.100"),
			one(0, pkt(release, macA, ciaddr("10.20.0.100")), ""),
			bindSteps(macB, "10.20.0.100"),
			one(0, pkt(request, macA, ciaddr("10.20.0.100")), "NAK"))},
		{"inform", nil, seq(
			one(0, pkt(inform, macA, ciaddr("10.20.0.30")), "ACK -> 10.20.0.30"))},
		{"relayed requests are ignored", nil, seq(
			one(0, pkt(discover, macA, dhcpv4.WithGatewayIP(net.ParseIP("10.99.0.1"))), ""))},
		{"server, router and dns addresses are skipped", func(c *Config) {
			c.PoolStart, c.PoolEnd = addr("10.20.0.1"), addr("10.20.0.5")
			c.Router = addr("10.20.0.2")
			c.DNS = []netip.Addr{addr("10.20.0.1"), addr("10.20.0.3")}
		}, seq(
			bindSteps(macA, "10.20.0.4"),
			bindSteps(macB, "10.20.0.5"),
			one(0, pkt(discover, macC), ""))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			clock := newClock()
			s := newTestServer(t, cfg, clock)
			for i, st := range tt.steps {
				clock.Add(st.advance)
				reply, dst := s.handle(context.Background(), st.msg)
				if got := describe(reply, dst); got != st.want {
					t.Fatalf("step %d (%s from %s): got %q, want %q", i, st.msg.MessageType(), st.msg.ClientHWAddr, got, st.want)
				}
				if reply != nil && reply.TransactionID != st.msg.TransactionID {
					t.Fatalf("step %d: reply xid %v, want %v", i, reply.TransactionID, st.msg.TransactionID)
				}
			}
			checkInvariants(t, s.pol, s.tbl, clock.Now())
			// The database holds exactly the in-memory table.
			got, err := loadTable(context.Background(), s.db)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := dumpTable(got), dumpTable(s.tbl); a != b {
				t.Errorf("database and memory differ:\n db  %s\n mem %s", a, b)
			}
		})
	}
}

func dumpTable(t *table) string {
	var b strings.Builder
	for _, l := range t.sorted() {
		fmt.Fprintf(&b, "%s=%s/%s/%s/%d ", l.MAC, l.IP, l.Hostname, stateNames[l.State], l.Expires.UnixMilli())
	}
	b.WriteString("declined:")
	for ip, until := range t.declined {
		fmt.Fprintf(&b, " %s/%d", ip, until.UnixMilli())
	}
	return b.String()
}

// checkInvariants: indexes agree, one row per address, no active lease on
// a reserved address or outside pool and static leases.
func checkInvariants(t testing.TB, p *policy, tb *table, now time.Time) {
	t.Helper()
	if len(tb.byMAC) != len(tb.byIP) {
		t.Fatalf("table: %d MACs but %d addresses", len(tb.byMAC), len(tb.byIP))
	}
	for mac, l := range tb.byMAC {
		if l.MAC != mac || tb.byIP[l.IP] != l {
			t.Fatalf("table: indexes disagree for %s %s", mac, l.IP)
		}
		if p.reserved[l.IP] {
			t.Fatalf("table: %s holds reserved address %s", mac, l.IP)
		}
		if s, ok := p.static[mac]; ok {
			if l.IP != s {
				t.Fatalf("table: static client %s holds %s, not %s", mac, l.IP, s)
			}
		} else if !p.inPool(l.IP) && l.active(now) {
			// Adopted addresses are pool addresses too.
			t.Fatalf("table: %s holds %s outside the pool", mac, l.IP)
		}
		if owner, ok := p.staticIP[l.IP]; ok && owner != mac {
			t.Fatalf("table: %s holds %s, the static address of %s", mac, l.IP, owner)
		}
	}
}

func TestReplyOptions(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want map[dhcpv4.OptionCode]string
	}{
		{"defaults", nil, map[dhcpv4.OptionCode]string{
			dhcpv4.OptionServerIdentifier:   "10.20.0.1",
			dhcpv4.OptionSubnetMask:         "255.255.255.0",
			dhcpv4.OptionBroadcastAddress:   "10.20.0.255",
			dhcpv4.OptionDomainNameServer:   "[10.20.0.1]",
			dhcpv4.OptionDomainName:         "preau.lan",
			dhcpv4.OptionIPAddressLeaseTime: "1h0m0s",
			dhcpv4.OptionRenewTimeValue:     "30m0s",
			dhcpv4.OptionRebindingTimeValue: "52m30s",
			dhcpv4.OptionURL:                "https://preau.example.fr/captive-portal/api",
			dhcpv4.OptionRouter:             "",
		}},
		{"gateway and no portal", func(c *Config) {
			c.Router = addr("10.20.0.254")
			c.CaptiveURI = ""
			c.DomainName = "ecole.lan"
		}, map[dhcpv4.OptionCode]string{
			dhcpv4.OptionRouter:     "[10.20.0.254]",
			dhcpv4.OptionURL:        "",
			dhcpv4.OptionDomainName: "ecole.lan",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			s := newTestServer(t, cfg, newClock())
			reply, _ := s.handle(context.Background(), pkt(discover, macA))
			if reply == nil {
				t.Fatal("no offer")
			}
			// Round-trip through the wire format, as a client sees it.
			back, err := dhcpv4.FromBytes(reply.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			for code, want := range tt.want {
				var got string
				raw := back.Options.Get(code)
				switch code {
				case dhcpv4.OptionServerIdentifier, dhcpv4.OptionBroadcastAddress:
					if raw != nil {
						got = net.IP(raw).String()
					}
				case dhcpv4.OptionSubnetMask:
					if raw != nil {
						got = net.IP(raw).String()
					}
				case dhcpv4.OptionDomainNameServer:
					if raw != nil {
						got = fmt.Sprint(back.DNS())
					}
				case dhcpv4.OptionRouter:
					if raw != nil {
						got = fmt.Sprint(back.Router())
					}
				case dhcpv4.OptionIPAddressLeaseTime:
					got = back.IPAddressLeaseTime(0).String()
				case dhcpv4.OptionRenewTimeValue:
					got = back.IPAddressRenewalTime(0).String()
				case dhcpv4.OptionRebindingTimeValue:
					got = back.IPAddressRebindingTime(0).String()
				default:
					got = string(raw)
				}
				if got != want {
					t.Errorf("option %v: got %q, want %q", code, got, want)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"valid", func(c *Config) {}, ""},
		{"no interface", func(c *Config) { c.Interface = "" }, "interface"},
		{"no subnet", func(c *Config) { c.Subnet = netip.Prefix{} }, "subnet"},
		{"host bits", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.20.0.1/24") }, "host bits"},
		{"ipv6 subnet", func(c *Config) { c.Subnet = netip.MustParsePrefix("fd00::/64") }, "subnet"},
		{"/31", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.20.0.0/31") }, "prefix length"},
		{"server outside", func(c *Config) { c.ServerIP = addr("10.21.0.1") }, "server ip"},
		{"server is broadcast", func(c *Config) { c.ServerIP = addr("10.20.0.255") }, "server ip"},
		{"no pool", func(c *Config) { c.PoolStart = netip.Addr{} }, "pool start"},
		{"pool reversed", func(c *Config) { c.PoolStart, c.PoolEnd = c.PoolEnd, c.PoolStart }, "pool end"},
		{"pool end is network", func(c *Config) { c.PoolEnd = addr("10.20.0.0") }, "pool end"},
		{"router outside", func(c *Config) { c.Router = addr("192.168.0.1") }, "router"},
		{"dns v6", func(c *Config) { c.DNS = []netip.Addr{addr("fd00::1")} }, "dns server"},
		{"domain", func(c *Config) { c.DomainName = "Preau_LAN" }, "domain name"},
		{"lease too short", func(c *Config) { c.LeaseTime = time.Second }, "lease time"},
		{"probe wait", func(c *Config) { c.ProbeWait = time.Millisecond }, "probe wait"},
		{"captive http", func(c *Config) { c.CaptiveURI = "http://preau.lan/api" }, "captive uri"},
		{"captive unrestricted", func(c *Config) { c.CaptiveURI = CaptiveUnrestricted }, ""},
		{"captive too long", func(c *Config) { c.CaptiveURI = "https://a.fr/" + strings.Repeat("x", 250) }, "captive uri"},
		{"static bad mac", func(c *Config) { c.Static = map[string]netip.Addr{"zz": addr("10.20.0.9")} }, "static lease"},
		{"static outside", func(c *Config) { c.Static = map[string]netip.Addr{macA: addr("10.30.0.9")} }, "static lease"},
		{"static is server", func(c *Config) { c.Static = map[string]netip.Addr{macA: addr("10.20.0.1")} }, "static lease"},
		{"static shared", func(c *Config) {
			c.Static = map[string]netip.Addr{macA: addr("10.20.0.9"), macB: addr("10.20.0.9")}
		}, "share"},
		{"static dash form", func(c *Config) { c.Static = map[string]netip.Addr{"02-00-00-00-00-0A": addr("10.20.0.9")} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.edit(&c)
			_, err := New(c, openDB(t, t.TempDir()+"/db"), nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{ServerIP: addr("10.0.0.1")}.WithDefaults()
	if c.DomainName != "preau.lan" || c.LeaseTime != 8*time.Hour || c.ProbeWait != 3*time.Second ||
		len(c.DNS) != 1 || c.DNS[0] != addr("10.0.0.1") || c.Router.IsValid() {
		t.Errorf("defaults: got domain %q lease %v probe %v dns %v router %v", c.DomainName, c.LeaseTime, c.ProbeWait, c.DNS, c.Router)
	}
}

func TestOtherServerError(t *testing.T) {
	var err error = newOtherServerError("eth1", addr("10.0.0.2"))
	if !errors.Is(err, ErrOtherServer) {
		t.Fatal("errors.Is(err, ErrOtherServer) is false")
	}
	wantFR := "un autre serveur DHCP (10.0.0.2) répond déjà sur eth1 : le serveur DHCP de Préau ne démarre pas"
	if !strings.HasPrefix(err.Error(), wantFR) {
		t.Errorf("French: got %q, want prefix %q", err.Error(), wantFR)
	}
	var ose *OtherServerError
	if !errors.As(err, &ose) || !strings.HasPrefix(ose.English(), "another DHCP server (10.0.0.2) already answers on eth1") {
		t.Errorf("English: got %q", ose.English())
	}
}

func TestLeasesAndRestart(t *testing.T) {
	clock := newClock()
	s := newTestServer(t, testConfig(), clock)
	ctx := context.Background()
	for _, st := range seq(bindSteps(macA, "10.20.0.100"), bindSteps(macS, "10.20.0.50")) {
		s.handle(ctx, st.msg)
	}
	s.handle(ctx, pkt(discover, macB)) // offered only: not a lease
	leases, err := s.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range leases {
		got = append(got, fmt.Sprintf("%s %s static=%v", l.MAC, l.IP, l.Static))
	}
	want := []string{macS + " 10.20.0.50 static=true", macA + " 10.20.0.100 static=false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Leases: got %q, want %q", got, want)
	}

	// A new server on the same database keeps the lease of A and the offer
	// made to B, so C gets the next address.
	cfg := testConfig()
	cfg.Now = clock.Now
	s2, err := New(cfg, s.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.tbl, err = loadTable(ctx, s.db); err != nil {
		t.Fatal(err)
	}
	if r, _ := s2.handle(ctx, pkt(discover, macC)); describe(r, nil) != "OFFER 10.20.0.102" {
		t.Errorf("after restart, C: got %q, want OFFER 10.20.0.102", describe(r, nil))
	}
	if r, dst := s2.handle(ctx, pkt(request, macA, ciaddr("10.20.0.100"))); describe(r, dst) != "ACK 10.20.0.100 -> 10.20.0.100" {
		t.Errorf("after restart, A renews: got %q", describe(r, dst))
	}

	// Old rows are forgotten after 30 days.
	clock.Add(31 * 24 * time.Hour)
	if err := purge(ctx, s.db, s2.tbl, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n := len(s2.tbl.byMAC); n != 0 {
		t.Errorf("after purge: %d rows left in memory", n)
	}
	var n int
	s.db.QueryRow(`SELECT count(*) FROM dhcp_leases`).Scan(&n)
	if n != 0 {
		t.Errorf("after purge: %d rows left in the database", n)
	}
}
