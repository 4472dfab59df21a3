package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// downloadPrefix names partial and complete downloads in Dir/tmp; New keeps
// them so that a download resumes, GC removes old ones.
const downloadPrefix = "download-"

// downloadState is saved next to a partial download: the validator needed
// to resume it with If-Range.
type downloadState struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

func (s *Store) downloadPath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(s.tmpDir, downloadPrefix+hex.EncodeToString(sum[:]))
}

func (s *Store) removeDownload(url string) {
	p := s.downloadPath(url)
	os.Remove(p)
	os.Remove(p + ".json")
}

// download fetches url into Dir/tmp, resuming a previous partial download
// with Range and If-Range, and returns the file's path.
func (s *Store) download(ctx context.Context, url string, progress func(Progress)) (string, error) {
	if s.http == nil {
		return "", fmt.Errorf("download %s: no http client", url)
	}
	path := s.downloadPath(url)
	limit := s.cfg.MaxPackBytes + tarOverhead(s.cfg.MaxFiles, s.cfg.MaxManifestBytes)
	var st downloadState
	if data, err := os.ReadFile(path + ".json"); err == nil {
		if json.Unmarshal(data, &st) != nil || st.URL != url {
			st = downloadState{}
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	validator := st.ETag
	if validator == "" || strings.HasPrefix(validator, "W/") {
		validator = st.LastModified
	}
	if validator == "" {
		have = 0
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", refuse(CodeBadSource, url, err)
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		req.Header.Set("If-Range", validator)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusOK:
		have = 0
		total = resp.ContentLength
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return "", fmt.Errorf("download %s: unexpected Content-Range %q", url, resp.Header.Get("Content-Range"))
		}
		total = size
	case http.StatusRequestedRangeNotSatisfiable:
		// Complete already, if the server's size is what we have.
		if _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && size == have {
			return path, nil
		}
		s.removeDownload(url)
		return "", fmt.Errorf("download %s: range refused, starting again on next try", url)
	default:
		return "", fmt.Errorf("download %s: http status %s", url, resp.Status)
	}
	if total > limit {
		return "", refuse(CodePackTooLarge, fmt.Sprintf("%d octets / %d bytes", total, total), nil)
	}
	if have == 0 {
		if err := f.Truncate(0); err != nil {
			return "", fmt.Errorf("download %s: %w", url, err)
		}
		st = downloadState{URL: url, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
		data, _ := json.Marshal(st)
		if err := os.WriteFile(path+".json", data, 0o600); err != nil {
			return "", fmt.Errorf("download %s: %w", url, err)
		}
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	c := &copier{s: s, ctx: ctx, report: progress, state: &Progress{Phase: "download", File: url, BytesDone: have, BytesTotal: total}}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if have+int64(n) > limit {
				return "", refuse(CodePackTooLarge, fmt.Sprintf("plus de %d octets / more than %d bytes", limit, limit), nil)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return "", fmt.Errorf("download %s: %w", url, err)
			}
			have += int64(n)
			c.state.BytesDone = have
			c.tick()
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			f.Sync()
			return "", fmt.Errorf("download %s: interrupted at %d bytes: %w", url, have, rerr)
		}
	}
	if total >= 0 && have != total {
		return "", fmt.Errorf("download %s: got %d bytes of %d: %w", url, have, total, io.ErrUnexpectedEOF)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	c.emit()
	return path, nil
}

// parseContentRange parses "bytes a-b/size" and "bytes */size".
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if rng == "*" {
		return -1, size, true
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err = strconv.ParseInt(a, 10, 64)
	return start, size, err == nil
}
