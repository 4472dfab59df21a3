package appliance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"preau/services/content"
)

// The control socket is a Unix socket in the data folder, readable only by
// the box's user and root: `preau import`, `preau status` and later
// sub-commands talk to a running box through it rather than opening the
// database themselves. It speaks HTTP with JSON bodies; long operations
// stream newline-delimited JSON events.

func listenControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The data folder lock is held, so a socket file left here is stale.
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return l, nil
}

// controlEvent is one line of a streamed answer.
type controlEvent struct {
	Progress *content.Progress `json:"progress,omitempty"`
	Pack     *content.PackInfo `json:"pack,omitempty"`
	Error    *controlError     `json:"error,omitempty"`
}

type controlError struct {
	FR string `json:"fr"`
	EN string `json:"en"`
}

func (e *controlError) Error() string { return e.FR }

func (b *Box) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", b.serveHealth)
	mux.HandleFunc("GET /v1/captive/devices", func(w http.ResponseWriter, r *http.Request) {
		devs, err := b.lan.captive.Devices(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(devs)
	})
	mux.HandleFunc("GET /v1/captive/status", func(w http.ResponseWriter, r *http.Request) {
		lang := r.URL.Query().Get("lang")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := b.lan.captive.WriteStatus(r.Context(), w, lang); err != nil {
			b.log.Warn("captive status", "err", err)
		}
	})
	mux.HandleFunc("GET /v1/packs", func(w http.ResponseWriter, r *http.Request) {
		packs, err := b.content.Packs(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(packs)
	})
	mux.HandleFunc("POST /v1/import", b.serveImport)
	b.syncControl(mux)
	b.catalogControl(mux)
	b.updateControl(mux)
	b.technicianControl(mux)
	return b.auditControl(mux)
}

func (b *Box) serveImport(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Source string `json:"source"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.Source == "" {
		http.Error(w, "want {\"source\": \"…\"}", http.StatusBadRequest)
		return
	}
	send := ndjsonStream[controlEvent](w)
	b.log.Info("import requested", "source", req.Source)
	info, err := b.content.Import(r.Context(), req.Source, func(p content.Progress) { send(controlEvent{Progress: &p}) })
	if err != nil {
		b.log.Warn("import refused", "source", req.Source, "err", err)
		send(controlEvent{Error: localizeErr(err)})
		return
	}
	send(controlEvent{Pack: &info})
}

// localizeErr keeps both languages of an error that has them.
func localizeErr(err error) *controlError {
	var pe *content.PackError
	if errors.As(err, &pe) {
		return &controlError{FR: pe.Error(), EN: pe.English()}
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return &controlError{FR: ce.Localized("fr"), EN: ce.Localized("en")}
	}
	return &controlError{FR: err.Error(), EN: err.Error()}
}

// controlClient talks to a running box's control socket.
type controlClient struct {
	http *http.Client
}

// dialControl returns a client when a box runs on dataDir, or nil when
// no box answers there (no socket, or a stale one).
func dialControl(dataDir string) *controlClient {
	path := controlPath(dataDir)
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &controlClient{http: &http.Client{Transport: tr}}
}

func (c *controlClient) health(ctx context.Context) (Health, error) {
	var h Health
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://preau/v1/health", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return h, fmt.Errorf("ask the running box: %w", err)
	}
	defer resp.Body.Close()
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

func (c *controlClient) importPack(ctx context.Context, source string, progress func(content.Progress)) (content.PackInfo, error) {
	body, _ := json.Marshal(map[string]string{"source": source})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://preau/v1/import", bytesReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return content.PackInfo{}, fmt.Errorf("ask the running box: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return content.PackInfo{}, fmt.Errorf("ask the running box: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev controlEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return content.PackInfo{}, fmt.Errorf("read the running box's answer: %w", err)
		}
		switch {
		case ev.Progress != nil && progress != nil:
			progress(*ev.Progress)
		case ev.Error != nil:
			return content.PackInfo{}, ev.Error
		case ev.Pack != nil:
			return *ev.Pack, nil
		}
	}
	if err := sc.Err(); err != nil {
		return content.PackInfo{}, fmt.Errorf("read the running box's answer: %w", err)
	}
	return content.PackInfo{}, errors.New("the running box ended the import without an answer")
}

// get fetches a control-socket path and copies the body to w.
func (c *controlClient) get(ctx context.Context, path string, w io.Writer) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://preau"+path, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ask the running box: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("ask the running box: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// ndjsonStream starts a newline-delimited JSON answer and returns the
// function that sends one event and flushes it, safe for concurrent use
// (progress callbacks run on the worker's goroutine).
func ndjsonStream[E any](w http.ResponseWriter) func(E) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	var mu sync.Mutex
	return func(ev E) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(ev)
		if fl != nil {
			fl.Flush()
		}
	}
}
