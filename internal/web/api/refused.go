package api

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
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
	DefaultUnauthenticatedPerSecond = 10
	DefaultUnauthenticatedBurst     = 20
	// maxLimitedSources bounds the sources the limiter tracks; past it,
	// new sources share one bucket.
	maxLimitedSources = 10000
)

// failureLimiter is a token bucket per source address (IPv6: per /64),
// spent by requests refused before authentication. A source whose bucket
// is empty is answered 429 for every request that would be refused, but
// not for one whose credential verifies: many clients can share an
// address (NAT, a CI runner, a load balancer), and one of them failing
// must not lock the others out. What a request costs before it is known
// to fail stays bounded (wrap): no credential or a malformed token costs
// nothing, a bearer token a hash and one lookup by primary key, and a
// client certificate — whose chain verification is the expensive part —
// is verified at most once per connection while its source is over budget
// (a TLS connection's certificate never changes; ConnContext).
type failureLimiter struct {
	now   func() time.Time
	rate  float64 // tokens a second
	burst float64

	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

// overflowSource is the bucket shared by sources past maxLimitedSources.
const overflowSource = "*"

func newFailureLimiter(now func() time.Time, rate float64, burst int) *failureLimiter {
	if rate <= 0 {
		rate = DefaultUnauthenticatedPerSecond
	}
	if burst <= 0 {
		burst = DefaultUnauthenticatedBurst
	}
	return &failureLimiter{now: now, rate: rate, burst: float64(burst), buckets: map[string]*tokenBucket{}}
}

func (l *failureLimiter) refill(b *tokenBucket, now time.Time) {
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d*l.rate)
	}
	b.at = now
}

// wait returns how long source must wait before its next refused request
// is answered other than 429: 0 when it is within its budget.
func (l *failureLimiter) wait(source string) time.Duration {
	source = netsource.Key(source)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[source]
	if b == nil {
		if len(l.buckets) < maxLimitedSources {
			return 0
		}
		if b = l.buckets[overflowSource]; b == nil {
			return 0
		}
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// fail spends one token of source's bucket.
func (l *failureLimiter) fail(source string) {
	source = netsource.Key(source)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[source]
	if b == nil {
		if len(l.buckets) >= maxLimitedSources {
			l.prune(now)
		}
		if len(l.buckets) >= maxLimitedSources {
			source = overflowSource
			b = l.buckets[source]
		}
		if b == nil {
			b = &tokenBucket{tokens: l.burst, at: now}
			l.buckets[source] = b
		}
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
}

// prune forgets the sources whose buckets have filled up again.
func (l *failureLimiter) prune(now time.Time) {
	for s, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, s)
		}
	}
}

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
		h.limiter.fail(anon.Source)
	}
	h.d.Refusals.Add(audit.Refusal{Source: anon.Source, Action: rt.Action, Path: r.URL.Path, Status: status, Reason: reason})
	h.d.Log.Debug("api request refused", "method", r.Method, "path", r.URL.Path, "status", status, "remote", anon.Source, "request_id", anon.RequestID, "reason", reason)
}
