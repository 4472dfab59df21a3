package appliance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
)

// newLogger builds the root logger; components get children with a
// "component" attribute.
func newLogger(cfg LogConfig, stderr io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	format := cfg.Format
	if format == "auto" {
		format = "text"
		// Under systemd stderr is connected to the journal: send structured
		// entries instead of text lines.
		if os.Getenv("JOURNAL_STREAM") != "" && journal.Enabled() {
			format = "journal"
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts))
	case "journal":
		return slog.New(&journalHandler{level: level})
	default:
		return slog.New(slog.NewTextHandler(stderr, opts))
	}
}

// journalHandler writes each record as a native journal entry, attributes
// as upper-case fields (PREAU_COMPONENT=portal), so `journalctl -u preau
// PREAU_COMPONENT=content` filters by component.
type journalHandler struct {
	level  slog.Level
	attrs  []slog.Attr
	groups []string
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{}
	add := func(a slog.Attr) {
		key := "PREAU_" + strings.ToUpper(strings.Join(append(append([]string{}, h.groups...), a.Key), "_"))
		key = strings.Map(func(r rune) rune {
			if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
				return r
			}
			return '_'
		}, key)
		vars[key] = a.Value.Resolve().String()
	}
	for _, a := range h.attrs {
		add(a)
	}
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		add(a)
		msg += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	prio := journal.PriInfo
	switch {
	case r.Level >= slog.LevelError:
		prio = journal.PriErr
	case r.Level >= slog.LevelWarn:
		prio = journal.PriWarning
	case r.Level < slog.LevelInfo:
		prio = journal.PriDebug
	}
	return journal.Send(msg, prio, vars)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups = append(append([]string{}, h.groups...), name)
	return &c
}
