package catalog

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Nextcloud public shares ("Nuage"), read through WebDAV: the share link
// https://host/s/TOKEN maps to https://host/public.php/dav/files/TOKEN/
// (Nextcloud ≥ 29, no credential), else to the older
// https://host/public.php/webdav/ with the token as user name and an empty
// password. SourceSpec.WebDAVURL overrides the mapping. Folders are walked
// with PROPFIND Depth: 1; files whose ETag did not change are not fetched
// again; files gone from the share leave the next version of the pack.
// Password-protected shares are not supported.

var shareRe = regexp.MustCompile(`^(.*?)/(?:index\.php/)?s/([A-Za-z0-9_-]{1,64})/?$`)

// davRoot is a WebDAV folder and the user name to send (the token, for
// the older public endpoint).
type davRoot struct {
	url  *url.URL // ends with "/"
	user string
}

// shareRoots returns the WebDAV folders to try for a share link.
func shareRoots(share string) ([]davRoot, error) {
	u, err := url.Parse(strings.TrimSpace(share))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, specError("url", "lien de partage Nuage invalide : donnez l'adresse https://serveur/s/JETON", "invalid Nuage share link: give the address https://server/s/TOKEN")
	}
	m := shareRe.FindStringSubmatch(u.Path)
	if m == nil {
		return nil, specError("url", "lien de partage Nuage non reconnu : donnez l'adresse https://serveur/s/JETON", "Nuage share link not recognised: give the address https://server/s/TOKEN")
	}
	dav := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: m[1] + "/public.php/dav/files/" + m[2] + "/"}
	old := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: m[1] + "/public.php/webdav/"}
	return []davRoot{{url: dav}, {url: old, user: m[2]}}, nil
}

// davEntry is one resource of a PROPFIND answer.
type davEntry struct {
	path      string // decoded path of the href, without trailing slash
	dir       bool
	size      int64 // -1 when not given
	etag      string
	mediaType string
}

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
				ETag          string `xml:"DAV: getetag"`
				ContentType   string `xml:"DAV: getcontenttype"`
			} `xml:"DAV: prop"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
}

// parseMultistatus reads a 207 answer; properties count only with a 2xx
// status.
func parseMultistatus(data []byte) ([]davEntry, error) {
	var ms multistatus
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(&ms); err != nil {
		return nil, fmt.Errorf("read multistatus: %w", err)
	}
	var out []davEntry
	for _, r := range ms.Responses {
		if r.Status != "" && !statusOK(r.Status) {
			continue
		}
		u, err := url.Parse(strings.TrimSpace(r.Href))
		if err != nil || u.Path == "" {
			continue
		}
		e := davEntry{path: strings.TrimSuffix(u.Path, "/"), size: -1}
		for _, ps := range r.Propstat {
			if !statusOK(ps.Status) {
				continue
			}
			p := ps.Prop
			if p.ResourceType.Collection != nil {
				e.dir = true
			}
			if n, err := strconv.ParseInt(strings.TrimSpace(p.ContentLength), 10, 64); err == nil && n >= 0 {
				e.size = n
			}
			if t := strings.TrimSpace(p.ETag); t != "" && len(t) <= 200 {
				e.etag = t
			}
			if t := strings.TrimSpace(p.ContentType); t != "" {
				e.mediaType = t
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func statusOK(s string) bool {
	f := strings.Fields(s)
	if len(f) < 2 {
		return false
	}
	n, err := strconv.Atoi(f[1])
	return err == nil && n >= 200 && n < 300
}

const propfindBody = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getcontentlength/><d:getetag/><d:getcontenttype/></d:prop></d:propfind>`

// fileURL is the address of rel (a '/'-separated path) under root, each
// segment escaped; the older endpoint's token rides as the URL's user, which
// net/http sends as Basic authentication.
func (r davRoot) fileURL(rel string) string {
	u := *r.url
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(r.url.EscapedPath(), "/"))
	for seg := range strings.SplitSeq(rel, "/") {
		b.WriteString("/")
		b.WriteString(url.PathEscape(seg))
	}
	u.Path, u.RawPath = "", ""
	if rel == "" {
		b.WriteString("/")
	}
	out := u.Scheme + "://" + u.Host + b.String()
	if r.user != "" {
		out = u.Scheme + "://" + url.UserPassword(r.user, "").String() + "@" + u.Host + b.String()
	}
	return out
}

