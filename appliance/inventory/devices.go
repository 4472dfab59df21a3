package inventory

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Device is one device of the LAN as the inventory knows it.
type Device struct {
	// ID is the first MAC the device was seen with, "aa:bb:cc:dd:ee:ff".
	// It never changes.
	ID string
	// MAC is the MAC seen last; MACs lists every MAC linked to the device
	// (more than one only for randomised MACs linked by a hint), oldest
	// first.
	MAC  string
	MACs []string
	// Randomised is true for a locally administered MAC.
	Randomised bool
	// IP and IPv6 are the addresses seen last ("" when none).
	IP   string
	IPv6 string
	// Name is the best human name: host name, else DNS-SD host, else
	// DNS-SD instance name; "" when the device announced none.
	Name     string
	Hostname string // DHCP or portal host name
	MDNSHost string // DNS-SD host, e.g. imprimante-cdi.local
	MDNSName string // DNS-SD instance name
	// Vendor is the IEEE organisation name of the MAC prefix, "" when
	// unknown; VendorStatus says why. VendorLabel gives the text to show.
	Vendor       string
	VendorStatus VendorStatus
	// Model comes from TXT hints (printer model, Apple model identifier,
	// cast receiver model…).
	Model string
	// OS comes from the User-Agent.
	OS        string
	UserAgent string
	Services  []string
	Hints     map[string]string
	ClientID  string
	Sources   []Source
	// Class is the technician's class when set (ClassSet), else the
	// guess; ClassConfidence is 0 to 100 (100 when set); ClassReason says
	// what the guess rests on, in French (ClassReasonEN in English).
	Class           Class
	ClassConfidence int
	ClassReason     string
	ClassReasonEN   string
	ClassSet        bool
	ClassBy         string
	ClassSetAt      time.Time
	// Guess is the automatic guess, kept even when a technician set the
	// class.
	Guess Class
	// FirstSeen and LastSeen bound the sightings; Present is true when
	// LastSeen is within the presence timeout.
	FirstSeen time.Time
	LastSeen  time.Time
	Present   bool
	// Neighbour is the kernel neighbour state last seen (REACHABLE,
	// STALE…), "" when never seen there.
	Neighbour string
}

// DisplayName is Name, or "appareil" and the end of the MAC when the
// device announced no name.
func (d Device) DisplayName() string {
	if d.Name != "" {
		return d.Name
	}
	return "appareil-" + strings.ReplaceAll(d.ID[9:], ":", "")
}

// deviceRow is one row of inventory_devices.
type deviceRow struct {
	id                            string
	randomised                    bool
	firstSeen, lastSeen           time.Time
	lastMAC, ipv4, ipv6           string
	hostname, clientID            string
	mdnsHost, mdnsName, userAgent string
	services                      []string
	hints                         map[string]string
	sources                       []string
	neighbour, classSet, classBy  string
	classAt                       time.Time
}

const rowColumns = `id, randomised, first_seen, last_seen, last_mac, ipv4, ipv6, hostname, client_id,
	mdns_host, mdns_name, user_agent, services, hints, sources, neighbour, class_set, class_by, class_at`

type scanner interface{ Scan(...any) error }

