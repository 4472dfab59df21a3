package gateway

import "testing"

// FuzzRuleset feeds arbitrary configurations to Validate and, when they
// pass, to the ruleset builder: it must not panic, every expression must
// encode, and interface comparisons must only name configured interfaces
// (checkRuleset). Seeds are in testdata/fuzz/FuzzRuleset.
func FuzzRuleset(f *testing.F) {
	f.Fuzz(func(t *testing.T, lan, uplink, table string, portal, https, dnsPort uint16, open bool) {
		cfg := Config{LANInterface: lan, UplinkInterface: uplink, TableName: table,
			PortalPort: portal, HTTPSPort: https, DNSPort: dnsPort, Open: open}.WithDefaults()
		if err := cfg.Validate(); err != nil {
			return
		}
		if err := checkRuleset(buildRuleset(cfg), cfg); err != nil {
			t.Fatalf("config %+v: %v", cfg, err)
		}
	})
}
