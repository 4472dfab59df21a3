package httpcache

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Transport is an http.RoundTripper (and Doer) that sends requests through
// the cache: what other components fetch upstream obeys RFC 9111
// (stored responses reused while fresh, revalidated with 304 when stale,
// served stale when the uplink is down). Requests must carry an absolute
// http or https URL.
type Transport struct {
	c  *Cache
	up Doer
}

// Transport returns a Transport whose misses and validations go through
// upstream.
func (c *Cache) Transport(upstream Doer) *Transport { return &Transport{c: c, up: upstream} }

// Do sends req through the cache.
func (t *Transport) Do(req *http.Request) (*http.Response, error) { return t.RoundTrip(req) }

// RoundTrip implements http.RoundTripper. The response body streams from
// the store or from upstream; a body cut short upstream reads as
// io.ErrUnexpectedEOF.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || !req.URL.IsAbs() || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return nil, errors.New("httpcache transport: absolute http(s) URL required")
	}
	r := req.Clone(req.Context())
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	rw := &pipeWriter{h: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					pw.CloseWithError(errors.New("httpcache transport: internal error"))
					rw.signal()
					panic(v)
				}
				pw.CloseWithError(io.ErrUnexpectedEOF)
				rw.signal()
				return
			}
			rw.WriteHeader(http.StatusOK) // nothing written: an empty 200
			pw.Close()
		}()
		t.c.handle(rw, r, r.URL, t.up, modeClient)
	}()
	select {
	case <-rw.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	if rw.code == 0 {
		return nil, io.ErrUnexpectedEOF
	}
	resp := &http.Response{
		Status:        strconv.Itoa(rw.code) + " " + http.StatusText(rw.code),
		StatusCode:    rw.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rw.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}
	if cl, err := strconv.ParseInt(rw.sent.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		resp.ContentLength = cl
	}
	if req.Method == http.MethodHead || rw.code == http.StatusNotModified || rw.code == http.StatusNoContent {
		pr.Close()
		resp.Body = http.NoBody
	}
	return resp, nil
}

// pipeWriter is the ResponseWriter behind Transport: the header is handed
// over at WriteHeader, the body through a pipe.
type pipeWriter struct {
	h     http.Header
	sent  http.Header
	code  int
	pw    *io.PipeWriter
	ready chan struct{}
	once  sync.Once
}

func (p *pipeWriter) Header() http.Header { return p.h }

func (p *pipeWriter) WriteHeader(code int) {
	if p.code != 0 || code < 200 {
		return
	}
	p.code = code
	p.sent = p.h.Clone()
	for k, v := range p.sent {
		if v == nil {
			delete(p.sent, k)
		}
	}
	p.signal()
}

func (p *pipeWriter) signal() { p.once.Do(func() { close(p.ready) }) }

func (p *pipeWriter) Write(b []byte) (int, error) {
	if p.code == 0 {
		p.WriteHeader(http.StatusOK)
	}
	return p.pw.Write(b)
}

// UpstreamTransport returns an http.Transport suited to the cache's
// upstream: no transparent compression (stored bodies keep their
// Content-Encoding), response headers bounded by cfg.MaxHeaderBytes, and
// the header timeout. Wrap it in an http.Client whose CheckRedirect returns
// http.ErrUseLastResponse: the cache passes redirects on, it does not
// follow them.
func UpstreamTransport(cfg Config) *http.Transport {
	cfg = cfg.WithDefaults()
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		DisableCompression:     true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    15 * time.Second,
		ResponseHeaderTimeout:  cfg.HeaderTimeout,
		MaxResponseHeaderBytes: int64(cfg.MaxHeaderBytes),
		ForceAttemptHTTP2:      true,
	}
}

// UpstreamClient wraps UpstreamTransport in a client that does not follow
// redirects.
func UpstreamClient(cfg Config) *http.Client {
	return &http.Client{
		Transport:     UpstreamTransport(cfg),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