// propfind lists one folder (Depth: 1).
func (c *Catalog) propfind(ctx context.Context, root davRoot, rel string) ([]davEntry, error) {
	op := "PROPFIND /" + rel
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	u := root.fileURL(rel)
	if rel != "" {
		u += "/"
	}
	pu, err := url.Parse(u)
	if err != nil {
		return nil, permanent(op, "adresse invalide", "invalid address", err)
	}
	pu.User = nil
	req, err := http.NewRequestWithContext(ctx, "PROPFIND", pu.String(), strings.NewReader(propfindBody))
	if err != nil {
		return nil, permanent(op, "adresse invalide", "invalid address", err)
	}
	req.Header.Set("Depth", "1")
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	if root.user != "" {
		req.SetBasicAuth(root.user, "")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, netError(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus {
		return nil, statusError(op, resp)
	}
	data, err := readLimited(resp.Body, c.cfg.MaxMetadataBytes, op)
	if err != nil {
		return nil, err
	}
	entries, err := parseMultistatus(data)
	if err != nil {
		return nil, badAnswer(op, err)
	}
	return entries, nil
}

type shareFile struct {
	rel       string
	size      int64
	etag      string
	mediaType string
}

// walkShare lists every file under root, folder by folder.
func (c *Catalog) walkShare(ctx context.Context, root davRoot) ([]shareFile, error) {
	rootPath, err := url.PathUnescape(strings.TrimSuffix(root.url.EscapedPath(), "/"))
	if err != nil {
		return nil, err
	}
	var files []shareFile
	queue := []string{""}
	folders := 0
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		if folders++; folders > 10000 {
			return nil, permanent("walk share", "partage trop grand (plus de 10 000 dossiers)", "share too large (more than 10,000 folders)", nil)
		}
		entries, err := c.propfind(ctx, root, dir)
		if err != nil {
			return nil, err
		}
		self := rootPath
		if dir != "" {
			self += "/" + dir
		}
		for _, e := range entries {
			if e.path == self {
				continue
			}
			rel, ok := strings.CutPrefix(e.path, self+"/")
			if !ok || rel == "" || strings.Contains(rel, "/") {
				continue // not a child of this folder
			}
			if dir != "" {
				rel = dir + "/" + rel
			}
			if !validPackPath(rel) || strings.Count(rel, "/") > 32 {
				c.log.Warn("catalog: share file with an unusable name left out", "path", shorten(rel))
				continue
			}
			if e.dir {
				queue = append(queue, rel)
				continue
			}
			if len(files) >= c.cfg.MaxShareFiles {
				return nil, permanent("walk share", fmt.Sprintf("partage trop grand (plus de %d fichiers)", c.cfg.MaxShareFiles),
					fmt.Sprintf("share too large (more than %d files)", c.cfg.MaxShareFiles), nil)
			}
			files = append(files, shareFile{rel: rel, size: e.size, etag: e.etag, mediaType: e.mediaType})
		}
	}
	return files, nil
}

// listShare lists a Nextcloud share: one item, the share's pack.
func (c *Catalog) listShare(ctx context.Context, src Source) ([]listedItem, error) {
	var roots []davRoot
	if src.Spec.WebDAVURL != "" {
		u, err := url.Parse(src.Spec.WebDAVURL)
		if err != nil {
			return nil, specError("webdav_url", "adresse WebDAV invalide", "invalid WebDAV address")
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		u.RawPath = ""
		roots = []davRoot{{url: u}}
	} else {
		var err error
		if roots, err = shareRoots(src.Spec.URL); err != nil {
			return nil, err
		}
	}
	var files []shareFile
	var root davRoot
	var err error
	for i, r := range roots {
		root = r
		files, err = c.walkShare(ctx, r)
		var e *Error
		if err == nil || i == len(roots)-1 || !asStatus(err, &e) ||
			(e.Status != http.StatusNotFound && e.Status != http.StatusMethodNotAllowed && e.Status != http.StatusNotImplemented && e.Status != http.StatusUnauthorized) {
			break
		}
		c.log.Info("catalog: share not found at the public WebDAV endpoint, trying the older one", "source", src.ID, "status", e.Status)
	}
	if err != nil {
		var e *Error
		if asStatus(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
			return nil, permanent("read share", "le partage demande un mot de passe ou n'est pas lisible (dépôt seul) : partagez le dossier en lecture sans mot de passe",
				"the share needs a password or cannot be read (file drop): share the folder read-only without a password", err)
		}
		return nil, err
	}
	title := src.Name
	l := listedItem{key: "share", kind: itemShare, title: title}
	if len(files) == 0 {
		l.failFR, l.failEN = "le partage est vide : rien à mettre hors ligne", "the share is empty: nothing to make available offline"
		return []listedItem{l}, nil
	}
	m := &manifest{ID: "nuage-" + shortHash(root.url.String(), 12), Title: title, Language: c.cfg.Language,
		Publisher: "Nuage"}
	var p plan
	ids := map[string]bool{}
	for _, f := range files {
		mt := mediaTypeOf(f.rel, f.mediaType)
		p.Files = append(p.Files, planFile{Path: f.rel, URL: root.fileURL(f.rel), Size: f.size, ETag: f.etag, MediaType: mt})
		id := slug(f.rel, 55)
		if id == "" || ids[id] {
			id = strings.Trim(slug(f.rel, 46)+"-"+shortHash(f.rel, 8), "-")
		}
		ids[id] = true
		name := path.Base(f.rel)
		m.Items = append(m.Items, manifestItem{ID: id, Title: cleanText(name, maxTitle), Kind: kindOf(mt), Entry: f.rel,
			Levels: []string{}, Subjects: []string{}, Source: cleanText(title, 300), Files: []manifestFile{{Path: f.rel}}})
	}
	p.Manifest = m
	l.plan = p
	return []listedItem{l}, nil
}

func asStatus(err error, e **Error) bool {
	for err != nil {
		if x, ok := err.(*Error); ok {
			*e = x
			return x.Status != 0
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
