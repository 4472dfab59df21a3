package assignments

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var codeInLocation = regexp.MustCompile(`^/devoirs/recu/([2-9A-Z]{3}-[2-9A-Z]{3})$`)

func TestHandInAndReceipt(t *testing.T) {
	e := newEnv(t, nil)
	teacher := e.teacher("mmartin")
	id := e.newAssignment(teacher, nil)

	p := e.client()
	// The pupil finds the class, then the assignment.
	r := p.get("/devoirs/")
	if r.status != http.StatusOK || !strings.Contains(r.raw, `href="/devoirs/classe/CM2-A"`) {
		t.Fatalf("class list: %d %s", r.status, r.body)
	}
	r = p.get("/devoirs/classe/CM2-A")
	if !strings.Contains(r.raw, fmt.Sprintf(`href="/devoirs/devoir/%d"`, id)) || !strings.Contains(r.body, "À rendre le 30 novembre 2026 à 18:00") {
		t.Fatalf("class page: %s", r.body)
	}
	r = p.get(fmt.Sprintf("/devoirs/devoir/%d", id))
	for _, want := range []string{
		`accept="image/*" capture="environment"`, `multiple accept="image/*,.jpg`, `name="texte"`,
		"Au plus 20 Mo par fichier, 100 Mo en tout, 10 fichiers.", `data-max-file="20000000"`,
		`<script src="/devoirs/static/devoirs.`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("hand-in form lacks %q", want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("hand-in form CSP = %q", csp)
	}

	photo, pdf := readFixture(t, "photo.jpg"), readFixture(t, "doc.pdf")
	r = p.handIn(id, append(pupil(" léa ", "m."),
		part{name: "photo", filename: "image.jpg", contentType: "image/jpeg", data: photo},
		filePart("fichiers", "Mon devoir.pdf", pdf),
		field("texte", "J'ai lu un livre.\r\nC'était bien."))...)
	if r.status != http.StatusSeeOther {
		t.Fatalf("hand-in: status %d: %s", r.status, r.body)
	}
	m := codeInLocation.FindStringSubmatch(r.header.Get("Location"))
	if m == nil {
		t.Fatalf("hand-in redirects to %q", r.header.Get("Location"))
	}
	code := m[1]

	// What was committed.
	hooks := e.hooks()
	if len(hooks) != 1 {
		t.Fatalf("OnHandIn called %d times", len(hooks))
	}
	h := hooks[0]
	if h.Code != code || h.Pupil != "Léa M." || h.ClassCode != "CM2-A" || h.Destination != "nuage-cm2" || h.Teacher != "mmartin" || h.Late || len(h.Files) != 3 {
		t.Fatalf("hand-in given to the hook = %+v", h)
	}
	wantFiles := []struct {
		name, mediaType string
		data            []byte
	}{
		{"image.jpg", "image/jpeg", photo},
		{"Mon devoir.pdf", "application/pdf", pdf},
		{"texte.txt", "text/plain; charset=utf-8", []byte("J'ai lu un livre.\nC'était bien.\n")},
	}
	for i, w := range wantFiles {
		f := h.Files[i]
		sum := sha256.Sum256(w.data)
		if f.Name != w.name || f.MediaType != w.mediaType || f.Size != int64(len(w.data)) || f.SHA256 != hex.EncodeToString(sum[:]) || f.Key != FileKey(f.ID) {
			t.Errorf("file %d = %+v, want %s %s %d bytes", i, f, w.name, w.mediaType, len(w.data))
		}
		wantPath := "CM2-A/Rédaction _ mon week-end (" + fmt.Sprint(id) + ")/Léa M. " + code + "/" + w.name
		if f.Path != wantPath {
			t.Errorf("file %d path = %q, want %q", i, f.Path, wantPath)
		}
		blob, err := e.blobs.OpenBlob(f.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(blob)
		blob.Close()
		if !bytes.Equal(got, w.data) {
			t.Errorf("blob of %s differs", w.name)
		}
	}
	if n := e.count("assignments_uploads"); n != 0 {
		t.Errorf("%d upload rows left after a commit", n)
	}
	if pending, _ := e.svc.PendingHandIns(context.Background()); len(pending) != 0 {
		t.Errorf("%d hand-ins still pending after the hook returned", len(pending))
	}

	// The receipt, then the same receipt again from the device's list.
	r = p.get("/devoirs/recu/" + code)
	for _, want := range []string{"Ton devoir est bien rendu.", code, "reçu, en attente d'envoi", "image.jpg", "Mon devoir.pdf", "texte.txt",
		"Léa M.", "CM2-A", "<dt>Reçu le</dt><dd>23 novembre 2026 à 11:00", "223 o"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("receipt lacks %q", want)
		}
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("receipt Cache-Control = %q", r.header.Get("Cache-Control"))
	}
	if r := p.get("/devoirs/recus"); !strings.Contains(r.body, code) || !strings.Contains(r.body, "Rédaction : mon week-end") {
		t.Errorf("device receipts lack the hand-in")
	}
	// Another device does not list it, but finds it by code.
	other := e.client()
	if r := other.get("/devoirs/recus"); strings.Contains(r.body, code) || !strings.Contains(r.body, "Aucun devoir n'a encore été rendu depuis cet appareil.") {
		t.Errorf("another device lists the receipt")
	}
	r = other.get("/devoirs/recu?code=" + url.QueryEscape(strings.ToLower(strings.ReplaceAll(code, "-", " "))))
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/devoirs/recu/"+code {
		t.Errorf("lookup by code: %d %q", r.status, r.header.Get("Location"))
	}

	// Delivery states as the outbox reports them.
	e.delivery.set(h.Files[0].Key, DeliveryState{Status: DeliveryDelivered})
	e.delivery.set(h.Files[1].Key, DeliveryState{Status: DeliverySending})
	e.delivery.set(h.Files[2].Key, DeliveryState{Status: DeliveryQueued})
	if r := p.get("/devoirs/recu/" + code); !strings.Contains(r.body, "reçu, en attente d'envoi") {
		t.Errorf("partly sent: receipt must say waiting")
	}
	for _, f := range h.Files {
		e.delivery.set(f.Key, DeliveryState{Status: DeliveryDelivered})
	}
	if r := p.get("/devoirs/recu/" + code); !strings.Contains(r.body, `<span class="state sent">envoyé</span>`) {
		t.Errorf("all delivered: receipt must say sent")
	}
	e.delivery.set(h.Files[1].Key, DeliveryState{Status: DeliveryFailed, Message: "dossier Nuage introuvable : vérifiez le lien de dépôt", MessageEN: "Nuage folder not found"})
	if r := p.get("/devoirs/recu/" + code); !strings.Contains(r.body, "échec, l'enseignant est prévenu") || strings.Contains(r.body, "introuvable") {
		t.Errorf("failed: receipt must say so without the technical message")
	}
	if r := p.get("/devoirs/recu/" + code + "?lang=en"); r.status != http.StatusSeeOther {
		t.Errorf("language switch: %d", r.status)
	}
	if r := p.get("/devoirs/recu/" + code); !strings.Contains(r.body, "failed, the teacher has been told") || !strings.Contains(r.raw, `<html lang="en">`) {
		t.Errorf("English receipt: %s", r.body)
	}

	// The teacher sees the hand-in, the failure and its message, and gets
	// the files.
	r = teacher.get(fmt.Sprintf("/enseignant/devoirs/%d", id))
	for _, want := range []string{"Léa M.", code, "Travaux rendus : 1, dont en retard : 0.", "Fichiers non envoyés : 1.", "échec d'envoi",
		"dossier Nuage introuvable : vérifiez le lien de dépôt", "envoyé"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("teacher's page lacks %q", want)
		}
	}
	if r := teacher.get("/enseignant/"); !strings.Contains(r.raw, `<span class="state failed">1</span>`) {
		t.Errorf("teacher's list does not count the failure")
	}
	r = teacher.get(fmt.Sprintf("/enseignant/fichiers/%d", h.Files[1].ID))
	if r.status != http.StatusOK || r.raw != string(pdf) {
		t.Fatalf("download: %d, %d bytes", r.status, len(r.raw))
	}
	for k, want := range map[string]string{
		"Content-Type":            "application/pdf",
		"Content-Disposition":     `attachment; filename="Mon devoir.pdf"`,
		"Content-Security-Policy": "sandbox; default-src 'none'",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("download %s = %q, want %q", k, got, want)
		}
	}
	if r := e.teacher("durand").get(fmt.Sprintf("/enseignant/fichiers/%d", h.Files[1].ID)); r.status != http.StatusNotFound {
		t.Errorf("another teacher downloads the file: %d", r.status)
	}
	if r := p.get(fmt.Sprintf("/enseignant/fichiers/%d", h.Files[1].ID)); r.status != http.StatusSeeOther {
		t.Errorf("a pupil downloads the file: %d", r.status)
	}
}

