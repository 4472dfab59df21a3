package portal

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxArticleBytes bounds the HTML read for one article page.
const maxArticleBytes = 4 << 20

var errArticleTooLarge = errors.New("article larger than 4 MiB")

// articlePolicy is the sanitiser applied after our own rewriting: the UGC
// policy (no script, no style, no event handlers, http/https/mailto links
// only) with relative URLs, which our rewritten /c/… addresses are.
func articlePolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowRelativeURLs(true)
	p.AllowElements("article", "section", "figure", "figcaption", "main")
	// UGCPolicy only keeps alt and title texts made of a few punctuation
	// signs, so French alt texts (« : », « ; », « ? ») vanished and images
	// lost their text alternative (RGAA 1.1). Any text is safe here: the
	// value is escaped on output.
	p.AllowAttrs("alt").OnElements("img")
	p.AllowAttrs("title").Globally()
	return p
}

// renderedArticle is an article ready to embed in an item page.
type renderedArticle struct {
	HTML template.HTML // sanitised, safe to embed
	Text string        // plain text, spaces collapsed
}

// renderArticle reads an article's HTML, keeps the content of its <main>,
// else <article>, else <body>, rewrites relative src/href against entry (the
// article's path inside pack) to prefix+pack+"/…", drops any URL that would
// leave the pack, demotes headings below the page's h1, and sanitises the
// result. entry must be a clean relative path.
func renderArticle(policy *bluemonday.Policy, prefix, pack, entry string, src io.Reader) (renderedArticle, error) {
	raw, err := io.ReadAll(io.LimitReader(src, maxArticleBytes+1))
	if err != nil {
		return renderedArticle{}, fmt.Errorf("render article %s: read: %w", entry, err)
	}
	if len(raw) > maxArticleBytes {
		return renderedArticle{}, fmt.Errorf("render article %s: %w", entry, errArticleTooLarge)
	}
	if !validPackPath(entry) {
		return renderedArticle{}, fmt.Errorf("render article: invalid entry path %q", entry)
	}
	doc, err := html.Parse(bytes.NewReader(raw))
	if err != nil {
		return renderedArticle{}, fmt.Errorf("render article %s: parse: %w", entry, err)
	}
	root := findElement(doc, atom.Main)
	if root == nil {
		root = findElement(doc, atom.Article)
	}
	if root == nil {
		root = findElement(doc, atom.Body)
	}
	if root == nil {
		root = doc
	}
	rw := rewriter{prefix: prefix, pack: pack, dir: path.Dir(entry)}
	rw.clean(root)

	var buf bytes.Buffer
	for c := root.FirstChild; c != nil; c = c.NextSibling {
		if err := html.Render(&buf, c); err != nil {
			return renderedArticle{}, fmt.Errorf("render article %s: %w", entry, err)
		}
	}
	safe := neutraliseSchemes(policy.SanitizeBytes(buf.Bytes()))
	var text strings.Builder
	plainText(&text, root)
	return renderedArticle{
		HTML: template.HTML(safe), // #nosec: sanitised by bluemonday just above
		Text: strings.Join(strings.Fields(text.String()), " "),
	}, nil
}

func findElement(n *html.Node, a atom.Atom) *html.Node {
	if n.Type == html.ElementNode && n.DataAtom == a {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := findElement(c, a); f != nil {
			return f
		}
	}
	return nil
}

// dropped elements go with their content: they are active, styling or
// page-level, never article content.
var droppedElements = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Iframe: true, atom.Frame: true, atom.Frameset: true,
	atom.Object: true, atom.Embed: true, atom.Applet: true, atom.Link: true, atom.Meta: true,
	atom.Base: true, atom.Form: true, atom.Noscript: true, atom.Template: true, atom.Svg: true,
	atom.Math: true, atom.Title: true, atom.Head: true, atom.Nav: true, atom.Button: true,
	atom.Input: true, atom.Select: true, atom.Textarea: true, atom.Xmp: true, atom.Plaintext: true,
	atom.Noembed: true, atom.Noframes: true,
}

var demoted = map[atom.Atom]atom.Atom{
	atom.H1: atom.H2, atom.H2: atom.H3, atom.H3: atom.H4, atom.H4: atom.H5, atom.H5: atom.H6,
}

