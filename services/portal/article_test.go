package portal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func render(t testing.TB, entry, doc string) (renderedArticle, error) {
	t.Helper()
	return renderArticle(articlePolicy(), "/c/", "demo", entry, strings.NewReader(doc))
}

func TestRenderArticleHostile(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    []string
		notWant []string
	}{
		{"script", `<article><p>a</p><script>alert(1)</script><SCRIPT src="x.js"></SCRIPT></article>`, []string{"<p>a</p>"}, []string{"<script", "alert", "x.js"}},
		{"onerror", `<article><img src="a.png" onerror="alert(1)" alt="a"><p onclick="x()">t</p></article>`, []string{`<img src="/c/demo/articles/a.png" alt="a"/>`}, []string{"onerror", "onclick", "alert"}},
		{"french alt text kept", `<article><img src="a.png" alt="Schéma : le Soleil ; Mercure, Vénus… « non » à l'échelle ?"></article>`, []string{`alt="Schéma : le Soleil ; Mercure, Vénus… « non » à l&#39;échelle ?"`}, []string{"onerror"}},
		{"javascript URL", `<article><a href="javascript:alert(1)">x</a><a href=" JaVaScRiPt:alert(1)">y</a><a href="&#106;avascript:alert(1)">z</a><a href="java&#09;script:alert(1)">w</a></article>`, []string{"xyzw"}, []string{"javascript:", "alert", "<a"}},
		{"javascript in text", `<article><p>Le schéma javascript: n'est pas un lien.</p></article>`, []string{"javascript&#58;"}, []string{"javascript:"}},
		{"vbscript and data", `<article><a href="vbscript:msgbox(1)">v</a><img src="data:image/svg+xml,<svg onload=alert(1)>" alt="d"></article>`, nil, []string{"vbscript", "data:", "onload"}},
		{"style", `<article><style>p{color:red}</style><p style="background:url(x)">t</p><link rel="stylesheet" href="x.css"></article>`, []string{"<p>t</p>"}, []string{"<style", "color:red", "style=", "x.css"}},
		{"iframe and object", `<article><iframe src="https://evil.example"></iframe><object data="x.swf"></object><embed src="y.swf"><p>ok</p></article>`, []string{"<p>ok</p>"}, []string{"iframe", "object", "embed", "evil", "swf"}},
		{"form", `<article><form action="https://evil.example"><input name="pwd"><button>Go</button></form></article>`, nil, []string{"<form", "<input", "evil"}},
		{"escape the pack", `<article><img src="../../etc/passwd" alt="a"><img src="../../../x.png" alt="b"><a href="../../other-pack/f.html">c</a></article>`, []string{`<img alt="a"/>`, "c"}, []string{"<a", "passwd", "x.png", "other-pack", ".."}},
		{"encoded escape", `<article><img src="%2e%2e/%2e%2e/secret.png" alt="a"><a href="..%2f..%2fsecret.html">b</a></article>`, nil, []string{"secret"}},
		{"backslash", `<article><img src="..\..\secret.png" alt="a"><a href="\\evil.example\x">b</a></article>`, nil, []string{"secret", "evil"}},
		{"root relative", `<article><a href="/wiki/Eau">Eau</a><img src="/c/other/x.png" alt="x"></article>`, []string{"Eau"}, []string{"<a", "/wiki/", "/c/other"}},
		{"protocol relative", `<article><a href="//evil.example/x">e</a><img src="//evil.example/x.png" alt="x"></article>`, nil, []string{"evil"}},
		{"external media refused", `<article><img src="https://cdn.example/x.png" alt="x"><a href="https://fr.vikidia.org/wiki/Eau">v</a></article>`, []string{`href="https://fr.vikidia.org/wiki/Eau"`}, []string{"cdn.example"}},
		{"relative kept inside", `<article><img src="../images/b.png" alt="b"><img src="c.png" alt="c"><a href="autre.html#s">s</a></article>`, []string{`src="/c/demo/images/b.png"`, `src="/c/demo/articles/c.png"`, `href="/c/demo/articles/autre.html#s"`}, nil},
		{"escaped names", `<article><img src="images/été 1.png" alt="e"></article>`, []string{`src="/c/demo/articles/images/%C3%A9t%C3%A9%201.png"`}, nil},
		{"svg and math", `<article><svg><script>alert(1)</script><a xlink:href="javascript:alert(1)">x</a></svg><math><mi>x</mi></math><p>ok</p></article>`, []string{"<p>ok</p>"}, []string{"alert", "<svg", "<math"}},
		{"raw text elements", `<article><xmp><script>alert(1)</script></xmp><noscript><img src=x onerror=alert(1)></noscript><p>ok</p></article>`, []string{"<p>ok</p>"}, []string{"<script", "onerror"}},
		{"meta refresh and base", `<html><head><base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=https://evil.example"></head><body><p>ok</p></body></html>`, []string{"<p>ok</p>"}, []string{"evil", "refresh", "<base"}},
		{"ids prefixed", `<article><h2 id="contenu">t</h2><a href="#contenu">go</a></article>`, []string{`id="a-contenu"`, `href="#a-contenu"`}, []string{`id="contenu"`}},
		{"headings demoted", `<article><h1>T</h1><h2>S</h2><h6>x</h6></article>`, []string{"<h2>T</h2>", "<h3>S</h3>", "<h6>x</h6>"}, []string{"<h1"}},
		{"main preferred", `<body><header>site</header><main><p>main</p></main><footer>pied</footer></body>`, []string{"<p>main</p>"}, []string{"site", "pied"}},
		{"article when no main", `<body><div>menu</div><article><p>art</p></article></body>`, []string{"<p>art</p>"}, []string{"menu"}},
		{"body fallback", `<p>just text</p>`, []string{"<p>just text</p>"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(t, "articles/page.html", tt.doc)
			if err != nil {
				t.Fatalf("renderArticle: %v", err)
			}
			out := string(got.HTML)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q\ngot: %s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(strings.ToLower(out), strings.ToLower(w)) {
					t.Errorf("output contains %q\ngot: %s", w, out)
				}
			}
		})
	}
}

