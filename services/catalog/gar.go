package catalog

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// The GAR's resource list (SPEC §2b): {"listeRessources": {"ressource":
// [...]}}, or the bare array some ENTs export. Unknown fields are ignored:
// ENTs add their own (structure_uai…).

type garTerm struct {
	URI string `json:"uri"`
	Nom string `json:"nom"`
}

type garResource struct {
	IDRessource       string    `json:"idRessource"`
	IDType            string    `json:"idType"`
	NomRessource      string    `json:"nomRessource"`
	IDEditeur         string    `json:"idEditeur"`
	NomEditeur        string    `json:"nomEditeur"`
	URLVignette       string    `json:"urlVignette"`
	TypePresentation  garCode   `json:"typePresentation"`
	TypePedagogique   []garTerm `json:"typePedagogique"`
	TypologieDocument []garTerm `json:"typologieDocument"`
	NiveauEducatif    []garTerm `json:"niveauEducatif"`
	DomaineEnseign    []garTerm `json:"domaineEnseignement"`
	URLAcces          string    `json:"urlAccesRessource"`
	Etiquette         string    `json:"nomSourceEtiquetteGar"`
	Distributeur      string    `json:"distributeurTech"`
	Validateur        string    `json:"validateurTech"`
}

type garCode struct {
	Code string `json:"code"`
	Nom  string `json:"nom"`
}

const (
	maxGARField = 2048 // a name, an id, a URL
	maxGARTerms = 64   // terms of one vocabulary on one resource
)

// parseGARList decodes and checks a GAR list. Resources without an id or a
// name, or with an access link that is not http(s), are refused with the
// list (a file from the ENT is all or nothing: a half-read list would drop
// cards silently); a duplicated id keeps the first.
func parseGARList(data []byte, maxResources int) ([]garResource, error) {
	fail := func(detail string, err error) error {
		return permanent("read gar list", "liste GAR illisible : "+shorten(detail)+" ; exportez à nouveau la liste depuis l'ENT",
			"unreadable GAR list: "+shorten(detail)+"; export the list from the ENT again", err)
	}
	if !utf8.Valid(data) {
		return nil, fail("le fichier n'est pas en UTF-8 / not UTF-8", nil)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	trimmed = bytes.TrimPrefix(trimmed, []byte("\ufeff"))
	var list []garResource
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fail(err.Error(), err)
		}
	} else {
		var doc struct {
			ListeRessources *struct {
				Ressource []garResource `json:"ressource"`
			} `json:"listeRessources"`
		}
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, fail(err.Error(), err)
		}
		if doc.ListeRessources == nil {
			return nil, fail("pas de champ listeRessources / no listeRessources field", nil)
		}
		list = doc.ListeRessources.Ressource
	}
	if len(list) > maxResources {
		return nil, fail(fmt.Sprintf("%d ressources, maximum %d / %d resources, at most %d", len(list), maxResources, len(list), maxResources), nil)
	}
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for i, r := range list {
		if err := r.check(); err != nil {
			return nil, fail(fmt.Sprintf("ressource %d (%s) : %v", i+1, shorten(r.IDRessource), err), err)
		}
		if seen[r.IDRessource] {
			continue
		}
		seen[r.IDRessource] = true
		out = append(out, r)
	}
	return out, nil
}

