// Package api owns the /api/v1 REST edge: it authenticates every request
// (bearer token or client certificate), checks the route's permission from
// the one route table, audits every refusal (those refused before
// authentication as counts per source and minute, with a per-source
// limit), decodes and size-limits bodies, calls the core, and is the one place where core errors become
// HTTP statuses and JSON error bodies.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/errtext"
	"github.com/certwright/certwright/internal/est"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/netsource"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/scep"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// Authenticator turns a bearer token or a client certificate into a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (authz.Principal, error)
	AuthenticateCertificate(ctx context.Context, leaf *x509.Certificate, intermediates []*x509.Certificate) (authz.Principal, error)
}

// Issuer is the issuance path.
type Issuer interface {
	Issue(ctx context.Context, req issue.Request) (*issue.Result, error)
	CreateRoot(ctx context.Context, p authz.Principal, spec *ca.Spec) (*ca.CA, error)
	CreateIntermediate(ctx context.Context, p authz.Principal, parent string, spec *ca.Spec) (*ca.CA, error)
	CreateExternal(ctx context.Context, p authz.Principal, spec *ca.Spec) (*ca.CA, error)
	ImportCertificate(ctx context.Context, p authz.Principal, idOrName string, cert *x509.Certificate, chain []*x509.Certificate) (*ca.CA, error)
	ImportRoot(ctx context.Context, p authz.Principal, name string, cert *x509.Certificate) (*ca.CA, error)
	Chain(ctx context.Context, idOrName string) ([]*x509.Certificate, error)
	// ExportKey hands a retained managed key to a machine principal.
	ExportKey(ctx context.Context, p authz.Principal, serial string) ([]byte, error)
}

// Approvals is the approval workflow.
type Approvals interface {
	Approve(ctx context.Context, approver authz.Principal, id, comment string) (*issue.ApprovalRequest, *issue.Result, error)
	Reject(ctx context.Context, approver authz.Principal, id, comment string) (*issue.ApprovalRequest, error)
	GetRequest(ctx context.Context, p authz.Principal, id string) (*issue.ApprovalRequest, error)
	ListRequests(ctx context.Context, p authz.Principal, status string, limit int) ([]*issue.ApprovalRequest, error)
}

// CAs changes CA lifecycle state.
type CAs interface {
	Get(ctx context.Context, idOrName string) (*ca.CA, error)
	List(ctx context.Context) ([]*ca.CA, error)
	Disable(ctx context.Context, p authz.Principal, idOrName string) (*ca.CA, error)
	Enable(ctx context.Context, p authz.Principal, idOrName string) (*ca.CA, error)
	Delete(ctx context.Context, p authz.Principal, idOrName string) (*ca.CA, error)
	Restore(ctx context.Context, p authz.Principal, idOrName string) (*ca.CA, error)
}

// Inventory reads issued certificates.
type Inventory interface {
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
	ListCertificates(ctx context.Context, f inventory.Filter) ([]*inventory.Certificate, error)
	CountCertificates(ctx context.Context, caID string) (int, error)
	// CompromisedKey is the report of a key on the compromised-key list,
	// nil when it is not listed.
	CompromisedKey(ctx context.Context, spkiSHA256 string) (*inventory.CompromisedKey, error)
}

// Profiles manages built-in and custom profiles.
type Profiles interface {
	Get(ctx context.Context, name string) (*profile.Profile, error)
	List(ctx context.Context) ([]*profile.Profile, error)
	Create(ctx context.Context, who authz.Principal, p *profile.Profile) error
	Update(ctx context.Context, who authz.Principal, p *profile.Profile) error
	Delete(ctx context.Context, who authz.Principal, name string) error
}

// Auditor records refused requests and reads the audit log.
type Auditor interface {
	AppendAudit(ctx context.Context, evs ...audit.Event) error
	EachAuditEventBetween(ctx context.Context, since, until time.Time, fn func(*audit.Event) error) error
	// Verify walks the chain and its checkpoints.
	// Verify walks the chain and records who asked and what it found.
	Verify(ctx context.Context, p authz.Principal) (*audit.Report, error)
}

