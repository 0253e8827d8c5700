// Package access owns the administration of who may do what: creating and
// disabling principals, minting and revoking their API tokens, mapping
// client-certificate names to them, defining custom roles and binding
// roles within scopes. Every change is checked against the caller's own
// permissions — nobody grants more than they hold — and audited in the
// same transaction.
package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
)

// Store is the persistence access administration needs. Every write
// commits its audit event in the same transaction.
type Store interface {
	CreatePrincipal(ctx context.Context, p *authz.PrincipalRecord, ev audit.Event) error
	GetPrincipal(ctx context.Context, idOrName string) (*authz.PrincipalRecord, error)
	ListPrincipals(ctx context.Context) ([]*authz.PrincipalRecord, error)
	DisablePrincipal(ctx context.Context, id string, at time.Time, ev audit.Event) error
	CreateToken(ctx context.Context, t *authz.Token, ev audit.Event) error
	GetToken(ctx context.Context, id string) (*authz.Token, error)
	ListTokens(ctx context.Context, principalID string) ([]*authz.Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time, ev audit.Event) (*authz.Token, error)
	AddIdentity(ctx context.Context, i *authz.Identity, ev audit.Event) error
	RemoveIdentity(ctx context.Context, kind, value string, ev audit.Event) error
	ListIdentities(ctx context.Context, principalID string) ([]*authz.Identity, error)
	CreateRole(ctx context.Context, r *authz.Role, ev audit.Event) error
	GetRole(ctx context.Context, name string) (*authz.Role, error)
	ListRoles(ctx context.Context) ([]*authz.Role, error)
	DeleteRole(ctx context.Context, name string, ev audit.Event) error
	CreateBinding(ctx context.Context, b *authz.Binding, ev audit.Event) error
	DeleteBinding(ctx context.Context, id string, ev audit.Event) (*authz.Binding, error)
	ListBindings(ctx context.Context, principalID string) ([]*authz.Binding, error)
	ApplySSOSignIn(ctx context.Context, in *SSOApply) (*SSOApplied, error)
}

// CertificateRevoker revokes, through the revocation service, the person
// certificates a sign-in asked for when that sign-in ends, so that OCSP
// and CRLs say what authentication already does (authz refuses such a
// certificate once its token is revoked). Only unexpired certificates not
// yet revoked are revoked; each is audited with its token's ID. An error
// says which were not revoked; the others were.
type CertificateRevoker interface {
	// RevokeTokenCertificates revokes the person certificates issued to
	// the sign-in of token tokenID, which who has just revoked.
	RevokeTokenCertificates(ctx context.Context, who authz.Principal, tokenID string) ([]string, error)
	// RevokePrincipalCertificates revokes the person certificates of
	// every sign-in of principal principalID, which who has just disabled.
	RevokePrincipalCertificates(ctx context.Context, who authz.Principal, principalID string) ([]string, error)
}

// Errors the edge maps to client errors.
var (
	// ErrInvalid marks a malformed request: a bad name, kind or pattern.
	ErrInvalid = errors.New("access: invalid request")
	// ErrForbidden is authz.ErrForbidden.
	ErrForbidden = authz.ErrForbidden
	// ErrNotFound marks a record that does not exist where the store did
	// not say so itself.
	ErrNotFound = errors.New("access: not found")
	// ErrCertificatesNotRevoked means that a token was revoked, or a
	// principal disabled, but some of the person certificates of its
	// sign-ins could not be revoked: they no longer authenticate to
	// Certwright, yet OCSP and CRLs still say good. The change itself
	// stands (it is returned with this error); doing it again revokes
	// what is left.
	ErrCertificatesNotRevoked = errors.New("access: person certificates not revoked")
)

// MaxTokenLifetime bounds a token's expiry.
const MaxTokenLifetime = 10 * 365 * 24 * time.Hour

// Service administers principals, tokens, identities, roles and bindings.
type Service struct {
	store Store
	clock clock.Clock
	log   *slog.Logger
	certs CertificateRevoker
}

// New returns a Service. The store, clock and logger are required; certs
// may be nil only where no person certificate is ever issued (tests of
// other parts): the server wires one (internal/app).
func New(st Store, clk clock.Clock, log *slog.Logger, certs CertificateRevoker) (*Service, error) {
	if st == nil || clk == nil || log == nil {
		return nil, errors.New("access: store, clock and logger are required")
	}
	return &Service{store: st, clock: clk, log: log, certs: certs}, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func checkName(what, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %s name %q: use 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, what, name)
	}
	return nil
}

