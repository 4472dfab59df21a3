package syncthing

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files of the home folder.
const (
	configName = "config.xml"
	certName   = "cert.pem"
	socketName = "gui.sock"
	pidName    = "preau-syncthing.pid"
)

// ensureIdentity runs `syncthing generate` when Home has no certificate
// and configuration yet, and returns the device ID.
func (s *Syncthing) ensureIdentity(ctx context.Context) (string, error) {
	s.homeMu.Lock()
	defer s.homeMu.Unlock()
	if err := os.MkdirAll(s.cfg.Home, 0o700); err != nil {
		return "", fmt.Errorf("syncthing home: %w", err)
	}
	if err := os.Chmod(s.cfg.Home, 0o700); err != nil {
		return "", fmt.Errorf("syncthing home: %w", err)
	}
	_, errCert := os.Stat(filepath.Join(s.cfg.Home, certName))
	_, errConf := os.Stat(filepath.Join(s.cfg.Home, configName))
	if errCert != nil || errConf != nil {
		gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(gctx, s.cfg.Binary, "generate", "--home="+s.cfg.Home, "--no-default-folder", "--skip-port-probing")
		cmd.Env = childEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
				return "", newError(CodeBinaryMissing, s.cfg.Binary, err)
			}
			return "", newError(CodeGenerate, lastLines(string(out), 3), err)
		}
		s.log.Info("syncthing identity generated", "home", s.cfg.Home)
	}
	id, err := deviceIDFromCert(filepath.Join(s.cfg.Home, certName))
	if err != nil {
		return "", fmt.Errorf("syncthing identity: %w", err)
	}
	s.mu.Lock()
	s.deviceID = id
	s.mu.Unlock()
	return id, nil
}

// settings are what rewriteConfig enforces in config.xml before each start.
type settings struct {
	deviceID   string
	deviceName string
	listen     string // tcp://host:port
	guiAddress string // a socket path or host:port
	apiKey     string
	options    [][2]string // options/<name> = value, in order
}

// safeOptions are the options every start enforces: no discovery, relays,
// NAT traversal or STUN (the box talks only to the configured peers), no
// browser, no usage or crash reports, no self-upgrade (the OS image
// upgrades Syncthing), low priority, and the traffic caps.
func safeOptions(listen string, sendKiBps, recvKiBps int) [][2]string {
	return [][2]string{
		{"listenAddress", listen},
		{"globalAnnounceEnabled", "false"},
		{"localAnnounceEnabled", "false"},
		{"relaysEnabled", "false"},
		{"natEnabled", "false"},
		{"stunKeepaliveStartS", "0"},
		{"announceLANAddresses", "false"},
		{"startBrowser", "false"},
		{"urAccepted", "-1"},
		{"crashReportingEnabled", "false"},
		{"autoUpgradeIntervalH", "0"},
		{"setLowPriority", "true"},
		{"maxSendKbps", strconv.Itoa(sendKiBps)},
		// The caps serve the uplink budget: they apply whatever the peer's
		// address (an academy server may sit on a private network via VPN).
		{"limitBandwidthInLan", "true"},
		{"maxRecvKbps", strconv.Itoa(recvKiBps)},
	}
}

// prepareConfig rewrites config.xml (0600) with st, keeping the API key
// already there when it is ours (32 random bytes, base64url) and making a
// new one otherwise. It returns the key.
func (s *Syncthing) prepareConfig(st settings) (string, error) {
	path := filepath.Join(s.cfg.Home, configName)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("syncthing config: %w", err)
	}
	if key := currentAPIKey(data); len(key) == 43 && !strings.ContainsAny(key, "+/=") {
		st.apiKey = key
	} else {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("syncthing config: api key: %w", err)
		}
		st.apiKey = base64.RawURLEncoding.EncodeToString(b[:])
	}
	out, err := rewriteConfig(data, st)
	if err != nil {
		return "", fmt.Errorf("syncthing config %s: %w", path, err)
	}
	if !bytes.Equal(out, data) {
		if err := writeFileAtomic(path, out, 0o600); err != nil {
			return "", fmt.Errorf("syncthing config: %w", err)
		}
	} else if err := os.Chmod(path, 0o600); err != nil {
		return "", fmt.Errorf("syncthing config: %w", err)
	}
	return st.apiKey, nil
}