// Reports reads what was issued and revoked in a period.
type Reports interface {
	EachIssued(ctx context.Context, since, until time.Time, fn func(*inventory.Certificate) error) error
	EachRevokedBetween(ctx context.Context, since, until time.Time, fn func(r *inventory.Revocation, cert *inventory.Certificate) error) error
}

// Deps are the API's dependencies; all are required.
type Deps struct {
	Log       *slog.Logger
	Clock     clock.Clock
	Auth      Authenticator
	Issuer    Issuer
	Approvals Approvals
	CAs       CAs
	Inventory Inventory
	Profiles  Profiles
	Revoker   Revoker
	Access    *access.Service
	Auditor   Auditor
	Reports   Reports
	ACME      ACMEAdmin
	// EST manages EST provisioners and enrolment secrets (est.go; nil:
	// not served).
	EST ESTAdmin
	// SCEP administers SCEP provisioners (scep.go).
	SCEP SCEPAdmin
	// Lifecycle renews, rotates and reports renewal windows (lifecycle.go).
	Lifecycle Lifecycle
	// Imports adds certificates issued elsewhere to the inventory (imports.go).
	Imports Importer
	// Compliance builds the compliance report (compliance.go).
	Compliance Compliance
	// Scans answers the scan routes (scan.go; nil: not served).
	Scans Scans
	// SSO exchanges identity providers' ID tokens for tokens (sso.go; nil:
	// none configured).
	SSO SSO
	// DefaultCA issues when a request names no CA.
	DefaultCA string
	// MaxBody bounds request bodies; 0 means 1 MiB.
	MaxBody int64
	// Refusals counts requests refused before authentication (refused.go).
	Refusals Refusals
	// UnauthenticatedPerSecond and UnauthenticatedBurst limit such
	// refusals per source; 0 takes the defaults.
	UnauthenticatedPerSecond float64
	UnauthenticatedBurst     int
	// Origins are browser origins (https://host[:port]) a write may come
	// from besides the server's own; any other Origin is refused (csrf.go).
	Origins []string
	// OwnHosts are the names in the server's TLS certificate: a write whose
	// Origin is https://<the request's Host> with such a name is same-origin.
	OwnHosts []string
	// StoreTimeout bounds each request, and so every store call it makes
	// (deadline.go); 0 means DefaultStoreTimeout.
	StoreTimeout time.Duration
	// PublicHTTPURL is the base of the CRL and CA certificate URLs relying
	// parties use (public_http_url); a CA's view shows its own.
	PublicHTTPURL string
	// CursorKey seals list cursors (listscan.go): 32 bytes every replica
	// sharing the database derives alike, so a cursor from one works on
	// another. Nil: a random key of this process.
	CursorKey []byte
}

// Route is one entry of the route table: what it is called in the audit
// log, and the permissions of which a caller must hold at least one, or
// (AuthenticatedOnly) none but being authenticated.
type Route struct {
	Method      string
	Pattern     string
	Action      string
	Permissions []authz.Permission
	// AuthenticatedOnly routes take any authenticated principal, one with
	// no role at all included; they declare no permission.
	AuthenticatedOnly bool
	handle            func(w http.ResponseWriter, r *http.Request, p authz.Principal) error
	// bodyTypes are the media types the route's body may have beyond
	// application/json (csrf.go).
	bodyTypes []string
	// slow routes get slowRouteTimeout rather than the store timeout
	// (deadline.go).
	slow bool
}

// Handler serves /api/v1.
type Handler struct {
	d      Deps
	mux    *http.ServeMux
	routes []Route
	// public are the routes that authenticate with their body (sso.go).
	public  []Route
	limiter *netsource.Limiter
	// cursors seals certificate-listing positions; scan bounds listings.
	cursors *cursorSealer
	scan    inventory.ScanLimits
	fields  *fieldCache // request types' JSON fields, for decode
}

func route(method, pattern, action string, handle func(http.ResponseWriter, *http.Request, authz.Principal) error, perms ...authz.Permission) Route {
	return Route{Method: method, Pattern: pattern, Action: action, Permissions: perms, handle: handle}
}

// authenticated is a route any authenticated principal may use, with or
// without a role: what concerns only the caller's own credential.
func authenticated(method, pattern, action string, handle func(http.ResponseWriter, *http.Request, authz.Principal) error) Route {
	return Route{Method: method, Pattern: pattern, Action: action, AuthenticatedOnly: true, handle: handle}
}

