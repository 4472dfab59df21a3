package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" when valid
	}{
		{"defaults", Config{}, ""},
		{"workers", Config{Workers: -1}, "Workers"},
		{"too many workers", Config{Workers: 100}, "Workers"},
		{"retry max below min", Config{RetryMin: time.Minute, RetryMax: time.Second}, "RetryMax"},
		{"negative retry min", Config{RetryMin: -time.Second}, "RetryMin"},
		{"recoveries", Config{MaxRecoveries: -2}, "MaxRecoveries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestEnqueueIsIdempotentOnKey(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	ctx := context.Background()
	base := e.item("k1", "CM2-A/Rédaction/Léa M. K7Q/photo.jpg", []byte("une photo"))
	if err := e.ob.Enqueue(ctx, base); err != nil {
		t.Fatalf("first Enqueue() = %v", err)
	}
	other := e.item("k9", "x", []byte("autre contenu"))
	tests := []struct {
		name string
		it   func() Item
		want error // nil: accepted
		any  bool  // any error is fine (validation)
	}{
		{"same item again", func() Item { return base }, nil, false},
		{"same item, other priority", func() Item { it := base; it.Priority = 5; return it }, nil, false},
		{"same key, other content", func() Item {
			it := base
			it.BlobHash, it.SHA256, it.Size = other.BlobHash, other.SHA256, other.Size
			return it
		}, ErrKeyConflict, false},
		{"same key, other path", func() Item { it := base; it.RemotePath = "ailleurs.jpg"; return it }, ErrKeyConflict, false},
		{"other key, same path", func() Item { it := other; it.RemotePath = base.RemotePath; return it }, ErrPathTaken, false},
		{"empty key", func() Item { it := other; it.Key = ""; return it }, nil, true},
		{"absolute path", func() Item { it := other; it.RemotePath = "/etc/x"; return it }, nil, true},
		{"dot-dot path", func() Item { it := other; it.RemotePath = "a/../b"; return it }, nil, true},
		{"temporary name", func() Item { it := other; it.RemotePath = "a/.preau-x.upload"; return it }, nil, true},
		{"bad hash", func() Item { it := other; it.SHA256 = "ABC"; return it }, nil, true},
		{"no destination", func() Item { it := other; it.Destination = ""; return it }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.ob.Enqueue(ctx, tt.it())
			switch {
			case tt.any:
				if err == nil {
					t.Fatal("Enqueue() = nil, want an error")
				}
			case tt.want == nil && err != nil:
				t.Fatalf("Enqueue() = %v, want nil", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Enqueue() = %v, want %v", err, tt.want)
			}
		})
	}
	st, err := e.ob.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Counts[StateQueued]; got != 1 {
		t.Fatalf("queued items = %d, want 1", got)
	}
}

func TestDeliverEachItemOnce(t *testing.T) {
	e := newEnv(t, Config{Workers: 3}, nil)
	ctx := context.Background()
	var progressMu sync.Mutex
	last := map[string]Progress{}
	e.ob.OnProgress(func(p Progress) {
		progressMu.Lock()
		last[p.Key] = p
		progressMu.Unlock()
	})
	e.serve()
	var keys []string
	for i := range 12 {
		key := fmt.Sprintf("hand-in-%d", i)
		keys = append(keys, key)
		it := e.item(key, fmt.Sprintf("CM1/Devoir/%02d.pdf", i), bytes.Repeat([]byte{byte(i)}, 1000+i))
		it.Priority = i % 3
		if err := e.ob.Enqueue(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		st := e.waitState(k, StateDelivered)
		if !st.Verified || st.LastError != "" || st.Attempts != 1 {
			t.Errorf("%s: verified %v, error %q, attempts %d; want verified, no error, 1 attempt", k, st.Verified, st.LastError, st.Attempts)
		}
		if fr, en := st.Label(); fr != "envoyé" || en != "sent" {
			t.Errorf("%s: Label() = %q, %q", k, fr, en)
		}
	}
	for p, n := range e.mem.snapshot().uploads {
		if n != 1 {
			t.Errorf("%s uploaded %d times, want 1", p, n)
		}
	}
	if n := len(e.mem.snapshot().files); n != 12 {
		t.Errorf("destination has %d files, want 12", n)
	}
	progressMu.Lock()
	for _, k := range keys {
		if p := last[k]; p.Sent != p.Size || p.Size == 0 {
			t.Errorf("last progress of %s = %+v, want Sent = Size", k, p)
		}
	}
	progressMu.Unlock()
	st, _ := e.ob.Status(ctx)
	if st.Counts[StateDelivered] != 12 || len(st.Items) != 0 {
		t.Errorf("Status() = %v with %d items, want 12 delivered and no pending item", st.Counts, len(st.Items))
	}
	// Enqueuing a delivered item again changes nothing.
	if err := e.ob.Enqueue(ctx, e.item("hand-in-3", "CM1/Devoir/03.pdf", bytes.Repeat([]byte{3}, 1003))); err != nil {
		t.Fatal(err)
	}
	if st := e.waitState("hand-in-3", StateDelivered); st.Attempts != 1 {
		t.Errorf("re-enqueued delivered item: attempts %d, want 1", st.Attempts)
	}
}

// TestCheckBeforeSending: an item that may have been sent before (a
// retry) is looked for at the destination before any byte is sent; a first
// attempt relies on Upload never overwriting, and is inspected after. In
// both cases a file already there is never overwritten.
func TestCheckBeforeSending(t *testing.T) {
	body := []byte("contenu du devoir")
	tests := []struct {
		name       string
		remote     []byte // nil: absent
		wantState  State
		wantUpload int // on a retry; a first attempt uploads once
		wantMsg    string
	}{
		{"absent: sent", nil, StateDelivered, 1, ""},
		{"same file: delivered without sending", body, StateDelivered, 0, ""},
		{"other file same size: never overwritten", []byte("CONTENU DU DEVOIR"), StateFailed, 0, "renommez"},
		{"other size: never overwritten", []byte("court"), StateFailed, 0, "ne l'écrase jamais"},
	}
	for _, retry := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/retry=%v", tt.name, retry), func(t *testing.T) {
				e := newEnv(t, Config{}, nil)
				if tt.remote != nil {
					e.mem.files["d/f.txt"] = tt.remote
				}
				if err := e.ob.Enqueue(context.Background(), e.item("k", "d/f.txt", body)); err != nil {
					t.Fatal(err)
				}
				want := 1
				if retry {
					// As after a failed attempt.
					if _, err := e.db.Exec(`UPDATE outbox_items SET attempts = 1 WHERE key = 'k'`); err != nil {
						t.Fatal(err)
					}
					want = tt.wantUpload
				}
				e.serve()
				st := e.waitState("k", StateDelivered, StateFailed)
				if st.State != tt.wantState || e.mem.snapshot().uploads["d/f.txt"] != want {
					t.Fatalf("state %s after %d uploads, want %s after %d", st.State, e.mem.snapshot().uploads["d/f.txt"], tt.wantState, want)
				}
				if !strings.Contains(st.LastError, tt.wantMsg) {
					t.Fatalf("last error %q, want it to contain %q", st.LastError, tt.wantMsg)
				}
				if tt.wantState == StateFailed && !bytes.Equal(e.mem.snapshot().files["d/f.txt"], tt.remote) {
					t.Fatal("the remote file was changed")
				}
			})
		}
	}
}

