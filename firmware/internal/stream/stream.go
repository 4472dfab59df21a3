// Package stream copies one slot image from its source (HTTP ranges or a
// file on a USB key) straight to the slot part while hashing it, never
// holding the image in memory, and resumes after a cut or a restart: the
// caller persists each checkpoint (offset and the marshalled SHA-256
// state) only after the slot data up to that offset was synced.
//
// Imported only by package firmware.
package stream

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors of Run. ErrBadLength and ErrTampered are permanent: the source
// lies or was tampered with. ErrStalled is transient.
var (
	ErrBadLength = errors.New("the source's length differs from the signed length")
	ErrTampered  = errors.New("the SHA-256 of the image differs from the signed one")
	ErrStalled   = errors.New("the transfer made no progress")
	ErrGone      = errors.New("the source no longer has the file")
	ErrWrite     = errors.New("writing the slot failed")
)

// Source gives the image from an offset.
type Source interface {
	// Open returns a reader of the image from offset. start is where the
	// reader begins: offset, or 0 when the source can only start over.
	Open(ctx context.Context, offset int64) (r io.ReadCloser, start int64, err error)
}

// Dest is the slot part being written.
type Dest interface {
	io.WriterAt
	Sync() error
}

// Checkpoint is what the caller persists: the image is written and synced
// up to Offset, and Hash is the marshalled SHA-256 state at Offset.
type Checkpoint struct {
	Offset int64
	Hash   []byte
}

// Job is one image to copy.
type Job struct {
	Src    Source
	Dst    Dest
	Length int64  // signed length
	SHA256 string // signed hash, hex
	From   Checkpoint
	// Save persists a checkpoint; it is called after Dst.Sync.
	Save func(Checkpoint) error
	// Progress is called as bytes arrive (done of total).
	Progress func(done, total int64)
	// CheckpointBytes and CheckpointEvery bound the work a restart
	// repeats. Defaults 8 MiB and 5 s.
	CheckpointBytes int64
	CheckpointEvery time.Duration
	// MaxStalls is how many attempts in a row may make no progress before
	// Run gives up with ErrStalled. Default 6.
	MaxStalls int
	// Sleep waits between attempts; nil sleeps for real.
	Sleep func(ctx context.Context, d time.Duration) error
	Now   func() time.Time
	// Hook is called at named points ("checkpoint"); tests crash there.
	Hook func(point string) error
	// BufferBytes is the copy buffer. Default 256 KiB.
	BufferBytes int
}

// Run copies the image and verifies its length and SHA-256.
func Run(ctx context.Context, j Job) error {
	if j.CheckpointBytes <= 0 {
		j.CheckpointBytes = 8 << 20
	}
	if j.CheckpointEvery <= 0 {
		j.CheckpointEvery = 5 * time.Second
	}
	if j.MaxStalls <= 0 {
		j.MaxStalls = 6
	}
	if j.Now == nil {
		j.Now = time.Now
	}
	if j.Sleep == nil {
		j.Sleep = sleep
	}
	if j.BufferBytes <= 0 {
		j.BufferBytes = 256 << 10
	}
	want, err := hex.DecodeString(j.SHA256)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("copy image: bad signed sha256 %q", j.SHA256)
	}
	h := sha256.New()
	off := j.From.Offset
	if off < 0 || off > j.Length {
		off = 0
	}
	if off > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(j.From.Hash); err != nil {
			off = 0 // a state we cannot read: start over
			h.Reset()
		}
	}
	saved, savedAt := off, j.Now()
	checkpoint := func() error {
		if err := j.Dst.Sync(); err != nil {
			return fmt.Errorf("copy image: sync slot: %w: %w", ErrWrite, err)
		}
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return err
		}
		if err := j.Save(Checkpoint{Offset: off, Hash: state}); err != nil {
			return fmt.Errorf("copy image: save checkpoint: %w", err)
		}
		saved, savedAt = off, j.Now()
		if j.Hook != nil {
			return j.Hook("checkpoint")
		}
		return nil
	}
	buf := make([]byte, j.BufferBytes)
	stalls := 0
	var lastErr error
	for off < j.Length {
		if err := ctx.Err(); err != nil {
			return err
		}
		if stalls > 0 {
			if stalls >= j.MaxStalls {
				if off > saved {
					if err := checkpoint(); err != nil {
						return err
					}
				}
				return fmt.Errorf("copy image: %w after %d attempts: %v", ErrStalled, stalls, lastErr)
			}
			d := time.Duration(1<<min(stalls-1, 6)) * time.Second
			if err := j.Sleep(ctx, d); err != nil {
				return err
			}
		}
		r, start, err := j.Src.Open(ctx, off)
		if err != nil {
			if errors.Is(err, ErrBadLength) || errors.Is(err, ErrGone) || ctx.Err() != nil {
				return fmt.Errorf("copy image: %w", err)
			}
			lastErr = err
			stalls++
			continue
		}
		if start != off {
			if start != 0 {
				r.Close()
				return fmt.Errorf("copy image: asked from byte %d, got from %d: %w", off, start, ErrBadLength)
			}
			// The source ignored the range: start over.
			off, saved = 0, 0
			h.Reset()
		}
		before := off
		for {
			n, rerr := r.Read(buf)
			if n > 0 {
				if off+int64(n) > j.Length {
					r.Close()
					return fmt.Errorf("copy image: more than %d bytes: %w", j.Length, ErrBadLength)
				}
				if _, err := j.Dst.WriteAt(buf[:n], off); err != nil {
					r.Close()
					return fmt.Errorf("copy image: write slot at %d: %w: %w", off, ErrWrite, err)
				}
				h.Write(buf[:n])
				off += int64(n)
				if j.Progress != nil {
					j.Progress(off, j.Length)
				}
				if off-saved >= j.CheckpointBytes || j.Now().Sub(savedAt) >= j.CheckpointEvery {
					if err := checkpoint(); err != nil {
						r.Close()
						return err
					}
				}
			}
			if rerr != nil {
				if rerr != io.EOF {
					lastErr = rerr
				} else if off < j.Length {
					lastErr = io.ErrUnexpectedEOF
				}
				break
			}
		}
		r.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if off > before {
			stalls = 0
		}
		if off < j.Length {
			stalls++
		}
	}
	if off != saved || off == 0 {
		if err := checkpoint(); err != nil {
			return err
		}
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return fmt.Errorf("copy image: got sha256 %x: %w", got, ErrTampered)
	}
	return nil
}

