package acmeapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/store"
)

// problem is an ACME problem with what acme.Problem does not carry: an
// HTTP status other than its type's (405, 413, 415, 404), the
// "algorithms" member of badSignatureAlgorithm (RFC 8555 §6.2) and the
// Allow header of a 405.
type problem struct {
	p          *acme.Problem
	status     int
	algorithms []string
	allow      string
}

func (e *problem) Error() string { return e.p.Error() }
func (e *problem) Unwrap() error { return e.p }

// withStatus is a problem of type t answered with an HTTP status of its own.
func withStatus(status int, t acme.ErrorType, format string, args ...any) error {
	return &problem{p: acme.NewProblem(t, format, args...), status: status}
}

func badSignatureAlgorithm(algs []jose.SignatureAlgorithm, format string, args ...any) error {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return &problem{p: acme.NewProblem(acme.ErrBadSignatureAlgorithm, format, args...), algorithms: names}
}

func notFound(format string, args ...any) error {
	return withStatus(http.StatusNotFound, acme.ErrMalformed, format, args...)
}

func methodNotAllowed(allow, method, path string) error {
	return &problem{
		p:      acme.NewProblem(acme.ErrMalformed, "method %s is not allowed on %s; use %s", method, path, allow),
		status: http.StatusMethodNotAllowed, allow: allow,
	}
}

// toProblem is the edge's one mapping from errors to problem documents.
// internal reports an error the client did not cause; its detail is not
// shown.
func toProblem(err error) (pr *problem, internal bool) {
	var ep *problem
	if errors.As(err, &ep) {
		return ep, false
	}
	if p := acme.AsProblem(err); p != nil {
		return &problem{p: p}, false
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &problem{p: acme.NewProblem(acme.ErrMalformed, "request body is larger than %d bytes", mbe.Limit),
			status: http.StatusRequestEntityTooLarge}, false
	}
	if errors.Is(err, acme.ErrNotFound) {
		return &problem{p: acme.NewProblem(acme.ErrMalformed, "no such resource"), status: http.StatusNotFound}, false
	}
	if store.Unavailable(err) {
		return &problem{p: acme.NewProblem(acme.ErrServerInternal, "the server's database is unavailable; retry later"),
			status: http.StatusServiceUnavailable}, true
	}
	return &problem{p: acme.NewProblem(acme.ErrServerInternal, "internal error")}, !errors.Is(err, context.Canceled)
}

func (e *problem) httpStatus() int {
	if e.status != 0 {
		return e.status
	}
	return e.p.Status()
}

// problemDoc is the JSON of a problem (RFC 7807, RFC 8555 §6.7).
type problemDoc struct {
	Type        string           `json:"type"`
	Detail      string           `json:"detail"`
	Status      int              `json:"status,omitempty"`
	Identifier  *acme.Identifier `json:"identifier,omitempty"`
	Subproblems []problemDoc     `json:"subproblems,omitempty"`
	Algorithms  []string         `json:"algorithms,omitempty"`
}

// renderProblem is p's document answered with HTTP status (0 leaves the
// status member out, as in subproblems).
func renderProblem(p *acme.Problem, status int) problemDoc {
	d := problemDoc{Type: p.URN(), Detail: p.Detail, Status: status, Identifier: p.Identifier}
	for _, sp := range p.Subproblems {
		if sp != nil {
			d.Subproblems = append(d.Subproblems, renderProblem(sp, 0))
		}
	}
	return d
}

// writeProblem answers with the problem err maps to. Every problem carries
// a fresh nonce, so a client can retry a badNonce at once.
func (h *Handler) writeProblem(w http.ResponseWriter, rq *request, err error) {
	pr, internal := toProblem(err)
	rq.problem = pr.p
	if internal {
		h.d.Log.Error("acme internal error", "method", rq.r.Method, "path", rq.r.URL.Path, "request_id", rq.id, "err", err)
	}
	hdr := w.Header()
	// With the database unavailable there is no nonce to hand out.
	if hdr.Get("Replay-Nonce") == "" && pr.httpStatus() != http.StatusServiceUnavailable {
		if n, nerr := h.d.Service.NewNonce(rq.r.Context()); nerr == nil {
			hdr.Set("Replay-Nonce", n)
		} else if !errors.Is(nerr, context.Canceled) {
			h.d.Log.Error("acme nonce for a problem response", "request_id", rq.id, "err", nerr)
		}
	}
	status := pr.httpStatus()
	if pr.p.Type == acme.ErrRateLimited && pr.p.RetryAfterSeconds > 0 {
		hdr.Set("Retry-After", strconv.Itoa(pr.p.RetryAfterSeconds))
	}
	if status == http.StatusServiceUnavailable {
		hdr.Set("Retry-After", "5")
	}
	if status == http.StatusConflict && pr.p.Location != "" && rq.urls.name != "" {
		hdr.Set("Location", rq.urls.dir()+"/"+pr.p.Location)
	}
	if pr.allow != "" {
		hdr.Set("Allow", pr.allow)
	}
	doc := renderProblem(pr.p, status)
	doc.Algorithms = pr.algorithms
	writeBody(w, status, "application/problem+json", doc)
}