type rewriter struct{ prefix, pack, dir string }

func (rw rewriter) clean(n *html.Node) {
	for c := n.FirstChild; c != nil; {
		next := c.NextSibling
		switch {
		case c.Type == html.CommentNode:
			n.RemoveChild(c)
		case c.Type == html.ElementNode && (droppedElements[c.DataAtom] || c.DataAtom == 0 && strings.Contains(c.Data, ":")):
			n.RemoveChild(c)
		case c.Type == html.ElementNode:
			if to, ok := demoted[c.DataAtom]; ok {
				c.DataAtom, c.Data = to, to.String()
			}
			c.Attr = rw.attrs(c.Attr)
			rw.clean(c)
		}
		c = next
	}
}

// attrs keeps the harmless attributes and rewrites URLs; bluemonday then
// applies its own allow-list.
func (rw rewriter) attrs(in []html.Attribute) []html.Attribute {
	out := in[:0]
	for _, a := range in {
		key := strings.ToLower(a.Key)
		switch {
		case a.Namespace != "", strings.HasPrefix(key, "on"), key == "style", key == "srcset", key == "formaction", key == "xmlns":
			continue
		case key == "id":
			// Prefixed so an article cannot take the ids of our page
			// (the skip link's target, for one).
			a.Val = "a-" + a.Val
		case key == "href" || key == "src" || key == "poster" || key == "cite" || key == "action" || key == "data" || key == "background":
			v, ok := rw.url(a.Val, key == "href" || key == "cite")
			if !ok {
				continue
			}
			a.Val = v
		}
		out = append(out, a)
	}
	return out
}

// url rewrites one URL of the article. Links may point outside (http,
// https, mailto); embedded resources must come from the pack. Relative paths
// are resolved against the article's folder and refused if they leave the
// pack; root-relative paths referred to the article's original site and are
// refused too.
func (rw rewriter) url(raw string, link bool) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || strings.ContainsAny(raw, "\\\x00") || strings.IndexFunc(raw, unicode.IsControl) >= 0 {
		return "", false
	}
	if strings.HasPrefix(raw, "#") {
		if !link || len(raw) == 1 {
			return "", false
		}
		return "#a-" + url.PathEscape(raw[1:]), true
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "", false
	}
	if u.Scheme != "" || u.Host != "" || strings.HasPrefix(raw, "//") {
		if link && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			return u.String(), true
		}
		if link && u.Scheme == "mailto" {
			return u.String(), true
		}
		return "", false
	}
	if u.Path == "" || strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	joined := path.Join(rw.dir, u.Path)
	if joined == "." || joined == ".." || strings.HasPrefix(joined, "../") || !validPackPath(joined) {
		return "", false
	}
	out := rw.prefix + url.PathEscape(rw.pack) + "/" + escapePath(joined)
	if u.Fragment != "" && link {
		out += "#" + u.EscapedFragment()
	}
	return out, true
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// validPackPath applies the content-pack rules for paths: relative,
// slash-separated, clean, valid UTF-8, no NUL or backslash, bounded.
func validPackPath(p string) bool {
	if p == "" || len(p) > 1024 || !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00") || path.Clean(p) != p || strings.HasPrefix(p, "/") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > 255 {
			return false
		}
	}
	return true
}

// neutraliseSchemes is a last guard after sanitising: any "javascript:"
// left (only possible in text, where it is harmless) is written with an
// entity for the colon, so the output never carries the scheme verbatim.
func neutraliseSchemes(b []byte) []byte {
	const word = "javascript:"
	var out bytes.Buffer
	for i := 0; i < len(b); {
		if i+len(word) <= len(b) && asciiEqualFold(b[i:i+len(word)], word) {
			out.Write(b[i : i+len(word)-1])
			out.WriteString("&#58;")
			i += len(word)
			continue
		}
		out.WriteByte(b[i])
		i++
	}
	return out.Bytes()
}

func asciiEqualFold(b []byte, word string) bool {
	for i := 0; i < len(word); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

func plainText(w *strings.Builder, n *html.Node) {
	if n.Type == html.TextNode {
		w.WriteString(n.Data)
		w.WriteByte(' ')
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		plainText(w, c)
	}
}
