// Package api owns the /api/v1 REST edge: it authenticates every request,
// decodes and size-limits bodies, calls the core, and is the one place where
// core errors become HTTP statuses and JSON error bodies.
package api

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
)

// Authenticator turns a bearer token into a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (authz.Principal, error)
}

// Issuer is the issuance path.
type Issuer interface {
	Issue(ctx context.Context, req issue.Request) (*issue.Result, error)
	CreateRoot(ctx context.Context, p authz.Principal, spec *ca.Spec) (*ca.CA, error)
	CreateIntermediate(ctx context.Context, p authz.Principal, parent string, spec *ca.Spec) (*ca.CA, error)
	CreateExternal(ctx context.Context, p authz.Principal, spec *ca.Spec) (*ca.CA, error)
	ImportCertificate(ctx context.Context, p authz.Principal, idOrName string, cert *x509.Certificate, chain []*x509.Certificate) (*ca.CA, error)
	Chain(ctx context.Context, idOrName string) ([]*x509.Certificate, error)
}

// CAs changes CA lifecycle state.
type CAs interface {
	Get(ctx context.Context, idOrName string) (*ca.CA, error)
	List(ctx context.Context) ([]*ca.CA, error)
	Disable(ctx context.Context, idOrName string) (*ca.CA, error)
	Enable(ctx context.Context, idOrName string) (*ca.CA, error)
	Delete(ctx context.Context, idOrName string) (*ca.CA, error)
	Restore(ctx context.Context, idOrName string) (*ca.CA, error)
}

// Inventory reads issued certificates.
type Inventory interface {
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
	ListCertificates(ctx context.Context, f inventory.Filter) ([]*inventory.Certificate, error)
	CountCertificates(ctx context.Context, caID string) (int, error)
}

// Profiles manages built-in and custom profiles.
type Profiles interface {
	Get(ctx context.Context, name string) (*profile.Profile, error)
	List(ctx context.Context) ([]*profile.Profile, error)
	Create(ctx context.Context, p *profile.Profile) error
	Update(ctx context.Context, p *profile.Profile) error
	Delete(ctx context.Context, name string) error
}

// Deps are the API's dependencies; all are required.
type Deps struct {
	Log       *slog.Logger
	Clock     clock.Clock
	Auth      Authenticator
	Issuer    Issuer
	CAs       CAs
	Inventory Inventory
	Profiles  Profiles
	Revoker   Revoker
	// DefaultCA issues when a request names no CA.
	DefaultCA string
	// MaxBody bounds request bodies; 0 means 1 MiB.
	MaxBody int64
}

// Permission names what a route does, for authorisation.
type Permission string

// Permissions. Every principal today is an admin; scoped roles arrive with
// the access-control issue, and each route already names what it needs.
const (
	PermRead    Permission = "read"
	PermIssue   Permission = "issue"
	PermCAAdmin Permission = "ca-admin"
	PermProfile Permission = "profile-admin"
	PermRevoke  Permission = "revoke"
)

// Route is one entry of the route table.
type Route struct {
	Method     string
	Pattern    string
	Permission Permission
	handle     func(w http.ResponseWriter, r *http.Request, p authz.Principal) error
}

// Handler serves /api/v1.
type Handler struct {
	d      Deps
	mux    *http.ServeMux
	routes []Route
}

// New builds the handler.
func New(d Deps) (*Handler, error) {
	if d.Log == nil || d.Clock == nil || d.Auth == nil || d.Issuer == nil || d.CAs == nil || d.Inventory == nil || d.Profiles == nil || d.Revoker == nil {
		return nil, errors.New("api: every dependency is required")
	}
	if d.MaxBody <= 0 {
		d.MaxBody = 1 << 20
	}
	h := &Handler{d: d, mux: http.NewServeMux()}
	h.routes = []Route{
		{"GET", "/api/v1/cas", PermRead, h.listCAs},
		{"POST", "/api/v1/cas", PermCAAdmin, h.createCA},
		{"GET", "/api/v1/cas/{ca}", PermRead, h.showCA},
		{"GET", "/api/v1/cas/{ca}/chain", PermRead, h.caChain},
		{"GET", "/api/v1/cas/{ca}/csr", PermRead, h.caCSR},
		{"POST", "/api/v1/cas/{ca}/certificate", PermCAAdmin, h.importCA},
		{"POST", "/api/v1/cas/{ca}/disable", PermCAAdmin, h.caState(CAs.Disable)},
		{"POST", "/api/v1/cas/{ca}/enable", PermCAAdmin, h.caState(CAs.Enable)},
		{"POST", "/api/v1/cas/{ca}/delete", PermCAAdmin, h.caState(CAs.Delete)},
		{"POST", "/api/v1/cas/{ca}/restore", PermCAAdmin, h.caState(CAs.Restore)},
		{"POST", "/api/v1/certificates/sign", PermIssue, h.sign},
		{"POST", "/api/v1/certificates/issue", PermIssue, h.issueManaged},
		{"GET", "/api/v1/certificates", PermRead, h.listCerts},
		{"GET", "/api/v1/certificates/{serial}", PermRead, h.showCert},
		{"GET", "/api/v1/certificates/{serial}/pem", PermRead, h.certPEM},
		{"POST", "/api/v1/certificates/{serial}/revoke", PermRevoke, h.revokeCert},
		{"POST", "/api/v1/revocations", PermRevoke, h.revokeBulk},
		{"POST", "/api/v1/cas/{ca}/revoke", PermCAAdmin, h.revokeCA},
		{"GET", "/api/v1/profiles", PermRead, h.listProfiles},
		{"POST", "/api/v1/profiles", PermProfile, h.createProfile},
		{"GET", "/api/v1/profiles/{name}", PermRead, h.showProfile},
		{"PUT", "/api/v1/profiles/{name}", PermProfile, h.updateProfile},
		{"DELETE", "/api/v1/profiles/{name}", PermProfile, h.deleteProfile},
		{"GET", "/api/v1/whoami", PermRead, h.whoami},
	}
	for _, rt := range h.routes {
		h.mux.Handle(rt.Method+" "+rt.Pattern, h.wrap(rt))
	}
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		// Unknown API paths also require a token, so their existence leaks nothing.
		if _, err := h.authenticate(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="certwright"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required", "")
			return
		}
		writeError(w, http.StatusNotFound, "not found", "no API route "+r.Method+" "+r.URL.Path, "")
	})
	return h, nil
}

