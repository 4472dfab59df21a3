package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// notify sends a state to systemd when NOTIFY_SOCKET is set; outside
// systemd it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// activatedListeners returns the sockets systemd passed (LISTEN_FDS), or
// nil when not socket-activated. The environment is cleared so children
// do not inherit it.
func activatedListeners() ([]net.Listener, error) {
	if os.Getenv("LISTEN_FDS") == "" {
		return nil, nil
	}
	ls, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	var out []net.Listener
	for _, l := range ls {
		if l != nil {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS set but no usable stream socket")
	}
	return out, nil
}

// watchdog pings systemd at half the WATCHDOG_USEC interval while healthy
// returns nil. A box that stops answering its own health check stops
// pinging, and systemd restarts it.
func watchdog(log *slog.Logger, healthy func(context.Context) error) part {
	return part{name: "watchdog", serve: func(ctx context.Context) error {
		interval, err := daemon.SdWatchdogEnabled(false)
		if err != nil || interval == 0 {
			<-ctx.Done()
			return nil
		}
		tick := time.NewTicker(interval / 2)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				hctx, cancel := context.WithTimeout(ctx, interval/4)
				err := healthy(hctx)
				cancel()
				if err != nil {
					log.Error("health check failed, not pinging the watchdog", "err", err)
					continue
				}
				notify(log, daemon.SdNotifyWatchdog)
			}
		}
	}}
}
