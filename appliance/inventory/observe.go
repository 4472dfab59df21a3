package inventory

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Source says where an observation comes from.
type Source string

// Sources. Serve feeds the first two; appliance passes the others.
const (
	SourceNeighbour Source = "neighbour" // kernel neighbour table
	SourceMDNS      Source = "mdns"      // DNS-SD browsing
	SourceDHCP      Source = "dhcp"      // the box's DHCP server
	SourceCaptive   Source = "captive"   // a captive-portal acceptance
	SourcePortal    Source = "portal"    // a request to the portal (User-Agent)
)

const numSources = 5

var sourceIndex = map[Source]int{SourceNeighbour: 0, SourceMDNS: 1, SourceDHCP: 2, SourceCaptive: 3, SourcePortal: 4}

// Observation is one sighting of a device. Every field but Source and one
// of MAC or IP is optional.
type Observation struct {
	// MAC is the device's hardware address. When nil, IP must be set: the
	// MAC is then looked up in the neighbour table (while Serve runs) or
	// among devices seen recently with that address; an observation that
	// cannot be resolved yet waits up to two minutes for the neighbour
	// table to show the address.
	MAC net.HardwareAddr
	// IP is the address the device used.
	IP netip.Addr
	// Hostname is the host name the device gave (DHCP option 12).
	Hostname string
	// ClientID is the DHCP client identifier (option 61), in hex.
	ClientID string
	// Source is where the observation comes from.
	Source Source
	// UserAgent is the HTTP User-Agent the device's browser sent.
	UserAgent string
	// Services are DNS-SD service types the device announces, e.g.
	// "_ipp._tcp".
	Services []string
	// Hints are TXT model hints (ty, product, usb_MFG, usb_MDL, model,
	// md, am, fn…); unknown keys are ignored.
	Hints map[string]string
	// Name is a human name the device announces (a DNS-SD instance).
	Name string
	// At is when the device was seen; zero means now.
	At time.Time
}

// observation is an Observation checked and normalised, with what only
// the collectors know.
type observation struct {
	Observation
	mac        string // canonical, "" until resolved
	mdnsHost   string // DNS-SD host name, e.g. imprimante.local
	neighState string // kernel neighbour state, for SourceNeighbour
}

// Bounds on what an observation may carry: the strings come from the
// devices themselves and are untrusted.
const (
	maxHostname = 253
	maxText     = 128
	maxUA       = 512
	maxServices = 32
	maxHints    = 16
	maxClientID = 128
)

// hintKeys are the TXT keys kept as model hints, lower case (TXT keys are
// case-insensitive, RFC 6763 §6.4).
var hintKeys = map[string]bool{
	"ty": true, "product": true, "usb_mfg": true, "usb_mdl": true, "mfg": true, "mdl": true,
	"model": true, "md": true, "am": true, "fn": true, "manufacturer": true,
	"version": true, "uai": true,
}

// Observe records a sighting of a device. appliance calls it from the DHCP
// server (MAC, IP, Hostname, ClientID), on captive-portal acceptances
// (MAC, IP) and for the User-Agents the portal sees (IP, UserAgent); Serve
// calls it for the neighbour table and DNS-SD. It returns ErrBadMAC when
// neither a usable MAC nor an IP is given.
func (inv *Inventory) Observe(ctx context.Context, o Observation) error {
	ob, err := inv.prepare(o)
	if err != nil {
		return err
	}
	return inv.observe(ctx, ob)
}

func (inv *Inventory) observe(ctx context.Context, ob observation) error {
	inv.observed[sourceIndex[ob.Source]].Add(1)
	if ob.mac == "" {
		mac, ok := inv.resolveMAC(ctx, ob.IP)
		if !ok {
			inv.pend(ob)
			return nil
		}
		ob.mac = mac
	}
	evs, err := inv.record(ctx, ob)
	inv.publish(evs...)
	return err
}

