// Package sync will hold the one scheduler for every background transfer
// over the school's uplink (the WAN budget), the outbox and its connectors
// (WebDAV, Syncthing, USB). Its sub-packages are imported by appliance only.
//
// For now it holds the uplink monitor (sync/uplink), which the portal's
// online/offline indicator reads.
package sync
