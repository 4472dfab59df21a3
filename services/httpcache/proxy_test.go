package httpcache

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func newProxy(t *testing.T, e *env, allowLoopback bool) *httptest.Server {
	e.c.allowLoopback = allowLoopback
	d := &net.Dialer{Timeout: 5 * time.Second}
	p := httptest.NewServer(e.c.Proxy(UpstreamClient(e.c.cfg), d.DialContext))
	t.Cleanup(p.Close)
	return p
}

func proxyClient(p *httptest.Server, tlsConf *tls.Config) *http.Client {
	u, _ := url.Parse(p.URL)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: tlsConf, DisableKeepAlives: true}}
}

func TestProxyCachesPlainHTTP(t *testing.T) {
	e := newEnv(t)
	p := newProxy(t, e, true)
	e.origin.set(reply(200, "page", "Cache-Control: max-age=60")(e.clock.Now))
	cl := proxyClient(p, nil)
	for i, wantHit := range []bool{false, true} {
		resp, err := cl.Get(e.origin.URL + "/page?x=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hit := strings.Contains(resp.Header.Get("Cache-Status"), "hit")
		if string(b) != "page" || hit != wantHit {
			t.Errorf("request %d: %q hit=%v, want hit=%v", i+1, b, hit, wantHit)
		}
	}
	if e.origin.count() != 1 {
		t.Errorf("origin saw %d requests, want 1", e.origin.count())
	}
	if got := e.origin.last().Header.Get("Proxy-Connection"); got != "" {
		t.Errorf("hop-by-hop field forwarded: Proxy-Connection %q", got)
	}
}

func TestProxyRefusals(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DenyHosts = []string{"box.lan"} })
	p := newProxy(t, e, false)
	tests := []struct {
		name string
		raw  string
		want int
	}{
		{"loopback target", "GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusForbidden},
		{"localhost", "GET http://localhost:1/ HTTP/1.1\r\nHost: localhost:1\r\n\r\n", http.StatusForbidden},
		{"the box itself", "GET http://box.lan/ HTTP/1.1\r\nHost: box.lan\r\n\r\n", http.StatusForbidden},
		{"loop", "GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\nVia: 1.1 other, 1.1 " + e.c.via + "\r\n\r\n", http.StatusLoopDetected},
		{"origin-form", "GET /x HTTP/1.1\r\nHost: example.test\r\n\r\n", http.StatusBadRequest},
		{"https in absolute form", "GET https://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n", http.StatusBadRequest},
		{"CONNECT to a port not allowed", "CONNECT example.test:25 HTTP/1.1\r\nHost: example.test:25\r\n\r\n", http.StatusForbidden},
		{"CONNECT to loopback", "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n", http.StatusForbidden},
	}
	for _, tt := range tests {
		conn, err := net.Dial("tcp", p.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, tt.raw)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
}

// TestProxyConnectTunnel opens an HTTPS exchange through CONNECT: the
// client's TLS session ends at the origin (the proxy never decrypts), and
// nothing is stored.
func TestProxyConnectTunnel(t *testing.T) {
	e := newEnv(t)
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		fmt.Fprintf(w, "secret over %s", r.Proto)
	}))
	defer tlsOrigin.Close()
	_, port, _ := net.SplitHostPort(tlsOrigin.Listener.Addr().String())
	var p int
	fmt.Sscan(port, &p)
	e.c.cfg.ConnectPorts = []int{p}
	px := newProxy(t, e, true)
	cl := proxyClient(px, tlsOrigin.Client().Transport.(*http.Transport).TLSClientConfig)
	for range 2 {
		resp, err := cl.Get(tlsOrigin.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "secret over HTTP/1.1" || resp.TLS == nil || resp.Header.Get("Cache-Status") != "" {
			t.Errorf("tunnelled answer %q (TLS %v, Cache-Status %q)", b, resp.TLS != nil, resp.Header.Get("Cache-Status"))
		}
	}
	if st := e.c.Status(t.Context()); st.Entries != 0 {
		t.Errorf("tunnelled traffic stored: %+v", st)
	}
}

func TestTransport(t *testing.T) {
	e := newEnv(t)
	tr := e.c.Transport(UpstreamClient(e.c.cfg))
	cl := &http.Client{Transport: tr}
	get := func() (string, string, error) {
		resp, err := cl.Get(e.origin.URL + "/catalogue.json")
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), resp.Header.Get("Cache-Status"), err
	}
	e.origin.set(validator(`"c1"`, "", `{"items":1}`, "Cache-Control: max-age=60")(e.clock.Now))
	steps := []struct {
		advance   time.Duration
		down      bool
		wantBody  string
		wantState string
	}{
		{0, false, `{"items":1}`, "fwd=uri-miss; stored"},
		{10 * time.Second, false, `{"items":1}`, "hit"},
		{2 * time.Minute, false, `{"items":1}`, "fwd-status=304"},
		{10 * time.Minute, true, `{"items":1}`, "upstream-unreachable"},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		if s.down {
			e.origin.set(hangUp()(e.clock.Now))
		}
		body, state, err := get()
		if err != nil || body != s.wantBody || !strings.Contains(state, s.wantState) {
			t.Errorf("step %d: %q, %q, %v; want %q, %q", i+1, body, state, err, s.wantBody, s.wantState)
		}
	}
	// A truncated upstream body reads as an error, never as complete.
	rawReply(e, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", 0)
	resp, err := cl.Get(e.origin.URL + "/cut")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("truncated body read without error")
	}
	if _, err := tr.RoundTrip(&http.Request{Method: "GET", URL: &url.URL{Path: "/relative"}}); err == nil {
		t.Error("relative URL accepted")
	}
}
