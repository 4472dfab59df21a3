package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PeerTube (apps.education "Tube" or any instance), REST API v1: a
// channel's videos (/api/v1/video-channels/{handle}/videos), a playlist's
// (/api/v1/video-playlists/{id}/videos), a video (/api/v1/videos/{id})
// with its web-video files[] and HLS streamingPlaylists[].files[]
// (resolution.id, size, fileUrl, fileDownloadUrl), its captions
// (/api/v1/videos/{id}/captions), thumbnail, licence and privacy. Lists are
// paginated with start and count (100 at most).

type tubeKind string

const (
	tubeChannel  tubeKind = "channel"
	tubePlaylist tubeKind = "playlist"
	tubeVideo    tubeKind = "video"

	tubePage = 100 // the API's largest page
)

type tubeTarget struct {
	base string // scheme://host
	kind tubeKind
	id   string
}

var tubeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$`)

// parseTubeURL reads the page address a teacher copies: a channel
// (/c/NAME, /video-channels/NAME), a playlist (/w/p/ID,
// /videos/watch/playlist/ID, /video-playlists/ID) or a video (/w/ID,
// /videos/watch/ID).
func parseTubeURL(s string) (tubeTarget, error) {
	fail := func() (tubeTarget, error) {
		return tubeTarget{}, specError("url", "adresse PeerTube non reconnue : donnez la page d'une chaîne (/c/NOM), d'une liste de lecture (/w/p/ID) ou d'une vidéo (/w/ID)",
			"PeerTube address not recognised: give the page of a channel (/c/NAME), a playlist (/w/p/ID) or a video (/w/ID)")
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fail()
	}
	seg := strings.Split(strings.Trim(u.Path, "/"), "/")
	t := tubeTarget{base: u.Scheme + "://" + u.Host}
	switch {
	case len(seg) >= 2 && (seg[0] == "c" || seg[0] == "video-channels"):
		t.kind, t.id = tubeChannel, seg[1]
	case len(seg) >= 3 && seg[0] == "w" && seg[1] == "p":
		t.kind, t.id = tubePlaylist, seg[2]
	case len(seg) >= 4 && seg[0] == "videos" && seg[1] == "watch" && seg[2] == "playlist":
		t.kind, t.id = tubePlaylist, seg[3]
	case len(seg) >= 2 && seg[0] == "video-playlists":
		t.kind, t.id = tubePlaylist, seg[1]
	case len(seg) >= 2 && seg[0] == "w":
		t.kind, t.id = tubeVideo, seg[1]
	case len(seg) >= 3 && seg[0] == "videos" && seg[1] == "watch":
		t.kind, t.id = tubeVideo, seg[2]
	default:
		return fail()
	}
	if !tubeIDPattern.MatchString(t.id) {
		return fail()
	}
	return t, nil
}

// Decoders of the API's answers: only the fields the catalogue uses.

type tubeNumConst struct {
	ID    int    `json:"id"`
	Label string `json:"label"`
}

type tubeStrConst struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

type tubeFile struct {
	Resolution struct {
		ID    int    `json:"id"`
		Label string `json:"label"`
	} `json:"resolution"`
	Size            int64  `json:"size"`
	FileURL         string `json:"fileUrl"`
	FileDownloadURL string `json:"fileDownloadUrl"`
}

type tubeThumb struct {
	FileURL string `json:"fileUrl"`
	Width   int    `json:"width"`
}

type tubeActor struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Host        string `json:"host"`
}

type tubeVideoJSON struct {
	UUID               string        `json:"uuid"`
	ShortUUID          string        `json:"shortUUID"`
	Name               string        `json:"name"`
	Description        string        `json:"description"`
	Privacy            *tubeNumConst `json:"privacy"`
	Licence            *tubeNumConst `json:"licence"`
	Language           *tubeStrConst `json:"language"`
	IsLive             bool          `json:"isLive"`
	ThumbnailPath      string        `json:"thumbnailPath"`
	PreviewPath        string        `json:"previewPath"`
	Thumbnails         []tubeThumb   `json:"thumbnails"`
	PublishedAt        string        `json:"publishedAt"`
	UpdatedAt          string        `json:"updatedAt"`
	Channel            *tubeActor    `json:"channel"`
	Account            *tubeActor    `json:"account"`
	Files              []tubeFile    `json:"files"`
	StreamingPlaylists []struct {
		Type  int        `json:"type"`
		Files []tubeFile `json:"files"`
	} `json:"streamingPlaylists"`
}

type tubeVideoList struct {
	Total int             `json:"total"`
	Data  []tubeVideoJSON `json:"data"`
}

type tubePlaylistList struct {
	Total int `json:"total"`
	Data  []struct {
		Position int            `json:"position"`
		Video    *tubeVideoJSON `json:"video"`
	} `json:"data"`
}

type tubeCaptionList struct {
	Data []struct {
		Language    tubeStrConst `json:"language"`
		CaptionPath string       `json:"captionPath"`
		FileURL     string       `json:"fileUrl"`
	} `json:"data"`
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// parseVideoPage decodes one page of a channel's videos, or of a
// playlist's (elements whose video is gone are dropped).
func parseVideoPage(data []byte, playlist bool) (videos []tubeVideoJSON, total int, err error) {
	if playlist {
		var l tubePlaylistList
		if err := json.Unmarshal(data, &l); err != nil {
			return nil, 0, err
		}
		for _, e := range l.Data {
			if e.Video != nil {
				videos = append(videos, *e.Video)
			}
		}
		return videos, l.Total, nil
	}
	var l tubeVideoList
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, 0, err
	}
	return l.Data, l.Total, nil
}

// parseVideo decodes a video's details.
func parseVideo(data []byte) (tubeVideoJSON, error) {
	var v tubeVideoJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return v, err
	}
	if !uuidPattern.MatchString(v.UUID) {
		return v, fmt.Errorf("uuid %q invalide / invalid uuid", shorten(v.UUID))
	}
	return v, nil
}

// chooseFile picks the file fit for tablets: the largest resolution at most
// height, else the smallest; web-video MP4 files first, else the HLS
// playlist's fragmented MP4 files (each still a single file). Files without
// a size or an address are skipped; audio-only files only when nothing
// else exists.
func chooseFile(v tubeVideoJSON, height int) (tubeFile, bool) {
	pick := func(files []tubeFile) (tubeFile, bool) {
		var best tubeFile
		found := false
		better := func(f tubeFile) bool {
			if !found {
				return true
			}
			r, b := f.Resolution.ID, best.Resolution.ID
			switch {
			case (r <= height) != (b <= height):
				return r <= height // one fits, the other does not
			case r <= height && r != b:
				return r > b // both fit: the larger
			case r > height && r != b:
				return r < b // neither fits: the smaller
			}
			return f.Size < best.Size
		}
		for _, audio := range []bool{false, true} {
			for _, f := range files {
				if f.Size <= 0 || fileAddress(f) == "" || (f.Resolution.ID == 0) != audio || f.Resolution.ID < 0 {
					continue
				}
				if better(f) {
					best, found = f, true
				}
			}
			if found {
				return best, true
			}
		}
		return best, false
	}
	if f, ok := pick(v.Files); ok {
		return f, true
	}
	var hls []tubeFile
	for _, p := range v.StreamingPlaylists {
		hls = append(hls, p.Files...)
	}
	return pick(hls)
}

func fileAddress(f tubeFile) string {
	if f.FileURL != "" {
		return f.FileURL
	}
	return f.FileDownloadURL
}

// resolve makes ref absolute against base; only http(s) results count.
func resolve(base, ref string) string {
	if ref == "" {
		return ""
	}
	b, err := url.Parse(base)
	if err != nil {
		return ""
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	u := b.ResolveReference(r)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// licences maps PeerTube's licence ids to SPDX identifiers.
var licences = map[int]string{
	1: "CC-BY-4.0", 2: "CC-BY-SA-4.0", 3: "CC-BY-ND-4.0", 4: "CC-BY-NC-4.0",
	5: "CC-BY-NC-SA-4.0", 6: "CC-BY-NC-ND-4.0", 7: "CC0-1.0",
}

// videoItem turns a video's details into the item that makes it a pack.
func (c *Catalog) videoItem(base string, v tubeVideoJSON, caps tubeCaptionList, height int) listedItem {
	title := cleanText(v.Name, maxTitle)
	if title == "" {
		title = v.UUID
	}
	l := listedItem{key: v.UUID, kind: itemVideo, title: title}
	op := "video " + v.UUID
	if v.Privacy == nil || v.Privacy.ID != 1 {
		e := errPrivateVideo(op)
		l.failFR, l.failEN = e.FR, e.EN
		return l
	}
	if v.IsLive {
		l.failFR = "vidéo en direct : non prise en charge (seules les vidéos enregistrées peuvent être mises hors ligne)"
		l.failEN = "live video: not supported (only recorded videos can be made available offline)"
		return l
	}
	f, ok := chooseFile(v, height)
	addr := resolve(base, fileAddress(f))
	if !ok || addr == "" {
		l.failFR = "aucun fichier vidéo téléchargeable (l'instance ne publie pas de fichier avec sa taille)"
		l.failEN = "no downloadable video file (the instance publishes no file with its size)"
		return l
	}
	ext := strings.ToLower(path.Ext(mustPath(addr)))
	if ext != ".mp4" && ext != ".webm" && ext != ".m4v" {
		ext = ".mp4"
	}
	videoPath := "video" + ext
	p := plan{Stamp: v.UpdatedAt + "|h" + strconv.Itoa(height)}
	p.Files = append(p.Files, planFile{Path: videoPath, URL: addr, Size: f.Size, MediaType: mediaTypeOf(videoPath, "")})
	it := manifestItem{ID: "video", Title: title, Kind: "video", Entry: videoPath, Levels: []string{}, Subjects: []string{},
		Description: cleanText(v.Description, maxText)}
	files := []manifestFile{{Path: videoPath}}
	if th := thumbnailOf(base, v); th != "" {
		ext := strings.ToLower(path.Ext(mustPath(th)))
		if ext != ".jpg" && ext != ".jpeg" && ext != ".png" && ext != ".webp" {
			ext = ".jpg"
		}
		tp := "vignette" + ext
		p.Files = append(p.Files, planFile{Path: tp, URL: th, Size: -1, MediaType: mediaTypeOf(tp, "")})
		files = append(files, manifestFile{Path: tp})
		it.Thumbnail = tp
	}
	usedCaps := map[string]bool{}
	for _, cp := range caps.Data {
		addr := resolve(base, cp.FileURL)
		if addr == "" {
			addr = resolve(base, cp.CaptionPath)
		}
		name := slug(cp.Language.ID, 20)
		if addr == "" || name == "" {
			continue
		}
		for i := 2; usedCaps[name]; i++ {
			name = slug(cp.Language.ID, 20) + "-" + strconv.Itoa(i)
		}
		usedCaps[name] = true
		cpath := "sous-titres/" + name + ".vtt"
		p.Files = append(p.Files, planFile{Path: cpath, URL: addr, Size: -1, MediaType: "text/vtt; charset=utf-8"})
		files = append(files, manifestFile{Path: cpath})
	}
	it.Files = files
	if v.Licence != nil && v.Licence.ID != 0 {
		if id, ok := licences[v.Licence.ID]; ok {
			it.Licence = id
		} else {
			it.Licence = cleanText(v.Licence.Label, 200)
		}
	}
	lang := c.cfg.Language
	if v.Language != nil && langPattern.MatchString(v.Language.ID) {
		lang = v.Language.ID
	}
	host := base
	if u, err := url.Parse(base); err == nil {
		host = u.Host
	}
	publisher := ""
	if v.Channel != nil {
		publisher = cleanText(v.Channel.DisplayName, 200)
	}
	it.Source = cleanText(strings.TrimSpace("Tube "+host+" "+publisher), 300)
	if v.Account != nil && strings.TrimSpace(v.Account.DisplayName) != "" {
		it.Authors = []string{cleanText(v.Account.DisplayName, 200)}
	}
	m := &manifest{ID: tubePackID(host, v.UUID), Title: title, Publisher: publisher, Language: lang, Items: []manifestItem{it},
		Description: it.Description}
	if t, err := time.Parse(time.RFC3339, v.PublishedAt); err == nil {
		m.Created = t.UTC().Format(time.RFC3339)
	}
	p.Manifest = m
	l.plan = p
	return l
}

// tubePackID is tube-<short hash of the instance>-<the uuid's 32 hex
// digits>: a prefix of the uuid would let two videos of an instance share
// a pack (the second replacing the first). A uuid that is not 32 hex
// digits (an instance of another kind) is hashed.
func tubePackID(host, uuid string) string {
	u := strings.ToLower(strings.ReplaceAll(uuid, "-", ""))
	if len(u) != 32 || strings.Trim(u, "0123456789abcdef") != "" {
		u = shortHash(uuid, 32)
	}
	return "tube-" + shortHash(strings.ToLower(host), 6) + "-" + u
}

func mustPath(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return ""
}

// thumbnailOf returns the address of the video's largest thumbnail.
func thumbnailOf(base string, v tubeVideoJSON) string {
	best, w := "", -1
	for _, t := range v.Thumbnails {
		if a := resolve(base, t.FileURL); a != "" && t.Width > w {
			best, w = a, t.Width
		}
	}
	if best != "" {
		return best
	}
	if a := resolve(base, v.PreviewPath); a != "" {
		return a
	}
	return resolve(base, v.ThumbnailPath)
}

// getJSON fetches a metadata document through the Doer.
func (c *Catalog) getJSON(ctx context.Context, op, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, permanent(op, "adresse invalide : "+shorten(u), "invalid address: "+shorten(u), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, netError(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(op, resp)
	}
	return readLimited(resp.Body, c.cfg.MaxMetadataBytes, op)
}

// listTube lists a PeerTube source: its videos, each made an item.
func (c *Catalog) listTube(ctx context.Context, src Source) ([]listedItem, error) {
	t, err := parseTubeURL(src.Spec.URL)
	if err != nil {
		return nil, err
	}
	height := src.Spec.Height
	if height == 0 {
		height = c.cfg.TubeHeight
	}
	old, err := c.items(ctx, `WHERE source = ?`, src.ID)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", src.ID, err)
	}
	byKey := make(map[string]item, len(old))
	for _, it := range old {
		byKey[it.Key] = it
	}
	var summaries []tubeVideoJSON
	switch t.kind {
	case tubeVideo:
		summaries = []tubeVideoJSON{{UUID: t.id}}
	default:
		api := t.base + "/api/v1/video-channels/" + url.PathEscape(t.id) + "/videos"
		if t.kind == tubePlaylist {
			api = t.base + "/api/v1/video-playlists/" + url.PathEscape(t.id) + "/videos"
		}
		for start := 0; len(summaries) < c.cfg.MaxVideos; {
			op := fmt.Sprintf("list %s %s from %d", t.kind, t.id, start)
			q := url.Values{"start": {strconv.Itoa(start)}, "count": {strconv.Itoa(tubePage)}}
			if t.kind == tubeChannel {
				q.Set("sort", "-publishedAt")
			}
			data, err := c.getJSON(ctx, op, api+"?"+q.Encode())
			if err != nil {
				return nil, err
			}
			page, total, err := parseVideoPage(data, t.kind == tubePlaylist)
			if err != nil {
				return nil, badAnswer(op, err)
			}
			summaries = append(summaries, page...)
			start += tubePage
			if len(page) == 0 || start >= total {
				break
			}
		}
		if len(summaries) > c.cfg.MaxVideos {
			summaries = summaries[:c.cfg.MaxVideos]
		}
	}
	var listed []listedItem
	for _, s := range summaries {
		id := s.UUID
		if id == "" {
			continue
		}
		if o, ok := byKey[id]; ok && s.UpdatedAt != "" && o.State == stateDone &&
			o.Plan.Stamp == s.UpdatedAt+"|h"+strconv.Itoa(height) {
			listed = append(listed, listedItem{key: id, kind: itemVideo, title: o.Title, reuse: true})
			continue
		}
		op := "video " + id
		data, err := c.getJSON(ctx, op, t.base+"/api/v1/videos/"+url.PathEscape(id))
		if err != nil {
			var e *Error
			if t.kind == tubeVideo && errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
				// A single video the API will not show anonymously is
				// private: say it plainly.
				return nil, errPrivateVideo(op)
			}
			return nil, err
		}
		v, err := parseVideo(data)
		if err != nil {
			return nil, badAnswer(op, err)
		}
		var caps tubeCaptionList
		if v.Privacy != nil && v.Privacy.ID == 1 {
			cdata, err := c.getJSON(ctx, "captions "+id, t.base+"/api/v1/videos/"+url.PathEscape(v.UUID)+"/captions")
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(cdata, &caps); err != nil {
				return nil, badAnswer("captions "+id, err)
			}
		}
		l := c.videoItem(t.base, v, caps, height)
		l.key = id
		listed = append(listed, l)
	}
	return listed, nil
}
