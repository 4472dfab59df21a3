package captive

import (
	"strings"
	"testing"
)

// FuzzMatch feeds arbitrary Host headers and paths to the matcher. Seeds:
// every host and path of probes.json and testdata/fuzz/FuzzMatch. It checks
// that the matcher never panics, only matches a row for one of the row's
// hosts and paths, and ignores case, port and a trailing dot.
func FuzzMatch(f *testing.F) {
	tab := Probes()
	for _, p := range tab.Rows() {
		for _, h := range p.Hosts {
			f.Add(h, p.Path)
			f.Add(strings.ToUpper(h)+".:8080", pathFor(p))
		}
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		p, ok := tab.Match(host, path)
		norm := normalizeHost(host)
		if ok {
			if !contains(p.Hosts, norm) {
				t.Fatalf("Match(%q, %q) = row %s whose hosts %v lack %q", host, path, p.ID, p.Hosts, norm)
			}
			if p.Path != path && p.Path != AnyPath {
				t.Fatalf("Match(%q, %q) = row %s for path %q", host, path, p.ID, p.Path)
			}
			if !tab.IsProbeHost(host) {
				t.Fatalf("Match(%q) found a row but IsProbeHost is false", host)
			}
		}
		if normalizeHost(norm) != norm {
			t.Fatalf("normalizeHost not idempotent: %q → %q → %q", host, norm, normalizeHost(norm))
		}
		// The normal form, an upper-case form and a form with a port all
		// give the same answer as the raw host.
		for _, h := range []string{norm, strings.ToUpper(norm), norm + ":80"} {
			if strings.ContainsAny(norm, ":[]") {
				break // IPv6 literals and odd hosts: a port would change their meaning
			}
			if p2, ok2 := tab.Match(h, path); ok2 != ok || p2.ID != p.ID {
				t.Fatalf("Match(%q, %q) = %q %v but Match(%q, %q) = %q %v", host, path, p.ID, ok, h, path, p2.ID, ok2)
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestProbeTable(t *testing.T) {
	tab := Probes()
	families := map[string]bool{}
	for _, p := range tab.Rows() {
		families[p.Family] = true
	}
	for _, f := range []string{"android", "chromeos", "apple", "windows", "firefox", "networkmanager-gnome", "ubuntu", "kde", "fedora", "arch", "huawei", "xiaomi", "samsung"} {
		if !families[f] {
			t.Errorf("no probe for family %s", f)
		}
	}
	tests := []struct {
		host, path string
		want       string // row id, "" for no match
	}{
		{"connectivitycheck.gstatic.com", "/generate_204", "android-gstatic"},
		{"ConnectivityCheck.GStatic.com.:80", "/generate_204", "android-gstatic"},
		{"connectivitycheck.gstatic.com", "/generate_204/", ""},
		{"connectivitycheck.gstatic.com", "/GENERATE_204", ""},
		{"www.google.com", "/gen_204", "android-google-gen204"},
		{"captive.apple.com", "/hotspot-detect.html", "apple-hotspot-detect"},
		{"captive.apple.com", "/anything", "apple-captive-any"},
		{"www.apple.com", "/", ""},
		{"www.msftconnecttest.com", "/connecttest.txt", "windows-connecttest"},
		{"www.msftconnecttest.com", "/redirect", ""},
		{"detectportal.firefox.com", "/success.txt", "firefox-success"},
		{"[::1]:80", "/generate_204", ""},
		{"", "", ""},
		{"generate_204", "/generate_204", ""},
	}
	for _, tc := range tests {
		p, ok := tab.Match(tc.host, tc.path)
		if got := map[bool]string{true: p.ID}[ok]; got != tc.want {
			t.Errorf("Match(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
	hosts := ProbeHosts()
	if !contains(hosts, "connectivitycheck.gstatic.com") || !contains(hosts, "captive.apple.com") || contains(hosts, "dns.msftncsi.com") {
		t.Errorf("ProbeHosts() = %v", hosts)
	}
	dns := DNSOnlyProbes()
	if len(dns) != 1 || dns[0].Name != "dns.msftncsi.com" || dns[0].A[0].String() != "131.107.255.255" || dns[0].AAAA[0].String() != "fd3e:4f5a:5b81::1" {
		t.Errorf("DNSOnlyProbes() = %+v", dns)
	}
}

func TestParseTableRefuses(t *testing.T) {
	row := `{"id":"x","family":"f","hosts":["a.example"],"path":"/p","status":200,"headers":{},"body":"ok","user_agent":"","comment":"c"}`
	tests := []struct{ name, json, want string }{
		{"unknown field", `{"probes":[],"extra":1}`, "unknown field"},
		{"no comment", `{"probes":[` + strings.Replace(row, `"comment":"c"`, `"comment":""`, 1) + `]}`, "comment"},
		{"upper-case host", `{"probes":[` + strings.Replace(row, "a.example", "A.example", 1) + `]}`, "host"},
		{"host with port", `{"probes":[` + strings.Replace(row, "a.example", "a.example:80", 1) + `]}`, "host"},
		{"relative path", `{"probes":[` + strings.Replace(row, `"/p"`, `"p"`, 1) + `]}`, "path"},
		{"redirect status", `{"probes":[` + strings.Replace(row, "200", "302", 1) + `]}`, "status"},
		{"204 with body", `{"probes":[` + strings.Replace(row, "200", "204", 1) + `]}`, "204"},
		{"duplicate id", `{"probes":[` + row + `,` + strings.Replace(row, "/p", "/q", 1) + `]}`, "duplicate id"},
		{"same host and path", `{"probes":[` + row + `,` + strings.Replace(row, `"x"`, `"y"`, 1) + `]}`, "already"},
		{"bad header", `{"probes":[` + strings.Replace(row, `"headers":{}`, `"headers":{"Bad Name":"v"}`, 1) + `]}`, "header"},
		{"dns A is v6", `{"probes":[],"dns_only":[{"name":"d.example","a":["fd00::1"],"aaaa":[],"comment":"c"}]}`, "not IPv4"},
	}
	for _, tc := range tests {
		_, err := ParseTable([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseTable = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}
