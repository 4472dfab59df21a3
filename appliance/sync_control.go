package appliance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"preau/services/content"
	"preau/sync/budget"
	"preau/sync/outbox"
	"preau/sync/usb"
)

// SyncStatus is the JSON of `preau sync status --json`.
type SyncStatus struct {
	Budget budget.Status `json:"budget"`
	Outbox outbox.Status `json:"outbox"`
}

func (b *Box) syncControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/sync/status", func(w http.ResponseWriter, r *http.Request) {
		ob, err := b.handin.outbox.Status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(SyncStatus{Budget: b.handin.sched.Status(), Outbox: ob})
	})
	mux.HandleFunc("POST /v1/sync/now", func(w http.ResponseWriter, r *http.Request) {
		b.handin.sched.SendNow()
		if err := b.handin.outbox.RetryNow(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		b.log.Info("envoi immédiat demandé (preau sync now)")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/teachers", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Login, Name, Password string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
			http.Error(w, "want {\"login\", \"name\", \"password\"}", http.StatusBadRequest)
			return
		}
		// A console account (role enseignant) and the hand-in pages' own.
		if err := b.addTeacher(r.Context(), req.Login, req.Name, req.Password); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(controlError{FR: err.Error(), EN: englishText(err)})
			return
		}
		b.audit(r, "teacher-add", strings.ToLower(strings.TrimSpace(req.Login))+" ("+req.Name+")")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/export", b.serveExport)
}

func englishText(err error) string {
	if e, ok := err.(interface{ English() string }); ok {
		return e.English()
	}
	return err.Error()
}

// exportEvent is one line of POST /v1/export's answer.
type exportEvent struct {
	Progress *content.Progress `json:"progress,omitempty"`
	Bundle   *usb.Bundle       `json:"bundle,omitempty"`
	Error    *controlError     `json:"error,omitempty"`
}

