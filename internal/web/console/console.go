// Package console owns the web console served under / on the HTTPS
// listener: server-rendered pages (html/template, with their CSS embedded
// in the binary, no script and no external request), the server-side
// sessions people sign in to, and the checks every page and form passes —
// the session, the same authorisation as the API (authz.Principal.Allow),
// a CSRF token and the Origin on every state change, and a
// Content-Security-Policy without inline code.
package console

import (
	"context"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/netsource"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/web/report"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Authenticator checks the token a person signs in with, and at every
// request the credential a session was signed in with.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (authz.Principal, error)
	Resume(ctx context.Context, auth string) (authz.Principal, error)
}

// Sessions stores console sessions (only the hash of their secret).
type Sessions interface {
	CreateSession(ctx context.Context, s *authz.Session, ev audit.Event) error
	GetSession(ctx context.Context, idHash string) (*authz.Session, error)
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	EndSession(ctx context.Context, idHash string, at time.Time, reason string, evs ...audit.Event) (bool, error)
}

// Inventory reads the certificates the pages show.
type Inventory interface {
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
	// GetRevocation returns the revocation of serial, or an error
	// wrapping authz.ErrNotFound.
	GetRevocation(ctx context.Context, serial string) (*inventory.Revocation, error)
	ListCertificates(ctx context.Context, f inventory.Filter) ([]*inventory.Certificate, error)
	// InventoryCounts summarises the whole inventory (inventory.Counts)
	// without reading every certificate.
	InventoryCounts(ctx context.Context, now time.Time, bounds []time.Time) (inventory.Counts, error)
	// CountsByCA is how many certificates each CA issued, by CA ID.
	CountsByCA(ctx context.Context) (map[string]int, error)
	// ValidByExpiryDay, IssuedByDay and RevokedByDay count certificates
	// per UTC day from the day of from on (summaries, not rows).
	ValidByExpiryDay(ctx context.Context, from time.Time) ([]inventory.DayCount, error)
	IssuedByDay(ctx context.Context, from time.Time) ([]inventory.DayCount, error)
	RevokedByDay(ctx context.Context, from time.Time) ([]inventory.DayCount, error)
}

// CAs lists the certificate authorities and changes their state; Disable
// and Enable check the principal's ca:manage over the CA themselves.
type CAs interface {
	// Get returns a CA by ID or name, or an error wrapping
	// authz.ErrNotFound.
	Get(ctx context.Context, idOrName string) (*ca.CA, error)
	List(ctx context.Context) ([]*ca.CA, error)
	Disable(ctx context.Context, p authz.Principal, idOrName string) (*ca.CA, error)
	Enable(ctx context.Context, p authz.Principal, idOrName string) (*ca.CA, error)
}

// Authority creates CAs: CreateIntermediate checks the principal's
// ca:manage over the new CA and its parent itself and audits ca.create
// (the API's call).
type Authority interface {
	CreateIntermediate(ctx context.Context, p authz.Principal, parent string, spec *ca.Spec) (*ca.CA, error)
}

// Revoker revokes certificates; it checks the principal's permission and
// scope itself (the same core call as the API's). Freshness says how
// current each CA's CRL and OCSP responses are (memory only).
type Revoker interface {
	Revoke(ctx context.Context, req revoke.Request) (*inventory.Revocation, bool, error)
	Freshness() []revoke.Freshness
	// CRL is the CA's current CRL (built if there is none yet).
	CRL(ctx context.Context, caID string) (*revoke.CRL, error)
}

// Audit reads the audit log and verifies its chain.
type Audit interface {
	AuditHead(ctx context.Context) (seq int64, hash audit.Hash, err error)
	// FindAuditEvents returns the events q selects, newest first.
	FindAuditEvents(ctx context.Context, q audit.Query) ([]*audit.Event, error)
	// LastCheckpoint is the newest signed checkpoint, or an error
	// wrapping authz.ErrNotFound.
	LastCheckpoint(ctx context.Context) (*audit.Checkpoint, error)
	// Verify walks the chain, its checkpoints and the external anchor,
	// and records who asked and what it found (audit.ActionVerify).
	Verify(ctx context.Context, p authz.Principal) (*audit.Report, error)
}

