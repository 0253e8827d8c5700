package api

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/netsource"
)

// Refusals counts requests refused before authentication; the audit log
// gets one event per source and minute (audit.RefusalCounter), never one
// per request.
type Refusals interface {
	Add(r audit.Refusal)
}

// Defaults of the per-source limit on requests refused before
// authentication.
const (
	DefaultUnauthenticatedPerSecond = netsource.DefaultPerSecond
	DefaultUnauthenticatedBurst     = netsource.DefaultBurst
)

// connState is what the API remembers about one client connection.
type connState struct {
	// certRefused: the connection's client certificate failed
	// authentication once.
	certRefused atomic.Bool
}

type connKey struct{}

// ConnContext is the http.Server ConnContext the API's server needs: it
// gives each connection a place to remember that its client certificate
// was refused, so that a source past its refusal budget gets a client
// certificate verified at most once per connection. Without it, such a
// source's client certificates are not verified at all (429).
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, new(connState))
}

func connOf(r *http.Request) *connState {
	c, _ := r.Context().Value(connKey{}).(*connState)
	return c
}

// byCertificate reports whether authenticate uses r's client certificate.
func byCertificate(r *http.Request) bool {
	return r.Header.Get("Authorization") == "" && r.TLS != nil && len(r.TLS.PeerCertificates) > 0
}

// worthAuthenticating says whether a request from a source past its
// budget is authenticated (and served if its credential verifies) rather
// than answered 429 at once: a bearer token costs a hash and one indexed
// lookup, a malformed one nothing; a client certificate is verified unless
// it was already refused on this connection; no credential fails anyway.
func worthAuthenticating(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return true
	}
	if byCertificate(r) {
		c := connOf(r)
		return c != nil && !c.certRefused.Load()
	}
	return false
}

// tooMany answers a source that used up its refusals.
func (h *Handler) tooMany(w http.ResponseWriter, r *http.Request, rt Route, anon authz.Principal, wait time.Duration) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, http.StatusTooManyRequests, "too many refused requests",
		fmt.Sprintf("too many requests from %s were refused for missing or bad credentials; until its budget refills (retry after %d s) only requests whose bearer token or client certificate verifies are served", anon.Source, secs), "")
	h.refuse(r, rt, anon, http.StatusTooManyRequests, "rate limited")
}

// refuse counts a request refused before authentication: it spends one of
// its source's refusals and is audited in the source's count for the
// minute. It never records the credential or the query string.
func (h *Handler) refuse(r *http.Request, rt Route, anon authz.Principal, status int, reason string) {
	if status != http.StatusTooManyRequests {
		h.limiter.Fail(anon.Source)
	}
	h.d.Refusals.Add(audit.Refusal{Source: anon.Source, Action: rt.Action, Path: r.URL.Path, Status: status, Reason: reason})
	h.d.Log.Debug("api request refused", "method", r.Method, "path", r.URL.Path, "status", status, "remote", anon.Source, "request_id", anon.RequestID, "reason", reason)
}
