package issue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
)

// MinPersonValidity is the shortest person certificate: its validity
// starts a minute back, for clocks behind ours.
const MinPersonValidity = 5 * time.Minute

// checkPerson applies, in place of cert:issue, the rules of a person's own
// short-lived client certificate (Request.Person):
//
//   - it is issued under the built-in person profile only, whose policy
//     (client authentication, at most a day, e-mail addresses only) no
//     administrator can widen;
//   - the request authenticated with a token that a sign-in through an
//     identity provider minted, not with a long-lived token or a client
//     certificate: the certificate says what the provider said at that
//     sign-in, and a certificate cannot extend itself;
//   - it carries a CSR: the private key never leaves the person's machine;
//   - its every e-mail address is one the principal holds as an identity
//     (the address the provider verified at sign-in, or one an
//     administrator mapped to it), and its common name, if any, is one of
//     them: nothing the sign-in does not vouch for.
//
// The addresses and common name are lower-cased in pr, as the identities
// are. Names of other kinds are left for the profile to refuse.
func (s *Service) checkPerson(ctx context.Context, req *Request, prof *profile.Profile, pr *profile.Request) error {
	who := req.Principal
	switch {
	case !prof.Builtin || prof.Name != profile.Person:
		return fmt.Errorf("%w: a person certificate is issued under the built-in %s profile only, not %s", ErrInvalid, profile.Person, prof.Name)
	case !strings.HasPrefix(who.Via, "oidc:") || !strings.HasPrefix(who.Auth, "token:"):
		return authz.Refuse(authz.RuleSSOSignIn, "%s did not sign in through an identity provider for this request: a person certificate is issued only"+
			" to the token of such a sign-in (certwright login --sso), not to a long-lived token or a client certificate", describe(who))
	case req.CSR == nil:
		return fmt.Errorf("%w: a person certificate is issued for a CSR only: the private key stays on the person's machine", ErrInvalid)
	case req.PublicKey != nil || req.Replaces != "" || req.AutoRenew || req.RetainKey:
		return fmt.Errorf("%w: a person certificate is not renewed: sign in again and ask for a new one", ErrInvalid)
	case req.Validity != 0 && req.Validity < MinPersonValidity:
		return fmt.Errorf("%w: validity %s is shorter than %s", ErrInvalid, req.Validity, MinPersonValidity)
	case len(pr.EmailAddresses) == 0:
		return &profile.Violation{Profile: prof.Name, Rule: profile.RuleEmail, Message: "the request carries no e-mail address: a person certificate carries yours"}
	}
	asked := make([]authz.Identity, len(pr.EmailAddresses))
	for i, e := range pr.EmailAddresses {
		asked[i] = authz.Identity{Kind: authz.IdentityEmail, Value: strings.ToLower(e)}
	}
	held, err := s.store.MatchIdentities(ctx, asked)
	if err != nil {
		return fmt.Errorf("issue: e-mail identities: %w", err)
	}
	mine := map[string]bool{}
	for _, h := range held {
		if h.PrincipalID == who.ID {
			mine[h.Value] = true
		}
	}
	emails := make([]string, len(asked))
	for i, a := range asked {
		if !mine[a.Value] {
			return &profile.Violation{Profile: prof.Name, Rule: profile.RuleEmail, Value: pr.EmailAddresses[i],
				Message: fmt.Sprintf("%s is not an e-mail address of %s: a person certificate carries only the addresses its holder has as"+
					" identities, which a sign-in adds when the identity provider verified them", pr.EmailAddresses[i], describe(who))}
		}
		emails[i] = a.Value
	}
	pr.EmailAddresses = emails
	if cn := pr.Subject.CommonName; cn != "" {
		// ASCII case only: strings.EqualFold would take "ſ" (long s)
		// for "s", and the certificate would name someone else.
		if !slices.Contains(emails, asciiLower(cn)) {
			return &profile.Violation{Profile: prof.Name, Rule: profile.RuleSubjectFields, Value: cn,
				Message: fmt.Sprintf("common name %q is not one of the certificate's e-mail addresses: a person certificate names its holder by address only", cn)}
		}
		pr.Subject.CommonName = asciiLower(cn)
	}
	return nil
}

// asciiLower lower-cases ASCII letters only, as identities are stored.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
