package assignments

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// refusal is a hand-in or form the box refuses, with the HTTP status and
// the catalogue key of the message. Args of type byteSize and kindList are
// written in the page's language.
type refusal struct {
	status int
	key    string
	args   []any
	err    error // the cause, for the log
}

type (
	byteSize int64
	kindList []string
)

func (r *refusal) Error() string { return r.text("fr") }
func (r *refusal) Unwrap() error { return r.err }

func (r *refusal) text(lang string) string {
	args := make([]any, len(r.args))
	for i, a := range r.args {
		switch v := a.(type) {
		case byteSize:
			args[i] = formatSize(lang, int64(v))
		case kindList:
			args[i] = kindsLabel(lang, v)
		default:
			args[i] = a
		}
	}
	return msgf(lang, r.key, args...)
}

func refuse(status int, key string, args ...any) *refusal {
	return &refusal{status: status, key: key, args: args}
}

// Field limits of the hand-in form.
const (
	maxFirstNameRunes = 30
	maxFieldBytes     = 256     // csrf, names
	maxDrainField     = 1 << 10 // unknown fields are read up to this, then refused
	formOverhead      = 64 << 10
)

// Form field names of the hand-in form.
const (
	fieldCSRF      = "csrf"
	fieldFirstName = "prenom"
	fieldInitial   = "initiale"
	fieldText      = "texte"
	fieldFiles     = "fichiers"
	fieldPhoto     = "photo"
)

// handInForm is what a hand-in request carried, once its files are stored.
type handInForm struct {
	FirstName, Initial, Text string
	Files                    []receivedFile
}

// receiver reads one hand-in's multipart body part by part, storing each
// file as a blob while it streams: nothing is buffered whole in memory or
// on disk outside the content store. It never trusts the client's
// Content-Type or file name.
type receiver struct {
	blobs    Blobs
	a        assignment
	cfg      Config
	csrf     string                      // the token the form must carry ("" refuses every form)
	owner    string                      // blob owner of this hand-in
	begin    func(context.Context) error // called once, before the first blob
	started  bool                        // begin was called
	total    int64                       // bytes of files so far
	names    map[string]bool             // names taken, lower case
	parts    int                         // parts read
	csrfOK   bool                        // the csrf field came and matched
	form     handInForm                  // fields and stored files
	textSeen bool                        // a text field came
}

// maxParts bounds the parts of one body: the fields, the files and the
// empty part a browser sends for an input left empty.
func (rc *receiver) maxParts() int { return rc.cfg.MaxFiles + 8 }

// receive reads the whole body. A *refusal says what the pupil must change;
// other errors are the server's.
func (rc *receiver) receive(ctx context.Context, mr *multipart.Reader) (handInForm, error) {
	rc.names = map[string]bool{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return handInForm{}, bodyRefusal(err)
		}
		rc.parts++
		if rc.parts > rc.maxParts() {
			p.Close()
			return handInForm{}, refuse(http.StatusRequestEntityTooLarge, "err.toomany", rc.cfg.MaxFiles)
		}
		err = rc.part(ctx, p)
		p.Close()
		if err != nil {
			return handInForm{}, err
		}
	}
	if !rc.csrfOK {
		return handInForm{}, refuse(http.StatusForbidden, "err.csrf")
	}
	return rc.form, nil
}

func (rc *receiver) part(ctx context.Context, p *multipart.Part) error {
	name := p.FormName()
	switch name {
	case fieldCSRF:
		v, err := readField(p, maxFieldBytes)
		if err != nil {
			return err
		}
		rc.csrfOK = rc.csrf != "" && constantTimeEqual(v, rc.csrf)
		if !rc.csrfOK {
			return refuse(http.StatusForbidden, "err.csrf")
		}
	case fieldFirstName:
		v, err := readField(p, maxFieldBytes)
		if err != nil {
			return err
		}
		rc.form.FirstName = v
	case fieldInitial:
		v, err := readField(p, maxFieldBytes)
		if err != nil {
			return err
		}
		rc.form.Initial = v
	case fieldText:
		if rc.textSeen {
			return refuse(http.StatusBadRequest, "err.badform")
		}
		rc.textSeen = true
		v, err := readField(p, int64(rc.cfg.MaxTextBytes))
		var tooLong *fieldTooLong
		if errors.As(err, &tooLong) {
			return refuse(http.StatusRequestEntityTooLarge, "err.texttoolong", byteSize(rc.cfg.MaxTextBytes))
		}
		if err != nil {
			return err
		}
		rc.form.Text = strings.ToValidUTF8(v, "\uFFFD")
	case fieldFiles, fieldPhoto:
		if !rc.csrfOK {
			return refuse(http.StatusForbidden, "err.csrf")
		}
		return rc.file(ctx, p)
	default:
		if _, err := readField(p, maxDrainField); err != nil {
			return err
		}
	}
	return nil
}

