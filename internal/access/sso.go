package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// SSOApply is a sign-in through an identity provider as the store applies
// it, in one transaction.
type SSOApply struct {
	// Kind and Value name the identity (authz.IdentityOIDC, issuer#subject).
	Kind, Value string
	// Create, when set, is the principal made for an identity no principal
	// has yet, with the identity; nil refuses such an identity (ErrNotFound).
	Create *authz.PrincipalRecord
	// Source names the provider's bindings ("oidc:NAME"); Bindings are the
	// ones its claims give now (IDs and creation filled in): those the
	// principal lacks are added, those it no longer gets removed. Left
	// alone while the principal is disabled.
	Source   string
	Bindings []authz.Binding
	// Email is the address (lower-cased) the provider verified at this
	// sign-in, "" for none. The principal gets it as an identity of kind
	// authz.IdentityEmail from Source, unless another principal holds it
	// (left alone: an identity is never taken from its holder); its other
	// e-mail identities from Source go. Left alone while the principal is
	// disabled. At is the time of the sign-in.
	Email string
	At    time.Time
	// Token, when set, is stored for the principal unless it is disabled.
	Token *authz.Token
	// Audit returns the events to append, given what the sign-in found
	// and changed.
	Audit func(res *SSOApplied) []audit.Event
}

// SSOApplied is what a sign-in found and changed.
type SSOApplied struct {
	Principal      *authz.PrincipalRecord
	Created        bool
	Added, Removed []authz.Binding
	// Email is what became of SSOApply.Email ("" when there was none, or
	// the principal is disabled); EmailHolder names the principal that
	// holds it when that is another (SSOEmailHeld).
	Email       SSOEmailOutcome
	EmailHolder string
	// EmailsRemoved are the principal's e-mail identities from the
	// provider that it vouches for no longer.
	EmailsRemoved []string
}

// SSOEmailOutcome says what a sign-in did with the verified address.
type SSOEmailOutcome string

// Outcomes of a verified address at sign-in.
const (
	SSOEmailAdded SSOEmailOutcome = "added"
	SSOEmailKept  SSOEmailOutcome = "kept"
	SSOEmailHeld  SSOEmailOutcome = "held by another principal"
)

// SSOPerson is someone an identity provider vouched for at sign-in, with
// what the configuration grants them.
type SSOPerson struct {
	// Provider is the configured provider's name; Issuer and Subject the
	// verified identity (Subject from the configured claim).
	Provider, Issuer, Subject string
	// Email, when EmailVerified, names a principal created at first
	// sign-in; otherwise the provider and subject do.
	Email         string
	EmailVerified bool
	// Grants are the roles (with scopes) the provider's group mapping
	// gives this person now.
	Grants []SSOGrant
	// Create lets a first sign-in create a human principal with no roles
	// but the grants.
	Create bool
	// Purpose says what the sign-in is for ("console", "cli"); Source is
	// the address it came from.
	Purpose, Source string
	// Binding, for a CLI sign-in, says how its ID token was bound to this
	// server: "nonce", or "unbound" (a provider that put no nonce into
	// it), recorded in the audit event.
	Binding string
}

// SSOGrant is one role, within a scope, that a group claim gives.
type SSOGrant struct {
	Role  string
	Scope authz.Scope
}

// SSOSignedIn is the outcome of a sign-in: the principal and a token of
// the given lifetime (its secret is Secret, the only copy).
type SSOSignedIn struct {
	Principal      *authz.PrincipalRecord
	Secret         string
	Token          *authz.Token
	Created        bool
	Added, Removed []authz.Binding
}

// ErrSSODisabled is returned for a person whose principal is disabled in
// Certwright: the provider's word does not enable it.
var ErrSSODisabled = errors.New("access: the principal is disabled")

// ErrSSOUnknown is returned for a person no principal has the identity of,
// when the provider may not create principals.
var ErrSSOUnknown = errors.New("access: no principal has this identity")

