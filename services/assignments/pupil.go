package assignments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

type classesView struct {
	Classes []link
	Code    string // the lookup field's value
}

func (s *Service) classes(w http.ResponseWriter, r *http.Request) {
	classes, err := s.openClasses(r.Context())
	if err != nil {
		s.failed(w, r, err)
		return
	}
	deviceID(w, r)
	d := s.newPage(r, "")
	d.Title = d.T("classes.title")
	v := &classesView{}
	for _, c := range classes {
		v.Classes = append(v.Classes, link{URL: classURL(c), Label: c})
	}
	d.Classes = v
	s.render(w, r, http.StatusOK, "classes", d)
}

func classURL(class string) string { return "/devoirs/classe/" + url.PathEscape(class) }

func handInURL(id int64) string { return "/devoirs/devoir/" + strconv.FormatInt(id, 10) }

type classView struct {
	Class       string
	Assignments []assignmentCard
}

type assignmentCard struct {
	URL, Title, Due string
	Late            bool
}

func (s *Service) class(w http.ResponseWriter, r *http.Request) {
	class, ok := normalizeClass(r.PathValue("class"))
	if !ok {
		s.notFound(w, r)
		return
	}
	if class != r.PathValue("class") {
		http.Redirect(w, r, classURL(class), http.StatusMovedPermanently)
		return
	}
	as, err := s.queryAssignments(r.Context(), "a.class_code = ? AND a.closed_at IS NULL ORDER BY a.due_at, a.id", class)
	if err != nil {
		s.failed(w, r, fmt.Errorf("list assignments of %s: %w", class, err))
		return
	}
	deviceID(w, r)
	d := s.newPage(r, "")
	d.Title = d.Tf("class.title", class)
	v := &classView{Class: class}
	now := s.now()
	for _, a := range as {
		v.Assignments = append(v.Assignments, assignmentCard{
			URL: handInURL(a.ID), Title: a.Title,
			Due:  formatDateTime(d.Lang, s.localTime(a.Due)),
			Late: now.After(a.Due),
		})
	}
	d.Class = v
	s.render(w, r, http.StatusOK, "class", d)
}

// handInView is the hand-in form.
type handInView struct {
	ID                       int64
	Title, Class, ClassURL   string
	Instructions             string
	Due                      string
	Closed, LateRefused      bool
	Late                     bool
	AllowImages, AllowText   bool
	Accept, Limits           string
	MaxFile, MaxTotal        int64
	MaxFiles                 int
	MaxFileText, MaxTotalTxt string
	FirstName, Initial, Text string
	MaxTextBytes             int
	// Messages of the size-check script, in the page's language.
	MsgSize, MsgTotal, MsgCount, MsgType, MsgEmpty string
}

func (s *Service) parseID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0 && strconv.FormatInt(id, 10) == r.PathValue("id")
}

