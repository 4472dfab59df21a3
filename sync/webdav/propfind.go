package webdav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// entry is one resource of a PROPFIND answer.
type entry struct {
	path     string // decoded path of the href, without trailing slash
	dir      bool
	size     int64             // -1 when the server gave none
	sums     map[string]string // "SHA256", "SHA1", "MD5"… → lowercase hex
	modified time.Time
}

func (e entry) name() string { return path.Base(e.path) }

// The answer to a PROPFIND (RFC 4918 §14.16), with Nextcloud's
// oc:checksums (space-separated "TYPE:hex" values).
type multistatus struct {
	Responses []struct {
		Href     string `xml:"DAV: href"`
		Status   string `xml:"DAV: status"`
		Propstat []struct {
			Status string `xml:"DAV: status"`
			Prop   struct {
				ResourceType struct {
					Collection *struct{} `xml:"DAV: collection"`
				} `xml:"DAV: resourcetype"`
				ContentLength string `xml:"DAV: getcontentlength"`
				LastModified  string `xml:"DAV: getlastmodified"`
				Checksums     struct {
					Checksum []string `xml:"http://owncloud.org/ns checksum"`
				} `xml:"http://owncloud.org/ns checksums"`
			} `xml:"DAV: prop"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
}

const maxListing = 16 << 20

// parseMultistatus reads a 207 answer. Only properties reported with a 2xx
// status count; responses with a non-2xx status are left out.
func parseMultistatus(data []byte) ([]entry, error) {
	var ms multistatus
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(&ms); err != nil {
		return nil, fmt.Errorf("read multistatus: %w", err)
	}
	var out []entry
	for _, r := range ms.Responses {
		if r.Status != "" && !statusOK(r.Status) {
			continue
		}
		u, err := url.Parse(strings.TrimSpace(r.Href))
		if err != nil || u.Path == "" {
			continue
		}
		e := entry{path: strings.TrimSuffix(u.Path, "/"), size: -1}
		if e.path == "" {
			e.path = "/"
		}
		found := false
		for _, ps := range r.Propstat {
			if !statusOK(ps.Status) {
				continue
			}
			found = true
			p := ps.Prop
			if p.ResourceType.Collection != nil {
				e.dir = true
			}
			if s := strings.TrimSpace(p.ContentLength); s != "" {
				if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
					e.size = n
				}
			}
			if s := strings.TrimSpace(p.LastModified); s != "" {
				if t, err := http.ParseTime(s); err == nil {
					e.modified = t
				}
			}
			for _, cs := range p.Checksums.Checksum {
				for _, f := range strings.Fields(cs) {
					algo, sum, ok := strings.Cut(f, ":")
					if ok && algo != "" && isHex(sum) {
						if e.sums == nil {
							e.sums = map[string]string{}
						}
						e.sums[strings.ToUpper(algo)] = strings.ToLower(sum)
					}
				}
			}
		}
		if found || len(r.Propstat) == 0 {
			out = append(out, e)
		}
	}
	return out, nil
}

// statusOK reads "HTTP/1.1 200 OK".
func statusOK(s string) bool {
	f := strings.Fields(s)
	if len(f) < 2 {
		return false
	}
	n, err := strconv.Atoi(f[1])
	return err == nil && n >= 200 && n < 300
}

func isHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

const propfindBody = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>` +
	`<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><oc:checksums/>` +
	`</d:prop></d:propfind>`

// errNotFound: the PROPFIND target does not exist.
var errNotFound = errors.New("webdav: not found")

// propfind lists u (Depth 0 or 1). It returns errNotFound for 404 and 409
// (a missing parent), the *http.Response's status as an *Error otherwise.
func (c *Client) propfind(ctx context.Context, op, u string, depth int) ([]entry, int, error) {
	h := http.Header{}
	h.Set("Depth", strconv.Itoa(depth))
	h.Set("Content-Type", "application/xml; charset=utf-8")
	code, resp, data, err := c.exchange(ctx, op, request{method: "PROPFIND", url: u, header: h,
		body: strings.NewReader(propfindBody), size: int64(len(propfindBody))}, maxListing)
	if err != nil {
		return nil, 0, err
	}
	switch code {
	case http.StatusMultiStatus:
	case http.StatusNotFound, http.StatusConflict:
		return nil, code, errNotFound
	default:
		return nil, code, c.statusError(op, resp)
	}
	entries, err := parseMultistatus(data)
	if err != nil {
		return nil, code, transient(op, err, "réponse illisible du serveur de destination ("+op+") ; nouvel essai automatique",
			"unreadable answer from the destination server ("+op+"); retrying automatically")
	}
	return entries, code, nil
}

// statURL returns the entry of u itself.
func (c *Client) statURL(ctx context.Context, op, u string) (entry, error) {
	entries, _, err := c.propfind(ctx, op, u, 0)
	if err != nil {
		return entry{}, err
	}
	want := ""
	if pu, err := url.Parse(u); err == nil {
		want = strings.TrimSuffix(pu.Path, "/")
	}
	for _, e := range entries {
		if e.path == want {
			return e, nil
		}
	}
	if len(entries) == 1 { // a server that rewrites hrefs (a proxy's prefix)
		return entries[0], nil
	}
	return entry{}, errNotFound
}

// children lists the folder u, without u itself.
func (c *Client) children(ctx context.Context, op, u string) ([]entry, error) {
	entries, _, err := c.propfind(ctx, op, u, 1)
	if err != nil {
		return nil, err
	}
	self := ""
	if pu, err := url.Parse(u); err == nil {
		self = strings.TrimSuffix(pu.Path, "/")
	}
	var out []entry
	for _, e := range entries {
		if e.path != self {
			out = append(out, e)
		}
	}
	return out, nil
}
