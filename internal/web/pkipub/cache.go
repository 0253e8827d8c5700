package pkipub

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAgeSeconds is the Cache-Control max-age for a response that is good
// until next: the time left, capped at h.maxAge, never negative. RFC 5019
// 6.2 wants max-age to end before nextUpdate; the cap bounds how long a
// cache keeps a status after it changes. A zero next (not given) gets the
// cap.
func (h *handler) maxAgeSeconds(now, next time.Time) int64 {
	d := h.maxAge
	if !next.IsZero() {
		d = min(d, next.Sub(now))
	}
	return max(int64(d/time.Second), 0)
}

// cacheControl builds "public, max-age=N, no-transform" (RFC 5019 6.2
// lists these for OCSP; no-transform because a proxy must not recompress
// signed DER), plus must-revalidate when a stale copy must not be served.
func cacheControl(seconds int64, mustRevalidate bool) string {
	b := make([]byte, 0, 64)
	b = append(b, "public, max-age="...)
	b = strconv.AppendInt(b, seconds, 10)
	b = append(b, ", no-transform"...)
	if mustRevalidate {
		b = append(b, ", must-revalidate"...)
	}
	return string(b)
}

// httpTime formats t as an HTTP date (RFC 9110 5.6.7).
func httpTime(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// hashETag is a strong entity tag over DER: 128 bits of its SHA-256.
func hashETag(der []byte) string {
	sum := sha256.Sum256(der)
	var b [34]byte
	b[0] = '"'
	hex.Encode(b[1:33], sum[:16])
	b[33] = '"'
	return string(b[:])
}

// quoteETag makes a caller-supplied tag a valid entity-tag.
func quoteETag(tag string) string {
	if strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, `W/"`) {
		return tag
	}
	return `"` + tag + `"`
}

// noneMatch reports whether an If-None-Match header (all its lines) matches
// etag under the weak comparison RFC 9110 13.1.2 prescribes: "*", or any
// listed tag equal to etag ignoring W/. A malformed list matches nothing.
func noneMatch(values []string, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, v := range values {
		for {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			if v[0] == '*' {
				return true
			}
			v = strings.TrimPrefix(v, "W/")
			if v == "" || v[0] != '"' {
				return false
			}
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				return false
			}
			if v[:end+2] == etag {
				return true
			}
			v = v[end+2:]
		}
	}
	return false
}

// notModified evaluates a GET or HEAD's conditions in RFC 9110 13.2.2
// order: If-None-Match when present, else If-Modified-Since when
// useModified (at the second granularity of HTTP dates).
func notModified(r *http.Request, etag string, lastModified time.Time, useModified bool) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		return noneMatch(inm, etag)
	}
	if !useModified || lastModified.IsZero() {
		return false
	}
	ims := r.Header["If-Modified-Since"]
	if len(ims) == 0 {
		return false
	}
	t, err := http.ParseTime(ims[0])
	if err != nil {
		return false
	}
	return !lastModified.Truncate(time.Second).After(t)
}
