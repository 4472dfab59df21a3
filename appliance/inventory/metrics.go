package inventory

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descDevices = prometheus.NewDesc("preau_inventory_devices",
		"LAN devices known to the inventory, by presence (present: seen within the presence timeout).", []string{"state"}, nil)
	descObservations = prometheus.NewDesc("preau_inventory_observations_total",
		"Sightings of LAN devices reported to the inventory, by source.", []string{"source"}, nil)
	descVendorBlocks = prometheus.NewDesc("preau_inventory_vendor_list_blocks",
		"MAC address blocks in the IEEE vendor list; 0 when the list is missing (install ieee-data).", nil, nil)
	descDropped = prometheus.NewDesc("preau_inventory_dropped_total",
		"Device events a slow subscriber missed and observations dropped while waiting for a MAC.", nil, nil)
	descPushes = prometheus.NewDesc("preau_inventory_glpi_pushes_total",
		"GLPI documents pushed, by result (accepted, refused by GLPI, failed to reach GLPI).", []string{"result"}, nil)
	descPushTime = prometheus.NewDesc("preau_inventory_glpi_last_success_timestamp_seconds",
		"When GLPI last accepted a document; 0 if never since start.", nil, nil)
)

// Collector exposes the inventory's counters to Prometheus; the device
// counts are read from the database when scraped.
func (inv *Inventory) Collector() prometheus.Collector { return inventoryCollector{inv} }

type inventoryCollector struct{ inv *Inventory }

func (inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDevices
	ch <- descObservations
	ch <- descVendorBlocks
	ch <- descDropped
}

func (c inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	inv := c.inv
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var known, present int
	cutoff := inv.now().Add(-inv.cfg.PresenceTimeout).UnixMilli()
	if err := inv.db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE last_seen >= ?) FROM inventory_devices`, cutoff).
		Scan(&known, &present); err == nil {
		ch <- prometheus.MustNewConstMetric(descDevices, prometheus.GaugeValue, float64(present), "present")
		ch <- prometheus.MustNewConstMetric(descDevices, prometheus.GaugeValue, float64(known-present), "absent")
	}
	for s, i := range sourceIndex {
		ch <- prometheus.MustNewConstMetric(descObservations, prometheus.CounterValue, float64(inv.observed[i].Load()), string(s))
	}
	blocks := 0
	if vt := inv.vendors(); !vt.missing {
		blocks = vt.tab.Len()
	}
	ch <- prometheus.MustNewConstMetric(descVendorBlocks, prometheus.GaugeValue, float64(blocks))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(inv.dropped.Load()))
}

// Collector exposes the pusher's counters to Prometheus.
func (p *Pusher) Collector() prometheus.Collector { return pusherCollector{p} }

type pusherCollector struct{ p *Pusher }

func (pusherCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPushes
	ch <- descPushTime
}

func (c pusherCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.p
	ch <- prometheus.MustNewConstMetric(descPushes, prometheus.CounterValue, float64(p.pushed.Load()), "accepted")
	ch <- prometheus.MustNewConstMetric(descPushes, prometheus.CounterValue, float64(p.refused.Load()), "refused")
	ch <- prometheus.MustNewConstMetric(descPushes, prometheus.CounterValue, float64(p.failed.Load()), "failed")
	ch <- prometheus.MustNewConstMetric(descPushTime, prometheus.GaugeValue, float64(p.lastOK.Load())/1000)
}
