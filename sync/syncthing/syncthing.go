// Package syncthing replicates the outbox to an academy or municipal
// Syncthing device by managing a stock `syncthing` process through its REST
// API.
//
// Why a managed process and not the library (github.com/syncthing/syncthing
// lib/syncthing, which embeds and works, see TESTING.md):
//   - Size and memory: embedding adds about 14 MB to every preau binary and
//     about 35 MB resident per instance, paid by every box. A separate
//     process costs nothing in the boxes that have no Syncthing destination
//     (most of them): appliance starts it only when one is configured, and
//     its memory is returned to the system when it stops.
//   - Licence: Syncthing is MPL-2.0. Linking is allowed but puts its files in
//     our binary, with the duty to ship their sources and publish changes;
//     a separate Debian package keeps that boundary clear and our binary's
//     licence alone.
//   - Upgrades: Syncthing's own upgrader is off; the OS image ships Debian's
//     syncthing, so its security fixes follow the image's signed A/B
//     updates, not a rebuild of preau. The only interfaces are the
//     documented REST API (/rest/system, /rest/config, /rest/db, stable
//     across 1.x) and the command line (generate, serve); a new Debian
//     syncthing is accepted by running this package's tests against it.
//   - The module cannot be added to this project anyway (v2 is not
//     fetchable as a module, v1 is frozen), and a crash or leak in Syncthing
//     stays in its process.
//
// The process runs with its own home (identity, configuration, database),
// its GUI and REST API on a Unix socket inside that home (0700) by default,
// and safe options enforced in config.xml before every start: no global or
// local discovery, relays, NAT traversal or STUN, no usage or crash
// reporting, no self-upgrade. Only the configured peers can connect. The API
// key is random, kept in config.xml (0600) and never logged or passed on a
// command line.
//
// Exactly once: Put writes a file into the send-only folder atomically
// (temporary file in an ignored folder, sync, hard link to the final name,
// which fails if the name exists) under the outbox's deterministic remote
// path. Syncthing replicates contents by name and never duplicates one, so
// a file is delivered once it is on every peer: Delivered asks
// /rest/db/file whether each peer announces our version of it. The box never
// deletes delivered files (a send-only folder would propagate the deletion
// to the academy); retention is appliance's decision, e.g. with the peer
// folder set to ignore deletes.
//
// Imported by appliance only.
package syncthing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Peer is a remote Syncthing device that receives the outbox.
type Peer struct {
	// DeviceID as Syncthing shows it (8 groups of 7 characters).
	DeviceID string
	// Name shown in Status and in Syncthing. Default "academie".
	Name string
	// Address the box dials: "host:port" or "tcp://host:port". Empty: the
	// peer dials the box (then ListenAddr must be reachable by it).
	Address string
}

// Config of the Syncthing connector. Zero values take the defaults of
// WithDefaults.
type Config struct {
	// Binary is the syncthing executable. Default "syncthing" (from PATH).
	Binary string
	// Home holds Syncthing's identity, configuration and database; under
	// the box's data folder, absolute, required.
	Home string
	// FolderID is the shared folder's id, the same on the peers. Default
	// "preau-outbox".
	FolderID string
	// FolderPath is the outbox folder appliance keeps; absolute, required.
	FolderPath string
	// Name of this box's device, shown to peers. Default "preau".
	Name string
	// Peers receive the folder.
	Peers []Peer
	// ListenAddr is where Syncthing accepts peers, "host:port". Default
	// "127.0.0.1:22000": the box only dials out. Set "0.0.0.0:22000" (and
	// open the firewall) for a peer that dials the box.
	ListenAddr string
	// GUIAddr is the REST API's address: empty (default) for a Unix socket
	// Home/gui.sock, or a loopback "127.0.0.1:port".
	GUIAddr string
	// MaxSendKiBps and MaxRecvKiBps cap Syncthing's traffic in KiB/s; 0
	// (default) is no cap. SetSendLimit changes the send cap at run time.
	MaxSendKiBps int
	MaxRecvKiBps int
	// StartTimeout bounds the wait for the API after a start. Default 1 min.
	StartTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL. Default 10 s.
	StopTimeout time.Duration
	// MinRestartDelay and MaxRestartDelay bound the backoff between
	// restarts of a process that died. Defaults 1 s and 5 min.
	MinRestartDelay time.Duration
	MaxRestartDelay time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time `toml:"-" json:"-"`
}

// Defaults of Config.
const (
	DefaultBinary     = "syncthing"
	DefaultFolderID   = "preau-outbox"
	DefaultName       = "preau"
	DefaultPeerName   = "academie"
	DefaultListenAddr = "127.0.0.1:22000"
)

var folderIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Binary == "" {
		c.Binary = DefaultBinary
	}
	if c.FolderID == "" {
		c.FolderID = DefaultFolderID
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = time.Minute
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.MinRestartDelay == 0 {
		c.MinRestartDelay = time.Second
	}
	if c.MaxRestartDelay == 0 {
		c.MaxRestartDelay = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	peers := make([]Peer, len(c.Peers))
	for i, p := range c.Peers {
		if p.Name == "" {
			p.Name = DefaultPeerName
			if len(c.Peers) > 1 {
				p.Name = fmt.Sprintf("%s-%d", DefaultPeerName, i+1)
			}
		}
		peers[i] = p
	}
	c.Peers = peers
	return c
}

// maxSocketPath is the longest Unix socket path Linux accepts.
const maxSocketPath = 107

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Home == "" || !filepath.IsAbs(c.Home):
		return fmt.Errorf("syncthing config: home %q: want an absolute path", c.Home)
	case c.FolderPath == "" || !filepath.IsAbs(c.FolderPath):
		return fmt.Errorf("syncthing config: folder path %q: want an absolute path", c.FolderPath)
	case filepath.Clean(c.Home) == filepath.Clean(c.FolderPath):
		return errors.New("syncthing config: home and folder path must differ")
	case !folderIDPattern.MatchString(c.FolderID):
		return fmt.Errorf("syncthing config: folder id %q: want 1 to 64 letters, digits, '.', '_' or '-'", c.FolderID)
	case c.Name == "" || len(c.Name) > 64 || strings.ContainsAny(c.Name, "\x00\r\n"):
		return fmt.Errorf("syncthing config: name %q: want 1 to 64 characters on one line", c.Name)
	case c.MaxSendKiBps < 0 || c.MaxRecvKiBps < 0:
		return errors.New("syncthing config: max send/recv KiB/s is negative")
	case c.StartTimeout <= 0 || c.StopTimeout <= 0:
		return errors.New("syncthing config: start and stop timeouts must be positive")
	case c.MinRestartDelay <= 0 || c.MaxRestartDelay < c.MinRestartDelay:
		return errors.New("syncthing config: want 0 < min restart delay <= max restart delay")
	}
	if _, err := listenURL(c.ListenAddr); err != nil {
		return fmt.Errorf("syncthing config: listen addr %q: %w", c.ListenAddr, err)
	}
	if c.GUIAddr == "" {
		if p := filepath.Join(c.Home, socketName); len(p) > maxSocketPath {
			return fmt.Errorf("syncthing config: home %q is too long for the API socket (%d bytes, at most %d): shorten it or set gui addr", c.Home, len(p), maxSocketPath)
		}
	} else {
		host, port, err := net.SplitHostPort(c.GUIAddr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() || port == "" || port == "0" {
			return fmt.Errorf("syncthing config: gui addr %q: want a loopback address with a port, e.g. 127.0.0.1:8384", c.GUIAddr)
		}
	}
	seen := map[string]bool{}
	for i, p := range c.Peers {
		id, err := canonicalDeviceID(p.DeviceID)
		if err != nil {
			return fmt.Errorf("syncthing config: peer %d device id %q: %w", i+1, p.DeviceID, err)
		}
		if seen[id] {
			return fmt.Errorf("syncthing config: peer %d device id %s appears twice", i+1, id)
		}
		seen[id] = true
		if len(p.Name) > 64 || strings.ContainsAny(p.Name, "\x00\r\n") {
			return fmt.Errorf("syncthing config: peer %d name %q: want at most 64 characters on one line", i+1, p.Name)
		}
		if p.Address != "" {
			if _, err := dialURL(p.Address); err != nil {
				return fmt.Errorf("syncthing config: peer %d address %q: %w", i+1, p.Address, err)
			}
		}
	}
	return nil
}

// listenURL turns "host:port" (or "tcp://host:port") into Syncthing's form.
func listenURL(addr string) (string, error) {
	hostport := strings.TrimPrefix(addr, "tcp://")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "" {
		return "", errors.New(`want "host:port"`)
	}
	if host != "" && net.ParseIP(host) == nil {
		return "", errors.New("want an IP address, not a name")
	}
	return "tcp://" + hostport, nil
}

// dialURL turns a peer address into Syncthing's form; names are allowed.
func dialURL(addr string) (string, error) {
	hostport := strings.TrimPrefix(addr, "tcp://")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" || strings.ContainsAny(hostport, "/?#@ ") {
		return "", errors.New(`want "host:port" or "tcp://host:port"`)
	}
	return "tcp://" + hostport, nil
}

// Syncthing runs and drives one Syncthing process.
type Syncthing struct {
	cfg   Config
	log   *slog.Logger
	peers []Peer // canonical ids, dial URLs

	homeMu sync.Mutex // identity generation

	mu        sync.Mutex
	deviceID  string
	api       *restClient // nil while the process is not ready
	restarts  int
	lastErr   *Error
	lastErrAt time.Time
}

// New validates cfg; it does no I/O.
func New(cfg Config, log *slog.Logger) (*Syncthing, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Syncthing{cfg: cfg, log: log}
	for _, p := range cfg.Peers {
		id, _ := canonicalDeviceID(p.DeviceID)
		addr := "dynamic"
		if p.Address != "" {
			addr, _ = dialURL(p.Address)
		}
		s.peers = append(s.peers, Peer{DeviceID: id, Name: p.Name, Address: addr})
	}
	return s, nil
}

// DeviceID returns this box's Syncthing device ID, creating the identity
// (`syncthing generate`) on first use, so that the technician can give it
// to the academy before any peer is configured.
func (s *Syncthing) DeviceID(ctx context.Context) (string, error) {
	s.mu.Lock()
	id := s.deviceID
	s.mu.Unlock()
	if id != "" {
		return id, nil
	}
	return s.ensureIdentity(ctx)
}
