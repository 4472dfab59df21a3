// Package catalogtest holds fixture servers for the tests of package
// catalog and of appliance: a PeerTube instance (the REST API v1 subset the
// catalogue uses, files with Range support and fault injection) and a GAR
// resource list service that requires a TLS client certificate, with its
// thumbnails. They are written from the public API documentation, on
// 127.0.0.1 only.
//
// Only tests import this package.
package catalogtest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Video is one video of the PeerTube fixture.
type Video struct {
	UUID        string // 8-4-4-4-12 lowercase hex
	Name        string
	Description string
	Channel     string // channel name (handle without host)
	Privacy     int    // 1 public (default when 0), 2 unlisted, 3 private, 4 internal
	Licence     int    // PeerTube licence id, 0 for none
	Language    string // "fr", "" for none
	Live        bool
	Published   time.Time
	Updated     time.Time
	Files       []VideoFile
	Captions    map[string][]byte // language id → WebVTT
	Thumbnail   []byte            // JPEG or PNG bytes; nil for none
}

// VideoFile is one file of a video. Its body is generated from Seed (Size
// bytes), or Body when set.
type VideoFile struct {
	Height int  // resolution id (0 for audio only)
	HLS    bool // in streamingPlaylists[0].files (fragmented MP4) rather than files
	Size   int64
	Seed   uint64
	Body   []byte
	// HideSize publishes the file without its size (the catalogue must
	// skip it).
	HideSize bool
}

func (f VideoFile) size() int64 {
	if f.Body != nil {
		return int64(len(f.Body))
	}
	return f.Size
}

// Served is one file response: the first byte asked and the bytes written.
type Served struct {
	Path  string
	Start int64
	Bytes int64
	Cut   bool
}

// PeerTube is the fixture instance.
type PeerTube struct {
	URL string // http://127.0.0.1:PORT
	srv *httptest.Server

	mu        sync.Mutex
	videos    []*Video
	playlists map[string][]string // id → uuids
	cuts      []int64             // the next file responses are cut after these many bytes
	served    []Served
	requests  map[string]int // "list", "video", "captions", "file"
	failNext  map[string]int // kind → status to answer once
}

// NewPeerTube starts the fixture; it stops when the test ends.
func NewPeerTube(t testing.TB) *PeerTube {
	p := &PeerTube{playlists: map[string][]string{}, requests: map[string]int{}, failNext: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// AddVideo adds (or replaces, by UUID) a video.
func (p *PeerTube) AddVideo(v Video) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v.Privacy == 0 {
		v.Privacy = 1
	}
	if v.Published.IsZero() {
		v.Published = time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(len(p.videos)) * time.Hour)
	}
	if v.Updated.IsZero() {
		v.Updated = v.Published
	}
	for i, o := range p.videos {
		if o.UUID == v.UUID {
			p.videos[i] = &v
			return
		}
	}
	p.videos = append(p.videos, &v)
}

// RemoveVideo removes a video.
func (p *PeerTube) RemoveVideo(uuid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range p.videos {
		if o.UUID == uuid {
			p.videos = append(p.videos[:i], p.videos[i+1:]...)
			return
		}
	}
}

// AddPlaylist sets a playlist's videos, in order.
func (p *PeerTube) AddPlaylist(id string, uuids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.playlists[id] = uuids
}

// CutNext cuts the next file responses after n bytes of body each (one
// response per value): the connection is closed mid-body.
func (p *PeerTube) CutNext(n ...int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts = append(p.cuts, n...)
}

// FailNext answers the next request of kind ("list", "video", "captions",
// "file") with status.
func (p *PeerTube) FailNext(kind string, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext[kind] = status
}

// Served returns the file responses so far.
func (p *PeerTube) Served() []Served {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Served(nil), p.served...)
}

// Requests returns how many requests of kind ("list", "video", "captions",
// "file", "thumbnail", "caption-file") were answered.
func (p *PeerTube) Requests(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[kind]
}

// FileBody returns the body of a video's file.
func FileBody(f VideoFile) io.ReadSeeker {
	if f.Body != nil {
		return strings.NewReader(string(f.Body))
	}
	return io.NewSectionReader(genReader{seed: f.Seed}, 0, f.Size)
}

