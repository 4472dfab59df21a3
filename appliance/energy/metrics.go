package energy

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the energy figures to Prometheus. The day's figures
// are computed at most once per sample period, whatever the scrape rate.
func (m *Meter) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Meter }

var (
	descBoxWatts = prometheus.NewDesc("preau_energy_box_watts",
		"Power of the box over the last sampled interval; kind says whether it is measured or estimated.",
		[]string{"source", "kind", "profile"}, nil)
	// Energies are in joules, Prometheus's base unit (promtool refuses
	// hours): kWh = J / 3.6e6.
	descTodayJoules = prometheus.NewDesc("preau_energy_today_joules",
		"Energy since local midnight, for the box and for the LAN devices (estimated unless a smart plug measures them).",
		[]string{"scope"}, nil)
	descClassJoules = prometheus.NewDesc("preau_energy_class_today_joules",
		"Energy since local midnight by device class; class=\"box\" is the box itself.",
		[]string{"class"}, nil)
	descMissing = prometheus.NewDesc("preau_energy_box_unmeasured_today_seconds",
		"Time since local midnight when the box was not sampled (no measurement).", nil, nil)
	descAlerts = prometheus.NewDesc("preau_energy_left_on_alerts_total",
		"Left-on alerts raised: devices present outside school hours beyond the threshold, one per device and period.", nil, nil)
	descAlertsNow = prometheus.NewDesc("preau_energy_left_on_devices",
		"Devices with a left-on alert in the current out-of-hours period.", nil, nil)
)

// metricsCache holds the last computed figures.
type metricsCache struct {
	at      time.Time
	today   Totals
	byClass map[Class]float64
	alerts  float64
	alertsN float64
	ok      bool
}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBoxWatts
	ch <- descTodayJoules
	ch <- descClassJoules
	ch <- descMissing
	ch <- descAlerts
	ch <- descAlertsNow
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	cur := m.current
	m.mu.Unlock()
	now := m.now()
	if !cur.At.IsZero() && now.Sub(cur.At) <= m.cfg.MaxGap {
		kind := "estimated"
		if cur.Source.Measured() {
			kind = "measured"
		}
		profile := ""
		if cur.Source.Kind == SourceModel {
			profile = cur.Source.Detail
		}
		ch <- prometheus.MustNewConstMetric(descBoxWatts, prometheus.GaugeValue, cur.Watts, string(cur.Source.Kind), kind, profile)
	}
	mc, ok := m.metrics(now)
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(descTodayJoules, prometheus.GaugeValue, mc.today.Box.KWh*3.6e6, "box")
	ch <- prometheus.MustNewConstMetric(descTodayJoules, prometheus.GaugeValue, mc.today.Devices.KWh*3.6e6, "devices")
	for _, cl := range orderedClasses(mc.byClass) {
		ch <- prometheus.MustNewConstMetric(descClassJoules, prometheus.GaugeValue, mc.byClass[cl]*3.6e6, string(cl))
	}
	ch <- prometheus.MustNewConstMetric(descMissing, prometheus.GaugeValue, mc.today.Box.Missing.Seconds())
	ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.CounterValue, mc.alerts)
	ch <- prometheus.MustNewConstMetric(descAlertsNow, prometheus.GaugeValue, mc.alertsN)
}

// metrics returns the cached figures, recomputed when older than a sample
// period.
func (m *Meter) metrics(now time.Time) (metricsCache, bool) {
	m.mu.Lock()
	mc := m.mcache
	m.mu.Unlock()
	if mc.ok && now.Sub(mc.at) < m.cfg.SamplePeriod && !now.Before(mc.at) {
		return mc, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start, end := m.midnight(now, 0), m.midnight(now, 1)
	bc, err := m.totalsByClass(ctx, start, end, now)
	if err != nil {
		m.log.Warn("energy: compute metrics", "err", err)
		return mc, false
	}
	mc = metricsCache{at: now, byClass: bc.byClass, ok: true}
	mc.today.Box.Missing = bc.boxMissing
	mc.today.Box.KWh = bc.byClass[ClassBox]
	for c, k := range bc.byClass {
		if c != ClassBox {
			mc.today.Devices.KWh += k
		}
	}
	if _, ok := mc.byClass[ClassBox]; !ok {
		mc.byClass[ClassBox] = 0
	}
	var n int64
	if err := m.db.QueryRowContext(ctx, `SELECT count(*) FROM energy_alerts`).Scan(&n); err != nil {
		m.log.Warn("energy: compute metrics", "err", err)
		return mc, false
	}
	mc.alerts = float64(n)
	if err := m.db.QueryRowContext(ctx, `SELECT count(*) FROM energy_alerts WHERE period_start <= ? AND period_end > ?`,
		now.Unix(), now.Unix()).Scan(&n); err != nil {
		m.log.Warn("energy: compute metrics", "err", err)
		return mc, false
	}
	mc.alertsN = float64(n)
	m.mu.Lock()
	m.mcache = mc
	m.mu.Unlock()
	return mc, true
}
