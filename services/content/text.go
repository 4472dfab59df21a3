package content

import (
	"io"
	"mime"
	"os"
	"strings"
	"unicode"

	"golang.org/x/net/html"
)

// foldTitle is the sort key of a title: lower case, French (and other
// Latin) accents removed, ligatures expanded, spaces collapsed. Enough for
// "École" to sort with "ecole" and before "Fable".
func foldTitle(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		if unicode.IsSpace(r) {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		if f, ok := latinFold[r]; ok {
			b.WriteString(f)
			continue
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// latinFold maps lower-case accented Latin letters to their base letters.
var latinFold = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ã': "a", 'ä': "a", 'å': "a", 'ā': "a",
	'æ': "ae", 'ç': "c", 'ć': "c", 'č': "c",
	'è': "e", 'é': "e", 'ê': "e", 'ë': "e", 'ē': "e", 'ę': "e", 'ě': "e",
	'ì': "i", 'í': "i", 'î': "i", 'ï': "i", 'ī': "i",
	'ñ': "n", 'ń': "n", 'ň': "n",
	'ò': "o", 'ó': "o", 'ô': "o", 'õ': "o", 'ö': "o", 'ø': "o", 'ō': "o",
	'œ': "oe", 'ß': "ss", 'ś': "s", 'š': "s",
	'ù': "u", 'ú': "u", 'û': "u", 'ü': "u", 'ū': "u", 'ů': "u",
	'ý': "y", 'ÿ': "y", 'ź': "z", 'ż': "z", 'ž': "z", 'ł': "l", 'ř': "r", 'ď': "d", 'ť': "t",
	'’': "'", 'ʼ': "'", '«': "", '»': "",
}

const (
	maxArticleBytes = 4 << 20   // HTML read for the search index
	maxBodyText     = 256 << 10 // text kept per article
)

// articleBodies extracts the text of each article's HTML entry, for search.
// The blobs are already stored and verified.
func (s *Store) articleBodies(m *manifest) map[string]string {
	out := make(map[string]string)
	for _, it := range m.Items {
		if it.Kind != "article" {
			continue
		}
		f := m.files[it.Entry]
		mt, _, _ := mime.ParseMediaType(f.MediaType)
		if mt != "text/html" && mt != "application/xhtml+xml" {
			continue
		}
		fh, err := os.Open(s.blobPath(f.SHA256))
		if err != nil {
			s.log.Warn("read article for search", "pack", m.ID, "item", it.ID, "err", err)
			continue
		}
		out[it.ID] = htmlText(io.LimitReader(fh, maxArticleBytes), maxBodyText)
		fh.Close()
	}
	return out
}

// htmlText returns the visible text of an HTML document, at most max bytes.
func htmlText(r io.Reader, max int) string {
	z := html.NewTokenizer(r)
	var b strings.Builder
	skip := 0
	for b.Len() < max {
		switch z.Next() {
		case html.ErrorToken:
			return strings.TrimSpace(b.String())
		case html.StartTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "noscript", "template", "svg":
				skip++
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "noscript", "template", "svg":
				if skip > 0 {
					skip--
				}
			}
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := strings.Join(strings.Fields(string(z.Text())), " ")
			if t == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(t)
		}
	}
	out := b.String()
	if len(out) > max {
		out = strings.ToValidUTF8(out[:max], "")
	}
	return strings.TrimSpace(out)
}
