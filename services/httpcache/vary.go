package httpcache

import (
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
)

// varyField is one request field named by a stored response's Vary, with
// the normalised value the original request carried.
type varyField struct {
	name    string // canonical header name
	present bool
	value   string
}

// parseVary returns the canonical field names listed by the Vary field
// lines, sorted and without duplicates, and star when any member is "*"
// (such a response never matches a later request, RFC 9111 §4.1).
func parseVary(lines []string) (names []string, star bool) {
	seen := map[string]bool{}
	for _, line := range lines {
		for _, f := range strings.Split(line, ",") {
			f = strings.Trim(f, " \t")
			switch {
			case f == "":
			case f == "*":
				star = true
			case validFieldName(f):
				c := textproto.CanonicalMIMEHeaderKey(f)
				if !seen[c] {
					seen[c] = true
					names = append(names, c)
				}
			}
		}
	}
	sort.Strings(names)
	return names, star
}

func validFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// varyFields returns the normalised values of names in the request header.
func varyFields(names []string, h http.Header) []varyField {
	out := make([]varyField, len(names))
	for i, n := range names {
		vs, ok := h[n]
		out[i] = varyField{name: n, present: ok}
		if ok {
			out[i].value = normaliseField(n, vs)
		}
	}
	return out
}

// normaliseField combines the field's lines as one list (RFC 9110 §5.3)
// and removes whitespace that does not change its meaning. Accept-Language
// and Accept-Encoding are also lower-cased and sorted by preference then
// name, since their order among equal preferences carries no meaning.
func normaliseField(name string, lines []string) string {
	var members []string
	for _, l := range lines {
		for _, m := range strings.Split(l, ",") {
			m = strings.Trim(m, " \t")
			if m != "" {
				members = append(members, collapseSpace(m))
			}
		}
	}
	switch name {
	case "Accept-Language", "Accept-Encoding":
		prefs := parsePreferences(members)
		sort.SliceStable(prefs, func(i, j int) bool {
			if prefs[i].q != prefs[j].q {
				return prefs[i].q > prefs[j].q
			}
			return prefs[i].value < prefs[j].value
		})
		members = members[:0]
		for _, p := range prefs {
			if p.q == 1000 {
				members = append(members, p.value)
			} else {
				members = append(members, p.value+";q="+formatQ(p.q))
			}
		}
	}
	return strings.Join(members, ",")
}

// collapseSpace removes the spaces around ";" and "=" inside a list
// member, and the empty parameters this leaves.
func collapseSpace(m string) string {
	if !strings.ContainsAny(m, " \t") {
		return m
	}
	var b strings.Builder
	for _, f := range strings.Split(m, ";") {
		f = strings.Trim(f, " \t")
		if f == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		k, v, ok := strings.Cut(f, "=")
		b.WriteString(strings.Trim(k, " \t"))
		if ok {
			b.WriteByte('=')
			b.WriteString(strings.Trim(v, " \t"))
		}
	}
	return b.String()
}

type preference struct {
	value string
	q     int // qvalue × 1000
}

// parsePreferences reads members of an Accept-* list: value[;q=x].
func parsePreferences(members []string) []preference {
	out := make([]preference, 0, len(members))
	for _, m := range members {
		value, params, _ := strings.Cut(m, ";")
		p := preference{value: strings.ToLower(strings.Trim(value, " \t")), q: 1000}
		if p.value == "" {
			continue
		}
		for _, param := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.Trim(param, " \t"), "=")
			if ok && strings.EqualFold(strings.Trim(k, " \t"), "q") {
				p.q = qvalue(strings.Trim(v, " \t"))
			}
		}
		out = append(out, p)
	}
	return out
}

// formatQ writes thousandths below 1000 as a qvalue: 500 → "0.5".
func formatQ(q int) string {
	s := strconv.Itoa(1000 + q)[1:] // three digits
	s = strings.TrimRight(s, "0")
	if s == "" {
		return "0"
	}
	return "0." + s
}

// qvalue parses "0", "0.5", "1.000" into thousandths; invalid means 1.
func qvalue(s string) int {
	whole, frac, _ := strings.Cut(s, ".")
	if whole != "0" && whole != "1" || len(frac) > 3 {
		return 1000
	}
	n := 0
	if whole == "1" {
		n = 1000
	}
	mult := 100
	for i := 0; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return 1000
		}
		n += int(frac[i]-'0') * mult
		mult /= 10
	}
	if n > 1000 {
		n = 1000
	}
	return n
}

// encodeVary serialises a secondary key for storage: one line per field,
// "name\tP\tvalue" (P is 1 when present). Normalised values hold no
// control characters, so the form is unambiguous.
func encodeVary(fs []varyField) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(f.name)
		if f.present {
			b.WriteString("\t1\t")
		} else {
			b.WriteString("\t0\t")
		}
		b.WriteString(sanitiseKeyPart(f.value))
	}
	return b.String()
}

func sanitiseKeyPart(s string) string {
	if !strings.ContainsAny(s, "\t\n\r") {
		return s
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// decodeVary is the inverse of encodeVary; it reports malformed input.
func decodeVary(s string) ([]varyField, bool) {
	if s == "" {
		return nil, true
	}
	var out []varyField
	for _, line := range strings.Split(s, "\n") {
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 || (parts[1] != "0" && parts[1] != "1") || parts[0] == "" {
			return nil, false
		}
		out = append(out, varyField{name: parts[0], present: parts[1] == "1", value: parts[2]})
	}
	return out, true
}

// varyMatches reports whether a request selects a stored response whose
// secondary key is stored (RFC 9111 §4.1). Beyond exact equality of the
// normalised values, a stored response with a Content-Language answers a
// request whose single most preferred language is that language.
func varyMatches(stored []varyField, req http.Header, contentLanguage string) bool {
	for _, f := range stored {
		vs, ok := req[f.name]
		if ok != f.present {
			return false
		}
		if !ok {
			continue
		}
		v := normaliseField(f.name, vs)
		if sanitiseKeyPart(v) == f.value {
			continue
		}
		if f.name == "Accept-Language" && contentLanguage != "" && topLanguage(v) == strings.ToLower(contentLanguage) {
			continue
		}
		return false
	}
	return true
}

// topLanguage returns the language a normalised Accept-Language prefers
// strictly over all others, or "".
func topLanguage(v string) string {
	prefs := parsePreferences(strings.Split(v, ","))
	if len(prefs) == 0 || prefs[0].q == 0 || len(prefs) > 1 && prefs[1].q == prefs[0].q {
		return ""
	}
	return prefs[0].value
}