func TestTransientErrorsAreRetried(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	e.mem.beforeUpload = func(p string, n int) error {
		if n <= 2 {
			return &testErr{msg: "serveur indisponible"}
		}
		return nil
	}
	e.serve()
	if err := e.ob.Enqueue(context.Background(), e.item("k", "a.txt", []byte("abc"))); err != nil {
		t.Fatal(err)
	}
	st := e.waitState("k", StateDelivered)
	if st.Attempts != 3 || st.LastError != "" {
		t.Fatalf("attempts %d, last error %q; want 3 and none", st.Attempts, st.LastError)
	}
	if e.mem.snapshot().cleanups["a.txt"] != 1 {
		t.Fatalf("Cleanup called %d times, want 1 after a retried delivery", e.mem.snapshot().cleanups["a.txt"])
	}
}

func TestFailureIsRecorded(t *testing.T) {
	now := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		err       error
		wantState State
		wantFR    string
		minWait   time.Duration
		maxWait   time.Duration
	}{
		{"permanent", &testErr{msg: "mot de passe refusé", permanent: true}, StateFailed, "erreur de test : mot de passe refusé", 0, 0},
		{"retry-after honoured", &testErr{msg: "trop de requêtes", retryAfter: 2 * time.Hour}, StateQueued, "erreur de test", 2 * time.Hour, 2 * time.Hour},
		{"retry-after capped", &testErr{msg: "revenez demain", retryAfter: 72 * time.Hour}, StateQueued, "revenez demain", 24 * time.Hour, 24 * time.Hour},
		{"network error", fmt.Errorf("put: %w", os.ErrDeadlineExceeded), StateQueued, "connexion au serveur", time.Minute / 2, time.Minute},
		{"unknown error", errors.New("boom"), StateQueued, "erreur temporaire", time.Minute / 2, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{RetryMin: time.Minute, RetryMax: time.Hour, Now: func() time.Time { return now }}, nil)
			e.mem.beforeUpload = func(string, int) error { return tt.err }
			e.serve()
			if err := e.ob.Enqueue(context.Background(), e.item("k", "a.txt", []byte("abc"))); err != nil {
				t.Fatal(err)
			}
			var st ItemStatus
			for st.LastError == "" {
				st = e.waitState("k", tt.wantState)
			}
			if !strings.Contains(st.LastError, tt.wantFR) || st.LastErrorEN == "" {
				t.Errorf("last error %q / %q, want French containing %q and English", st.LastError, st.LastErrorEN, tt.wantFR)
			}
			if tt.wantState == StateQueued {
				if wait := st.NextAttempt.Sub(now); wait < tt.minWait || wait > tt.maxWait {
					t.Errorf("next attempt in %v, want %v to %v", wait, tt.minWait, tt.maxWait)
				}
			}
		})
	}
}