// Rehash reads the image back from the slot and checks it: what the disk
// holds is what was signed.
func Rehash(ctx context.Context, r io.ReaderAt, length int64, sha256hex string) error {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < length; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), length-off))
		m, err := r.ReadAt(buf[:n], off)
		h.Write(buf[:m])
		off += int64(m)
		if err != nil && !(err == io.EOF && off == length) {
			return fmt.Errorf("read slot back at %d: %w", off, err)
		}
	}
	if hex.EncodeToString(h.Sum(nil)) != sha256hex {
		return fmt.Errorf("read slot back: %w", ErrTampered)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Doer sends one HTTP request; *http.Client satisfies it.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// HTTP is a Source over HTTP range requests.
type HTTP struct {
	URL    string
	Length int64
	Doer   Doer
	// Wait, if set, is called before each request: the WAN scheduler's
	// gate (windows, daily cap, higher classes first).
	Wait func(ctx context.Context) error
}

// Open implements Source.
func (s HTTP) Open(ctx context.Context, offset int64) (io.ReadCloser, int64, error) {
	if s.Wait != nil {
		if err := s.Wait(ctx); err != nil {
			return nil, 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, 0, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := s.Doer.Do(req)
	if err != nil {
		return nil, 0, err
	}
	fail := func(err error) (io.ReadCloser, int64, error) {
		resp.Body.Close()
		return nil, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != s.Length {
			return fail(fmt.Errorf("GET %s: Content-Length %d, signed length %d: %w", s.URL, resp.ContentLength, s.Length, ErrBadLength))
		}
		return resp.Body, 0, nil
	case http.StatusPartialContent:
		start, end, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return fail(fmt.Errorf("GET %s: %v: %w", s.URL, err, ErrBadLength))
		}
		if start != offset || end != s.Length-1 || (total >= 0 && total != s.Length) {
			return fail(fmt.Errorf("GET %s: Content-Range %d-%d/%d for bytes %d- of %d: %w", s.URL, start, end, total, offset, s.Length, ErrBadLength))
		}
		if resp.ContentLength >= 0 && resp.ContentLength != s.Length-offset {
			return fail(fmt.Errorf("GET %s: Content-Length %d for %d bytes: %w", s.URL, resp.ContentLength, s.Length-offset, ErrBadLength))
		}
		return resp.Body, offset, nil
	case http.StatusNotFound, http.StatusGone:
		return fail(fmt.Errorf("GET %s: HTTP %d: %w", s.URL, resp.StatusCode, ErrGone))
	case http.StatusRequestedRangeNotSatisfiable:
		return fail(fmt.Errorf("GET %s: range %d- not satisfiable: %w", s.URL, offset, ErrBadLength))
	}
	return fail(fmt.Errorf("GET %s: HTTP status %d", s.URL, resp.StatusCode))
}

func parseContentRange(v string) (start, end, total int64, err error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("Content-Range %q", v)
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("Content-Range %q", v)
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, fmt.Errorf("Content-Range %q", v)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil || start < 0 {
		return 0, 0, 0, fmt.Errorf("Content-Range %q", v)
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
		return 0, 0, 0, fmt.Errorf("Content-Range %q", v)
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= end {
			return 0, 0, 0, fmt.Errorf("Content-Range %q", v)
		}
	}
	return start, end, total, nil
}

// File is a Source over a file (a USB bundle's target).
type File struct {
	R    io.ReaderAt
	Size int64
}

// Open implements Source.
func (s File) Open(ctx context.Context, offset int64) (io.ReadCloser, int64, error) {
	return io.NopCloser(io.NewSectionReader(s.R, offset, s.Size-offset)), offset, nil
}
