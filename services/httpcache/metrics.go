package httpcache

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the cache's counters and size to Prometheus (names
// start with preau_httpcache_). Register it once.
func (c *Cache) Collector() prometheus.Collector { return collector{c} }

type collector struct{ c *Cache }

var (
	descEntries  = prometheus.NewDesc("preau_httpcache_entries", "Stored responses.", nil, nil)
	descBytes    = prometheus.NewDesc("preau_httpcache_bytes", "Bytes of stored bodies.", nil, nil)
	descQuota    = prometheus.NewDesc("preau_httpcache_quota_bytes", "Quota of stored bodies, in bytes.", nil, nil)
	descRequests = prometheus.NewDesc("preau_httpcache_requests_total",
		"Requests by outcome: hit (answered from the store), miss, bypass (method or no-store).", []string{"outcome"}, nil)
	descRevals   = prometheus.NewDesc("preau_httpcache_revalidations_total", "Conditional requests sent upstream, by result (not_modified, other).", []string{"result"}, nil)
	descStale    = prometheus.NewDesc("preau_httpcache_stale_served_total", "Stale responses served (uplink down, stale-if-error, stale-while-revalidate, max-stale).", nil, nil)
	descStored   = prometheus.NewDesc("preau_httpcache_stored_total", "Responses written to the store.", nil, nil)
	descEvicted  = prometheus.NewDesc("preau_httpcache_evictions_total", "Entries evicted to stay within the quota.", nil, nil)
	descInval    = prometheus.NewDesc("preau_httpcache_invalidations_total", "Entries removed after unsafe methods.", nil, nil)
	descHitBytes = prometheus.NewDesc("preau_httpcache_hit_bytes_total", "Body bytes served from the store.", nil, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEntries, descBytes, descQuota, descRequests, descRevals, descStale, descStored, descEvicted, descInval, descHitBytes} {
		ch <- d
	}
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	st := k.c.Status(context.Background())
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descEntries, float64(st.Entries))
	gauge(descBytes, float64(st.Bytes))
	gauge(descQuota, float64(st.QuotaBytes))
	counter(descRequests, st.Hits, "hit")
	counter(descRequests, st.Misses, "miss")
	counter(descRequests, st.Bypassed, "bypass")
	counter(descRevals, st.NotModified, "not_modified")
	counter(descRevals, st.Revalidations-st.NotModified, "other")
	counter(descStale, st.StaleServed)
	counter(descStored, st.Stored)
	counter(descEvicted, st.Evictions)
	counter(descInval, st.Invalidations)
	counter(descHitBytes, st.HitBytes)
}