func scanRow(s scanner) (deviceRow, error) {
	var r deviceRow
	var first, last, classAt int64
	var services, hints, sources string
	err := s.Scan(&r.id, &r.randomised, &first, &last, &r.lastMAC, &r.ipv4, &r.ipv6, &r.hostname, &r.clientID,
		&r.mdnsHost, &r.mdnsName, &r.userAgent, &services, &hints, &sources, &r.neighbour, &r.classSet, &r.classBy, &classAt)
	if err != nil {
		return r, err
	}
	r.firstSeen, r.lastSeen = time.UnixMilli(first), time.UnixMilli(last)
	if classAt != 0 {
		r.classAt = time.UnixMilli(classAt)
	}
	r.services, r.hints, r.sources = jsonList(services), jsonMap(hints), jsonList(sources)
	return r, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func loadRow(ctx context.Context, q querier, id string) (deviceRow, error) {
	r, err := scanRow(q.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM inventory_devices WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

func (r deviceRow) clone() deviceRow {
	r.services = slices.Clone(r.services)
	r.hints = maps.Clone(r.hints)
	r.sources = slices.Clone(r.sources)
	return r
}

func (r *deviceRow) save(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE inventory_devices SET first_seen = ?, last_seen = ?, last_mac = ?, ipv4 = ?, ipv6 = ?,
		hostname = ?, client_id = ?, mdns_host = ?, mdns_name = ?, user_agent = ?, services = ?, hints = ?, sources = ?,
		neighbour = ? WHERE id = ?`,
		r.firstSeen.UnixMilli(), r.lastSeen.UnixMilli(), r.lastMAC, r.ipv4, r.ipv6, r.hostname, r.clientID, r.mdnsHost,
		r.mdnsName, r.userAgent, listJSON(r.services), mapJSON(r.hints), listJSON(r.sources), r.neighbour, r.id)
	return err
}

func listJSON(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	return toJSON(v)
}

func mapJSON(v map[string]string) string {
	if len(v) == 0 {
		return "{}"
	}
	return toJSON(v)
}

// merge folds an observation into the row: the newest sighting gives the
// last MAC, addresses replace older ones, names replace older ones when
// given, services, hints and sources accumulate.
func (r *deviceRow) merge(ob observation) {
	if ob.At.Before(r.firstSeen) {
		r.firstSeen = ob.At
	}
	if !ob.At.Before(r.lastSeen) {
		r.lastSeen = ob.At
		r.lastMAC = ob.mac
	}
	switch {
	case ob.IP.Is4():
		r.ipv4 = ob.IP.String()
	case ob.IP.Is6():
		old, err := netip.ParseAddr(r.ipv6)
		if !ob.IP.IsLinkLocalUnicast() || err != nil || old.IsLinkLocalUnicast() {
			r.ipv6 = ob.IP.String()
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&r.hostname, ob.Hostname)
	set(&r.clientID, ob.ClientID)
	set(&r.mdnsHost, ob.mdnsHost)
	set(&r.mdnsName, ob.Name)
	set(&r.userAgent, ob.UserAgent)
	if ob.Source == SourceNeighbour {
		r.neighbour = ob.neighState
	}
	for _, s := range ob.Services {
		if !slices.Contains(r.services, s) && len(r.services) < maxServices {
			r.services = append(r.services, s)
		}
	}
	slices.Sort(r.services)
	for k, v := range ob.Hints {
		if _, ok := r.hints[k]; ok || len(r.hints) < maxHints {
			if r.hints == nil {
				r.hints = make(map[string]string)
			}
			r.hints[k] = v
		}
	}
	if !slices.Contains(r.sources, string(ob.Source)) {
		r.sources = append(r.sources, string(ob.Source))
		slices.Sort(r.sources)
	}
}

func loadMACs(ctx context.Context, q querier, id string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT mac FROM inventory_macs WHERE device = ? ORDER BY first_seen, mac`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var macs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		macs = append(macs, m)
	}
	return macs, rows.Err()
}

// toDevice derives what is shown from the stored facts.
func (inv *Inventory) toDevice(r deviceRow, macs []string, now time.Time) Device {
	d := Device{
		ID: r.id, MAC: r.lastMAC, MACs: macs, Randomised: r.randomised, IP: r.ipv4, IPv6: r.ipv6,
		Hostname: r.hostname, MDNSHost: r.mdnsHost, MDNSName: r.mdnsName, UserAgent: r.userAgent,
		Services: r.services, Hints: r.hints, ClientID: r.clientID, Neighbour: r.neighbour,
		FirstSeen: r.firstSeen, LastSeen: r.lastSeen, Present: inv.isPresent(r.lastSeen, now),
	}
	if len(d.MACs) == 0 {
		d.MACs = []string{r.id}
	}
	for _, s := range r.sources {
		d.Sources = append(d.Sources, Source(s))
	}
	d.Name = cmp.Or(r.hostname, strings.TrimSuffix(r.mdnsHost, ".local"), r.mdnsName)
	d.Vendor, d.VendorStatus = inv.vendorOf(r.id, r.randomised)
	ua := classifyUA(r.userAgent)
	d.OS = ua.os
	d.Model = modelOf(r.hints, r.services)
	g := guessClass(facts{
		services: r.services, hints: r.hints, ua: ua, vendor: d.Vendor,
		names: []string{r.hostname, strings.TrimSuffix(r.mdnsHost, ".local"), r.mdnsName},
	})
	d.Guess = g.class
	d.Class, d.ClassConfidence, d.ClassReason, d.ClassReasonEN = g.class, g.confidence, g.fr, g.en
	if c := Class(r.classSet); c.Valid() {
		d.Class, d.ClassConfidence, d.ClassSet, d.ClassBy, d.ClassSetAt = c, 100, true, r.classBy, r.classAt
		d.ClassReason = "corrigé par " + r.classBy
		d.ClassReasonEN = "set by " + r.classBy
	}
	return d
}

// Devices lists every known device, present ones first, then by last
// sighting, newest first.
func (inv *Inventory) Devices(ctx context.Context) ([]Device, error) {
	return inv.devicesWhere(ctx, "", nil)
}

func (inv *Inventory) devicesWhere(ctx context.Context, where string, args []any) ([]Device, error) {
	now := inv.now()
	rows, err := inv.db.QueryContext(ctx, `SELECT `+rowColumns+` FROM inventory_devices `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("inventory: list devices: %w", err)
	}
	var list []deviceRow
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("inventory: list devices: %w", err)
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inventory: list devices: %w", err)
	}
	macs, err := inv.allMACs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Device, 0, len(list))
	for _, r := range list {
		out = append(out, inv.toDevice(r, macs[r.id], now))
	}
	slices.SortStableFunc(out, func(a, b Device) int {
		if a.Present != b.Present {
			if a.Present {
				return -1
			}
			return 1
		}
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

func (inv *Inventory) allMACs(ctx context.Context) (map[string][]string, error) {
	rows, err := inv.db.QueryContext(ctx, `SELECT device, mac FROM inventory_macs ORDER BY device, first_seen, mac`)
	if err != nil {
		return nil, fmt.Errorf("inventory: list macs: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]string)
	for rows.Next() {
		var dev, mac string
		if err := rows.Scan(&dev, &mac); err != nil {
			return nil, fmt.Errorf("inventory: list macs: %w", err)
		}
		out[dev] = append(out[dev], mac)
	}
	return out, rows.Err()
}

// deviceOf returns the device id of a MAC written in any usual form.
func (inv *Inventory) deviceOf(ctx context.Context, q querier, mac string) (string, error) {
	m, err := parseMAC(mac)
	if err != nil {
		return "", err
	}
	var dev string
	err = q.QueryRowContext(ctx, `SELECT device FROM inventory_macs WHERE mac = ?`, m).Scan(&dev)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return dev, err
}

// Device returns the device that has (or had) mac.
func (inv *Inventory) Device(ctx context.Context, mac string) (Device, error) {
	dev, err := inv.deviceOf(ctx, inv.db, mac)
	if err != nil {
		return Device{}, err
	}
	r, err := loadRow(ctx, inv.db, dev)
	if err != nil {
		return Device{}, err
	}
	macs, err := loadMACs(ctx, inv.db, dev)
	if err != nil {
		return Device{}, fmt.Errorf("inventory: device %s: %w", mac, err)
	}
	return inv.toDevice(r, macs, inv.now()), nil
}

// SetClass records a technician's class for the device that has mac; it
// wins over every guess and is kept until changed. An empty class goes
// back to the guess. by names the technician (the console login).
func (inv *Inventory) SetClass(ctx context.Context, mac string, class Class, by string) error {
	if class != "" && !class.Valid() {
		return fmt.Errorf("%w: %q", ErrBadClass, class)
	}
	by = cleanText(by, maxText)
	if class != "" && by == "" {
		return errors.New("inventory: set class: who sets it is not given")
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	dev, err := inv.deviceOf(ctx, inv.db, mac)
	if err != nil {
		return err
	}
	at := int64(0)
	if class != "" {
		at = inv.now().UnixMilli()
	} else {
		by = ""
	}
	if _, err := inv.db.ExecContext(ctx, `UPDATE inventory_devices SET class_set = ?, class_by = ?, class_at = ? WHERE id = ?`,
		string(class), by, at, dev); err != nil {
		return fmt.Errorf("inventory: set class of %s: %w", mac, err)
	}
	r, err := loadRow(ctx, inv.db, dev)
	if err != nil {
		return err
	}
	macs, err := loadMACs(ctx, inv.db, dev)
	if err != nil {
		return fmt.Errorf("inventory: set class of %s: %w", mac, err)
	}
	inv.publish(Event{Kind: EventChanged, Device: inv.toDevice(r, macs, inv.now())})
	return nil
}

// Interval is a span of presence. Open means the device is still present:
// End is then the end of the query or now, whichever is earlier.
type Interval struct {
	Start, End time.Time
	Open       bool
}

// Duration is End minus Start.
func (iv Interval) Duration() time.Duration { return iv.End.Sub(iv.Start) }

// Presence returns the presence intervals of the device that has mac that
// overlap [from, to), clipped to it, oldest first. Presence is known to
// within the presence timeout: an interval runs from the first to the
// last sighting of a stay.
func (inv *Inventory) Presence(ctx context.Context, mac string, from, to time.Time) ([]Interval, error) {
	dev, err := inv.deviceOf(ctx, inv.db, mac)
	if err != nil {
		return nil, err
	}
	all, err := inv.intervals(ctx, "device = ? AND", []any{dev}, from, to)
	if err != nil {
		return nil, err
	}
	return all[dev], nil
}

// DevicePresence is one device's presence over a span.
type DevicePresence struct {
	Device    Device
	Intervals []Interval
	// Total is the sum of the intervals' durations.
	Total time.Duration
}

// PresentBetween returns every device present at some time in
// [from, to), with its intervals clipped to it, ordered by device ID; the
// energy estimates multiply them by a power per class.
func (inv *Inventory) PresentBetween(ctx context.Context, from, to time.Time) ([]DevicePresence, error) {
	all, err := inv.intervals(ctx, "", nil, from, to)
	if err != nil {
		return nil, err
	}
	devs, err := inv.Devices(ctx)
	if err != nil {
		return nil, err
	}
	var out []DevicePresence
	for _, d := range devs {
		ivs := all[d.ID]
		if len(ivs) == 0 {
			continue
		}
		dp := DevicePresence{Device: d, Intervals: ivs}
		for _, iv := range ivs {
			dp.Total += iv.Duration()
		}
		out = append(out, dp)
	}
	slices.SortFunc(out, func(a, b DevicePresence) int { return strings.Compare(a.Device.ID, b.Device.ID) })
	return out, nil
}

// intervals reads the intervals overlapping [from, to) by device; the
// newest interval of a present device is open and runs until now.
func (inv *Inventory) intervals(ctx context.Context, where string, args []any, from, to time.Time) (map[string][]Interval, error) {
	if !from.Before(to) {
		return nil, nil
	}
	now := inv.now()
	cutoff := now.Add(-inv.cfg.PresenceTimeout).UnixMilli()
	// A present device's interval may end up to the presence timeout
	// before from and still be open: widen the query by it.
	args = append(args, from.UnixMilli()-inv.cfg.PresenceTimeout.Milliseconds(), to.UnixMilli()-1)
	rows, err := inv.db.QueryContext(ctx, `SELECT p.device, p.start_ms, p.end_ms, d.last_seen FROM inventory_presence p
		JOIN inventory_devices d ON d.id = p.device
		WHERE `+where+` p.end_ms >= ? AND p.start_ms <= ? ORDER BY p.device, p.start_ms`, args...)
	if err != nil {
		return nil, fmt.Errorf("inventory: presence: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]Interval)
	for rows.Next() {
		var dev string
		var s, e, last int64
		if err := rows.Scan(&dev, &s, &e, &last); err != nil {
			return nil, fmt.Errorf("inventory: presence: %w", err)
		}
		iv := Interval{Start: time.UnixMilli(s), End: time.UnixMilli(e)}
		if e == last && last >= cutoff { // the stay goes on
			iv.End, iv.Open = now, true
		}
		if !iv.Start.Before(to) || iv.End.Before(from) {
			continue
		}
		iv.Start, iv.End = maxTime(iv.Start, from), minTime(iv.End, to)
		out[dev] = append(out[dev], iv)
	}
	return out, rows.Err()
}

// loadPresent fills the set of present devices when Serve starts, so that
// the sweep announces those that leave.
func (inv *Inventory) loadPresent(ctx context.Context) error {
	cutoff := inv.now().Add(-inv.cfg.PresenceTimeout).UnixMilli()
	rows, err := inv.db.QueryContext(ctx, `SELECT id FROM inventory_devices WHERE last_seen >= ?`, cutoff)
	if err != nil {
		return fmt.Errorf("inventory: load present devices: %w", err)
	}
	defer rows.Close()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("inventory: load present devices: %w", err)
		}
		inv.present[id] = true
	}
	return rows.Err()
}

// sweepLoop runs sweep a few times per presence timeout.
func (inv *Inventory) sweepLoop(ctx context.Context) error {
	every := min(max(inv.cfg.PresenceTimeout/4, 500*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastRetention time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := inv.sweep(ctx); err != nil {
			inv.log.Warn("inventory: presence sweep", "err", err)
		}
		if now := inv.now(); now.Sub(lastRetention) > time.Hour {
			lastRetention = now
			if err := inv.applyRetention(ctx); err != nil {
				inv.log.Warn("inventory: presence retention", "err", err)
			}
		}
	}
}

// sweep announces the devices that left, and forgets caches of what is
// long gone.
func (inv *Inventory) sweep(ctx context.Context) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	now := inv.now()
	cutoff := now.Add(-inv.cfg.PresenceTimeout).UnixMilli()
	var gone []any
	for id := range inv.present {
		gone = append(gone, id)
	}
	if len(gone) > 0 {
		q := `SELECT ` + rowColumns + ` FROM inventory_devices WHERE last_seen < ? AND id IN (` +
			strings.TrimSuffix(strings.Repeat("?,", len(gone)), ",") + `)`
		rows, err := inv.db.QueryContext(ctx, q, append([]any{cutoff}, gone...)...)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		var left []deviceRow
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("sweep: %w", err)
			}
			left = append(left, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		var evs []Event
		for _, r := range left {
			delete(inv.present, r.id)
			macs, err := loadMACs(ctx, inv.db, r.id)
			if err != nil {
				return fmt.Errorf("sweep: %w", err)
			}
			evs = append(evs, Event{Kind: EventLeft, Device: inv.toDevice(r, macs, now)})
		}
		inv.publish(evs...)
	}
	for k, w := range inv.written {
		if now.Sub(w.seen) > 2*inv.cfg.PresenceTimeout {
			delete(inv.written, k)
		}
	}
	for ip, p := range inv.pending {
		if now.Sub(p.since) > pendingTTL {
			delete(inv.pending, ip)
		}
	}
	return nil
}

func (inv *Inventory) applyRetention(ctx context.Context) error {
	cutoff := inv.now().Add(-inv.cfg.RetainPresence).UnixMilli()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	_, err := inv.db.ExecContext(ctx, `DELETE FROM inventory_presence WHERE end_ms < ?`, cutoff)
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// macOf parses a canonical MAC; it is only called on stored values.
func macOf(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}
