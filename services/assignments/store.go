package assignments

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// assignment is one row of the assignments table.
type assignment struct {
	ID           int64
	TeacherID    int64
	Teacher      string // login
	Title        string
	Class        string
	Instructions string
	Due          time.Time
	Destination  string
	Kinds        []string
	MaxFileBytes int64
	RefuseLate   bool
	Created      time.Time
	Closed       time.Time // zero while open
	HandIns      int       // filled by listings
}

func (a assignment) open() bool { return a.Closed.IsZero() }

const assignmentColumns = `a.id, a.teacher, t.login, a.title, a.class_code, a.instructions, a.due_at, a.destination,
	a.kinds, a.max_file_bytes, a.refuse_late, a.created_at, a.closed_at,
	(SELECT COUNT(*) FROM assignments_handins h WHERE h.assignment = a.id)`

type scanner interface{ Scan(...any) error }

func scanAssignment(sc scanner) (assignment, error) {
	var a assignment
	var due, created int64
	var closed sql.NullInt64
	var kinds string
	if err := sc.Scan(&a.ID, &a.TeacherID, &a.Teacher, &a.Title, &a.Class, &a.Instructions, &due, &a.Destination,
		&kinds, &a.MaxFileBytes, &a.RefuseLate, &created, &closed, &a.HandIns); err != nil {
		return assignment{}, err
	}
	a.Due, a.Created = time.UnixMilli(due), time.UnixMilli(created)
	if closed.Valid {
		a.Closed = time.UnixMilli(closed.Int64)
	}
	a.Kinds = strings.Fields(kinds)
	return a, nil
}