// SignInSSO finds the principal of a person an identity provider vouched
// for (creating it when allowed), brings its bindings from that provider
// to the grants, and mints a token of ttl for it, all audited in one
// transaction. A disabled principal gets nothing (ErrSSODisabled), and
// its refusal is audited.
func (s *Service) SignInSSO(ctx context.Context, in SSOPerson, ttl time.Duration) (*SSOSignedIn, error) {
	if in.Provider == "" || in.Issuer == "" || in.Subject == "" {
		return nil, fmt.Errorf("%w: a sign-in needs a provider, an issuer and a subject", ErrInvalid)
	}
	if ttl <= 0 || ttl > MaxTokenLifetime {
		return nil, fmt.Errorf("%w: token lifetime %s", ErrInvalid, ttl)
	}
	now := s.clock.Now()
	source := "oidc:" + in.Provider
	by := "sso:" + in.Provider
	var bindings []authz.Binding
	for _, g := range in.Grants {
		role, err := s.store.GetRole(ctx, g.Role)
		if err != nil {
			// A mapping to a role deleted since the configuration was
			// read grants nothing; the rest of the sign-in goes on.
			s.log.Warn("sso: a group mapping names no role", "provider", in.Provider, "role", g.Role, "err", err)
			continue
		}
		id, err := newID("b_")
		if err != nil {
			return nil, err
		}
		bindings = append(bindings, authz.Binding{ID: id, Role: *role, Scope: g.Scope, CreatedAt: now, CreatedBy: by, Source: source})
	}
	secret, tok, err := authz.NewToken("", in.Purpose+" sign-in via "+in.Provider, now, now.Add(ttl))
	if err != nil {
		return nil, err
	}
	tok.Via = source
	email, noEmail := ssoEmail(in)
	apply := &SSOApply{Kind: authz.IdentityOIDC, Value: authz.OIDCIdentityValue(in.Issuer, in.Subject), Source: source,
		Bindings: bindings, Email: email, At: now, Token: tok}
	if in.Create {
		if apply.Create, err = s.newSSOPrincipal(ctx, in, now, by); err != nil {
			return nil, err
		}
	}
	apply.Audit = func(res *SSOApplied) []audit.Event {
		p := res.Principal
		who := authz.Principal{ID: p.ID, Name: p.Name, Kind: p.Kind, Auth: "oidc:" + in.Provider, Source: in.Source}
		var evs []audit.Event
		if res.Created {
			evs = append(evs, audit.New(who, now, "principal.create", p.Name, map[string]any{"id": p.ID, "kind": p.Kind, "by": by}),
				audit.New(who, now, "identity.add", p.Name, map[string]any{"kind": apply.Kind, "value": apply.Value}))
		}
		for _, b := range res.Added {
			evs = append(evs, audit.New(who, now, "binding.create", p.Name, map[string]any{"binding": b.ID, "role": b.Role.Name, "scope": b.Scope, "source": source}))
		}
		for _, b := range res.Removed {
			evs = append(evs, audit.New(who, now, "binding.delete", p.Name, map[string]any{"binding": b.ID, "role": b.Role.Name, "scope": b.Scope, "source": source}))
		}
		if res.Email == SSOEmailAdded {
			evs = append(evs, audit.New(who, now, "identity.add", p.Name, map[string]any{"kind": authz.IdentityEmail, "value": email, "source": source}))
		}
		for _, v := range res.EmailsRemoved {
			evs = append(evs, audit.New(who, now, "identity.remove", p.Name, map[string]any{"kind": authz.IdentityEmail, "value": v, "source": source,
				"reason": in.Provider + " no longer verifies this address for the person"}))
		}
		details := map[string]any{"provider": in.Provider, "issuer": in.Issuer, "subject": in.Subject, "purpose": in.Purpose}
		if in.Binding != "" {
			details["binding"] = in.Binding
		}
		switch {
		case res.Email == SSOEmailHeld:
			// Never taken from its holder: the person signs in, without
			// the address as an identity, and the audit log says whose it is.
			details["email_identity"], details["email_holder"] = fmt.Sprintf("%s not added: %s", email, res.Email), res.EmailHolder
		case res.Email != "":
			details["email_identity"] = fmt.Sprintf("%s %s", email, res.Email)
		case noEmail != "" && p.DisabledAt == nil:
			details["email_identity"] = "none: " + noEmail
		}
		ev := audit.New(who, now, "sso.sign_in", p.Name, details)
		if p.DisabledAt != nil {
			ev.Outcome, details["reason"] = audit.Denied, "the principal is disabled"
		} else {
			details["token_id"], details["expires_at"] = tok.ID, tok.ExpiresAt
		}
		return append(evs, ev)
	}
	res, err := s.store.ApplySSOSignIn(ctx, apply)
	if err != nil {
		if errors.Is(err, authz.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s at %s", ErrSSOUnknown, in.Subject, in.Issuer)
		}
		return nil, fmt.Errorf("access: sign-in via %s: %w", in.Provider, err)
	}
	if res.Principal.DisabledAt != nil {
		return nil, fmt.Errorf("%w: %s", ErrSSODisabled, res.Principal.Name)
	}
	tok.Principal = res.Principal.Name
	s.log.Info("signed in through an identity provider", "principal", res.Principal.Name, "provider", in.Provider,
		"purpose", in.Purpose, "created", res.Created, "bindings_added", len(res.Added), "bindings_removed", len(res.Removed))
	return &SSOSignedIn{Principal: res.Principal, Secret: secret, Token: tok, Created: res.Created, Added: res.Added, Removed: res.Removed}, nil
}

