// Package pkipub owns the plain-HTTP edge that relying parties use: CA
// certificates for AIA caIssuers (/ca/<id>.crt), CRLs (/crl/<id>.crl),
// OCSP (/ocsp/<id>, RFC 6960 appendix A and RFC 5019 5-6), /healthz and
// /readyz.
// It only carries bytes: CRLs and OCSP responses are built and signed
// behind the CRLs and OCSP ports, and no key is held here.
package pkipub

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
)

// CAs reads CA records.
type CAs interface {
	GetCA(ctx context.Context, idOrName string) (*ca.CA, error)
}

// CRLs gives each CA's current CRL.
type CRLs interface {
	// CRL returns the current CRL of the CA with this id. No CRL and no
	// error (nil, nil) means there is no such CA, or it has no CRL yet:
	// 404. An error means the CRL could not be read now: 503.
	CRL(ctx context.Context, caID string) (*CRL, error)
}

// CRL is a signed CRL and the fields its HTTP caching is derived from.
type CRL struct {
	DER []byte
	// Number is the cRLNumber (RFC 5280 5.2.3); the ETag is derived from it,
	// so a new CRL must have a new number.
	Number     *big.Int
	ThisUpdate time.Time
	NextUpdate time.Time
}

// OCSP answers OCSP requests.
type OCSP interface {
	// Respond answers a DER request (as received: not yet parsed) for the
	// CA with this id. It never fails: a request that does not parse, an
	// unknown CA or a transient problem is answered with an OCSP error
	// response (ocsp.ErrorResponse) and Cacheable false. request is not
	// used by the handler after Respond returns.
	Respond(ctx context.Context, caID string, request []byte) OCSPAnswer
}

// OCSPAnswer is a DER OCSPResponse with what HTTP caching needs.
type OCSPAnswer struct {
	DER []byte
	// ETag, when set, is the response's entity tag (RFC 9110 8.8.3,
	// quoted: `"…"`), computed once when the response is signed; when empty
	// the handler hashes DER on every cacheable GET.
	ETag       string
	ThisUpdate time.Time
	NextUpdate time.Time
	// Cacheable is true for signed responses and false for error responses,
	// which caches must not keep.
	Cacheable bool
}

// Deps are the handler's dependencies; all but MaxAge, the rate settings
// and NotReady are required.
type Deps struct {
	CAs CAs
	// Health answers /healthz and /readyz (health.go).
	Health *Health
	// NotReady says why the server should get no requests (starting,
	// draining, ...; health.go), "" when it may; for /readyz. Nil means
	// always ready.
	NotReady func() string
	CRLs     CRLs
	OCSP     OCSP
	Clock    clock.Clock
	Log      *slog.Logger
	// MaxAge caps the Cache-Control max-age of CRLs and OCSP responses,
	// which otherwise runs to nextUpdate: it bounds how long an HTTP cache
	// keeps serving a status after a revocation. Zero means one hour.
	MaxAge time.Duration
	// RatePerSecond is the per-source request rate of /ocsp, /crl and /ca
	// (burst twice it, 429 past it; ratelimit.go). Zero means
	// DefaultRatePerSecond; negative turns the limit off.
	RatePerSecond int
	// RateLimitLoopback applies the limit to loopback peers too, which
	// are otherwise exempt (tests).
	RateLimitLoopback bool
}

// DefaultMaxAge is the max-age cap when Deps.MaxAge is zero.
const DefaultMaxAge = time.Hour

type handler struct {
	d      Deps
	maxAge time.Duration
	mux    *http.ServeMux
	hv     headerValues
	lim    *limiter
}

// headerValues are header value slices shared by every response, assigned
// straight into the header map so the hot path does not allocate them.
// Nothing mutates a header value slice after the handler sets it.
type headerValues struct {
	ocspResponse, pkixCRL, textPlain, nosniff, noStore, allowOCSP, allowCRL, retryAfter []string
}

// New returns the plain-HTTP handler. /ocsp/ and /crl/ are routed before
// http.ServeMux: the mux cleans paths and redirects "//" with a 301, and a
// base64 OCSP request in a GET path may contain "//".
func New(d Deps) (http.Handler, error) {
	if d.CAs == nil || d.Health == nil || d.CRLs == nil || d.OCSP == nil || d.Clock == nil || d.Log == nil {
		return nil, errors.New("pkipub: every dependency is required")
	}
	if d.MaxAge < 0 {
		return nil, errors.New("pkipub: negative max-age cap")
	}
	h := &handler{d: d, maxAge: d.MaxAge, mux: http.NewServeMux(), hv: headerValues{
		ocspResponse: []string{"application/ocsp-response"},
		pkixCRL:      []string{"application/pkix-crl"},
		textPlain:    []string{"text/plain; charset=utf-8"},
		nosniff:      []string{"nosniff"},
		noStore:      []string{"no-store"},
		allowOCSP:    []string{"GET, HEAD, POST"},
		allowCRL:     []string{"GET, HEAD"},
		retryAfter:   []string{"30"},
	}}
	if h.maxAge == 0 {
		h.maxAge = DefaultMaxAge
	}
	rate := d.RatePerSecond
	if rate == 0 {
		rate = DefaultRatePerSecond
	}
	h.lim = newLimiter(rate, d.RateLimitLoopback, d.Clock.Now)
	h.mux.HandleFunc("GET /ca/{file}", h.serveCA)
	notReady := d.NotReady
	if notReady == nil {
		notReady = func() string { return "" }
	}
	h.mux.Handle("GET /healthz", d.Health.Healthz())
	h.mux.Handle("GET /readyz", d.Health.Readyz(notReady))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.text(w, http.StatusNotFound, "not found\n")
	})
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !h.lim.allow(r) {
		h.tooMany(w)
		return
	}
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/ocsp/"):
		h.serveOCSP(w, r)
	case strings.HasPrefix(p, "/crl/"):
		h.serveCRL(w, r)
	default:
		h.mux.ServeHTTP(w, r)
	}
}

func (h *handler) serveCA(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".crt")
	if !ok || !strings.HasPrefix(id, "ca_") {
		http.NotFound(w, r)
		return
	}
	c, err := h.d.CAs.GetCA(r.Context(), id)
	if err != nil || len(c.CertDER) == 0 || c.ID != id {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(c.CertDER)
}

// text writes a plain-text status page; every client error of this edge
// goes through it.
func (h *handler) text(w http.ResponseWriter, code int, msg string) {
	hdr := w.Header()
	hdr["Content-Type"] = h.hv.textPlain
	hdr["X-Content-Type-Options"] = h.hv.nosniff
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}

// validCAID accepts what a CA id can look like ("ca_" and up to 64 letters,
// digits, '-' or '_'), so junk never reaches the ports.
func validCAID(id string) bool {
	rest, ok := strings.CutPrefix(id, "ca_")
	if !ok || len(rest) == 0 || len(rest) > 64 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
