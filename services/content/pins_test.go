package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestPutBlobPinsAgainstGC(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, Config{}, nil)
	body := []byte("photo de la fiche d'exercice")
	hash, size, err := e.store.PutBlob(ctx, "handin:1", bytes.NewReader(body), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(body)) || hash != sum(body) {
		t.Fatalf("PutBlob = %s, %d; want %s, %d", hash, size, sum(body), len(body))
	}
	// Same bytes for another owner: one blob, two pins.
	if h2, _, err := e.store.PutBlob(ctx, "handin:2", bytes.NewReader(body), 0); err != nil || h2 != hash {
		t.Fatalf("second PutBlob = %s, %v", h2, err)
	}
	if n, _, err := e.store.GC(ctx, -time.Hour); err != nil || n != 0 {
		t.Fatalf("GC with pins removed %d files, err %v; want 0", n, err)
	}
	readBlob := func() ([]byte, error) {
		f, err := e.store.OpenBlob(hash)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	if got, err := readBlob(); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("OpenBlob = %q, %v", got, err)
	}
	if err := e.store.Unpin(ctx, "handin:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := readBlob(); err != nil {
		t.Fatalf("blob gone while handin:2 still pins it: %v", err)
	}
	if err := e.store.Unpin(ctx, "handin:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := readBlob(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the last unpin OpenBlob err = %v, want ErrNotFound", err)
	}
}

func TestPutBlobRefusesOversized(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	_, _, err := e.store.PutBlob(context.Background(), "handin:1", strings.NewReader(strings.Repeat("x", 11)), 10)
	if !errors.Is(err, ErrBlobTooLarge) {
		t.Fatalf("err = %v, want ErrBlobTooLarge", err)
	}
	if _, err := e.store.OpenBlob("../../etc/passwd"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenBlob of a path: err = %v, want ErrNotFound", err)
	}
}