func TestRenderArticleText(t *testing.T) {
	got, err := render(t, "a.html", "<article><h1>Titre</h1>\n<p>Un   texte\n<em>simple</em>.</p><script>x()</script></article>")
	if err != nil {
		t.Fatal(err)
	}
	if want := "Titre Un texte simple ."; got.Text != want {
		t.Errorf("Text: got %q, want %q", got.Text, want)
	}
}

func TestRenderArticleRefuses(t *testing.T) {
	tests := []struct {
		name, entry, doc string
	}{
		{"entry escapes", "../a.html", "<p>x</p>"},
		{"absolute entry", "/a.html", "<p>x</p>"},
		{"too large", "a.html", strings.Repeat("a", maxArticleBytes+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := render(t, tt.entry, tt.doc); err == nil {
				t.Errorf("renderArticle(%q): got nil error, want one", tt.entry)
			}
		})
	}
}

// TestRenderArticleFiles renders the sample articles under testdata/articles
// (also the fuzz seeds) and checks the invariants.
func TestRenderArticleFiles(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "articles", "*.html"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no sample articles: %v", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := render(t, "articles/"+filepath.Base(p), string(data))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		checkSampleArticle(t, string(got.HTML))
	}
}

// checkArticleInvariants holds for any input: no active or styling tag and
// no javascript: scheme, even in text.
func checkArticleInvariants(t testing.TB, out string) {
	t.Helper()
	lower := strings.ToLower(out)
	for _, bad := range []string{"<script", "javascript:", "<style", "<iframe", "<object", "<embed"} {
		if strings.Contains(lower, bad) {
			t.Fatalf("output contains %q: %s", bad, out)
		}
	}
}

// checkSampleArticle adds checks that hold for the sample articles, whose
// text does not mention attributes.
func checkSampleArticle(t testing.TB, out string) {
	t.Helper()
	checkArticleInvariants(t, out)
	lower := strings.ToLower(out)
	for _, bad := range []string{" style=", "/c/demo/..", " onerror=", " onload=", " onclick=", " onmouseover=", " onfocus="} {
		if strings.Contains(lower, bad) {
			t.Fatalf("output contains %q: %s", bad, out)
		}
	}
}

func FuzzRenderArticle(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "articles", "*.html"))
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(string(data), "articles/a.html")
		}
	}
	f.Add(`<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>`, "a.html")
	f.Add(`<img src="../../../../etc/passwd">`, "a/b/c.html")
	policy := articlePolicy()
	f.Fuzz(func(t *testing.T, doc, entry string) {
		got, err := renderArticle(policy, "/c/", "demo", entry, strings.NewReader(doc))
		if err != nil {
			return
		}
		checkArticleInvariants(t, string(got.HTML))
	})
}
