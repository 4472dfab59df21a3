package usb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// Sink is where Deliver hands items: the connector of the item's
// Destination (WebDAV at a school with connectivity) or a folder.
type Sink interface {
	// Stat says what the destination holds at it.RemotePath, so that an
	// item is never sent twice even without a Seen record.
	Stat(ctx context.Context, it Item) (Remote, error)
	// Put stores body as it.RemotePath, never replacing an existing file.
	// Read sequentially, body fails its last Read (instead of io.EOF) if
	// the bytes differ from it.Size and it.SHA256 (the key changed since
	// Verify): Put must then return an error and publish nothing. body
	// also implements io.ReaderAt for connectors that read at offsets
	// (chunked uploads, a hash check after sending); those reads are not
	// checked on the way, so Deliver re-hashes the file on the key after
	// such a Put, and the connector must check size (and hash where the
	// destination keeps one) after writing, as the outbox's connectors do.
	Put(ctx context.Context, it Item, body io.Reader) error
}

// Remote is what a destination holds at a remote path.
type Remote struct {
	Exists bool
	Size   int64
	SHA256 string // empty when the destination does not tell
}

// Seen records the keys already delivered, wherever they came from.
// SeenStore implements it in SQLite; the outbox can too.
type Seen interface {
	Seen(ctx context.Context, key string) (bool, error)
	Mark(ctx context.Context, key string) error
}

// Report says what Deliver did with each item.
type Report struct {
	Items     int // items in the bundle
	Delivered int // sent by this run
	Skipped   int // already marked as delivered in Seen
	Present   int // already at the destination (sent before from elsewhere): not sent again
	Failed    []Failure
}

// Failure is one item Deliver could not deliver. Err is a *BundleError
// (CodeConflict, CodeChanged) or the sink's error.
type Failure struct {
	Item Item
	Err  error
}

// Deliver verifies the whole bundle in dir, then hands each item not yet
// delivered to sink and marks it in seen. Nothing is delivered from a
// bundle that fails verification. An item whose remote path already holds
// the same file is marked without being sent; one whose remote path holds
// a different file is a conflict and is not overwritten. Failed items do
// not stop the others; the error then summarises them and delivering the
// bundle again later retries only those. progress, if not nil, receives
// bytes done and the total: the bytes verified plus the bytes of every
// item sent (the bundle is read twice); skipped items count as done.
func (c *Courier) Deliver(ctx context.Context, dir string, sink Sink, seen Seen, progress func(done, total int64)) (Report, error) {
	if sink == nil || seen == nil {
		return Report{}, errors.New("deliver bundle: no sink or no seen record")
	}
	pr := &progressCounter{fn: progress}
	p, root, err := c.verify(ctx, dir, pr)
	if root != nil {
		defer root.Close()
	}
	if err != nil {
		return Report{}, err
	}
	// Verify counted each distinct file once; delivery counts each item.
	var send int64
	for _, it := range p.Items {
		send += it.Size
	}
	pr.total += send
	pr.add(0)

	rep := Report{Items: len(p.Items)}
	for _, it := range p.Items {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		outcome, err := c.deliverItem(ctx, root, it, sink, seen, pr)
		switch {
		case err != nil && ctx.Err() != nil:
			return rep, ctx.Err()
		case err != nil:
			rep.Failed = append(rep.Failed, Failure{Item: it, Err: err})
		case outcome == outcomeSkipped:
			rep.Skipped++
		case outcome == outcomePresent:
			rep.Present++
		default:
			rep.Delivered++
		}
	}
	if len(rep.Failed) > 0 {
		errs := make([]error, 0, 3)
		for _, f := range rep.Failed[:min(3, len(rep.Failed))] {
			errs = append(errs, f.Err)
		}
		return rep, fmt.Errorf("deliver bundle: %d of %d items not delivered: %w", len(rep.Failed), rep.Items, errors.Join(errs...))
	}
	c.log.Info("bundle delivered", "dir", dir, "items", rep.Items, "delivered", rep.Delivered, "skipped", rep.Skipped, "present", rep.Present)
	return rep, nil
}

