// Package firmware is the box's update engine: it installs signed
// releases into the inactive slot of an A/B layout and commits them only
// once the new system proves healthy locally, or rolls back by itself
// with the reason recorded (French and English).
//
// The update is a state machine persisted in SQLite (Migrations; the
// caller's *sql.DB): idle → downloading → verified → written → trying →
// committed | rolled_back, or failed before the trial. Each state is
// saved in a durable transaction before its side effect; every side
// effect can be done again; entering a state more than
// Config.MaxReentries times without progress ends the attempt. History
// keeps every attempt and its reason.
//
// Releases are verified with The Update Framework (go-tuf v2, package
// internal/tufclient): root, timestamp, snapshot and targets roles, a
// trusted root shipped in the image, rotations followed, rollback, freeze
// and mix-and-match refused. See tuf.go for the clock policy of boxes
// without a real-time clock. The slot image streams from the repository
// (through the WAN scheduler's client, Range resume after cuts and
// restarts) or from a USB key straight into the slot while it is hashed
// (internal/stream); never a whole image in memory.
//
// Slots and boot loaders are in package bootenv: systemd-boot boot
// counting and the Raspberry Pi's tryboot. Package release is the
// signing tool (preau release …).
//
// Only appliance imports firmware; firmware imports no other component.
package firmware
