package captive

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteStatus prints the known devices and their acceptance as a table in
// lang ("fr" or "en"), for `preau captive status`.
func (c *Captive) WriteStatus(ctx context.Context, w io.Writer, lang string) error {
	devs, err := c.Devices(ctx)
	if err != nil {
		return err
	}
	if !c.cfg.Charter.Enabled {
		if _, err := fmt.Fprintln(w, msg(lang, "status.off")); err != nil {
			return err
		}
	}
	if len(devs) == 0 {
		_, err := fmt.Fprintln(w, msg(lang, "status.none"))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, msg(lang, "status.header"))
	for _, d := range devs {
		mac, acc, until := d.MAC, msg(lang, "status.no"), "-"
		if mac == "" {
			mac = "-"
		}
		if d.Accepted {
			acc, until = msg(lang, "status.yes"), c.formatDate(lang, d.ExpiresAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.IP, mac, acc, until, c.formatDate(lang, d.LastSeen))
	}
	return tw.Flush()
}
