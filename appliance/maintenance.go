package appliance

import (
	"context"
	"log/slog"
	"time"
)

// contentGCAge is how long unreferenced blobs and partial downloads stay on
// disk: an interrupted import retried within a week resumes without copying
// them again.
const contentGCAge = 7 * 24 * time.Hour

// maintenance is the supervised part that tidies the content store: a GC
// shortly after start (a crash may have left temporary files), then once a
// day. It sleeps between runs: no polling.
func (b *Box) maintenance() part {
	return part{name: "maintenance", serve: func(ctx context.Context) error {
		t := time.NewTimer(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			b.collectGarbage(ctx)
			t.Reset(24 * time.Hour)
		}
	}}
}

func (b *Box) collectGarbage(ctx context.Context) {
	log := b.log.With("component", "maintenance")
	n, freed, err := b.content.GC(ctx, contentGCAge)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("nettoyage du stockage impossible, nouvel essai demain", "err", err)
	case n > 0:
		log.Info("stockage nettoyé", "files", n, "bytes", freed)
	default:
		log.Log(ctx, slog.LevelDebug, "stockage déjà propre")
	}
}
