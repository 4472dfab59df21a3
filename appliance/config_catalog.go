package appliance

import (
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

func catalogDefaults(c *Config) {
	c.Catalog = CatalogConfig{Workers: 2, Refresh: "24h", TubeHeight: 480}
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
	checkDuration(&ps, "catalog.refresh", c.Catalog.Refresh, 15*time.Minute, 90*24*time.Hour)
	for _, p := range ps {
		bad(p.Key, p.FR, p.EN)
	}
	if len(ps) == 0 && mustSize(c.Content.ScrubRate) < 64<<10 {
		bad("content.scrub_rate", "trop petit ; attendu au moins 64KiB (par seconde)", "too small; expected at least 64KiB (a second)")
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
		"catalog":                table(),
		"catalog.workers":        num,
		"catalog.refresh":        {"une durée entre guillemets, par ex. \"24h\"", "a quoted duration, e.g. \"24h\""},
		"catalog.tube_height":    {"un nombre entier, par ex. 480", "a whole number, e.g. 480"},
		"content.max_store_size": size, "content.min_free": size, "content.scrub_rate": size,
	}
}()

func table() [2]string { return [2]string{"une section [nom]", "a [name] table"} }
