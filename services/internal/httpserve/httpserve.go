// Package httpserve serves one stored, immutable file over HTTP following
// RFC 9110: byte ranges (single, suffix, multipart/byteranges), conditional
// requests (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
// If-Range) and HEAD.
//
// It exists instead of http.ServeContent because the content store needs
// exact control over the validators (a strong ETag from the blob's SHA-256,
// Last-Modified from the import time), must never sniff a Content-Type, and
// must keep full and single-range bodies zero-copy: bodies are written with
// io.CopyN from the *os.File straight to the http.ResponseWriter, so that
// net/http hands them to sendfile(2).
//
// Only packages under services/ import it (services/internal).
package httpserve

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Meta describes the representation being served.
type Meta struct {
	Size        int64
	ETag        string    // a strong entity tag, quoted: "\"abc\""
	ContentType string    // sent as is; never sniffed
	ModTime     time.Time // Last-Modified; zero means none
	// LastModified, when set, is ModTime already in http.TimeFormat: callers
	// serving the same file often format it once.
	LastModified string
}

// Serve answers a GET or HEAD request for f, whose metadata is m. The caller
// sets any extra headers (Cache-Control, security headers) before calling,
// and is responsible for the method check. f must be at offset 0 (just
// opened), which saves a seek for whole-file answers; its offset is changed.
func Serve(w http.ResponseWriter, r *http.Request, f *os.File, m Meta) {
	pos := int64(0)
	serve(w, r, m, func(start, length int64) bool {
		ok := copyRange(w, f, pos != start, start, length)
		pos = start + length
		return ok
	})
}

// ServeBytes is Serve for a representation held in memory: small, hot files
// whose open, fstat and sendfile would cost more than a copy.
func ServeBytes(w http.ResponseWriter, r *http.Request, b []byte, m Meta) {
	m.Size = int64(len(b))
	serve(w, r, m, func(start, length int64) bool {
		_, err := w.Write(b[start : start+length])
		return err == nil
	})
}

