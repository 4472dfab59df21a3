package stream

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type memDest struct {
	mu     sync.Mutex
	b      []byte
	synced int
}

func (m *memDest) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if need := int(off) + len(p); need > len(m.b) {
		m.b = append(m.b, make([]byte, need-len(m.b))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

func (m *memDest) Sync() error { m.synced++; return nil }

func noSleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

func data(n int) ([]byte, string) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// server serves body with behaviour mode for Range requests.
func server(t *testing.T, body []byte, mode string) (*httptest.Server, *[]int64) {
	var starts []int64
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var start int64
		if rg := r.Header.Get("Range"); rg != "" {
			start, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
		}
		mu.Lock()
		starts = append(starts, start)
		n := len(starts)
		mu.Unlock()
		size := int64(len(body))
		switch {
		case mode == "ignore-range" || start == 0 && mode != "long":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(200)
			if mode == "ignore-range" && n == 1 || mode == "cut" || mode == "lying-range" {
				w.Write(body[:len(body)/3])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			w.Write(body)
		case mode == "long":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)+10))
			w.WriteHeader(200)
			w.Write(append(body, make([]byte, 10)...))
		case mode == "lying-range":
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start+1, size-1, size))
			w.WriteHeader(206)
			w.Write(body[start+1:])
		default:
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, size-1, size))
			w.Header().Set("Content-Length", strconv.FormatInt(size-start, 10))
			w.WriteHeader(206)
			end := min(size, start+size/3)
			w.Write(body[start:end])
			if end < size {
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &starts
}

func TestRun(t *testing.T) {
	body, sum := data(300_000)
	tests := []struct {
		mode    string
		sum     string
		wantErr error
		starts  int // requests expected, 0: any
	}{
		{"cut", sum, nil, 0},
		{"ignore-range", sum, nil, 2},
		{"lying-range", sum, ErrBadLength, 0},
		{"long", sum, ErrBadLength, 1},
		{"cut", strings.Repeat("00", 32), ErrTampered, 0},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.sum[:4], func(t *testing.T) {
			srv, starts := server(t, body, tt.mode)
			dst := &memDest{}
			var saved []Checkpoint
			err := Run(context.Background(), Job{
				Src: HTTP{URL: srv.URL, Length: int64(len(body)), Doer: http.DefaultClient}, Dst: dst,
				Length: int64(len(body)), SHA256: tt.sum, Sleep: noSleep, CheckpointBytes: 64 << 10,
				Save: func(c Checkpoint) error { saved = append(saved, c); return nil },
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Run = %v, want %v (requests from %v)", err, tt.wantErr, *starts)
			}
			if tt.starts != 0 && len(*starts) != tt.starts {
				t.Fatalf("requests from %v, want %d", *starts, tt.starts)
			}
			if err == nil && string(dst.b) != string(body) {
				t.Fatal("destination differs")
			}
			for _, c := range saved {
				if c.Offset > int64(len(body)) {
					t.Fatalf("checkpoint past the end: %d", c.Offset)
				}
			}
		})
	}
}

func TestResumeFromCheckpoint(t *testing.T) {
	body, sum := data(500_000)
	srv, starts := server(t, body, "plain")
	dst := &memDest{}
	var last Checkpoint
	stop := errors.New("stop")
	n := 0
	err := Run(context.Background(), Job{
		Src: HTTP{URL: srv.URL, Length: int64(len(body)), Doer: http.DefaultClient}, Dst: dst,
		Length: int64(len(body)), SHA256: sum, Sleep: noSleep, CheckpointBytes: 64 << 10, BufferBytes: 16 << 10,
		Save: func(c Checkpoint) error { last = c; return nil },
		Hook: func(string) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		},
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Run = %v", err)
	}
	*starts = nil
	err = Run(context.Background(), Job{
		Src: HTTP{URL: srv.URL, Length: int64(len(body)), Doer: http.DefaultClient}, Dst: dst,
		Length: int64(len(body)), SHA256: sum, Sleep: noSleep, From: last,
		Save: func(c Checkpoint) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(*starts) == 0 || (*starts)[0] != last.Offset || last.Offset >= int64(len(body)) {
		t.Fatalf("resumed with requests from %v, want one from the checkpoint %d", *starts, last.Offset)
	}
	if string(dst.b) != string(body) {
		t.Fatal("destination differs")
	}
}

func FuzzContentRange(f *testing.F) {
	fh, _ := os.Open("testdata/content-ranges.txt")
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	fh.Close()
	f.Fuzz(func(t *testing.T, s string) {
		start, end, total, err := parseContentRange(s)
		if err != nil {
			return
		}
		if start < 0 || end < start || (total != -1 && total <= end) {
			t.Fatalf("%q gave %d-%d/%d", s, start, end, total)
		}
	})
}
