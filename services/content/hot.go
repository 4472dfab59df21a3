package content

import (
	"container/list"
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Small files (icons, thumbnails, CSS, short texts) are most of a portal's
// requests. For them open, fstat, sendfile and close cost more than the
// bytes: the store keeps the hottest small blobs in memory. Blobs are
// immutable and addressed by hash, so an entry never goes stale.
const (
	hotMaxFile  = 64 << 10 // larger files go through sendfile
	hotMaxBytes = 8 << 20  // memory the cache may hold
)

type hotEntry struct {
	hash string
	b    []byte
}

// hotCache is a byte-bounded LRU of small blobs.
type hotCache struct {
	mu      sync.Mutex
	max     int
	used    int
	entries map[string]*list.Element
	order   list.List // front: most recently used
}

func newHotCache(max int) *hotCache {
	return &hotCache{max: max, entries: make(map[string]*list.Element)}
}

func (c *hotCache) get(hash string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*hotEntry).b, true
}

func (c *hotCache) put(hash string, b []byte) {
	if len(b) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[hash]; ok {
		return
	}
	for c.used+len(b) > c.max {
		last := c.order.Back()
		ent := c.order.Remove(last).(*hotEntry)
		delete(c.entries, ent.hash)
		c.used -= len(ent.b)
	}
	c.entries[hash] = c.order.PushFront(&hotEntry{hash: hash, b: b})
	c.used += len(b)
}

// remove drops hash from the cache.
func (c *hotCache) remove(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[hash]; ok {
		c.order.Remove(e)
		delete(c.entries, hash)
		c.used -= len(e.Value.(*hotEntry).b)
	}
}

// openBlobFile opens a blob for reading without registering it with the
// network poller: a regular file cannot be polled, and os.Open's attempt
// costs a system call per request.
func openBlobFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// readSmallBlob reads a blob of the given size, expected small, whole.
func (s *Store) readSmallBlob(hash string, size int64) ([]byte, error) {
	f, err := openBlobFile(s.blobPath(hash))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, size)
	n, err := f.ReadAt(b, 0)
	if int64(n) == size {
		return b, nil
	}
	if err == nil {
		err = errShortBlob
	}
	return nil, err
}

// errShortBlob means a blob on disk is shorter than its recorded size.
var errShortBlob = errors.New("blob shorter than recorded")
