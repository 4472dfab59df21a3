package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"preau/services/catalog"
	"preau/services/content"
	"preau/services/httpcache"
)

// CatalogStatus is the JSON of `preau catalog list --json`.
type CatalogStatus struct {
	Sources  []catalog.Source       `json:"sources"`
	Progress []catalog.ItemProgress `json:"progress"`
}

// CacheStatus is the JSON of `preau cache status --json`.
type CacheStatus struct {
	Content content.Usage    `json:"content"`
	HTTP    httpcache.Status `json:"http"`
}

// catalogAddRequest is the body of POST /v1/catalog/sources.
type catalogAddRequest struct {
	Spec    catalog.SourceSpec `json:"spec"`
	GARList []byte             `json:"gar_list,omitempty"` // an ENT export, read by the CLI
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// controlFail answers a refused request with its French and English text.
func controlFail(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(controlError{FR: err.Error(), EN: englishText(err)})
}

// catalogFail answers a refused catalogue request; an unknown source id
// gets a sentence a technician can act on.
func catalogFail(w http.ResponseWriter, id string, err error) {
	if errors.Is(err, catalog.ErrUnknownSource) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(controlError{
			FR: fmt.Sprintf("aucune source « %s » dans le catalogue ; « preau catalog list » donne leurs identifiants", id),
			EN: fmt.Sprintf("no source %q in the catalogue; `preau catalog list` shows their ids", id)})
		return
	}
	controlFail(w, catalogCode(err), err)
}