func (r *garResource) check() error {
	r.IDRessource = strings.TrimSpace(r.IDRessource)
	r.NomRessource = cleanText(r.NomRessource, maxTitle)
	switch {
	case r.IDRessource == "" || len(r.IDRessource) > maxGARField:
		return errors.New("idRessource vide ou trop long / empty or too long")
	case r.NomRessource == "":
		return errors.New("nomRessource vide / empty")
	}
	for _, f := range []*string{&r.IDType, &r.IDEditeur, &r.NomEditeur, &r.Etiquette, &r.Distributeur, &r.Validateur,
		&r.TypePresentation.Code, &r.TypePresentation.Nom} {
		*f = cleanText(*f, maxGARField)
	}
	if r.URLAcces != "" && checkHTTPURL(r.URLAcces, false) != nil {
		return errors.New("urlAccesRessource n'est pas une adresse http(s) / is not an http(s) address")
	}
	if r.URLVignette != "" && checkHTTPURL(r.URLVignette, false) != nil {
		r.URLVignette = "" // a card without a thumbnail rather than no card
	}
	if len(r.URLAcces) > maxGARField || len(r.URLVignette) > maxGARField {
		return errors.New("adresse trop longue / address too long")
	}
	for _, terms := range []*[]garTerm{&r.TypePedagogique, &r.TypologieDocument, &r.NiveauEducatif, &r.DomaineEnseign} {
		if len(*terms) > maxGARTerms {
			*terms = (*terms)[:maxGARTerms]
		}
		kept := (*terms)[:0]
		for _, t := range *terms {
			t.Nom = cleanText(t.Nom, 200)
			t.URI = cleanText(t.URI, maxGARField)
			if t.Nom != "" {
				kept = append(kept, t)
			}
		}
		*terms = kept
	}
	return nil
}

// garDocument returns the list of a GAR source: from the GAR list service
// when configured, else the file imported from the ENT.
func (c *Catalog) garDocument(ctx context.Context, src Source) ([]byte, error) {
	if src.Spec.URL == "" {
		var doc []byte
		err := c.db.QueryRowContext(ctx, `SELECT document FROM catalog_gar_lists WHERE source = ?`, src.ID).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, permanent("read gar list", "aucune liste GAR importée : importez le fichier exporté par l'ENT",
				"no GAR list imported: import the file exported by the ENT", err)
		}
		if err != nil {
			return nil, fmt.Errorf("read gar list of %s: %w", src.ID, err)
		}
		return doc, nil
	}
	return c.fetchGARList(ctx, src.Spec)
}

// fetchGARList asks the GAR list service, GET {URL}/ressources/{ENT}/{UAI}/
// {User}, authenticated by the ENT's client certificate. This request
// cannot go through the shared Doer (it carries no client certificate): it
// has its own TLS client, after the budget's wait. No TLS interception:
// the server's certificate is verified against the system's roots (or
// Spec.CAFile).
func (c *Catalog) fetchGARList(ctx context.Context, s SourceSpec) ([]byte, error) {
	op := "GAR list " + s.UAI
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, permanent(op, "certificat client du GAR illisible ("+shorten(err.Error())+") ; vérifiez les fichiers du certificat et de la clé",
			"unreadable GAR client certificate ("+shorten(err.Error())+"); check the certificate and key files", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, permanent(op, "autorité de certification illisible : "+shorten(err.Error()), "unreadable certificate authority: "+shorten(err.Error()), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, permanent(op, "le fichier de l'autorité de certification ne contient aucun certificat PEM",
				"the certificate authority file holds no PEM certificate", nil)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: 30 * time.Second, ResponseHeaderTimeout: c.cfg.RequestTimeout}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: c.cfg.RequestTimeout}
	u := strings.TrimSuffix(s.URL, "/") + "/ressources/" + url.PathEscape(s.ENT) + "/" + url.PathEscape(s.UAI) + "/" + url.PathEscape(s.User)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, permanent(op, "adresse du service GAR invalide", "invalid GAR service address", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var cv *tls.CertificateVerificationError
		var alert tls.AlertError
		var ne *net.OpError
		if errors.As(err, &alert) || (errors.As(err, &ne) && ne.Op == "remote error") {
			// The server ended the handshake with an alert: over TCP, Go
			// reports it as a "remote error" (bad_certificate,
			// certificate_required, unknown_ca…).
			return nil, permanent(op, "le GAR refuse le certificat client de l'ENT ("+shorten(err.Error())+") ; vérifiez le certificat délivré par le GAR et sa date de validité",
				"the GAR refuses the ENT's client certificate ("+shorten(err.Error())+"); check the certificate the GAR issued and its validity dates", err)
		}
		if errors.As(err, &cv) {
			return nil, permanent(op, "le certificat du serveur GAR n'est pas reconnu ("+shorten(err.Error())+")",
				"the GAR server's certificate is not trusted ("+shorten(err.Error())+")", err)
		}
		return nil, netError(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return nil, permanent(op, fmt.Sprintf("le GAR refuse le certificat ou l'abonnement (%d) ; vérifiez le certificat de l'ENT, l'UAI et l'identifiant", resp.StatusCode),
			fmt.Sprintf("the GAR refuses the certificate or the subscription (%d); check the ENT's certificate, the UAI and the id", resp.StatusCode), nil)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(op, resp)
	}
	return readLimited(resp.Body, c.cfg.MaxMetadataBytes, op)
}

// readLimited reads a metadata answer of at most max bytes.
func readLimited(r io.Reader, max int64, op string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, netError(op, err)
	}
	if int64(len(data)) > max {
		return nil, permanent(op, fmt.Sprintf("réponse trop grosse (plus de %d octets)", max),
			fmt.Sprintf("answer too large (more than %d bytes)", max), nil)
	}
	return data, nil
}

