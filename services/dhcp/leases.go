package dhcp

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

type leaseState uint8

const (
	stateOffered leaseState = iota + 1
	stateBound
	stateReleased
)

var stateNames = map[leaseState]string{stateOffered: "offered", stateBound: "bound", stateReleased: "released"}

func parseState(s string) (leaseState, bool) {
	for k, v := range stateNames {
		if v == s {
			return k, true
		}
	}
	return 0, false
}

// lease is one row of dhcp_leases: the address a MAC holds or last held.
// A MAC has at most one row and an address belongs to at most one row; a
// row that is not active is remembered so that the client gets the same
// address again, until another client needs it.
type lease struct {
	MAC      string
	IP       netip.Addr
	Hostname string
	State    leaseState
	Expires  time.Time
}

// active reports whether the address is taken at now: offered or bound and
// not expired.
func (l *lease) active(now time.Time) bool {
	return l.State != stateReleased && now.Before(l.Expires)
}

// table is the in-memory copy of the database, loaded when Serve starts
// and written through: every change goes to SQLite first.
type table struct {
	byMAC    map[string]*lease
	byIP     map[netip.Addr]*lease
	declined map[netip.Addr]time.Time
}

func newTable() *table {
	return &table{byMAC: map[string]*lease{}, byIP: map[netip.Addr]*lease{}, declined: map[netip.Addr]time.Time{}}
}

func (t *table) sorted() []*lease {
	out := make([]*lease, 0, len(t.byMAC))
	for _, l := range t.byMAC {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *lease) int { return a.IP.Compare(b.IP) })
	return out
}

// change is what one decision does to the table.
type change struct {
	put     *lease     // upsert by MAC; evicts another row holding the same IP
	drop    string     // MAC whose row is deleted
	decline netip.Addr // address marked declined until declineUntil
	until   time.Time
	mac     string // who declined
}

func (c change) empty() bool { return c.put == nil && c.drop == "" && !c.decline.IsValid() }

// apply changes the in-memory table.
func (t *table) apply(c change) {
	if c.drop != "" {
		if l := t.byMAC[c.drop]; l != nil {
			delete(t.byMAC, c.drop)
			if t.byIP[l.IP] == l {
				delete(t.byIP, l.IP)
			}
		}
	}
	if c.put != nil {
		l := *c.put
		if other := t.byIP[l.IP]; other != nil && other.MAC != l.MAC {
			delete(t.byMAC, other.MAC)
		}
		if old := t.byMAC[l.MAC]; old != nil && t.byIP[old.IP] == old {
			delete(t.byIP, old.IP)
		}
		t.byMAC[l.MAC] = &l
		t.byIP[l.IP] = &l
	}
	if c.decline.IsValid() {
		t.declined[c.decline] = c.until
	}
}

func millis(t time.Time) int64 { return t.UnixMilli() }

// persist writes c to the database in one transaction.
func persist(ctx context.Context, db *sql.DB, c change) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dhcp: save lease: %w", err)
	}
	defer tx.Rollback()
	if c.drop != "" {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dhcp_leases WHERE mac = ?`, c.drop); err != nil {
			return fmt.Errorf("dhcp: save lease: %w", err)
		}
	}
	if l := c.put; l != nil {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dhcp_leases WHERE ip = ? AND mac <> ?`, l.IP.String(), l.MAC); err != nil {
			return fmt.Errorf("dhcp: save lease: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO dhcp_leases (mac, ip, hostname, state, expires) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, hostname = excluded.hostname,
	state = excluded.state, expires = excluded.expires`,
			l.MAC, l.IP.String(), l.Hostname, stateNames[l.State], millis(l.Expires)); err != nil {
			return fmt.Errorf("dhcp: save lease %s %s: %w", l.MAC, l.IP, err)
		}
	}
	if c.decline.IsValid() {
		if _, err := tx.ExecContext(ctx, `
INSERT INTO dhcp_declined (ip, mac, until) VALUES (?, ?, ?)
ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, until = excluded.until`,
			c.decline.String(), c.mac, millis(c.until)); err != nil {
			return fmt.Errorf("dhcp: save declined %s: %w", c.decline, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("dhcp: save lease: %w", err)
	}
	return nil
}

// loadTable reads the database. Rows that do not parse (written by hand)
// are skipped rather than stopping the server.
func loadTable(ctx context.Context, db *sql.DB) (*table, error) {
	t := newTable()
	rows, err := db.QueryContext(ctx, `SELECT mac, ip, hostname, state, expires FROM dhcp_leases`)
	if err != nil {
		return nil, fmt.Errorf("dhcp: load leases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var mac, ip, host, state string
		var exp int64
		if err := rows.Scan(&mac, &ip, &host, &state, &exp); err != nil {
			return nil, fmt.Errorf("dhcp: load leases: %w", err)
		}
		addr, err := netip.ParseAddr(ip)
		st, ok := parseState(state)
		if err != nil || !addr.Is4() || !ok {
			continue
		}
		l := &lease{MAC: mac, IP: addr, Hostname: host, State: st, Expires: time.UnixMilli(exp)}
		t.byMAC[mac] = l
		t.byIP[addr] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dhcp: load leases: %w", err)
	}
	drows, err := db.QueryContext(ctx, `SELECT ip, until FROM dhcp_declined`)
	if err != nil {
		return nil, fmt.Errorf("dhcp: load declined: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var ip string
		var until int64
		if err := drows.Scan(&ip, &until); err != nil {
			return nil, fmt.Errorf("dhcp: load declined: %w", err)
		}
		if addr, err := netip.ParseAddr(ip); err == nil {
			t.declined[addr] = time.UnixMilli(until)
		}
	}
	return t, drows.Err()
}

// forgetAfter is how long an inactive lease is remembered; after it the
// row is deleted so that the table does not grow with every passing device
// (phones use a random MAC per network, some change it daily).
const forgetAfter = 30 * 24 * time.Hour

// purge deletes leases inactive for longer than forgetAfter and declines
// that have ended, in the database and in t.
func purge(ctx context.Context, db *sql.DB, t *table, now time.Time) error {
	cut := now.Add(-forgetAfter)
	if _, err := db.ExecContext(ctx, `DELETE FROM dhcp_leases WHERE expires < ?`, millis(cut)); err != nil {
		return fmt.Errorf("dhcp: purge leases: %w", err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM dhcp_declined WHERE until < ?`, millis(now)); err != nil {
		return fmt.Errorf("dhcp: purge declined: %w", err)
	}
	for mac, l := range t.byMAC {
		if l.Expires.Before(cut) {
			delete(t.byMAC, mac)
			if t.byIP[l.IP] == l {
				delete(t.byIP, l.IP)
			}
		}
	}
	for ip, until := range t.declined {
		if until.Before(now) {
			delete(t.declined, ip)
		}
	}
	return nil
}
