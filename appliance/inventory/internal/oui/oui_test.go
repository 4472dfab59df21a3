package oui

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata holds a few rows of each registry of Debian's ieee-data
// (2022-08-27), multi-line quoted addresses and a parent block of each
// MA-M, MA-S and IAB block included.
func TestLoadAndLookup(t *testing.T) {
	tab, files, err := Load("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(files, " "), "oui.csv mam.csv oui36.csv iab.csv"; got != want {
		t.Errorf("files read: got %q, want %q", got, want)
	}
	tests := []struct {
		mac    string
		want   string
		wantOK bool
	}{
		{"00:80:77:12:34:56", "Brother industries, LTD.", true},
		{"3c:22:fb:aa:bb:01", "Apple, Inc.", true},
		{"6C-DC-6A-00-00-12", "Promethean Limited", true},
		{"c4:04:d8:00:00:01", "Aviva Links Inc.", true},                        // multi-line address
		{"3c:b0:7e:00:00:01", "Arounds Intelligent Equipment Co., Ltd.", true}, // five-line address
		{"70:b3:d5:f2:f1:23", "TELEPLATFORMS", true},                           // MA-S beats its MA-L parent
		{"70:b3:d5:00:00:01", "IEEE Registration Authority", true},             // MA-L parent
		{"20:85:93:b0:00:01", "IOG Products LLC", true},                        // MA-M
		{"20:85:93:80:00:01", "AASSET SECURITY", true},                         // MA-M
		{"20:85:93:f0:00:01", "IEEE Registration Authority", true},             // no MA-M row: parent
		{"74:1a:e0:90:00:01", "Private", true},                                 // a private MA-M
		{"00:50:c2:7d:51:00", "DEUTA-WERKE GmbH", true},                        // IAB
		{"00:00:01:00:00:01", "", false},                                       // not in the excerpt
		{"3e:22:fb:aa:bb:01", "", false},                                       // locally administered
		{"01:00:5e:00:00:fb", "", false},                                       // multicast
	}
	for _, tt := range tests {
		mac, err := net.ParseMAC(tt.mac)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := tab.Lookup(mac)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Lookup(%s) = %q, %v; want %q, %v", tt.mac, got, ok, tt.want, tt.wantOK)
		}
	}
	if got, want := tab.Len(), 20; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestLoadMissing(t *testing.T) {
	_, _, err := Load(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(empty folder) error = %v, want one wrapping fs.ErrNotExist", err)
	}
	// Only oui.csv is required.
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "oui.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oui.csv"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	tab, files, err := Load(dir)
	if err != nil || len(files) != 1 || tab.Len() != 14 {
		t.Errorf("Load(oui.csv only) = %d blocks, %v, %v; want 14 blocks, [oui.csv], nil", tab.Len(), files, err)
	}
}

func TestAddRows(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantAdded int
		wantErr   bool
	}{
		{"header only", "Registry,Assignment,Organization Name,Organization Address\n", 0, false},
		{"unknown registry skipped", "CID,0A0B0C,Someone,Somewhere\nMA-L,0A0B0C,Real,Here\n", 1, false},
		{"bad hex skipped", "MA-L,0G0B0C,Bad,x\nMA-L,0A0B0,Short,x\nMA-M,0A0B0C,Too short for MA-M,x\n", 0, false},
		{"empty name skipped", "MA-L,0A0B0C,  ,x\n", 0, false},
		{"name folded", "MA-L,0A0B0C,\"  Two\n  lines  \",x\n", 1, false},
		{"not a registry", strings.Repeat("some text, not a registry\n", 2000), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable()
			n, err := tab.Add(strings.NewReader(tt.in))
			if n != tt.wantAdded || (err != nil) != tt.wantErr {
				t.Errorf("Add = %d, %v; want %d, error %v", n, err, tt.wantAdded, tt.wantErr)
			}
		})
	}
	tab := NewTable()
	tab.Add(strings.NewReader("MA-L,0A0B0C,\"  Two\n  lines  \",x\n"))
	if got, _ := tab.Lookup(net.HardwareAddr{0x0a, 0x0b, 0x0c, 1, 2, 3}); got != "" {
		t.Errorf("locally administered 0a:… looked up as %q", got)
	}
	tab.Add(strings.NewReader("MA-L,080B0C,\"  Two\n  lines  \",x\n"))
	if got, _ := tab.Lookup(net.HardwareAddr{0x08, 0x0b, 0x0c, 1, 2, 3}); got != "Two lines" {
		t.Errorf("folded name = %q, want %q", got, "Two lines")
	}
}

// The Debian registries, when installed: every file parses without a
// refused row count and a few well-known blocks resolve.
func TestSystemRegistry(t *testing.T) {
	const dir = "/usr/share/ieee-data"
	if _, err := os.Stat(filepath.Join(dir, "oui.csv")); err != nil {
		t.Skip("ieee-data is not installed; the excerpt in testdata covers the parser")
	}
	tab, files, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() < 30000 || tab.Vendors() > tab.Len() {
		t.Errorf("%v: %d blocks, %d vendors; want more than 30000 blocks", files, tab.Len(), tab.Vendors())
	}
	if got, _ := tab.Lookup(net.HardwareAddr{0x00, 0x80, 0x77, 1, 2, 3}); !strings.Contains(strings.ToLower(got), "brother") {
		t.Errorf("00:80:77 = %q, want Brother", got)
	}
}

func FuzzAdd(f *testing.F) {
	for _, name := range Files {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("MA-L,0A0B0C,\"unterminated\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := NewTable()
		n, _ := tab.Add(bytes.NewReader(data))
		if n < tab.Len() {
			t.Fatalf("added %d rows but table has %d blocks", n, tab.Len())
		}
		for i, name := range tab.names {
			if name == "" || len(name) > maxNameLen || strings.TrimSpace(name) != name {
				t.Fatalf("name %d %q is not clean", i, name)
			}
		}
		// Every stored prefix looks up to its own name.
		for p, i := range tab.p24 {
			mac := net.HardwareAddr{byte(p >> 16), byte(p >> 8), byte(p), 0, 0, 0}
			if mac[0]&3 != 0 {
				continue
			}
			if got, ok := tab.Lookup(mac); !ok || got == "" {
				t.Fatalf("prefix %06x (name %q) not found", p, tab.names[i])
			}
		}
	})
}
