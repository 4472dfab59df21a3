// Package oui reads the IEEE registries of MAC address blocks, as Debian's
// ieee-data package ships them (oui.csv for MA-L, mam.csv for MA-M,
// oui36.csv for MA-S, iab.csv for the old IAB blocks), into a compact
// in-memory table keyed by prefix.
//
// The registries hold about 46 000 rows but far fewer distinct
// organisations (one vendor owns hundreds of blocks): the table stores
// each name once and maps a numeric prefix to its index, about 1 MB in
// all, instead of keeping the CSV rows.
//
// Only package inventory imports oui.
package oui

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Files are the registry files read from a folder, most general first.
// Only the first one (MA-L, the 24-bit blocks) is required.
var Files = []string{"oui.csv", "mam.csv", "oui36.csv", "iab.csv"}

// maxBadRows bounds how many malformed rows one file may have before it is
// refused as not being a registry at all.
const maxBadRows = 1000

// maxNameLen bounds an organisation name (the longest in the 2022
// registries is about 110 bytes).
const maxNameLen = 200

// Table maps MAC prefixes of 24, 28 and 36 bits to organisation names.
// The zero value is not usable: call NewTable. A Table is safe for
// concurrent lookups once filled.
type Table struct {
	names  []string
	index  map[string]uint32
	p24    map[uint32]uint32
	p28    map[uint32]uint32
	p36    map[uint64]uint32
	blocks int
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{
		index: make(map[string]uint32),
		p24:   make(map[uint32]uint32),
		p28:   make(map[uint32]uint32),
		p36:   make(map[uint64]uint32),
	}
}

// Len returns the number of blocks in the table.
func (t *Table) Len() int { return t.blocks }

// Vendors returns the number of distinct organisation names.
func (t *Table) Vendors() int { return len(t.names) }

// Load reads the registry files of dir into a new table. A missing oui.csv
// is an error that wraps fs.ErrNotExist; the other files are optional.
// It returns the names of the files read.
func Load(dir string) (*Table, []string, error) {
	t := NewTable()
	var read []string
	for i, name := range Files {
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) && i > 0 {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read ieee registry: %w", err)
		}
		_, err = t.Add(bufio.NewReaderSize(f, 64<<10))
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("read ieee registry %s: %w", p, err)
		}
		read = append(read, name)
	}
	return t, read, nil
}

// Add reads one registry in CSV form (header "Registry,Assignment,
// Organization Name,Organization Address") and adds its blocks. Rows of
// an unknown registry or with a malformed assignment are skipped; a file
// with too many of them is refused. It returns the number of blocks added.
func (t *Table) Add(r io.Reader) (int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	added, bad := 0, 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return added, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return added, err
			}
			if bad++; bad > maxBadRows {
				return added, fmt.Errorf("not an ieee registry: %w", err)
			}
			continue
		}
		if len(rec) > 0 && strings.EqualFold(rec[0], "Registry") {
			continue // the header
		}
		if len(rec) < 3 || !t.addRow(rec[0], rec[1], rec[2]) {
			if bad++; bad > maxBadRows {
				return added, errors.New("not an ieee registry: too many malformed rows")
			}
			continue
		}
		added++
	}
}

func (t *Table) addRow(registry, assignment, org string) bool {
	var digits int
	switch strings.TrimSpace(registry) {
	case "MA-L":
		digits = 6
	case "MA-M":
		digits = 7
	case "MA-S", "IAB":
		digits = 9
	default:
		return false
	}
	assignment = strings.TrimSpace(assignment)
	if len(assignment) != digits {
		return false
	}
	v, err := strconv.ParseUint(assignment, 16, 64)
	if err != nil {
		return false
	}
	name := cleanName(org)
	if name == "" {
		return false
	}
	idx, ok := t.index[name]
	if !ok {
		idx = uint32(len(t.names))
		t.names = append(t.names, name)
		t.index[name] = idx
	}
	var fresh bool
	switch digits {
	case 6:
		_, dup := t.p24[uint32(v)]
		t.p24[uint32(v)], fresh = idx, !dup
	case 7:
		_, dup := t.p28[uint32(v)]
		t.p28[uint32(v)], fresh = idx, !dup
	case 9:
		_, dup := t.p36[v]
		t.p36[v], fresh = idx, !dup
	}
	if fresh {
		t.blocks++
	}
	return true
}

// cleanName trims a name, folds inner runs of white space, drops control
// characters and invalid UTF-8 and bounds its length.
func cleanName(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r < 0x20 || r == 0x7f
	}), " ")
	if len(s) > maxNameLen {
		cut := maxNameLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}

// Lookup returns the organisation that registered the block of mac, most
// specific block first (36, then 28, then 24 bits). Locally administered
// and group addresses have no registered owner: ok is false for them.
func (t *Table) Lookup(mac net.HardwareAddr) (name string, ok bool) {
	if t == nil || len(mac) < 6 || mac[0]&0x03 != 0 {
		return "", false
	}
	p24 := uint32(mac[0])<<16 | uint32(mac[1])<<8 | uint32(mac[2])
	p36 := uint64(p24)<<12 | uint64(mac[3])<<4 | uint64(mac[4]>>4)
	if i, ok := t.p36[p36]; ok {
		return t.names[i], true
	}
	if i, ok := t.p28[p24<<4|uint32(mac[3]>>4)]; ok {
		return t.names[i], true
	}
	if i, ok := t.p24[p24]; ok {
		return t.names[i], true
	}
	return "", false
}