// fieldTooLong is readField's error for a value over its limit.
type fieldTooLong struct{}

func (*fieldTooLong) Error() string { return "field too long" }

// readField reads a form value of at most max bytes.
func readField(p *multipart.Part, max int64) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, max+1))
	if err != nil {
		return "", bodyRefusal(err)
	}
	if int64(len(b)) > max {
		if p.FormName() == fieldText {
			return "", &fieldTooLong{}
		}
		return "", refuse(http.StatusBadRequest, "err.badform")
	}
	return string(b), nil
}

// bodyRefusal turns an error reading the body into a refusal: over the
// total limit, or a damaged or cut body.
func bodyRefusal(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		r := refuse(http.StatusRequestEntityTooLarge, "err.totaltoolarge")
		r.err = err
		return r
	}
	r := refuse(http.StatusBadRequest, "err.badform")
	r.err = err
	return r
}

// capReader passes at most n bytes of r, and remembers whether r had more
// and any error reading r, so that the blob store's own error (which this
// package cannot recognise) is never needed to tell why a file stopped.
type capReader struct {
	r       io.Reader
	n       int64
	over    bool
	readErr error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.over = true
			return 0, errFileTooLarge
		}
		if err != nil && err != io.EOF {
			c.readErr = err
		}
		return 0, err
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if err != nil && err != io.EOF {
		c.readErr = err
	}
	return n, err
}

var errFileTooLarge = errors.New("file larger than allowed")

func (rc *receiver) file(ctx context.Context, p *multipart.Part) error {
	rawName := p.FileName()
	shown := displayName(rawName)
	br := bufio.NewReaderSize(p, sniffLen)
	head, err := br.Peek(sniffLen)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return bodyRefusal(err)
	}
	if len(head) == 0 {
		if rawName == "" {
			return nil // an input left empty
		}
		return refuse(http.StatusUnprocessableEntity, "err.empty", shown)
	}
	if len(rc.form.Files) >= rc.cfg.MaxFiles {
		return refuse(http.StatusRequestEntityTooLarge, "err.toomany", rc.cfg.MaxFiles)
	}
	mediaType := sniff(head)
	kind := kindOf(mediaType)
	if kind == "" || !slices.Contains(rc.a.Kinds, kind) {
		return refuse(http.StatusUnsupportedMediaType, "err.type", shown, kindList(rc.a.Kinds))
	}
	if !rc.started {
		if err := rc.begin(ctx); err != nil {
			return err
		}
		rc.started = true
	}
	perFile := rc.a.MaxFileBytes
	left := rc.cfg.MaxTotalBytes - rc.total
	limit := min(perFile, left)
	cr := &capReader{r: br, n: limit}
	var src io.Reader = cr
	var tc *textChecker
	if kind == KindText {
		tc = &textChecker{r: cr}
		src = tc
	}
	hash, size, err := rc.blobs.PutBlob(ctx, rc.owner, src, limit+1)
	switch {
	case cr.over && limit == perFile:
		return refuse(http.StatusRequestEntityTooLarge, "err.filetoolarge", shown, byteSize(perFile))
	case cr.over:
		return refuse(http.StatusRequestEntityTooLarge, "err.totaltoolarge", byteSize(rc.cfg.MaxTotalBytes))
	case cr.readErr != nil:
		return bodyRefusal(cr.readErr)
	case err != nil:
		return fmt.Errorf("store file: %w", err)
	}
	if tc != nil && tc.binary {
		return refuse(http.StatusUnsupportedMediaType, "err.type", shown, kindList(rc.a.Kinds))
	}
	if mediaType == zipPending {
		mediaType, err = rc.documentType(hash, size)
		if err != nil {
			return err
		}
		if mediaType == "" {
			return refuse(http.StatusUnsupportedMediaType, "err.type", shown, kindList(rc.a.Kinds))
		}
	}
	rc.total += size
	name := uniqueName(sanitizeFileName(rawName, mediaType), rc.names)
	rc.form.Files = append(rc.form.Files, receivedFile{Name: name, MediaType: mediaType, SHA256: hash, Size: size})
	return nil
}