func TestHandInKinds(t *testing.T) {
	e := newEnv(t, nil)
	teacher := e.teacher("mmartin")
	id := e.newAssignment(teacher, nil)
	tests := []struct {
		file, name, wantName, wantType string
	}{
		{"image.png", "dessin.png", "dessin.png", "image/png"},
		{"image.webp", "x.webp", "x.webp", "image/webp"},
		{"photo-header.heic", "IMG_4032.HEIC", "IMG_4032.HEIC", "image/heic"},
		{"doc.odt", "rédaction.odt", "rédaction.odt", "application/vnd.oasis.opendocument.text"},
		{"doc.docx", "essai", "essai.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"sound.m4a", "Nouvel enregistrement.m4a", "Nouvel enregistrement.m4a", "audio/mp4"},
		{"sound.webm", "audio.webm", "audio.webm", "audio/webm"},
		{"sound.3gp", "rec.3gp", "rec.3gp", "audio/3gpp"},
		{"sound.mp3", "chanson.mp3", "chanson.mp3", "audio/mpeg"},
		{"page.html", "page.html", "page.html.txt", "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		p := e.client()
		r := p.handIn(id, append(pupil("Tom", "B"), part{name: "fichiers", filename: tt.name, contentType: "application/x-whatever", data: readFixture(t, tt.file)})...)
		if r.status != http.StatusSeeOther {
			t.Errorf("%s: status %d: %s", tt.file, r.status, r.body)
			continue
		}
		h := e.hooks()[len(e.hooks())-1]
		if got := h.Files[0]; got.Name != tt.wantName || got.MediaType != tt.wantType {
			t.Errorf("%s stored as %q %q, want %q %q", tt.file, got.Name, got.MediaType, tt.wantName, tt.wantType)
		}
	}
}

// TestHandInRefusals sends hostile and mistaken hand-ins: each is refused
// with its French message and leaves nothing behind (no hand-in, no upload
// row, no pinned blob).
func TestHandInRefusals(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxFileBytes = 50_000
		c.MaxTotalBytes = 120_000
		c.MaxFiles = 3
		c.MaxTextBytes = 1000
	})
	teacher := e.teacher("mmartin")
	id := e.newAssignment(teacher, func(v url.Values) { v["types"] = []string{"image", "pdf", "office", "text"}; v.Set("taille", "1") })
	photo, pdf := readFixture(t, "photo.jpg"), readFixture(t, "doc.pdf")
	big := append(append([]byte{}, pdf...), bytes.Repeat([]byte("% padding\n"), 6000)...) // 60 kB PDF
	fortyK := append(append([]byte{}, pdf...), bytes.Repeat([]byte("% padding\n"), 4000)...)
	name := pupil("Léa", "M")
	tests := []struct {
		name   string
		parts  []part
		status int
		want   string
	}{
		{"fake type", append(name, part{name: "fichiers", filename: "photo.jpg", contentType: "image/jpeg", data: readFixture(t, "fake.jpg")}),
			415, "Le fichier « photo.jpg » n'est pas d'un type accepté pour ce devoir. Types acceptés : photos et images, PDF, documents bureautiques"},
		{"video", append(name, filePart("fichiers", "film.mp4", readFixture(t, "video.mp4"))), 415, "« film.mp4 » n'est pas d'un type accepté"},
		{"kind not allowed", append(name, filePart("fichiers", "chant.mp3", readFixture(t, "sound.mp3"))), 415, "« chant.mp3 » n'est pas d'un type accepté"},
		{"plain zip", append(name, filePart("fichiers", "devoir.docx", readFixture(t, "archive.zip"))), 415, "« devoir.docx » n'est pas d'un type accepté"},
		{"odf shell", append(name, filePart("fichiers", "devoir.odt", readFixture(t, "fake.odt"))), 415, "« devoir.odt » n'est pas d'un type accepté"},
		{"binary after text", append(name, filePart("fichiers", "notes.txt", append(bytes.Repeat([]byte("texte "), 1000), 0, 1, 2))), 415, "« notes.txt » n'est pas d'un type accepté"},
		{"empty file", append(name, filePart("fichiers", "vide.pdf", nil)), 422, "Le fichier « vide.pdf » est vide"},
		{"file too large", append(name, filePart("fichiers", "gros.pdf", big)), 413, "Le fichier « gros.pdf » est trop gros : 50 ko au plus par fichier."},
		{"total too large", append(name, filePart("fichiers", "a.pdf", fortyK), filePart("fichiers", "b.pdf", fortyK), filePart("fichiers", "c.pdf", fortyK)),
			413, "L'envoi est trop gros : 120 ko au plus en tout."},
		{"too many files", append(name, filePart("fichiers", "1.jpg", photo), filePart("fichiers", "2.jpg", photo), filePart("fichiers", "3.jpg", photo), filePart("fichiers", "4.jpg", photo)),
			413, "Tu as choisi trop de fichiers : 3 au plus."},
		{"too many parts", append(name, field("x", "1"), field("x", "2"), field("x", "3"), field("x", "4"), field("x", "5"), field("x", "6"), field("x", "7"), field("x", "8"), field("x", "9")),
			413, "Tu as choisi trop de fichiers"},
		{"text too long", append(name, field("texte", strings.Repeat("é", 600))), 413, "Le texte est trop long : 1 ko au plus."},
		{"nothing", name, 422, "Choisis au moins un fichier ou écris un texte."},
		{"empty inputs only", append(name, filePart("photo", "", nil), filePart("fichiers", "", nil), field("texte", "  \r\n ")), 422, "Choisis au moins un fichier"},
		{"no first name", append(pupil("", "M"), filePart("fichiers", "a.jpg", photo)), 422, "Écris ton prénom"},
		{"first name with markup", append(pupil("<script>", "M"), filePart("fichiers", "a.jpg", photo)), 422, "Écris ton prénom"},
		{"bad initial", append(pupil("Léa", "MZ"), filePart("fichiers", "a.jpg", photo)), 422, "Écris l'initiale de ton nom"},
		{"both names", append(pupil("", ""), filePart("fichiers", "a.jpg", photo)), 422, "Écris l'initiale de ton nom"},
		{"long field", append(pupil(strings.Repeat("a", 300), "M"), filePart("fichiers", "a.jpg", photo)), 400, "Le formulaire reçu est incomplet ou abîmé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.client()
			r := p.handIn(id, tt.parts...)
			if r.status != tt.status || !strings.Contains(r.body, tt.want) {
				t.Errorf("status %d, want %d with %q; body:\n%s", r.status, tt.status, tt.want, between(r.body, "<main", "</main>"))
			}
			if !strings.Contains(r.body, "Ton devoir n'a pas été rendu :") || !strings.Contains(r.raw, `role="alert"`) || !strings.Contains(r.body, "<title>Erreur : ") {
				t.Errorf("the error is not announced")
			}
			if strings.Contains(r.raw, "<script>") {
				t.Errorf("markup from the form is echoed unescaped")
			}
		})
	}
	if n := e.count("assignments_handins"); n != 0 {
		t.Errorf("%d hand-ins after refusals", n)
	}
	if n := e.count("assignments_uploads"); n != 0 {
		t.Errorf("%d upload rows after refusals", n)
	}
	if owners := e.blobs.owners(t); len(owners) != 0 {
		t.Errorf("blobs still pinned after refusals: %v", owners)
	}
	// The names typed are kept when the form comes back.
	r := e.client().handIn(id, append(pupil("Léa", "M"), filePart("fichiers", "vide.pdf", nil))...)
	if !strings.Contains(r.raw, `id="prenom" name="prenom" value="Léa"`) {
		t.Errorf("the first name was not kept")
	}
}

