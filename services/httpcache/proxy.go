package httpcache

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dialer opens the upstream connection of a CONNECT tunnel.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// connectTimeout bounds the dial of a CONNECT tunnel.
const connectTimeout = 30 * time.Second

// Proxy returns the LAN's forward proxy: absolute-form plain-HTTP requests
// go through the cache; CONNECT opens a tunnel whose bytes are copied both
// ways, never decrypted nor cached, to the ports of Config.ConnectPorts.
// It refuses requests for the box itself (loopback, unspecified,
// Config.DenyHosts) and requests that already went through this cache
// (a loop, seen in Via).
func (c *Cache) Proxy(upstream Doer, dial Dialer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := &request{w: w, r: r}
		if c.looped(r) {
			c.writeError(q, http.StatusLoopDetected, "detail=loop",
				"Boucle détectée : la requête est déjà passée par ce mandataire", "Loop detected: the request already went through this proxy")
			return
		}
		if r.Method == http.MethodConnect {
			c.tunnel(w, r, dial)
			return
		}
		if !r.URL.IsAbs() || !strings.EqualFold(r.URL.Scheme, "http") || r.URL.Host == "" {
			c.writeError(q, http.StatusBadRequest, "detail=not-absolute",
				"Requête de mandataire invalide : adresse http:// absolue attendue", "Invalid proxy request: an absolute http:// address is expected")
			return
		}
		if c.denied(r.URL.Hostname()) {
			c.writeError(q, http.StatusForbidden, "detail=denied",
				"Ce mandataire ne relaie pas vers la box elle-même", "This proxy does not relay to the box itself")
			return
		}
		t := *r.URL
		t.Fragment = ""
		r.Header.Del("Proxy-Authorization")
		c.handle(w, r, &t, upstream, modeProxy)
	})
}

func (c *Cache) looped(r *http.Request) bool {
	for _, v := range r.Header["Via"] {
		for _, m := range strings.Split(v, ",") {
			f := strings.Fields(m)
			if len(f) >= 2 && f[1] == c.via {
				return true
			}
		}
	}
	return false
}

// denied reports whether host names the box itself.
func (c *Cache) denied(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if (host == "localhost" || strings.HasSuffix(host, ".localhost")) && !c.allowLoopback {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil && deniedIP(ip) && !c.allowLoopback {
		return true
	}
	for _, d := range c.cfg.DenyHosts {
		if strings.EqualFold(strings.TrimSuffix(d, "."), host) {
			return true
		}
	}
	return false
}

func deniedIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsUnspecified()
}

// tunnel answers CONNECT host:port by opening a TCP connection and copying
// bytes both ways until either side closes.
func (c *Cache) tunnel(w http.ResponseWriter, r *http.Request, dial Dialer) {
	q := &request{w: w, r: r}
	host, portStr, err := net.SplitHostPort(r.Host)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || host == "" {
		c.writeError(q, http.StatusBadRequest, "detail=bad-connect", "CONNECT invalide : hôte:port attendu", "Invalid CONNECT: host:port expected")
		return
	}
	allowed := false
	for _, p := range c.cfg.ConnectPorts {
		allowed = allowed || p == port
	}
	if !allowed || c.denied(host) {
		c.writeError(q, http.StatusForbidden, "detail=denied", "Tunnel refusé vers cette destination", "Tunnel refused to this destination")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), connectTimeout)
	up, err := dial(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		c.writeError(q, http.StatusBadGateway, "detail=connect-failed", "Connexion impossible à la destination", "Cannot connect to the destination")
		return
	}
	if ta, ok := up.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok && deniedIP(ip) && !c.allowLoopback {
			up.Close()
			c.writeError(q, http.StatusForbidden, "detail=denied", "Tunnel refusé vers cette destination", "Tunnel refused to this destination")
			return
		}
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		c.writeError(q, http.StatusInternalServerError, "detail=no-hijack", "Tunnel impossible sur cette connexion", "Tunnel impossible on this connection")
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	c.bypassed.Add(1)
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		conn.Close()
		up.Close()
		return
	}
	// Bytes the client sent after its CONNECT, already buffered.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			conn.Close()
			up.Close()
			return
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go pipe(up, conn)
	go pipe(conn, up)
	wg.Wait()
	conn.Close()
	up.Close()
}