func newID(prefix string) (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("access: id: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

func (s *Service) allow(who authz.Principal, perm authz.Permission) error {
	return who.Allow(perm, authz.Resource{})
}

// CreatePrincipal adds a person or a system.
func (s *Service) CreatePrincipal(ctx context.Context, who authz.Principal, name string, kind authz.Kind, description string) (*authz.PrincipalRecord, error) {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return nil, err
	}
	if err := checkName("principal", name); err != nil {
		return nil, err
	}
	if err := authz.ReservedName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !kind.Valid() {
		return nil, fmt.Errorf("%w: principal kind %q: use %q or %q", ErrInvalid, kind, authz.KindHuman, authz.KindMachine)
	}
	if len(description) > 500 {
		return nil, fmt.Errorf("%w: description is %d bytes, at most 500", ErrInvalid, len(description))
	}
	id, err := newID("p_")
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	p := &authz.PrincipalRecord{ID: id, Name: name, Kind: kind, Description: description, CreatedAt: now, CreatedBy: who.Name}
	ev := audit.New(who, now, "principal.create", name, map[string]any{"id": id, "kind": kind})
	if err := s.store.CreatePrincipal(ctx, p, ev); err != nil {
		return nil, fmt.Errorf("access: create principal %s: %w", name, err)
	}
	s.log.Info("principal created", "principal", name, "kind", kind, "by", who.Name)
	return p, nil
}

// GetPrincipal returns a principal by ID or name.
func (s *Service) GetPrincipal(ctx context.Context, who authz.Principal, idOrName string) (*authz.PrincipalRecord, error) {
	if err := s.allow(who, authz.PermPrincipalRead); err != nil {
		return nil, err
	}
	return s.store.GetPrincipal(ctx, idOrName)
}

// ListPrincipals returns every principal.
func (s *Service) ListPrincipals(ctx context.Context, who authz.Principal) ([]*authz.PrincipalRecord, error) {
	if err := s.allow(who, authz.PermPrincipalRead); err != nil {
		return nil, err
	}
	return s.store.ListPrincipals(ctx)
}

// Disable stops a principal authenticating and revokes its tokens and
// the unexpired person certificates of its sign-ins. A principal cannot
// disable itself. Disabling a disabled principal revokes only what is
// left; when revoking certificates fails, the principal is returned
// disabled with an error matching ErrCertificatesNotRevoked.
func (s *Service) Disable(ctx context.Context, who authz.Principal, idOrName string) (*authz.PrincipalRecord, error) {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return nil, err
	}
	p, err := s.actOn(ctx, who, idOrName)
	if err != nil {
		return nil, err
	}
	if p.ID == who.ID {
		return nil, fmt.Errorf("%w: %s cannot disable itself", ErrInvalid, who.Name)
	}
	if p.DisabledAt == nil {
		now := s.clock.Now()
		if err := s.store.DisablePrincipal(ctx, p.ID, now, audit.New(who, now, "principal.disable", p.Name, map[string]any{"id": p.ID})); err != nil {
			return nil, fmt.Errorf("access: disable %s: %w", p.Name, err)
		}
		p.DisabledAt = &now
		s.log.Info("principal disabled", "principal", p.Name, "by", who.Name)
	}
	if s.certs == nil {
		return p, nil
	}
	serials, err := s.certs.RevokePrincipalCertificates(ctx, who, p.ID)
	return p, s.certsRevoked("principal "+p.Name+" is disabled", serials, err)
}

// certsRevoked logs the person certificates revoked after what (a token
// revoked, a principal disabled), and turns a failure into
// ErrCertificatesNotRevoked.
func (s *Service) certsRevoked(what string, serials []string, err error) error {
	if len(serials) > 0 {
		s.log.Info("person certificates revoked", "cause", what, "serials", serials)
	}
	if err == nil {
		return nil
	}
	s.log.Error("person certificates not revoked", "cause", what, "err", err)
	return fmt.Errorf("%w: %s and its person certificates no longer authenticate to Certwright, but revoking them for OCSP and CRLs failed"+
		" (do the same again to revoke what is left, or certwright cert revoke SERIAL --reason cessation_of_operation): %w",
		ErrCertificatesNotRevoked, what, err)
}

