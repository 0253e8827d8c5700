package pkipub

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// serveCRL serves GET and HEAD /crl/<caID>.crl: the DER CRL
// (application/pkix-crl, RFC 2585 4.2) with validators (ETag from the CRL
// number, Last-Modified = thisUpdate) and freshness (max-age to
// nextUpdate, capped; Expires = nextUpdate), answering 304 to a matching
// If-None-Match or If-Modified-Since.
func (h *handler) serveCRL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = h.hv.allowCRL
		h.text(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/crl/"), ".crl")
	if !ok || !validCAID(id) {
		h.text(w, http.StatusNotFound, "not found\n")
		return
	}
	crl, err := h.d.CRLs.CRL(r.Context(), id)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			h.d.Log.Warn("crl unavailable", "ca", id, "err", err)
		}
		w.Header()["Retry-After"] = h.hv.retryAfter
		w.Header()["Cache-Control"] = h.hv.noStore
		h.text(w, http.StatusServiceUnavailable, "CRL temporarily unavailable\n")
		return
	}
	if crl == nil || len(crl.DER) == 0 {
		h.text(w, http.StatusNotFound, "no CRL for this CA\n")
		return
	}
	etag := ""
	if crl.Number != nil {
		etag = `"` + crl.Number.Text(16) + `"`
	} else {
		etag = hashETag(crl.DER)
	}
	hdr := w.Header()
	hdr["Etag"] = []string{etag}
	if !crl.ThisUpdate.IsZero() {
		hdr["Last-Modified"] = []string{httpTime(crl.ThisUpdate)}
	}
	if !crl.NextUpdate.IsZero() {
		hdr["Expires"] = []string{httpTime(crl.NextUpdate)}
	}
	hdr["Cache-Control"] = []string{cacheControl(h.maxAgeSeconds(h.d.Clock.Now(), crl.NextUpdate), false)}
	if notModified(r, etag, crl.ThisUpdate, true) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr["Content-Type"] = h.hv.pkixCRL
	hdr["Content-Length"] = []string{strconv.Itoa(len(crl.DER))}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(crl.DER)
}