// Approvals lists and decides requests held for approval; each call
// checks the principal's permission, scope and the two-person rule itself.
type Approvals interface {
	Approve(ctx context.Context, approver authz.Principal, id, comment string) (*issue.ApprovalRequest, *issue.Result, error)
	Reject(ctx context.Context, approver authz.Principal, id, comment string) (*issue.ApprovalRequest, error)
	ListRequests(ctx context.Context, p authz.Principal, status string, limit int) ([]*issue.ApprovalRequest, error)
	// CountRequests counts what ListRequests would list, with store
	// counts; partial: it stopped at its bound.
	CountRequests(ctx context.Context, p authz.Principal, status string) (n int, partial bool, err error)
}

// Lifecycle lists alerts and the scheduled jobs and runs a job now; each
// call checks the principal's permission itself (the API's calls).
type Lifecycle interface {
	// AlertPage returns the page of alerts q selects, newest first, with
	// their deliveries; CountUndelivered counts the undelivered ones.
	AlertPage(ctx context.Context, p authz.Principal, q lifecycle.AlertQuery) ([]*lifecycle.AlertRecord, error)
	CountUndelivered(ctx context.Context, p authz.Principal) (int, error)
	// ChannelNames lists the configured alert channels.
	ChannelNames() []string
	Jobs(ctx context.Context, p authz.Principal) ([]*lifecycle.JobState, error)
	// RunJob runs job name now and returns its recorded state, or an
	// error wrapping lifecycle.ErrUnknownJob.
	RunJob(ctx context.Context, p authz.Principal, name string) (*lifecycle.JobState, error)
	// CertificateAlerts returns the newest limit alerts about one
	// certificate (cert:read covering it).
	CertificateAlerts(ctx context.Context, p authz.Principal, serial string, limit int) ([]*lifecycle.AlertRecord, error)
	// RenewalInfo is the certificate's renewal window (lifecycle.Window,
	// the ACME renewal-info endpoint's), as the API's renewal-info.
	RenewalInfo(ctx context.Context, p authz.Principal, serial string) (*lifecycle.RenewalInfo, error)
	// RenewByHand renews a certificate whose key the server holds, as
	// `certwright cert renew` and the API's renew.
	RenewByHand(ctx context.Context, p authz.Principal, serial string, reuseKey bool) (*issue.Result, error)
}

// ACME is the operator side of ACME, the API's calls: each checks the
// principal itself (ca:read to read; ca:manage over the provisioner's CA
// to disable or enable it).
type ACME interface {
	ListProvisioners(ctx context.Context, p authz.Principal) ([]*acme.Provisioner, error)
	GetProvisioner(ctx context.Context, p authz.Principal, name string) (*acme.Provisioner, error)
	ProvisionerActivity(ctx context.Context, p authz.Principal, name string) (*acme.Activity, error)
	DisableProvisioner(ctx context.Context, p authz.Principal, name string) (*acme.Provisioner, error)
	EnableProvisioner(ctx context.Context, p authz.Principal, name string) (*acme.Provisioner, error)
	// RenewNow moves the renewal window of the matching certificates to
	// now (the API's acme/renew-now; cert:revoke over them).
	RenewNow(ctx context.Context, p authz.Principal, sel acme.RenewSelector) ([]string, error)
}

// Chains builds a CA's certificate chain, the CA first (issue.Service's
// Chain, the API's).
type Chains interface {
	Chain(ctx context.Context, idOrName string) ([]*x509.Certificate, error)
}

// Compliance builds the compliance report (compliance.Reporter), the
// API's report, and reads the newest summary, which the job named
// JobName builds.
type Compliance interface {
	Build(ctx context.Context, since time.Time) (*compliance.Report, error)
	// LatestSnapshot returns the newest summary, or an error wrapping
	// authz.ErrNotFound when none was built yet.
	LatestSnapshot(ctx context.Context) (*compliance.Snapshot, error)
	JobName() string
}

