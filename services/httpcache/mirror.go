package httpcache

import (
	"net/http"
	"net/url"
	"strings"
)

// Mirror returns a reverse-proxy mirror of origin (scheme, host and an
// optional path prefix): every request, whatever its method, is forwarded
// to the origin with its body; GET and HEAD are answered from the cache
// when RFC 9111 allows it, with CDN-Cache-Control (RFC 9213) taking
// precedence over Cache-Control; unsafe methods invalidate what they
// touch. Each answer carries Age when it comes from the store and a
// Cache-Status member (RFC 9211).
func (c *Cache) Mirror(origin *url.URL, upstream Doer) http.Handler {
	o := *origin
	o.Path = strings.TrimSuffix(o.Path, "/")
	o.RawPath = strings.TrimSuffix(o.RawPath, "/")
	o.RawQuery, o.Fragment, o.ForceQuery = "", "", false
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || r.URL.IsAbs() && !strings.EqualFold(r.URL.Host, r.Host) {
			c.writeError(&request{w: w, r: r}, http.StatusBadRequest, "fwd=method; detail=not-a-proxy",
				"Ce miroir n'est pas un mandataire (proxy)", "This mirror is not a proxy")
			return
		}
		t := o
		t.Path = o.Path + r.URL.Path
		if o.RawPath != "" || r.URL.RawPath != "" {
			t.RawPath = o.EscapedPath() + r.URL.EscapedPath()
		}
		t.RawQuery, t.ForceQuery = r.URL.RawQuery, r.URL.ForceQuery
		c.handle(w, r, &t, upstream, modeMirror)
	})
}