// Routes lists the route table (for tests that walk every route).
func (h *Handler) Routes() []Route { return append([]Route(nil), h.routes...) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) authenticate(r *http.Request) (authz.Principal, error) {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return authz.Principal{}, authz.ErrUnauthenticated
	}
	return h.d.Auth.Authenticate(r.Context(), strings.TrimSpace(tok))
}

// allow checks the principal's role against the route's permission.
func allow(p authz.Principal, perm Permission) error {
	if p.Role == authz.RoleAdmin {
		return nil
	}
	return fmt.Errorf("%w: role %q lacks permission %q", issue.ErrForbidden, p.Role, perm)
}

func (h *Handler) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		p, err := h.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="certwright"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required", "")
			h.d.Log.Info("api request", "method", r.Method, "path", r.URL.Path, "status", 401, "remote", r.RemoteAddr)
			return
		}
		if err := allow(p, rt.Permission); err != nil {
			writeError(w, http.StatusForbidden, "forbidden", err.Error(), "")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.d.MaxBody)
		status := http.StatusOK
		if err := rt.handle(w, r, p); err != nil {
			status = h.fail(w, err)
		}
		h.d.Log.Debug("api request", "method", r.Method, "path", r.URL.Path, "principal", p.Name,
			"status", status, "duration_ms", time.Since(start).Milliseconds())
	})
}

// errorStatus is the one mapping from core errors to HTTP statuses.
var errorStatus = []struct {
	target error
	status int
	label  string
}{
	{issue.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{revoke.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{revoke.ErrNoMatch, http.StatusNotFound, "nothing matches"},
	{revoke.ErrForbidden, http.StatusForbidden, "forbidden"},
	{errBadInput, http.StatusBadRequest, "invalid request"},
	{ca.ErrSpec, http.StatusBadRequest, "invalid CA definition"},
	{ca.ErrImport, http.StatusBadRequest, "certificate cannot be imported"},
	{issue.ErrForbidden, http.StatusForbidden, "forbidden"},
	{issue.ErrApprovalRequired, http.StatusForbidden, "approval required"},
	{ca.ErrNotIssuing, http.StatusConflict, "CA cannot issue"},
	{ca.ErrTransition, http.StatusConflict, "CA state conflict"},
	{issue.ErrConflict, http.StatusConflict, "conflict"},
	{errConflict, http.StatusConflict, "conflict"},
	{profile.ErrUnknown, http.StatusNotFound, "unknown profile"},
	{profile.ErrTooLarge, http.StatusRequestEntityTooLarge, "profile definition too large"},
	{profile.ErrBuiltin, http.StatusConflict, "built-in profile"},
	{errNotFound, http.StatusNotFound, "not found"},
	{store.ErrNotFound, http.StatusNotFound, "not found"},
	{store.ErrConflict, http.StatusConflict, "already exists"},
}

func (h *Handler) fail(w http.ResponseWriter, err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large", fmt.Sprintf("the limit is %d bytes", mbe.Limit), "")
		return http.StatusRequestEntityTooLarge
	}
	var v *profile.Violation
	if errors.As(err, &v) {
		writeError(w, http.StatusBadRequest, "policy violation", v.Error(), v.Rule)
		return http.StatusBadRequest
	}
	var fe *profile.FieldError
	if errors.As(err, &fe) {
		writeError(w, http.StatusBadRequest, "invalid profile", fe.Error(), fe.Field)
		return http.StatusBadRequest
	}
	var le *lint.Error
	if errors.As(err, &le) {
		writeError(w, http.StatusUnprocessableEntity, "pre-issuance lint failed", err.Error(), "")
		return http.StatusUnprocessableEntity
	}
	for _, m := range errorStatus {
		if errors.Is(err, m.target) {
			writeError(w, m.status, m.label, err.Error(), "")
			return m.status
		}
	}
	if errors.Is(err, context.Canceled) {
		return 499
	}
	h.d.Log.Error("api internal error", "err", err)
	writeError(w, http.StatusInternalServerError, "internal error", "the server failed to complete the request; see its log", "")
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, detail, rule string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg, "detail": detail, "rule": rule})
}

func writePEM(w http.ResponseWriter, b []byte) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(b)
	return err
}

var (
	errBadInput = errors.New("api: bad input")
	errConflict = errors.New("api: conflict")
	errNotFound = errors.New("api: not found")
)

func badInput(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadInput}, a...)...)
}

// decode reads one JSON object strictly: unknown fields are errors.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badInput("request body is not valid JSON for this route: %v", err)
	}
	if dec.More() {
		return badInput("request body holds more than one JSON value")
	}
	return nil
}
