package pkipub

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/certwright/certwright/internal/revoke/ocsp"
)

// maxRequestBase64 is the longest base64 text of a request we accept.
const maxRequestBase64 = (ocsp.MaxRequestBytes + 2) / 3 * 4

// serveOCSP is the transport of RFC 6960 appendix A.1: GET
// /ocsp/<caID>/<base64 DER> and POST /ocsp/<caID> with an
// application/ocsp-request body. It checks method, media type, size and
// encoding and answers those failures with HTTP statuses (400, 404, 405,
// 413, 414, 415: the request never reached OCSP). Everything else is the
// OCSP port's: it parses the DER and answers, errors included, with an
// OCSPResponse sent as 200 application/ocsp-response.
func (h *handler) serveOCSP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		caID, der, code := decodeGetPath(r.URL.EscapedPath())
		if code != 0 {
			h.text(w, code, statusText(code))
			return
		}
		h.writeOCSP(w, r, h.d.OCSP.Respond(r.Context(), caID, der), true)
	case http.MethodPost:
		caID, ok := postCAID(r.URL.EscapedPath())
		if !ok {
			h.text(w, http.StatusNotFound, "not found\n")
			return
		}
		if !isOCSPRequestType(r.Header["Content-Type"]) {
			h.text(w, http.StatusUnsupportedMediaType, "an OCSP request is sent as application/ocsp-request\n")
			return
		}
		if r.ContentLength > ocsp.MaxRequestBytes {
			h.text(w, http.StatusRequestEntityTooLarge, statusText(http.StatusRequestEntityTooLarge))
			return
		}
		der, err := readBody(r.Body, r.ContentLength)
		switch {
		case err != nil:
			h.text(w, http.StatusBadRequest, "cannot read the request body\n")
			return
		case len(der) > ocsp.MaxRequestBytes:
			h.text(w, http.StatusRequestEntityTooLarge, statusText(http.StatusRequestEntityTooLarge))
			return
		case len(der) == 0:
			h.text(w, http.StatusBadRequest, statusText(http.StatusBadRequest))
			return
		}
		h.writeOCSP(w, r, h.d.OCSP.Respond(r.Context(), caID, der), false)
	default:
		w.Header()["Allow"] = h.hv.allowOCSP
		h.text(w, http.StatusMethodNotAllowed, "method not allowed\n")
	}
}