func currentAPIKey(data []byte) string {
	var c struct {
		GUI struct {
			APIKey string `xml:"apikey"`
		} `xml:"gui"`
	}
	if xml.Unmarshal(data, &c) != nil {
		return ""
	}
	return c.GUI.APIKey
}

// rewriteConfig streams config.xml token by token and sets the values of
// st, leaving everything else as Syncthing wrote it. Missing elements are
// added at the end of their parent; extra listenAddress elements dropped.
func rewriteConfig(data []byte, st settings) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)

	options := map[string]string{}
	for _, o := range st.options {
		options[o[0]] = o[1]
	}
	gui := map[string]string{"address": st.guiAddress, "apikey": st.apiKey}
	written := map[string]bool{} // "options/x", "gui/x"
	var path []string
	sawGUI, sawOptions := false, false

	emitValue := func(name, value string) error {
		start := xml.StartElement{Name: xml.Name{Local: name}}
		for _, t := range []xml.Token{start, xml.CharData(value), start.End()} {
			if err := enc.EncodeToken(t); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			parent := strings.Join(path, "/")
			name := t.Name.Local
			var value string
			replace := false
			switch {
			case parent == "configuration/options" && options[name] != "":
				if written["options/"+name] {
					// A second listenAddress: keep only ours.
					if err := dec.Skip(); err != nil {
						return nil, err
					}
					continue
				}
				value, replace = options[name], true
				written["options/"+name] = true
			case parent == "configuration/gui" && (name == "address" || name == "apikey"):
				value, replace = gui[name], true
				written["gui/"+name] = true
			case parent == "configuration" && name == "gui":
				sawGUI = true
				t.Attr = setAttr(setAttr(t.Attr, "enabled", "true"), "tls", "false")
			case parent == "configuration" && name == "options":
				sawOptions = true
			case parent == "configuration" && name == "device" && attr(t.Attr, "id") == st.deviceID && st.deviceName != "":
				t.Attr = setAttr(t.Attr, "name", st.deviceName)
			}
			if replace {
				if err := dec.Skip(); err != nil {
					return nil, err
				}
				if err := emitValue(name, value); err != nil {
					return nil, err
				}
				continue
			}
			path = append(path, name)
			if err := enc.EncodeToken(t.Copy()); err != nil {
				return nil, err
			}
		case xml.EndElement:
			here := strings.Join(path, "/")
			var missing [][2]string
			switch here {
			case "configuration/options":
				for _, o := range st.options {
					if !written["options/"+o[0]] {
						missing = append(missing, o)
					}
				}
			case "configuration/gui":
				for _, n := range []string{"address", "apikey"} {
					if !written["gui/"+n] {
						missing = append(missing, [2]string{n, gui[n]})
					}
				}
			}
			for _, m := range missing {
				if err := emitValue(m[0], m[1]); err != nil {
					return nil, err
				}
			}
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
			if err := enc.EncodeToken(t); err != nil {
				return nil, err
			}
		case xml.CharData, xml.Comment, xml.ProcInst, xml.Directive:
			if err := enc.EncodeToken(xml.CopyToken(t)); err != nil {
				return nil, err
			}
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	if !sawGUI || !sawOptions {
		return nil, errors.New("no <gui> or <options> element: not a Syncthing configuration")
	}
	return out.Bytes(), nil
}

func attr(attrs []xml.Attr, name string) string {
	for _, a := range attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func setAttr(attrs []xml.Attr, name, value string) []xml.Attr {
	for i, a := range attrs {
		if a.Name.Local == name {
			attrs[i].Value = value
			return attrs
		}
	}
	return append(attrs, xml.Attr{Name: xml.Name{Local: name}, Value: value})
}

// writeStignore makes Syncthing ignore this package's temporary folder.
func writeStignore(folder string) error {
	want := []byte("// Written by Préau: temporary files of files being added.\n/" + tmpDirName + "\n")
	p := filepath.Join(folder, ".stignore")
	if have, err := os.ReadFile(p); err == nil && bytes.Equal(have, want) {
		return nil
	}
	return writeFileAtomic(p, want, 0o644)
}

// writeFileAtomic writes data to path: temporary file, sync, rename, sync
// the folder.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