// CreateToken mints a token for a principal; ttl 0 means no expiry. The
// returned string is the only copy of the secret.
func (s *Service) CreateToken(ctx context.Context, who authz.Principal, idOrName, description string, ttl time.Duration) (string, *authz.Token, error) {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return "", nil, err
	}
	if ttl < 0 || ttl > MaxTokenLifetime {
		return "", nil, fmt.Errorf("%w: token lifetime %s must be between 0 (no expiry) and %s", ErrInvalid, ttl, MaxTokenLifetime)
	}
	if len(description) > 500 {
		return "", nil, fmt.Errorf("%w: description is %d bytes, at most 500", ErrInvalid, len(description))
	}
	p, err := s.actOn(ctx, who, idOrName)
	if err != nil {
		return "", nil, err
	}
	if p.DisabledAt != nil {
		return "", nil, fmt.Errorf("%w: principal %s is disabled", ErrInvalid, p.Name)
	}
	now := s.clock.Now()
	var expires time.Time
	if ttl > 0 {
		expires = now.Add(ttl)
	}
	tok, rec, err := authz.NewToken(p.ID, description, now, expires)
	if err != nil {
		return "", nil, err
	}
	rec.Principal = p.Name
	details := map[string]any{"token_id": rec.ID}
	if rec.ExpiresAt != nil {
		details["expires_at"] = *rec.ExpiresAt
	}
	if err := s.store.CreateToken(ctx, rec, audit.New(who, now, "token.create", p.Name, details)); err != nil {
		return "", nil, fmt.Errorf("access: create token for %s: %w", p.Name, err)
	}
	s.log.Info("token created", "principal", p.Name, "token_id", rec.ID, "by", who.Name)
	return tok, rec, nil
}

// ListTokens lists a principal's tokens ("" for all).
func (s *Service) ListTokens(ctx context.Context, who authz.Principal, idOrName string) ([]*authz.Token, error) {
	if err := s.allow(who, authz.PermPrincipalRead); err != nil {
		return nil, err
	}
	id := ""
	if idOrName != "" {
		p, err := s.store.GetPrincipal(ctx, idOrName)
		if err != nil {
			return nil, err
		}
		id = p.ID
	}
	return s.store.ListTokens(ctx, id)
}

// RevokeToken revokes a token at once, and the unexpired person
// certificates its sign-in asked for. Revoking a revoked token revokes
// only the certificates left; when revoking them fails, the token is
// returned revoked with an error matching ErrCertificatesNotRevoked.
func (s *Service) RevokeToken(ctx context.Context, who authz.Principal, id string) (*authz.Token, error) {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return nil, err
	}
	t, err := s.store.GetToken(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.actOn(ctx, who, t.PrincipalID); err != nil {
		return nil, err
	}
	return s.revokeToken(ctx, who, t, nil)
}