// Refusals counts refused sign-ins; the audit log gets one event per
// source and minute (audit.RefusalCounter).
type Refusals interface {
	Add(r audit.Refusal)
}

// Defaults of Deps' timeouts and sign-in limits.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	// DefaultSignInPerSecond and DefaultSignInBurst bound failed sign-ins
	// per source: 5 at once, then one every 10 seconds.
	DefaultSignInPerSecond = 0.1
	DefaultSignInBurst     = 5
)

// Deps is what the console needs.
type Deps struct {
	Log       *slog.Logger
	Clock     clock.Clock
	Auth      Authenticator
	Sessions  Sessions
	Inventory Inventory
	CAs       CAs
	Authority Authority
	Revoker   Revoker
	Audit     Audit
	Approvals Approvals
	Refusals  Refusals
	Access    Access
	Lifecycle Lifecycle

	// ACME, EST and Compliance serve the ACME, EST and compliance pages.
	ACME       ACME
	EST        EST
	Compliance Compliance
	// Chains serves the certificate page's chain.
	Chains Chains
	// Scans serves the endpoint pages and their Scan now.
	Scans Scans
	// Views keeps the inventory's saved views.
	Views Views
	// SSO, when set, signs people in through identity providers.
	SSO SSO

	// IdleTimeout ends a session not used for this long; MaxAge ends any
	// session this long after sign-in (and no session outlives the token
	// it was signed in with).
	IdleTimeout, MaxAge time.Duration
	// SignInPerSecond and SignInBurst bound failed sign-ins per source
	// address (IPv6: per /64).
	SignInPerSecond float64
	SignInBurst     int
	// StoreTimeout bounds the store reads of one page (0: none).
	StoreTimeout time.Duration
}

// Handler serves the console.
type Handler struct {
	d       Deps
	mux     *http.ServeMux
	pages   map[string]*template.Template
	static  http.Handler
	limiter *netsource.Limiter
	// ssoLimiter bounds the sign-ins through a provider each source may
	// begin: each sends the provider an authorization request.
	ssoLimiter *netsource.Limiter
	routes     []Route
	// report renders the compliance report's HTML page, as the API does.
	report *report.Renderer
}

// Route is one console route, for the route-walk tests: Public routes are
// served without a session (sign-in, assets); every other one needs one,
// and a principal holding none of Permissions (when there are any) is
// refused before its page, which checks the scope itself with Allow.
type Route struct {
	Method, Pattern string
	Public          bool
	Permissions     []authz.Permission
}