// genReader is a deterministic body: word i is splitmix64(seed + i).
type genReader struct{ seed uint64 }

func (g genReader) ReadAt(b []byte, off int64) (int, error) {
	var w [8]byte
	for i := range b {
		pos := off + int64(i)
		binary.LittleEndian.PutUint64(w[:], splitmix(g.seed+uint64(pos/8)))
		b[i] = w[pos%8]
	}
	return len(b), nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (p *PeerTube) find(id string) *Video {
	for _, v := range p.videos {
		if v.UUID == id || shortUUID(v.UUID) == id {
			return v
		}
	}
	return nil
}

// shortUUID stands for PeerTube's short UUID (another alphabet there; here
// the hex digits without dashes, enough for the tests).
func shortUUID(uuid string) string { return strings.ReplaceAll(uuid, "-", "")[:22] }

var licenceLabels = map[int]string{1: "Attribution", 2: "Attribution - Share Alike", 3: "Attribution - No Derivatives",
	4: "Attribution - Non Commercial", 5: "Attribution - Non Commercial - Share Alike",
	6: "Attribution - Non Commercial - No Derivatives", 7: "Public Domain Dedication"}

var privacyLabels = map[int]string{1: "Public", 2: "Unlisted", 3: "Private", 4: "Internal", 5: "Password protected"}

func (p *PeerTube) filePath(v *Video, f VideoFile) string {
	if f.HLS {
		return fmt.Sprintf("/static/streaming-playlists/hls/%s/%s-%d-fragmented.mp4", v.UUID, v.UUID, f.Height)
	}
	return fmt.Sprintf("/static/web-videos/%s-%d.mp4", v.UUID, f.Height)
}

// summary is the JSON of a video in lists; details adds files.
func (p *PeerTube) summary(v *Video) map[string]any {
	m := map[string]any{
		"id": 1, "uuid": v.UUID, "shortUUID": shortUUID(v.UUID), "name": v.Name,
		"description":   truncate(v.Description, 250),
		"privacy":       map[string]any{"id": v.Privacy, "label": privacyLabels[v.Privacy]},
		"isLive":        v.Live,
		"publishedAt":   v.Published.UTC().Format(time.RFC3339Nano),
		"updatedAt":     v.Updated.UTC().Format(time.RFC3339Nano),
		"createdAt":     v.Published.UTC().Format(time.RFC3339Nano),
		"duration":      60,
		"channel":       map[string]any{"name": v.Channel, "displayName": "Chaîne " + v.Channel, "host": strings.TrimPrefix(p.URL, "http://")},
		"account":       map[string]any{"name": "prof", "displayName": "Mme Martin"},
		"embedPath":     "/videos/embed/" + v.UUID,
		"thumbnailPath": nil, "previewPath": nil,
	}
	if v.Licence != 0 {
		m["licence"] = map[string]any{"id": v.Licence, "label": licenceLabels[v.Licence]}
	} else {
		m["licence"] = map[string]any{"id": nil, "label": "Unknown"}
	}
	if v.Language != "" {
		m["language"] = map[string]any{"id": v.Language, "label": v.Language}
	} else {
		m["language"] = map[string]any{"id": nil, "label": "Unknown"}
	}
	if v.Thumbnail != nil {
		m["thumbnailPath"] = "/lazy-static/thumbnails/" + v.UUID + ".jpg"
		m["previewPath"] = "/lazy-static/previews/" + v.UUID + ".jpg"
	}
	return m
}

func (p *PeerTube) details(v *Video) map[string]any {
	m := p.summary(v)
	m["description"] = v.Description
	files, hls := []any{}, []any{}
	for _, f := range v.Files {
		j := map[string]any{
			"id":         1,
			"resolution": map[string]any{"id": f.Height, "label": strconv.Itoa(f.Height) + "p"},
			"fileUrl":    p.URL + p.filePath(v, f),
			"fileDownloadUrl": p.URL + strings.Replace(strings.Replace(p.filePath(v, f), "/static/", "/download/", 1),
				"streaming-playlists/hls/"+v.UUID+"/", "streaming-playlists/hls/videos/", 1),
			"fps": 25, "torrentUrl": p.URL + "/lazy-static/torrents/x.torrent",
		}
		if !f.HideSize {
			j["size"] = f.size()
		}
		if f.HLS {
			hls = append(hls, j)
		} else {
			files = append(files, j)
		}
	}
	m["files"] = files
	m["streamingPlaylists"] = []any{}
	if len(hls) > 0 {
		m["streamingPlaylists"] = []any{map[string]any{"id": 1, "type": 1,
			"playlistUrl": p.URL + "/static/streaming-playlists/hls/" + v.UUID + "/master.m3u8", "files": hls}}
	}
	return m
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (p *PeerTube) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	kind := "file"
	switch {
	case strings.HasPrefix(path, "/api/v1/video-channels/"), strings.HasPrefix(path, "/api/v1/video-playlists/"):
		kind = "list"
	case strings.HasPrefix(path, "/api/v1/videos/") && strings.HasSuffix(path, "/captions"):
		kind = "captions"
	case strings.HasPrefix(path, "/api/v1/videos/"):
		kind = "video"
	case strings.HasPrefix(path, "/lazy-static/thumbnails/"), strings.HasPrefix(path, "/lazy-static/previews/"):
		kind = "thumbnail"
	case strings.HasPrefix(path, "/lazy-static/video-captions/"):
		kind = "caption-file"
	}
	p.mu.Lock()
	p.requests[kind]++
	status := p.failNext[kind]
	delete(p.failNext, kind)
	p.mu.Unlock()
	if status != 0 {
		problem(w, status, "injected failure")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		problem(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	switch kind {
	case "list":
		p.serveList(w, r)
	case "captions", "video":
		p.serveVideo(w, r, kind)
	default:
		p.serveStatic(w, r, kind)
	}
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "detail": detail, "title": http.StatusText(status), "type": "about:blank"})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

func (p *PeerTube) serveList(w http.ResponseWriter, r *http.Request) {
	start, count := 0, 15
	if s := r.URL.Query().Get("start"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			problem(w, http.StatusBadRequest, "start should be >= 0")
			return
		}
		start = n
	}
	if s := r.URL.Query().Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			problem(w, http.StatusBadRequest, "count should be between 1 and 100")
			return
		}
		count = n
	}
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api v1 video-channels NAME videos
	if len(seg) != 5 || seg[4] != "videos" {
		problem(w, http.StatusNotFound, "not found")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if seg[2] == "video-playlists" {
		uuids, ok := p.playlists[seg[3]]
		if !ok {
			problem(w, http.StatusNotFound, "Video playlist not found")
			return
		}
		data := []any{}
		for i := start; i < len(uuids) && i < start+count; i++ {
			el := map[string]any{"id": i + 1, "position": i + 1, "startTimestamp": nil, "stopTimestamp": nil, "video": nil}
			if v := p.find(uuids[i]); v != nil && (v.Privacy == 1 || v.Privacy == 2) {
				// Unlisted videos show in playlists; private ones are null.
				el["video"] = p.summary(v)
			}
			data = append(data, el)
		}
		writeJSON(w, map[string]any{"total": len(uuids), "data": data})
		return
	}
	var vids []*Video
	for _, v := range p.videos {
		if v.Channel == seg[3] && v.Privacy == 1 {
			vids = append(vids, v)
		}
	}
	if len(vids) == 0 && !p.hasChannel(seg[3]) {
		problem(w, http.StatusNotFound, "Video channel not found")
		return
	}
	sort.SliceStable(vids, func(i, j int) bool { return vids[i].Published.After(vids[j].Published) })
	data := []any{}
	for i := start; i < len(vids) && i < start+count; i++ {
		data = append(data, p.summary(vids[i]))
	}
	writeJSON(w, map[string]any{"total": len(vids), "data": data})
}

