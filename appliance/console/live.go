package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// snapshotResult is one reading of the Source; key identifies its content
// (without the time it was taken), to push only changes.
type snapshotResult struct {
	snap Snapshot
	err  error
	key  string
}

// hub keeps the dashboards connected over WebSocket and what they were
// last sent. The Source is polled only while at least one is connected.
type hub struct {
	c    *Console
	wake chan struct{} // a client joined or Changed was called
	// reading serialises reads of the Source, so that results reach the
	// clients in the order they were taken.
	reading sync.Mutex

	mu      sync.Mutex
	clients map[*liveClient]struct{}
	last    snapshotResult
	lastAt  time.Time // real time of the last reading, for freshness
	closed  bool
}

type liveClient struct {
	conn   *websocket.Conn
	lang   string
	idHash string
	send   chan snapshotResult // holds only the latest
	quit   chan struct{}
	once   sync.Once
}

func (cl *liveClient) stop() { cl.once.Do(func() { close(cl.quit) }) }

// push replaces what waits to be sent with res: a slow browser gets the
// latest snapshot, not a backlog.
func (cl *liveClient) push(res snapshotResult) {
	for {
		select {
		case cl.send <- res:
			return
		default:
		}
		select {
		case <-cl.send:
		default:
		}
	}
}

func newHub(c *Console) *hub {
	return &hub{c: c, wake: make(chan struct{}, 1), clients: map[*liveClient]struct{}{}}
}

func (h *hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// run polls the Source every PollInterval while clients are connected,
// and at once when poked.
func (h *hub) run(ctx context.Context) {
	h.mu.Lock()
	h.closed = false // Serve may run again after a restart
	h.mu.Unlock()
	for {
		if h.count() == 0 {
			select {
			case <-ctx.Done():
				return
			case <-h.wake:
			}
			continue
		}
		h.refresh(ctx)
		t := time.NewTimer(h.c.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-h.wake:
			t.Stop()
		}
	}
}

// refresh reads the Source and sends the result to every client when it
// changed.
func (h *hub) refresh(ctx context.Context) snapshotResult {
	h.reading.Lock()
	defer h.reading.Unlock()
	res := h.c.takeSnapshot(ctx)
	h.mu.Lock()
	changed := res.key != h.last.key
	if changed && (res.err == nil) != (h.last.err == nil) {
		if res.err != nil {
			h.c.log.Warn("console: read dashboard snapshot", "err", res.err)
		} else if h.last.key != "" {
			h.c.log.Info("console: dashboard snapshot readable again")
		}
	}
	h.last, h.lastAt = res, time.Now()
	var targets []*liveClient
	if changed {
		for cl := range h.clients {
			targets = append(targets, cl)
		}
	}
	h.mu.Unlock()
	for _, cl := range targets {
		cl.push(res)
	}
	return res
}

// current returns a reading no older than PollInterval.
func (h *hub) current(ctx context.Context) snapshotResult {
	h.mu.Lock()
	res, fresh := h.last, h.last.key != "" && time.Since(h.lastAt) < h.c.cfg.PollInterval
	h.mu.Unlock()
	if fresh {
		return res
	}
	return h.refresh(ctx)
}

func (h *hub) add(cl *liveClient) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.clients) >= h.c.cfg.MaxSockets {
		return false
	}
	h.clients[cl] = struct{}{}
	return true
}

func (h *hub) remove(cl *liveClient) {
	h.mu.Lock()
	delete(h.clients, cl)
	h.mu.Unlock()
}

// closeAll ends every connection (Serve is stopping).
func (h *hub) closeAll() {
	h.mu.Lock()
	h.closed = true
	var all []*liveClient
	for cl := range h.clients {
		all = append(all, cl)
	}
	h.mu.Unlock()
	for _, cl := range all {
		cl.stop()
	}
}