// SignOut ends the sign-in who authenticated with: the token of this
// request is revoked (audited as token.revoke with "sign_out": true), and
// with it the person certificates that sign-in asked for. Any principal
// may sign out; a request authenticated by anything but a token has no
// sign-in to end.
func (s *Service) SignOut(ctx context.Context, who authz.Principal) (*authz.Token, error) {
	id, ok := strings.CutPrefix(who.Auth, "token:")
	if !ok {
		return nil, fmt.Errorf("%w: this request authenticated with %s, not a token: signing out ends a token's sign-in"+
			" (a client certificate stops at its expiry, or revoke it)", ErrInvalid, authKind(who.Auth))
	}
	t, err := s.store.GetToken(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.PrincipalID != who.ID {
		return nil, fmt.Errorf("%w: token %s is not %s's", ErrInvalid, id, who.Name)
	}
	return s.revokeToken(ctx, who, t, map[string]any{"sign_out": true})
}

// authKind names the kind of credential of an authz.Principal.Auth
// ("mtls:SERIAL": a client certificate).
func authKind(auth string) string {
	if strings.HasPrefix(auth, "mtls:") {
		return "a client certificate"
	}
	return "no token"
}

// revokeToken revokes t (audited with extra details), then its sign-in's
// person certificates.
func (s *Service) revokeToken(ctx context.Context, who authz.Principal, t *authz.Token, extra map[string]any) (*authz.Token, error) {
	id := t.ID
	now := s.clock.Now()
	details := map[string]any{"token_id": id}
	for k, v := range extra {
		details[k] = v
	}
	t, err := s.store.RevokeToken(ctx, id, now, audit.New(who, now, "token.revoke", t.Principal, details))
	if err != nil {
		return nil, fmt.Errorf("access: revoke token %s: %w", id, err)
	}
	s.log.Info("token revoked", "token_id", id, "by", who.Name, "sign_out", extra["sign_out"] == true)
	if s.certs == nil {
		return t, nil
	}
	serials, err := s.certs.RevokeTokenCertificates(ctx, who, id)
	return t, s.certsRevoked("token "+id+" is revoked", serials, err)
}

// normIdentity checks and canonicalises a client-certificate name.
func normIdentity(kind, value string) (string, error) {
	switch kind {
	case "uri":
		u, err := url.Parse(value)
		if err != nil || u.Scheme == "" || len(value) > 1024 {
			return "", fmt.Errorf("%w: identity URI %q must be an absolute URI such as spiffe://example.internal/agent", ErrInvalid, value)
		}
		return u.String(), nil
	case "dns":
		v := strings.ToLower(strings.TrimSuffix(value, "."))
		if v == "" || len(v) > 253 || strings.ContainsAny(v, " */@:") {
			return "", fmt.Errorf("%w: identity DNS name %q is not a host name", ErrInvalid, value)
		}
		return v, nil
	case authz.IdentityEmail:
		return normEmail(value)
	}
	return "", fmt.Errorf("%w: identity kind %q: use uri, dns or email", ErrInvalid, kind)
}

// normEmail checks that value is a plain ASCII address (local@domain,
// nothing quoted, no display name) of at most 254 bytes, as an rfc822Name
// SAN holds one (RFC 5280 4.2.1.6), and returns it in lower case: a
// provider's and a certificate's spelling of one address compare equal.
func normEmail(value string) (string, error) {
	a, err := mail.ParseAddress(value)
	_, domain, _ := strings.Cut(value, "@")
	if err != nil || a.Name != "" || a.Address != value || len(value) > 254 || strings.Count(value, "@") != 1 ||
		domain == "" || strings.HasPrefix(domain, "[") || strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "", fmt.Errorf("%w: identity e-mail address %q must be a plain address such as alice@example.com", ErrInvalid, value)
	}
	return strings.ToLower(value), nil
}

// AddIdentity maps a client-certificate SAN (URI, DNS name or e-mail
// address) to a principal.
func (s *Service) AddIdentity(ctx context.Context, who authz.Principal, idOrName, kind, value string) (*authz.Identity, error) {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return nil, err
	}
	v, err := normIdentity(kind, value)
	if err != nil {
		return nil, err
	}
	p, err := s.actOn(ctx, who, idOrName)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	i := &authz.Identity{Kind: kind, Value: v, PrincipalID: p.ID, Principal: p.Name, CreatedAt: now}
	if err := s.store.AddIdentity(ctx, i, audit.New(who, now, "identity.add", p.Name, map[string]any{"kind": kind, "value": v})); err != nil {
		return nil, fmt.Errorf("access: add identity %s:%s: %w", kind, v, err)
	}
	return i, nil
}

// RemoveIdentity removes a client-certificate mapping of a principal.
func (s *Service) RemoveIdentity(ctx context.Context, who authz.Principal, idOrName, kind, value string) error {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return err
	}
	v, err := normIdentity(kind, value)
	if err != nil {
		return err
	}
	p, err := s.actOn(ctx, who, idOrName)
	if err != nil {
		return err
	}
	ids, err := s.store.ListIdentities(ctx, p.ID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ids, func(i *authz.Identity) bool { return i.Kind == kind && i.Value == v }) {
		return fmt.Errorf("access: %s has no identity %s:%s: %w", p.Name, kind, v, ErrNotFound)
	}
	now := s.clock.Now()
	return s.store.RemoveIdentity(ctx, kind, v, audit.New(who, now, "identity.remove", p.Name, map[string]any{"kind": kind, "value": v}))
}

// ListIdentities lists a principal's identities ("" for all).
func (s *Service) ListIdentities(ctx context.Context, who authz.Principal, principalID string) ([]*authz.Identity, error) {
	if err := s.allow(who, authz.PermPrincipalRead); err != nil {
		return nil, err
	}
	return s.store.ListIdentities(ctx, principalID)
}

// escalates returns an error naming the first permission in perms that who
// does not hold: nobody grants more than they have.
func escalates(who authz.Principal, perms []authz.Permission) error {
	for _, p := range perms {
		if err := who.Allow(p, authz.Resource{}); err != nil {
			return authz.Refuse(authz.RuleEscalation, "%s cannot grant %s without holding it everywhere itself", who.Name, p)
		}
	}
	return nil
}

