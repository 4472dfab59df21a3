// Package sync is everything the box sends or fetches over the school's
// uplink in the background. Its sub-packages are imported by appliance
// only:
//
//   - sync/uplink watches whether the internet answers and estimates the
//     link's capacity and base RTT;
//   - sync/budget is the one WAN budget: time windows, caps, priorities and
//     LEDBAT-like yielding to foreground traffic; every background transfer
//     uses its HTTP client;
//   - sync/outbox is the durable, exactly-once queue of files to deliver;
//   - sync/webdav (Nextcloud "Nuage", WebDAV), sync/syncthing (a managed
//     Syncthing) and sync/usb (sneakernet bundles) deliver them.
package sync
