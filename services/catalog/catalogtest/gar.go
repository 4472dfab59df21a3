package catalogtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Term is a ScoLOMFR term of a GAR resource.
type Term struct {
	URI string `json:"uri"`
	Nom string `json:"nom"`
}

// Resource is one GAR resource of the fixture.
type Resource struct {
	ID, Name, PublisherID, Publisher string
	Presentation                     Term // Code in URI
	Levels, Domains, Typologies      []Term
	Pedagogy                         []Term
	AccessURL                        string // default: the GAR's SSO address for the resource
	// Thumbnail is served at ThumbsURL/vignettes/N.png; nil for none.
	Thumbnail []byte
}

// GAR is the fixture of the GAR resource list service: GET
// /ressources/{idENT}/{UAI}/{userId} over TLS, only with a client
// certificate signed by its CA (RequireAndVerifyClientCert), answering
// {"listeRessources": {"ressource": [...]}}. Thumbnails are on a second,
// plain HTTP server (the GAR's vignette host needs no certificate).
type GAR struct {
	URL       string // https://127.0.0.1:PORT
	ThumbsURL string // http://127.0.0.1:PORT
	// CAFile is the PEM of the CA that signed the server's and the client's
	// certificates; CertFile and KeyFile the client's (the ENT's).
	CAFile, CertFile, KeyFile string
	// StrangerCertFile and StrangerKeyFile are a client certificate from
	// another CA: the service refuses it.
	StrangerCertFile, StrangerKeyFile string
	ENT, UAI, User                    string

	srv, thumbs *httptest.Server

	mu        sync.Mutex
	resources []Resource
	requests  int
	thumbHits int
}

// NewGAR starts the fixture for one ENT, school (UAI) and user; it stops
// when the test ends.
func NewGAR(t testing.TB, ent, uai, user string) *GAR {
	t.Helper()
	dir := t.TempDir()
	g := &GAR{ENT: ent, UAI: uai, User: user}
	ca, caKey := newCA(t, "Préau test GAR CA")
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	g.CAFile = filepath.Join(dir, "ca.pem")
	serverCert := issue(t, ca, caKey, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	clientCert := issue(t, ca, caKey, "ENT "+ent, x509.ExtKeyUsageClientAuth)
	g.CertFile, g.KeyFile = writePair(t, dir, "client", clientCert)
	stranger, strangerKey := newCA(t, "Stranger CA")
	g.StrangerCertFile, g.StrangerKeyFile = writePair(t, dir, "stranger", issue(t, stranger, strangerKey, "stranger", x509.ExtKeyUsageClientAuth))

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	g.srv = httptest.NewUnstartedServer(http.HandlerFunc(g.serveList))
	g.srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: pool, MinVersion: tls.VersionTLS12}
	g.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	g.srv.StartTLS()
	g.URL = g.srv.URL
	g.thumbs = httptest.NewServer(http.HandlerFunc(g.serveThumb))
	g.ThumbsURL = g.thumbs.URL
	t.Cleanup(func() { g.srv.Close(); g.thumbs.Close() })
	return g
}

// SetResources sets the school's resources.
func (g *GAR) SetResources(rs []Resource) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resources = append([]Resource(nil), rs...)
}

// Requests returns how many list requests were answered (with a valid
// certificate).
func (g *GAR) Requests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests
}

// ThumbnailRequests returns how many thumbnails were served.
func (g *GAR) ThumbnailRequests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.thumbHits
}

// Document returns the list as the service answers it (also what an ENT
// exports).
func (g *GAR) Document() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.document()
}

func (g *GAR) document() []byte {
	list := []any{}
	for i, r := range g.resources {
		m := map[string]any{
			"idRessource": r.ID, "idType": "ARK", "nomRessource": r.Name,
			"idEditeur": r.PublisherID, "nomEditeur": r.Publisher,
			"typePresentation":      map[string]string{"code": r.Presentation.URI, "nom": r.Presentation.Nom},
			"typePedagogique":       terms(r.Pedagogy),
			"typologieDocument":     terms(r.Typologies),
			"niveauEducatif":        terms(r.Levels),
			"domaineEnseignement":   terms(r.Domains),
			"nomSourceEtiquetteGar": "Accessible via le Gestionnaire d’accès aux ressources (GAR)",
			"distributeurTech":      r.PublisherID, "validateurTech": r.PublisherID,
			"structure_uai": g.UAI, // ENTs add fields of their own
		}
		m["urlAccesRessource"] = r.AccessURL
		if r.AccessURL == "" {
			m["urlAccesRessource"] = "https://idp-auth.gar.education.fr/domaineGar?idENT=" + g.ENT + "&idEtab=" + g.UAI +
				"&idRessource=" + strings.ReplaceAll(r.ID, "/", "%2F")
		}
		if r.Thumbnail != nil {
			m["urlVignette"] = fmt.Sprintf("%s/vignettes/%d.png", g.ThumbsURL, i)
		}
		list = append(list, m)
	}
	data, _ := json.MarshalIndent(map[string]any{"listeRessources": map[string]any{"ressource": list}}, "", "  ")
	return data
}

func terms(ts []Term) []Term {
	if ts == nil {
		return []Term{}
	}
	return ts
}

func (g *GAR) serveList(w http.ResponseWriter, r *http.Request) {
	want := "/ressources/" + g.ENT + "/" + g.UAI + "/" + g.User
	if r.Method != http.MethodGet || r.URL.EscapedPath() != want {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		http.Error(w, "client certificate required", http.StatusForbidden)
		return
	}
	g.mu.Lock()
	g.requests++
	doc := g.document()
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(doc)
}

func (g *GAR) serveThumb(w http.ResponseWriter, r *http.Request) {
	var n int
	if _, err := fmt.Sscanf(r.URL.Path, "/vignettes/%d.png", &n); err != nil {
		http.NotFound(w, r)
		return
	}
	g.mu.Lock()
	var body []byte
	if n >= 0 && n < len(g.resources) {
		body = g.resources[n].Thumbnail
	}
	g.thumbHits++
	g.mu.Unlock()
	if body == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("ETag", fmt.Sprintf(`"v%d-%d"`, n, len(body)))
	w.Write(body)
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func issue(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePair(t testing.TB, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", c.Certificate[0])
	der, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", der)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Close stops the list service and the thumbnail host at once.
func (g *GAR) Close() {
	for _, s := range []*httptest.Server{g.srv, g.thumbs} {
		s.CloseClientConnections()
		s.Close()
	}
}