// serveExport writes the items not yet delivered to a bundle in the
// folder asked for (a USB key). They stay queued: if the link comes back,
// the outbox checks the destination before sending under the same names.
func (b *Box) serveExport(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Dir string `json:"dir"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || !filepath.IsAbs(req.Dir) {
		http.Error(w, "want {\"dir\": \"/absolute/path\"}", http.StatusBadRequest)
		return
	}
	send := ndjsonStream[exportEvent](w)
	st, err := b.handin.outbox.Status(r.Context())
	if err != nil {
		send(exportEvent{Error: &controlError{FR: err.Error(), EN: err.Error()}})
		return
	}
	var items []usb.Item
	for _, it := range st.Items {
		if it.State == outbox.StateDelivered {
			continue
		}
		items = append(items, usb.Item{Key: it.Key, Destination: it.Destination, RemotePath: it.RemotePath,
			Size: it.Size, SHA256: it.SHA256, MediaType: it.MediaType})
	}
	bundle, err := b.handin.courier.Export(r.Context(), req.Dir, items, b.content.OpenBlob, func(done, total int64) {
		send(exportEvent{Progress: &content.Progress{Phase: "export", BytesDone: done, BytesTotal: total}})
	})
	if err != nil {
		b.log.Warn("export refusé", "dir", req.Dir, "err", err)
		send(exportEvent{Error: &controlError{FR: err.Error(), EN: englishText(err)}})
		return
	}
	b.log.Info("export écrit", "dir", bundle.Dir, "files", bundle.Files, "bytes", bundle.Bytes)
	send(exportEvent{Bundle: &bundle})
}

// post sends a JSON body to the running box and returns the response.
func (c *controlClient) post(ctx context.Context, path string, body any) (*http.Response, error) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://preau"+path, bytesReader(raw))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the running box: %w", err)
	}
	return resp, nil
}

// runningBox loads the configuration and dials the box's control socket.
func runningBox(fs *flag.FlagSet, cf *commonFlags, args []string, stderr io.Writer, lang string) (*controlClient, []string, int) {
	pos, ok := parseFlags(fs, args, stderr)
	if !ok {
		return nil, nil, ExitUsage
	}
	cfg, err := cf.load()
	if err != nil {
		printErr(stderr, lang, err)
		return nil, nil, ExitConfig
	}
	c := dialControl(cfg.Box.DataDir)
	if c == nil {
		fmt.Fprintln(stderr, tr(lang, "preau : aucune box ne tourne sur "+cfg.Box.DataDir, "preau: no box is running on "+cfg.Box.DataDir))
		return nil, nil, ExitFailure
	}
	return c, pos, ExitOK
}

func cmdSync(args []string, stdout, stderr io.Writer, lang string) int {
	if len(args) == 0 || (args[0] != "status" && args[0] != "now") {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau sync status [--json] | preau sync now [--wait]", "usage: preau sync status [--json] | preau sync now [--wait]"))
		return ExitUsage
	}
	fs := flag.NewFlagSet("sync "+args[0], flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	wait := fs.Bool("wait", false, "with now: show the upload's progress until the queue is empty")
	c, pos, rc := runningBox(fs, &cf, args[1:], stderr, lang)
	if rc != ExitOK {
		return rc
	}
	if len(pos) > 0 {
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if args[0] == "now" {
		resp, err := c.post(ctx, "/v1/sync/now", struct{}{})
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				err = fmt.Errorf("ask the running box: %s", resp.Status)
			}
		}
		if err != nil {
			printErr(stderr, lang, err)
			return ExitFailure
		}
		fmt.Fprintln(stdout, tr(lang, "Envoi lancé maintenant, hors des plages horaires, jusqu'à ce que la file soit vide.",
			"Sending now, outside the time windows, until the queue is empty."))
		if *wait {
			return waitSent(c, stdout, stderr, lang)
		}
		return ExitOK
	}
	var buf strings.Builder
	if err := c.get(ctx, "/v1/sync/status", &buf); err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	if *asJSON {
		io.WriteString(stdout, buf.String())
		return ExitOK
	}
	var st SyncStatus
	if err := json.Unmarshal([]byte(buf.String()), &st); err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	printSyncStatus(stdout, lang, st)
	return ExitOK
}

func printSyncStatus(w io.Writer, lang string, st SyncStatus) {
	bs := st.Budget
	window := tr(lang, "fermée", "closed")
	if bs.WindowOpen {
		window = tr(lang, "ouverte", "open")
	}
	if bs.SendNow {
		window += tr(lang, " (envoi immédiat demandé)", " (send now requested)")
	}
	next := "-"
	if !bs.NextChange.IsZero() {
		next = bs.NextChange.Local().Format("02/01 15:04")
	}
	online := tr(lang, "hors ligne", "offline")
	if bs.Online {
		online = tr(lang, "en ligne", "online")
	}
	fmt.Fprintf(w, tr(lang, "Internet : %s\nPlage d'envoi : %s (prochain changement : %s)\nDébit d'envoi permis : %s/s, RTT de base %s\nAujourd'hui : %s envoyés",
		"Internet: %s\nSending window: %s (next change: %s)\nAllowed upload rate: %s/s, base RTT %s\nToday: %s sent"),
		online, window, next, humanBytes(int64(bs.Up.Rate)), bs.Up.BaseRTT.Round(time.Millisecond), humanBytes(bs.CapUsed))
	if bs.DailyCap > 0 {
		fmt.Fprintf(w, tr(lang, " sur %s", " of %s"), humanBytes(bs.DailyCap))
	}
	fmt.Fprintln(w)
	var states []string
	for _, s := range outbox.States {
		states = append(states, fmt.Sprintf("%s %d", s, st.Outbox.Counts[s]))
	}
	fmt.Fprintf(w, tr(lang, "File d'envoi : %s\n", "Outbox: %s\n"), strings.Join(states, ", "))
	sent := map[string]outbox.Progress{}
	for _, f := range st.Outbox.InFlight {
		sent[f.Key] = f
	}
	items := st.Outbox.Items
	sort.SliceStable(items, func(i, j int) bool { return items[i].Priority > items[j].Priority })
	for i, it := range items {
		if i == 20 {
			fmt.Fprintf(w, tr(lang, "  … et %d autres\n", "  … and %d more\n"), len(items)-20)
			break
		}
		fr, en := it.Label()
		label := tr(lang, fr, en)
		if f, ok := sent[it.Key]; ok && f.Size > 0 {
			label += fmt.Sprintf(" (%d %%)", 100*f.Sent/f.Size)
		}
		fmt.Fprintf(w, "  %-10s %-40s %9s  %s\n", it.Destination, it.RemotePath, humanBytes(it.Size), label)
	}
}

func cmdTeacher(args []string, stdout, stderr io.Writer, lang string, stdin io.Reader) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau teacher add IDENTIFIANT \"Prénom Nom\" (mot de passe lu sur l'entrée)",
			"usage: preau teacher add LOGIN \"First Last\" (password read from input)"))
		return ExitUsage
	}
	fs := flag.NewFlagSet("teacher add", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	c, pos, rc := runningBox(fs, &cf, args[1:], stderr, lang)
	if rc != ExitOK {
		return rc
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau teacher add IDENTIFIANT \"Prénom Nom\"", "usage: preau teacher add LOGIN \"First Last\""))
		return ExitUsage
	}
	pw, err := readPassword(stdin, stderr, lang)
	if err != nil {
		printErr(stderr, lang, err)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.post(ctx, "/v1/teachers", map[string]string{"login": pos[0], "name": pos[1], "password": pw})
	if err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		var ce controlError
		if json.NewDecoder(resp.Body).Decode(&ce) == nil && ce.FR != "" {
			printErr(stderr, lang, &ce)
			return ExitRefused
		}
		printErr(stderr, lang, fmt.Errorf("ask the running box: %s", resp.Status))
		return ExitFailure
	}
	fmt.Fprintln(stdout, tr(lang, "Compte enseignant créé : "+pos[0], "Teacher account created: "+pos[0]))
	return ExitOK
}

// readPassword reads a password without echo from a terminal, or one line
// from a pipe (scripts).
func readPassword(stdin io.Reader, stderr io.Writer, lang string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, tr(lang, "Mot de passe : ", "Password: "))
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func cmdExport(args []string, stdout, stderr io.Writer, lang string) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	to := fs.String("to", "", "folder to write the bundle in (a USB key)")
	c, pos, rc := runningBox(fs, &cf, args, stderr, lang)
	if rc != ExitOK {
		return rc
	}
	if len(pos) > 0 || *to == "" {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau export --to DOSSIER", "usage: preau export --to DIR"))
		return ExitUsage
	}
	dir, err := filepath.Abs(*to)
	if err != nil {
		printErr(stderr, lang, err)
		return ExitUsage
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	resp, err := c.post(ctx, "/v1/export", map[string]string{"dir": dir})
	if err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	defer resp.Body.Close()
	bar := newProgressBar(stderr, lang)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev exportEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			bar.finish()
			printErr(stderr, lang, err)
			return ExitFailure
		}
		switch {
		case ev.Progress != nil:
			bar.update(*ev.Progress)
		case ev.Error != nil:
			bar.finish()
			printErr(stderr, lang, ev.Error)
			return ExitRefused
		case ev.Bundle != nil:
			bar.finish()
			fmt.Fprintf(stdout, tr(lang, "Lot écrit : %s (%d éléments, %d fichiers, %s)\n", "Bundle written: %s (%d items, %d files, %s)\n"),
				ev.Bundle.Dir, len(ev.Bundle.Manifest.Items), ev.Bundle.Files, humanBytes(ev.Bundle.Bytes))
			return ExitOK
		}
	}
	bar.finish()
	printErr(stderr, lang, errors.New("the running box ended the export without an answer"))
	return ExitFailure
}

// pendingBytes is what the outbox still has to send: the items not yet
// delivered nor failed, less what is already sent of those in flight.
func pendingBytes(st outbox.Status) (items int, bytes int64) {
	sent := map[string]int64{}
	for _, f := range st.InFlight {
		sent[f.Key] = f.Sent
	}
	for _, it := range st.Items {
		switch it.State {
		case outbox.StateQueued, outbox.StateSending, outbox.StateVerifying:
			items++
			bytes += it.Size - min(sent[it.Key], it.Size)
		}
	}
	return items, bytes
}

// waitSent follows the outbox until nothing is left to send, with a
// progress bar of the bytes (Ctrl-C stops watching, not sending).
func waitSent(c *controlClient, stdout, stderr io.Writer, lang string) int {
	status := func() (SyncStatus, error) {
		var st SyncStatus
		var buf strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.get(ctx, "/v1/sync/status", &buf); err != nil {
			return st, err
		}
		return st, json.Unmarshal([]byte(buf.String()), &st)
	}
	st, err := status()
	if err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	startItems, total := pendingBytes(st.Outbox)
	startDelivered := st.Outbox.Counts[outbox.StateDelivered]
	startFailed := st.Outbox.Counts[outbox.StateFailed]
	bar := newProgressBar(stderr, lang)
	for {
		items, left := pendingBytes(st.Outbox)
		total = max(total, left) // items handed in meanwhile
		bar.update(content.Progress{Phase: "send", FilesDone: max(0, startItems-items), FilesTotal: max(startItems, items),
			BytesDone: total - left, BytesTotal: total})
		if items == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
		if st, err = status(); err != nil {
			bar.finish()
			printErr(stderr, lang, err)
			return ExitFailure
		}
	}
	bar.finish()
	delivered := st.Outbox.Counts[outbox.StateDelivered] - startDelivered
	failed := st.Outbox.Counts[outbox.StateFailed] - startFailed
	fmt.Fprintf(stdout, tr(lang, "File vide : %d envoyés, %d en échec.\n", "Queue empty: %d sent, %d failed.\n"), delivered, failed)
	if failed > 0 {
		fmt.Fprintln(stdout, tr(lang, "Voir « preau sync status » pour la raison de chaque échec.",
			"See `preau sync status` for the reason of each failure."))
		return ExitFailure
	}
	return ExitOK
}
