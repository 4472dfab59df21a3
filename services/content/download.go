package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// downloadPrefix names partial and complete downloads in Dir/tmp; New keeps
// them so that a download resumes, GC removes old ones.
const downloadPrefix = "download-"

// checkpointBytes is how many bytes a download writes between two
// checkpoints (fsync of the data, then of the state that counts it).
const checkpointBytes = 4 << 20

// fetchProgressEvery spaces the progress calls of a download.
const fetchProgressEvery = 250 * time.Millisecond

// ErrFetchRefused means a download got an answer that retrying the same
// request would not fix: a client error status (404, 403, 410…), a size or
// SHA-256 other than expected, a file larger than allowed, a server that
// lies about ranges or lengths. The partial download is discarded. Other
// errors of FetchBlob (network, 5xx, a cut connection, a cancelled context)
// are transient: call again later, the download resumes from its last
// verified byte.
var ErrFetchRefused = errors.New("content: download refused")

// errTooLarge means a download is larger than its limit; Import turns it
// into a pack-too-large refusal.
var errTooLarge = errors.New("larger than allowed")

// downloadState is saved next to a partial download, replaced atomically:
// the validator needed to resume with If-Range, the size the server gave
// and how many bytes of the data file were fsynced before this state was
// written. Bytes past Verified are dropped on resume.
type downloadState struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Size         int64  `json:"size"`     // -1 unknown
	Verified     int64  `json:"verified"` // durable prefix of the data file
}

// validator is what If-Range may carry: a strong ETag, else Last-Modified.
func (st downloadState) validator() string {
	if st.ETag != "" && !strings.HasPrefix(st.ETag, "W/") {
		return st.ETag
	}
	return st.LastModified
}

func (s *Store) downloadPath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(s.tmpDir, downloadPrefix+hex.EncodeToString(sum[:]))
}

// fetchPath is where FetchBlob downloads url. It differs from Import's
// downloadPath so that an import (which holds importMu while it downloads)
// and a fetch (which may take importMu to evict while it downloads) never
// wait for the same partial file.
func (s *Store) fetchPath(url string) string {
	sum := sha256.Sum256([]byte("blob\x00" + url))
	return filepath.Join(s.tmpDir, downloadPrefix+hex.EncodeToString(sum[:]))
}

func (s *Store) removeDownload(url string) {
	p := s.downloadPath(url)
	os.Remove(p)
	os.Remove(p + ".json")
}

// download fetches url into Dir/tmp for Import, resuming a previous partial
// download, and returns the file's path.
func (s *Store) download(ctx context.Context, url string, progress func(Progress)) (string, error) {
	if s.http == nil {
		return "", fmt.Errorf("download %s: no http client", url)
	}
	t := &transfer{
		s: s, doer: s.http, url: url, path: s.downloadPath(url),
		want:  -1,
		limit: s.cfg.MaxPackBytes + tarOverhead(s.cfg.MaxFiles, s.cfg.MaxManifestBytes),
	}
	if progress != nil {
		t.progress = func(done, total int64) {
			progress(Progress{Phase: "download", File: url, BytesDone: done, BytesTotal: total})
		}
	}
	release, err := s.lockDownload(ctx, t.path)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	defer release()
	if _, err := t.run(ctx); err != nil {
		if errors.Is(err, errTooLarge) {
			return "", refuse(CodePackTooLarge, fmt.Sprintf("plus de %d octets / more than %d bytes", t.limit, t.limit), err)
		}
		return "", err
	}
	return t.path, nil
}

// transfer is one resumable HTTP download into a data file of Dir/tmp
// with its state file next to it. Every checkpointBytes, and at every
// interruption it sees, it fsyncs the data and then replaces the state
// that counts those bytes as verified; after a cut, a crash or kill -9 the
// next run goes on from the verified byte with Range and If-Range and
// drops whatever lies beyond it.
type transfer struct {
	s     *Store
	doer  Doer
	url   string
	path  string // data file; the state is path + ".json"
	want  int64  // expected exact size, -1 when unknown
	limit int64  // most bytes accepted
	// hash, when set, is fed every byte of the file in order; on resume the
	// verified prefix is read back from disk (no network).
	hash     hash.Hash
	progress func(done, total int64)
	// res, when set, makes room (quota, free disk) before bytes are written.
	res *reservation

	// Filled by run.
	resumed int64 // verified bytes found at the start and kept
	total   int64
}