func TestRetryAfterPermanentFailure(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	var mu sync.Mutex
	fixed := false
	e.mem.beforeUpload = func(string, int) error {
		mu.Lock()
		defer mu.Unlock()
		if !fixed {
			return &testErr{msg: "quota plein", permanent: true}
		}
		return nil
	}
	e.serve()
	ctx := context.Background()
	if err := e.ob.Enqueue(ctx, e.item("k", "a.txt", []byte("abc"))); err != nil {
		t.Fatal(err)
	}
	st := e.waitState("k", StateFailed)
	if fr, _ := st.Label(); !strings.Contains(fr, "quota plein") {
		t.Errorf("Label() = %q, want the reason", fr)
	}
	mu.Lock()
	fixed = true
	mu.Unlock()
	if err := e.ob.Retry(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if st := e.waitState("k", StateDelivered); st.Attempts != 1 {
		t.Errorf("attempts after Retry = %d, want 1", st.Attempts)
	}
	if err := e.ob.Retry(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Retry(unknown) = %v, want ErrNotFound", err)
	}
}

func TestBackoff(t *testing.T) {
	e := newEnv(t, Config{RetryMin: 10 * time.Second, RetryMax: 10 * time.Minute, MaxRetryAfter: time.Hour}, nil)
	tests := []struct {
		attempts   int
		retryAfter time.Duration
		min, max   time.Duration
	}{
		{1, 0, 5 * time.Second, 10 * time.Second},
		{2, 0, 10 * time.Second, 20 * time.Second},
		{4, 0, 40 * time.Second, 80 * time.Second},
		{30, 0, 5 * time.Minute, 10 * time.Minute},
		{1, 3 * time.Minute, 3 * time.Minute, 3 * time.Minute},
		{1, 5 * time.Hour, time.Hour, time.Hour},
	}
	for _, tt := range tests {
		for range 50 {
			if got := e.ob.backoff(tt.attempts, tt.retryAfter); got < tt.min || got > tt.max {
				t.Fatalf("backoff(%d, %v) = %v, want %v to %v", tt.attempts, tt.retryAfter, got, tt.min, tt.max)
			}
		}
	}
}

// TestRestartChecksFirst plays the state a kill -9 leaves: items in
// sending or verifying. They are checked at the destination before any
// byte is sent again.
func TestRestartChecksFirst(t *testing.T) {
	e := newEnv(t, Config{MaxRecoveries: 3}, nil)
	ctx := context.Background()
	items := []struct {
		key, state string
		remote     bool
		recoveries int
		want       State
		uploads    int
	}{
		{"sent-before-crash", "sending", true, 0, StateDelivered, 0},
		{"moved-before-crash", "verifying", true, 0, StateDelivered, 0},
		{"cut-mid-body", "sending", false, 0, StateDelivered, 1},
		{"crash-loop", "sending", false, 3, StateFailed, 0},
	}
	for i, it := range items {
		body := []byte(strings.Repeat(it.key, 10))
		item := e.item(it.key, fmt.Sprintf("r/%d.bin", i), body)
		if err := e.ob.Enqueue(ctx, item); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(`UPDATE outbox_items SET state = ?, attempts = 1, recoveries = ? WHERE key = ?`,
			it.state, it.recoveries, it.key); err != nil {
			t.Fatal(err)
		}
		if it.remote {
			e.mem.files[item.RemotePath] = body
		}
	}
	e.serve()
	for i, it := range items {
		st := e.waitState(it.key, it.want)
		p := fmt.Sprintf("r/%d.bin", i)
		if e.mem.snapshot().uploads[p] != it.uploads || st.Recoveries != it.recoveries+1 {
			t.Errorf("%s: %d uploads, %d recoveries; want %d and %d", it.key, e.mem.snapshot().uploads[p], st.Recoveries, it.uploads, it.recoveries+1)
		}
		if it.want == StateDelivered && e.mem.snapshot().cleanups[p] != 1 {
			t.Errorf("%s: Cleanup called %d times, want 1", it.key, e.mem.snapshot().cleanups[p])
		}
		if it.want == StateFailed && !strings.Contains(st.LastError, "interrompu") {
			t.Errorf("%s: last error %q", it.key, st.LastError)
		}
	}
}

func TestUninspectableDestination(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	e.mem.noStat = true
	e.serve()
	if err := e.ob.Enqueue(context.Background(), e.item("k", "depot/a.pdf", []byte("%PDF-1.4"))); err != nil {
		t.Fatal(err)
	}
	st := e.waitState("k", StateDelivered)
	if st.Verified || e.mem.snapshot().uploads["depot/a.pdf"] != 1 {
		t.Fatalf("verified %v after %d uploads, want unverified after 1", st.Verified, e.mem.snapshot().uploads["depot/a.pdf"])
	}
}

func TestUnknownDestinationAndMissingBlob(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	e.serve()
	ctx := context.Background()
	it := e.item("lost", "a.txt", []byte("abc"))
	it.Destination = "ancien-nuage"
	if err := e.ob.Enqueue(ctx, it); err != nil {
		t.Fatal(err)
	}
	gone := e.item("gone", "b.txt", []byte("plus là"))
	os.Remove(e.blobs.dir + "/" + gone.BlobHash)
	if err := e.ob.Enqueue(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if st := e.waitState("lost", StateFailed); !strings.Contains(st.LastError, "destination inconnue") {
		t.Errorf("unknown destination: %q", st.LastError)
	}
	if st := e.waitState("gone", StateFailed); !strings.Contains(st.LastError, "a disparu") {
		t.Errorf("missing blob: %q", st.LastError)
	}
}

type chanGate chan struct{}

func (g chanGate) Wait(ctx context.Context) error {
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestGateIsWaitedBeforeEachSend(t *testing.T) {
	gate := make(chanGate)
	e := newEnv(t, Config{Workers: 1}, gate)
	e.serve()
	ctx := context.Background()
	// Sent by priority, then in the order they came.
	items := []struct {
		key      string
		priority int
	}{{"old-low", 0}, {"new-low", 0}, {"urgent", 5}}
	for i, it := range items {
		item := e.item(it.key, fmt.Sprintf("%d.txt", i), []byte{byte(i)})
		item.Priority = it.priority
		item.CreatedAt = time.Now().Add(time.Duration(i) * time.Second)
		if err := e.ob.Enqueue(ctx, item); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if st, _ := e.ob.Status(ctx); st.Counts[StateQueued] != 3 {
		t.Fatalf("with the gate closed: %v, want 3 queued", st.Counts)
	}
	for _, key := range []string{"urgent", "old-low", "new-low"} {
		gate <- struct{}{}
		e.waitState(key, StateDelivered)
	}
}

func TestStopPutsItemBack(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	started, release := make(chan struct{}), make(chan struct{})
	e.mem.beforeUpload = func(string, int) error {
		close(started)
		<-release
		return context.Canceled
	}
	stop := e.serve()
	if err := e.ob.Enqueue(context.Background(), e.item("k", "a.txt", []byte("abc"))); err != nil {
		t.Fatal(err)
	}
	<-started
	st, err := e.ob.Status(context.Background())
	if err != nil || st.Counts[StateSending] != 1 || len(st.InFlight) != 1 || st.InFlight[0].Key != "k" {
		t.Errorf("Status() while sending = %+v, %v; want k sending and in flight", st, err)
	}
	if fr, _ := st.Items[0].Label(); fr != "reçu, envoi en cours" {
		t.Errorf("Label() while sending = %q", fr)
	}
	// The upload ends (cancelled) only after Serve was told to stop.
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	stop()
	it, err := e.ob.Get(context.Background(), "k")
	if err != nil || it.State != StateQueued || it.LastError != "" {
		t.Fatalf("after stop: %s %q %v, want queued with no error", it.State, it.LastError, err)
	}
}

// TestEnqueueWakesIdleWorkers: an idle outbox sleeps on its wake channel
// (no polling) and Enqueue starts the send at once.
func TestEnqueueWakesIdleWorkers(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	e.serve()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := e.ob.Enqueue(context.Background(), e.item("k", "a.txt", []byte("abc"))); err != nil {
		t.Fatal(err)
	}
	e.waitState("k", StateDelivered)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("delivered %v after Enqueue, want it at once", d)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	e.serve()
	if err := e.ob.Enqueue(context.Background(), e.item("k", "a.txt", []byte("abcdef"))); err != nil {
		t.Fatal(err)
	}
	e.waitState("k", StateDelivered)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e.ob.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	for _, mf := range mfs {
		if err := writeText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		"preau_outbox_delivered_bytes_total 6\n",
		`preau_outbox_delivered_total{how="sent"} 1` + "\n",
		`preau_outbox_items{state="delivered"} 1` + "\n",
		`preau_outbox_items{state="queued"} 0` + "\n",
		`preau_outbox_items{state="failed-permanent"} 0` + "\n",
		"preau_outbox_database_up 1\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, text.String())
		}
	}
	// The exposition passes promtool, the real peer of our metrics.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PREAU_REQUIRE_PEERS") == "1" {
			t.Fatal("promtool is missing (Debian package prometheus)")
		}
		t.Skip("promtool is missing (Debian package prometheus)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &text
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n%s", err, out, text.String())
	}
}

func writeText(w *bytes.Buffer, mf *dto.MetricFamily) error {
	_, err := expfmt.MetricFamilyToText(w, mf)
	return err
}

// placer is a memConnector that says when its upload put the body in
// place (a WebDAV MOVE answered 201).
type placer struct{ *memConnector }

func (p placer) Connector(string) (Connector, error) { return p, nil }

func (p placer) UploadPlaced(ctx context.Context, path string, body io.ReaderAt, size int64, sum string, progress func(int64)) (bool, error) {
	p.mu.Lock()
	_, existed := p.files[path]
	p.mu.Unlock()
	if err := p.Upload(ctx, path, body, size, sum, progress); err != nil {
		return false, err
	}
	return !existed, nil
}

// TestPlacedIsNotLookedAtAgain: a first attempt whose connector placed
// the checked body costs no round trip to the destination but the upload;
// one that found a file there is inspected, and a different file fails.
func TestPlacedIsNotLookedAtAgain(t *testing.T) {
	for _, tt := range []struct {
		name   string
		remote []byte
		want   State
		stats  int
	}{
		{"placed", nil, StateDelivered, 0},
		{"name taken by another file", []byte("autre"), StateFailed, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvWith(t, Config{}, nil, func(m *memConnector) Connectors { return placer{m} })
			var stats atomic.Int32
			e.mem.beforeStat = func(string) error { stats.Add(1); return nil }
			if tt.remote != nil {
				e.mem.files["d/f.txt"] = tt.remote
			}
			if err := e.ob.Enqueue(context.Background(), e.item("k", "d/f.txt", []byte("le devoir"))); err != nil {
				t.Fatal(err)
			}
			e.serve()
			st := e.waitState("k", StateDelivered, StateFailed)
			if st.State != tt.want || int(stats.Load()) != tt.stats {
				t.Fatalf("state %s after %d looks at the destination, want %s after %d", st.State, stats.Load(), tt.want, tt.stats)
			}
			if tt.want == StateDelivered && !st.Verified {
				t.Error("a placed item must count as verified")
			}
		})
	}
}