// prepare checks and normalises an observation.
func (inv *Inventory) prepare(o Observation) (observation, error) {
	ob := observation{Observation: o}
	if _, ok := sourceIndex[o.Source]; !ok {
		return ob, fmt.Errorf("inventory: observe: unknown source %q", o.Source)
	}
	ob.IP = o.IP.Unmap()
	if ob.IP.IsValid() && (ob.IP.IsUnspecified() || ob.IP.IsLoopback() || ob.IP.IsMulticast()) {
		ob.IP = netip.Addr{}
	}
	if ob.IP.Is6() {
		ob.IP = ob.IP.WithZone("")
	}
	if len(o.MAC) > 0 {
		mac, err := canonicalMAC(o.MAC)
		if err != nil {
			return ob, err
		}
		ob.mac = mac
	} else if !ob.IP.IsValid() {
		return ob, fmt.Errorf("%w: an observation needs a MAC or an IP address", ErrBadMAC)
	}
	now := inv.now()
	if ob.At.IsZero() || ob.At.After(now) {
		ob.At = now
	}
	ob.Hostname = strings.TrimSuffix(cleanText(o.Hostname, maxHostname), ".")
	ob.ClientID = cleanClientID(o.ClientID)
	ob.UserAgent = cleanText(o.UserAgent, maxUA)
	ob.Name = cleanText(o.Name, maxText)
	ob.Services = nil
	for _, s := range o.Services {
		if serviceType.MatchString(s) && !slices.Contains(ob.Services, s) && len(ob.Services) < maxServices {
			ob.Services = append(ob.Services, s)
		}
	}
	slices.Sort(ob.Services)
	ob.Hints = nil
	for k, v := range o.Hints {
		k = strings.ToLower(k)
		if v = cleanText(v, maxText); hintKeys[k] && v != "" {
			if ob.Hints == nil {
				ob.Hints = make(map[string]string)
			}
			ob.Hints[k] = v
		}
	}
	return ob, nil
}

// canonicalMAC returns mac as "aa:bb:cc:dd:ee:ff", refusing what cannot
// name one device: other lengths, group addresses and all zeros.
func canonicalMAC(mac net.HardwareAddr) (string, error) {
	if len(mac) != 6 || mac[0]&0x01 != 0 || string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return "", fmt.Errorf("%w: %v", ErrBadMAC, mac)
	}
	return mac.String(), nil
}

// parseMAC reads a MAC in any of the forms net.ParseMAC accepts.
func parseMAC(s string) (string, error) {
	mac, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%w: %q", ErrBadMAC, s)
	}
	return canonicalMAC(mac)
}

// isRandomised reports whether a canonical MAC is locally administered.
func isRandomised(mac string) bool {
	b, err := hex.DecodeString(mac[:2])
	return err == nil && b[0]&0x02 != 0
}

// cleanText makes an untrusted string safe to store and show: valid UTF-8,
// no control characters, trimmed, at most max bytes.
func cleanText(s string, max int) string {
	if len(s) > 4*max {
		s = s[:4*max]
	}
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if isControl(r) || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}

func cleanClientID(s string) string {
	s = strings.ToLower(strings.NewReplacer(":", "", "-", "", " ", "").Replace(s))
	if s == "" || len(s) > maxClientID {
		return ""
	}
	if _, err := hex.DecodeString(s); err != nil {
		return ""
	}
	return s
}

