// Package authz owns who may do what: principals (people and machines),
// the permissions they hold through role bindings, the scopes that narrow a
// binding to CAs, profiles and name patterns, and the API tokens and mTLS
// identities that authenticate them. Allow is the one decision every route
// and every core operation asks.
package authz

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ErrForbidden marks a principal that lacks the permission, or whose
// bindings do not cover the resource. Its message names what was missing.
var ErrForbidden = errors.New("forbidden")

// Kind says whether a principal is a person or a system. Managed private
// keys are handed out to machines only.
type Kind string

// Kinds.
const (
	KindHuman   Kind = "human"
	KindMachine Kind = "machine"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindHuman || k == KindMachine }

// Permission is one thing a principal may do.
type Permission string

// Permissions. A route or a core operation names exactly one.
const (
	PermCARead         Permission = "ca:read"
	PermCAManage       Permission = "ca:manage"
	PermProfileRead    Permission = "profile:read"
	PermProfileManage  Permission = "profile:manage"
	PermCertRead       Permission = "cert:read"
	PermCertIssue      Permission = "cert:issue"
	PermCertRevoke     Permission = "cert:revoke"
	PermKeyExport      Permission = "key:export"
	PermRequestApprove Permission = "request:approve"
	PermAuditRead      Permission = "audit:read"
	PermReportRead     Permission = "report:read"
	PermPrincipalRead  Permission = "principal:read"
	PermPrincipalAdmin Permission = "principal:manage"
)

// Permissions lists every permission, in a stable order.
func Permissions() []Permission {
	return []Permission{
		PermCARead, PermCAManage, PermProfileRead, PermProfileManage,
		PermCertRead, PermCertIssue, PermCertRevoke, PermKeyExport,
		PermRequestApprove, PermAuditRead, PermReportRead,
		PermPrincipalRead, PermPrincipalAdmin,
	}
}

// Valid reports whether p is a known permission.
func (p Permission) Valid() bool { return slices.Contains(Permissions(), p) }

// Role is a named set of permissions: one of the built-in roles, or a
// custom role an administrator defined.
type Role struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Permissions []Permission `json:"permissions"`
	Builtin     bool         `json:"builtin"`
	CreatedAt   time.Time    `json:"created_at,omitzero"`
}

// Has reports whether the role grants perm.
func (r *Role) Has(perm Permission) bool { return slices.Contains(r.Permissions, perm) }

// Built-in role names.
const (
	RoleAdmin    = "admin"
	RoleCAAdmin  = "ca_admin"
	RoleIssuer   = "issuer"
	RoleApprover = "approver"
	RoleAuditor  = "auditor"
	RoleViewer   = "viewer"
)

// BuiltinRoles returns the built-in roles. They cannot be changed or
// deleted, and a custom role cannot take their names.
func BuiltinRoles() []Role {
	read := []Permission{PermCARead, PermProfileRead, PermCertRead}
	return []Role{
		{Name: RoleAdmin, Description: "everything", Permissions: Permissions(), Builtin: true},
		{Name: RoleCAAdmin, Description: "CAs and profiles", Builtin: true,
			Permissions: append(slices.Clone(read), PermCAManage, PermProfileManage)},
		{Name: RoleIssuer, Description: "request, renew and revoke certificates; machines also receive their managed keys", Builtin: true,
			Permissions: append(slices.Clone(read), PermCertIssue, PermCertRevoke, PermKeyExport)},
		{Name: RoleApprover, Description: "approve or reject requests held for approval", Builtin: true,
			Permissions: append(slices.Clone(read), PermRequestApprove)},
		{Name: RoleAuditor, Description: "read the audit log, reports and who holds which role", Builtin: true,
			Permissions: append(slices.Clone(read), PermAuditRead, PermReportRead, PermPrincipalRead)},
		{Name: RoleViewer, Description: "read CAs, profiles and the certificate inventory", Builtin: true,
			Permissions: read},
	}
}