// documentType reads a stored ZIP blob to tell which document it is.
func (rc *receiver) documentType(hash string, size int64) (string, error) {
	f, err := rc.blobs.OpenBlob(hash)
	if err != nil {
		return "", fmt.Errorf("check document %s: %w", hash, err)
	}
	defer f.Close()
	return zipType(f, size), nil
}

// finish checks the fields once the body is read and returns the pupil's
// name as stored ("Léa M."). It returns every problem at once.
func (rc *receiver) finish() (string, []*refusal) {
	var probs []*refusal
	first := strings.Join(strings.Fields(rc.form.FirstName), " ")
	if !validFirstName(first) {
		probs = append(probs, refuse(http.StatusUnprocessableEntity, "err.firstname"))
	}
	initial := strings.TrimRight(strings.TrimSpace(rc.form.Initial), ".")
	r, n := utf8.DecodeRuneInString(initial)
	if n == 0 || n != len(initial) || !unicode.IsLetter(r) {
		probs = append(probs, refuse(http.StatusUnprocessableEntity, "err.initial"))
	}
	if rc.textSeen && strings.TrimSpace(rc.form.Text) != "" && !slices.Contains(rc.a.Kinds, KindText) {
		probs = append(probs, refuse(http.StatusBadRequest, "err.badform"))
	}
	if len(rc.form.Files) == 0 && strings.TrimSpace(rc.form.Text) == "" {
		probs = append(probs, refuse(http.StatusUnprocessableEntity, "err.nothing"))
	}
	if len(probs) > 0 {
		return "", probs
	}
	return capitalizeWords(first) + " " + string(unicode.ToUpper(r)) + ".", nil
}

// capitalizeWords puts a capital at the start of each part of a first name
// ("léa" → "Léa", "jean-éric" → "Jean-Éric") and leaves the rest as typed.
func capitalizeWords(s string) string {
	out := []rune(s)
	start := true
	for i, r := range out {
		if start {
			out[i] = unicode.ToUpper(r)
		}
		start = r == ' ' || r == '-'
	}
	return string(out)
}

// storeText stores the typed text as one more file, "texte.txt".
func (rc *receiver) storeText(ctx context.Context) error {
	text := strings.TrimSpace(rc.form.Text)
	if text == "" {
		return nil
	}
	text = strings.ReplaceAll(text, "\r\n", "\n") + "\n"
	if rc.total+int64(len(text)) > rc.cfg.MaxTotalBytes {
		return refuse(http.StatusRequestEntityTooLarge, "err.totaltoolarge", byteSize(rc.cfg.MaxTotalBytes))
	}
	if !rc.started {
		if err := rc.begin(ctx); err != nil {
			return err
		}
		rc.started = true
	}
	hash, size, err := rc.blobs.PutBlob(ctx, rc.owner, strings.NewReader(text), int64(len(text))+1)
	if err != nil {
		return fmt.Errorf("store text: %w", err)
	}
	rc.total += size
	name := uniqueName("texte.txt", rc.names)
	rc.form.Files = append(rc.form.Files, receivedFile{Name: name, MediaType: "text/plain; charset=utf-8", SHA256: hash, Size: size})
	return nil
}

// validFirstName accepts 1 to 30 runes of letters, with spaces, hyphens,
// apostrophes and dots between them ("Jean-Éric", "N'Golo").
func validFirstName(s string) bool {
	n := utf8.RuneCountInString(s)
	if n == 0 || n > maxFirstNameRunes {
		return false
	}
	letters := 0
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.Is(unicode.Mn, r):
			letters++
		case r == ' ' || r == '-' || r == '\'' || r == '’' || r == '.':
		default:
			return false
		}
	}
	return letters > 0
}

// displayName makes a client's file name safe to show in a message.
func displayName(raw string) string {
	s := strings.ToValidUTF8(raw, "\uFFFD")
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > 80 {
		s = string([]rune(s)[:79]) + "…"
	}
	if s == "" {
		s = "?"
	}
	return s
}
