package appliance

import (
	"fmt"
	"time"
)

// CatalogConfig is the school catalogue: the sources themselves are added
// at run time (`preau catalog add`) and kept in the database.
type CatalogConfig struct {
	// Workers is how many downloads run at once. Default 2.
	Workers int `toml:"workers"`
	// Refresh is the interval between two refreshes of a source, e.g.
	// "24h" (the default); a source may set its own.
	Refresh string `toml:"refresh"`
	// TubeHeight is the height of the PeerTube files taken for tablets:
	// the largest file at most this high. Default 480.
	TubeHeight int `toml:"tube_height"`
}

// CacheConfig is the RFC 9111 HTTP cache: every upstream fetch of the
// catalogue goes through it, and the LAN may use it as a forward proxy.
type CacheConfig struct {
	// MaxSize is the cache's quota on disk, e.g. "2GiB" (the default);
	// least recently used entries go first. Packs and hand-ins are in the
	// content store, not here.
	MaxSize string `toml:"max_size"`
	// MaxObjectSize is the largest response stored, e.g. "1GiB" (the
	// default); a larger one is passed through, not stored.
	MaxObjectSize string `toml:"max_object_size"`
	// ProxyListen are the addresses of the forward proxy for the LAN, e.g.
	// ["10.20.0.1:3128"]: plain-HTTP requests are cached, HTTPS goes
	// through CONNECT tunnels, never decrypted. Empty (the default): no
	// proxy.
	ProxyListen []string `toml:"proxy_listen"`
	// ConnectPorts are the ports CONNECT may reach. Default [443].
	ConnectPorts []int `toml:"connect_ports"`
}

func catalogDefaults(c *Config) {
	c.Catalog = CatalogConfig{Workers: 2, Refresh: "24h", TubeHeight: 480}
	c.Cache = CacheConfig{MaxSize: "2GiB", MaxObjectSize: "1GiB", ConnectPorts: []int{443}}
	c.Content.MinFree = "512MiB"
	c.Content.ScrubRate = "8MiB"
}

func (c Config) catalogProblems(bad func(key, fr, en string)) {
	var ps []Problem
	if c.Content.MaxStoreSize != "" {
		checkSize(&ps, "content.max_store_size", c.Content.MaxStoreSize)
	}
	checkSize(&ps, "content.min_free", c.Content.MinFree)
	checkSize(&ps, "content.scrub_rate", c.Content.ScrubRate)
	checkSize(&ps, "cache.max_size", c.Cache.MaxSize)
	checkSize(&ps, "cache.max_object_size", c.Cache.MaxObjectSize)
	checkDuration(&ps, "catalog.refresh", c.Catalog.Refresh, 15*time.Minute, 90*24*time.Hour)
	for _, p := range ps {
		bad(p.Key, p.FR, p.EN)
	}
	if len(ps) == 0 && mustSize(c.Content.ScrubRate) < 64<<10 {
		bad("content.scrub_rate", "trop petit ; attendu au moins 64KiB (par seconde)", "too small; expected at least 64KiB (a second)")
	}
	if max, err := ParseSize(c.Cache.MaxSize); err == nil {
		if max < 64<<20 {
			bad("cache.max_size", "trop petit ; attendu au moins 64MiB", "too small; expected at least 64MiB")
		}
		if obj, err := ParseSize(c.Cache.MaxObjectSize); err == nil && obj > max {
			bad("cache.max_object_size", "plus grand que cache.max_size", "larger than cache.max_size")
		}
	}
	if len(c.Cache.ProxyListen) > 0 {
		checkListen(bad, "cache.proxy_listen", c.Cache.ProxyListen)
	}
	for _, p := range c.Cache.ConnectPorts {
		if p < 1 || p > 65535 {
			bad("cache.connect_ports", fmt.Sprintf("port %d hors limites (1 à 65535)", p), fmt.Sprintf("port %d out of range (1 to 65535)", p))
		}
	}
	if w := c.Catalog.Workers; w < 1 || w > 8 {
		bad("catalog.workers", "hors limites ; attendu entre 1 et 8", "out of range; expected between 1 and 8")
	}
	if h := c.Catalog.TubeHeight; h < 144 || h > 2160 {
		bad("catalog.tube_height", "hors limites ; attendu entre 144 et 2160 (par ex. 480 ou 720)",
			"out of range; expected between 144 and 2160 (e.g. 480 or 720)")
	}
}

var catalogKeyTypes = func() map[string][2]string {
	size := [2]string{"une taille entre guillemets, par ex. \"16GiB\"", "a quoted size, e.g. \"16GiB\""}
	num := [2]string{"un nombre entier, par ex. 2", "a whole number, e.g. 2"}
	return map[string][2]string{
		"catalog":             table(),
		"catalog.workers":     num,
		"catalog.refresh":     {"une durée entre guillemets, par ex. \"24h\"", "a quoted duration, e.g. \"24h\""},
		"catalog.tube_height": {"un nombre entier, par ex. 480", "a whole number, e.g. 480"},
		"cache":               table(),
		"cache.max_size":      size, "cache.max_object_size": size,
		"cache.proxy_listen":     {"une liste de textes, par ex. [\"10.20.0.1:3128\"]", "a list of quoted texts, e.g. [\"10.20.0.1:3128\"]"},
		"cache.connect_ports":    {"une liste de nombres, par ex. [443]", "a list of numbers, e.g. [443]"},
		"content.max_store_size": size, "content.min_free": size, "content.scrub_rate": size,
	}
}()

func table() [2]string { return [2]string{"une section [nom]", "a [name] table"} }