// New returns the console handler.
func New(d Deps) (*Handler, error) {
	if d.Log == nil || d.Clock == nil || d.Auth == nil || d.Sessions == nil || d.Inventory == nil || d.CAs == nil || d.Authority == nil || d.Revoker == nil || d.Audit == nil || d.Approvals == nil || d.Refusals == nil || d.Access == nil || d.Lifecycle == nil || d.ACME == nil || d.Compliance == nil || d.Chains == nil {
		return nil, errors.New("console: Log, Clock, Auth, Sessions, Inventory, CAs, Authority, Revoker, Audit, Approvals, Refusals, Access, Lifecycle, ACME, Compliance and Chains are required")
	}
	if d.Views == nil || d.Scans == nil || d.EST == nil {
		return nil, errors.New("console: Views, Scans and EST are required")
	}
	if d.IdleTimeout <= 0 {
		d.IdleTimeout = DefaultIdleTimeout
	}
	if d.MaxAge <= 0 {
		d.MaxAge = DefaultMaxAge
	}
	if d.SignInPerSecond <= 0 {
		d.SignInPerSecond = DefaultSignInPerSecond
	}
	if d.SignInBurst <= 0 {
		d.SignInBurst = DefaultSignInBurst
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	rend, err := report.NewRenderer()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static files: %w", err)
	}
	h := &Handler{d: d, mux: http.NewServeMux(), pages: pages, static: http.StripPrefix("/static/", http.FileServerFS(sub)),
		limiter: netsource.NewLimiter(d.Clock.Now, d.SignInPerSecond, d.SignInBurst), report: rend,
		ssoLimiter: netsource.NewLimiter(d.Clock.Now, 1, 20)}
	h.public("GET /static/", h.serveStatic)
	h.public("GET /login", h.loginPage)
	h.public("POST /login", h.signIn)
	h.public("GET /login/sso/{provider}", h.ssoBegin)
	h.public("GET "+ssoCallback, h.ssoFinish)
	h.page("POST /logout", h.signOut)
	// The landing page of every signed-in principal: it shows what
	// cert:read allows, and says so when that is nothing.
	h.page("GET /{$}", h.overview)
	h.page("GET /certificates", h.certificates, authz.PermCertRead)
	h.page("GET /certificates/export", h.exportCertificates, authz.PermCertRead)
	h.page("POST /certificate-views", h.saveView, authz.PermCertRead)
	h.page("GET /certificate-views/{id}", h.openView, authz.PermCertRead)
	h.page("POST /certificate-views/{id}/delete", h.deleteView, authz.PermCertRead)
	h.page("GET /certificates/{serial}", h.certificate, authz.PermCertRead)
	h.page("GET /certificates/{serial}/pem", h.certificatePEM(false), authz.PermCertRead)
	h.page("GET /certificates/{serial}/chain", h.certificatePEM(true), authz.PermCertRead)
	h.page("POST /certificates/{serial}/revoke", h.revokeCertificate, authz.PermCertRevoke)
	h.page("POST /certificates/{serial}/renew-now", h.renewNow, authz.PermCertRevoke)
	h.page("POST /certificates/{serial}/renew", h.renewCertificate, authz.PermCertIssue)
	h.page("GET /requests", h.requests, authz.PermCertIssue, authz.PermRequestApprove)
	h.page("POST /requests/{id}/approve", h.decide(true), authz.PermRequestApprove)
	h.page("POST /requests/{id}/reject", h.decide(false), authz.PermRequestApprove)
	h.page("GET /cas", h.cas, authz.PermCARead)
	h.page("POST /cas", h.createIntermediate, authz.PermCAManage)
	h.page("GET /cas/{name}/certificate", h.caCertificate, authz.PermCARead)
	h.page("GET /cas/{name}/crl", h.caCRL, authz.PermCARead)
	h.page("POST /cas/{name}/disable", h.caChange(false), authz.PermCAManage)
	h.page("POST /cas/{name}/enable", h.caChange(true), authz.PermCAManage)
	h.page("GET /alerts", h.alerts, authz.PermCertRead)
	h.page("POST /jobs/{name}/run", h.runJob, authz.PermCAManage)
	// Not under /acme/: that is the ACME protocol's (directories, orders).
	h.page("GET /acme-provisioners", h.acmeProvisioners, authz.PermCARead)
	h.page("GET /acme-provisioners/{name}", h.acmeProvisioner, authz.PermCARead)
	h.page("POST /acme-provisioners/{name}/disable", h.acmeChange(false), authz.PermCAManage)
	h.page("POST /acme-provisioners/{name}/enable", h.acmeChange(true), authz.PermCAManage)
	// Not under /.well-known/est/: that is the EST protocol's. A secret
	// needs cert:issue over what the device will get, as the API's.
	h.page("GET /est-provisioners", h.estProvisioners, authz.PermCARead)
	h.page("GET /est-provisioners/{name}", h.estProvisioner, authz.PermCARead)
	h.page("POST /est-provisioners/{name}/disable", h.estChange(false), authz.PermCAManage)
	h.page("POST /est-provisioners/{name}/enable", h.estChange(true), authz.PermCAManage)
	h.page("POST /est-provisioners/{name}/secrets", h.createESTSecret, authz.PermCertIssue)
	h.page("GET /compliance", h.compliance, authz.PermReportRead)
	h.page("GET /compliance/report", h.complianceReport, authz.PermReportRead)
	h.page("POST /compliance/rebuild", h.rebuildCompliance, authz.PermCAManage)
	// Scanned endpoints cover every address the scans reached: the
	// pages need cert:read or report:read with no scope, and a scan
	// ca:manage with no scope (the core checks both, as for the API).
	h.page("GET /endpoints", h.endpoints, authz.PermCertRead, authz.PermReportRead)
	h.page("GET /endpoints/{address}", h.endpoint, authz.PermCertRead, authz.PermReportRead)
	h.page("POST /endpoints/scan", h.runScan, authz.PermCAManage)
	h.page("GET /audit", h.auditLog, authz.PermAuditRead)
	h.page("POST /audit/verify", h.auditVerify, authz.PermAuditRead)
	h.page("GET /access", h.accessPage, authz.PermPrincipalRead)
	h.page("GET /access/principals/{name}", h.principalPage, authz.PermPrincipalRead)
	h.page("POST /access/principals", h.createPrincipal, authz.PermPrincipalAdmin)
	h.page("POST /access/principals/{name}/tokens", h.createToken, authz.PermPrincipalAdmin)
	h.page("POST /access/principals/{name}/disable", h.disablePrincipal, authz.PermPrincipalAdmin)
	h.page("POST /access/principals/{name}/bindings", h.bind, authz.PermPrincipalAdmin)
	h.page("POST /access/bindings/{id}/delete", h.unbind, authz.PermPrincipalAdmin)
	h.page("POST /access/tokens/{id}/revoke", h.revokeToken, authz.PermPrincipalAdmin)
	h.page("POST /access/roles", h.createRole, authz.PermPrincipalAdmin)
	h.page("POST /access/roles/{name}/delete", h.deleteRole, authz.PermPrincipalAdmin)
	h.mux.HandleFunc("/", h.notFound)
	return h, nil
}