// ssoEmail returns the address a sign-in vouches for as an identity, in
// lower case, or "" and why there is none.
func ssoEmail(in SSOPerson) (string, string) {
	switch {
	case in.Email == "":
		return "", "the provider gave no e-mail address"
	case !in.EmailVerified:
		return "", "the provider did not verify the e-mail address"
	}
	email, err := normEmail(in.Email)
	if err != nil {
		return "", "the e-mail address is not a plain address"
	}
	return email, ""
}

// newSSOPrincipal is the principal a first sign-in creates: named after
// the verified e-mail address's local part where that is a free, valid
// name, else after the provider and a hash of the subject.
func (s *Service) newSSOPrincipal(ctx context.Context, in SSOPerson, now time.Time, by string) (*authz.PrincipalRecord, error) {
	id, err := newID("p_")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(authz.OIDCIdentityValue(in.Issuer, in.Subject)))
	fallback := in.Provider + "-" + hex.EncodeToString(sum[:4])
	name := fallback
	if local, _, ok := strings.Cut(strings.ToLower(in.Email), "@"); ok && in.EmailVerified && checkName("principal", local) == nil && authz.ReservedName(local) == nil {
		if _, err := s.store.GetPrincipal(ctx, local); errors.Is(err, authz.ErrNotFound) {
			name = local
		}
	}
	desc := "signed in through " + in.Provider
	if in.EmailVerified && len(in.Email) <= 254 {
		desc += " as " + in.Email
	}
	return &authz.PrincipalRecord{ID: id, Name: name, Kind: authz.KindHuman, Description: desc, CreatedAt: now, CreatedBy: by}, nil
}

// SSOError is a sign-in an identity provider's answer (or ID token) did
// not complete. Reason is fixed text of ours, never the provider's words,
// safe to show and to record; Detail is what the check found, for the
// audit log only (it may quote the provider or the token); Unavailable
// marks a provider that could not be reached.
type SSOError struct {
	Reason      string
	Detail      string
	Unavailable bool
	Err         error
}

func (e *SSOError) Error() string { return "sso: " + e.Reason + ": " + e.Err.Error() }
func (e *SSOError) Unwrap() error { return e.Err }