// signature summarises what an observation says besides the time, to
// skip writing a repeat.
func (ob observation) signature() uint64 {
	h := fnv.New64a()
	for _, s := range []string{ob.IP.String(), ob.Hostname, ob.ClientID, ob.UserAgent, ob.Name, ob.mdnsHost, ob.neighState,
		strings.Join(ob.Services, ","), hintString(ob.Hints)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func hintString(h map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(h)) {
		b.WriteString(k + "=" + h[k] + "\x00")
	}
	return b.String()
}

// writtenObs remembers the last observation written for one MAC and
// source.
type writtenObs struct {
	sig    uint64
	seen   time.Time
	device string
}

// record writes an observation whose MAC is known and returns the events
// it causes.
func (inv *Inventory) record(ctx context.Context, ob observation) ([]Event, error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	key := ob.mac + "|" + string(ob.Source)
	sig := ob.signature()
	if w, ok := inv.written[key]; ok && w.sig == sig && !ob.At.Before(w.seen) && ob.At.Sub(w.seen) < inv.writeGranularity() && inv.present[w.device] {
		return nil, nil // nothing new
	}
	now := inv.now()

	tx, err := inv.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("inventory: record %s: %w", ob.mac, err)
	}
	defer tx.Rollback()
	dev, created, err := inv.deviceFor(ctx, tx, ob)
	if err != nil {
		return nil, fmt.Errorf("inventory: record %s: %w", ob.mac, err)
	}
	row, err := loadRow(ctx, tx, dev)
	if err != nil {
		return nil, fmt.Errorf("inventory: record %s: %w", ob.mac, err)
	}
	before := row.clone()
	row.merge(ob)
	if err := row.save(ctx, tx); err != nil {
		return nil, fmt.Errorf("inventory: record %s: %w", ob.mac, err)
	}
	gap := inv.cfg.PresenceTimeout.Milliseconds()
	if err := extendPresence(ctx, tx, dev, ob.At.UnixMilli(), gap); err != nil {
		return nil, fmt.Errorf("inventory: record %s: presence: %w", ob.mac, err)
	}
	macs, err := loadMACs(ctx, tx, dev)
	if err != nil {
		return nil, fmt.Errorf("inventory: record %s: %w", ob.mac, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("inventory: record %s: commit: %w", ob.mac, err)
	}
	inv.written[key] = writtenObs{sig: sig, seen: ob.At, device: dev}

	after := inv.toDevice(row, macs, now)
	wasPresent, known := inv.present[dev]
	if !known {
		wasPresent = !created && inv.isPresent(before.lastSeen, now)
	}
	switch {
	case after.Present && !wasPresent:
		inv.present[dev] = true
		return []Event{{Kind: EventAppeared, Device: after}}, nil
	case !created && summary(inv.toDevice(before, macs, now)) != summary(after):
		return []Event{{Kind: EventChanged, Device: after}}, nil
	}
	return nil, nil
}

func (inv *Inventory) isPresent(lastSeen, now time.Time) bool {
	return !lastSeen.IsZero() && now.Sub(lastSeen) <= inv.cfg.PresenceTimeout
}

// summary is what a "changed" event is about.
func summary(d Device) string {
	return strings.Join([]string{d.Name, string(d.Class), d.Vendor, d.Model, d.OS, d.IP,
		strings.Join(d.Services, ","), strings.Join(d.MACs, ",")}, "\x00")
}

// deviceFor returns the device of ob's MAC, creating it (or linking a
// randomised MAC to an existing device) when the MAC is new.
func (inv *Inventory) deviceFor(ctx context.Context, tx *sql.Tx, ob observation) (string, bool, error) {
	at := ob.At.UnixMilli()
	var dev string
	err := tx.QueryRowContext(ctx, `SELECT device FROM inventory_macs WHERE mac = ?`, ob.mac).Scan(&dev)
	switch {
	case err == nil:
		_, err = tx.ExecContext(ctx, `UPDATE inventory_macs SET last_seen = max(last_seen, ?), first_seen = min(first_seen, ?) WHERE mac = ?`, at, at, ob.mac)
		return dev, false, err
	case !errors.Is(err, sql.ErrNoRows):
		return "", false, err
	}
	random := isRandomised(ob.mac)
	created := false
	if random {
		var why string
		if dev, why, err = inv.linkRandom(ctx, tx, ob); err != nil {
			return "", false, err
		}
		if dev != "" {
			inv.log.Info("inventory: randomised MAC linked to a known device", "mac", ob.mac, "device", dev, "hint", why)
		}
	}
	if dev == "" {
		dev, created = ob.mac, true
		if _, err := tx.ExecContext(ctx, `INSERT INTO inventory_devices (id, randomised, first_seen, last_seen, last_mac) VALUES (?, ?, ?, ?, ?)`,
			dev, random, at, at, ob.mac); err != nil {
			return "", false, err
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO inventory_macs (mac, device, first_seen, last_seen) VALUES (?, ?, ?, ?)`, ob.mac, dev, at, at)
	return dev, created, err
}

// simultaneous: a device seen under another MAC less than this long
// before a new MAC appears is another device, whatever the hints say.
const simultaneous = time.Minute

// linkRandom decides whether a new randomised MAC belongs to a device
// already known. The rule, deliberately narrow:
//
//   - only an observation that carries a stable hint with the MAC's first
//     sighting can link it: the same DHCP client identifier, else the same
//     distinctive host name (see distinctiveName: "iPad", "Galaxy-Tab-A7",
//     "android", "DESKTOP" are not hints, "iPad-de-Lucie" is);
//   - the hint must match exactly one device, itself on randomised MACs
//     (a device with a universal MAC is identified by it);
//   - that device must not have been seen in the last minute under its
//     other MAC, since one device is not in two places at once.
//
// Otherwise the MAC is a new device. Devices are never merged afterwards:
// a MAC first seen without its hint (e.g. in the neighbour table before
// the DHCP server reports the host name) stays its own device.
func (inv *Inventory) linkRandom(ctx context.Context, tx *sql.Tx, ob observation) (string, string, error) {
	try := func(query, arg, why string) (string, error) {
		rows, err := tx.QueryContext(ctx, query, arg)
		if err != nil {
			return "", err
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			var last int64
			if err := rows.Scan(&id, &last); err != nil {
				return "", err
			}
			if ob.At.Sub(time.UnixMilli(last)) < simultaneous {
				inv.log.Debug("inventory: hint matches a device seen just now; not linked", "mac", ob.mac, "device", id, "hint", why)
				return "", rows.Err()
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil || len(ids) != 1 {
			return "", err
		}
		return ids[0], nil
	}
	if ob.ClientID != "" {
		id, err := try(`SELECT id, last_seen FROM inventory_devices WHERE randomised = 1 AND client_id = ? LIMIT 2`, ob.ClientID, "client-id")
		if err != nil || id != "" {
			return id, "client-id", err
		}
	}
	if distinctiveName(ob.Hostname) {
		id, err := try(`SELECT id, last_seen FROM inventory_devices WHERE randomised = 1 AND hostname = ? COLLATE NOCASE LIMIT 2`, ob.Hostname, "hostname")
		if err != nil || id != "" {
			return id, "hostname", err
		}
	}
	return "", "", nil
}

// genericWords are host name parts that many devices share: model and
// brand names, system defaults, and French and English filler words.
var genericWords = map[string]bool{
	"ipad": true, "iphone": true, "ipod": true, "mac": true, "macbook": true, "air": true, "pro": true, "imac": true,
	"mini": true, "max": true, "plus": true, "note": true, "lite": true, "ultra": true, "book": true, "surface": true, "android": true, "galaxy": true, "tab": true, "samsung": true,
	"redmi": true, "xiaomi": true, "huawei": true, "honor": true, "oppo": true, "realme": true, "pixel": true,
	"oneplus": true, "nokia": true, "motorola": true, "moto": true, "lenovo": true, "tablet": true, "tablette": true,
	"phone": true, "telephone": true, "laptop": true, "desktop": true, "pc": true, "portable": true, "windows": true,
	"chromebook": true, "localhost": true, "unknown": true, "inconnu": true, "linux": true, "debian": true,
	"ubuntu": true, "raspberrypi": true, "kindle": true, "fire": true, "de": true, "du": true, "la": true,
	"le": true, "les": true, "of": true, "s": true, "the": true, "my": true, "mon": true, "ma": true,
}

var nameToken = regexp.MustCompile(`[a-z0-9]+`)

// distinctiveName reports whether a host name says more than a model or a
// system default: it has a part that is not a generic word, not a number
// and not a short model code with digits (a7, s9, 10e).
func distinctiveName(name string) bool {
	for _, tok := range nameToken.FindAllString(strings.ToLower(name), -1) {
		if genericWords[tok] || len(tok) < 2 {
			continue
		}
		if strings.ContainsAny(tok, "0123456789") && len(tok) <= 4 {
			continue
		}
		if strings.Trim(tok, "0123456789") == "" {
			continue
		}
		return true
	}
	return false
}

// extendPresence adds the sighting at (unix ms) to the device's presence
// intervals: it merges every interval closer than gap to it into one.
// Intervals are disjoint and more than gap apart, so at most a few
// (the newest that start before at+gap) can touch the window.
func extendPresence(ctx context.Context, tx *sql.Tx, dev string, at, gap int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT start_ms, end_ms FROM inventory_presence
		WHERE device = ? AND start_ms <= ? ORDER BY start_ms DESC LIMIT 4`, dev, at+gap)
	if err != nil {
		return err
	}
	var touch [][2]int64
	for rows.Next() {
		var s, e int64
		if err := rows.Scan(&s, &e); err != nil {
			rows.Close()
			return err
		}
		if e < at-gap {
			break
		}
		touch = append(touch, [2]int64{s, e})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	switch {
	case len(touch) == 0:
		_, err := tx.ExecContext(ctx, `INSERT INTO inventory_presence (device, start_ms, end_ms) VALUES (?, ?, ?)`, dev, at, at)
		return err
	case len(touch) == 1 && touch[0][0] <= at && at <= touch[0][1]:
		return nil
	case len(touch) == 1 && touch[0][0] <= at:
		_, err := tx.ExecContext(ctx, `UPDATE inventory_presence SET end_ms = ? WHERE device = ? AND start_ms = ?`, at, dev, touch[0][0])
		return err
	}
	start, end := at, at
	for _, iv := range touch {
		start, end = min(start, iv[0]), max(end, iv[1])
		if _, err := tx.ExecContext(ctx, `DELETE FROM inventory_presence WHERE device = ? AND start_ms = ?`, dev, iv[0]); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO inventory_presence (device, start_ms, end_ms) VALUES (?, ?, ?)`, dev, start, end)
	return err
}

// pendingObs are observations waiting for the neighbour table to give
// their address's MAC.
type pendingObs struct {
	obs   []observation
	since time.Time
}

type pendingKey = netip.Addr

const (
	maxPendingAddrs = 512
	maxPendingPer   = 4
	pendingTTL      = 2 * time.Minute
)

func (inv *Inventory) pend(ob observation) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	p, ok := inv.pending[ob.IP]
	if !ok && len(inv.pending) >= maxPendingAddrs || len(p.obs) >= maxPendingPer {
		inv.dropped.Add(1)
		return
	}
	if !ok {
		p.since = inv.now()
	}
	p.obs = append(p.obs, ob)
	inv.pending[ob.IP] = p
}

// flushPending records the observations that waited for ip, now known to
// be mac.
func (inv *Inventory) flushPending(ctx context.Context, ip netip.Addr, mac string) {
	inv.mu.Lock()
	p, ok := inv.pending[ip]
	delete(inv.pending, ip)
	inv.mu.Unlock()
	if !ok {
		return
	}
	for _, ob := range p.obs {
		ob.mac = mac
		evs, err := inv.record(ctx, ob)
		if err != nil {
			inv.log.Warn("inventory: record a delayed observation", "ip", ip, "err", err)
		}
		inv.publish(evs...)
	}
}

// resolveMAC finds the MAC of ip: in the neighbour table while Serve runs,
// else among devices seen with that address within the presence timeout.
// When the table lacks it, a datagram to the address (discard port) makes
// the kernel resolve it, and the observation waits.
func (inv *Inventory) resolveMAC(ctx context.Context, ip netip.Addr) (string, bool) {
	lv := inv.lan.Load()
	if lv != nil {
		if mac, ok := lv.macFor(ip); ok {
			return mac, true
		}
	}
	col := "ipv4"
	if ip.Is6() {
		col = "ipv6"
	}
	var mac string
	var last int64
	err := inv.db.QueryRowContext(ctx, `SELECT last_mac, last_seen FROM inventory_devices WHERE `+col+` = ? ORDER BY last_seen DESC LIMIT 1`,
		ip.String()).Scan(&mac, &last)
	if err == nil && inv.isPresent(time.UnixMilli(last), inv.now()) {
		return mac, true
	}
	if lv != nil {
		lv.nudge(ip)
	}
	return "", false
}

// jsonList and jsonMap read the JSON columns; a damaged value reads as
// empty rather than hiding the device.
func jsonList(s string) []string {
	var v []string
	if json.Unmarshal([]byte(s), &v) != nil {
		return nil
	}
	return v
}

func jsonMap(s string) map[string]string {
	var v map[string]string
	if json.Unmarshal([]byte(s), &v) != nil {
		return nil
	}
	return v
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}
