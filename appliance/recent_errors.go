package appliance

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"preau/appliance/console"
)

// recentErrors keeps the last warnings and errors the box logged, for
// the console's dashboard: what a technician should see without reading
// the journal. It wraps the root logger's handler, so every component's
// record passes through it; it keeps only the component, the message
// and the error text of WARN and ERROR records.
type recentErrors struct {
	mu   sync.Mutex
	ring []console.RecentError // oldest first, at most keep
	keep int
}

// recentErrorsKept is how many records the dashboard can show.
const recentErrorsKept = 20

func newRecentErrors() *recentErrors { return &recentErrors{keep: recentErrorsKept} }

// handler wraps next.
func (r *recentErrors) handler(next slog.Handler) slog.Handler {
	return &recentHandler{next: next, rec: r}
}

func (r *recentErrors) add(e console.RecentError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ring) == r.keep {
		copy(r.ring, r.ring[1:])
		r.ring = r.ring[:r.keep-1]
	}
	r.ring = append(r.ring, e)
}

// list returns the records, newest first.
func (r *recentErrors) list() []console.RecentError {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]console.RecentError, len(r.ring))
	for i, e := range r.ring {
		out[len(r.ring)-1-i] = e
	}
	return out
}

type recentHandler struct {
	next      slog.Handler
	rec       *recentErrors
	component string
	groups    bool // inside a group: attributes are not the component's
}

func (h *recentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *recentHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		comp, msg := h.component, r.Message
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "component":
				comp = a.Value.String()
			case "err", "error":
				msg += " : " + a.Value.String()
			}
			return true
		})
		at := r.Time
		if at.IsZero() {
			at = time.Now()
		}
		h.rec.add(console.RecentError{At: at, Component: clipText(comp, 40), Message: clipText(msg, 300)})
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *recentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if !h.groups {
		for _, a := range as {
			if a.Key == "component" {
				c.component = a.Value.String()
			}
		}
	}
	return &c
}

func (h *recentHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.groups = true
	return &c
}

// clipText cuts s to at most n bytes on a rune boundary, on one line.
func clipText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