// writeOCSP sends an answer. A cacheable answer to a GET gets RFC 5019 6.2
// headers: Last-Modified = thisUpdate, Expires = nextUpdate, Cache-Control
// "public, max-age=N, no-transform, must-revalidate" with N the time to
// nextUpdate capped by Deps.MaxAge, and an ETag honoured by If-None-Match.
// (If-Modified-Since is not: two responses signed within one second would
// share a Last-Modified.) Error answers to a GET are no-store, as 6.2 asks
// for non-authoritative responses. POST answers carry no cache headers:
// POST responses are not cached.
func (h *handler) writeOCSP(w http.ResponseWriter, r *http.Request, a OCSPAnswer, get bool) {
	if len(a.DER) == 0 {
		h.d.Log.Error("ocsp answer without a response")
		a = OCSPAnswer{DER: ocsp.ErrorResponse(ocsp.StatusInternalError)}
	}
	hdr := w.Header()
	hdr["Content-Type"] = h.hv.ocspResponse
	if get {
		if a.Cacheable {
			etag := a.ETag
			if etag == "" {
				etag = hashETag(a.DER)
			} else {
				etag = quoteETag(etag)
			}
			// One backing array for the four values: one allocation, not four.
			v := make([]string, 4)
			v[0], v[1] = etag, cacheControl(h.maxAgeSeconds(h.d.Clock.Now(), a.NextUpdate), true)
			hdr["Etag"], hdr["Cache-Control"] = v[0:1:1], v[1:2:2]
			if !a.ThisUpdate.IsZero() {
				v[2] = httpTime(a.ThisUpdate)
				hdr["Last-Modified"] = v[2:3:3]
			}
			if !a.NextUpdate.IsZero() {
				v[3] = httpTime(a.NextUpdate)
				hdr["Expires"] = v[3:4:4]
			}
			if notModified(r, etag, a.ThisUpdate, false) {
				delete(hdr, "Content-Type")
				w.WriteHeader(http.StatusNotModified)
				return
			}
		} else {
			hdr["Cache-Control"] = h.hv.noStore
		}
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(a.DER)
}

// decodeGetPath splits an escaped GET path /ocsp/<caID>/<request> and
// decodes the request: percent-escapes (%2F, %2B, %3D) undone, standard or
// URL-safe base64 alphabet, padding optional. "/" is a base64 character,
// so the request may hold "//"; slashes before it (a responder URL
// configured with a trailing slash) are dropped, which is safe because the
// base64 of a DER SEQUENCE starts with 'M'. code is 0 on success, else the
// HTTP status: 404 bad CA id, 400 missing or undecodable request, 414 a
// request over ocsp.MaxRequestBytes.
func decodeGetPath(escaped string) (caID string, der []byte, code int) {
	rest, ok := strings.CutPrefix(escaped, "/ocsp/")
	if !ok {
		return "", nil, http.StatusNotFound
	}
	caID, enc, _ := strings.Cut(rest, "/")
	if !validCAID(caID) {
		return "", nil, http.StatusNotFound
	}
	if len(enc) > 3*maxRequestBase64 { // every character escaped as %XX
		return "", nil, http.StatusRequestURITooLong
	}
	if strings.IndexByte(enc, '%') >= 0 {
		var err error
		if enc, err = url.PathUnescape(enc); err != nil {
			return "", nil, http.StatusBadRequest
		}
	}
	enc = strings.TrimLeft(enc, "/")
	if len(enc) > maxRequestBase64 {
		return "", nil, http.StatusRequestURITooLong
	}
	trimmed := strings.TrimRight(enc, "=")
	if trimmed == "" || len(enc)-len(trimmed) > 2 {
		return "", nil, http.StatusBadRequest
	}
	alphabet := base64.RawStdEncoding
	if strings.ContainsAny(trimmed, "-_") {
		alphabet = base64.RawURLEncoding
	}
	der, err := alphabet.DecodeString(trimmed)
	if err != nil || len(der) == 0 {
		return "", nil, http.StatusBadRequest
	}
	if len(der) > ocsp.MaxRequestBytes {
		return "", nil, http.StatusRequestURITooLong
	}
	return caID, der, 0
}

// postCAID reads the CA id of a POST to /ocsp/<caID> (a trailing slash
// tolerated).
func postCAID(escaped string) (string, bool) {
	rest, ok := strings.CutPrefix(escaped, "/ocsp/")
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	return rest, validCAID(rest)
}

// isOCSPRequestType reports whether a Content-Type header names
// application/ocsp-request, parameters and case aside.
func isOCSPRequestType(values []string) bool {
	if len(values) != 1 {
		return false
	}
	mt, _, _ := strings.Cut(values[0], ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/ocsp-request")
}

// readBody reads at most ocsp.MaxRequestBytes+1 bytes, sized by the
// Content-Length hint when there is one, so an over-long body shows as
// longer than the limit without being read to its end.
func readBody(body io.Reader, hint int64) ([]byte, error) {
	size := 512
	if hint > 0 && hint <= ocsp.MaxRequestBytes {
		size = int(hint) + 1 // room to see EOF without growing
	}
	buf := make([]byte, 0, size)
	limited := io.LimitedReader{R: body, N: ocsp.MaxRequestBytes + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := limited.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// statusText is the plain-text body of a transport error.
func statusText(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "missing or undecodable OCSP request\n"
	case http.StatusRequestURITooLong, http.StatusRequestEntityTooLarge:
		return "OCSP request too large\n"
	case http.StatusNotFound:
		return "not found\n"
	}
	return http.StatusText(code) + "\n"
}
