package appliance

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"preau/sync/syncthing"
)

// A Syncthing destination replicates hand-ins to an academy's or the
// municipality's Syncthing device. One managed syncthing process serves
// every Syncthing destination: it runs only when one is configured. Each
// destination's files live under its id in the shared send-only folder.

func (b *Box) newSyncthing() (*syncthing.Syncthing, error) {
	var peers []syncthing.Peer
	for id, d := range b.cfg.Destinations {
		if d.Type == "syncthing" {
			peers = append(peers, syncthing.Peer{DeviceID: d.DeviceID, Name: id, Address: d.Address})
		}
	}
	if len(peers) == 0 {
		return nil, nil
	}
	dir, err := filepath.Abs(b.cfg.Box.DataDir)
	if err != nil {
		return nil, err
	}
	return syncthing.New(syncthing.Config{
		Home:       filepath.Join(dir, "syncthing"),
		FolderPath: syncthingFolder(dir),
		Name:       "preau " + b.cfg.Box.Name,
		Peers:      peers,
	}, b.log.With("component", "syncthing"))
}

// syncthingConnector adapts the managed Syncthing to the outbox: sending
// is writing the file into the folder (idempotent), and the file exists
// at the destination once the peers report it complete. Until then Stat
// says "not there", so the outbox retries later and Put rewrites nothing.
type syncthingConnector struct {
	st     *syncthing.Syncthing
	folder string // the shared folder on this box
	prefix string // the destination id
}

func (c syncthingConnector) rel(p string) string { return c.prefix + "/" + p }

func (c syncthingConnector) Stat(ctx context.Context, remotePath string) (int64, string, bool, error) {
	ok, err := c.st.Delivered(ctx, c.rel(remotePath))
	if err != nil || !ok {
		return 0, "", false, err
	}
	// Syncthing verified the peer's copy block by block against ours.
	fi, err := os.Stat(filepath.Join(c.folder, filepath.FromSlash(c.rel(remotePath))))
	if err != nil {
		return 0, "", false, fmt.Errorf("syncthing stat %s: %w", remotePath, err)
	}
	return fi.Size(), "", true, nil
}

func (c syncthingConnector) Upload(ctx context.Context, remotePath string, body io.ReaderAt, size int64, sum string, progress func(int64)) error {
	if err := c.st.Put(ctx, c.rel(remotePath), io.NewSectionReader(body, 0, size), size, sum); err != nil {
		return fmt.Errorf("syncthing put %s: %w", remotePath, err)
	}
	if progress != nil {
		progress(size)
	}
	return nil
}

func (c syncthingConnector) Cleanup(context.Context, string) error { return nil }

func syncthingFolder(dataDir string) string { return filepath.Join(dataDir, "syncthing-outbox") }
