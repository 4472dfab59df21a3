package mdns

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestConfigDefaults(t *testing.T) {
	long := "École élémentaire publique Jean-Baptiste Poquelin dit Molière de Saint-Rémy"
	tests := []struct {
		name string
		in   Config
		want string // InstanceName after defaults
	}{
		{"no school", Config{}, "Préau"},
		{"school", Config{SchoolName: "École Jules Ferry"}, "Préau — École Jules Ferry"},
		{"explicit wins", Config{SchoolName: "x", InstanceName: "Bibliothèque"}, "Bibliothèque"},
		{"long school is shortened", Config{SchoolName: long}, "Préau — École élémentaire publique Jean-Baptiste…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.WithDefaults()
			if got.InstanceName != tt.want {
				t.Errorf("instance name: got %q, want %q", got.InstanceName, tt.want)
			}
			if len(got.InstanceName) > 63 {
				t.Errorf("instance name is %d bytes, want at most 63", len(got.InstanceName))
			}
			if got.HostName != "preau" || got.Port != 80 || got.Path != "/" {
				t.Errorf("defaults: got host %q port %d path %q, want preau 80 /", got.HostName, got.Port, got.Path)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{SchoolName: "École", Interfaces: []string{"eth1"}, UAI: "0751234A", Version: "1.2.0"}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string // "" means valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"no interface", func(c *Config) { c.Interfaces = nil }, "interfaces is empty"},
		{"bad interface", func(c *Config) { c.Interfaces = []string{"a/b"} }, "interface name"},
		{"bad host", func(c *Config) { c.HostName = "preau.local" }, "host name"},
		{"host with hyphen", func(c *Config) { c.HostName = "preau-ecole" }, ""},
		{"bad uai", func(c *Config) { c.UAI = "751234A" }, "uai"},
		{"lower-case uai", func(c *Config) { c.UAI = "0751234a" }, "uai"},
		{"long name", func(c *Config) { c.InstanceName = strings.Repeat("é", 32) }, "instance name"},
		{"control char", func(c *Config) { c.InstanceName = "a\nb" }, "instance name"},
		{"port", func(c *Config) { c.Port = 70000 }, "port"},
		{"path", func(c *Config) { c.Path = "portal" }, "path"},
		{"loopback addr", func(c *Config) { c.Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")} }, "address"},
		{"addr", func(c *Config) { c.Addrs = []netip.Addr{netip.MustParseAddr("10.0.0.1")} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			_, err := New(c, nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestTXT(t *testing.T) {
	a, err := New(Config{Interfaces: []string{"eth1"}, UAI: "0751234A", Version: "1.2.0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(a.TXT(), " "), "version=1.2.0 uai=0751234A path=/"; got != want {
		t.Errorf("TXT: got %q, want %q", got, want)
	}
	a, _ = New(Config{Interfaces: []string{"eth1"}}, nil)
	if got, want := strings.Join(a.TXT(), " "), "path=/"; got != want {
		t.Errorf("TXT without version and uai: got %q, want %q", got, want)
	}
}

// The escaped instance name must be what miekg/dns unpacks from the wire
// (zeroconf compares questions with it as strings) and must pack back to
// the exact UTF-8 bytes.
func TestEscapeInstance(t *testing.T) {
	for _, name := range []string{"Préau", "Préau — École J. Ferry", `back\slash`, "a;b (c) \"d\" @e"} {
		esc := escapeInstance(name)
		fqdn := esc + "._http._tcp.local."
		msg := new(dns.Msg)
		msg.SetQuestion(fqdn, dns.TypeSRV)
		wire, err := msg.Pack()
		if err != nil {
			t.Fatalf("%q: pack: %v", name, err)
		}
		var back dns.Msg
		if err := back.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		if got := back.Question[0].Name; got != fqdn {
			t.Errorf("%q: unpacked question %q, want %q", name, got, fqdn)
		}
		// First label on the wire: length byte then the raw bytes.
		if got := string(wire[12+1 : 12+1+int(wire[12])]); got != name {
			t.Errorf("%q: label on the wire %q", name, got)
		}
		if got, err := unescapeLabel(esc); err != nil || got != name {
			t.Errorf("%q: unescape(%q) = %q, %v", name, esc, got, err)
		}
	}
}

// unescapeLabel reads one label as avahi-browse -p and miekg/dns print it
// (\DDD and \X escapes).
func unescapeLabel(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] != '\\':
			b.WriteByte(s[i])
		case i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]):
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n > 255 {
				return "", &escapeError{s}
			}
			b.WriteByte(byte(n))
			i += 3
		case i+1 < len(s):
			b.WriteByte(s[i+1])
			i++
		default:
			return "", &escapeError{s}
		}
	}
	return b.String(), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

type escapeError struct{ s string }

func (e *escapeError) Error() string { return "bad escape in " + e.s }

func TestHostReply(t *testing.T) {
	v4only := newHostRecords("preau", []netip.Addr{netip.MustParseAddr("10.0.0.1")})
	dual := newHostRecords("preau", []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")})
	query := func(name string, qtype, qclass uint16) *dns.Msg {
		m := new(dns.Msg)
		m.Id = 0
		m.RecursionDesired = false
		m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: qclass}}
		return m
	}
	known := query("preau.local.", dns.TypeA, dns.ClassINET)
	known.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "preau.local.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 100}, A: []byte{10, 0, 0, 1}}}
	stale := query("preau.local.", dns.TypeA, dns.ClassINET)
	stale.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "preau.local.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: []byte{10, 0, 0, 1}}}
	legacy := query("PREAU.local.", dns.TypeA, dns.ClassINET)
	legacy.Id = 4242
	response := query("preau.local.", dns.TypeA, dns.ClassINET)
	response.Response = true

	tests := []struct {
		name        string
		rec         hostRecords
		q           *dns.Msg
		port        int
		want        string // answers, "" for no response
		wantUnicast bool
		wantID      uint16
	}{
		{"A multicast", v4only, query("preau.local.", dns.TypeA, dns.ClassINET), 5353, "A 10.0.0.1 ttl=120 flush", false, 0},
		{"case-insensitive", v4only, query("Preau.Local.", dns.TypeA, dns.ClassINET), 5353, "A 10.0.0.1 ttl=120 flush", false, 0},
		{"QU bit", v4only, query("preau.local.", dns.TypeA, dns.ClassINET|classCacheBit), 5353, "A 10.0.0.1 ttl=120 flush", true, 0},
		{"legacy unicast", v4only, legacy, 40000, "A 10.0.0.1 ttl=10", true, 4242},
		{"AAAA none: NSEC", v4only, query("preau.local.", dns.TypeAAAA, dns.ClassINET), 5353, "NSEC A ttl=120 flush", false, 0},
		{"AAAA", dual, query("preau.local.", dns.TypeAAAA, dns.ClassINET), 5353, "AAAA fd00::1 ttl=120 flush", false, 0},
		{"ANY", dual, query("preau.local.", dns.TypeANY, dns.ClassANY), 5353, "A 10.0.0.1 ttl=120 flush, AAAA fd00::1 ttl=120 flush", false, 0},
		{"other name", v4only, query("other.local.", dns.TypeA, dns.ClassINET), 5353, "", false, 0},
		{"other type", v4only, query("preau.local.", dns.TypeTXT, dns.ClassINET), 5353, "", false, 0},
		{"response ignored", v4only, response, 5353, "", false, 0},
		{"known answer suppressed", v4only, known, 5353, "", false, 0},
		{"stale known answer refreshed", v4only, stale, 5353, "A 10.0.0.1 ttl=120 flush", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, unicast := tt.rec.reply(tt.q, tt.port)
			if got := describe(resp); got != tt.want {
				t.Fatalf("answers: got %q, want %q", got, tt.want)
			}
			if resp == nil {
				return
			}
			if unicast != tt.wantUnicast {
				t.Errorf("unicast: got %v, want %v", unicast, tt.wantUnicast)
			}
			if resp.Id != tt.wantID || !resp.Response || !resp.Authoritative {
				t.Errorf("header: got id %d qr %v aa %v, want id %d, qr and aa", resp.Id, resp.Response, resp.Authoritative, tt.wantID)
			}
			if legacyQ := tt.port != 5353; legacyQ != (len(resp.Question) > 0) {
				t.Errorf("question section: got %d questions, want them only for legacy queries", len(resp.Question))
			}
			if _, err := resp.Pack(); err != nil {
				t.Errorf("pack: %v", err)
			}
		})
	}
}

func describe(m *dns.Msg) string {
	if m == nil {
		return ""
	}
	var parts []string
	for _, rr := range m.Answer {
		h := rr.Header()
		var s string
		switch r := rr.(type) {
		case *dns.A:
			s = "A " + r.A.String()
		case *dns.AAAA:
			s = "AAAA " + r.AAAA.String()
		case *dns.NSEC:
			var types []string
			for _, ty := range r.TypeBitMap {
				types = append(types, dns.TypeToString[ty])
			}
			s = "NSEC " + strings.Join(types, " ")
		default:
			s = dns.TypeToString[h.Rrtype]
		}
		s += " ttl=" + strconv.Itoa(int(h.Ttl))
		if h.Class&classCacheBit != 0 {
			s += " flush"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// FuzzHostReply feeds arbitrary packets to the host-name responder: it must
// never panic, and answer only about its own name with packable messages.
func FuzzHostReply(f *testing.F) {
	rec := newHostRecords("preau", []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")})
	f.Fuzz(func(t *testing.T, packet []byte, port uint16) {
		var q dns.Msg
		if err := q.Unpack(packet); err != nil {
			return
		}
		resp, _ := rec.reply(&q, int(port))
		if resp == nil {
			return
		}
		for _, rr := range resp.Answer {
			if rr.Header().Name != "preau.local." {
				t.Fatalf("answer about %q", rr.Header().Name)
			}
		}
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("pack: %v", err)
		}
	})
}