// New builds the handler.
func New(d Deps) (*Handler, error) {
	if d.Log == nil || d.Clock == nil || d.Auth == nil || d.Issuer == nil || d.Approvals == nil || d.CAs == nil ||
		d.Inventory == nil || d.Profiles == nil || d.Revoker == nil || d.Access == nil || d.Auditor == nil || d.Reports == nil || d.ACME == nil || d.SCEP == nil {
		return nil, errors.New("api: every dependency is required")
	}
	if d.Refusals == nil {
		return nil, errors.New("api: Refusals is required: requests refused before authentication are audited through it")
	}
	if d.MaxBody <= 0 {
		d.MaxBody = 1 << 20
	}
	h := &Handler{d: d, mux: http.NewServeMux(),
		limiter: netsource.NewLimiter(d.Clock.Now, d.UnauthenticatedPerSecond, d.UnauthenticatedBurst),
		scan:    inventory.ScanLimits{Page: inventory.ScanPage, Max: inventory.ScanMax}, fields: &fieldCache{}}
	var err error
	if h.cursors, err = newCursorSealer(d.CursorKey); err != nil {
		return nil, err
	}
	const (
		caRead, caManage           = authz.PermCARead, authz.PermCAManage
		certRead, certIssue        = authz.PermCertRead, authz.PermCertIssue
		profRead, profManage       = authz.PermProfileRead, authz.PermProfileManage
		princRead, princManage     = authz.PermPrincipalRead, authz.PermPrincipalAdmin
		approve, auditRead, report = authz.PermRequestApprove, authz.PermAuditRead, authz.PermReportRead
	)
	h.routes = []Route{
		route("GET", "/api/v1/cas", "ca.list", h.listCAs, caRead),
		slow(route("POST", "/api/v1/cas", "ca.create", h.createCA, caManage)),
		route("GET", "/api/v1/cas/{ca}", "ca.show", h.showCA, caRead),
		route("GET", "/api/v1/cas/{ca}/chain", "ca.chain", h.caChain, caRead),
		route("GET", "/api/v1/cas/{ca}/csr", "ca.csr", h.caCSR, caRead),
		route("POST", "/api/v1/cas/{ca}/certificate", "ca.import", h.importCA, caManage),
		route("POST", "/api/v1/cas/import-root", "ca.import_root", h.importRoot, caManage),
		route("POST", "/api/v1/cas/{ca}/crl", "ca.import_crl", h.importCRL, caManage),
		route("POST", "/api/v1/cas/{ca}/disable", "ca.disable", h.caState(CAs.Disable), caManage),
		route("POST", "/api/v1/cas/{ca}/enable", "ca.enable", h.caState(CAs.Enable), caManage),
		route("POST", "/api/v1/cas/{ca}/delete", "ca.delete", h.caState(CAs.Delete), caManage),
		route("POST", "/api/v1/cas/{ca}/restore", "ca.restore", h.caState(CAs.Restore), caManage),
		slow(route("POST", "/api/v1/cas/{ca}/revoke", "ca.revoke", h.revokeCA, caManage)),
		route("POST", "/api/v1/certificates/sign", "certificate.issue", h.sign, certIssue),
		slow(route("POST", "/api/v1/certificates/issue", "certificate.issue", h.issueManaged, certIssue)),
		route("GET", "/api/v1/certificates", "certificate.list", h.listCerts, certRead),
		route("GET", "/api/v1/certificates/{serial}", "certificate.show", h.showCert, certRead),
		route("GET", "/api/v1/certificates/{serial}/pem", "certificate.pem", h.certPEM, certRead),
		route("GET", "/api/v1/certificates/{serial}/key", "key.export", h.exportKey, authz.PermKeyExport),
		route("POST", "/api/v1/certificates/{serial}/revoke", "certificate.revoke", h.revokeCert, authz.PermCertRevoke),
		slow(route("POST", "/api/v1/revocations", "certificate.revoke", h.revokeBulk, authz.PermCertRevoke)),
		route("GET", "/api/v1/profiles", "profile.list", h.listProfiles, profRead),
		acceptingBody(route("POST", "/api/v1/profiles", "profile.create", h.createProfile, profManage), yamlTypes()...),
		route("GET", "/api/v1/profiles/{name}", "profile.show", h.showProfile, profRead),
		acceptingBody(route("PUT", "/api/v1/profiles/{name}", "profile.update", h.updateProfile, profManage), yamlTypes()...),
		route("DELETE", "/api/v1/profiles/{name}", "profile.delete", h.deleteProfile, profManage),
		route("GET", "/api/v1/principals", "principal.list", h.listPrincipals, princRead),
		route("POST", "/api/v1/principals", "principal.create", h.createPrincipal, princManage),
		route("GET", "/api/v1/principals/{name}", "principal.show", h.showPrincipal, princRead),
		route("POST", "/api/v1/principals/{name}/disable", "principal.disable", h.disablePrincipal, princManage),
		route("GET", "/api/v1/principals/{name}/tokens", "token.list", h.listTokens, princRead),
		route("POST", "/api/v1/principals/{name}/tokens", "token.create", h.createToken, princManage),
		route("POST", "/api/v1/tokens/{id}/revoke", "token.revoke", h.revokeToken, princManage),
		route("POST", "/api/v1/principals/{name}/identities", "identity.add", h.addIdentity, princManage),
		route("POST", "/api/v1/principals/{name}/identities/remove", "identity.remove", h.removeIdentity, princManage),
		route("GET", "/api/v1/roles", "role.list", h.listRoles, princRead),
		route("POST", "/api/v1/roles", "role.create", h.createRole, princManage),
		route("DELETE", "/api/v1/roles/{name}", "role.delete", h.deleteRole, princManage),
		route("GET", "/api/v1/bindings", "binding.list", h.listBindings, princRead),
		route("POST", "/api/v1/bindings", "binding.create", h.createBinding, princManage),
		route("DELETE", "/api/v1/bindings/{id}", "binding.delete", h.deleteBinding, princManage),
		route("GET", "/api/v1/requests", "request.list", h.listRequests, certIssue, approve),
		route("GET", "/api/v1/requests/{id}", "request.show", h.showRequest, certIssue, approve),
		route("POST", "/api/v1/requests/{id}/approve", "request.approve", h.decide(true), approve),
		route("POST", "/api/v1/requests/{id}/reject", "request.reject", h.decide(false), approve),
		slow(route("GET", "/api/v1/audit/events", "audit.export", h.auditEvents, auditRead)),
		slow(route("GET", "/api/v1/audit/verify", "audit.verify", h.auditVerify, auditRead)),
		slow(route("GET", "/api/v1/reports/{kind}", "report.read", h.report, report)),
		route("POST", "/api/v1/acme/provisioners", "acme.provisioner.create", h.createProvisioner, caManage),
		route("GET", "/api/v1/acme/provisioners", "acme.provisioner.list", h.listProvisioners, caRead),
		route("GET", "/api/v1/acme/provisioners/{name}", "acme.provisioner.show", h.showProvisioner, caRead),
		route("POST", "/api/v1/acme/provisioners/{name}/eab", "acme.eab.create", h.createEABKey, princManage),
		route("GET", "/api/v1/acme/provisioners/{name}/eab", "acme.eab.list", h.listEABKeys, princRead),
		route("PATCH", "/api/v1/acme/provisioners/{name}", "acme.provisioner.update", h.updateProvisioner, caManage),
		route("POST", "/api/v1/acme/provisioners/{name}/disable", "acme.provisioner.disable", h.provisionerState(ACMEAdmin.DisableProvisioner), caManage),
		route("POST", "/api/v1/acme/provisioners/{name}/enable", "acme.provisioner.enable", h.provisionerState(ACMEAdmin.EnableProvisioner), caManage),
		route("DELETE", "/api/v1/acme/provisioners/{name}", "acme.provisioner.delete", h.deleteProvisioner, caManage),
		route("POST", "/api/v1/acme/eab/{id}/revoke", "acme.eab.revoke", h.revokeEABKey, princManage),
		slow(route("POST", "/api/v1/acme/renew-now", "acme.renew_now", h.renewNow, authz.PermCertRevoke)),
		authenticated("GET", "/api/v1/whoami", "whoami", h.whoami),
		// Ending one's own sign-in needs no role: a person whose groups
		// were all removed at the provider can still sign out.
		authenticated("POST", "/api/v1/sign-out", "token.sign_out", h.signOut),
	}
	h.routes = append(h.routes, h.lifecycleRoutes()...)
	h.routes = append(h.routes, h.importRoutes()...)
	h.routes = append(h.routes, h.complianceRoutes()...)
	h.routes = append(h.routes, h.personRoutes()...)
	h.routes = append(h.routes, h.scanRoutes()...)
	h.routes = append(h.routes, h.estRoutes()...)
	h.routes = append(h.routes, h.scepRoutes()...)
	for _, rt := range h.routes {
		if (len(rt.Permissions) == 0) != rt.AuthenticatedOnly || rt.Action == "" {
			return nil, fmt.Errorf("api: route %s %s declares no action, or not exactly one of permissions and authenticated-only", rt.Method, rt.Pattern)
		}
		h.mux.Handle(rt.Method+" "+rt.Pattern, h.wrap(rt))
	}
	h.public = h.ssoRoutes()
	for _, rt := range h.public {
		h.mux.Handle(rt.Method+" "+rt.Pattern, h.wrapPublic(rt))
	}
	h.mux.Handle("/api/", h.wrap(Route{Action: "api.unknown", Permissions: authz.Permissions(),
		handle: func(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
			return fmt.Errorf("%w: no API route %s %s", errNotFound, r.Method, r.URL.Path)
		}}))
	return h, nil
}