func (s *Service) handInPage(w http.ResponseWriter, r *http.Request) {
	id, ok := s.parseID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	a, err := s.assignmentByID(r.Context(), id)
	if errors.Is(err, errNoAssignment) {
		s.notFound(w, r)
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	deviceID(w, r)
	d := s.handInData(w, r, a)
	s.render(w, r, http.StatusOK, "handin", d)
}

// handInData prepares the form of a; the caller adds errors and values.
func (s *Service) handInData(w http.ResponseWriter, r *http.Request, a assignment) *pageData {
	d := s.newPage(r, a.Title)
	d.CSRF = csrfToken(w, r)
	late := s.now().After(a.Due)
	v := &handInView{
		ID: a.ID, Title: a.Title, Class: a.Class, ClassURL: classURL(a.Class), Instructions: a.Instructions,
		Due:    formatDateTime(d.Lang, s.localTime(a.Due)),
		Closed: !a.open(), Late: late, LateRefused: late && a.RefuseLate,
		AllowImages: slices.Contains(a.Kinds, KindImage),
		AllowText:   slices.Contains(a.Kinds, KindText),
		Accept:      acceptAttr(a.Kinds),
		MaxFile:     a.MaxFileBytes, MaxTotal: s.cfg.MaxTotalBytes, MaxFiles: s.cfg.MaxFiles,
		MaxFileText: formatSize(d.Lang, a.MaxFileBytes), MaxTotalTxt: formatSize(d.Lang, s.cfg.MaxTotalBytes),
		MaxTextBytes: s.cfg.MaxTextBytes,
		MsgSize:      strings.ReplaceAll(d.T("err.script.size"), "{max}", formatSize(d.Lang, a.MaxFileBytes)),
		MsgTotal:     strings.ReplaceAll(d.T("err.script.total"), "{max}", formatSize(d.Lang, s.cfg.MaxTotalBytes)),
		MsgCount:     strings.ReplaceAll(d.T("err.script.count"), "{max}", strconv.Itoa(s.cfg.MaxFiles)),
		MsgType:      d.T("err.script.type"),
		MsgEmpty:     d.T("err.script.empty"),
	}
	v.Limits = d.Tf("handin.limits", kindsLabel(d.Lang, a.Kinds), v.MaxFileText, v.MaxTotalTxt, s.cfg.MaxFiles)
	if !v.Closed && !v.LateRefused {
		d.Script = s.script
	}
	d.HandIn = v
	return d
}

// postHandIn receives a hand-in: blobs first (each durable and pinned), then
// one transaction for the hand-in and its files, then the hook, then the
// receipt. A crash at any point leaves either no hand-in (and blobs that
// Serve releases) or a whole one.
func (s *Service) postHandIn(w http.ResponseWriter, r *http.Request) {
	id, ok := s.parseID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	ctx := r.Context()
	a, err := s.assignmentByID(ctx, id)
	if errors.Is(err, errNoAssignment) {
		s.notFound(w, r)
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	late := s.now().After(a.Due)
	limit := s.cfg.MaxTotalBytes + int64(s.cfg.MaxTextBytes) + formOverhead
	if !a.open() || (late && a.RefuseLate) {
		// The form says why; what the browser sends is read and dropped
		// (within the limit) so that it shows the answer.
		io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, limit))
		d := s.handInData(w, r, a)
		s.render(w, r, http.StatusConflict, "handin", d)
		return
	}
	refused := func(status int, probs []*refusal, f handInForm) {
		d := s.handInData(w, r, a)
		for _, p := range probs {
			d.Errors = append(d.Errors, p.text(d.Lang))
		}
		d.HandIn.FirstName, d.HandIn.Initial, d.HandIn.Text = f.FirstName, f.Initial, f.Text
		s.render(w, r, status, "handin", d)
	}
	if !sameOrigin(r) {
		refused(http.StatusForbidden, []*refusal{refuse(http.StatusForbidden, "err.csrf")}, handInForm{})
		return
	}
	if r.ContentLength > limit {
		// Refused before reading a byte; the browser may show a broken
		// connection instead of this page if it keeps sending, which the
		// form's script and the announced limits make unlikely.
		w.Header().Set("Connection", "close")
		refused(http.StatusRequestEntityTooLarge, []*refusal{refuse(http.StatusRequestEntityTooLarge, "err.totaltoolarge", byteSize(s.cfg.MaxTotalBytes))}, handInForm{})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		refused(http.StatusBadRequest, []*refusal{refuse(http.StatusBadRequest, "err.badform")}, handInForm{})
		return
	}
	device := deviceID(w, r)
	owner := "assignments-handin-" + randomToken(12)
	s.mu.Lock()
	s.active[owner] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.active, owner)
		s.mu.Unlock()
	}()
	rc := &receiver{
		blobs: s.blobs, a: a, cfg: s.cfg, csrf: cookieCSRF(r), owner: owner,
		begin: func(ctx context.Context) error { return s.startUpload(ctx, owner) },
	}
	form, err := rc.receive(ctx, mr)
	var pupil string
	var probs []*refusal
	if err == nil {
		pupil, probs = rc.finish()
		if len(probs) == 0 {
			err = rc.storeText(ctx)
			form = rc.form
		}
	}
	var ref *refusal
	if errors.As(err, &ref) {
		probs = []*refusal{ref}
	}
	if len(probs) > 0 || err != nil {
		form = rc.form
		if rc.started {
			if derr := s.dropUpload(context.WithoutCancel(ctx), owner); derr != nil {
				s.log.Warn("release refused hand-in", "err", derr)
			}
		}
		if ctx.Err() != nil {
			// The pupil left (tab closed, Wi-Fi lost): no one to answer.
			s.log.Info("hand-in interrupted by the client", "assignment", a.ID)
			return
		}
		// Read what the browser is still sending (bounded by the limit, at
		// once done when the limit tripped) so that it shows the answer
		// rather than a reset connection.
		io.Copy(io.Discard, r.Body)
		if err != nil && ref == nil {
			s.log.Error("receive hand-in", "assignment", a.ID, "err", err)
			refused(http.StatusInternalServerError, []*refusal{refuse(http.StatusInternalServerError, "err.server")}, form)
			return
		}
		if ref != nil && ref.err != nil {
			s.log.Info("hand-in refused", "assignment", a.ID, "reason", ref.key, "err", ref.err)
		}
		refused(probs[0].status, probs, form)
		return
	}
	// The body is read: a pupil closing the tab now must not undo the work.
	ctx = context.WithoutCancel(ctx)
	h, err := s.commitHandIn(ctx, a, pupil, device, owner, late, form.Files)
	if err != nil {
		if derr := s.dropUpload(ctx, owner); derr != nil {
			s.log.Warn("release hand-in not committed", "err", derr)
		}
		s.log.Error("commit hand-in", "assignment", a.ID, "err", err)
		refused(http.StatusInternalServerError, []*refusal{refuse(http.StatusInternalServerError, "err.server")}, form)
		return
	}
	s.log.Info("hand-in received", "assignment", a.ID, "handin", h.ID, "files", len(h.Files), "late", h.Late)
	s.notify(ctx, h)
	http.Redirect(w, r, receiptURL(h.Code), http.StatusSeeOther)
}

