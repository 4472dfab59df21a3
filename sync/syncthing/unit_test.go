package syncthing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testDeviceID = "DNBYB5I-NABDZKR-ZC23OZF-B3MUFHS-UNYBWNU-OGBJ4YW-W7MUOFA-X4AAVQY"

func TestDeviceIDFromCert(t *testing.T) {
	want, err := os.ReadFile("testdata/cert.deviceid") // printed by `syncthing --device-id`
	if err != nil {
		t.Fatal(err)
	}
	got, err := deviceIDFromCert("testdata/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Errorf("device id %s, want %s", got, want)
	}
}

func TestCanonicalDeviceID(t *testing.T) {
	tests := []struct {
		in, want string // want "" for a refusal
	}{
		{testDeviceID, testDeviceID},
		{strings.ToLower(testDeviceID), testDeviceID},
		{strings.ReplaceAll(testDeviceID, "-", ""), testDeviceID},
		{strings.ReplaceAll(testDeviceID, "-", " "), testDeviceID},
		{"  " + testDeviceID + "\n", testDeviceID},
		{strings.Replace(testDeviceID, "DNBYB5I", "DNBYB5J", 1), ""}, // typo: check character
		{strings.Replace(testDeviceID, "DNBYB5I", "DNBYB51", 1), ""}, // 1 is not base32
		{testDeviceID[:60], ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := canonicalDeviceID(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("canonicalDeviceID(%q) = %q, want a refusal", tt.in, got)
		case tt.want != "" && (err != nil || got != tt.want):
			t.Errorf("canonicalDeviceID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Home: "/var/lib/preau/syncthing", FolderPath: "/var/lib/preau/outbox", Peers: []Peer{{DeviceID: testDeviceID, Address: "academie.example.org:22000"}}}
	with := func(edit func(c *Config)) Config {
		c := ok
		c.Peers = append([]Peer(nil), ok.Peers...)
		edit(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"ok", ok, ""},
		{"no peers", with(func(c *Config) { c.Peers = nil }), ""},
		{"peer dials us", with(func(c *Config) { c.Peers[0].Address = "" }), ""},
		{"tcp url", with(func(c *Config) { c.Peers[0].Address = "tcp://192.0.2.1:22000" }), ""},
		{"tcp gui", with(func(c *Config) { c.GUIAddr = "127.0.0.1:8384" }), ""},
		{"relative home", with(func(c *Config) { c.Home = "syncthing" }), "home"},
		{"no folder", with(func(c *Config) { c.FolderPath = "" }), "folder path"},
		{"same folders", with(func(c *Config) { c.FolderPath = c.Home + "/" }), "differ"},
		{"bad folder id", with(func(c *Config) { c.FolderID = "../x" }), "folder id"},
		{"bad listen", with(func(c *Config) { c.ListenAddr = "22000" }), "listen addr"},
		{"listen on a name", with(func(c *Config) { c.ListenAddr = "box.local:22000" }), "listen addr"},
		{"gui not loopback", with(func(c *Config) { c.GUIAddr = "0.0.0.0:8384" }), "gui addr"},
		{"gui without port", with(func(c *Config) { c.GUIAddr = "127.0.0.1:0" }), "gui addr"},
		{"long home for the socket", with(func(c *Config) { c.Home = "/" + strings.Repeat("d", 100) }), "too long"},
		{"bad peer id", with(func(c *Config) { c.Peers[0].DeviceID = "ABC" }), "peer 1 device id"},
		{"duplicate peer", with(func(c *Config) { c.Peers = append(c.Peers, Peer{DeviceID: strings.ToLower(testDeviceID)}) }), "twice"},
		{"bad peer address", with(func(c *Config) { c.Peers[0].Address = "https://x/y" }), "peer 1 address"},
		{"negative cap", with(func(c *Config) { c.MaxSendKiBps = -1 }), "negative"},
		{"restart delays", with(func(c *Config) { c.MinRestartDelay, c.MaxRestartDelay = 2, 1 }), "restart delay"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg, nil)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: got %v, want no error", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
}

// parsedConfig is the part of config.xml the rewrite must set.
type parsedConfig struct {
	Devices []struct {
		ID   string `xml:"id,attr"`
		Name string `xml:"name,attr"`
	} `xml:"device"`
	GUI struct {
		Enabled string `xml:"enabled,attr"`
		TLS     string `xml:"tls,attr"`
		Address string `xml:"address"`
		APIKey  string `xml:"apikey"`
		Theme   string `xml:"theme"`
	} `xml:"gui"`
	Options struct {
		Listen   []string `xml:"listenAddress"`
		Global   string   `xml:"globalAnnounceEnabled"`
		Local    string   `xml:"localAnnounceEnabled"`
		Relays   string   `xml:"relaysEnabled"`
		NAT      string   `xml:"natEnabled"`
		STUN     string   `xml:"stunKeepaliveStartS"`
		Browser  string   `xml:"startBrowser"`
		UR       string   `xml:"urAccepted"`
		Crash    string   `xml:"crashReportingEnabled"`
		Upgrade  string   `xml:"autoUpgradeIntervalH"`
		LANAddrs string   `xml:"announceLANAddresses"`
		MaxSend  string   `xml:"maxSendKbps"`
		Untouch  string   `xml:"keepTemporariesH"`
	} `xml:"options"`
	Defaults struct {
		Folder struct {
			Path string `xml:"path,attr"`
		} `xml:"folder"`
	} `xml:"defaults"`
}

// TestRewriteConfig rewrites the config.xml that Debian's syncthing
// 1.19.2 generates and checks every enforced value, that the rest is kept,
// and that a second rewrite changes nothing.
func TestRewriteConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/generated-config.xml")
	if err != nil {
		t.Fatal(err)
	}
	st := settings{
		deviceID: testDeviceID, deviceName: "École Dax",
		listen: "tcp://127.0.0.1:22001", guiAddress: "/var/lib/preau/syncthing/gui.sock",
		apiKey: "k3y", options: safeOptions("tcp://127.0.0.1:22001", 250, 0),
	}
	// A second listen address, as a technician might add in the GUI.
	data = bytes.Replace(data, []byte("<listenAddress>default</listenAddress>"), []byte("<listenAddress>default</listenAddress><listenAddress>quic://0.0.0.0:22000</listenAddress>"), 1)
	out, err := rewriteConfig(data, st)
	if err != nil {
		t.Fatal(err)
	}
	var c parsedConfig
	if err := xml.Unmarshal(out, &c); err != nil {
		t.Fatalf("rewritten config does not parse: %v\n%s", err, out)
	}
	o := c.Options
	checks := []struct{ what, got, want string }{
		{"own device name", c.Devices[0].Name, "École Dax"},
		{"gui enabled", c.GUI.Enabled, "true"},
		{"gui tls", c.GUI.TLS, "false"},
		{"gui address", c.GUI.Address, st.guiAddress},
		{"api key", c.GUI.APIKey, "k3y"},
		{"gui theme kept", c.GUI.Theme, "default"},
		{"listen", strings.Join(o.Listen, ","), "tcp://127.0.0.1:22001"},
		{"global discovery", o.Global, "false"},
		{"local discovery", o.Local, "false"},
		{"relays", o.Relays, "false"},
		{"nat", o.NAT, "false"},
		{"stun", o.STUN, "0"},
		{"browser", o.Browser, "false"},
		{"usage reporting", o.UR, "-1"},
		{"crash reporting", o.Crash, "false"},
		{"auto upgrade", o.Upgrade, "0"},
		{"LAN addresses", o.LANAddrs, "false"},
		{"send cap", o.MaxSend, "250"},
		{"other options kept", o.Untouch, "24"},
		{"defaults kept", c.Defaults.Folder.Path, "~"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %q, want %q", ck.what, ck.got, ck.want)
		}
	}
	again, err := rewriteConfig(out, st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("a second rewrite changed the file")
	}

	// Elements missing from an older file are added.
	old := bytes.Replace(data, []byte("<crashReportingEnabled>true</crashReportingEnabled>"), nil, 1)
	old = bytes.Replace(old, []byte("<apikey>key-of-a-throwaway-test-home</apikey>"), nil, 1)
	out, err = rewriteConfig(old, st)
	if err != nil {
		t.Fatal(err)
	}
	c = parsedConfig{}
	if err := xml.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	if c.Options.Crash != "false" || c.GUI.APIKey != "k3y" {
		t.Errorf("missing elements not added: crash reporting %q, api key %q", c.Options.Crash, c.GUI.APIKey)
	}

	if _, err := rewriteConfig([]byte("<configuration></configuration>"), st); err == nil {
		t.Error("a file without <gui> and <options> was accepted")
	}
}

// TestPrepareConfigKey: the API key is made once, random, kept across
// starts, and the file stays 0600.
func TestPrepareConfigKey(t *testing.T) {
	home := t.TempDir()
	data, err := os.ReadFile("testdata/generated-config.xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, configName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Home: home, FolderPath: filepath.Join(home, "..", "outbox")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := settings{listen: "tcp://127.0.0.1:1", guiAddress: "/x", options: safeOptions("tcp://127.0.0.1:1", 0, 0)}
	k1, err := s.prepareConfig(st)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.prepareConfig(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 43 || k1 != k2 || k1 == "key-of-a-throwaway-test-home" {
		t.Errorf("keys %q then %q: want one new 43-character key kept", k1, k2)
	}
	fi, err := os.Stat(filepath.Join(home, configName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config.xml mode %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestValidPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"nuage-6a/Devoirs/Léa/copie.pdf", true},
		{"a.pdf", true},
		{"", false},
		{"/etc/passwd", false},
		{"a/../b", false},
		{".stignore", false},
		{".stfolder/x", false},
		{".preau-tmp/abc", false},
		{"a/.syncthing.b.tmp", false},
		{"a/~syncthing~b.tmp", false},
		{`a\b`, false},
		{"a\x00b", false},
		{"a//b", false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		if got := validPath(tt.path); got != tt.want {
			t.Errorf("validPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	err := newError(CodeConflict, "a/b.pdf", nil)
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrNotRunning) {
		t.Errorf("errors.Is does not match by code: %v", err)
	}
	if !strings.Contains(err.Error(), "« a/b.pdf »") || !strings.Contains(err.English(), `"a/b.pdf"`) {
		t.Errorf("texts %q / %q", err.Error(), err.English())
	}
}

// TestPutOffline: Put needs no running Syncthing. It names files
// atomically, never overwrites, and refuses bytes that do not match.
func TestPutOffline(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	s, err := New(Config{Home: filepath.Join(base, "home"), FolderPath: filepath.Join(base, "outbox")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("copie de Léa")
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	name := "nuage-6a/Devoirs/Léa/copie.pdf"
	tests := []struct {
		name     string
		path     string
		data     []byte
		size     int64
		sum      string
		wantCode string // "" for success, "-" for a plain error
	}{
		{"first put", name, body, int64(len(body)), h, ""},
		{"same again", name, body, int64(len(body)), h, ""},
		{"other content, same name", name, []byte("autre"), 5, strings.Repeat("a", 64), CodeConflict},
		{"wrong hash", "b.pdf", body, int64(len(body)), strings.Repeat("b", 64), CodeMismatch},
		{"short body", "c.pdf", body[:3], int64(len(body)), h, CodeMismatch},
		{"long body", "d.pdf", append(body, 'x'), int64(len(body)), h, CodeMismatch},
		{"traversal", "../evil", body, int64(len(body)), h, CodeBadPath},
		{"hidden", ".stignore", body, int64(len(body)), h, CodeBadPath},
		{"upper-case hash", "e.pdf", body, int64(len(body)), strings.ToUpper(h), "-"},
	}
	for _, tt := range tests {
		err := s.Put(ctx, tt.path, bytes.NewReader(tt.data), tt.size, tt.sum)
		var se *Error
		switch {
		case tt.wantCode == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantCode == "-" && (err == nil || errors.As(err, &se)):
			t.Errorf("%s: got %v, want a plain error", tt.name, err)
		case tt.wantCode != "" && tt.wantCode != "-" && (!errors.As(err, &se) || se.Code != tt.wantCode):
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.wantCode)
		}
	}
	got, err := os.ReadFile(filepath.Join(base, "outbox", filepath.FromSlash(name)))
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("file holds %q, %v; want %q", got, err, body)
	}
	for _, p := range []string{"b.pdf", "c.pdf", "d.pdf", "e.pdf"} {
		if _, err := os.Stat(filepath.Join(base, "outbox", p)); err == nil {
			t.Errorf("%s exists after a refused put", p)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(base, "outbox", tmpDirName)); len(tmp) != 0 {
		t.Errorf("%d temporary files left", len(tmp))
	}
	if _, err := s.Delivered(ctx, name); err != nil {
		t.Errorf("Delivered without peers: %v", err)
	}
}