// MayActOn returns nil when who may change target (mint or revoke its
// tokens, map identities to it, bind or unbind its roles, disable it, hand
// it an ACME account key): target's effective permissions and scopes are a
// subset of who's — each permission target holds within a scope, who holds
// within a scope at least as wide — and, when target holds the built-in
// admin role, who holds it unscoped. Otherwise it returns an error wrapping
// ErrForbidden that names what target holds beyond who. Acting on a
// principal is as good as holding its credentials, so a principal:manage
// holder may not act on anyone who holds more than it does.
func MayActOn(who, target authz.Principal) error {
	if holdsAdmin(target, false) && !holdsAdmin(who, true) {
		return authz.Refuse(authz.RuleEscalation, "%s holds the %s role; only a principal holding %s unscoped may act on it, and %s does not",
			target.Name, authz.RoleAdmin, authz.RoleAdmin, who.Name)
	}
	for _, tb := range target.Bindings {
		for _, perm := range tb.Role.Permissions {
			if !slices.ContainsFunc(who.Bindings, func(wb authz.Binding) bool {
				return wb.Role.Has(perm) && wb.Scope.Covers(tb.Scope)
			}) {
				return authz.Refuse(authz.RuleEscalation, "%s holds %s within %s (role %s), which %s does not hold that widely; only a principal holding at least as much may act on it",
					target.Name, perm, tb.Scope.String(), tb.Role.Name, who.Name)
			}
		}
	}
	return nil
}

// holdsAdmin reports whether p has a binding of the built-in admin role
// (only an unscoped one when unscoped is set).
func holdsAdmin(p authz.Principal, unscoped bool) bool {
	return slices.ContainsFunc(p.Bindings, func(b authz.Binding) bool {
		return b.Role.Name == authz.RoleAdmin && (!unscoped || b.Scope.Empty())
	})
}

// actOn loads the principal idOrName with its bindings and checks that who
// may act on it (MayActOn).
func (s *Service) actOn(ctx context.Context, who authz.Principal, idOrName string) (*authz.PrincipalRecord, error) {
	p, err := s.store.GetPrincipal(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	bs, err := s.store.ListBindings(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("access: bindings of %s: %w", p.Name, err)
	}
	target := authz.Principal{ID: p.ID, Name: p.Name, Kind: p.Kind, Bindings: make([]authz.Binding, 0, len(bs))}
	for _, b := range bs {
		target.Bindings = append(target.Bindings, *b)
	}
	if err := MayActOn(who, target); err != nil {
		return nil, err
	}
	return p, nil
}

// CreateRole defines a custom role.
func (s *Service) CreateRole(ctx context.Context, who authz.Principal, r authz.Role) (*authz.Role, error) {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return nil, err
	}
	if err := checkName("role", r.Name); err != nil {
		return nil, err
	}
	if _, ok := authz.BuiltinRole(r.Name); ok {
		return nil, fmt.Errorf("%w: %s is a built-in role", ErrInvalid, r.Name)
	}
	if len(r.Permissions) == 0 {
		return nil, fmt.Errorf("%w: role %s grants no permissions (known: %s)", ErrInvalid, r.Name, permList())
	}
	seen := map[authz.Permission]bool{}
	perms := make([]authz.Permission, 0, len(r.Permissions))
	for _, p := range r.Permissions {
		if !p.Valid() {
			return nil, fmt.Errorf("%w: unknown permission %q (known: %s)", ErrInvalid, p, permList())
		}
		if !seen[p] {
			seen[p] = true
			perms = append(perms, p)
		}
	}
	if err := escalates(who, perms); err != nil {
		return nil, err
	}
	if len(r.Description) > 500 {
		return nil, fmt.Errorf("%w: description is %d bytes, at most 500", ErrInvalid, len(r.Description))
	}
	now := s.clock.Now()
	role := &authz.Role{Name: r.Name, Description: r.Description, Permissions: perms, CreatedAt: now}
	if err := s.store.CreateRole(ctx, role, audit.New(who, now, "role.create", r.Name, map[string]any{"permissions": perms})); err != nil {
		return nil, fmt.Errorf("access: create role %s: %w", r.Name, err)
	}
	return role, nil
}

func permList() string {
	var s []string
	for _, p := range authz.Permissions() {
		s = append(s, string(p))
	}
	return strings.Join(s, ", ")
}

// ListRoles returns built-in then custom roles.
func (s *Service) ListRoles(ctx context.Context, who authz.Principal) ([]*authz.Role, error) {
	if err := s.allow(who, authz.PermPrincipalRead); err != nil {
		return nil, err
	}
	return s.store.ListRoles(ctx)
}

