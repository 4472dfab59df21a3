package captive

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI writes a CA and a leaf certificate for names into dir and
// returns the paths of the CA, the leaf chain and its key.
func testPKI(t *testing.T, dir string, serial int64, names ...string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Préau test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name string, blocks ...*pem.Block) string {
		p := filepath.Join(dir, name)
		var b []byte
		for _, bl := range blocks {
			b = append(b, pem.EncodeToMemory(bl)...)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile = write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certFile = write("cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: leafDER}, &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	keyFile = write("key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return
}

// TestHTTPSAPI serves the handler over TLS with the configured certificate
// and fetches the RFC 8908 API with curl, verifying the chain and the name
// like a client would.
func TestHTTPSAPI(t *testing.T) {
	needTool(t, "curl")
	dir := t.TempDir()
	caFile, certFile, keyFile := testPKI(t, dir, 2, "preau.ecole.test")
	cfg := charterOn()
	cfg.HTTPSURL, cfg.CertFile, cfg.KeyFile = "https://preau.ecole.test/", certFile, keyFile
	e := newEnv(t, cfg)
	if got, want := e.c.APIURL(), "https://preau.ecole.test/captive-portal/api"; got != want {
		t.Fatalf("APIURL() = %q, want %q", got, want)
	}
	tc, err := e.c.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.c.Handler(http.NotFoundHandler()), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, tc))
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	out, err := exec.Command("curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", caFile,
		"--resolve", "preau.ecole.test:"+port+":127.0.0.1", "-H", "Accept: application/captive+json",
		"-w", "\n%{content_type}", "https://preau.ecole.test:"+port+"/captive-portal/api").CombinedOutput()
	if err != nil {
		t.Fatalf("curl over HTTPS: %v\n%s", err, out)
	}
	body, ctype, _ := strings.Cut(string(out), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("API body %q: %v", body, err)
	}
	if ctype != "application/captive+json" || got["captive"] != true ||
		got["user-portal-url"] != "https://preau.ecole.test/charte" || got["venue-info-url"] != "https://preau.ecole.test/" {
		t.Fatalf("API over HTTPS = %s (%s)", body, ctype)
	}

	// A renewed certificate is served without restart.
	e.c.tls.mu.Lock()
	e.c.tls.reloadIn = 0
	e.c.tls.mu.Unlock()
	time.Sleep(10 * time.Millisecond) // a new modification time
	testPKI(t, dir, 3, "preau.ecole.test")
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "preau.ecole.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	serial := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	conn.Close()
	if serial != 3 {
		t.Fatalf("served certificate serial %d after renewal, want 3", serial)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile := testPKI(t, dir, 2, "preau.ecole.test")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"wrong name", Config{HTTPSURL: "https://autre.ecole.test/", CertFile: certFile, KeyFile: keyFile}, "does not cover autre.ecole.test"},
		{"missing file", Config{HTTPSURL: "https://preau.ecole.test/", CertFile: filepath.Join(dir, "nope.pem"), KeyFile: keyFile}, "no such file"},
		{"key is not a key", Config{HTTPSURL: "https://preau.ecole.test/", CertFile: certFile, KeyFile: certFile}, "load HTTPS certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			_, err := e.c.TLSConfig()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("TLSConfig() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	e := newEnv(t, Config{})
	if _, err := e.c.TLSConfig(); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("TLSConfig() without certificate = %v, want ErrNoCertificate", err)
	}
}