// serve does the HTTP part of Serve and ServeBytes; body writes length bytes
// of the representation from start and reports success.
func serve(w http.ResponseWriter, r *http.Request, m Meta, body func(start, length int64) bool) {
	h := w.Header()
	modTime := m.ModTime.UTC().Truncate(time.Second)
	if m.ETag != "" {
		h.Set("ETag", m.ETag)
	}
	if !m.ModTime.IsZero() {
		lm := m.LastModified
		if lm == "" {
			lm = modTime.Format(http.TimeFormat)
		}
		h.Set("Last-Modified", lm)
	}
	h.Set("Accept-Ranges", "bytes")

	switch checkPreconditions(r, m.ETag, modTime, !m.ModTime.IsZero()) {
	case resultNotModified:
		// RFC 9110 §15.4.5: a 304 carries the validators but no content headers.
		h.Del("Content-Type")
		h.Del("Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	case resultPreconditionFailed:
		h.Del("Content-Type")
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}

	rangeHeader := r.Header.Get("Range")
	if rangeHeader != "" && (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		rangeHeader = ""
	}
	if rangeHeader != "" && !ifRangeHolds(r, m.ETag, modTime, !m.ModTime.IsZero()) {
		rangeHeader = ""
	}
	var ranges []Range
	if rangeHeader != "" {
		rs, err := ParseRange(rangeHeader, m.Size)
		switch {
		case errors.Is(err, ErrUnsatisfiable), errors.Is(err, ErrInvalid):
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(m.Size, 10))
			h.Del("Content-Type")
			h.Set("Content-Type", "text/plain; charset=utf-8")
			msg := "Plage demandée non satisfiable / Requested range not satisfiable\n"
			h.Set("Content-Length", strconv.Itoa(len(msg)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			if r.Method != http.MethodHead {
				io.WriteString(w, msg)
			}
			return
		case err != nil:
			// Unknown unit or too many ranges: RFC 9110 §14.2 lets us ignore Range.
		default:
			ranges = rs
		}
		// Like net/http: a client asking for more bytes than the file holds
		// (overlapping ranges) gets the whole file instead.
		if len(ranges) > 1 && sumLength(ranges) > m.Size {
			ranges = nil
		}
	}
	if m.ContentType != "" {
		h.Set("Content-Type", m.ContentType)
	}

	switch len(ranges) {
	case 0:
		h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		body(0, m.Size)
	case 1:
		ra := ranges[0]
		h.Set("Content-Range", ra.ContentRange(m.Size))
		h.Set("Content-Length", strconv.FormatInt(ra.Length, 10))
		w.WriteHeader(http.StatusPartialContent)
		if r.Method == http.MethodHead {
			return
		}
		body(ra.Start, ra.Length)
	default:
		boundary := newBoundary()
		parts := make([]string, len(ranges))
		var total int64
		for i, ra := range ranges {
			parts[i] = partHeader(boundary, m.ContentType, ra.ContentRange(m.Size), i == 0)
			total += int64(len(parts[i])) + ra.Length
		}
		trailer := "\r\n--" + boundary + "--\r\n"
		total += int64(len(trailer))
		h.Set("Content-Type", "multipart/byteranges; boundary="+boundary)
		h.Set("Content-Length", strconv.FormatInt(total, 10))
		w.WriteHeader(http.StatusPartialContent)
		if r.Method == http.MethodHead {
			return
		}
		for i, ra := range ranges {
			if _, err := io.WriteString(w, parts[i]); err != nil {
				return
			}
			if !body(ra.Start, ra.Length) {
				return
			}
		}
		io.WriteString(w, trailer)
	}
}

// copyRange writes length bytes of f from start. The writer and the file are
// passed to io.CopyN unwrapped, so net/http can use sendfile.
func copyRange(w io.Writer, f *os.File, seek bool, start, length int64) bool {
	if seek {
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return false
		}
	}
	_, err := io.CopyN(w, f, length)
	return err == nil
}

func partHeader(boundary, contentType, contentRange string, first bool) string {
	var b strings.Builder
	if !first {
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "\r\n")
	if contentType != "" {
		b.WriteString("Content-Type: " + contentType + "\r\n")
	}
	b.WriteString("Content-Range: " + contentRange + "\r\n\r\n")
	return b.String()
}

func newBoundary() string {
	var b [15]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sumLength(rs []Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.Length
	}
	return n
}

type precondition int

const (
	resultNone precondition = iota
	resultNotModified
	resultPreconditionFailed
)

// checkPreconditions evaluates the conditional headers in the order of
// RFC 9110 §13.2.2.
func checkPreconditions(r *http.Request, etag string, modTime time.Time, hasModTime bool) precondition {
	// Step 1 and 2.
	if im := r.Header.Get("If-Match"); im != "" {
		if !matchList(im, etag, true) {
			return resultPreconditionFailed
		}
	} else if ius := r.Header.Get("If-Unmodified-Since"); ius != "" && hasModTime {
		if t, err := http.ParseTime(ius); err == nil && modTime.After(t) {
			return resultPreconditionFailed
		}
	}
	// Step 3 and 4.
	getOrHead := r.Method == http.MethodGet || r.Method == http.MethodHead
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if matchList(inm, etag, false) {
			if getOrHead {
				return resultNotModified
			}
			return resultPreconditionFailed
		}
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" && getOrHead && hasModTime {
		if t, err := http.ParseTime(ims); err == nil && !modTime.After(t) {
			return resultNotModified
		}
	}
	return resultNone
}

// ifRangeHolds reports whether a Range header must be honoured given If-Range
// (RFC 9110 §13.1.5): a strong entity tag compared strongly, or an HTTP date
// equal to Last-Modified.
func ifRangeHolds(r *http.Request, etag string, modTime time.Time, hasModTime bool) bool {
	ir := strings.TrimSpace(r.Header.Get("If-Range"))
	if ir == "" {
		return true
	}
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		t, ok := parseETag(ir)
		return ok && !t.weak && etag != "" && t.opaque == etag
	}
	if !hasModTime {
		return false
	}
	t, err := http.ParseTime(ir)
	return err == nil && t.Equal(modTime)
}

type entityTag struct {
	opaque string // with its quotes
	weak   bool
}

// parseETag parses one entity-tag at the start of s and returns it with the
// rest of s in opaque form.
func parseETag(s string) (entityTag, bool) {
	t, rest, ok := scanETag(s)
	if !ok || strings.TrimSpace(rest) != "" {
		return entityTag{}, false
	}
	return t, true
}