// run downloads until the file is complete and returns its size. A refusal
// (ErrFetchRefused, errTooLarge) or a full disk discards the partial file;
// other errors keep it, checkpointed, for the next run.
// The caller holds lockDownload(t.path).
func (t *transfer) run(ctx context.Context) (int64, error) {
	size, err := t.runLocked(ctx)
	var full *StoreFullError
	if err != nil && (errors.Is(err, ErrFetchRefused) || errors.Is(err, errTooLarge) || errors.As(err, &full) && full.Disk) {
		// A full disk gives the space back at once: the box needs it for
		// its database. A refusal by quota keeps the partial file, counted.
		os.Remove(t.path)
		os.Remove(t.path + ".json")
		t.s.log.Info("fetch: partial download discarded", "url", t.url, "err", err)
	}
	return size, err
}

func (t *transfer) runLocked(ctx context.Context) (int64, error) {
	st, f, err := t.open(ctx)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	t.resumed = st.Verified
	if st.Size >= 0 && st.Verified == st.Size && (t.want < 0 || t.want == st.Size) {
		// Complete before a crash or kill, not placed yet: no request.
		t.total = st.Size
		return st.Size, nil
	}
	if t.res != nil && t.want >= 0 {
		// Make room before spending the uplink on it.
		if err := t.s.makeRoom(ctx, t.res, t.want); err != nil {
			return 0, err
		}
	}
	lastProgress := time.Time{}
	report := func(done, total int64, force bool) {
		if t.progress == nil {
			return
		}
		if now := time.Now(); force || now.Sub(lastProgress) >= fetchProgressEvery {
			lastProgress = now
			t.progress(done, total)
		}
	}
	for {
		done, err := t.round(ctx, f, &st, report)
		if err != nil {
			return 0, err
		}
		if done {
			t.total = st.Verified
			report(st.Verified, st.Verified, true)
			return st.Verified, nil
		}
	}
}

