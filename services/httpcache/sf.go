package httpcache

import "strings"

// sfMember is one member of a Structured Fields Dictionary (RFC 8941),
// reduced to what targeted cache-control needs: integers, the boolean
// true, and inner lists of strings (no-cache="..." style field lists).
type sfMember struct {
	key     string
	isInt   bool
	intVal  int64
	isTrue  bool
	strings []string // inner list of strings or tokens, non-nil when the value is one
}

// parseSFDictionary parses s as an sf-dictionary (RFC 8941 §4.2.2). Any
// syntax error makes the whole field invalid (ok false). A repeated key
// keeps its last value, as the RFC says.
func parseSFDictionary(s string) ([]sfMember, bool) {
	p := sfParser{s: s}
	p.skipSP()
	var out []sfMember
	index := map[string]int{}
	for !p.eof() {
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		m := sfMember{key: key}
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				list, ok := p.innerList()
				if !ok {
					return nil, false
				}
				m.strings = list
			} else {
				if !p.bareItem(&m) {
					return nil, false
				}
				if !p.params() {
					return nil, false
				}
			}
		} else {
			m.isTrue = true
			if !p.params() {
				return nil, false
			}
		}
		if i, dup := index[key]; dup {
			out[i] = m
		} else {
			index[key] = len(out)
			out = append(out, m)
		}
		p.skipOWS()
		if p.eof() {
			return out, true
		}
		if p.peek() != ',' {
			return nil, false
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, false // trailing comma
		}
	}
	return out, true
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
func (p *sfParser) key() (string, bool) {
	start := p.i
	c := p.peek()
	if !(c >= 'a' && c <= 'z' || c == '*') {
		return "", false
	}
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], true
}

// params skips parameters (;key[=value]); their content is not used.
func (p *sfParser) params() bool {
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.peek() == '=' {
			p.i++
			var m sfMember
			if !p.bareItem(&m) {
				return false
			}
		}
	}
	return true
}

// bareItem reads an integer, decimal, string, token, byte sequence or
// boolean into m (only integers and true are kept).
func (p *sfParser) bareItem(m *sfMember) bool {
	c := p.peek()
	switch {
	case c == '-' || c >= '0' && c <= '9':
		return p.number(m)
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '*' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		p.token()
		return true
	case c == ':':
		p.i++
		for !p.eof() && p.s[p.i] != ':' {
			c := p.s[p.i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
				return false
			}
			p.i++
		}
		if p.eof() {
			return false
		}
		p.i++
		return true
	case c == '?':
		p.i++
		switch p.peek() {
		case '1':
			m.isTrue = true
		case '0':
		default:
			return false
		}
		p.i++
		return true
	}
	return false
}

func (p *sfParser) number(m *sfMember) bool {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	start := p.i
	var v int64
	digits, dot := 0, -1
	for !p.eof() {
		c := p.s[p.i]
		if c >= '0' && c <= '9' {
			digits++
			if dot < 0 {
				v = v*10 + int64(c-'0')
			}
			p.i++
			continue
		}
		if c == '.' && dot < 0 {
			if digits > 12 || digits == 0 {
				return false
			}
			dot = p.i - start
			p.i++
			continue
		}
		break
	}
	if digits == 0 {
		return false
	}
	if dot < 0 {
		if digits > 15 {
			return false
		}
		if neg {
			v = -v
		}
		m.isInt = true
		m.intVal = v
		return true
	}
	frac := p.i - start - dot - 1
	return frac >= 1 && frac <= 3 // decimals are not used by any directive
}

func (p *sfParser) str() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.eof() {
				return "", false
			}
			n := p.s[p.i]
			if n != '"' && n != '\\' {
				return "", false
			}
			b.WriteByte(n)
			p.i++
		case c == '"':
			return b.String(), true
		case c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

func (p *sfParser) token() string {
	start := p.i
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if isTokenChar(c) || c == ':' || c == '/' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i]
}

// innerList reads "(" item *( SP item ) ")" parameters and returns the
// string and token items.
func (p *sfParser) innerList() ([]string, bool) {
	p.i++
	out := []string{}
	for {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			return out, p.params()
		}
		switch c := p.peek(); {
		case c == '"':
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			out = append(out, s)
		case c == '*' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			out = append(out, p.token())
		default:
			var m sfMember
			if !p.bareItem(&m) {
				return nil, false
			}
		}
		if !p.params() {
			return nil, false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, false
		}
	}
}