type outcome int

const (
	outcomeSent outcome = iota
	outcomeSkipped
	outcomePresent
)

func (c *Courier) deliverItem(ctx context.Context, root *os.Root, it Item, sink Sink, seen Seen, pr *progressCounter) (outcome, error) {
	done, err := seen.Seen(ctx, it.Key)
	if err != nil {
		return 0, fmt.Errorf("deliver %s: seen: %w", it.Key, err)
	}
	if done {
		pr.add(it.Size)
		return outcomeSkipped, nil
	}
	rem, err := sink.Stat(ctx, it)
	if err != nil {
		return 0, fmt.Errorf("deliver %s: stat %s: %w", it.Key, it.RemotePath, err)
	}
	if rem.Exists {
		if rem.Size != it.Size || (rem.SHA256 != "" && rem.SHA256 != it.SHA256) {
			return 0, refuse(CodeConflict, it.RemotePath, nil)
		}
		if err := seen.Mark(ctx, it.Key); err != nil {
			return 0, fmt.Errorf("deliver %s: mark: %w", it.Key, err)
		}
		pr.add(it.Size)
		return outcomePresent, nil
	}
	f, err := openRegular(root, FilesDir+"/"+it.SHA256, CodeMissingFile)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	name := FilesDir + "/" + it.SHA256
	body := &verifyingReader{f: f, size: it.Size, sum: it.SHA256, path: name, h: sha256.New(), pr: pr}
	if err := sink.Put(ctx, it, body); err != nil {
		return 0, fmt.Errorf("deliver %s: put %s: %w", it.Key, it.RemotePath, err)
	}
	switch {
	case body.verified:
	case body.readAt:
		// Read at offsets: check that the key still holds the verified bytes.
		pr.add(it.Size - body.n)
		if err := verifyFile(ctx, root, it.SHA256, it.Size, &progressCounter{}); err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, refuse(CodeChanged, name, err)
		}
	default:
		// A sink that did not read to the end cannot have stored the file.
		return 0, fmt.Errorf("deliver %s: put %s: the sink did not read the whole file", it.Key, it.RemotePath)
	}
	if err := seen.Mark(ctx, it.Key); err != nil {
		// Delivered but not recorded: the next run finds it with Stat.
		return 0, fmt.Errorf("deliver %s: mark: %w", it.Key, err)
	}
	return outcomeSent, nil
}

// verifyingReader hands out at most size bytes and, instead of io.EOF,
// returns a *BundleError when the bytes read differ from size or sum: the
// file changed on the key after Verify. ReadAt reads the file as it is.
type verifyingReader struct {
	f        *os.File
	size     int64
	sum      string
	path     string
	h        hash.Hash
	n        int64
	pr       *progressCounter
	verified bool
	readAt   bool
	err      error
}

func (v *verifyingReader) ReadAt(b []byte, off int64) (int, error) {
	v.readAt = true
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= v.size {
		return 0, io.EOF
	}
	short := false
	if rest := v.size - off; int64(len(b)) > rest {
		b, short = b[:rest], true
	}
	n, err := v.f.ReadAt(b, off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (v *verifyingReader) Read(b []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	// Read one byte beyond size, to notice a file that grew.
	if rest := v.size + 1 - v.n; int64(len(b)) > rest {
		b = b[:rest]
	}
	n, err := v.f.Read(b)
	if v.n+int64(n) > v.size {
		v.err = refuse(CodeChanged, v.path, nil)
		return 0, v.err
	}
	v.h.Write(b[:n])
	v.n += int64(n)
	v.pr.add(int64(n))
	switch {
	case errors.Is(err, io.EOF):
		if v.n != v.size || hex.EncodeToString(v.h.Sum(nil)) != v.sum {
			v.err = refuse(CodeChanged, v.path, nil)
			return n, v.err
		}
		v.verified = true
		v.err = io.EOF
		return n, io.EOF
	case err != nil:
		v.err = err
		return n, err
	}
	return n, nil
}
