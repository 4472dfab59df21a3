package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"preau/firmware"
	"preau/firmware/release"
	"preau/services/content"
)

// UpdateStatus is the JSON of `preau update status --json` and of the
// control socket's GET /v1/update.
type UpdateStatus struct {
	Configured bool               `json:"configured"`
	Status     *firmware.Status   `json:"status,omitempty"`
	History    []firmware.Attempt `json:"history,omitempty"`
}

// updateEvent is one line of POST /v1/update/apply's stream.
type updateEvent struct {
	Progress *firmware.Progress `json:"progress,omitempty"`
	Done     bool               `json:"done,omitempty"`
	ErrorFR  string             `json:"error_fr,omitempty"`
	ErrorEN  string             `json:"error_en,omitempty"`
}

var errUpdateOff = &controlError{
	FR: "mises à jour non configurées sur cette machine : pas de partitions A/B (réglage update.boot de l'image)",
	EN: "updates are not configured on this machine: no A/B slots (the image's update.boot setting)",
}

func (b *Box) updateControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/update", func(w http.ResponseWriter, r *http.Request) {
		st := UpdateStatus{Configured: b.update != nil}
		if b.update != nil {
			s, err := b.update.Status(r.Context())
			if err != nil {
				controlFail(w, http.StatusInternalServerError, err)
				return
			}
			st.Status = &s
			st.History, _ = b.update.History(r.Context(), 10)
		}
		writeJSON(w, st)
	})
	off := func(w http.ResponseWriter) bool {
		if b.update == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(errUpdateOff)
			return true
		}
		return false
	}
	mux.HandleFunc("POST /v1/update/check", func(w http.ResponseWriter, r *http.Request) {
		if off(w) {
			return
		}
		av, err := b.update.Check(r.Context())
		if err != nil {
			controlFail(w, http.StatusBadGateway, err)
			return
		}
		writeJSON(w, av)
	})
	mux.HandleFunc("POST /v1/update/rollback", func(w http.ResponseWriter, r *http.Request) {
		if off(w) {
			return
		}
		var req struct{ Reason string }
		json.NewDecoder(r.Body).Decode(&req)
		if err := b.update.Rollback(r.Context(), req.Reason); err != nil {
			controlFail(w, http.StatusConflict, err)
			return
		}
		writeJSON(w, map[string]bool{"ok": true})
	})
	// Apply runs for the box's lifetime, not the request's: the CLI
	// follows the download and leaves once the slot is written (the reboot
	// waits for the maintenance window).
	mux.HandleFunc("POST /v1/update/apply", func(w http.ResponseWriter, r *http.Request) {
		if off(w) {
			return
		}
		var req struct{ From string }
		json.NewDecoder(r.Body).Decode(&req)
		send := ndjsonStream[updateEvent](w)
		events := make(chan firmware.Progress, 16)
		done := make(chan error, 1)
		progress := func(p firmware.Progress) {
			select {
			case events <- p:
			default: // the CLI reads slower than the engine reports: skip one
			}
		}
		ctx := b.running
		if ctx == nil {
			ctx = context.Background()
		}
		go func() {
			if req.From != "" {
				done <- b.update.ApplyFile(ctx, req.From, progress)
			} else {
				done <- b.update.Apply(ctx, progress)
			}
		}()
		for {
			select {
			case p := <-events:
				send(updateEvent{Progress: &p})
				if p.State == firmware.StateWritten || p.State == firmware.StateTrying {
					send(updateEvent{Done: true})
					return
				}
			case err := <-done:
				if err != nil && !errors.Is(err, firmware.ErrRebooting) {
					send(updateEvent{ErrorFR: err.Error(), ErrorEN: englishText(err)})
					return
				}
				send(updateEvent{Done: true})
				return
			case <-r.Context().Done():
				return
			}
		}
	})
}

const updateUsageFR = `utilisation :
  preau update status [--json]            état, version, dernier résultat et raison d'un retour arrière
  preau update check                      cherche une version signée plus récente
  preau update apply [--from FICHIER]     télécharge (ou lit la clé USB), vérifie, écrit la partition inactive ;
                                          le redémarrage a lieu dans la fenêtre de maintenance
  preau update rollback [RAISON]          annule une mise à jour en cours ou à l'essai
  preau update boot-check                 attend le verdict du contrôle de santé local (unité du démarrage)`

const updateUsageEN = `usage:
  preau update status [--json]            state, version, last result and the reason of a rollback
  preau update check                      look for a newer signed version
  preau update apply [--from FILE]        download (or read the USB key), verify, write the inactive slot;
                                          the reboot happens in the maintenance window
  preau update rollback [REASON]          cancel an update in progress or on trial
  preau update boot-check                 wait for the local health gate's verdict (a boot unit)`