func between(s, from, to string) string {
	i, j := strings.Index(s, from), strings.Index(s, to)
	if i < 0 || j < i {
		return s
	}
	return s[i:j]
}

func TestHandInForgery(t *testing.T) {
	e := newEnv(t, nil)
	id := e.newAssignment(e.teacher("mmartin"), nil)
	photo := readFixture(t, "photo.jpg")
	path := fmt.Sprintf("/devoirs/devoir/%d", id)
	p := e.client()
	tok := p.csrf(path)
	parts := append(pupil("Léa", "M"), filePart("fichiers", "a.jpg", photo))
	tests := []struct {
		name   string
		parts  []part
		origin string
		status int
	}{
		{"no token", parts, "", 403},
		{"wrong token", append([]part{field("csrf", tok+"x")}, parts...), "", 403},
		{"token after the file", append(parts, field("csrf", tok)), "", 403},
		{"other origin", append([]part{field("csrf", tok)}, parts...), "http://evil.example", 403},
	}
	for _, tt := range tests {
		ctype, body := multipartBody(t, tt.parts)
		req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		if r := p.do(req); r.status != tt.status || !strings.Contains(r.body, "Le formulaire a expiré") {
			t.Errorf("%s: status %d, want %d", tt.name, r.status, tt.status)
		}
	}
	// A client without the cookie cannot hand in with a copied token.
	stranger := e.client()
	if r := stranger.postMultipart(path, append([]part{field("csrf", tok)}, parts...)); r.status != 403 {
		t.Errorf("copied token without its cookie: status %d", r.status)
	}
	// Not multipart, and a body announced too large: refused before reading.
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader("prenom=L"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := p.do(req); r.status != 400 {
		t.Errorf("urlencoded hand-in: status %d", r.status)
	}
	if n := e.count("assignments_handins"); n != 0 {
		t.Errorf("%d hand-ins after forgeries", n)
	}
}

// TestOversizedBody sends a body larger than the whole limit: with a
// Content-Length it is refused before any byte is read; streamed without
// one it is cut by MaxBytesReader.
func TestOversizedBody(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxFileBytes = 50_000; c.MaxTotalBytes = 50_000; c.MaxTextBytes = 1000 })
	id := e.newAssignment(e.teacher("mmartin"), func(v url.Values) { v.Set("taille", "1") })
	path := fmt.Sprintf("/devoirs/devoir/%d", id)
	p := e.client()
	tok := p.csrf(path)
	huge := bytes.Repeat([]byte{0xFF, 0xD8, 0xFF, 0xE0}, 100_000)
	ctype, body := multipartBody(t, append([]part{field("csrf", tok)}, append(pupil("Léa", "M"), filePart("fichiers", "big.jpg", huge))...))

	req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	r := p.do(req)
	if r.status != 413 || !strings.Contains(r.body, "L'envoi est trop gros : 50 ko au plus en tout.") {
		t.Errorf("announced too large: %d", r.status)
	}

	pr, pw := io.Pipe()
	go func() {
		pw.Write(body)
		pw.Close()
	}()
	req, _ = http.NewRequest("POST", e.srv.URL+path, pr)
	req.Header.Set("Content-Type", ctype)
	req.ContentLength = -1
	resp, err := p.hc.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(b), "trop gros") {
			t.Errorf("streamed too large: %d", resp.StatusCode)
		}
	} else {
		t.Logf("streamed too large: the server closed the connection (%v)", err)
	}
	if n := e.count("assignments_handins"); n != 0 {
		t.Errorf("%d hand-ins", n)
	}
	waitFor(t, func() bool { return len(e.blobs.owners(t)) == 0 && e.count("assignments_uploads") == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLateAndClosed(t *testing.T) {
	e := newEnv(t, nil)
	teacher := e.teacher("mmartin")
	lenient := e.newAssignment(teacher, nil)
	strict := e.newAssignment(teacher, func(v url.Values) { v.Set("titre", "Strict"); v.Set("refuser_retard", "1") })
	photo := readFixture(t, "photo.jpg")
	e.advance(8 * 24 * time.Hour) // past 30 November 18:00
	p := e.client()
	if r := p.get("/devoirs/classe/CM2-A"); !strings.Contains(r.body, "(date dépassée)") {
		t.Errorf("class page does not say the date has passed")
	}
	r := p.get(fmt.Sprintf("/devoirs/devoir/%d", lenient))
	if !strings.Contains(r.body, "tu peux encore rendre ce devoir, il sera marqué « en retard »") {
		t.Errorf("late form does not warn")
	}
	r = p.handIn(lenient, append(pupil("Léa", "M"), filePart("fichiers", "a.jpg", photo))...)
	if r.status != http.StatusSeeOther {
		t.Fatalf("late hand-in: %d", r.status)
	}
	if h := e.hooks()[0]; !h.Late {
		t.Errorf("late hand-in not marked late")
	}
	if r := p.get(r.header.Get("Location")); !strings.Contains(r.body, "Rendu en retard") {
		t.Errorf("receipt does not say late")
	}
	r = p.get(fmt.Sprintf("/devoirs/devoir/%d", strict))
	if !strings.Contains(r.body, "La date de rendu est passée : ce devoir n'accepte plus de travaux.") || strings.Contains(r.raw, `type="file"`) {
		t.Errorf("strict late form")
	}
	ctype, body := multipartBody(t, append(pupil("Léa", "M"), filePart("fichiers", "a.jpg", photo)))
	req, _ := http.NewRequest("POST", e.srv.URL+fmt.Sprintf("/devoirs/devoir/%d", strict), bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if r := p.do(req); r.status != http.StatusConflict {
		t.Errorf("strict late hand-in: %d", r.status)
	}

	// The teacher (logged in again: a week went by) closes the lenient
	// one: it disappears for pupils.
	teacher = e.teacher("mmartin")
	tok := teacher.csrf(fmt.Sprintf("/enseignant/devoirs/%d", lenient))
	if r := teacher.postForm(fmt.Sprintf("/enseignant/devoirs/%d/fermer", lenient), url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("close: %d", r.status)
	}
	if r := teacher.get(fmt.Sprintf("/enseignant/devoirs/%d", lenient)); !strings.Contains(r.body, "Fermé le") {
		t.Errorf("teacher's page does not say closed")
	}
	if r := p.get("/devoirs/classe/CM2-A"); strings.Contains(r.raw, fmt.Sprintf("/devoirs/devoir/%d\"", lenient)) {
		t.Errorf("closed assignment still listed")
	}
	if r := p.get(fmt.Sprintf("/devoirs/devoir/%d", lenient)); !strings.Contains(r.body, "Ce devoir est fermé") {
		t.Errorf("closed form")
	}
	req, _ = http.NewRequest("POST", e.srv.URL+fmt.Sprintf("/devoirs/devoir/%d", lenient), bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if r := p.do(req); r.status != http.StatusConflict {
		t.Errorf("hand-in to a closed assignment: %d", r.status)
	}
	// Closing someone else's assignment does nothing.
	other := e.teacher("durand")
	tok = csrfPattern.FindStringSubmatch(other.get("/enseignant/").body)[1]
	if r := other.postForm(fmt.Sprintf("/enseignant/devoirs/%d/fermer", strict), url.Values{"csrf": {tok}}); r.status != http.StatusNotFound {
		t.Errorf("closing another teacher's assignment: %d", r.status)
	}
}

func TestLookupMisses(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginFailures = 1 }) // 6 misses per window
	p := e.client()
	for i := range 6 {
		r := p.get("/devoirs/recu/K7Q-4PD")
		if r.status != http.StatusNotFound || !strings.Contains(r.body, "Aucun reçu ne porte le code « K7Q-4PD »") {
			t.Fatalf("miss %d: %d", i, r.status)
		}
	}
	r := p.get("/devoirs/recu?code=ZZZ-ZZZ")
	if r.status != http.StatusSeeOther {
		t.Fatalf("lookup redirect: %d", r.status)
	}
	r = p.get(r.header.Get("Location"))
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Trop de codes essayés") {
		t.Errorf("7th miss: %d", r.status)
	}
	if r := p.get("/devoirs/recu?code=%3Cscript%3E"); r.status != http.StatusTooManyRequests || strings.Contains(r.raw, "<script>") {
		t.Errorf("hostile code: %d", r.status)
	}
	if r := p.get("/devoirs/recu/k7q4pd"); r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/devoirs/recu/K7Q-4PD" {
		t.Errorf("lower-case code: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestHookReplayAndCleanup: a hand-in committed without its hook returning
// (a crash) is handed to OnHandIn by Serve; an upload interrupted before
// its commit has its blobs released.
func TestHookReplayAndCleanup(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OnHandIn = nil })
	id := e.newAssignment(e.teacher("mmartin"), nil)
	r := e.client().handIn(id, append(pupil("Léa", "M"), filePart("fichiers", "a.jpg", readFixture(t, "photo.jpg")))...)
	if r.status != http.StatusSeeOther {
		t.Fatal(r.status)
	}
	// An interrupted upload: row and pin, no hand-in.
	ctx := context.Background()
	if err := e.svc.startUpload(ctx, "assignments-handin-lost"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.blobs.PutBlob(ctx, "assignments-handin-lost", strings.NewReader("partial"), 100); err != nil {
		t.Fatal(err)
	}

	var got []HandIn
	svc, err := New(Config{Destinations: testDestinations, OnHandIn: func(ctx context.Context, h HandIn) { got = append(got, h) }},
		e.db, e.blobs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := svc.PendingHandIns(ctx)
	if err != nil || len(pending) != 1 || len(pending[0].Files) != 1 {
		t.Fatalf("PendingHandIns = %+v, %v", pending, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- svc.Serve(sctx) }()
	waitFor(t, func() bool { return e.count("assignments_uploads") == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if len(got) != 1 || got[0].Code != pending[0].Code || got[0].Files[0].Key != pending[0].Files[0].Key {
		t.Errorf("replayed hooks = %+v", got)
	}
	if pending, _ := svc.PendingHandIns(ctx); len(pending) != 0 {
		t.Errorf("still pending after the replay: %d", len(pending))
	}
	owners := e.blobs.owners(t)
	if len(owners) != 1 || owners[0] == "assignments-handin-lost" {
		t.Errorf("pinned owners after cleanup = %v, want only the committed hand-in's", owners)
	}
}

func TestStoreFailure(t *testing.T) {
	e := newEnv(t, nil)
	id := e.newAssignment(e.teacher("mmartin"), nil)
	e.blobs.failAfter = 1
	photo := readFixture(t, "photo.jpg")
	r := e.client().handIn(id, append(pupil("Léa", "M"), filePart("fichiers", "a.jpg", photo), filePart("fichiers", "b.png", readFixture(t, "image.png")))...)
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "Le serveur n'a pas pu enregistrer ton devoir") {
		t.Errorf("store failure: %d", r.status)
	}
	if e.count("assignments_handins") != 0 || e.count("assignments_uploads") != 0 || len(e.blobs.owners(t)) != 0 {
		t.Errorf("a failed hand-in left state behind")
	}
}

// TestPagesBothLanguages renders every page in French and English and
// checks the basics axe also checks: lang, one h1, labels for every field,
// no missing text.
func TestPagesBothLanguages(t *testing.T) {
	e := newEnv(t, nil)
	teacher := e.teacher("mmartin")
	id := e.newAssignment(teacher, nil)
	p := e.client()
	r := p.handIn(id, append(pupil("Léa", "M"), filePart("fichiers", "a.jpg", readFixture(t, "photo.jpg")))...)
	receipt := r.header.Get("Location")
	pupilPages := []string{"/devoirs/", "/devoirs/classe/CM2-A", fmt.Sprintf("/devoirs/devoir/%d", id), receipt, "/devoirs/recus", "/devoirs/nulle-part", "/enseignant/connexion"}
	teacherPages := []string{"/enseignant/", "/enseignant/devoirs/nouveau", fmt.Sprintf("/enseignant/devoirs/%d", id)}
	label := regexp.MustCompile(`<label for="([^"]+)"`)
	input := regexp.MustCompile(`<(?:input|textarea|select)[^>]* id="([^"]+)"`)
	for _, lang := range []string{"fr", "en"} {
		for _, c := range []*client{p, teacher} {
			c.get("/devoirs/?lang=" + lang)
		}
		check := func(c *client, path string) {
			r := c.get(path)
			if strings.Contains(r.body, "[[") {
				t.Errorf("%s (%s): missing text %s", path, lang, r.body[strings.Index(r.body, "[["):][:40])
			}
			if !strings.Contains(r.raw, `<html lang="`+lang+`">`) {
				t.Errorf("%s (%s): wrong lang", path, lang)
			}
			if n := strings.Count(r.raw, "<h1"); n != 1 {
				t.Errorf("%s (%s): %d h1", path, lang, n)
			}
			labels := map[string]bool{}
			for _, m := range label.FindAllStringSubmatch(r.raw, -1) {
				labels[m[1]] = true
			}
			for _, m := range input.FindAllStringSubmatch(r.raw, -1) {
				if !labels[m[1]] {
					t.Errorf("%s (%s): field %s has no label", path, lang, m[1])
				}
			}
			if !strings.Contains(r.raw, `<link rel="stylesheet" href="/static/style.css">`) {
				t.Errorf("%s: the portal's stylesheet is not linked", path)
			}
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("%s: CSP %q", path, csp)
			}
		}
		for _, path := range pupilPages {
			check(p, path)
		}
		for _, path := range teacherPages {
			check(teacher, path)
		}
	}
	// Static assets are served, hashed and cacheable.
	r = p.get(fmt.Sprintf("/devoirs/devoir/%d", id))
	css := regexp.MustCompile(`href="(/devoirs/static/devoirs\.[0-9a-f]{12}\.css)"`).FindStringSubmatch(r.raw)
	js := regexp.MustCompile(`src="(/devoirs/static/devoirs\.[0-9a-f]{12}\.js)"`).FindStringSubmatch(r.raw)
	if css == nil || js == nil {
		t.Fatalf("assets not linked")
	}
	for _, u := range []string{css[1], js[1]} {
		if r := p.get(u); r.status != 200 || !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: %d %q", u, r.status, r.header.Get("Cache-Control"))
		}
	}
	if r := p.get("/devoirs/static/../assignments.go"); r.status == 200 {
		t.Errorf("static traversal served a file")
	}
}

// TestClientGoesAway cuts the connection in the middle of a file: nothing
// is committed and the blobs already stored are released.
func TestClientGoesAway(t *testing.T) {
	e := newEnv(t, nil)
	id := e.newAssignment(e.teacher("mmartin"), nil)
	path := fmt.Sprintf("/devoirs/devoir/%d", id)
	p := e.client()
	tok := p.csrf(path)
	photo := readFixture(t, "photo.jpg")
	ctype, body := multipartBody(t, append([]part{field("csrf", tok)}, append(pupil("Léa", "M"),
		filePart("fichiers", "a.jpg", photo), filePart("fichiers", "b.pdf", append(readFixture(t, "doc.pdf"), make([]byte, 1<<20)...)))...))
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+path, pr)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Origin", e.srv.URL)
	done := make(chan error, 1)
	go func() {
		_, err := p.hc.Do(req)
		done <- err
	}()
	pw.Write(body[:len(body)/2]) // the photo and part of the PDF
	waitFor(t, func() bool { return len(e.blobs.owners(t)) == 1 })
	cancel()
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done
	waitFor(t, func() bool { return len(e.blobs.owners(t)) == 0 && e.count("assignments_uploads") == 0 })
	if n := e.count("assignments_handins"); n != 0 {
		t.Errorf("%d hand-ins after a cut", n)
	}
}

// TestMaintainSparesCommitted: an upload listed as interrupted whose request
// commits before the clean-up looks at it keeps its blobs. (The crash test
// found this race: the clean-up at start-up runs beside new hand-ins.)
func TestMaintainSparesCommitted(t *testing.T) {
	e := newEnv(t, nil)
	id := e.newAssignment(e.teacher("mmartin"), nil)
	r := e.client().handIn(id, append(pupil("Léa", "M"), filePart("fichiers", "a.jpg", readFixture(t, "photo.jpg")))...)
	if r.status != http.StatusSeeOther {
		t.Fatal(r.status)
	}
	var owner string
	e.db.QueryRow("SELECT blob_owner FROM assignments_handins").Scan(&owner)
	released, err := e.svc.releaseStale(context.Background(), owner)
	if err != nil || released {
		t.Fatalf("releaseStale(committed) = %v, %v", released, err)
	}
	if owners := e.blobs.owners(t); len(owners) != 1 || owners[0] != owner {
		t.Errorf("pins after releaseStale = %v, want [%s]", owners, owner)
	}
	// A real leftover is released, and only once.
	ctx := context.Background()
	e.svc.startUpload(ctx, "assignments-handin-left")
	e.blobs.PutBlob(ctx, "assignments-handin-left", strings.NewReader("x"), 10)
	if released, err := e.svc.releaseStale(ctx, "assignments-handin-left"); err != nil || !released {
		t.Errorf("releaseStale(leftover) = %v, %v", released, err)
	}
	if released, _ := e.svc.releaseStale(ctx, "assignments-handin-left"); released {
		t.Errorf("released twice")
	}
}
