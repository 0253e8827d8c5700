package issue

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
)

// IdentityStore says which principals a certificate's names are registered
// to as mTLS identities (principal identity add).
type IdentityStore interface {
	// MatchIdentities returns the registered identities among names.
	MatchIdentities(ctx context.Context, names []authz.Identity) ([]*authz.Identity, error)
}

// clientCredential applies the identity rule to a certificate about to be
// issued, and returns the principal it will authenticate as over mTLS (""
// for none; the caller records it with the certificate).
//
// The rule: a certificate that can authenticate a TLS client and carries a
// name registered as a principal's mTLS identity is issued only to that
// principal itself, or by an administrator who holds principal:manage and
// every permission the principal holds (the principal's own "act on" rule);
// it then becomes that principal's credential. A client certificate that
// carries no identity is the requester's own credential, should the
// requester later register one of its names. ACME accounts and the server
// itself never get credentials: a name an ACME client validated proves
// control of a host, not who may call the API.
func (s *Service) clientCredential(ctx context.Context, who authz.Principal, pr *profile.Request, eku []x509.ExtKeyUsage) (string, error) {
	if !clientAuthCapable(eku) {
		return "", nil
	}
	names := identityNames(pr)
	var matched []*authz.Identity
	if len(names) > 0 {
		var err error
		if matched, err = s.store.MatchIdentities(ctx, names); err != nil {
			return "", fmt.Errorf("issue: mTLS identities: %w", err)
		}
	}
	noCredential := deviceAuth(who.Auth) || who.Auth == AuthSCEP || who.ID == "" || who.ID == authz.System().ID
	if len(matched) == 0 {
		if noCredential {
			return "", nil
		}
		return who.ID, nil
	}
	owner := matched[0]
	for _, m := range matched[1:] {
		if m.PrincipalID != owner.PrincipalID {
			return "", fmt.Errorf("%w: %s %s and %s %s are the mTLS identities of two principals (%s and %s): one client certificate cannot carry both",
				ErrInvalid, owner.Kind, owner.Value, m.Kind, m.Value, principalLabel(who, owner), principalLabel(who, m))
		}
	}
	if who.ID != owner.PrincipalID {
		if err := s.mayEnrol(ctx, who, owner); err != nil {
			return "", err
		}
	}
	if noCredential {
		return "", nil
	}
	return owner.PrincipalID, nil
}

// mayEnrol reports whether who may issue a client certificate carrying
// owner's identity: only an administrator of that principal may — a holder
// of principal:manage everywhere that may act on the principal under the
// one rule for acting on principals (access.MayActOn: everything the
// principal holds, who holds at least as widely, and only an unscoped admin
// acts on an admin). Enrolling a credential is acting on the principal, so
// it follows the same rule as minting its tokens.
func (s *Service) mayEnrol(ctx context.Context, who authz.Principal, owner *authz.Identity) error {
	why, err := s.administers(ctx, who, owner.PrincipalID)
	if err != nil {
		return fmt.Errorf("issue: principal %s of identity %s %s: %w", owner.Principal, owner.Kind, owner.Value, err)
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("%w: %s %s is the mTLS identity of %s; a client certificate carrying it is issued only to that principal itself, or by an administrator holding principal:manage and every permission that principal holds (rule: identity names are not minted by others); %s",
		ErrForbidden, owner.Kind, owner.Value, principalLabel(who, owner), why)
}

// administers applies the enrolment rule: who administers principal
// targetID when it holds principal:manage everywhere and may act on the
// principal (access.MayActOn). It returns "" when who does, and otherwise
// why not (naming the principal only to callers with principal:read).
func (s *Service) administers(ctx context.Context, who authz.Principal, targetID string) (string, error) {
	if err := who.Allow(authz.PermPrincipalAdmin, authz.Resource{}); err != nil {
		return fmt.Sprintf("%s does not hold principal:manage everywhere", describe(who)), nil
	}
	target, _, err := s.store.LoadPrincipal(ctx, targetID)
	if err != nil {
		return "", err
	}
	named := *target
	if !who.Can(authz.PermPrincipalRead) {
		named.Name = "that principal"
	}
	if err := access.MayActOn(who, named); err != nil {
		return strings.TrimPrefix(err.Error(), authz.ErrForbidden.Error()+": "), nil
	}
	return "", nil
}

// principalLabel names the principal an identity belongs to for who's
// error message: by name to those who may read principals, and only as
// "another principal" to everyone else (an ACME client above all).
func principalLabel(who authz.Principal, id *authz.Identity) string {
	if who.Can(authz.PermPrincipalRead) {
		return "principal " + id.Principal
	}
	return "another principal"
}

func describe(p authz.Principal) string {
	if p.Name == "" {
		return "the requester"
	}
	return "requester " + p.Name
}

// clientAuthCapable reports whether a certificate with these extended key
// usages verifies for TLS client authentication (no EKU at all means any
// usage to crypto/x509 and most relying parties).
func clientAuthCapable(eku []x509.ExtKeyUsage) bool {
	return len(eku) == 0 || slices.Contains(eku, x509.ExtKeyUsageClientAuth) || slices.Contains(eku, x509.ExtKeyUsageAny)
}

// identityNames lists the names of pr that could be mTLS identities, as the
// authenticator looks them up: URIs as written, DNS names and e-mail
// addresses in lower case.
func identityNames(pr *profile.Request) []authz.Identity {
	out := make([]authz.Identity, 0, len(pr.URIs)+len(pr.DNSNames)+len(pr.EmailAddresses))
	for _, u := range pr.URIs {
		out = append(out, authz.Identity{Kind: "uri", Value: u.String()})
	}
	for _, d := range pr.DNSNames {
		out = append(out, authz.Identity{Kind: "dns", Value: strings.ToLower(strings.TrimSuffix(d, "."))})
	}
	for _, e := range pr.EmailAddresses {
		out = append(out, authz.Identity{Kind: authz.IdentityEmail, Value: strings.ToLower(e)})
	}
	return out
}
