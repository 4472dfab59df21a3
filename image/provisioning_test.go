package image_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const firstboot = "rootfs/usr/lib/preau/firstboot"

// A stub preau whose check-config refuses files that contain "invalid".
const stubPreau = `#!/bin/sh
case "$1" in
check-config) if grep -q invalid "$2"; then echo "preau.toml:1: invalid (stub)" >&2; exit 2; fi; exit 0 ;;
esac
exit 0
`

type fbRun struct {
	dir, esp, sys, state, runnet string
	out                          string
	err                          error
}

// runFirstboot runs the provisioning script on a temporary tree: the ESP
// holds files (name → content), tty is the console ("" for none).
func runFirstboot(t testing.TB, files map[string]string, tty string, extraEnv ...string) fbRun {
	t.Helper()
	dir := t.TempDir()
	r := fbRun{dir: dir, esp: filepath.Join(dir, "esp"), sys: filepath.Join(dir, "var/lib/preau-system"),
		state: filepath.Join(dir, "var/lib/preau"), runnet: filepath.Join(dir, "run/systemd/network")}
	for _, d := range []string{r.esp, filepath.Join(dir, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.esp, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	preau := filepath.Join(dir, "preau")
	mid := filepath.Join(dir, "etc/machine-id")
	if err := os.WriteFile(preau, []byte(stubPreau), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mid, []byte("0123456789abcdef0123456789abcdef\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	if tty == "" {
		tty = filepath.Join(dir, "no-tty")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil || g.Name != u.Username {
		t.Skipf("the script gives files to USER:USER; user %s has no group of that name", u.Username)
	}
	cmd := exec.Command("bash", firstboot)
	cmd.Env = append(os.Environ(),
		"PREAU_ESP="+r.esp, "PREAU_SYSTEM_DIR="+r.sys, "PREAU_STATE_DIR="+r.state,
		"PREAU_RUN_NETWORK="+r.runnet, "PREAU_BIN="+preau, "PREAU_USER="+u.Username,
		"PREAU_TTY="+tty, "PREAU_MACHINE_ID_FILE="+mid, "PREAU_NFT_CONF="+filepath.Join(dir, "no-nft.conf"))
	cmd.Env = append(cmd.Env, extraEnv...)
	out, err := cmd.CombinedOutput()
	r.out, r.err = string(out), err
	return r
}

func (r fbRun) read(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, rel))
	if err != nil {
		return "<missing>"
	}
	return string(b)
}

// TestFirstbootFromESP: the files a technician drops on the ESP become the
// box's configuration, network, firewall admin networks and ssh key; bad
// values are dropped with a message, never written.
func TestFirstbootFromESP(t *testing.T) {
	requireTool(t, false, "bash")
	const toml = "version = 1\n\n[box]\nname = \"École Jules Ferry\"\nuai = \"0751234A\"\n"
	cases := []struct {
		name    string
		files   map[string]string
		want    map[string]string // file (relative to the tree) → content
		wantOut []string
	}{{
		name: "static",
		files: map[string]string{"preau.toml": toml, "preau-network.conf": `# école
interface = enp1s0
address = 10.20.0.2/24
gateway = 10.20.0.1
dns = 10.20.0.1 9.9.9.9   # two servers
ntp = 10.20.0.1
admin_network = 10.20.0.0/24, fd00:20::/64
ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfake technicien@mairie"
`},
		want: map[string]string{
			"var/lib/preau/preau.toml": toml,
			"var/lib/preau-system/network/10-preau.network": `# Written at first boot by preau-firstboot.
[Match]
Name=enp1s0

[Network]
Address=10.20.0.2/24
Gateway=10.20.0.1
DNS=10.20.0.1
DNS=9.9.9.9
NTP=10.20.0.1
LinkLocalAddressing=ipv6
IPv6AcceptRA=yes
`,
			"var/lib/preau-system/nftables/admin.nft": `# Written at first boot by preau-firstboot: networks allowed to reach ssh.
add element inet filter admin4 { 10.20.0.0/24 }
add element inet filter admin6 { fd00:20::/64 }
`,
			"var/lib/preau-system/ssh/root.keys":   "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfake technicien@mairie\n",
			"var/lib/preau-system/machine-id":      "0123456789abcdef0123456789abcdef\n",
			"run/systemd/network/10-preau.network": "",
		},
		wantOut: []string{"provisioning done"},
	}, {
		name: "dhcp and bad values",
		files: map[string]string{"preau-network.conf": `address = dhcp
dns = 10.0.0.1; rm -rf /
gateway = nowhere
admin_network = 10.0.0.0/8 } ; flush ruleset
ssh_key = $(reboot)
colour = blue
just words
`},
		want: map[string]string{
			"var/lib/preau/preau.toml":                      "<missing>",
			"var/lib/preau-system/network/10-preau.network": "<missing>",
			"var/lib/preau-system/nftables/admin.nft": `# Written at first boot by preau-firstboot: networks allowed to reach ssh.
add element inet filter admin4 { 10.0.0.0/8 }
`,
			"var/lib/preau-system/ssh/root.keys": "<missing>",
			"var/lib/preau-system/machine-id":    "0123456789abcdef0123456789abcdef\n",
		},
		wantOut: []string{`unknown key "colour" ignored`, `line ignored`, `DNS "rm" ignored`, `invalid gateway ignored`,
			`admin network "flush" ignored`, `ssh key not recognised`, "provisioning done"},
	}, {
		name:  "configuration refused",
		files: map[string]string{"preau.toml": "version = 1\ninvalid = true\n"},
		want: map[string]string{
			"var/lib/preau/preau.toml":        "<missing>",
			"var/lib/preau-system/machine-id": "0123456789abcdef0123456789abcdef\n",
		},
		wantOut: []string{"invalid (stub)", "configuration refused, defaults used", "provisioning done"},
	}, {
		name: "nothing and no console",
		want: map[string]string{
			"var/lib/preau/preau.toml":                      "<missing>",
			"var/lib/preau-system/network/10-preau.network": "<missing>",
			"var/lib/preau-system/machine-id":               "0123456789abcdef0123456789abcdef\n",
		},
		wantOut: []string{"no console: defaults, DHCP", "provisioning done"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runFirstboot(t, c.files, "")
			if r.err != nil {
				t.Fatalf("firstboot: %v\n%s", r.err, r.out)
			}
			for f, want := range c.want {
				got := r.read(t, f)
				if f == "run/systemd/network/10-preau.network" {
					want = r.read(t, "var/lib/preau-system/network/10-preau.network")
				}
				if got != want {
					t.Errorf("%s:\ngot  %q\nwant %q", f, got, want)
				}
			}
			for _, w := range c.wantOut {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
		})
	}
}

// TestFirstbootAsks answers the questions on a real pseudo-terminal, as a
// technician at the keyboard would, including a wrong UAI asked again;
// then lets them time out, as on a box installed without a keyboard.
func TestFirstbootAsks(t *testing.T) {
	requireTool(t, false, "bash")
	t.Run("answers", func(t *testing.T) {
		master, slave := openPTY(t)
		answers := []struct{ prompt, answer string }{
			{"school name", "École Jules Ferry"},
			{"UAI", "pas une UAI"},
			{"UAI", "0751234a"},
			{"Adresse IP", "10.20.0.2/24"},
			{"gateway", "10.20.0.1"},
			{"DNS", "10.20.0.1"},
			{"ssh", "10.20.0.0/24"},
		}
		var screen bytes.Buffer
		var mu sync.Mutex
		done := make(chan struct{})
		go func() { // the technician
			defer close(done)
			buf := make([]byte, 4096)
			seen := 0
			for _, a := range answers {
				for {
					mu.Lock()
					s := screen.String()[seen:]
					mu.Unlock()
					if i := strings.Index(s, a.prompt); i >= 0 && strings.HasSuffix(strings.TrimRight(s, " "), ":") {
						seen += len(s)
						break
					}
					_ = master.SetReadDeadline(time.Now().Add(20 * time.Second))
					n, err := master.Read(buf)
					if err != nil {
						return
					}
					mu.Lock()
					screen.Write(buf[:n])
					mu.Unlock()
				}
				if _, err := master.Write([]byte(a.answer + "\n")); err != nil {
					return
				}
			}
			_, _ = master.Read(buf)
		}()
		r := runFirstboot(t, nil, slave, "PREAU_ASK_TIMEOUT=20")
		<-done
		if r.err != nil {
			t.Fatalf("firstboot: %v\n%s", r.err, r.out)
		}
		mu.Lock()
		shown := screen.String()
		mu.Unlock()
		for _, w := range []string{"Préau : première installation", "UAI invalide"} {
			if !strings.Contains(shown, w) {
				t.Errorf("console lacks %q:\n%s", w, shown)
			}
		}
		wantTOML := "# Written at first boot by preau-firstboot.\nversion = 1\n\n[box]\nname = \"École Jules Ferry\"\nuai = \"0751234A\"\n"
		if got := r.read(t, "var/lib/preau/preau.toml"); got != wantTOML {
			t.Errorf("preau.toml:\ngot  %q\nwant %q", got, wantTOML)
		}
		if got := r.read(t, "var/lib/preau-system/network/10-preau.network"); !strings.Contains(got, "Address=10.20.0.2/24\nGateway=10.20.0.1\nDNS=10.20.0.1\n") {
			t.Errorf("network file: %q", got)
		}
		if got := r.read(t, "var/lib/preau-system/nftables/admin.nft"); !strings.Contains(got, "admin4 { 10.20.0.0/24 }") {
			t.Errorf("admin.nft: %q", got)
		}
	})
	t.Run("nobody answers", func(t *testing.T) {
		master, slave := openPTY(t)
		go func() { // drain the console
			buf := make([]byte, 4096)
			for {
				if _, err := master.Read(buf); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		r := runFirstboot(t, nil, slave, "PREAU_ASK_TIMEOUT=1")
		if r.err != nil {
			t.Fatalf("firstboot: %v\n%s", r.err, r.out)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("took %v with a 1 s time-out", d)
		}
		for _, w := range []string{"no answer: defaults, DHCP", "provisioning done"} {
			if !strings.Contains(r.out, w) {
				t.Errorf("output lacks %q:\n%s", w, r.out)
			}
		}
		if got := r.read(t, "var/lib/preau/preau.toml"); got != "<missing>" {
			t.Errorf("preau.toml written without answers: %q", got)
		}
	})
}

// openPTY opens a pseudo-terminal pair: the master for the test, the path
// of the slave for the script.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// TestFirewallRuleset checks the base ruleset with nft itself, with the
// admin networks a provisioning wrote included.
func TestFirewallRuleset(t *testing.T) {
	requireTool(t, true, "nft", "bash")
	r := runFirstboot(t, map[string]string{"preau-network.conf": "admin_network = 192.168.10.0/24 fd00:1::/64\n"}, "")
	if r.err != nil {
		t.Fatalf("firstboot: %v\n%s", r.err, r.out)
	}
	conf, err := os.ReadFile("rootfs/etc/nftables.conf")
	must(t, err)
	for _, dir := range []string{filepath.Join(r.dir, "var/lib/preau-system"), filepath.Join(r.dir, "nowhere")} {
		text := strings.ReplaceAll(string(conf), "/var/lib/preau-system", dir)
		cmd := exec.Command("nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nft -c with admin networks from %s: %v\n%s", dir, err, out)
		}
	}
	// The LAN services and the drop policy are there.
	for _, want := range []string{"policy drop;", "udp dport { 53, 67, 547, 5353 } accept", "tcp dport { 53, 80, 443 } accept",
		"ip saddr @admin4 tcp dport 22 accept", "chain forward {\n\t\ttype filter hook forward priority filter; policy accept;"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("nftables.conf lacks %q", want)
		}
	}
}

var (
	networkLine = regexp.MustCompile(`^(#.*|\[Match\]|\[Network\]|Name=[A-Za-z0-9_.*-]{1,15}|Name=en\* eth\*|Address=[0-9A-Fa-f:./]+|Gateway=[0-9A-Fa-f:.]+|DNS=[0-9A-Fa-f:.]+|NTP=\S+|DHCP=yes|LinkLocalAddressing=ipv6|IPv6AcceptRA=yes|)$`)
	adminLine   = regexp.MustCompile(`^(#.*|add element inet filter admin[46] \{ [0-9A-Fa-f:./]+(, [0-9A-Fa-f:./]+)* \})$`)
)

// FuzzFirstbootNetworkConf: whatever preau-network.conf holds, provisioning
// finishes and writes only well-formed lines (nothing from the file can
// inject a setting into the network file or a rule into the firewall).
func FuzzFirstbootNetworkConf(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/network/*.conf")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	if _, err := exec.LookPath("bash"); err != nil {
		f.Skip("needs bash")
	}
	f.Fuzz(func(t *testing.T, conf string) {
		r := runFirstboot(t, map[string]string{"preau-network.conf": conf}, "", "PREAU_SYNC=0")
		if r.err != nil {
			t.Fatalf("firstboot failed: %v\n%s", r.err, r.out)
		}
		for file, re := range map[string]*regexp.Regexp{
			"var/lib/preau-system/network/10-preau.network": networkLine,
			"var/lib/preau-system/nftables/admin.nft":       adminLine,
		} {
			got := r.read(t, file)
			if got == "<missing>" {
				continue
			}
			for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if !re.MatchString(l) {
					t.Errorf("%s: line %q", file, l)
				}
			}
		}
		if keys := r.read(t, "var/lib/preau-system/ssh/root.keys"); keys != "<missing>" && strings.Count(keys, "\n") != 1 {
			t.Errorf("root.keys holds %d lines", strings.Count(keys, "\n"))
		}
	})
}
