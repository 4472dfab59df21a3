package syncthing

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// Status is what the console shows of Syncthing.
type Status struct {
	Running     bool
	DeviceID    string // empty before the identity exists
	Restarts    int    // process restarts after a death since Serve began
	LastError   string // French; empty when the last start went well
	LastErrorEN string
	LastErrorAt time.Time
	// Folder is Syncthing's state of the outbox folder: "idle", "scanning",
	// "syncing", "error"…; empty when not running.
	Folder       string
	FolderFiles  int
	FolderBytes  int64
	FolderErrors []string // per-file errors, "path: error"
	Peers        []PeerStatus
}

// PeerStatus is one peer's connection and progress on the outbox folder.
type PeerStatus struct {
	DeviceID, Name, Address string
	Connected               bool
	// Completion of the outbox folder on the peer, 0 to 100, and what it
	// still needs.
	Completion float64
	NeedBytes  int64
	NeedItems  int
}

// Status reports the process, the folder and each peer. When Syncthing is
// not running it returns what it knows without error.
func (s *Syncthing) Status(ctx context.Context) (Status, error) {
	s.mu.Lock()
	st := Status{DeviceID: s.deviceID, Restarts: s.restarts}
	if s.lastErr != nil {
		st.LastError, st.LastErrorEN, st.LastErrorAt = s.lastErr.FR, s.lastErr.EN, s.lastErrAt
	}
	api := s.api
	s.mu.Unlock()
	for _, p := range s.peers {
		st.Peers = append(st.Peers, PeerStatus{DeviceID: p.DeviceID, Name: p.Name, Address: p.Address})
	}
	if api == nil {
		return st, nil
	}
	st.Running = true

	folder := url.Values{"folder": {s.cfg.FolderID}}
	var db struct {
		State      string `json:"state"`
		LocalFiles int    `json:"localFiles"`
		LocalBytes int64  `json:"localBytes"`
	}
	if err := api.do(ctx, "GET", "/rest/db/status", folder, nil, &db); err != nil {
		return st, fmt.Errorf("syncthing status: %w", err)
	}
	st.Folder, st.FolderFiles, st.FolderBytes = db.State, db.LocalFiles, db.LocalBytes
	var ferr struct {
		Errors []struct {
			Path  string `json:"path"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	if err := api.do(ctx, "GET", "/rest/folder/errors", folder, nil, &ferr); err == nil {
		for _, e := range ferr.Errors {
			st.FolderErrors = append(st.FolderErrors, e.Path+": "+e.Error)
		}
	}
	var conns struct {
		Connections map[string]struct {
			Connected bool   `json:"connected"`
			Address   string `json:"address"`
		} `json:"connections"`
	}
	if err := api.do(ctx, "GET", "/rest/system/connections", nil, nil, &conns); err != nil {
		return st, fmt.Errorf("syncthing status: %w", err)
	}
	for i := range st.Peers {
		p := &st.Peers[i]
		if c, ok := conns.Connections[p.DeviceID]; ok {
			p.Connected = c.Connected
			if c.Connected && c.Address != "" {
				p.Address = c.Address
			}
		}
		var comp struct {
			Completion float64 `json:"completion"`
			NeedBytes  int64   `json:"needBytes"`
			NeedItems  int     `json:"needItems"`
		}
		q := url.Values{"folder": {s.cfg.FolderID}, "device": {p.DeviceID}}
		if err := api.do(ctx, "GET", "/rest/db/completion", q, nil, &comp); err != nil {
			return st, fmt.Errorf("syncthing status: completion of %s: %w", p.Name, err)
		}
		p.Completion, p.NeedBytes, p.NeedItems = comp.Completion, comp.NeedBytes, comp.NeedItems
	}
	return st, nil
}
