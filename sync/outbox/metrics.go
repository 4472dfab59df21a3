package outbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns the outbox's metrics, named preau_outbox_*; appliance
// registers it on the box's registry as is (the names carry the prefix).
// Counts by state are read from the database at each scrape.
func (o *Outbox) Collector() prometheus.Collector {
	return &collector{o: o,
		items: prometheus.NewDesc("preau_outbox_items", "Items in the outbox, by state.", []string{"state"}, nil),
		oldest: prometheus.NewDesc("preau_outbox_oldest_pending_seconds",
			"Age of the oldest item not yet delivered nor failed; 0 when there is none.", nil, nil),
		inFlight:  prometheus.NewDesc("preau_outbox_in_flight", "Items being sent now.", nil, nil),
		delivered: prometheus.NewDesc("preau_outbox_delivered_total", "Items delivered since start, by how.", []string{"how"}, nil),
		bytes: prometheus.NewDesc("preau_outbox_delivered_bytes_total",
			"Bytes of the items sent and delivered since start (the goodput).", nil, nil),
		failures: prometheus.NewDesc("preau_outbox_attempt_failures_total",
			"Failed attempts since start, by kind (transient: retried; permanent: the item failed).", []string{"kind"}, nil),
		recovered: prometheus.NewDesc("preau_outbox_recovered_total",
			"Items found in sending or verifying at start and checked again.", nil, nil),
		up: prometheus.NewDesc("preau_outbox_database_up", "1 when the outbox could read its counts at this scrape.", nil, nil),
	}
}

type collector struct {
	o                                                                  *Outbox
	items, oldest, inFlight, delivered, bytes, failures, recovered, up *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.items, c.oldest, c.inFlight, c.delivered, c.bytes, c.failures, c.recovered, c.up} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	o := c.o
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := make(map[State]float64, len(States))
	up := 1.0
	rows, err := o.db.QueryContext(ctx, `SELECT state, count(*) FROM outbox_items GROUP BY state`)
	if err == nil {
		for rows.Next() {
			var s string
			var n float64
			if rows.Scan(&s, &n) == nil {
				counts[State(s)] = n
			}
		}
		err = rows.Err()
		rows.Close()
	}
	var oldest float64
	if err == nil {
		var created *int64
		err = o.db.QueryRowContext(ctx, `SELECT min(created_at) FROM outbox_items
			WHERE state IN ('queued', 'sending', 'verifying')`).Scan(&created)
		if err == nil && created != nil {
			oldest = max(0, o.cfg.Now().Sub(time.UnixMilli(*created)).Seconds())
		}
	}
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if up == 1 {
		for _, s := range States {
			ch <- prometheus.MustNewConstMetric(c.items, prometheus.GaugeValue, counts[s], string(s))
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest)
	}
	o.mu.Lock()
	n := len(o.inFlight)
	o.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(o.m.sent.Load()), howSent)
	ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(o.m.found.Load()), howFound)
	ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(o.m.unverified.Load()), howUnverified)
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(o.m.deliveredBytes.Load()))
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(o.m.transient.Load()), "transient")
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(o.m.permanent.Load()), "permanent")
	ch <- prometheus.MustNewConstMetric(c.recovered, prometheus.CounterValue, float64(o.m.recovered.Load()))
}
