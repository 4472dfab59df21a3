package appliance

import (
	"context"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// boxMetrics are the instruments the LAN handler updates on each request.
type boxMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics builds the box's registry. Every name starts with preau_,
// the Go runtime and process collectors included, so a shared Prometheus
// can tell our series from others'.
func (b *Box) newMetrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	pre := prometheus.WrapRegistererWithPrefix("preau_", reg)
	pre.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	bi := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "preau_build_info",
		Help: "Version of the running preau; always 1."}, []string{"version", "goversion"})
	bi.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(bi)
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	stats := func(pick func(Health) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return pick(b.health(ctx))
		}
	}
	gauge("preau_start_time_seconds", "Start time of the box, in Unix seconds.", func() float64 { return float64(b.started.Unix()) })
	gauge("preau_uplink_online", "1 when the internet uplink answers its probes, else 0.", func() float64 {
		if b.uplink != nil && b.uplink.Online() {
			return 1
		}
		return 0
	})
	gauge("preau_database_up", "1 when the state database answers, else 0.", stats(func(h Health) float64 {
		if h.Database == "ok" {
			return 1
		}
		return 0
	}))
	gauge("preau_data_free_bytes", "Free space in the data folder, in bytes.", stats(func(h Health) float64 { return float64(h.DiskFreeBytes) }))
	gauge("preau_content_packs", "Content packs in the store.", stats(func(h Health) float64 { return float64(h.Packs) }))
	gauge("preau_content_items", "Items of all packs in the store.", stats(func(h Health) float64 { return float64(h.Items) }))
	gauge("preau_content_bytes", "Bytes of stored blobs.", stats(func(h Health) float64 { return float64(h.ContentBytes) }))

	b.m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "preau_http_requests_total",
		Help: "LAN HTTP requests by handler, method and status code."}, []string{"handler", "method", "code"})
	b.m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "preau_http_request_duration_seconds",
		Help:    "Time to the end of the response, by handler.",
		Buckets: []float64{.001, .005, .02, .1, .5, 2, 10, 60}}, []string{"handler"})
	reg.MustRegister(b.m.requests, b.m.duration)
	return reg
}

// instrument counts and times requests. promhttp's wrappers keep the
// writer's io.ReaderFrom, so file responses still go out with sendfile.
func (b *Box) instrument(name string, h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(b.m.requests.MustCurryWith(prometheus.Labels{"handler": name}),
		promhttp.InstrumentHandlerDuration(b.m.duration.MustCurryWith(prometheus.Labels{"handler": name}), h))
}

func (b *Box) metricsHandler() http.Handler {
	return promhttp.HandlerFor(b.metrics, promhttp.HandlerOpts{})
}