func receiptURL(code string) string { return "/devoirs/recu/" + url.PathEscape(code) }

// receiptView is one receipt.
type receiptView struct {
	Lang                            string
	Code, Title, Class, Pupil, Time string
	Late                            bool
	State, StateLabel               string
	Files                           []receiptFile
}

type receiptFile struct{ Name, Size string }

func (s *Service) receiptOf(r *http.Request, lang string, h HandIn) receiptView {
	v := receiptView{
		Lang: lang, Code: h.Code, Title: h.AssignmentTitle, Class: h.ClassCode, Pupil: h.Pupil,
		Time: formatDateTime(lang, s.localTime(h.Received)), Late: h.Late,
	}
	var states []DeliveryState
	for _, f := range h.Files {
		v.Files = append(v.Files, receiptFile{Name: f.Name, Size: formatSize(lang, f.Size)})
		states = append(states, s.deliveryState(r, f.Key))
	}
	v.State = pupilState(states)
	v.StateLabel = msg(lang, "state."+v.State)
	return v
}

func (s *Service) receipt(w http.ResponseWriter, r *http.Request) {
	code, ok := normalizeCode(r.PathValue("code"))
	if !ok {
		s.notFound(w, r)
		return
	}
	if displayCode(code) != r.PathValue("code") {
		http.Redirect(w, r, receiptURL(displayCode(code)), http.StatusMovedPermanently)
		return
	}
	hs, err := s.loadHandIns(r.Context(), "h.code = ?", code)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	if len(hs) == 0 {
		s.lookupMiss(w, r, r.PathValue("code"))
		return
	}
	d := s.newPage(r, "")
	v := s.receiptOf(r, d.Lang, hs[0])
	d.Title = d.T("receipt.title") + " " + v.Code
	d.Receipt = &v
	s.render(w, r, http.StatusOK, "receipt", d)
}

// lookup sends a code typed in the form to its receipt.
func (s *Service) lookup(w http.ResponseWriter, r *http.Request) {
	typed := strings.TrimSpace(r.URL.Query().Get("code"))
	code, ok := normalizeCode(typed)
	if !ok {
		s.lookupMiss(w, r, typed)
		return
	}
	http.Redirect(w, r, receiptURL(displayCode(code)), http.StatusSeeOther)
}

// lookupMiss answers a code that names no receipt, counting misses per
// address so that codes cannot be tried one after another.
func (s *Service) lookupMiss(w http.ResponseWriter, r *http.Request, typed string) {
	now := s.now()
	key := "ip:" + clientIP(r)
	limit := s.cfg.LoginFailures * 6
	d := s.newPage(r, "")
	d.Title = d.T("lookup.title")
	typed = displayName(typed)
	if len(typed) > 20 {
		typed = typed[:20]
	}
	d.Classes = &classesView{Code: typed}
	status := http.StatusNotFound
	if wait, blocked := s.lookups.blocked(key, limit, now); blocked {
		d.Errors = []string{d.Tf("lookup.limited", minutesCeil(wait))}
		status = http.StatusTooManyRequests
	} else {
		s.lookups.fail(key, now)
		d.Errors = []string{d.Tf("lookup.notfound", typed)}
	}
	classes, err := s.openClasses(r.Context())
	if err != nil {
		s.failed(w, r, err)
		return
	}
	for _, c := range classes {
		d.Classes.Classes = append(d.Classes.Classes, link{URL: classURL(c), Label: c})
	}
	s.render(w, r, status, "classes", d)
}

func minutesCeil(d time.Duration) int {
	return int((d + time.Minute - 1) / time.Minute)
}

type receiptsView struct{ Receipts []receiptView }

func (s *Service) receipts(w http.ResponseWriter, r *http.Request) {
	device := deviceID(w, r)
	hs, err := s.loadHandIns(r.Context(), "h.id IN (SELECT id FROM assignments_handins WHERE device = ? ORDER BY received_at DESC, id DESC LIMIT ?)",
		device, s.cfg.ReceiptsShown)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := s.newPage(r, "")
	d.Title = d.T("receipts.title")
	v := &receiptsView{}
	for _, h := range hs {
		v.Receipts = append(v.Receipts, s.receiptOf(r, d.Lang, h))
	}
	d.Receipts = v
	s.render(w, r, http.StatusOK, "receipts", d)
}
