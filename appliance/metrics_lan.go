package appliance

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"preau/services/dns"
)

// dnsCollector exposes the DNS server's counters, read when scraped.
type dnsCollector struct {
	s                       *dns.Server
	queries, upstream, errs *prometheus.Desc
	cache                   *prometheus.Desc
}

func newDNSCollector(s *dns.Server) *dnsCollector {
	return &dnsCollector{
		s: s,
		queries: prometheus.NewDesc("preau_dns_queries_total",
			"DNS queries answered by the box, by how they were answered.", []string{"result"}, nil),
		upstream: prometheus.NewDesc("preau_dns_upstream_queries_total",
			"Exchanges with the upstream resolvers.", nil, nil),
		errs: prometheus.NewDesc("preau_dns_upstream_errors_total",
			"Failed exchanges with the upstream resolvers.", nil, nil),
		cache: prometheus.NewDesc("preau_dns_cache_entries",
			"Answers in the DNS cache, stale ones included.", nil, nil),
	}
}

func (c *dnsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queries
	ch <- c.upstream
	ch <- c.errs
	ch <- c.cache
}

func (c *dnsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for _, r := range []struct {
		name string
		n    uint64
	}{{"local", st.Local}, {"hijacked", st.Hijacked}, {"forwarded", st.Forwarded}, {"cached", st.Cached},
		{"stale", st.Stale}, {"refused", st.Refused}, {"failed", st.Failed}, {"ratelimited", st.RateLimited},
		{"truncated", st.Truncated}, {"invalid", st.Invalid}} {
		ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(r.n), r.name)
	}
	ch <- prometheus.MustNewConstMetric(c.upstream, prometheus.CounterValue, float64(st.UpstreamQueries))
	ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(st.UpstreamErrors))
	ch <- prometheus.MustNewConstMetric(c.cache, prometheus.GaugeValue, float64(st.CacheEntries))
}

// registerLANMetrics adds the LAN components' series.
func (b *Box) registerLANMetrics(reg *prometheus.Registry) {
	if b.lan == nil {
		return
	}
	if b.lan.dns != nil {
		reg.MustRegister(newDNSCollector(b.lan.dns))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "preau_captive_devices_accepted",
		Help: "LAN devices that accepted the charter and whose acceptance has not expired."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		devs, err := b.lan.captive.Devices(ctx)
		if err != nil {
			return 0
		}
		n := 0
		for _, d := range devs {
			if d.Accepted {
				n++
			}
		}
		return float64(n)
	}))
}
