package syncthing

import (
	"encoding/xml"
	"os"
	"strings"
	"testing"
)

// FuzzDeviceID: a technician types peer IDs. Whatever is typed, either it
// is refused or it comes back canonical, and canonical again when parsed.
func FuzzDeviceID(f *testing.F) {
	data, err := os.ReadFile("testdata/cert.deviceid")
	if err != nil {
		f.Fatal(err)
	}
	id := strings.TrimSpace(string(data))
	for _, s := range []string{id, strings.ToLower(id), strings.ReplaceAll(id, "-", ""), "", "AAAAAAA", id + "-AAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := canonicalDeviceID(s)
		if err != nil {
			return
		}
		if len(got) != 63 || strings.Count(got, "-") != 7 || strings.ToUpper(got) != got {
			t.Fatalf("canonicalDeviceID(%q) = %q: not canonical", s, got)
		}
		again, err := canonicalDeviceID(got)
		if err != nil || again != got {
			t.Fatalf("canonical %q parses to %q, %v", got, again, err)
		}
	})
}

// FuzzRewriteConfig: a config.xml damaged by hand or by a crash of an
// older Syncthing never panics the rewrite; what it accepts parses back
// with our values and rewrites to itself.
func FuzzRewriteConfig(f *testing.F) {
	data, err := os.ReadFile("testdata/generated-config.xml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("<configuration><gui></gui><options></options></configuration>"))
	st := settings{deviceID: testDeviceID, deviceName: "box", listen: "tcp://127.0.0.1:22000",
		guiAddress: "/h/gui.sock", apiKey: "key", options: safeOptions("tcp://127.0.0.1:22000", 0, 0)}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := rewriteConfig(in, st)
		if err != nil {
			return
		}
		var c struct {
			XMLName xml.Name
			GUI     []struct {
				APIKey string `xml:"apikey"`
			} `xml:"gui"`
		}
		if err := xml.Unmarshal(out, &c); err != nil {
			return // input with several roots or odd tokens: Syncthing refuses it too
		}
		if c.XMLName.Local == "configuration" && len(c.GUI) == 1 && c.GUI[0].APIKey != "key" {
			t.Fatalf("api key %q after rewrite", c.GUI[0].APIKey)
		}
	})
}
