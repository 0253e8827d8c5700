package app

import (
	"context"
	"errors"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/web/apitypes"
	"github.com/certwright/certwright/internal/web/console"
)

// sso signs people in through the configured OpenID providers: the oidc
// registry verifies what a provider says, access decides who that is and
// what they may do.
type sso struct {
	reg    *oidc.Registry
	access *access.Service
	cfgs   map[string]config.OIDCProvider
}

func newSSO(reg *oidc.Registry, acc *access.Service, cfgs []config.OIDCProvider) *sso {
	m := make(map[string]config.OIDCProvider, len(cfgs))
	for _, c := range cfgs {
		m[c.Name] = c
	}
	return &sso{reg: reg, access: acc, cfgs: m}
}

// Providers names the configured providers.
func (s *sso) Providers() []string { return s.reg.Names() }

// Begin starts a console sign-in.
func (s *sso) Begin(ctx context.Context, provider, redirectURL string) (*console.SSOStart, error) {
	p, err := s.reg.Begin(ctx, provider, redirectURL)
	if err != nil {
		return nil, ssoError(err)
	}
	return &console.SSOStart{AuthURL: p.AuthURL, State: p.State, Nonce: p.Nonce, Verifier: p.Verifier}, nil
}

// Complete finishes a console sign-in the console has matched to this
// browser and taken from the store (so state is the one it began with).
func (s *sso) Complete(ctx context.Context, l *authz.SSOLogin, state, code, redirectURL string, ttl time.Duration) (*access.SSOSignedIn, error) {
	id, err := s.reg.Finish(ctx, &oidc.Pending{Provider: l.Provider, State: state, Nonce: l.Nonce, Verifier: l.Verifier, CreatedAt: l.CreatedAt},
		state, code, redirectURL)
	if err != nil {
		return nil, ssoError(err)
	}
	return s.signIn(ctx, id, "console", l.Source, ttl)
}

// Exchange verifies an ID token the CLI obtained from provider and signs
// the person in for the provider's token lifetime.
func (s *sso) Exchange(ctx context.Context, provider, rawIDToken, source string) (*access.SSOSignedIn, error) {
	id, err := s.reg.VerifyIDToken(ctx, provider, rawIDToken)
	if err != nil {
		return nil, ssoError(err)
	}
	return s.signIn(ctx, id, "cli", source, s.cfgs[provider].Lifetime())
}

func (s *sso) signIn(ctx context.Context, id *oidc.Identity, purpose, source string, ttl time.Duration) (*access.SSOSignedIn, error) {
	cfg := s.cfgs[id.Provider]
	// An address outside the provider's domains is not its to vouch for.
	verified := id.EmailVerified && cfg.VouchesFor(id.Email)
	person := access.SSOPerson{Provider: id.Provider, Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, EmailVerified: verified,
		Create: cfg.CreatePrincipals, Purpose: purpose, Source: source}
	for _, m := range s.reg.RoleBindings(id.Provider, id) {
		person.Grants = append(person.Grants, access.SSOGrant{Role: m.Role, Scope: m.Scope})
	}
	return s.access.SignInSSO(ctx, person, ttl)
}

// ssoAPI is the API's view of sign-on: the CLI's side of each provider.
type ssoAPI struct{ *sso }

// Providers describes each provider's CLI client.
func (s ssoAPI) Providers() []apitypes.SSOProvider {
	out := []apitypes.SSOProvider{}
	for _, name := range s.reg.Names() {
		c := s.cfgs[name]
		if c.CLIClientID == "" {
			continue // no CLI sign-in through this one
		}
		out = append(out, apitypes.SSOProvider{Name: name, Issuer: c.Issuer, ClientID: c.CLIClientID, Scopes: c.Scopes})
	}
	return out
}

// EndSessionURLs are the providers' sign-out pages, each asked for at
// most briefly (a provider not reached yet is left out rather than
// holding up the signed-out page).
func (s *sso) EndSessionURLs(postLogout string) map[string]string {
	out := map[string]string{}
	for _, name := range s.reg.Names() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if u, ok := s.reg.EndSessionURL(ctx, name, "", postLogout); ok {
			out[name] = u
		}
		cancel()
	}
	return out
}

// ssoReasons are the words the console shows for each kind of refusal:
// ours, never the provider's or the token's (those go to the audit log
// as the detail).
var ssoReasons = []struct {
	kind   error
	reason string
}{
	{oidc.ErrProviderUnavailable, "the identity provider cannot be reached"},
	{oidc.ErrUnknownProvider, "no such identity provider is configured"},
	{oidc.ErrState, "the answer does not match the sign-in begun (state)"},
	{oidc.ErrNonce, "the ID token does not match the sign-in begun (nonce), or was used before"},
	{oidc.ErrAudience, "the ID token was not issued to this server's client"},
	{oidc.ErrExpired, "the ID token has expired or is not fresh"},
	{oidc.ErrIssuer, "the ID token comes from another issuer"},
	{oidc.ErrSignature, "the ID token's signature does not verify"},
	{oidc.ErrClaims, "the ID token's claims cannot be used"},
	{oidc.ErrExchange, "the identity provider refused the authorization code"},
}

// ssoError turns an oidc failure into the console's: a fixed reason, the
// library's own as the detail for the audit log.
func ssoError(err error) error {
	var oe *oidc.Error
	if !errors.As(err, &oe) {
		return err
	}
	for _, r := range ssoReasons {
		if errors.Is(err, r.kind) {
			return &access.SSOError{Reason: r.reason, Detail: oe.Reason, Unavailable: r.kind == oidc.ErrProviderUnavailable, Err: err}
		}
	}
	return &access.SSOError{Reason: "the sign-in was refused", Detail: oe.Reason, Err: err}
}
