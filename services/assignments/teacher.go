package assignments

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// teacherOnly runs h for a logged-in teacher; others go to the login page.
// For POSTs it also checks the origin and the session's CSRF token.
func (s *Service) teacherOnly(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var token string
		if c, err := r.Cookie(sessionCookie); err == nil {
			token = c.Value
		}
		ss, ok, err := s.lookupSession(r.Context(), token)
		if err != nil {
			s.failed(w, r, err)
			return
		}
		if !ok {
			q := url.Values{}
			if r.Method == http.MethodGet && r.URL.Path != "/enseignant/" {
				q.Set("suite", r.URL.Path)
			}
			http.Redirect(w, r, localURL("/enseignant/connexion", q.Encode()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, formOverhead)
			if err := r.ParseForm(); err != nil {
				s.teacherRefused(w, r, ss, http.StatusBadRequest, "t.csrf")
				return
			}
			if !sameOrigin(r) || !constantTimeEqual(r.PostForm.Get(fieldCSRF), ss.CSRF) {
				s.teacherRefused(w, r, ss, http.StatusForbidden, "t.csrf")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, ss)
	}
}

// teacherPage starts a teacher page.
func (s *Service) teacherPage(r *http.Request, ss session, title string) *pageData {
	d := s.newPage(r, title)
	d.Teacher = &ss
	d.CSRF = ss.CSRF
	return d
}

// teacherRefused shows the teacher's home with an error, for a form that
// cannot be trusted (expired or forged).
func (s *Service) teacherRefused(w http.ResponseWriter, r *http.Request, ss session, status int, key string) {
	d := s.teacherPage(r, ss, "")
	d.Title = d.T("t.list.title")
	d.Errors = []string{d.T(key)}
	list, err := s.teacherList(r, ss)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d.List = list
	s.render(w, r, status, "teacher", d)
}

type loginView struct {
	Login, Next string
}

// nextPath keeps a return path only if it is a teacher page.
func nextPath(p string) string {
	if strings.HasPrefix(p, "/enseignant/") && !strings.ContainsAny(p, "\\\r\n") && !strings.HasPrefix(p, "/enseignant//") {
		return p
	}
	return "/enseignant/"
}

func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, ok, _ := s.lookupSession(r.Context(), c.Value); ok {
			http.Redirect(w, r, "/enseignant/", http.StatusSeeOther)
			return
		}
	}
	d := s.newPage(r, "")
	d.Title = d.T("t.login.title")
	d.CSRF = csrfToken(w, r)
	d.Login = &loginView{Next: nextPath(r.URL.Query().Get("suite"))}
	s.render(w, r, http.StatusOK, "login", d)
}

func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, formOverhead)
	d := s.newPage(r, "")
	d.Title = d.T("t.login.title")
	d.CSRF = csrfToken(w, r)
	d.Login = &loginView{}
	fail := func(status int, text string) {
		d.Errors = []string{text}
		s.render(w, r, status, "login", d)
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, d.T("t.csrf"))
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("identifiant"))
	if len(login) > 64 {
		login = login[:64]
	}
	d.Login.Login, d.Login.Next = login, nextPath(r.PostForm.Get("suite"))
	if !sameOrigin(r) || cookieCSRF(r) == "" || !constantTimeEqual(r.PostForm.Get(fieldCSRF), cookieCSRF(r)) {
		fail(http.StatusForbidden, d.T("t.csrf"))
		return
	}
	now := s.now()
	ipKey, accountKey := "ip:"+clientIP(r), "login:"+strings.ToLower(login)
	wait1, ipBlocked := s.logins.blocked(ipKey, s.cfg.LoginFailures*5, now)
	wait2, accountBlocked := s.logins.blocked(accountKey, s.cfg.LoginFailures, now)
	if ipBlocked || accountBlocked {
		s.log.Warn("teacher login refused: too many failures", "login", login, "ip", clientIP(r))
		fail(http.StatusTooManyRequests, d.Tf("t.login.limited", minutesCeil(max(wait1, wait2))))
		return
	}
	t, ok, err := s.authenticate(r.Context(), login, r.PostForm.Get("motdepasse"), clientIP(r))
	if err != nil {
		s.failed(w, r, err)
		return
	}
	if !ok {
		s.logins.fail(ipKey, now)
		s.logins.fail(accountKey, now)
		s.log.Info("teacher login failed", "login", login, "ip", clientIP(r))
		fail(http.StatusUnauthorized, d.T("t.login.failed"))
		return
	}
	s.logins.reset(accountKey)
	token, err := s.newSession(r.Context(), t)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/enseignant", MaxAge: int(s.cfg.SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	s.log.Info("teacher logged in", "login", t.Login)
	http.Redirect(w, r, d.Login.Next, http.StatusSeeOther)
}