func (s *Service) queryAssignments(ctx context.Context, where string, args ...any) ([]assignment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+assignmentColumns+` FROM assignments a
		JOIN assignments_teachers t ON t.id = a.teacher WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []assignment
	for rows.Next() {
		a, err := scanAssignment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// errNoAssignment means no such assignment (or not the teacher's).
var errNoAssignment = errors.New("no such assignment")

func (s *Service) assignmentByID(ctx context.Context, id int64) (assignment, error) {
	as, err := s.queryAssignments(ctx, "a.id = ?", id)
	if err != nil {
		return assignment{}, fmt.Errorf("get assignment %d: %w", id, err)
	}
	if len(as) == 0 {
		return assignment{}, fmt.Errorf("get assignment %d: %w", id, errNoAssignment)
	}
	return as[0], nil
}

func (s *Service) createAssignment(ctx context.Context, a assignment) (int64, error) {
	refuse := 0
	if a.RefuseLate {
		refuse = 1
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO assignments (teacher, title, class_code, instructions, due_at, destination,
		kinds, max_file_bytes, refuse_late, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.TeacherID, a.Title, a.Class, a.Instructions, a.Due.UnixMilli(), a.Destination,
		strings.Join(a.Kinds, " "), a.MaxFileBytes, refuse, s.now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("create assignment: %w", err)
	}
	return res.LastInsertId()
}

func (s *Service) closeAssignment(ctx context.Context, teacherID, id int64) error {
	_, err := s.db.ExecContext(ctx, "UPDATE assignments SET closed_at = ? WHERE id = ? AND teacher = ? AND closed_at IS NULL",
		s.now().UnixMilli(), id, teacherID)
	if err != nil {
		return fmt.Errorf("close assignment %d: %w", id, err)
	}
	return nil
}

// openClasses lists the class codes with at least one open assignment.
func (s *Service) openClasses(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT class_code FROM assignments WHERE closed_at IS NULL ORDER BY class_code")
	if err != nil {
		return nil, fmt.Errorf("list classes: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("list classes: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Receipt codes: six characters from an alphabet without 0/O, 1/I/L, so
// that a child can copy them; shown as "K7Q-4PD", stored without the dash.
// 31⁶ ≈ 887 million codes; lookups that miss are rate-limited.
const codeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

func newCode() string {
	b := make([]byte, 6)
	var r [1]byte
	for i := range b {
		for {
			rand.Read(r[:])
			if int(r[0]) < 256/len(codeAlphabet)*len(codeAlphabet) { // no modulo bias
				b[i] = codeAlphabet[int(r[0])%len(codeAlphabet)]
				break
			}
		}
	}
	return string(b)
}

// displayCode writes a stored code as "K7Q-4PD".
func displayCode(c string) string {
	if len(c) != 6 {
		return c
	}
	return c[:3] + "-" + c[3:]
}

// normalizeCode turns what a pupil typed into a stored code; ok is false
// when it cannot be one.
func normalizeCode(in string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(in) {
		switch {
		case r == '-' || r == ' ' || r == '.' || r == '\t':
			continue
		case r < 128 && strings.IndexByte(codeAlphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return "", false
		}
		if b.Len() > 6 {
			return "", false
		}
	}
	if b.Len() != 6 {
		return "", false
	}
	return b.String(), true
}

// receivedFile is a file whose blob is stored, waiting for the commit.
type receivedFile struct {
	Name, MediaType, SHA256 string
	Size                    int64
}

// commitHandIn records a hand-in whose blobs are all durable, in one
// transaction that also forgets its upload row. The transaction runs on a
// connection with synchronous=FULL so that the receipt shown next survives
// a power cut, not only a crash.
func (s *Service) commitHandIn(ctx context.Context, a assignment, pupil, device, owner string, late bool, files []receivedFile) (HandIn, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return HandIn{}, fmt.Errorf("commit hand-in: %w", err)
	}
	defer conn.Close()
	var level int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil {
		return HandIn{}, fmt.Errorf("commit hand-in: %w", err)
	}
	if level < 2 {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
			return HandIn{}, fmt.Errorf("commit hand-in: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = "+strconv.Itoa(level))
	}
	now := s.now()
	h := HandIn{
		AssignmentID: a.ID, AssignmentTitle: a.Title, ClassCode: a.Class, Destination: a.Destination,
		Teacher: a.Teacher, Pupil: pupil, Received: now, Late: late,
	}
	for attempt := 0; ; attempt++ {
		code := newCode()
		err := s.insertHandIn(ctx, conn, &h, code, device, owner, files)
		if err == nil {
			break
		}
		if !isUniqueViolation(err) || attempt == 5 {
			return HandIn{}, fmt.Errorf("commit hand-in: %w", err)
		}
	}
	return h, nil
}

func (s *Service) insertHandIn(ctx context.Context, conn *sql.Conn, h *HandIn, code, device, owner string, files []receivedFile) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	lateInt := 0
	if h.Late {
		lateInt = 1
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO assignments_handins (assignment, code, pupil, received_at, late, device, blob_owner)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, h.AssignmentID, code, h.Pupil, h.Received.UnixMilli(), lateInt, device, owner)
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	h.ID, h.Code, h.Files = id, displayCode(code), nil
	for i, f := range files {
		res, err := tx.ExecContext(ctx, `INSERT INTO assignments_files (handin, position, name, media_type, size, sha256)
			VALUES (?, ?, ?, ?, ?, ?)`, id, i, f.Name, f.MediaType, f.Size, f.SHA256)
		if err != nil {
			return err
		}
		fid, err := res.LastInsertId()
		if err != nil {
			return err
		}
		h.Files = append(h.Files, s.handInFile(*h, fid, f))
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM assignments_uploads WHERE blob_owner = ?", owner); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Service) handInFile(h HandIn, id int64, f receivedFile) HandInFile {
	folder := pathSegment(h.Pupil + " " + h.Code)
	return HandInFile{
		ID: id, Key: FileKey(id), Name: f.Name, MediaType: f.MediaType, Size: f.Size, SHA256: f.SHA256,
		Path: pathSegment(h.ClassCode) + "/" + pathSegment(h.AssignmentTitle+" ("+strconv.FormatInt(h.AssignmentID, 10)+")") + "/" + folder + "/" + f.Name,
	}
}

// startUpload records the blob owner of a hand-in being received, before
// its first blob is written.
func (s *Service) startUpload(ctx context.Context, owner string) error {
	if _, err := s.db.ExecContext(ctx, "INSERT INTO assignments_uploads (blob_owner, started_at) VALUES (?, ?)",
		owner, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("start upload: %w", err)
	}
	return nil
}

// loadHandIns returns hand-ins with their files, newest first. cond is a
// condition on h (assignments_handins).
func (s *Service) loadHandIns(ctx context.Context, cond string, args ...any) ([]HandIn, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT h.id, h.code, h.pupil, h.received_at, h.late, a.id, a.title, a.class_code,
		a.destination, t.login, f.id, f.name, f.media_type, f.size, f.sha256
		FROM assignments_handins h JOIN assignments a ON a.id = h.assignment
		JOIN assignments_teachers t ON t.id = a.teacher
		LEFT JOIN assignments_files f ON f.handin = h.id
		WHERE `+cond+` ORDER BY h.received_at DESC, h.id DESC, f.position`, args...)
	if err != nil {
		return nil, fmt.Errorf("load hand-ins: %w", err)
	}
	defer rows.Close()
	var out []HandIn
	for rows.Next() {
		var h HandIn
		var received int64
		var fid, fsize sql.NullInt64
		var fname, ftype, fhash sql.NullString
		if err := rows.Scan(&h.ID, &h.Code, &h.Pupil, &received, &h.Late, &h.AssignmentID, &h.AssignmentTitle, &h.ClassCode,
			&h.Destination, &h.Teacher, &fid, &fname, &ftype, &fsize, &fhash); err != nil {
			return nil, fmt.Errorf("load hand-ins: %w", err)
		}
		h.Code, h.Received = displayCode(h.Code), time.UnixMilli(received)
		if n := len(out); n == 0 || out[n-1].ID != h.ID {
			out = append(out, h)
		}
		if fid.Valid {
			last := &out[len(out)-1]
			last.Files = append(last.Files, s.handInFile(*last, fid.Int64, receivedFile{
				Name: fname.String, MediaType: ftype.String, Size: fsize.Int64, SHA256: fhash.String}))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load hand-ins: %w", err)
	}
	return out, nil
}