func catalogCode(err error) int {
	if errors.Is(err, catalog.ErrUnknownSource) || errors.Is(err, content.ErrNotFound) {
		return http.StatusNotFound
	}
	var ce *catalog.Error
	if errors.As(err, &ce) {
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

func (b *Box) catalogControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/catalog", func(w http.ResponseWriter, r *http.Request) {
		srcs, err := b.catalog.List(r.Context())
		if err != nil {
			controlFail(w, http.StatusInternalServerError, err)
			return
		}
		prog, err := b.catalog.Progress(r.Context())
		if err != nil {
			controlFail(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, CatalogStatus{Sources: nonNilSlice(srcs), Progress: nonNilSlice(prog)})
	})
	mux.HandleFunc("POST /v1/catalog/sources", func(w http.ResponseWriter, r *http.Request) {
		var req catalogAddRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&req); err != nil {
			http.Error(w, "want {\"spec\": {…}}", http.StatusBadRequest)
			return
		}
		req.Spec.GARList = req.GARList
		src, err := b.catalog.Add(r.Context(), req.Spec)
		if err != nil {
			controlFail(w, catalogCode(err), err)
			return
		}
		b.log.Info("source du catalogue ajoutée", "id", src.ID, "kind", src.Kind, "name", src.Name)
		writeJSON(w, src)
	})
	mux.HandleFunc("POST /v1/catalog/sources/{id}/refresh", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := b.catalog.Packs(r.Context(), id); err != nil {
			catalogFail(w, id, err)
			return
		}
		// A technician's refresh is "now": the budget opens its calendar
		// until the queue is idle (as `preau sync now`), still yielding to
		// the school's traffic. The refresh runs in the box; the CLI
		// follows its progress.
		b.handin.sched.SendNow()
		ctx := b.running
		if ctx == nil {
			ctx = context.Background()
		}
		go func() {
			if err := b.catalog.Refresh(ctx, id); err != nil {
				b.log.Warn("actualisation du catalogue", "source", id, "err", err)
			}
		}()
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("DELETE /v1/catalog/sources/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := b.catalog.Remove(r.Context(), r.PathValue("id")); err != nil {
			catalogFail(w, r.PathValue("id"), err)
			return
		}
		b.log.Info("source du catalogue retirée", "id", r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/catalog/sources/{id}/pin", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Until time.Time `json:"until"` // zero: unpin
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
			http.Error(w, "want {\"until\": RFC 3339}", http.StatusBadRequest)
			return
		}
		packs, err := b.catalog.Packs(r.Context(), r.PathValue("id"))
		if err != nil {
			catalogFail(w, r.PathValue("id"), err)
			return
		}
		for _, p := range packs {
			if req.Until.IsZero() {
				err = b.content.UnpinPack(r.Context(), p)
			} else {
				err = b.content.PinPack(r.Context(), p, req.Until)
			}
			if err != nil && !errors.Is(err, content.ErrNotFound) {
				controlFail(w, http.StatusInternalServerError, err)
				return
			}
		}
		b.log.Info("épinglage du catalogue", "source", r.PathValue("id"), "packs", len(packs), "until", req.Until)
		writeJSON(w, map[string]int{"packs": len(packs)})
	})
	mux.HandleFunc("GET /v1/cache/status", func(w http.ResponseWriter, r *http.Request) {
		u, err := b.content.Usage(r.Context())
		if err != nil {
			controlFail(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, CacheStatus{Content: u, HTTP: b.cache.Status(r.Context())})
	})
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil); refusals come back as *controlError.
func (c *controlClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytesReader(raw)
	}
	req, _ := http.NewRequestWithContext(ctx, method, "http://preau"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ask the running box: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var ce controlError
		if json.NewDecoder(resp.Body).Decode(&ce) == nil && ce.FR != "" {
			return &ce
		}
		return fmt.Errorf("ask the running box: %s", resp.Status)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

const catalogUsageFR = `utilisation :
  preau catalog add tube URL [--height 480] [--name NOM]     chaîne, playlist ou vidéo PeerTube
  preau catalog add nuage URL [--webdav URL] [--name NOM]    partage public Nextcloud (…/s/JETON)
  preau catalog add pack URL [--gar-source ID --gar-resource ID]
  preau catalog add gar --file LISTE.json                    liste exportée par l'ENT
  preau catalog add gar --url URL --ent ID --uai UAI --user ID --cert CERT.pem --key CLE.pem [--ca CA.pem]
  preau catalog list [--json]
  preau catalog refresh ID [--wait]
  preau catalog pin ID [--days 7] | preau catalog unpin ID
  preau catalog remove ID`

const catalogUsageEN = `usage:
  preau catalog add tube URL [--height 480] [--name NAME]    PeerTube channel, playlist or video
  preau catalog add nuage URL [--webdav URL] [--name NAME]   Nextcloud public share (…/s/TOKEN)
  preau catalog add pack URL [--gar-source ID --gar-resource ID]
  preau catalog add gar --file LIST.json                     list exported by the ENT
  preau catalog add gar --url URL --ent ID --uai UAI --user ID --cert CERT.pem --key KEY.pem [--ca CA.pem]
  preau catalog list [--json]
  preau catalog refresh ID [--wait]
  preau catalog pin ID [--days 7] | preau catalog unpin ID
  preau catalog remove ID`

func cmdCatalog(args []string, stdout, stderr io.Writer, lang string) int {
	usageErr := func() int {
		fmt.Fprintln(stderr, tr(lang, catalogUsageFR, catalogUsageEN))
		return ExitUsage
	}
	if len(args) == 0 {
		return usageErr()
	}
	sub := args[0]
	fs := flag.NewFlagSet("catalog "+sub, flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	wait := fs.Bool("wait", false, "follow the downloads until they end")
	days := fs.Int("days", 7, "pin for this many days")
	var spec catalog.SourceSpec
	var file string
	fs.StringVar(&spec.Name, "name", "", "name shown")
	fs.IntVar(&spec.Height, "height", 0, "PeerTube: target height (default catalog.tube_height)")
	fs.StringVar(&spec.WebDAVURL, "webdav", "", "Nuage: WebDAV folder of the share when not derived from its link")
	fs.StringVar(&spec.GARSource, "gar-source", "", "pack: the GAR source of the card")
	fs.StringVar(&spec.GARResource, "gar-resource", "", "pack: the GAR idRessource it is the offline package of")
	fs.StringVar(&file, "file", "", "GAR: the list exported by the ENT")
	fs.StringVar(&spec.URL, "url", "", "GAR: base URL of the GAR list service")
	fs.StringVar(&spec.ENT, "ent", "", "GAR: the ENT's identifier")
	fs.StringVar(&spec.UAI, "uai", "", "GAR: the school's UAI")
	fs.StringVar(&spec.User, "user", "", "GAR: user id of the request")
	fs.StringVar(&spec.CertFile, "cert", "", "GAR: client certificate (PEM)")
	fs.StringVar(&spec.KeyFile, "key", "", "GAR: its key (PEM)")
	fs.StringVar(&spec.CAFile, "ca", "", "GAR: CA of the service when not a public one")
	c, pos, rc := runningBox(fs, &cf, args[1:], stderr, lang)
	if rc != ExitOK {
		return rc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) int {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	switch sub {
	case "add":
		if len(pos) < 1 {
			return usageErr()
		}
		spec.Kind = catalog.Kind(pos[0])
		if len(pos) > 1 {
			spec.URL = pos[1]
		}
		var req catalogAddRequest
		if file != "" {
			doc, err := os.ReadFile(file)
			if err != nil {
				return fail(err)
			}
			req.GARList = doc
		}
		req.Spec = spec
		var src catalog.Source
		if err := c.do(ctx, http.MethodPost, "/v1/catalog/sources", req, &src); err != nil {
			printErr(stderr, lang, err)
			return ExitRefused
		}
		fmt.Fprintf(stdout, tr(lang, "Source ajoutée : %s (%s, %s). Téléchargement dans les plages horaires ; « preau catalog refresh %s --wait » pour commencer tout de suite.\n",
			"Source added: %s (%s, %s). Downloads run in the time windows; `preau catalog refresh %s --wait` starts now.\n"),
			src.ID, src.Kind, src.Name, src.ID)
		return ExitOK
	case "list":
		var st CatalogStatus
		if err := c.do(ctx, http.MethodGet, "/v1/catalog", nil, &st); err != nil {
			return fail(err)
		}
		if *asJSON {
			json.NewEncoder(stdout).Encode(st)
			return ExitOK
		}
		printCatalog(stdout, lang, st)
		return ExitOK
	case "refresh":
		if len(pos) != 1 {
			return usageErr()
		}
		if err := c.do(ctx, http.MethodPost, "/v1/catalog/sources/"+pos[0]+"/refresh", struct{}{}, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, tr(lang, "Actualisation lancée.", "Refresh started."))
		if *wait {
			return waitCatalog(c, pos[0], stdout, stderr, lang)
		}
		return ExitOK
	case "pin", "unpin":
		if len(pos) != 1 {
			return usageErr()
		}
		var until time.Time
		if sub == "pin" {
			if *days < 1 || *days > 366 {
				return usageErr()
			}
			until = time.Now().AddDate(0, 0, *days)
		}
		var out struct{ Packs int }
		if err := c.do(ctx, http.MethodPost, "/v1/catalog/sources/"+pos[0]+"/pin", map[string]time.Time{"until": until}, &out); err != nil {
			return fail(err)
		}
		if sub == "pin" {
			fmt.Fprintf(stdout, tr(lang, "%d paquet(s) épinglé(s) jusqu'au %s : ils ne seront pas effacés pour faire de la place.\n",
				"%d pack(s) pinned until %s: they will not be evicted to make room.\n"), out.Packs, until.Format("2006-01-02"))
		} else {
			fmt.Fprintf(stdout, tr(lang, "%d paquet(s) désépinglé(s).\n", "%d pack(s) unpinned.\n"), out.Packs)
		}
		return ExitOK
	case "remove":
		if len(pos) != 1 {
			return usageErr()
		}
		if err := c.do(ctx, http.MethodDelete, "/v1/catalog/sources/"+pos[0], nil, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, tr(lang, "Source retirée avec ses contenus.", "Source removed with its content."))
		return ExitOK
	}
	return usageErr()
}

func printCatalog(w io.Writer, lang string, st CatalogStatus) {
	if len(st.Sources) == 0 {
		fmt.Fprintln(w, tr(lang, "Aucune source. Ajoutez-en une : preau catalog add …", "No source. Add one: preau catalog add …"))
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, tr(lang, "ID\tTYPE\tNOM\tÉLÉMENTS\tPRÊTS\tTAILLE\tACTUALISÉ\tÉTAT", "ID\tKIND\tNAME\tITEMS\tDONE\tSIZE\tREFRESHED\tSTATE"))
	for _, s := range st.Sources {
		state := tr(lang, "ok", "ok")
		if s.ErrorFR != "" {
			state = tr(lang, s.ErrorFR, s.ErrorEN)
		} else if s.Queued > 0 {
			state = fmt.Sprintf(tr(lang, "%d en attente", "%d queued"), s.Queued)
		}
		refreshed := "—"
		if !s.LastRefresh.IsZero() {
			refreshed = s.LastRefresh.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.ID, s.Kind, s.Name, s.Items, s.Done,
			humanBytes(s.BytesDone)+" / "+humanBytes(s.BytesTotal), refreshed, state)
	}
	tw.Flush()
	for _, p := range st.Progress {
		line := fmt.Sprintf("  %s — %s", p.Title, p.State)
		if p.State == catalog.StateDownloading || p.BytesDone > 0 {
			line += fmt.Sprintf(" %d %%", p.Percent)
		}
		if p.ErrorFR != "" {
			line += " : " + tr(lang, p.ErrorFR, p.ErrorEN)
		}
		fmt.Fprintln(w, line)
	}
}

// waitCatalog shows a progress bar of source id's downloads until none
// is queued or under way; failures are listed at the end.
func waitCatalog(c *controlClient, id string, stdout, stderr io.Writer, lang string) int {
	bar := newProgressBar(stderr, lang)
	var last CatalogStatus
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var st CatalogStatus
		err := c.do(ctx, http.MethodGet, "/v1/catalog", nil, &st)
		cancel()
		if err != nil {
			bar.finish()
			printErr(stderr, lang, err)
			return ExitFailure
		}
		last = st
		var src *catalog.Source
		for i := range st.Sources {
			if st.Sources[i].ID == id {
				src = &st.Sources[i]
			}
		}
		if src == nil {
			bar.finish()
			printErr(stderr, lang, fmt.Errorf("%w: %s", catalog.ErrUnknownSource, id))
			return ExitFailure
		}
		var pending int
		for _, p := range st.Progress {
			if p.Source == id && (p.State == catalog.StateQueued || p.State == catalog.StateDownloading) {
				pending++
			}
		}
		bar.update(content.Progress{Phase: "download", FilesDone: src.Done, FilesTotal: src.Items,
			BytesDone: src.BytesDone, BytesTotal: max(src.BytesTotal, src.BytesDone)})
		if pending == 0 && !src.LastRefresh.IsZero() {
			break
		}
		if pending == 0 && src.ErrorFR != "" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	bar.finish()
	for _, s := range last.Sources {
		if s.ID != id {
			continue
		}
		fmt.Fprintf(stdout, tr(lang, "%s : %d élément(s) disponibles hors ligne sur %d, %d en échec.\n",
			"%s: %d item(s) available offline of %d, %d failed.\n"), s.Name, s.Done, s.Items, s.Failed)
		if s.ErrorFR != "" {
			fmt.Fprintln(stdout, tr(lang, s.ErrorFR, s.ErrorEN))
			return ExitFailure
		}
		if s.Failed > 0 {
			return ExitFailure
		}
	}
	return ExitOK
}

func cmdCache(args []string, stdout, stderr io.Writer, lang string) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, tr(lang, "utilisation : preau cache status [--json]", "usage: preau cache status [--json]"))
		return ExitUsage
	}
	fs := flag.NewFlagSet("cache status", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	c, _, rc := runningBox(fs, &cf, args[1:], stderr, lang)
	if rc != ExitOK {
		return rc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st CacheStatus
	if err := c.do(ctx, http.MethodGet, "/v1/cache/status", nil, &st); err != nil {
		printErr(stderr, lang, err)
		return ExitFailure
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(st)
		return ExitOK
	}
	u := st.Content
	quota := tr(lang, "aucun", "none")
	if u.QuotaBytes >= 0 {
		quota = humanBytes(u.QuotaBytes)
	}
	var b strings.Builder
	fmt.Fprintf(&b, tr(lang, "Contenus : %s utilisés, quota %s, %s libres sur le disque (%s gardés libres)\n",
		"Content: %s used, quota %s, %s free on disk (%s kept free)\n"), humanBytes(u.UsedBytes), quota, humanBytes(u.FreeBytes), humanBytes(u.MinFreeBytes))
	fmt.Fprintf(&b, tr(lang, "Paquets : %d dont %d du catalogue, %d épinglés (%s), %d effaçables pour faire de la place (%s)\n",
		"Packs: %d of which %d from the catalogue, %d pinned (%s), %d evictable to make room (%s)\n"),
		u.Packs, u.CatalogPacks, u.PinnedPacks, humanBytes(u.PinnedBytes), u.EvictablePacks, humanBytes(u.EvictableBytes))
	h := st.HTTP
	fmt.Fprintf(&b, tr(lang, "Cache HTTP : %d réponses, %s sur %s ; %d servies depuis le cache, %d transmises, %d revalidées (%d inchangées), %d périmées servies hors connexion ou en erreur\n",
		"HTTP cache: %d responses, %s of %s; %d hits, %d misses, %d revalidations (%d not modified), %d stale served while offline or on errors\n"),
		h.Entries, humanBytes(h.Bytes), humanBytes(h.QuotaBytes), h.Hits, h.Misses, h.Revalidations, h.NotModified, h.StaleServed)
	if u.DamagedBlobs > 0 {
		fmt.Fprintf(&b, tr(lang, "Fichiers endommagés en attente de re-téléchargement : %d\n", "Damaged files waiting to be fetched again: %d\n"), u.DamagedBlobs)
	}
	io.WriteString(stdout, b.String())
	return ExitOK
}