// cmdUpdate is `preau update …`, through the running box.
func cmdUpdate(args []string, stdout, stderr io.Writer, lang string) int {
	usage := func() int {
		fmt.Fprintln(stderr, tr(lang, updateUsageFR, updateUsageEN))
		return ExitUsage
	}
	if len(args) == 0 {
		return usage()
	}
	sub := args[0]
	fs := flag.NewFlagSet("update "+sub, flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	from := fs.String("from", "", "apply: an update bundle (USB key folder or .tar)")
	timeout := fs.Duration("timeout", 30*time.Minute, "boot-check: how long to wait")
	switch sub {
	case "status", "check", "apply", "rollback", "boot-check":
	default:
		return usage()
	}
	c, pos, rc := runningBox(fs, &cf, args[1:], stderr, lang)
	if rc != ExitOK {
		return rc
	}
	ctx := context.Background()
	fail := func(err error) int {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	switch sub {
	case "status":
		var st UpdateStatus
		if err := c.do(ctx, http.MethodGet, "/v1/update", nil, &st); err != nil {
			return fail(err)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(st)
			return ExitOK
		}
		printUpdateStatus(stdout, lang, st)
	case "check":
		var av firmware.Available
		if err := c.do(ctx, http.MethodPost, "/v1/update/check", nil, &av); err != nil {
			return fail(err)
		}
		if av.Newer {
			fmt.Fprintln(stdout, tr(lang, fmt.Sprintf("Nouvelle version disponible : %s (installée : %s, %s)", av.Version, av.Current, humanBytes(av.Bytes)),
				fmt.Sprintf("New version available: %s (installed: %s, %s)", av.Version, av.Current, humanBytes(av.Bytes))))
		} else {
			fmt.Fprintln(stdout, tr(lang, "À jour : "+av.Current, "Up to date: "+av.Current))
		}
	case "rollback":
		reason := strings.Join(pos, " ")
		if err := c.do(ctx, http.MethodPost, "/v1/update/rollback", map[string]string{"Reason": reason}, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, tr(lang, "Mise à jour annulée.", "Update cancelled."))
	case "apply":
		path := *from
		if path != "" {
			abs, err := filepath.Abs(path)
			if err != nil {
				return fail(err)
			}
			path = abs
		}
		return updateApply(ctx, c, path, stdout, stderr, lang)
	case "boot-check":
		return updateBootCheck(ctx, c, *timeout, stdout, stderr, lang)
	}
	return ExitOK
}

func updateApply(ctx context.Context, c *controlClient, from string, stdout, stderr io.Writer, lang string) int {
	resp, err := c.post(ctx, "/v1/update/apply", map[string]string{"From": from})
	if err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var ce controlError
		if json.NewDecoder(resp.Body).Decode(&ce) == nil && ce.FR != "" {
			printErr(stderr, lang, &ce)
		} else {
			fmt.Fprintln(stderr, "preau update apply:", resp.Status)
		}
		return ExitFailure
	}
	bar := newProgressBar(stderr, lang)
	dec := json.NewDecoder(resp.Body)
	var last firmware.Progress
	for {
		var ev updateEvent
		if err := dec.Decode(&ev); err != nil {
			bar.finish()
			fmt.Fprintln(stderr, tr(lang, "preau update apply : la box a cessé de répondre", "preau update apply: the box stopped answering"))
			return ExitFailure
		}
		switch {
		case ev.ErrorFR != "":
			bar.finish()
			fmt.Fprintln(stderr, "preau update apply : "+tr(lang, ev.ErrorFR, ev.ErrorEN))
			return ExitFailure
		case ev.Done:
			bar.finish()
			if !last.RebootAt.IsZero() {
				fmt.Fprintln(stdout, tr(lang, "Version écrite et vérifiée ; redémarrage prévu le "+last.RebootAt.Local().Format("02/01/2006 à 15:04"),
					"Version written and verified; reboot planned on "+last.RebootAt.Local().Format("2006-01-02 15:04")))
			} else {
				fmt.Fprintln(stdout, tr(lang, "Version écrite et vérifiée ; redémarrage dans la fenêtre de maintenance.",
					"Version written and verified; reboot in the maintenance window."))
			}
			return ExitOK
		case ev.Progress != nil:
			last = *ev.Progress
			phase := "download"
			switch {
			case last.Checking:
				phase = "verify"
			case last.Rehashing:
				phase = "reread"
			}
			bar.update(content.Progress{Phase: phase, BytesDone: last.Done, BytesTotal: last.Total})
		}
	}
}

// updateBootCheck waits until the engine has judged this boot: it exits 0
// when no trial is pending (committed, or nothing to judge) and 1 when the
// trial failed (the engine reboots into the previous slot).
func updateBootCheck(ctx context.Context, c *controlClient, timeout time.Duration, stdout, stderr io.Writer, lang string) int {
	deadline := time.Now().Add(timeout)
	for {
		var st UpdateStatus
		err := c.do(ctx, http.MethodGet, "/v1/update", nil, &st)
		switch {
		case err != nil:
		case !st.Configured || st.Status == nil:
			return ExitOK
		case st.Status.State == firmware.StateTrying:
		case st.Status.State == firmware.StateRolledBack:
			fmt.Fprintln(stderr, tr(lang, "essai refusé : "+st.Status.Reason.FR, "trial refused: "+st.Status.Reason.EN))
			return ExitFailure
		default:
			fmt.Fprintln(stdout, tr(lang, "démarrage validé : "+string(st.Status.State), "boot confirmed: "+string(st.Status.State)))
			return ExitOK
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(stderr, tr(lang, "preau update boot-check : pas de verdict à temps", "preau update boot-check: no verdict in time"))
			return ExitFailure
		}
		time.Sleep(2 * time.Second)
	}
}

var updateStateNames = map[firmware.State][2]string{
	firmware.StateIdle:        {"aucune mise à jour", "no update"},
	firmware.StateDownloading: {"téléchargement", "downloading"},
	firmware.StateVerified:    {"vérifiée", "verified"},
	firmware.StateWritten:     {"écrite, en attente de la fenêtre de maintenance", "written, waiting for the maintenance window"},
	firmware.StateTrying:      {"à l'essai", "on trial"},
	firmware.StateCommitted:   {"validée", "committed"},
	firmware.StateRolledBack:  {"retour à la version précédente", "rolled back"},
	firmware.StateFailed:      {"échec", "failed"},
}

var attemptResults = map[string][2]string{
	"in_progress": {"en cours", "in progress"},
	"committed":   {"validée", "committed"},
	"rolled_back": {"retour à la version précédente", "rolled back"},
	"failed":      {"échec", "failed"},
}

func printUpdateStatus(w io.Writer, lang string, st UpdateStatus) {
	if !st.Configured || st.Status == nil {
		fmt.Fprintln(w, tr(lang, errUpdateOff.FR, errUpdateOff.EN))
		return
	}
	s := st.Status
	name := string(s.State)
	if n, ok := updateStateNames[s.State]; ok {
		name = tr(lang, n[0], n[1])
	}
	fmt.Fprintf(w, "%s %s (%s %s)\n", tr(lang, "Version :", "Version:"), s.Running, tr(lang, "partition", "slot"), s.BootedSlot)
	fmt.Fprintf(w, "%s %s", tr(lang, "État :", "State:"), name)
	if s.Target != "" && s.Target != s.Running {
		fmt.Fprintf(w, " → %s", s.Target)
	}
	fmt.Fprintln(w)
	if s.Reason.Code != "" {
		fmt.Fprintf(w, "%s %s (%s)\n", tr(lang, "Raison :", "Reason:"), tr(lang, s.Reason.FR, s.Reason.EN), s.Reason.Code)
	}
	if s.Progress.Total > 0 && s.State == firmware.StateDownloading {
		fmt.Fprintf(w, "%s %s / %s\n", tr(lang, "Téléchargé :", "Downloaded:"), humanBytes(s.Progress.Done), humanBytes(s.Progress.Total))
	}
	fmt.Fprintf(w, "%s %s–%s", tr(lang, "Fenêtre de maintenance :", "Maintenance window:"), s.WindowStart, s.WindowEnd)
	if !s.NextWindow.IsZero() {
		fmt.Fprintf(w, tr(lang, " (prochaine : %s)", " (next: %s)"), s.NextWindow.Local().Format("02/01 15:04"))
	}
	fmt.Fprintln(w)
	if s.Available != nil && s.Available.Newer {
		fmt.Fprintf(w, "%s %s\n", tr(lang, "Disponible :", "Available:"), s.Available.Version)
	}
	if s.CheckError.Code != "" {
		fmt.Fprintf(w, "%s %s\n", tr(lang, "Dernière recherche :", "Last check:"), tr(lang, s.CheckError.FR, s.CheckError.EN))
	}
	if len(st.History) > 0 {
		fmt.Fprintln(w, tr(lang, "Historique :", "History:"))
		for _, a := range st.History {
			result := a.Result
			if n, ok := attemptResults[a.Result]; ok {
				result = tr(lang, n[0], n[1])
			}
			line := fmt.Sprintf("  %s  %s → %s  %s", a.Started.Local().Format("02/01/2006 15:04"), a.FromVersion, a.ToVersion, result)
			if a.Reason.Code != "" {
				line += "  (" + tr(lang, a.Reason.FR, a.Reason.EN) + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
}

// cmdRelease is `preau release …`: the signing tool of the municipality
// or academy, which needs no running box.
func cmdRelease(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return release.Run(args, stdin, stdout, stderr)
}
