package firmware

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		start, end string
		now        string
		in         bool
		next       string
	}{
		{"01:00", "05:00", "2025-03-10 02:00", true, "2025-03-10 02:00"},
		{"01:00", "05:00", "2025-03-10 05:00", false, "2025-03-11 01:00"},
		{"01:00", "05:00", "2025-03-10 00:59", false, "2025-03-10 01:00"},
		{"22:00", "05:00", "2025-03-10 23:30", true, "2025-03-10 23:30"},
		{"22:00", "05:00", "2025-03-10 04:59", true, "2025-03-10 04:59"},
		{"22:00", "05:00", "2025-03-10 12:00", false, "2025-03-10 22:00"},
		// 30 March 2025: clocks jump from 02:00 to 03:00 in Paris.
		{"02:30", "04:00", "2025-03-29 12:00", false, "2025-03-30 03:30"},
		{"01:00", "05:00", "2025-03-29 12:00", false, "2025-03-30 01:00"},
	}
	for _, tt := range tests {
		w, err := Config{WindowStart: tt.start, WindowEnd: tt.end, Location: "Europe/Paris"}.window()
		if err != nil {
			t.Fatal(err)
		}
		now := at(tt.now)
		if got := w.Contains(now); got != tt.in {
			t.Errorf("%s–%s Contains(%s) = %v", tt.start, tt.end, tt.now, got)
		}
		if got := w.Next(now); !got.Equal(at(tt.next)) {
			t.Errorf("%s–%s Next(%s) = %s, want %s", tt.start, tt.end, tt.now, got.In(paris), tt.next)
		}
		if !w.Contains(w.Next(now)) {
			t.Errorf("%s–%s Next(%s) is outside the window", tt.start, tt.end, tt.now)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Version: "1.0"}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"no version", func(c *Config) { c.Version = "" }, "version"},
		{"ftp repository", func(c *Config) { c.RepositoryURL = "ftp://x/" }, "repository_url"},
		{"bad window", func(c *Config) { c.WindowStart = "25:00" }, "window_start"},
		{"empty window", func(c *Config) { c.WindowEnd = "01:00" }, "window_start"},
		{"bad zone", func(c *Config) { c.Location = "Mars/Olympus" }, "location"},
		{"bad channel", func(c *Config) { c.Channel = "../x" }, "channel"},
		{"small checkpoints", func(c *Config) { c.CheckpointBytes = 10 }, "checkpoint_bytes"},
		{"max wait below timeout", func(c *Config) { c.HealthMaxWait = time.Second }, "health_max_wait"},
		{"window shorter than a trial", func(c *Config) { c.WindowStart, c.WindowEnd = "01:00", "01:20" }, "must exceed"},
	}
	for _, tt := range tests {
		c := ok
		tt.edit(&c)
		err := c.WithDefaults().Validate()
		if tt.field == "" && err != nil || tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)) {
			t.Errorf("%s: Validate() = %v, want field %q", tt.name, err, tt.field)
		}
	}
}

func TestServeAppliesAndResumes(t *testing.T) {
	repo := newTestRepo(t)
	repo.sign(t, systemdBoot, "1.1", 100<<10)
	url := repo.serve(t)
	b := newBox(t, systemdBoot, repo.dir+"/metadata/1.root.json")
	e := engineFor(t, b, engineOpts{repoURL: url, cfg: func(c *Config) { c.CheckInterval = time.Hour }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if asked, _ := b.rebootAsked(); asked {
			break
		}
		if time.Now().After(deadline) {
			st, _ := e.Status(context.Background())
			t.Fatalf("Serve never rebooted into the update: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestImports: firmware imports no other component of preau.
func TestImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-test", "-tags", "sqlite_fts5", "preau/firmware/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v %s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "preau/") && !strings.HasPrefix(p, "preau/firmware") {
			t.Errorf("firmware depends on %s: components never import each other (appliance wires them)", p)
		}
	}
}

// TestDurableRestoresSynchronous: the engine's FULL transactions leave the
// shared handle's connections as they were.
func TestDurableRestoresSynchronous(t *testing.T) {
	db, err := openDB(t.TempDir() + "/x.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	e := &Engine{db: db, clock: realClock{}}
	r := row{State: StateIdle, Settled: true}
	if err := e.save(context.Background(), &r, nil); err != nil {
		t.Fatal(err)
	}
	var got int
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil || got != 1 {
		t.Fatalf("synchronous after save = %d, %v; want 1 (NORMAL)", got, err)
	}
}