// open reads the state, opens the data file and cuts it back to its
// verified prefix, re-hashing that prefix from disk when t.hash is set.
// A state that does not match (other URL, other expected size, no
// validator, data shorter than verified) starts the download again.
func (t *transfer) open(ctx context.Context) (downloadState, *os.File, error) {
	st := downloadState{URL: t.url, Size: -1}
	if data, err := os.ReadFile(t.path + ".json"); err == nil {
		var saved downloadState
		switch {
		case json.Unmarshal(data, &saved) != nil || saved.URL != t.url:
		case t.want >= 0 && saved.Size >= 0 && saved.Size != t.want:
			t.s.log.Info("fetch: expected size changed, starting again", "url", t.url, "size", saved.Size, "want", t.want)
		case saved.validator() == "" || saved.Verified <= 0:
		default:
			st = saved
		}
	}
	f, err := os.OpenFile(t.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return st, nil, fmt.Errorf("fetch %s: %w", t.url, diskError(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return st, nil, fmt.Errorf("fetch %s: %w", t.url, err)
	}
	if fi.Size() < st.Verified {
		t.s.log.Warn("fetch: partial download shorter than its state, starting again", "url", t.url, "have", fi.Size(), "verified", st.Verified)
		st = downloadState{URL: t.url, Size: -1}
	}
	if fi.Size() != st.Verified {
		if err := f.Truncate(st.Verified); err != nil {
			f.Close()
			return st, nil, fmt.Errorf("fetch %s: %w", t.url, err)
		}
	}
	if t.hash != nil && st.Verified > 0 {
		if _, err := io.Copy(t.hash, ctxReader{ctx, io.NewSectionReader(f, 0, st.Verified)}); err != nil {
			f.Close()
			return st, nil, fmt.Errorf("fetch %s: hash the verified prefix: %w", t.url, err)
		}
	}
	if _, err := f.Seek(st.Verified, io.SeekStart); err != nil {
		f.Close()
		return st, nil, fmt.Errorf("fetch %s: %w", t.url, err)
	}
	if t.res != nil {
		t.res.have.Store(st.Verified)
	}
	return st, f, nil
}

// refused wraps ErrFetchRefused with what was wrong.
func (t *transfer) refused(format string, args ...any) error {
	return fmt.Errorf("fetch %s: %w: %s", t.url, ErrFetchRefused, fmt.Sprintf(format, args...))
}

// round sends one request and writes its body; done means the whole file
// is there and verified.
func (t *transfer) round(ctx context.Context, f *os.File, st *downloadState, report func(done, total int64, force bool)) (done bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return false, t.refused("%v", err)
	}
	asked := st.Verified > 0
	if asked {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", st.Verified))
		req.Header.Set("If-Range", st.validator())
	}
	resp, err := t.doer.Do(req)
	if err != nil {
		return false, fmt.Errorf("fetch %s: %w", t.url, err)
	}
	defer resp.Body.Close()

	// The response holds bytes [have, end) of a file of total bytes
	// (-1: unknown until the body ends).
	have := st.Verified
	var end, total int64
	switch resp.StatusCode {
	case http.StatusOK:
		if have > 0 {
			t.s.log.Info("fetch: the server sent the whole file (it changed, or ignores ranges): starting again from 0", "url", t.url, "had", have)
		}
		have, t.resumed = 0, 0
		total, end = resp.ContentLength, resp.ContentLength
		if err := f.Truncate(0); err != nil {
			return false, fmt.Errorf("fetch %s: %w", t.url, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return false, fmt.Errorf("fetch %s: %w", t.url, err)
		}
		if t.hash != nil {
			t.hash.Reset()
		}
		if t.res != nil {
			t.res.have.Store(0)
		}
		*st = downloadState{URL: t.url, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Size: total}
		if err := t.s.writeDownloadState(t.path, *st); err != nil {
			return false, fmt.Errorf("fetch %s: %w", t.url, err)
		}
	case http.StatusPartialContent:
		cr := resp.Header.Get("Content-Range")
		a, b, size, ok := parseByteRange(cr)
		switch {
		case !asked:
			return false, t.refused("206 to a request without Range")
		case !ok || size < 0 || a != have || b < a || b >= size:
			return false, t.refused("Content-Range %q does not answer bytes=%d-", cr, have)
		case st.Size >= 0 && size != st.Size:
			return false, t.refused("Content-Range %q: the file had %d bytes", cr, st.Size)
		case resp.ContentLength >= 0 && resp.ContentLength != b-a+1:
			return false, t.refused("Content-Length %d for Content-Range %q", resp.ContentLength, cr)
		}
		total, end = size, b+1
		if st.Size < 0 {
			st.Size = size
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// Complete already, if the server's size is what we have.
		if _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && size == have && (st.Size < 0 || st.Size == size) {
			if t.want >= 0 && have != t.want {
				return false, t.refused("%d bytes, want %d", have, t.want)
			}
			st.Size = size
			return true, nil
		}
		os.Remove(t.path + ".json")
		*st = downloadState{URL: t.url, Size: -1}
		return false, fmt.Errorf("fetch %s: range refused, starting again on next try", t.url)
	default:
		if c := resp.StatusCode; c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooEarly && c != http.StatusTooManyRequests {
			return false, t.refused("http status %s", resp.Status)
		}
		return false, fmt.Errorf("fetch %s: http status %s", t.url, resp.Status)
	}
	if t.want >= 0 {
		if total >= 0 && total != t.want {
			return false, t.refused("the server gives %d bytes, want %d", total, t.want)
		}
		// A body of unknown length must still end at the expected size.
		total = t.want
		if end < 0 {
			end = t.want
		}
	}
	if total > t.limit {
		return false, fmt.Errorf("fetch %s: %d bytes: %w", t.url, total, errTooLarge)
	}
	room := int64(-1) // the file may grow to room bytes without asking again
	if t.res != nil {
		target := total
		if target < 0 {
			target = min(have+unknownSizeStep, t.limit)
		}
		if err := t.s.makeRoom(ctx, t.res, target); err != nil {
			return false, err
		}
		room = target
	}

	checkpoint := func(n int64) error {
		if err := f.Sync(); err != nil {
			return diskError(err)
		}
		st.Verified = n
		return t.s.writeDownloadState(t.path, *st)
	}
	// interrupted keeps what was written for the next run.
	interrupted := func(cause error) error {
		if err := checkpoint(have); err != nil {
			if errors.Is(err, ErrStoreFull) {
				return fmt.Errorf("fetch %s: %w", t.url, err)
			}
			t.s.log.Warn("fetch: checkpoint after an interruption", "url", t.url, "err", err)
		}
		return fmt.Errorf("fetch %s: interrupted at %d bytes: %w", t.url, have, cause)
	}
	buf := make([]byte, 256<<10)
	report(have, total, true)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			switch {
			case end >= 0 && have+int64(n) > end:
				return false, t.refused("the body goes past byte %d", end)
			case have+int64(n) > t.limit:
				return false, fmt.Errorf("fetch %s: more than %d bytes: %w", t.url, t.limit, errTooLarge)
			}
			if room >= 0 && have+int64(n) > room {
				room = min(max(room+unknownSizeStep, have+int64(n)), t.limit)
				if err := t.s.makeRoom(ctx, t.res, room); err != nil {
					return false, err
				}
			}
			if _, err := f.Write(buf[:n]); err != nil {
				if err := diskError(err); errors.Is(err, ErrStoreFull) {
					return false, fmt.Errorf("fetch %s: %w", t.url, err)
				}
				return false, interrupted(err)
			}
			if t.hash != nil {
				t.hash.Write(buf[:n])
			}
			have += int64(n)
			if t.res != nil {
				t.res.have.Store(have)
			}
			if have-st.Verified >= checkpointBytes {
				if err := checkpoint(have); err != nil {
					return false, fmt.Errorf("fetch %s: checkpoint: %w", t.url, err)
				}
			}
			report(have, total, false)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return false, interrupted(rerr)
		}
		if err := ctx.Err(); err != nil {
			return false, interrupted(err)
		}
	}
	// The server ended the body cleanly.
	if end >= 0 && have < end {
		return false, t.refused("the body ends at byte %d, before %d", have, end)
	}
	if total < 0 {
		total = have
		st.Size = have
	}
	if err := checkpoint(have); err != nil {
		return false, fmt.Errorf("fetch %s: checkpoint: %w", t.url, err)
	}
	return have == total, nil
}

// unknownSizeStep is how much room a download of unknown size asks for at
// a time.
const unknownSizeStep = 16 << 20

// writeDownloadState replaces the state file of the data file path
// atomically: temp file, fsync, rename, fsync of the folder.
func (s *Store) writeDownloadState(path string, st downloadState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.tmpDir, "state-*")
	if err != nil {
		return diskError(err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return diskError(err)
	}
	if err := tmp.Sync(); err != nil {
		return diskError(err)
	}
	if err := tmp.Close(); err != nil {
		return diskError(err)
	}
	if err := os.Rename(tmp.Name(), path+".json"); err != nil {
		return err
	}
	tmp = nil
	return syncDir(filepath.Dir(path))
}

// lockDownload waits until no other transfer of this process uses path.
func (s *Store) lockDownload(ctx context.Context, path string) (release func(), err error) {
	for {
		s.fetchMu.Lock()
		ch, busy := s.fetching[path]
		if !busy {
			ch = make(chan struct{})
			s.fetching[path] = ch
			s.fetchMu.Unlock()
			return func() {
				s.fetchMu.Lock()
				delete(s.fetching, path)
				s.fetchMu.Unlock()
				close(ch)
			}, nil
		}
		s.fetchMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// diskError turns ENOSPC and EDQUOT into a *StoreFullError.
func diskError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &StoreFullError{Disk: true, Err: err}
	}
	return err
}

// parseContentRange parses "bytes a-b/size" and "bytes */size".
func parseContentRange(v string) (start, size int64, ok bool) {
	a, _, size, ok := parseByteRange(v)
	if !ok || size < 0 {
		return 0, 0, false
	}
	return a, size, true
}

// parseByteRange parses a Content-Range header strictly: "bytes a-b/size",
// "bytes a-b/*" (size -1) or "bytes */size" (a and b -1). Numbers are
// plain decimal digits.
func parseByteRange(v string) (a, b, size int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	size = -1
	if sz != "*" {
		if size, ok = parseDigits(sz); !ok {
			return 0, 0, 0, false
		}
	}
	if rng == "*" {
		if size < 0 {
			return 0, 0, 0, false
		}
		return -1, -1, size, true
	}
	as, bs, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	if a, ok = parseDigits(as); !ok {
		return 0, 0, 0, false
	}
	if b, ok = parseDigits(bs); !ok || b < a {
		return 0, 0, 0, false
	}
	return a, b, size, true
}

func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