// takeSnapshot reads the Source, with a time limit.
func (c *Console) takeSnapshot(ctx context.Context) snapshotResult {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	snap, err := c.src.Snapshot(ctx)
	snap.TakenAt = time.Time{}
	if snap.Errors == nil {
		snap.Errors = []RecentError{}
	}
	if snap.Devices.Recent == nil {
		snap.Devices.Recent = []DeviceBrief{}
	}
	data, _ := json.Marshal(snap)
	key := string(data)
	if err != nil {
		key = "error: " + err.Error()
	}
	snap.TakenAt = c.now()
	return snapshotResult{snap: snap, err: err, key: key}
}

// liveMessage is what the dashboard's script receives, on the socket or
// from /api/v1/status?view=1.
type liveMessage struct {
	Type string   `json:"type"`
	View liveView `json:"view"`
}

const (
	writeWait     = 10 * time.Second
	maxLiveClient = 1024 // bytes a browser may send in one message (it sends none)
)

func (c *Console) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 8192,
		// Same origin only: a page elsewhere cannot read the dashboard
		// with the technician's cookie.
		CheckOrigin: func(r *http.Request) bool {
			o := r.Header.Get("Origin")
			u, err := url.Parse(o)
			return o != "" && err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
		},
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			c.log.Info("console websocket refused", "status", status, "reason", reason, "ip", clientIP(r))
			writeJSON(w, status, apiError{Error: "websocket", Message: http.StatusText(status)})
		},
	}
}

// websocket serves /console/ws: the current snapshot at once, then every
// change, with pings; it ends when the session does.
func (c *Console) websocket(w http.ResponseWriter, r *http.Request, s *session) {
	if c.hub.count() >= c.cfg.MaxSockets {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "busy", Message: msg(c.lang(r), "live.busy")})
		return
	}
	conn, err := c.upgrader().Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	cl := &liveClient{conn: conn, lang: c.lang(r), idHash: s.idHash, send: make(chan snapshotResult, 1), quit: make(chan struct{})}
	if !c.hub.add(cl) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "busy"), time.Now().Add(writeWait))
		conn.Close()
		return
	}
	defer c.hub.remove(cl)
	defer conn.Close()
	cl.push(c.hub.current(r.Context()))
	c.hub.poke() // start polling if this is the first client

	go c.readLive(cl)
	c.writeLive(cl)
}

// readLive reads (and discards) what the browser sends, which keeps pong
// handling going; it stops the client when the connection fails or the
// browser stops answering pings.
func (c *Console) readLive(cl *liveClient) {
	defer cl.stop()
	pongWait := 2 * c.cfg.PingInterval
	cl.conn.SetReadLimit(maxLiveClient)
	_ = cl.conn.SetReadDeadline(time.Now().Add(pongWait))
	cl.conn.SetPongHandler(func(string) error {
		return cl.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		if _, _, err := cl.conn.NextReader(); err != nil {
			return
		}
	}
}

func (c *Console) writeLive(cl *liveClient) {
	ping := time.NewTicker(c.cfg.PingInterval)
	defer ping.Stop()
	// The session is checked now and then: signing out or an expiry
	// closes the dashboard too.
	check := time.NewTicker(min(c.cfg.PingInterval, 15*time.Second))
	defer check.Stop()
	for {
		select {
		case <-cl.quit:
			_ = cl.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
			return
		case res := <-cl.send:
			data, err := json.Marshal(liveMessage{Type: "snapshot", View: c.liveView(res, cl.lang)})
			if err != nil {
				c.log.Error("console: encode live view", "err", err)
				return
			}
			_ = cl.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := cl.conn.WriteMessage(websocket.TextMessage, data); err != nil {
				return
			}
		case <-ping.C:
			if err := cl.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		case <-check.C:
			if !c.sessionAlive(context.Background(), cl.idHash) {
				_ = cl.conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "session ended"), time.Now().Add(writeWait))
				return
			}
		}
	}
}
