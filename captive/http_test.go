package captive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const portalBody = "portal home"

// server runs e's handler in front of a stand-in portal on 127.0.0.1.
func (e *env) server(t *testing.T) *httptest.Server {
	t.Helper()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Portal", "yes")
		io.WriteString(w, portalBody)
	})
	s := httptest.NewServer(e.c.Handler(next))
	t.Cleanup(s.Close)
	return s
}

// client sends every request to srv whatever the URL's host, as a device
// whose DNS points the probe names at the box, and never follows redirects.
func client(srv *httptest.Server) *http.Client {
	addr := srv.Listener.Addr().String()
	return &http.Client{
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func goGet(t *testing.T, c *http.Client, method, rawURL, userAgent string) answer {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", userAgent) // "" sends none, as NetworkManager
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// curlGet fetches host+path from srv with curl, resolving host to
// 127.0.0.1 and sending the row's User-Agent, as an OS would.
func curlGet(t *testing.T, srv *httptest.Server, host, path, userAgent string, extra ...string) answer {
	t.Helper()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	dir := t.TempDir()
	bodyFile, headFile := filepath.Join(dir, "body"), filepath.Join(dir, "head")
	args := []string{"-sS", "--noproxy", "*", "--max-time", "10", "-o", bodyFile, "-D", headFile,
		"-w", "%{http_code}", "--resolve", host + ":" + port + ":127.0.0.1", "-H", "User-Agent: " + userAgent}
	if userAgent == "" {
		args[len(args)-1] = "User-Agent:" // curl: remove the header
	}
	args = append(args, extra...)
	args = append(args, "http://"+host+":"+port+path)
	out, err := exec.Command("curl", args...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
	}
	status, _ := strconv.Atoi(string(out))
	body, _ := os.ReadFile(bodyFile)
	head, _ := os.ReadFile(headFile)
	tp := textprotoHeader(t, string(head))
	return answer{status, tp, string(body)}
}

func textprotoHeader(t *testing.T, raw string) http.Header {
	t.Helper()
	h := http.Header{}
	sc := bufio.NewScanner(strings.NewReader(raw))
	sc.Scan() // status line
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h
}

// pathFor is the request path for a row: a made-up one for AnyPath rows.
func pathFor(p Probe) string {
	if p.Path == AnyPath {
		return "/x7Tq2/Lm9a.html"
	}
	return p.Path
}

func checkSuccess(t *testing.T, who string, p Probe, got answer, head bool) {
	t.Helper()
	if got.status != p.Status {
		t.Errorf("%s: status %d, want %d", who, got.status, p.Status)
	}
	want := p.Body
	if head {
		want = ""
	}
	if got.body != want {
		t.Errorf("%s: body %q, want %q", who, got.body, want)
	}
	for k, v := range p.Headers {
		if g := got.header.Get(k); g != v {
			t.Errorf("%s: header %s = %q, want %q", who, k, g, v)
		}
	}
	if g := got.header.Get("Cache-Control"); g != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", who, g)
	}
	if p.Status != http.StatusNoContent {
		if g := got.header.Get("Content-Length"); g != strconv.Itoa(len(p.Body)) {
			t.Errorf("%s: Content-Length %q, want %d", who, g, len(p.Body))
		}
	}
	if got.header.Get("X-Portal") != "" {
		t.Errorf("%s: answered by the portal", who)
	}
}

func checkRedirect(t *testing.T, who string, got answer, to string) {
	t.Helper()
	if got.status != http.StatusFound || got.header.Get("Location") != to {
		t.Errorf("%s: %d Location %q, want 302 to %s", who, got.status, got.header.Get("Location"), to)
	}
	if g := got.header.Get("Cache-Control"); g != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", who, g)
	}
}

// TestProbeRows plays every row of probes.json, for every host of the row,
// as the OS would: before acceptance it must be redirected to the charter,
// after acceptance it must get the exact success answer, from Go's client
// and from curl with the row's User-Agent.
func TestProbeRows(t *testing.T) {
	needTool(t, "curl")
	e := newEnv(t, charterOn())
	srv := e.server(t)
	cl := client(srv)
	ctx := context.Background()
	local := netip.MustParseAddr("127.0.0.1")
	rows := Probes().Rows()
	if len(rows) < 20 {
		t.Fatalf("probe table has %d rows", len(rows))
	}
	for _, p := range rows {
		t.Run(p.ID, func(t *testing.T) {
			for _, host := range p.Hosts {
				path := pathFor(p)
				if err := e.c.Revoke(ctx, local); err != nil {
					t.Fatal(err)
				}
				checkRedirect(t, host+" go before", goGet(t, cl, "GET", "http://"+host+path, p.UserAgent), "http://preau.lan/charte")
				checkRedirect(t, host+" curl before", curlGet(t, srv, host, path, p.UserAgent), "http://preau.lan/charte")

				if _, err := e.c.Accept(ctx, local); err != nil {
					t.Fatal(err)
				}
				// Go: with a query string (Firefox adds ?ipv4), an upper-case
				// Host and a port, which must not matter.
				checkSuccess(t, host+" go after", p, goGet(t, cl, "GET", "http://"+strings.ToUpper(host)+":80"+path+"?ipv4", p.UserAgent), false)
				checkSuccess(t, host+" go HEAD", p, goGet(t, cl, "HEAD", "http://"+host+path, p.UserAgent), true)
				checkSuccess(t, host+" curl after", p, curlGet(t, srv, host, path, p.UserAgent, "-H", "Connection: close"), false)
				// Fully qualified name with the trailing dot.
				checkSuccess(t, host+". curl after", p, curlGet(t, srv, host+".", path, p.UserAgent), false)
			}
		})
	}
}

func TestProbeHostOtherPath(t *testing.T) {
	e := newEnv(t, charterOn())
	srv := e.server(t)
	cl := client(srv)
	url := "http://www.msftconnecttest.com/redirect"
	checkRedirect(t, "before", goGet(t, cl, "GET", url, "Microsoft NCSI"), "http://preau.lan/charte")
	if _, err := e.c.Accept(context.Background(), netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	checkRedirect(t, "after", goGet(t, cl, "GET", url, "Microsoft NCSI"), "http://preau.lan/")
}

func TestCharterOffProbesSucceed(t *testing.T) {
	e := newEnv(t, Config{})
	srv := e.server(t)
	p, _ := Probes().Match("captive.apple.com", "/hotspot-detect.html")
	checkSuccess(t, "apple", p, goGet(t, client(srv), "GET", "http://captive.apple.com/hotspot-detect.html", p.UserAgent), false)
	got := goGet(t, client(srv), "GET", "http://preau.lan/charte", "")
	if got.status != http.StatusSeeOther || got.header.Get("Location") != "/" {
		t.Errorf("charte with the step off: %d %q, want 303 to /", got.status, got.header.Get("Location"))
	}
}

func TestOtherRequestsGoToThePortal(t *testing.T) {
	e := newEnv(t, charterOn())
	cl := client(e.server(t))
	for _, u := range []string{"http://preau.lan/", "http://preau.lan/recherche?q=chat", "http://192.0.2.1/", "http://example.org/generate_204"} {
		got := goGet(t, cl, "GET", u, "")
		if got.body != portalBody || got.header.Get("X-Portal") != "yes" {
			t.Errorf("%s: %d %q, want the portal", u, got.status, got.body)
		}
	}
}

var tokenRE = regexp.MustCompile(`name="t" value="([^"]+)"`)

func charterToken(t *testing.T, cl *http.Client) string {
	t.Helper()
	got := goGet(t, cl, "GET", "http://preau.lan/charte", "")
	m := tokenRE.FindStringSubmatch(got.body)
	if m == nil {
		t.Fatalf("no token in charter page:\n%s", got.body)
	}
	return m[1]
}

func post(t *testing.T, cl *http.Client, form url.Values, hdr map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://preau.lan/charte", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func TestCharterPage(t *testing.T) {
	cfg := charterOn()
	cfg.Charter.Text = "Premier <b>paragraphe</b>\nsur deux lignes.\n\nSecond paragraphe."
	cfg.SchoolName = "École Jules-Ferry"
	e := newEnv(t, cfg)
	cl := client(e.server(t))
	got := goGet(t, cl, "GET", "http://preau.lan/charte", "")
	if got.status != 200 {
		t.Fatalf("GET /charte = %d", got.status)
	}
	for _, want := range []string{
		`<html lang="fr">`, "<h1>Charte d&#39;usage du réseau de l&#39;école</h1>",
		"<p>Premier &lt;b&gt;paragraphe&lt;/b&gt; sur deux lignes.</p>", "<p>Second paragraphe.</p>",
		`<button type="submit">J&#39;accepte</button>`, "jusqu&#39;au 10 mars à 17h30", "École Jules-Ferry",
		`href="/charte?lang=en"`,
	} {
		if !strings.Contains(got.body, want) {
			t.Errorf("charter page lacks %q", want)
		}
	}
	if strings.Contains(got.body, "<script") {
		t.Error("charter page has a script")
	}
	// The CSP allows exactly the inline stylesheet, by hash.
	css := got.body[strings.Index(got.body, "<style>")+7 : strings.Index(got.body, "</style>")]
	sum := sha256.Sum256([]byte(css))
	csp := got.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not allow the page's stylesheet by hash", csp)
	}

	// English through ?lang=en, remembered in the portal's cookie.
	sw := goGet(t, cl, "GET", "http://preau.lan/charte?lang=en", "")
	if sw.status != http.StatusSeeOther || !strings.Contains(sw.header.Get("Set-Cookie"), "preau_lang=en") {
		t.Fatalf("lang switch: %d %q", sw.status, sw.header.Get("Set-Cookie"))
	}
	req, _ := http.NewRequest("GET", "http://preau.lan/charte", nil)
	req.AddCookie(&http.Cookie{Name: "preau_lang", Value: "en"})
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`<html lang="en">`, "I accept", "The school&#39;s Wi-Fi network is for class activities."} {
		if !strings.Contains(string(b), want) {
			t.Errorf("English charter page lacks %q", want)
		}
	}
}

