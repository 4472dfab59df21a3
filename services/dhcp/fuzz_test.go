package dhcp

import (
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzDecide feeds arbitrary packets (seeds: real client messages in
// testdata/fuzz/FuzzDecide) to the lease decisions over a table that holds
// a bound, an offered, a released lease and a declined address. It must
// never panic, never offer or acknowledge an address that is reserved,
// outside the pool or another client's static lease, and keep the table
// consistent.
func FuzzDecide(f *testing.F) {
	cfg := testConfig().WithDefaults()
	if err := cfg.Validate(); err != nil {
		f.Fatal(err)
	}
	p := newPolicy(cfg)
	start := newClock().Now()
	f.Fuzz(func(t *testing.T, packet []byte, advanceMinutes uint16) {
		req, err := dhcpv4.FromBytes(packet)
		if err != nil {
			return
		}
		tb := newTable()
		tb.apply(change{put: &lease{MAC: macA, IP: addr("10.20.0.100"), State: stateBound, Expires: start.Add(time.Hour)}})
		tb.apply(change{put: &lease{MAC: macB, IP: addr("10.20.0.101"), State: stateOffered, Expires: start.Add(time.Minute)}})
		tb.apply(change{put: &lease{MAC: macC, IP: addr("10.20.0.102"), State: stateReleased, Expires: start}})
		tb.apply(change{decline: addr("10.20.0.103"), until: start.Add(time.Hour), mac: macD})
		now := start.Add(time.Duration(advanceMinutes) * time.Minute)

		d := p.decide(now, tb, req)
		if r := d.reply; r != nil {
			if r.OpCode != dhcpv4.OpcodeBootReply || r.TransactionID != req.TransactionID {
				t.Fatalf("reply op %v xid %v for request xid %v", r.OpCode, r.TransactionID, req.TransactionID)
			}
			if y := addrOf(r.YourIPAddr); y.IsValid() && !y.IsUnspecified() {
				mac := req.ClientHWAddr.String()
				if p.reserved[y] {
					t.Fatalf("%v gives reserved address %s", r.MessageType(), y)
				}
				if s, ok := p.static[mac]; ok && y != s {
					t.Fatalf("%v gives %s to static client %s (static %s)", r.MessageType(), y, mac, s)
				}
				if owner, ok := p.staticIP[y]; ok && owner != mac {
					t.Fatalf("%v gives %s, the static address of %s, to %s", r.MessageType(), y, owner, mac)
				}
				if _, ok := p.static[mac]; !ok && !p.inPool(y) {
					t.Fatalf("%v gives %s outside the pool", r.MessageType(), y)
				}
				if l := tb.byIP[y]; l != nil && l.MAC != mac && l.active(now) {
					t.Fatalf("%v gives %s, held by %s until %v", r.MessageType(), y, l.MAC, l.Expires)
				}
			}
			if _, err := dhcpv4.FromBytes(r.ToBytes()); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
		}
		tb.apply(d.change)
		checkInvariants(t, p, tb, now)
	})
}
