package appliance

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestConfigValidFixtures(t *testing.T) {
	tests := []struct {
		file string
		want func(c *Config)
	}{
		{"v1-minimal.toml", func(c *Config) {}},
		{"v1-full.toml", func(c *Config) {
			c.Box = BoxConfig{Name: "École élémentaire Jules-Ferry", UAI: "0350001A", DataDir: "/var/lib/preau"}
			c.HTTP = HTTPConfig{Listen: []string{":80", "[::]:8080"}, ShutdownTimeout: "20s"}
			c.Content = ContentConfig{MaxPackSize: "100GiB", MaxFileSize: "8GiB", MinFree: "512MiB", ScrubRate: "8MiB"}
			c.Uplink = UplinkConfig{ProbeURLs: []string{"https://apps.education.fr/", "http://example.org/"}, Interval: "10m"}
			c.Log = LogConfig{Level: "debug", Format: "journal"}
		}},
		{"v1-cache.toml", func(c *Config) {
			c.Cache = CacheConfig{MaxSize: "8GiB", MaxObjectSize: "2GiB", ProxyListen: []string{"10.20.0.1:3128"}, ConnectPorts: []int{443, 8443}}
		}},
		{"v1-console.toml", func(c *Config) {
			c.Console = ConsoleConfig{Networks: []string{"10.20.0.0/24", "fd00:20::/64"}, SecureCookies: true,
				IdleTimeout: "20m", SessionLifetime: "8h"}
			c.Inventory = InventoryConfig{Interfaces: []string{"br0"}, PresenceTimeout: "5m", OUIDir: "/srv/ieee-data",
				GLPIURL: "https://glpi.mairie.example.fr/front/inventory.php", GLPITag: "ecoles-nord"}
			c.Energy = EnergyConfig{Profile: "n100", BoxSource: "model", SamplePeriod: "30s", Timezone: "Indian/Reunion",
				SchoolHours: map[string]string{"wed": "-", "sam": "08:30-11:30"},
				Holidays:    []string{"2026-12-19..2027-01-03"}, Closed: []string{"2027-05-07"}, LeftOnAfter: "45m",
				Watts:             map[string]float64{"interactive-display": 180, "tablet": 4.5},
				ElectricityFactor: 0.06, ElectricitySource: "ADEME Base Empreinte, La Réunion", ElectricityYear: 2023}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := LoadConfig(filepath.Join("testdata", "config", tt.file))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			want := Defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestConfigErrorsGolden checks the exact messages a technician reads, in
// both languages, for each broken fixture.
func TestConfigErrorsGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "bad-*.toml"))
	if len(files) < 6 {
		t.Fatalf("found %d bad fixtures, want at least 6", len(files))
	}
	for _, f := range files {
		for _, lang := range []string{"fr", "en"} {
			t.Run(filepath.Base(f)+"/"+lang, func(t *testing.T) {
				_, err := LoadConfig(f)
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("LoadConfig(%s) = %v, want a *ConfigError", f, err)
				}
				got := strings.ReplaceAll(ce.Localized(lang), f, "FILE") + "\n"
				golden := strings.TrimSuffix(f, ".toml") + "." + lang + ".golden"
				if *update {
					os.WriteFile(golden, []byte(got), 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("read golden (run with -update): %v", err)
				}
				if got != string(want) {
					t.Errorf("got:\n%s\nwant:\n%s", got, want)
				}
			})
		}
	}
}

func TestConfigErrorsPointAtLines(t *testing.T) {
	_, err := LoadConfig(filepath.Join("testdata", "config", "bad-values.toml"))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want *ConfigError", err)
	}
	want := map[string]int{"box.name": 4, "box.uai": 5, "http.listen": 8, "http.shutdown_timeout": 9,
		"content.max_pack_size": 12, "portal.language": 15, "uplink.probe_urls": 18, "uplink.interval": 19, "log.level": 22}
	got := map[string]int{}
	for _, p := range ce.Problems {
		got[p.Key] = p.Line
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines: got %v, want %v", got, want)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"16GiB", 16 << 30, true}, {"500MB", 500e6, true}, {"1024", 1024, true}, {"1 KiB", 1024, true},
		{"", 0, false}, {"-1GB", 0, false}, {"0", 0, false}, {"1.5GB", 0, false}, {"9999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestDefaultsValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.toml"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.toml", data)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("ParseConfig accepted a config that does not validate: %v", verr)
			}
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v is not a *ConfigError", err)
		}
		if len(ce.Problems) == 0 {
			t.Fatal("ConfigError with no problem")
		}
	})
}