// Routes lists the console's routes.
func (h *Handler) Routes() []Route { return append([]Route(nil), h.routes...) }

func (h *Handler) public(pattern string, fn http.HandlerFunc) {
	h.addRoute(pattern, true, nil)
	h.mux.HandleFunc(pattern, fn)
}

// page registers a route served only within a session, to a principal
// holding one of perms (any principal when there are none).
func (h *Handler) page(pattern string, fn func(http.ResponseWriter, *http.Request, *visit), perms ...authz.Permission) {
	h.addRoute(pattern, false, perms)
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		v, ok := h.enter(w, r)
		if !ok {
			return
		}
		// The page checks the scope with Allow; a principal holding the
		// permission nowhere is refused here first, as the API's routes do.
		if len(perms) > 0 && !slices.ContainsFunc(perms, v.who.Can) {
			h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Not allowed", Message: "Your roles do not include " + permList(perms) + "."})
			return
		}
		fn(w, r, v)
	})
}

func (h *Handler) addRoute(pattern string, public bool, perms []authz.Permission) {
	var rt Route
	_, _ = fmt.Sscanf(pattern, "%s %s", &rt.Method, &rt.Pattern)
	rt.Public, rt.Permissions = public, perms
	h.routes = append(h.routes, rt)
}

// permList names permissions for a person: "a", "a or b".
func permList(perms []authz.Permission) string {
	names := make([]string, len(perms))
	for i, p := range perms {
		names[i] = string(p)
	}
	return strings.Join(names, " or ")
}

// ServeHTTP serves a console request with the console's own security
// headers (they replace the server's stricter default for API answers).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with a form's POST, and the Origin check refuses it.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows the console's own stylesheet and forms that
// post to itself, and nothing else: no script at all, no inline style, no
// framing, no other origin.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	h.static.ServeHTTP(w, r)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusNotFound, "error", nil, errorPage{Title: "Not found", Message: "There is no console page at this address."})
}

// storeContext bounds the store reads of one page.
func (h *Handler) storeContext(r *http.Request) (context.Context, context.CancelFunc) {
	if h.d.StoreTimeout > 0 {
		return context.WithTimeout(r.Context(), h.d.StoreTimeout)
	}
	return context.WithCancel(r.Context())
}
