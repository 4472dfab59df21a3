package catalog

import (
	"context"
	"fmt"
	"net/http"
)

// listPackURL lists a pack source: one item, the pack at the URL. A
// conditional HEAD (the ETag or Last-Modified seen last time) tells whether
// it changed, so an unchanged pack is not downloaded again.
func (c *Catalog) listPackURL(ctx context.Context, src Source) ([]listedItem, error) {
	op := "HEAD " + src.Spec.URL
	old, err := c.items(ctx, `WHERE source = ? AND key = ?`, src.ID, src.Spec.URL)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", src.ID, err)
	}
	l := listedItem{key: src.Spec.URL, kind: itemPack, title: src.Name, plan: plan{URL: src.Spec.URL}}
	hctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodHead, src.Spec.URL, nil)
	if err != nil {
		return nil, permanent(op, "adresse du paquet invalide", "invalid pack address", err)
	}
	var prev plan
	if len(old) == 1 {
		prev = old[0].Plan
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, netError(op, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		l.plan = prev
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		l.plan.ETag = resp.Header.Get("ETag")
		l.plan.LastModified = resp.Header.Get("Last-Modified")
		if l.plan.ETag == "" && l.plan.LastModified == "" && len(old) == 1 && old[0].State == stateDone {
			// No validator: nothing tells a change; keep what we have
			// rather than download the whole pack every refresh.
			l.plan = prev
		}
	case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		if len(old) == 1 {
			l.plan = prev
		}
	default:
		return nil, statusError(op, resp)
	}
	return []listedItem{l}, nil
}
