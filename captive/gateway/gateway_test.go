package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" means valid
	}{
		{"minimal", Config{LANInterface: "br-lan"}, ""},
		{"router", Config{LANInterface: "eth1", UplinkInterface: "eth0", PortalPort: 8080, DNSPort: 5353, TableName: "preau_gw"}, ""},
		{"no lan", Config{}, "LANInterface"},
		{"lan too long", Config{LANInterface: "abcdefghijklmnop"}, "LANInterface"},
		{"lan 15 bytes", Config{LANInterface: "abcdefghijklmno"}, ""},
		{"lan slash", Config{LANInterface: "eth/0"}, "LANInterface"},
		{"lan colon", Config{LANInterface: "eth0:1"}, "LANInterface"},
		{"lan space", Config{LANInterface: "eth 0"}, "LANInterface"},
		{"lan dot", Config{LANInterface: "."}, "LANInterface"},
		{"lan nul", Config{LANInterface: "e\x00"}, "LANInterface"},
		{"lan accent", Config{LANInterface: "réseau"}, "LANInterface"},
		{"uplink bad", Config{LANInterface: "eth1", UplinkInterface: "a b"}, "UplinkInterface"},
		{"uplink is lan", Config{LANInterface: "eth1", UplinkInterface: "eth1"}, "UplinkInterface"},
		{"table digit first", Config{LANInterface: "eth1", TableName: "1preau"}, "TableName"},
		{"table dash", Config{LANInterface: "eth1", TableName: "pre-au"}, "TableName"},
		{"table too long", Config{LANInterface: "eth1", TableName: strings.Repeat("p", 33)}, "TableName"},
		{"timeout short", Config{LANInterface: "eth1", AcceptedTimeout: time.Millisecond}, "AcceptedTimeout"},
		{"timeout negative", Config{LANInterface: "eth1", AcceptedTimeout: -time.Hour}, "AcceptedTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			var ce *ConfigError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.field == "":
			case !errors.As(err, &ce):
				t.Fatalf("Validate = %v, want a *ConfigError on %s", err, tt.field)
			case ce.Field != tt.field:
				t.Errorf("field = %s, want %s (%s)", ce.Field, tt.field, ce.English())
			case !strings.HasPrefix(ce.Error(), "passerelle : ") || !strings.HasPrefix(ce.English(), "gateway: "):
				t.Errorf("messages %q / %q, want French then English with the component prefix", ce.Error(), ce.English())
			}
		})
	}
	// Zero ports are filled by WithDefaults; Validate alone refuses them.
	if err := (Config{LANInterface: "eth1", TableName: "preau", AcceptedTimeout: time.Hour, Now: time.Now}).Validate(); err == nil {
		t.Error("Validate accepted port 0")
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("New accepted an empty config")
	}
}

func TestDefaults(t *testing.T) {
	c := Config{LANInterface: "br-lan"}.WithDefaults()
	got := fmt.Sprintln(c.PortalPort, c.HTTPSPort, c.DNSPort, c.TableName, c.AcceptedTimeout, c.Now != nil)
	if want := "80 443 53 preau 12h0m0s true\n"; got != want {
		t.Errorf("defaults = %s, want %s", got, want)
	}
}

