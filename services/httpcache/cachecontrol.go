package httpcache

import (
	"net/http"
	"strings"
)

// maxDelta is the value RFC 9111 §1.2.2 tells a cache to use for any
// delta-seconds it cannot represent: 2^31 seconds (about 68 years).
const maxDelta = 2147483648

// directives are the cache directives of one field (Cache-Control, or the
// targeted CDN-Cache-Control of RFC 9213). Delta values are seconds, -1
// when absent.
type directives struct {
	maxAge, sMaxAge    int64
	maxAgeInvalid      bool // present but not a delta-seconds: the response is stale (RFC 9111 §4.2.1)
	sMaxAgeInvalid     bool
	staleWhileRevalid  int64 // RFC 5861
	staleIfError       int64 // RFC 5861 (response and request)
	noStore, noCache   bool  // unqualified no-cache
	noCacheFields      []string
	private            bool // unqualified private
	privateFields      []string
	public             bool
	mustRevalidate     bool
	proxyRevalidate    bool
	mustUnderstand     bool
	immutable          bool
	maxStale           int64 // request: -1 absent
	maxStaleAny        bool  // request: max-stale without a value
	minFresh           int64 // request
	onlyIfCached       bool  // request
	anyValidDirectives bool
}

func newDirectives() directives {
	return directives{maxAge: -1, sMaxAge: -1, staleWhileRevalid: -1, staleIfError: -1, maxStale: -1, minFresh: -1}
}

// parseCacheControl parses every line of a Cache-Control field
// (RFC 9111 §5.2): a comma-separated list of token [ "=" ( token /
// quoted-string ) ], names case-insensitive. Malformed members (such as
// "max-age =5" or "max-age=5a") make a freshness directive invalid, which
// makes the response stale. When a directive appears twice, the first
// occurrence is used (§4.2.1).
func parseCacheControl(lines []string) directives {
	d := newDirectives()
	seen := map[string]bool{}
	for _, line := range lines {
		for _, m := range splitList(line) {
			name, value, hasValue, ok := parseMember(m)
			if name == "" {
				continue
			}
			name = strings.ToLower(name)
			first := !seen[name]
			seen[name] = true
			d.anyValidDirectives = d.anyValidDirectives || ok
			switch name {
			case "max-age":
				if first {
					d.maxAge, d.maxAgeInvalid = deltaSeconds(value, hasValue && ok)
				}
			case "s-maxage":
				if first {
					d.sMaxAge, d.sMaxAgeInvalid = deltaSeconds(value, hasValue && ok)
				}
			case "stale-while-revalidate":
				if first {
					if v, bad := deltaSeconds(value, hasValue && ok); !bad {
						d.staleWhileRevalid = v
					}
				}
			case "stale-if-error":
				if first {
					if v, bad := deltaSeconds(value, hasValue && ok); !bad {
						d.staleIfError = v
					}
				}
			case "max-stale":
				if !first {
					break
				}
				if !hasValue {
					d.maxStaleAny = ok
				} else if v, bad := deltaSeconds(value, ok); !bad {
					d.maxStale = v
				}
			case "min-fresh":
				if first {
					if v, bad := deltaSeconds(value, hasValue && ok); !bad {
						d.minFresh = v
					}
				}
			case "no-store":
				d.noStore = true
			case "no-cache":
				if hasValue && ok {
					d.noCacheFields = append(d.noCacheFields, fieldNames(value)...)
				} else {
					d.noCache = true
				}
			case "private":
				if hasValue && ok {
					d.privateFields = append(d.privateFields, fieldNames(value)...)
				} else {
					d.private = true
				}
			case "public":
				d.public = true
			case "must-revalidate":
				d.mustRevalidate = true
			case "proxy-revalidate":
				d.proxyRevalidate = true
			case "must-understand":
				d.mustUnderstand = true
			case "immutable":
				d.immutable = true
			case "only-if-cached":
				d.onlyIfCached = true
			}
		}
	}
	return d
}