// Routes lists the route table (for tests that walk every route).
func (h *Handler) Routes() []Route { return append([]Route(nil), h.routes...) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// tokenInQuery reports whether the query string carries what looks like a
// credential: such URLs end up in proxy and server logs.
func tokenInQuery(r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return false
	}
	for k, vs := range r.URL.Query() {
		switch strings.ToLower(k) {
		case "token", "access_token", "api_key", "apikey", "bearer", "authorization":
			return true
		}
		for _, v := range vs {
			if authz.LooksLikeToken(v) {
				return true
			}
		}
	}
	return strings.Contains(r.URL.RawQuery, "cwt_")
}

// authenticate uses the bearer token when there is an Authorization
// header, else a verified client certificate.
func (h *Handler) authenticate(r *http.Request) (authz.Principal, error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return authz.Principal{}, &authz.AuthError{Reason: "Authorization header is not a bearer token"}
		}
		return h.d.Auth.Authenticate(r.Context(), strings.TrimSpace(tok))
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return h.d.Auth.AuthenticateCertificate(r.Context(), r.TLS.PeerCertificates[0], r.TLS.PeerCertificates[1:])
	}
	return authz.Principal{}, &authz.AuthError{Reason: "no credentials"}
}

func canAny(p authz.Principal, perms []authz.Permission) bool {
	for _, perm := range perms {
		if p.Can(perm) {
			return true
		}
	}
	return false
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// admit starts every request the same way: rt's deadline, a request ID
// (answered in X-Request-Id), the anonymous principal of its source, and
// no credential in the URL. It answers the request itself when ok is
// false; cancel is to be called either way.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, rt Route) (_ *http.Request, anon authz.Principal, cancel context.CancelFunc, ok bool) {
	ctx, cancel := context.WithTimeout(r.Context(), h.deadline(rt))
	r = r.WithContext(ctx)
	reqID := newRequestID()
	w.Header().Set("X-Request-Id", reqID)
	anon = authz.Principal{Name: "anonymous", Source: netsource.RemoteHost(r.RemoteAddr), RequestID: reqID}
	if tokenInQuery(r) {
		writeError(w, http.StatusBadRequest, "credentials in the URL", "tokens are accepted only in the Authorization header: a URL ends up in logs. Revoke that token.", "")
		h.refuse(r, rt, anon, http.StatusBadRequest, "token in query string")
		return r, anon, cancel, false
	}
	return r, anon, cancel, true
}

