package uplink

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the monitor's estimates to Prometheus. The online
// state itself is appliance's preau_uplink_online.
func (m *Monitor) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Monitor }

var (
	descCapacity = prometheus.NewDesc("preau_uplink_capacity_bytes_per_second",
		"Rate the uplink carried while full, by direction, from the WAN scheduler's transfers; 0 until measured.", []string{"direction"}, nil)
	descBaseRTT = prometheus.NewDesc("preau_uplink_base_rtt_seconds",
		"Least round-trip time of the uplink seen by the WAN scheduler; 0 until measured.", nil, nil)
	descProbeRTT = prometheus.NewDesc("preau_uplink_probe_rtt_seconds",
		"Time the last successful probe took to answer.", nil, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCapacity
	ch <- descBaseRTT
	ch <- descProbeRTT
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.State()
	ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, st.CapacityUp, "up")
	ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, st.CapacityDown, "down")
	ch <- prometheus.MustNewConstMetric(descBaseRTT, prometheus.GaugeValue, st.BaseRTT.Seconds())
	ch <- prometheus.MustNewConstMetric(descProbeRTT, prometheus.GaugeValue, st.ProbeRTT.Seconds())
}
