package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func (u *user) dial(origin string) (*websocket.Conn, *http.Response, error) {
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	if c := u.cookie(sessionCookie); c != nil {
		hdr.Set("Cookie", sessionCookie+"="+c.Value)
	}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(u.h.srv.URL, "http")+"/console/ws", hdr)
}

func readView(t *testing.T, ws *websocket.Conn) liveView {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m liveMessage
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("read live message: %v", err)
	}
	if m.Type != "snapshot" {
		t.Fatalf("message type %q", m.Type)
	}
	return m.View
}

func TestLiveDashboard(t *testing.T) {
	h := newHarness(t)
	h.serve()
	u := h.signedIn("dir", RoleDirection)
	ws, _, err := u.dial(h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	v := readView(t, ws)
	if got := v.T("devices.count"); got != "2 appareils présents" {
		t.Errorf("first view: devices.count %q", got)
	}
	if got := v.T("uplink.rate"); got != "Débit : ↓ 12\u00a0Mbit/s · ↑ 1,2\u00a0Mbit/s" {
		t.Errorf("uplink.rate %q", got)
	}

	// Changed pushes at once.
	h.src.set(func(s *Snapshot) {
		s.Devices.Present = 3
		s.Devices.Recent = append([]DeviceBrief{{MAC: "02:00:00:00:00:09", IP: "10.20.0.40", Name: "tbi-cm1", Class: ClassInteractiveDisplay}}, s.Devices.Recent...)
	})
	h.c.Changed()
	v = readView(t, ws)
	if got := v.T("devices.count"); got != "3 appareils présents" {
		t.Errorf("after Changed: devices.count %q", got)
	}
	if got := v.L("devices"); len(got) != 3 || got[0] != "tbi-cm1 · 10.20.0.40 · écran interactif" {
		t.Errorf("after Changed: devices %q", got)
	}

	// The poll finds a change by itself.
	h.src.set(func(s *Snapshot) { s.Uplink.State = UplinkOffline })
	v = readView(t, ws)
	if v.T("uplink.state") != "Hors ligne" || v.S("uplink") != "bad" {
		t.Errorf("after poll: uplink %q/%q", v.T("uplink.state"), v.S("uplink"))
	}

	// Nothing changed: nothing is sent.
	ws.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	var m liveMessage
	if err := ws.ReadJSON(&m); err == nil {
		t.Errorf("a message without change: %+v", m)
	}
}

func TestLiveRefusals(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn("dir", RoleDirection)
	tests := []struct {
		name   string
		u      *user
		origin string
		want   int
	}{
		{"other origin", u, "http://evil.example", http.StatusForbidden},
		{"no origin", u, "", http.StatusForbidden},
		{"no session", h.newUser(), h.srv.URL, http.StatusUnauthorized},
		{"teacher", h.signedIn("prof", RoleEnseignant), h.srv.URL, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, resp, err := tt.u.dial(tt.origin)
			if err == nil {
				ws.Close()
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("dial: %v, response %v, want status %d", err, resp, tt.want)
			}
		})
	}
}

func TestLiveEndsWithSession(t *testing.T) {
	h := newHarness(t)
	h.serve()
	u := h.signedIn("dir", RoleDirection)
	ws, _, err := u.dial(h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readView(t, ws)
	if _, err := h.db.Exec("DELETE FROM console_sessions"); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Errorf("socket ended with %v, want close 1008", err)
		}
		break
	}
}

// The Source is read only while a dashboard is connected.
func TestLivePollsOnlyWithClients(t *testing.T) {
	h := newHarness(t)
	h.serve()
	u := h.signedIn("dir", RoleDirection)
	time.Sleep(500 * time.Millisecond)
	if n := h.src.count(); n != 0 {
		t.Errorf("%d reads without a client, want 0", n)
	}
	ws, _, err := u.dial(h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readView(t, ws)
	time.Sleep(500 * time.Millisecond)
	if n := h.src.count(); n < 3 {
		t.Errorf("%d reads in 500 ms with a client polling every 100 ms, want at least 3", n)
	}
	ws.Close()
	deadline := time.Now().Add(3 * time.Second)
	for h.c.hub.count() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(250 * time.Millisecond) // a poll under way ends
	before := h.src.count()
	time.Sleep(500 * time.Millisecond)
	if n := h.src.count() - before; n != 0 {
		t.Errorf("%d reads after the last client left, want 0", n)
	}
}

func TestStatusAPI(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn("dir", RoleDirection)
	a := u.get("/api/v1/status")
	var s Snapshot
	if a.status != 200 || json.Unmarshal([]byte(a.body), &s) != nil || s.Devices.Present != 2 || s.TakenAt.IsZero() {
		t.Fatalf("/api/v1/status: %d %s", a.status, a.body)
	}
	for _, field := range []string{`"uplink"`, `"down_bits_per_sec"`, `"sync"`, `"cache_bytes"`, `"devices"`, `"today_kwh"`, `"update"`, `"errors"`} {
		if !strings.Contains(a.body, field) {
			t.Errorf("status lacks %s", field)
		}
	}
	a = u.get("/api/v1/status?view=1")
	var m liveMessage
	if a.status != 200 || json.Unmarshal([]byte(a.body), &m) != nil || m.View.T("devices.count") != "2 appareils présents" {
		t.Errorf("/api/v1/status?view=1: %d %s", a.status, a.body)
	}
}