func (s *Service) logout(w http.ResponseWriter, r *http.Request, ss session) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.endSession(r.Context(), c.Value); err != nil {
			s.failed(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/enseignant", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/enseignant/connexion", http.StatusSeeOther)
}

type teacherListView struct {
	Open, Closed []teacherRow
}

type teacherRow struct {
	URL, Title, Class, Due string
	HandIns, Failed        int
}

func (s *Service) teacherList(r *http.Request, ss session) (*teacherListView, error) {
	as, err := s.queryAssignments(r.Context(), "a.teacher = ? ORDER BY a.due_at DESC, a.id DESC", ss.ID)
	if err != nil {
		return nil, fmt.Errorf("list assignments of %s: %w", ss.Login, err)
	}
	lang := s.lang(r)
	v := &teacherListView{}
	for _, a := range as {
		row := teacherRow{URL: "/enseignant/devoirs/" + strconv.FormatInt(a.ID, 10), Title: a.Title, Class: a.Class,
			Due: formatDateTime(lang, s.localTime(a.Due)), HandIns: a.HandIns}
		if a.open() {
			// Failures are counted for open assignments only: those are
			// the ones a teacher checks, and it keeps the page cheap.
			hs, err := s.loadHandIns(r.Context(), "h.assignment = ?", a.ID)
			if err != nil {
				return nil, err
			}
			for _, h := range hs {
				for _, f := range h.Files {
					if s.deliveryState(r, f.Key).Status == DeliveryFailed {
						row.Failed++
					}
				}
			}
			v.Open = append(v.Open, row)
		} else {
			v.Closed = append(v.Closed, row)
		}
	}
	return v, nil
}

func (s *Service) teacherHome(w http.ResponseWriter, r *http.Request, ss session) {
	list, err := s.teacherList(r, ss)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := s.teacherPage(r, ss, "")
	d.Title = d.T("t.list.title")
	d.List = list
	s.render(w, r, http.StatusOK, "teacher", d)
}

type option struct {
	Value, Label string
	Selected     bool
}

type newView struct {
	Title, Class, Due, DueTime, Instructions string
	Destinations, Kinds                      []option
	MaxMB, MaxMBLimit                        int64
	RefuseLate, NoDestination                bool
	MaxInstructions                          int
}

const (
	maxTitleRunes        = 200
	maxInstructionsRunes = 5000
)

func (s *Service) maxMBLimit() int64 { return max(1, s.cfg.MaxFileBytes/1_000_000) }

func (s *Service) newView(lang string) *newView {
	v := &newView{
		DueTime: "23:59", MaxMB: s.maxMBLimit(), MaxMBLimit: s.maxMBLimit(), RefuseLate: s.cfg.RefuseLate,
		NoDestination: len(s.cfg.Destinations) == 0, MaxInstructions: maxInstructionsRunes,
		Due: s.localTime(s.now()).AddDate(0, 0, 7).Format("2006-01-02"),
	}
	for _, dst := range s.cfg.Destinations {
		v.Destinations = append(v.Destinations, option{Value: dst.ID, Label: dst.Label, Selected: len(s.cfg.Destinations) == 1})
	}
	for _, k := range AllKinds {
		if slices.Contains(s.cfg.AllowedKinds, k) {
			v.Kinds = append(v.Kinds, option{Value: k, Label: msg(lang, "kind."+k), Selected: true})
		}
	}
	return v
}

func (s *Service) newAssignmentPage(w http.ResponseWriter, r *http.Request, ss session) {
	d := s.teacherPage(r, ss, "")
	d.Title = d.T("t.new.title")
	d.New = s.newView(d.Lang)
	s.render(w, r, http.StatusOK, "new", d)
}

var classPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9 ._-]{0,23}$`)

// normalizeClass writes a class code in upper case with single spaces.
func normalizeClass(c string) (string, bool) {
	c = strings.ToUpper(strings.Join(strings.Fields(c), " "))
	return c, classPattern.MatchString(c)
}

func (s *Service) createAssignmentPost(w http.ResponseWriter, r *http.Request, ss session) {
	f := r.PostForm
	d := s.teacherPage(r, ss, "")
	d.Title = d.T("t.new.title")
	v := s.newView(d.Lang)
	d.New = v
	v.Title = strings.Join(strings.Fields(f.Get("titre")), " ")
	v.Class = f.Get("classe")
	v.Due, v.DueTime = f.Get("echeance"), f.Get("heure")
	v.Instructions = strings.TrimSpace(strings.ReplaceAll(f.Get("consignes"), "\r\n", "\n"))
	v.RefuseLate = f.Get("refuser_retard") == "1"
	var errs []string
	if v.Title == "" || utf8.RuneCountInString(v.Title) > maxTitleRunes || !utf8.ValidString(v.Title) {
		errs = append(errs, d.T("t.err.title.field"))
	}
	class, ok := normalizeClass(v.Class)
	if !ok {
		errs = append(errs, d.T("t.err.class"))
	} else {
		v.Class = class
	}
	if v.DueTime == "" {
		v.DueTime = "23:59"
	}
	due, err := time.ParseInLocation("2006-01-02 15:04", v.Due+" "+v.DueTime, s.cfg.Location)
	if err != nil || due.Year() < 2000 || due.Year() > 2200 {
		errs = append(errs, d.T("t.err.due"))
	}
	if utf8.RuneCountInString(v.Instructions) > maxInstructionsRunes || !utf8.ValidString(v.Instructions) {
		errs = append(errs, d.Tf("t.err.instructions", maxInstructionsRunes))
	}
	dest := f.Get("destination")
	found := false
	for i := range v.Destinations {
		v.Destinations[i].Selected = v.Destinations[i].Value == dest
		found = found || v.Destinations[i].Selected
	}
	if !found {
		errs = append(errs, d.T("t.err.destination"))
	}
	var kinds []string
	for i := range v.Kinds {
		v.Kinds[i].Selected = slices.Contains(f["types"], v.Kinds[i].Value)
		if v.Kinds[i].Selected {
			kinds = append(kinds, v.Kinds[i].Value)
		}
	}
	if len(kinds) == 0 {
		errs = append(errs, d.T("t.err.kinds"))
	}
	mb, err := strconv.ParseInt(strings.TrimSpace(f.Get("taille")), 10, 64)
	if err != nil || mb < 1 || mb > s.maxMBLimit() {
		errs = append(errs, d.Tf("t.err.maxsize", s.maxMBLimit()))
	} else {
		v.MaxMB = mb
	}
	if len(errs) > 0 {
		d.Errors = errs
		s.render(w, r, http.StatusUnprocessableEntity, "new", d)
		return
	}
	id, err := s.createAssignment(r.Context(), assignment{
		TeacherID: ss.ID, Title: v.Title, Class: class, Instructions: v.Instructions, Due: due,
		Destination: dest, Kinds: kinds, MaxFileBytes: min(mb*1_000_000, s.cfg.MaxFileBytes), RefuseLate: v.RefuseLate,
	})
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.log.Info("assignment created", "assignment", id, "teacher", ss.Login, "class", class)
	http.Redirect(w, r, "/enseignant/devoirs/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

type assignmentView struct {
	ID                                   int64
	Title, Class, Due, Instructions      string
	Destination, Kinds, MaxSize          string
	RefuseLate, Open                     bool
	Closed, PupilURL, ClassURL, CloseURL string
	Summary, FailedText                  string
	HandIns                              []teacherHandIn
}

type teacherHandIn struct {
	Pupil, Time, Code string
	Late              bool
	Files             []teacherFile
}

type teacherFile struct {
	URL, Name, Size, State, StateLabel string
	Message, MessageLang               string // MessageLang is set when it differs from the page's
}

// ownAssignment returns the teacher's assignment named in the path; ok is
// false (and a 404 written) when there is none.
func (s *Service) ownAssignment(w http.ResponseWriter, r *http.Request, ss session) (assignment, bool) {
	id, ok := s.parseID(r)
	if !ok {
		s.notFound(w, r)
		return assignment{}, false
	}
	a, err := s.assignmentByID(r.Context(), id)
	if errors.Is(err, errNoAssignment) || (err == nil && a.TeacherID != ss.ID) {
		s.notFound(w, r)
		return assignment{}, false
	}
	if err != nil {
		s.failed(w, r, err)
		return assignment{}, false
	}
	return a, true
}

func (s *Service) assignmentPage(w http.ResponseWriter, r *http.Request, ss session) {
	a, ok := s.ownAssignment(w, r, ss)
	if !ok {
		return
	}
	hs, err := s.loadHandIns(r.Context(), "h.assignment = ?", a.ID)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := s.teacherPage(r, ss, a.Title)
	lang := d.Lang
	v := &assignmentView{
		ID: a.ID, Title: a.Title, Class: a.Class, Instructions: a.Instructions,
		Due:   formatDateTime(lang, s.localTime(a.Due)),
		Kinds: kindsLabel(lang, a.Kinds), MaxSize: formatSize(lang, a.MaxFileBytes), RefuseLate: a.RefuseLate,
		Open: a.open(), PupilURL: handInURL(a.ID), ClassURL: classURL(a.Class),
		CloseURL: "/enseignant/devoirs/" + strconv.FormatInt(a.ID, 10) + "/fermer",
	}
	v.Destination = a.Destination
	for _, dst := range s.cfg.Destinations {
		if dst.ID == a.Destination {
			v.Destination = dst.Label
		}
	}
	if !a.open() {
		v.Closed = formatDateTime(lang, s.localTime(a.Closed))
	}
	late, failed := 0, 0
	for _, h := range hs {
		th := teacherHandIn{Pupil: h.Pupil, Time: formatDateTime(lang, s.localTime(h.Received)), Code: h.Code, Late: h.Late}
		if h.Late {
			late++
		}
		for _, f := range h.Files {
			st := s.deliveryState(r, f.Key)
			tf := teacherFile{
				URL: "/enseignant/fichiers/" + strconv.FormatInt(f.ID, 10), Name: f.Name, Size: formatSize(lang, f.Size),
				State: string(st.Status), StateLabel: msg(lang, "t.state."+string(st.Status)),
			}
			if st.Status == DeliveryFailed {
				failed++
				tf.Message = st.Message
				if lang == "en" {
					if st.MessageEN != "" {
						tf.Message = st.MessageEN
					} else {
						tf.MessageLang = "fr"
					}
				}
			}
			th.Files = append(th.Files, tf)
		}
		v.HandIns = append(v.HandIns, th)
	}
	v.Summary = d.Tf("t.a.summary", len(hs), late)
	if failed > 0 {
		v.FailedText = d.Tf("t.a.failed", failed)
	}
	d.Assignment = v
	s.render(w, r, http.StatusOK, "assignment", d)
}

func (s *Service) closeAssignmentPost(w http.ResponseWriter, r *http.Request, ss session) {
	a, ok := s.ownAssignment(w, r, ss)
	if !ok {
		return
	}
	if err := s.closeAssignment(r.Context(), ss.ID, a.ID); err != nil {
		s.failed(w, r, err)
		return
	}
	s.log.Info("assignment closed", "assignment", a.ID, "teacher", ss.Login)
	http.Redirect(w, r, "/enseignant/devoirs/"+strconv.FormatInt(a.ID, 10), http.StatusSeeOther)
}

// download sends a hand-in file to its teacher, as an attachment that the
// browser never runs: a pupil's file is not trusted.
func (s *Service) download(w http.ResponseWriter, r *http.Request, ss session) {
	id, ok := s.parseID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	f, err := s.fileForTeacher(r.Context(), ss.ID, id)
	if errors.Is(err, errNoAssignment) {
		s.notFound(w, r)
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	blob, err := s.blobs.OpenBlob(f.SHA256)
	if err != nil {
		s.failed(w, r, fmt.Errorf("open file %d: %w", id, err))
		return
	}
	defer blob.Close()
	if fi, err := blob.Stat(); err != nil || fi.Size() != f.Size {
		s.failed(w, r, fmt.Errorf("open file %d: blob %s has not the recorded size %d", id, f.SHA256, f.Size))
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.MediaType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "private, no-store")
	http.ServeContent(w, r, "", time.Time{}, blob)
}