// PendingHandIns returns the committed hand-ins whose OnHandIn call has not
// returned (a crash came in between), oldest first. Serve hands them to
// OnHandIn again; appliance may also call it (enqueueing is idempotent).
func (s *Service) PendingHandIns(ctx context.Context) ([]HandIn, error) {
	hs, err := s.loadHandIns(ctx, "h.notified_at IS NULL")
	if err != nil {
		return nil, fmt.Errorf("pending hand-ins: %w", err)
	}
	for i, j := 0, len(hs)-1; i < j; i, j = i+1, j-1 {
		hs[i], hs[j] = hs[j], hs[i]
	}
	return hs, nil
}

// fileForTeacher returns a hand-in file if it belongs to one of the
// teacher's assignments.
func (s *Service) fileForTeacher(ctx context.Context, teacherID, fileID int64) (receivedFile, error) {
	var f receivedFile
	err := s.db.QueryRowContext(ctx, `SELECT f.name, f.media_type, f.size, f.sha256 FROM assignments_files f
		JOIN assignments_handins h ON h.id = f.handin JOIN assignments a ON a.id = h.assignment
		WHERE f.id = ? AND a.teacher = ?`, fileID, teacherID).Scan(&f.Name, &f.MediaType, &f.Size, &f.SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return receivedFile{}, fmt.Errorf("get file %d: %w", fileID, errNoAssignment)
	}
	if err != nil {
		return receivedFile{}, fmt.Errorf("get file %d: %w", fileID, err)
	}
	return f, nil
}
