package inventory

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// readUAs reads testdata/useragents.txt: CLASS<TAB>USER-AGENT lines.
func readUAs(t testing.TB) [][2]string {
	t.Helper()
	f, err := os.Open("testdata/useragents.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		class, ua, _ := strings.Cut(line, "\t")
		out = append(out, [2]string{class, ua})
	}
	return out
}

func TestClassifyUA(t *testing.T) {
	for _, c := range readUAs(t) {
		got := classifyUA(c[1])
		want := Class(c[0])
		if want == ClassUnknown {
			want = ""
		}
		if got.class != want {
			t.Errorf("classifyUA(%q) = %q (%s), want %q", c[1], got.class, got.token, want)
		}
		if got.class != "" && (got.os == "" || got.confidence == 0) {
			t.Errorf("classifyUA(%q): os %q confidence %d", c[1], got.os, got.confidence)
		}
	}
}

func FuzzClassifyUA(f *testing.F) {
	for _, c := range readUAs(f) {
		f.Add(c[1])
	}
	f.Fuzz(func(t *testing.T, ua string) {
		got := classifyUA(ua)
		if got.class != "" && !got.class.Valid() {
			t.Fatalf("classifyUA(%q) = invalid class %q", ua, got.class)
		}
		if got.confidence < 0 || got.confidence > 100 {
			t.Fatalf("classifyUA(%q): confidence %d", ua, got.confidence)
		}
		if again := classifyUA(ua); again != got {
			t.Fatalf("classifyUA(%q) not deterministic", ua)
		}
		// Only the first maxUA bytes count.
		if len(ua) > maxUA && classifyUA(ua[:maxUA]) != got {
			t.Fatalf("classifyUA reads past %d bytes", maxUA)
		}
		// The guess built on it is always a valid class and a sane reason.
		g := guessClass(facts{ua: got, names: []string{ua}})
		if !g.class.Valid() || g.confidence < 0 || g.confidence > 99 || !utf8.ValidString(g.fr) && utf8.ValidString(ua) {
			t.Fatalf("guessClass on %q = %+v", ua, g)
		}
	})
}

func TestGuessClass(t *testing.T) {
	tests := []struct {
		name     string
		f        facts
		want     Class
		minConf  int
		inReason string
	}{
		{"ipp printer", facts{services: []string{"_http._tcp", "_ipp._tcp"}, hints: map[string]string{"ty": "Brother HL-L2350DW series"}}, ClassPrinter, 99, "_ipp._tcp"},
		{"printer by usb hints", facts{hints: map[string]string{"usb_mfg": "EPSON", "usb_mdl": "ET-2820 Series"}}, ClassPrinter, 80, "EPSON ET-2820"},
		{"macbook device-info", facts{services: []string{"_device-info._tcp"}, hints: map[string]string{"model": "MacBookAir10,1"}}, ClassLaptop, 90, "MacBookAir10,1"},
		{"imac", facts{hints: map[string]string{"model": "iMac21,1"}}, ClassDesktop, 90, "iMac21,1"},
		{"ipad model beats mac UA", facts{hints: map[string]string{"model": "iPad13,18"}, ua: classifyUA("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)")}, ClassTablet, 90, "iPad13,18"},
		{"apple tv", facts{services: []string{"_airplay._tcp"}, hints: map[string]string{"model": "AppleTV5,3"}}, ClassInteractiveDisplay, 60, "AppleTV5,3"},
		{"mac airplay is not a display", facts{services: []string{"_airplay._tcp", "_device-info._tcp"}, hints: map[string]string{"model": "MacBookPro18,1"}}, ClassLaptop, 90, "MacBookPro18,1"},
		{"promethean cast receiver", facts{services: []string{"_googlecast._tcp"}, vendor: "Promethean Limited"}, ClassInteractiveDisplay, 90, "Promethean"},
		{"plain chromecast", facts{services: []string{"_googlecast._tcp"}, hints: map[string]string{"md": "Chromecast"}}, ClassInteractiveDisplay, 55, "_googlecast._tcp"},
		{"promethean by vendor only", facts{vendor: "Promethean Limited"}, ClassInteractiveDisplay, 65, "Promethean"},
		{"smart tech but not frontier", facts{vendor: "FRONTIER SMART TECHNOLOGIES LTD"}, ClassUnknown, 0, "aucun"},
		{"ipad UA", facts{ua: classifyUA("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X)")}, ClassTablet, 85, "iPad"},
		{"android tablet UA and name agree", facts{ua: classifyUA("Mozilla/5.0 (Linux; Android 12; SM-T220)"), names: []string{"Galaxy-Tab-A7"}}, ClassTablet, 75, "Android"},
		{"windows laptop name beats UA", facts{ua: classifyUA("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"), names: []string{"LAPTOP-8H2KD91"}}, ClassLaptop, 65, "LAPTOP-8H2KD91"},
		{"hp printer name", facts{names: []string{"NPI3F2A1B"}}, ClassPrinter, 75, "NPI3F2A1B"},
		{"brother name", facts{names: []string{"BRW3C2AF4123456"}}, ClassPrinter, 75, "BRW"},
		{"ubiquiti", facts{vendor: "Ubiquiti Networks Inc."}, ClassAccessPoint, 60, "Ubiquiti"},
		{"ap name", facts{names: []string{"borne-wifi-preau"}}, ClassAccessPoint, 50, "borne"},
		{"workstation", facts{services: []string{"_workstation._tcp"}}, ClassDesktop, 30, "_workstation._tcp"},
		{"nothing", facts{}, ClassUnknown, 0, "aucun indice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := guessClass(tt.f)
			if got.class != tt.want || got.confidence < tt.minConf || got.confidence > 99 || !strings.Contains(got.fr, tt.inReason) {
				t.Errorf("got %s %d %q, want %s ≥ %d with %q", got.class, got.confidence, got.fr, tt.want, tt.minConf, tt.inReason)
			}
		})
	}
}

func TestClassLabels(t *testing.T) {
	want := map[Class]string{ClassTablet: "tablette", ClassLaptop: "portable", ClassDesktop: "poste fixe", ClassPrinter: "imprimante",
		ClassInteractiveDisplay: "écran interactif", ClassAccessPoint: "point d'accès", ClassPhone: "téléphone", ClassUnknown: "inconnu"}
	for _, c := range Classes {
		if got := c.Label("fr"); got != want[c] {
			t.Errorf("%s.Label(fr) = %q, want %q", c, got, want[c])
		}
		if c.Label("en") == "" || !c.Valid() {
			t.Errorf("%s: no English label or invalid", c)
		}
	}
	if len(Classes) != len(want) || Class("toaster").Valid() {
		t.Error("class list")
	}
}

func TestUnescapeDNS(t *testing.T) {
	tests := map[string]string{
		`Brother\ HL-L2350DW`:      "Brother HL-L2350DW",
		`Imprimante\ CDI\ \(1\)`:   "Imprimante CDI (1)",
		`\195\137cran\ salle\0463`: "Écran salle.3",
		`plain`:                    "plain",
		`trailing\`:                "trailing",
		`\999x`:                    "x",
	}
	for in, want := range tests {
		if got := unescapeDNS(in); got != want {
			t.Errorf("unescapeDNS(%q) = %q, want %q", in, got, want)
		}
	}
}