// DeleteRole removes a custom role that no binding uses.
func (s *Service) DeleteRole(ctx context.Context, who authz.Principal, name string) error {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return err
	}
	if _, ok := authz.BuiltinRole(name); ok {
		return fmt.Errorf("%w: %s is a built-in role", ErrInvalid, name)
	}
	// Nobody removes what they could not have granted.
	role, err := s.store.GetRole(ctx, name)
	if err != nil {
		return err
	}
	if err := escalates(who, role.Permissions); err != nil {
		return fmt.Errorf("access: delete role %s: %w", name, err)
	}
	return s.store.DeleteRole(ctx, name, audit.New(who, s.clock.Now(), "role.delete", name, nil))
}

// CheckGrant reports whether who may grant role roleName within scope:
// the scope is valid and who holds every permission of the role itself.
// Bind runs it; callers that create several records in one request run
// it first, so a refused grant leaves nothing behind.
func (s *Service) CheckGrant(ctx context.Context, who authz.Principal, roleName string, scope authz.Scope) (*authz.Role, error) {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return nil, err
	}
	if err := scope.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if n := len(scope.CAs) + len(scope.Profiles) + len(scope.Names); n > 100 {
		return nil, fmt.Errorf("%w: scope lists %d entries, at most 100", ErrInvalid, n)
	}
	role, err := s.store.GetRole(ctx, roleName)
	if err != nil {
		return nil, err
	}
	if err := escalates(who, role.Permissions); err != nil {
		return nil, err
	}
	return role, nil
}

// Bind grants a role to a principal within a scope. The caller must hold
// every permission of the role itself.
func (s *Service) Bind(ctx context.Context, who authz.Principal, idOrName, roleName string, scope authz.Scope) (*authz.Binding, error) {
	role, err := s.CheckGrant(ctx, who, roleName, scope)
	if err != nil {
		return nil, err
	}
	p, err := s.actOn(ctx, who, idOrName)
	if err != nil {
		return nil, err
	}
	id, err := newID("b_")
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	b := &authz.Binding{ID: id, PrincipalID: p.ID, Principal: p.Name, Role: *role, Scope: scope, CreatedAt: now, CreatedBy: who.Name}
	ev := audit.New(who, now, "binding.create", p.Name, map[string]any{"binding": id, "role": role.Name, "scope": scope})
	if err := s.store.CreateBinding(ctx, b, ev); err != nil {
		return nil, fmt.Errorf("access: bind %s to %s: %w", role.Name, p.Name, err)
	}
	s.log.Info("role bound", "principal", p.Name, "role", role.Name, "scope", scope.String(), "by", who.Name)
	return b, nil
}

// Unbind removes a binding.
func (s *Service) Unbind(ctx context.Context, who authz.Principal, id string) (*authz.Binding, error) {
	if err := s.allow(who, authz.PermPrincipalAdmin); err != nil {
		return nil, err
	}
	all, err := s.store.ListBindings(ctx, "")
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(all, func(b *authz.Binding) bool { return b.ID == id })
	if i < 0 {
		return nil, fmt.Errorf("access: binding %q: %w", id, ErrNotFound)
	}
	old := all[i]
	if old.PrincipalID == who.ID && old.Role.Has(authz.PermPrincipalAdmin) {
		return nil, fmt.Errorf("%w: %s cannot remove its own binding granting %s; another administrator must", ErrInvalid, who.Name, authz.PermPrincipalAdmin)
	}
	if _, err := s.actOn(ctx, who, old.PrincipalID); err != nil {
		return nil, err
	}
	ev := audit.New(who, s.clock.Now(), "binding.delete", old.Principal, map[string]any{"binding": id, "role": old.Role.Name, "scope": old.Scope})
	b, err := s.store.DeleteBinding(ctx, id, ev)
	if err != nil {
		return nil, fmt.Errorf("access: unbind %s: %w", id, err)
	}
	return b, nil
}

// ListBindings lists bindings of a principal ("" for all).
func (s *Service) ListBindings(ctx context.Context, who authz.Principal, idOrName string) ([]*authz.Binding, error) {
	if err := s.allow(who, authz.PermPrincipalRead); err != nil {
		return nil, err
	}
	id := ""
	if idOrName != "" {
		p, err := s.store.GetPrincipal(ctx, idOrName)
		if err != nil {
			return nil, err
		}
		id = p.ID
	}
	return s.store.ListBindings(ctx, id)
}