// splitList splits a list field value at commas outside quoted strings.
func splitList(s string) []string {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseMember parses one list member "name[=value]". ok is false when the
// member is malformed; name is returned anyway when it could be read, so
// that a malformed freshness directive can be treated as invalid.
func parseMember(m string) (name, value string, hasValue, ok bool) {
	m = strings.Trim(m, " \t")
	i := 0
	for i < len(m) && isTokenChar(m[i]) {
		i++
	}
	name, rest := m[:i], m[i:]
	if name == "" {
		return "", "", false, false
	}
	if rest == "" {
		return name, "", false, true
	}
	if rest[0] != '=' {
		return name, "", false, false // e.g. "max-age =5"
	}
	rest = rest[1:]
	if strings.HasPrefix(rest, `"`) {
		v, tail, qok := unquote(rest)
		return name, v, true, qok && tail == ""
	}
	j := 0
	for j < len(rest) && isTokenChar(rest[j]) {
		j++
	}
	if j == 0 || j != len(rest) {
		return name, rest, true, false // e.g. "max-age= 5", "max-age='5'"
	}
	return name, rest, true, true
}

// unquote reads a quoted-string at the start of s and returns its content
// and what follows it.
func unquote(s string) (string, string, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", "", false
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// deltaSeconds parses 1*DIGIT (RFC 9111 §1.2.2), capping at maxDelta. It
// returns invalid=true when the value is missing or not all digits.
func deltaSeconds(s string, ok bool) (v int64, invalid bool) {
	if !ok || s == "" {
		return -1, true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1, true
		}
		if v < maxDelta {
			v = v*10 + int64(c-'0')
		}
	}
	if v > maxDelta {
		v = maxDelta
	}
	return v, false
}

// fieldNames splits the field-name list of a qualified no-cache or
// private directive, lower-cased.
func fieldNames(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) < 0
}

// parseTargeted parses a targeted cache-control field such as
// CDN-Cache-Control (RFC 9213): a Structured Fields Dictionary (RFC 8941)
// whose members carry the Cache-Control directives. ok is false when the
// field is absent, empty or not a valid dictionary: the cache then falls
// back to Cache-Control and Expires. Members of a wrong type are ignored.
func parseTargeted(h http.Header, name string) (directives, bool) {
	lines := h.Values(name)
	if len(lines) == 0 {
		return directives{}, false
	}
	members, ok := parseSFDictionary(strings.Join(lines, ","))
	if !ok || len(members) == 0 {
		return directives{}, false
	}
	d := newDirectives()
	d.anyValidDirectives = true
	for _, m := range members {
		switch m.key {
		case "max-age":
			if m.isInt {
				d.maxAge = capDelta(m.intVal)
			}
		case "s-maxage":
			if m.isInt {
				d.sMaxAge = capDelta(m.intVal)
			}
		case "stale-while-revalidate":
			if m.isInt {
				d.staleWhileRevalid = capDelta(m.intVal)
			}
		case "stale-if-error":
			if m.isInt {
				d.staleIfError = capDelta(m.intVal)
			}
		case "no-store":
			d.noStore = d.noStore || m.isTrue
		case "no-cache":
			if m.isTrue {
				d.noCache = true
			} else if m.strings != nil {
				for _, f := range m.strings {
					d.noCacheFields = append(d.noCacheFields, strings.ToLower(f))
				}
			}
		case "private":
			if m.isTrue {
				d.private = true
			} else if m.strings != nil {
				for _, f := range m.strings {
					d.privateFields = append(d.privateFields, strings.ToLower(f))
				}
			}
		case "public":
			d.public = d.public || m.isTrue
		case "must-revalidate":
			d.mustRevalidate = d.mustRevalidate || m.isTrue
		case "proxy-revalidate":
			d.proxyRevalidate = d.proxyRevalidate || m.isTrue
		}
	}
	return d, true
}

func capDelta(v int64) int64 {
	if v < 0 {
		return -1
	}
	if v > maxDelta {
		return maxDelta
	}
	return v
}