func (p *PeerTube) hasChannel(name string) bool {
	for _, v := range p.videos {
		if v.Channel == name {
			return true
		}
	}
	return false
}

func (p *PeerTube) serveVideo(w http.ResponseWriter, r *http.Request, kind string) {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api v1 videos ID [captions]
	if len(seg) < 4 {
		problem(w, http.StatusNotFound, "Video not found")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.find(seg[3])
	switch {
	case v == nil:
		problem(w, http.StatusNotFound, "Video not found")
		return
	case v.Privacy == 3 || v.Privacy == 4 || v.Privacy == 5:
		// What PeerTube answers an anonymous client for a private video.
		problem(w, http.StatusUnauthorized, "Cannot get this private video")
		return
	}
	if kind == "video" {
		writeJSON(w, p.details(v))
		return
	}
	langs := make([]string, 0, len(v.Captions))
	for l := range v.Captions {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	data := []any{}
	for _, l := range langs {
		cp := "/lazy-static/video-captions/" + v.UUID + "-" + l + ".vtt"
		data = append(data, map[string]any{"language": map[string]any{"id": l, "label": l}, "automaticallyGenerated": false,
			"captionPath": cp, "fileUrl": p.URL + cp, "updatedAt": v.Updated.UTC().Format(time.RFC3339)})
	}
	writeJSON(w, map[string]any{"total": len(data), "data": data})
}

// serveStatic serves files, thumbnails and captions with Range support
// (http.ServeContent: Range, If-Range, ETag) and the injected cuts.
func (p *PeerTube) serveStatic(w http.ResponseWriter, r *http.Request, kind string) {
	p.mu.Lock()
	var body io.ReadSeeker
	var etag, ctype string
	mod := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range p.videos {
		switch r.URL.Path {
		case "/lazy-static/thumbnails/" + v.UUID + ".jpg", "/lazy-static/previews/" + v.UUID + ".jpg":
			if v.Thumbnail != nil {
				body, etag, ctype = strings.NewReader(string(v.Thumbnail)), `"t-`+v.UUID+`"`, "image/jpeg"
			}
		}
		for l, vtt := range v.Captions {
			if r.URL.Path == "/lazy-static/video-captions/"+v.UUID+"-"+l+".vtt" {
				body, etag, ctype = strings.NewReader(string(vtt)), `"c-`+v.UUID+l+`"`, "text/vtt; charset=utf-8"
			}
		}
		for _, f := range v.Files {
			if r.URL.Path == p.filePath(v, f) {
				body, etag, ctype = FileBody(f), fmt.Sprintf(`"f-%s-%d-%d"`, v.UUID, f.Height, f.Seed), "video/mp4"
				mod = v.Updated
			}
		}
	}
	cut := int64(-1)
	if body != nil && kind == "file" && len(p.cuts) > 0 {
		cut, p.cuts = p.cuts[0], p.cuts[1:]
	}
	p.mu.Unlock()
	if body == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	start := int64(0)
	if rg := r.Header.Get("Range"); strings.HasPrefix(rg, "bytes=") {
		if a, _, ok := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-"); ok {
			start, _ = strconv.ParseInt(a, 10, 64)
		}
	}
	cw := &cutWriter{ResponseWriter: w, left: cut}
	rec := Served{Path: r.URL.Path, Start: start}
	defer func() {
		rec.Bytes, rec.Cut = cw.written, cw.cut
		if kind == "file" && r.Method == http.MethodGet {
			p.mu.Lock()
			p.served = append(p.served, rec)
			p.mu.Unlock()
		}
		if cw.cut {
			panic(http.ErrAbortHandler) // close the connection mid-body
		}
	}()
	http.ServeContent(cw, r, "", mod, body)
}

// cutWriter writes at most left bytes of body (-1: no limit), then fails.
type cutWriter struct {
	http.ResponseWriter
	left    int64
	written int64
	cut     bool
}

var errCut = errors.New("fixture: connection cut")

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.left < 0 {
		n, err := c.ResponseWriter.Write(b)
		c.written += int64(n)
		return n, err
	}
	if int64(len(b)) > c.left {
		n, _ := c.ResponseWriter.Write(b[:c.left])
		c.written += int64(n)
		c.left = 0
		c.cut = true
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		return n, errCut
	}
	n, err := c.ResponseWriter.Write(b)
	c.written += int64(n)
	c.left -= int64(n)
	return n, err
}

// Close stops the instance at once (an upstream gone: the link is cut).
func (p *PeerTube) Close() {
	p.srv.CloseClientConnections()
	p.srv.Close()
}
