package appliance

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
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

// instrument counts and times requests. It is one thin wrapper rather than
// promhttp's pair because it runs on every request of the hot content path:
// the metric children are looked up once per (method, code), and the
// wrapped writer keeps io.ReaderFrom (sendfile), Flush and Hijack.
func (b *Box) instrument(name string, h http.Handler) http.Handler {
	observe := b.m.duration.WithLabelValues(name)
	var counters sync.Map // "METHOD code" → prometheus.Counter
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		observe.Observe(time.Since(start).Seconds())
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		method := metricMethod(r.Method)
		key := method + " " + strconv.Itoa(code)
		c, ok := counters.Load(key)
		if !ok {
			c, _ = counters.LoadOrStore(key, b.m.requests.WithLabelValues(name, method, strconv.Itoa(code)))
		}
		c.(prometheus.Counter).Inc()
	})
}

// metricMethod bounds the method label: clients may send any token.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions:
		return strings.ToLower(m)
	}
	return "other"
}

// statusWriter remembers the status code a handler sent.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps net/http's sendfile path for file bodies.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return io.Copy(w.ResponseWriter, r)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (b *Box) metricsHandler() http.Handler {
	return promhttp.HandlerFor(b.metrics, promhttp.HandlerOpts{})
}