// BuiltinRole returns the built-in role called name.
func BuiltinRole(name string) (Role, bool) {
	for _, r := range BuiltinRoles() {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// Scope narrows a binding. An empty list places no limit on that
// dimension; a non-empty one admits only the listed CAs (by ID or name),
// profiles, or names matching one of the patterns (see MatchName).
type Scope struct {
	CAs      []string `json:"cas,omitempty"`
	Profiles []string `json:"profiles,omitempty"`
	Names    []string `json:"names,omitempty"`
}

// Empty reports whether s places no limit at all.
func (s Scope) Empty() bool { return len(s.CAs) == 0 && len(s.Profiles) == 0 && len(s.Names) == 0 }

// Validate checks every name pattern.
func (s Scope) Validate() error {
	for _, p := range s.Names {
		if err := ValidatePattern(p); err != nil {
			return err
		}
	}
	for _, c := range s.CAs {
		if strings.TrimSpace(c) == "" {
			return errors.New("authz: empty CA in scope")
		}
	}
	for _, c := range s.Profiles {
		if strings.TrimSpace(c) == "" {
			return errors.New("authz: empty profile in scope")
		}
	}
	return nil
}

// String describes the scope for error messages and listings.
func (s Scope) String() string {
	if s.Empty() {
		return "everything"
	}
	var parts []string
	if len(s.CAs) > 0 {
		parts = append(parts, "CAs "+strings.Join(s.CAs, ","))
	}
	if len(s.Profiles) > 0 {
		parts = append(parts, "profiles "+strings.Join(s.Profiles, ","))
	}
	if len(s.Names) > 0 {
		parts = append(parts, "names "+strings.Join(s.Names, ","))
	}
	return strings.Join(parts, "; ")
}

// Binding grants a principal a role within a scope.
type Binding struct {
	ID          string    `json:"id"`
	PrincipalID string    `json:"principal_id"`
	Principal   string    `json:"principal"` // name, for display
	Role        Role      `json:"role"`
	Scope       Scope     `json:"scope"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
	// Source is "" for a binding an administrator made, or the identity
	// provider whose claims it comes from ("oidc:NAME"): each sign-in
	// through that provider replaces its bindings.
	Source string `json:"source,omitempty"`
}

// Principal is an authenticated caller: who, how, and from where.
type Principal struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Kind     Kind      `json:"kind"`
	Bindings []Binding `json:"bindings"`
	// Auth says how this request authenticated: "token:<id>",
	// "mtls:<serial>" or "system".
	Auth string `json:"auth,omitempty"`
	// AuthExpiresAt is when the credential of this request stops working
	// (the token's expiry, the client certificate's notAfter); nil when
	// it does not expire.
	AuthExpiresAt *time.Time `json:"-"`
	// Via is "oidc:NAME" when the request's token was minted by a sign-in
	// through that identity provider; "" for any other credential.
	Via string `json:"via,omitempty"`
	// SignIn is the ID of the token of the sign-in through an identity
	// provider this request's credential comes from: the request's token
	// when Via is set, the token a client certificate was issued to when
	// it was minted by a sign-in; "" otherwise. A client credential this
	// request mints for the principal itself ends with that sign-in.
	SignIn string `json:"-"`
	// Source and RequestID describe the request the principal acts in;
	// audit events carry them.
	Source    string `json:"-"`
	RequestID string `json:"-"`
}

// System is the server itself: it issues its own TLS certificate, signs
// CRLs and rotates OCSP responders. No credential authenticates as it.
func System() Principal {
	admin, _ := BuiltinRole(RoleAdmin)
	return Principal{ID: "system", Name: "system", Kind: KindMachine, Auth: "system",
		Bindings: []Binding{{ID: "system", PrincipalID: "system", Principal: "system", Role: admin}}}
}

// principalIDShape is the shape of a stored principal's ID: a name of that
// shape could be mistaken for another principal's ID in a lookup.
var principalIDShape = regexp.MustCompile(`^p_?[0-9a-f]{16}$`)

// ReservedName returns an error when name belongs to the server: "system"
// (the server itself), "anonymous" (unauthenticated callers in the audit
// log), the "acme:" namespace (ACME accounts as requesters), the "est:"
// and "scep:" namespaces (enrolment provisioners, whose certificates the
// compliance report counts as renewed by the devices) and anything shaped
// like a principal ID. No principal may take one.
func ReservedName(name string) error {
	n := strings.ToLower(strings.TrimSpace(name))
	switch {
	case n == System().Name, n == "anonymous":
		return fmt.Errorf("authz: principal name %q is reserved for the server; choose another", name)
	case strings.HasPrefix(n, "acme:"):
		return fmt.Errorf("authz: principal name %q: the acme: namespace is reserved for ACME accounts; choose another", name)
	case strings.HasPrefix(n, "est:"), strings.HasPrefix(n, "scep:"):
		return fmt.Errorf("authz: principal name %q: the est: and scep: namespaces are reserved for enrolment provisioners; choose another", name)
	case principalIDShape.MatchString(n):
		return fmt.Errorf("authz: principal name %q has the shape of a principal ID; choose another", name)
	}
	return nil
}

// Can reports whether any of p's bindings grants perm, whatever its scope.
// Routes check this before the core checks the scope with Allow.
func (p Principal) Can(perm Permission) bool {
	for i := range p.Bindings {
		if p.Bindings[i].Role.Has(perm) {
			return true
		}
	}
	return false
}

// Everywhere reports whether one of p's bindings grants perm with no scope:
// Allow(perm, res) then holds for every res, so a view may use a count
// over everything instead of checking row by row.
func (p Principal) Everywhere(perm Permission) bool {
	for i := range p.Bindings {
		if p.Bindings[i].Role.Has(perm) && p.Bindings[i].Scope.Empty() {
			return true
		}
	}
	return false
}

// Resource is what an operation touches. Empty fields are unknown: a
// binding scoped on that dimension does not cover them (fail closed).
type Resource struct {
	CAID    string
	CAName  string
	Profile string
	// Names are every name the certificate carries: DNS names, IP
	// addresses, e-mail addresses, URIs and the subject common name.
	Names []string
}

// Allow returns nil when one of p's bindings grants perm over all of res,
// and an error wrapping ErrForbidden that names the missing piece otherwise.
func (p Principal) Allow(perm Permission, res Resource) error {
	if !p.Can(perm) {
		return Refuse(RuleRole, "%s has no role granting %s", p.describe(), perm)
	}
	var why string
	for i := range p.Bindings {
		b := &p.Bindings[i]
		if !b.Role.Has(perm) {
			continue
		}
		reason := b.covers(res)
		if reason == "" {
			return nil
		}
		if why == "" {
			why = reason
		}
	}
	return Refuse(RuleScope, "%s may %s only within its scope: %s", p.describe(), perm, why)
}

func (p Principal) describe() string {
	if p.Name == "" {
		return "principal"
	}
	return fmt.Sprintf("principal %q", p.Name)
}

// covers returns "" when b's scope covers res, or what falls outside it.
func (b *Binding) covers(res Resource) string {
	s := b.Scope
	if len(s.CAs) > 0 {
		if res.CAID == "" && res.CAName == "" {
			return fmt.Sprintf("role %s is limited to CAs %s", b.Role.Name, strings.Join(s.CAs, ", "))
		}
		if !slices.ContainsFunc(s.CAs, func(c string) bool { return c == res.CAID || c == res.CAName }) {
			return fmt.Sprintf("CA %q is not in role %s's CAs (%s)", firstNonEmpty(res.CAName, res.CAID), b.Role.Name, strings.Join(s.CAs, ", "))
		}
	}
	if len(s.Profiles) > 0 && !slices.Contains(s.Profiles, res.Profile) {
		if res.Profile == "" {
			return fmt.Sprintf("role %s is limited to profiles %s", b.Role.Name, strings.Join(s.Profiles, ", "))
		}
		return fmt.Sprintf("profile %q is not in role %s's profiles (%s)", res.Profile, b.Role.Name, strings.Join(s.Profiles, ", "))
	}
	if len(s.Names) > 0 {
		if len(res.Names) == 0 {
			return fmt.Sprintf("role %s is limited to names %s", b.Role.Name, strings.Join(s.Names, ", "))
		}
		for _, n := range res.Names {
			if !slices.ContainsFunc(s.Names, func(p string) bool { return MatchName(p, n) }) {
				return fmt.Sprintf("name %q matches none of role %s's names (%s)", n, b.Role.Name, strings.Join(s.Names, ", "))
			}
		}
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// WithRole returns a principal (ID = name) bound to one built-in role
// within scope. It serves tests and tools that act without a store; an
// unknown role name gives a principal with no permissions.
func WithRole(name string, kind Kind, roleName string, scope Scope) Principal {
	p := Principal{ID: name, Name: name, Kind: kind, Auth: "local"}
	if r, ok := BuiltinRole(roleName); ok {
		p.Bindings = []Binding{{ID: "b_" + name, PrincipalID: name, Principal: name, Role: r, Scope: scope}}
	}
	return p
}