func TestCharterAccept(t *testing.T) {
	e := newEnv(t, charterOn())
	cl := client(e.server(t))
	tok := charterToken(t, cl)
	got := post(t, cl, url.Values{"t": {tok}}, map[string]string{"Origin": "http://preau.lan", "Sec-Fetch-Site": "same-origin"})
	if got.status != http.StatusSeeOther || got.header.Get("Location") != "/" {
		t.Fatalf("POST /charte = %d %q, want 303 to /", got.status, got.header.Get("Location"))
	}
	if !e.c.Accepted(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("not accepted after the form")
	}
	page := goGet(t, cl, "GET", "http://preau.lan/charte", "")
	if !strings.Contains(page.body, "Vous avez déjà accepté la charte, jusqu&#39;au 10 mars à 17h30.") || strings.Contains(page.body, "<form") {
		t.Errorf("charter page after acceptance:\n%s", page.body)
	}
}

// TestCharterCSRF: the accept form is refused when it does not come from
// our page on this device.
func TestCharterCSRF(t *testing.T) {
	e := newEnv(t, charterOn())
	cl := client(e.server(t))
	now := e.clock.Now()
	valid := charterToken(t, cl)
	exp, sig, _ := strings.Cut(valid, ".")
	tests := []struct {
		name  string
		token string
		hdr   map[string]string
	}{
		{"no token", "", nil},
		{"garbage", "abc", nil},
		{"tampered", exp + "." + strings.Repeat("A", len(sig)), nil},
		{"later expiry", strconv.FormatInt(now.Add(3*time.Hour).Unix(), 10) + "." + sig, nil},
		{"other device", e.c.token(netip.MustParseAddr("192.0.2.9"), now), nil},
		{"cross-origin Origin", valid, map[string]string{"Origin": "http://evil.example"}},
		{"cross-site fetch", valid, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site other host", valid, map[string]string{"Sec-Fetch-Site": "same-site"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, cl, url.Values{"t": {tc.token}}, tc.hdr)
			if got.status != http.StatusForbidden {
				t.Errorf("status %d, want 403", got.status)
			}
			if !strings.Contains(got.body, "Demande refusée") {
				t.Errorf("refusal page lacks its title:\n%s", got.body)
			}
			if e.c.Accepted(netip.MustParseAddr("127.0.0.1")) {
				t.Fatal("accepted anyway")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		e.clock.Add(tokenTTL + time.Second)
		if got := post(t, cl, url.Values{"t": {valid}}, nil); got.status != http.StatusForbidden {
			t.Errorf("status %d, want 403", got.status)
		}
	})
	t.Run("oversized", func(t *testing.T) {
		if got := post(t, cl, url.Values{"t": {strings.Repeat("x", maxFormSize)}}, nil); got.status != http.StatusForbidden {
			t.Errorf("status %d, want 403", got.status)
		}
	})
}

// TestAPI checks the RFC 8908 answer before and after acceptance.
func TestAPI(t *testing.T) {
	e := newEnv(t, charterOn())
	cl := client(e.server(t))
	get := func() map[string]any {
		t.Helper()
		got := goGet(t, cl, "GET", "http://preau.lan/captive-portal/api", "")
		if got.status != 200 || got.header.Get("Content-Type") != "application/captive+json" ||
			got.header.Get("Cache-Control") != "private, no-store" {
			t.Fatalf("API answer %d %q %q", got.status, got.header.Get("Content-Type"), got.header.Get("Cache-Control"))
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(got.body), &m); err != nil {
			t.Fatalf("API body %q: %v", got.body, err)
		}
		return m
	}
	before := get()
	wantBefore := map[string]any{"captive": true, "user-portal-url": "http://preau.lan/charte",
		"venue-info-url": "http://preau.lan/", "can-extend-session": false}
	if !reflect.DeepEqual(before, wantBefore) {
		t.Errorf("before: %v, want %v", before, wantBefore)
	}
	e.c.Accept(context.Background(), netip.MustParseAddr("127.0.0.1"))
	e.clock.Add(30 * time.Minute) // 10:30; the day ends at 17:30
	after := get()
	wantAfter := map[string]any{"captive": false, "user-portal-url": "http://preau.lan/charte",
		"venue-info-url": "http://preau.lan/", "can-extend-session": false, "seconds-remaining": float64(7 * 3600)}
	if !reflect.DeepEqual(after, wantAfter) {
		t.Errorf("after: %v, want %v", after, wantAfter)
	}
	if got := goGet(t, cl, "POST", "http://preau.lan/captive-portal/api", ""); got.status != http.StatusMethodNotAllowed {
		t.Errorf("POST API = %d, want 405", got.status)
	}
}

func TestAPIURL(t *testing.T) {
	tests := []struct {
		cfg        Config
		want       string
		wantHTTPS  bool
		wantPortal string
	}{
		{Config{}, "http://preau.lan/captive-portal/api", false, "http://preau.lan/charte"},
		{Config{HTTPSURL: "https://preau.ecole.example/", APIPath: "/api/captive"}, "https://preau.ecole.example/api/captive", true, "http://preau.lan/charte"},
		{Config{PortalURL: "http://portail.ecole.lan/"}, "http://portail.ecole.lan/captive-portal/api", false, "http://portail.ecole.lan/charte"},
	}
	for _, tc := range tests {
		e := newEnv(t, tc.cfg)
		if got := e.c.APIURL(); got != tc.want {
			t.Errorf("APIURL() = %q, want %q", got, tc.want)
		}
		if got := e.c.HTTPS(); got != tc.wantHTTPS {
			t.Errorf("HTTPS() = %v, want %v", got, tc.wantHTTPS)
		}
		if got := e.c.CharterURL(); got != tc.wantPortal {
			t.Errorf("CharterURL() = %q, want %q", got, tc.wantPortal)
		}
	}
}
