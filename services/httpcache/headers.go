package httpcache

import (
	"net/http"
	"net/url"
	"strings"
)

// hopByHop are the fields that describe one connection, never stored nor
// forwarded (RFC 9110 §7.6.1), with the proxy authentication fields that
// only concern the next hop.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization",
}

// connectionListed returns the canonical names listed by Connection.
func connectionListed(h http.Header) []string {
	var out []string
	for _, line := range h["Connection"] {
		for _, f := range strings.Split(line, ",") {
			if f = strings.Trim(f, " \t"); f != "" && validFieldName(f) {
				out = append(out, http.CanonicalHeaderKey(f))
			}
		}
	}
	return out
}

// endToEnd copies h without hop-by-hop fields and those Connection lists.
func endToEnd(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		out[k] = v
	}
	for _, k := range connectionListed(h) {
		delete(out, k)
	}
	for _, k := range hopByHop {
		delete(out, k)
	}
	return out
}

// headerBytes estimates the wire size of a header block.
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// primaryKey is the cache key of a target URI (RFC 9111 §2): scheme and
// host lower-cased, default port and fragment dropped, an empty path
// written "/".
func primaryKey(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	if h, p, ok := strings.Cut(host, ":"); ok && !strings.Contains(p, ":") &&
		(scheme == "http" && p == "80" || scheme == "https" && p == "443") {
		host = h
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	k := scheme + "://" + host + path
	if u.RawQuery != "" || u.ForceQuery {
		k += "?" + u.RawQuery
	}
	return k
}

// sameOrigin reports whether a and b have the same scheme and host.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// entityTag is a parsed entity-tag. Unquoted tags (not allowed, but sent by
// some servers) are read as if quoted.
type entityTag struct {
	opaque string // with quotes
	weak   bool
}

// parseETags reads a comma-separated list of entity-tags; star reports "*".
func parseETags(s string) (tags []entityTag, star bool) {
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return tags, star
		}
		var t entityTag
		if len(s) >= 2 && (s[0] == 'W' || s[0] == 'w') && s[1] == '/' {
			t.weak = true
			s = s[2:]
		}
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return tags, star
			}
			t.opaque = s[:end+2]
			s = s[end+2:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			tok := s[:end]
			s = s[end:]
			if tok == "*" && !t.weak {
				star = true
				continue
			}
			t.opaque = `"` + tok + `"`
		}
		tags = append(tags, t)
	}
}

// parseETag reads a single entity-tag (a stored ETag field).
func parseETag(s string) (entityTag, bool) {
	tags, star := parseETags(s)
	if len(tags) != 1 || star {
		return entityTag{}, false
	}
	return tags[0], true
}

// etagListMatches compares the stored tag against a list, strongly (both
// strong and equal) or weakly (equal opaque tags).
func etagListMatches(list string, stored string, strong bool) bool {
	st, ok := parseETag(stored)
	tags, star := parseETags(list)
	if star {
		return true
	}
	if !ok {
		return false
	}
	for _, t := range tags {
		if t.opaque == st.opaque && (!strong || !t.weak && !st.weak) {
			return true
		}
	}
	return false
}