// TestAllowBeforeApply checks the remembered acceptances: they need no
// kernel (nothing is applied yet), and Apply will install exactly these.
func TestAllowBeforeApply(t *testing.T) {
	now := time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)
	g, err := New(Config{LANInterface: "br-lan", Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:00:00:aa:bb:cc")
	steps := []struct {
		name string
		do   func() error
	}{
		{"v4", func() error { return g.Allow(netip.MustParseAddr("10.0.0.2"), now.Add(time.Hour)) }},
		{"v4 mapped, default timeout", func() error { return g.Allow(netip.MustParseAddr("::ffff:10.0.0.3"), time.Time{}) }},
		{"v6 with zone", func() error { return g.Allow(netip.MustParseAddr("fe80::1%br-lan"), now.Add(2*time.Hour)) }},
		{"v6 global", func() error { return g.Allow(netip.MustParseAddr("2001:db8::5"), now.Add(time.Minute)) }},
		{"revoked v6", func() error { return g.Revoke(netip.MustParseAddr("2001:db8::5")) }},
		{"past end revokes", func() error { return g.Allow(netip.MustParseAddr("10.0.0.4"), now.Add(-time.Second)) }},
		{"mac", func() error { return g.AllowMAC(mac, now.Add(30*time.Minute)) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	tests := []struct {
		set  string
		want []string
	}{
		{setAccepted4, []string{"10.0.0.2 1h0m0s", "10.0.0.3 12h0m0s"}},
		{setAccepted6, []string{"fe80::1 2h0m0s"}},
		{setAcceptedMAC, []string{"02:00:00:aa:bb:cc 30m0s"}},
	}
	for _, tt := range tests {
		var got []string
		for _, e := range g.elements(tt.set, now) {
			k := ""
			if tt.set == setAcceptedMAC {
				k = net.HardwareAddr(e.Key).String()
			} else {
				a, _ := netip.AddrFromSlice(e.Key)
				k = a.String()
			}
			got = append(got, k+" "+e.Timeout.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s = %q, want %q", tt.set, got, tt.want)
		}
	}
	// Time passes: Apply would drop what expired.
	g.prune(now.Add(90 * time.Minute))
	if len(g.ips) != 2 || len(g.macs) != 0 {
		t.Errorf("after 90 min: %d addresses, %d MACs remembered, want 2 and 0", len(g.ips), len(g.macs))
	}
}

func TestAllowRefusesNonDevices(t *testing.T) {
	g, err := New(Config{LANInterface: "br-lan"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{{}, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::"), netip.MustParseAddr("224.0.0.251"), netip.MustParseAddr("ff02::fb")} {
		if err := g.Allow(a, time.Time{}); err == nil {
			t.Errorf("Allow(%v) = nil, want an error", a)
		}
	}
	for _, m := range []string{"", "01:00:5e:00:00:fb", "00:00:00:00:00:00", "02:00:00:00:00:00:00:01"} {
		mac, _ := net.ParseMAC(m)
		if err := g.AllowMAC(mac, time.Time{}); err == nil {
			t.Errorf("AllowMAC(%q) = nil, want an error", m)
		}
	}
}

// TestRulesetShape checks, without a kernel, which chains each mode has
// and that every expression encodes; the netns tests check behaviour.
func TestRulesetShape(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		chains []string
	}{
		{"captive router", Config{LANInterface: "lan0", UplinkInterface: "up0"}, []string{"prerouting", "input", "forward", "postrouting"}},
		{"captive, no nat", Config{LANInterface: "lan0"}, []string{"prerouting", "input", "forward"}},
		{"open router", Config{LANInterface: "lan0", UplinkInterface: "up0", Open: true}, []string{"prerouting", "postrouting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := buildRuleset(tt.cfg.WithDefaults())
			var got []string
			for _, c := range r.chains {
				got = append(got, c.Name)
			}
			if !slices.Equal(got, tt.chains) {
				t.Errorf("chains = %q, want %q", got, tt.chains)
			}
			if err := checkRuleset(r, tt.cfg.WithDefaults()); err != nil {
				t.Error(err)
			}
		})
	}
}

// checkRuleset holds the invariants FuzzRuleset checks too.
func checkRuleset(r *ruleset, cfg Config) error {
	if r.table.Name != cfg.TableName || r.table.Family != nftables.TableFamilyINet {
		return fmt.Errorf("table %v %q, want inet %q", r.table.Family, r.table.Name, cfg.TableName)
	}
	for i, rule := range r.rules {
		if rule.Table != r.table || !slices.Contains(r.chains, rule.Chain) {
			return fmt.Errorf("rule %d is outside the table's chains", i)
		}
		for _, e := range rule.Exprs {
			if _, err := expr.Marshal(byte(nftables.TableFamilyINet), e); err != nil {
				return fmt.Errorf("rule %d: expression %T does not encode: %v", i, e, err)
			}
			if c, ok := e.(*expr.Cmp); ok && len(c.Data) == ifNameSize {
				name := strings.TrimRight(string(c.Data), "\x00")
				if name != cfg.LANInterface && name != cfg.UplinkInterface {
					return fmt.Errorf("rule %d compares interface %q, not a configured one", i, name)
				}
			}
			if l, ok := e.(*expr.Lookup); ok && r.set(l.SetName) == nil {
				return fmt.Errorf("rule %d looks up unknown set %q", i, l.SetName)
			}
		}
	}
	for _, c := range r.chains {
		if c.Policy == nil || *c.Policy != nftables.ChainPolicyAccept {
			return fmt.Errorf("chain %s: policy is not accept: the table must never drop what it does not own", c.Name)
		}
	}
	return nil
}

func TestErrorsSayWhatToDo(t *testing.T) {
	g, err := New(Config{LANInterface: "br-lan"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opName     string
		cause      error
		fr, en     string
		underlying error
	}{
		{"apply", &os.SyscallError{Syscall: "sendmsg", Err: syscall.EPERM}, "CAP_NET_ADMIN", "CAP_NET_ADMIN", os.ErrPermission},
		{"apply", fmt.Errorf("conn.Receive: %w", unix.EOPNOTSUPP), "nft_redir", "nft_redir", unix.EOPNOTSUPP},
		{"allow", errors.New("boom"), "appareils acceptés", "accepted devices", nil},
	}
	for _, tt := range tests {
		err := g.opErr(tt.opName, tt.cause)
		var ge *Error
		if !errors.As(err, &ge) {
			t.Fatalf("opErr = %T, want *Error", err)
		}
		if !strings.Contains(ge.Error(), tt.fr) || !strings.Contains(ge.English(), tt.en) {
			t.Errorf("%s(%v): %q / %q, want %q / %q", tt.opName, tt.cause, ge.Error(), ge.English(), tt.fr, tt.en)
		}
		if !strings.HasPrefix(ge.Error(), "passerelle : ") {
			t.Errorf("French text %q lacks the component prefix", ge.Error())
		}
		if tt.underlying != nil && !errors.Is(err, tt.underlying) {
			t.Errorf("errors.Is(%v, %v) = false", err, tt.underlying)
		}
	}
}