func scanETag(s string) (entityTag, string, bool) {
	var t entityTag
	if strings.HasPrefix(s, "W/") {
		t.weak = true
		s = s[2:]
	}
	if len(s) < 2 || s[0] != '"' {
		return t, s, false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			t.opaque = s[:i+1]
			return t, s[i+1:], true
		case c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80:
		default:
			return t, s, false
		}
	}
	return t, s, false
}

// matchList reports whether the If-Match/If-None-Match list value matches
// etag, with strong comparison for If-Match and weak comparison for
// If-None-Match. "*" matches any current representation.
func matchList(list, etag string, strong bool) bool {
	list = strings.TrimSpace(list)
	if list == "*" {
		return true
	}
	if etag == "" {
		return false
	}
	for {
		list = strings.TrimLeft(list, " \t,")
		if list == "" {
			return false
		}
		t, rest, ok := scanETag(list)
		if !ok {
			return false
		}
		if t.opaque == etag && (!strong || !t.weak) {
			return true
		}
		list = rest
	}
}

// Range is one satisfiable byte range of a representation.
type Range struct {
	Start, Length int64
}

// ContentRange returns the Content-Range value of r for a representation of
// the given size.
func (r Range) ContentRange(size int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", r.Start, r.Start+r.Length-1, size)
}

// MaxRanges is the largest number of range specs ParseRange accepts.
const MaxRanges = 64

var (
	// ErrInvalid means the Range header is malformed: the answer is 416.
	ErrInvalid = errors.New("invalid range")
	// ErrUnsatisfiable means no range overlaps the representation: 416.
	ErrUnsatisfiable = errors.New("range not satisfiable")
	// ErrUnknownUnit means a unit other than bytes: the header is ignored.
	ErrUnknownUnit = errors.New("unknown range unit")
	// ErrTooManyRanges means more than MaxRanges specs: the header is ignored.
	ErrTooManyRanges = errors.New("too many ranges")
)

// ParseRange parses a Range header value (RFC 9110 §14.1.2) for a
// representation of size bytes. It returns the satisfiable ranges in the
// order asked, each within [0, size); specs that are syntactically valid but
// unsatisfiable are dropped, and if none is left it returns ErrUnsatisfiable.
func ParseRange(header string, size int64) ([]Range, error) {
	unit, set, ok := strings.Cut(header, "=")
	if !ok {
		return nil, ErrInvalid
	}
	if !strings.EqualFold(unit, "bytes") {
		if !isToken(unit) {
			return nil, ErrInvalid
		}
		return nil, ErrUnknownUnit
	}
	var out []Range
	specs := 0
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue // RFC 9110 §5.6.1: empty list elements are allowed
		}
		specs++
		if specs > MaxRanges {
			return nil, ErrTooManyRanges
		}
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			return nil, ErrInvalid
		}
		if first == "" {
			n, overflow, ok := parseDigits(last)
			if !ok {
				return nil, ErrInvalid
			}
			if n == 0 && !overflow || size == 0 {
				continue // a zero suffix is unsatisfiable
			}
			if overflow || n > size {
				n = size
			}
			out = append(out, Range{Start: size - n, Length: n})
			continue
		}
		start, startOverflow, ok := parseDigits(first)
		if !ok {
			return nil, ErrInvalid
		}
		end := int64(-1)
		if last != "" {
			e, endOverflow, ok := parseDigits(last)
			if !ok {
				return nil, ErrInvalid
			}
			if !endOverflow && (startOverflow || e < start) {
				return nil, ErrInvalid
			}
			if !endOverflow {
				end = e
			}
		}
		if startOverflow || start >= size {
			continue
		}
		if end < 0 || end >= size {
			end = size - 1
		}
		out = append(out, Range{Start: start, Length: end - start + 1})
	}
	if specs == 0 {
		return nil, ErrInvalid
	}
	if len(out) == 0 {
		return nil, ErrUnsatisfiable
	}
	return out, nil
}

// parseDigits parses 1*DIGIT; overflow reports a value beyond int64.
func parseDigits(s string) (n int64, overflow, ok bool) {
	if s == "" {
		return 0, false, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false, false
		}
		if overflow {
			continue
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			overflow = true
			continue
		}
		n = n*10 + d
	}
	return n, overflow, true
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