// refreshGAR replaces the cards of a GAR source with its current list and
// lists the thumbnails to fetch.
func (c *Catalog) refreshGAR(ctx context.Context, src Source) ([]listedItem, error) {
	doc, err := c.garDocument(ctx, src)
	if err != nil {
		return nil, err
	}
	list, err := parseGARList(doc, c.cfg.MaxGARResources)
	if err != nil {
		return nil, err
	}
	// Keep the thumbnail of a card whose thumbnail URL did not change.
	kept := map[string]string{}
	rows, err := c.db.QueryContext(ctx, `SELECT id, thumbnail_url, thumbnail FROM catalog_gar_cards WHERE source = ?`, src.ID)
	if err != nil {
		return nil, fmt.Errorf("refresh %s: %w", src.ID, err)
	}
	for rows.Next() {
		var id, u, h string
		if err := rows.Scan(&id, &u, &h); err != nil {
			rows.Close()
			return nil, fmt.Errorf("refresh %s: %w", src.ID, err)
		}
		kept[id+"\x00"+u] = h
	}
	rows.Close()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("refresh %s: %w", src.ID, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM catalog_gar_cards WHERE source = ?`, src.ID); err != nil {
		return nil, fmt.Errorf("refresh %s: %w", src.ID, err)
	}
	var listed []listedItem
	for pos, r := range list {
		if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_gar_cards (source, id, position, id_type, title, sort_key,
			publisher_id, publisher, thumbnail_url, thumbnail, access_url, presentation_code, presentation, label,
			distributor, validator) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			src.ID, r.IDRessource, pos, r.IDType, r.NomRessource, sortKey(r.NomRessource), r.IDEditeur, r.NomEditeur,
			r.URLVignette, kept[r.IDRessource+"\x00"+r.URLVignette], r.URLAcces, r.TypePresentation.Code,
			r.TypePresentation.Nom, r.Etiquette, r.Distributeur, r.Validateur); err != nil {
			return nil, fmt.Errorf("refresh %s: card %s: %w", src.ID, r.IDRessource, err)
		}
		for _, v := range []struct {
			vocab string
			terms []garTerm
		}{{"niveau", r.NiveauEducatif}, {"domaine", r.DomaineEnseign}, {"typologie", r.TypologieDocument}, {"pedagogique", r.TypePedagogique}} {
			for i, t := range v.terms {
				if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_gar_terms (source, card, vocab, uri, name, position)
					VALUES (?, ?, ?, ?, ?, ?)`, src.ID, r.IDRessource, v.vocab, t.URI, t.Nom, i); err != nil {
					return nil, fmt.Errorf("refresh %s: card %s: %w", src.ID, r.IDRessource, err)
				}
			}
		}
		if r.URLVignette != "" {
			listed = append(listed, listedItem{key: "vignette:" + r.IDRessource, kind: itemThumbnail,
				title: "Vignette : " + r.NomRessource, plan: plan{URL: r.URLVignette, Card: r.IDRessource}})
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("refresh %s: %w", src.ID, err)
	}
	return listed, nil
}