func (h *Handler) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// gone: the client went away. The deadline below is ours, and
		// answers 503.
		gone := r.Context().Err
		r, anon, cancel, ok := h.admit(w, r, rt)
		defer cancel()
		if !ok {
			return
		}
		reqID := anon.RequestID
		// A source past its refusal budget is still served when its
		// credential verifies (others may share its address); what would
		// fail gets 429, and is looked at only when that is cheap
		// (refused.go).
		wait := h.limiter.Wait(anon.Source)
		if wait > 0 && !worthAuthenticating(r) {
			h.tooMany(w, r, rt, anon, wait)
			return
		}
		p, err := h.authenticate(r)
		if err != nil {
			if gone() != nil {
				return
			}
			var ae *authz.AuthError
			if !errors.As(err, &ae) {
				// The credential could not be checked: the caller is
				// not refused (no refusal is counted or audited) and
				// may retry.
				h.d.Log.Warn("api authentication unavailable", "path", r.URL.Path, "request_id", reqID, "err", err)
				h.writeUnavailable(w)
				return
			}
			if c := connOf(r); c != nil && byCertificate(r) {
				c.certRefused.Store(true)
			}
			if wait > 0 {
				h.tooMany(w, r, rt, anon, wait)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="certwright"`)
			if ae.Public != "" {
				writeError(w, http.StatusUnauthorized, "token expired", ae.Public+"; a new token is needed", apitypes.RuleTokenExpired)
			} else {
				writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token or client certificate is required", "")
			}
			h.refuse(r, rt, anon, http.StatusUnauthorized, ae.Reason)
			return
		}
		p.Source, p.RequestID = anon.Source, reqID
		if status, msg, detail := h.writeCheck(r, rt.bodyTypes); status != 0 {
			writeError(w, status, msg, detail, "")
			h.deny(r, rt, p, status, detail)
			return
		}
		if !rt.AuthenticatedOnly && !canAny(p, rt.Permissions) {
			detail := fmt.Sprintf("principal %q has no role granting %s", p.Name, permNames(rt.Permissions))
			writeError(w, http.StatusForbidden, "forbidden", detail, string(authz.RuleRole))
			h.deny(r, rt, p, http.StatusForbidden, detail)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.d.MaxBody)
		status := http.StatusOK
		if err := rt.handle(w, r, p); err != nil {
			status = h.fail(w, err)
			// A refused change is audited; the core wrote nothing. Reads
			// that fail (404 on a GET) are not security events, but a
			// forbidden read is. A 503 refused nothing, and the store
			// that would record it is the part failing.
			if status == http.StatusServiceUnavailable {
				h.d.Log.Warn("api request failed: store unavailable", "method", r.Method, "path", r.URL.Path, "principal", p.Name,
					"status", status, "request_id", reqID, "err", err)
			} else if status == http.StatusForbidden || status == http.StatusUnauthorized || (status >= 400 && r.Method != http.MethodGet) {
				h.deny(r, rt, p, status, err.Error())
			}
		}
		h.d.Log.Debug("api request", "method", r.Method, "path", r.URL.Path, "principal", p.Name,
			"status", status, "request_id", reqID, "duration_ms", time.Since(start).Milliseconds())
	})
}

func permNames(perms []authz.Permission) string {
	if len(perms) == len(authz.Permissions()) {
		return "any permission"
	}
	s := make([]string, len(perms))
	for i, p := range perms {
		s[i] = string(p)
	}
	return strings.Join(s, " or ")
}

// deny writes the audit event of a refused request. It never records the
// credential or the query string.
func (h *Handler) deny(r *http.Request, rt Route, p authz.Principal, status int, detail string) {
	outcome := audit.Denied
	if status >= 500 {
		outcome = audit.Failed
	}
	ev := audit.New(p, h.d.Clock.Now(), rt.Action, r.URL.Path, map[string]any{
		"method": r.Method, "status": status, "error": truncate(detail, 500), "auth": p.Auth,
	})
	ev.Outcome = outcome
	// The client's cancellation must not lose the record.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := h.d.Auditor.AppendAudit(ctx, ev); err != nil {
		h.d.Log.Error("audit write failed for a refused request", "action", rt.Action, "status", status, "err", err)
	}
	h.d.Log.Info("api request refused", "method", r.Method, "path", r.URL.Path, "principal", p.Name, "status", status, "remote", p.Source, "request_id", p.RequestID)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
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
	{errBadInput, http.StatusBadRequest, "invalid request"},
	{ca.ErrSpec, http.StatusBadRequest, "invalid CA definition"},
	{ca.ErrImport, http.StatusBadRequest, "certificate cannot be imported"},
	{authz.ErrForbidden, http.StatusForbidden, "forbidden"},
	{authz.ErrSignInEnded, http.StatusUnauthorized, "sign-in ended"},
	{access.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{access.ErrNotFound, http.StatusNotFound, "not found"},
	{access.ErrCertificatesNotRevoked, http.StatusInternalServerError, "done, but person certificates not revoked"},
	{acme.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{acme.ErrNotFound, http.StatusNotFound, "not found"},
	{acme.ErrConflict, http.StatusConflict, "conflict"},
	{est.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{est.ErrNotFound, http.StatusNotFound, "not found"},
	{est.ErrConflict, http.StatusConflict, "conflict"},
	{scep.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{scep.ErrNotFound, http.StatusNotFound, "not found"},
	{scep.ErrConflict, http.StatusConflict, "conflict"},
	{scep.ErrDisabled, http.StatusConflict, "SCEP provisioner disabled"},
	{issue.ErrNotPending, http.StatusConflict, "request is not pending"},
	{ca.ErrNotIssuing, http.StatusConflict, "CA cannot issue"},
	{ca.ErrTransition, http.StatusConflict, "CA state conflict"},
	{issue.ErrConflict, http.StatusConflict, "conflict"},
	{lifecycle.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{discovery.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{discovery.ErrNotAllowed, http.StatusForbidden, "target not in the scan allow-list"},
	{discovery.ErrNotFound, http.StatusNotFound, "not found"},
	{lifecycle.ErrConflict, http.StatusConflict, "conflict"},
	{lifecycle.ErrUnknownChannel, http.StatusNotFound, "unknown alert channel"},
	{lifecycle.ErrUnknownJob, http.StatusNotFound, "unknown job"},
	{lifecycle.ErrNotVisible, http.StatusNotFound, "not found"},
	{lifecycle.ErrDelivery, http.StatusBadGateway, "alert not delivered"},
	{lifecycle.ErrRateLimited, http.StatusTooManyRequests, "rate limited"},
	{errConflict, http.StatusConflict, "conflict"},
	{profile.ErrUnknown, http.StatusNotFound, "unknown profile"},
	{profile.ErrTooLarge, http.StatusRequestEntityTooLarge, "profile definition too large"},
	{profile.ErrMalformed, http.StatusBadRequest, "invalid profile"},
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
	if errors.Is(err, issue.ErrKeyCompromised) {
		writeError(w, http.StatusBadRequest, "policy violation", err.Error(), "compromised_key")
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
			// A refusal names the authorisation rule that refused.
			writeError(w, m.status, m.label, errtext.User(err), string(authz.RuleOf(err)))
			return m.status
		}
	}
	if errors.Is(err, context.Canceled) {
		return 499
	}
	if unavailable(err) {
		h.writeUnavailable(w)
		return http.StatusServiceUnavailable
	}
	h.d.Log.Error("api internal error", "err", err)
	writeError(w, http.StatusInternalServerError, "internal error", "the server failed to complete the request; see its log", "")
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// Compact: indenting cost an issuance 30 µs of its CPU (the answer
	// carries three PEM blocks); `jq .` indents for a reader.
	return json.NewEncoder(w).Encode(v)
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
func (h *Handler) decode(r *http.Request, v any) error { return decodeWith(r, v, h.fields) }

// decodeWith is decode with the field cache fc (nil: none).
func decodeWith(r *http.Request, v any, fc *fieldCache) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badInput("request body could not be read: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badInput("request body is not valid JSON for this route: %v", err)
	}
	if dec.More() {
		return badInput("request body holds more than one JSON value")
	}
	// What encoding/json accepts quietly (a key twice, a key matching a
	// field only case-insensitively) could read differently to a proxy or
	// an auditor in front of us: refuse it.
	if err := checkKeys(data, v, fc); err != nil {
		return badInput("%v", err)
	}
	return nil
}
