package budget

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the budget's state to Prometheus (names start with
// preau_budget_). Register it once.
func (s *Scheduler) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Scheduler }

var (
	descRate = prometheus.NewDesc("preau_budget_rate_bytes_per_second",
		"Rate background transfers may use now, by direction.", []string{"direction"}, nil)
	descBase = prometheus.NewDesc("preau_budget_base_rtt_seconds",
		"Least RTT of the scheduler's connections over the last minutes, by direction.", []string{"direction"}, nil)
	descQueue = prometheus.NewDesc("preau_budget_queueing_delay_seconds",
		"Current RTT above the base RTT, by direction.", []string{"direction"}, nil)
	descTarget = prometheus.NewDesc("preau_budget_target_delay_seconds",
		"Queueing delay the scheduler allows itself to add.", nil, nil)
	descCuts = prometheus.NewDesc("preau_budget_rate_decreases_total",
		"Multiplicative decreases of the rate, by direction and cause (loss or delay).", []string{"direction", "cause"}, nil)
	descOpen = prometheus.NewDesc("preau_budget_window_open",
		"1 when the calendar lets background transfers start, else 0.", nil, nil)
	descSendNow = prometheus.NewDesc("preau_budget_send_now",
		"1 while a `preau sync now` is in effect, else 0.", nil, nil)
	descNext = prometheus.NewDesc("preau_budget_next_change_timestamp_seconds",
		"When the calendar opens or closes next, Unix seconds; 0 if not within 9 days.", nil, nil)
	descCapUsed = prometheus.NewDesc("preau_budget_cap_used_bytes",
		"Bytes moved by background transfers today.", nil, nil)
	descCap = prometheus.NewDesc("preau_budget_daily_cap_bytes",
		"Daily cap of background transfers in bytes; 0 means none.", nil, nil)
	descActive = prometheus.NewDesc("preau_budget_active_transfers",
		"Background transfers running, by class.", []string{"class"}, nil)
	descWaiting = prometheus.NewDesc("preau_budget_waiting_transfers",
		"Background transfers waiting for the budget, by class.", []string{"class"}, nil)
	descBytes = prometheus.NewDesc("preau_budget_transferred_bytes_total",
		"Bytes moved by background transfers, by class and direction.", []string{"class", "direction"}, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRate, descBase, descQueue, descTarget, descCuts, descOpen, descSendNow,
		descNext, descCapUsed, descCap, descActive, descWaiting, descBytes} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	bit := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	c.s.mu.Lock()
	var cuts [2][2]int64
	for d, ctl := range c.s.ctl {
		cuts[d] = [2]int64{ctl.cutsLoss, ctl.cutsDelay}
	}
	c.s.mu.Unlock()
	for d, ps := range []PathStatus{st.Up, st.Down} {
		dir := direction(d).String()
		gauge(descRate, ps.Rate, dir)
		gauge(descBase, ps.BaseRTT.Seconds(), dir)
		gauge(descQueue, ps.QueueDelay.Seconds(), dir)
		counter(descCuts, float64(cuts[d][0]), dir, "loss")
		counter(descCuts, float64(cuts[d][1]), dir, "delay")
	}
	gauge(descTarget, c.s.cfg.TargetDelay.Seconds())
	gauge(descOpen, bit(st.WindowOpen))
	gauge(descSendNow, bit(st.SendNow))
	next := 0.0
	if !st.NextChange.IsZero() {
		next = float64(st.NextChange.Unix())
	}
	gauge(descNext, next)
	gauge(descCapUsed, float64(st.CapUsed))
	gauge(descCap, float64(st.DailyCap))
	for _, cs := range st.Classes {
		gauge(descActive, float64(cs.Active), cs.Class.String())
		gauge(descWaiting, float64(cs.Waiting), cs.Class.String())
		counter(descBytes, float64(cs.SentBytes), cs.Class.String(), "up")
		counter(descBytes, float64(cs.ReceivedBytes), cs.Class.String(), "down")
	}
}
