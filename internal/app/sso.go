package app

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/web/api"
	"github.com/certwright/certwright/internal/web/apitypes"
	"github.com/certwright/certwright/internal/web/console"
)

// sso signs people in through the configured OpenID providers: the oidc
// registry verifies what a provider says, access decides who that is and
// what they may do.
type sso struct {
	reg    *oidc.Registry
	seal   *oidc.Sealer
	access *access.Service
	cfgs   map[string]config.OIDCProvider
	// origins are this server's own origins (canonical host:port): a CLI
	// sign-in is bound to the one the request reached it at, which must
	// be one. They follow tls_names on a reload and the HTTPS listener's
	// port once it is bound.
	origins atomic.Pointer[[]string]

	mu        sync.Mutex // serialises changes of the inputs below
	tlsNames  []string
	httpsPort string
	// proxied are the origins of acme.base_url and auth.server_urls.
	proxied []string
}

func newSSO(reg *oidc.Registry, seal *oidc.Sealer, acc *access.Service, cfg *config.Config) (*sso, error) {
	m := make(map[string]config.OIDCProvider, len(cfg.Auth.OIDC))
	for _, c := range cfg.Auth.OIDC {
		m[c.Name] = c
	}
	_, port, err := net.SplitHostPort(cfg.HTTPSListen)
	if err != nil {
		return nil, fmt.Errorf("app: https_listen: %w", err)
	}
	s := &sso{reg: reg, seal: seal, access: acc, cfgs: m, tlsNames: slices.Clone(cfg.TLSNames), httpsPort: port}
	for field, u := range urlFields(cfg) {
		origin, err := urlOrigin(u)
		if err != nil {
			return nil, fmt.Errorf("app: %s: %w", field, err)
		}
		s.proxied = append(s.proxied, origin)
	}
	if _, err := s.update(nil, ""); err != nil {
		return nil, err
	}
	return s, nil
}

// urlFields are the configured URLs clients reach the HTTPS API at, by
// the field that names each.
func urlFields(cfg *config.Config) map[string]string {
	out := map[string]string{}
	if cfg.ACME.BaseURL != "" {
		out["acme.base_url"] = cfg.ACME.BaseURL
	}
	for i, u := range cfg.Auth.ServerURLs {
		out[fmt.Sprintf("auth.server_urls[%d]", i)] = u
	}
	return out
}

// urlOrigin is the canonical origin of an https URL.
func urlOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	return oidc.Origin(u.Host)
}

// update replaces the server's names (when names is not nil) and the
// HTTPS listener's port (when port is not "") and puts the origins they
// make in effect.
func (s *sso) update(names []string, port string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if names == nil {
		names = s.tlsNames
	}
	if port == "" {
		port = s.httpsPort
	}
	origins, err := serverOrigins(names, port, s.proxied)
	if err != nil {
		return nil, err
	}
	s.tlsNames, s.httpsPort = slices.Clone(names), port
	s.origins.Store(&origins)
	return origins, nil
}

// SetTLSNames puts the server's names of a reload in effect.
func (s *sso) SetTLSNames(names []string) error {
	_, err := s.update(names, "")
	return err
}

// listening puts the port the HTTPS listener was bound to in effect (the
// configured one may be 0).
func (s *sso) listening(port int) error {
	_, err := s.update(nil, strconv.Itoa(port))
	return err
}

// serverOrigins are the origins a CLI may reach this server at, in the
// binding's canonical form: the server certificate's names (tls_names,
// which the CLI verified) at the HTTPS listener's port, and proxied.
// Port 0 (https_listen's port before the listener is bound) serves none.
func serverOrigins(names []string, port string, proxied []string) ([]string, error) {
	var out []string
	for _, n := range names {
		origin, err := oidc.Origin(net.JoinHostPort(n, cmp.Or(port, "443")))
		if port == "0" {
			origin, err = oidc.Origin(n)
		}
		if err != nil {
			return nil, fmt.Errorf("app: server name %q: %w", n, err)
		}
		if port != "0" && !slices.Contains(out, origin) {
			out = append(out, origin)
		}
	}
	for _, o := range proxied {
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// errNotOurName refuses an exchange that reached the server by a name
// not its own.
var errNotOurName = errors.New("app: the request's Host is not one of the server's origins")

// Providers names the configured providers.
func (s *sso) Providers() []string { return s.reg.Names() }

// Begin starts a console sign-in, sealed for the browser's cookie.
func (s *sso) Begin(ctx context.Context, provider, redirectURL, next string) (*console.SSOStart, error) {
	p, err := s.reg.Begin(ctx, provider, redirectURL)
	if err != nil {
		return nil, ssoError(err)
	}
	p.Next = next
	cookie, err := s.seal.Seal(p)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return &console.SSOStart{AuthURL: p.AuthURL, Cookie: cookie}, nil
}

// Open unseals the sign-in a browser's cookie keeps, when its state is
// the answer's (compared in constant time).
func (s *sso) Open(cookie, state string) (*console.SSOLogin, bool) {
	p, err := s.seal.Open(cookie)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(p.State)) != 1 {
		return nil, false
	}
	return &console.SSOLogin{Provider: p.Provider, State: p.State, Nonce: p.Nonce, Verifier: p.Verifier, Next: p.Next, CreatedAt: p.CreatedAt}, true
}

// Complete finishes a console sign-in the console has opened from this
// browser's cookie (so state is the one it began with).
func (s *sso) Complete(ctx context.Context, l *console.SSOLogin, state, code, redirectURL string, ttl time.Duration) (*access.SSOSignedIn, error) {
	id, err := s.reg.Finish(ctx, &oidc.Pending{Provider: l.Provider, State: l.State, Nonce: l.Nonce, Verifier: l.Verifier, CreatedAt: l.CreatedAt},
		state, code, redirectURL)
	if err != nil {
		return nil, ssoError(err)
	}
	return s.signIn(ctx, id, "console", l.Source, ttl, "")
}

// Exchange verifies an ID token the CLI obtained from its provider, bound
// to this server as the request's Host names it, and signs the person in
// for the provider's token lifetime.
func (s *sso) Exchange(ctx context.Context, x api.SSOExchange) (*access.SSOSignedIn, error) {
	origin, err := oidc.Origin(x.Host)
	origins := *s.origins.Load()
	if err != nil || !slices.Contains(origins, origin) {
		shown := "the name it was reached by"
		if err == nil {
			shown = origin
		}
		return nil, &access.SSOError{Reason: fmt.Sprintf("this server is not known as %s: sign in through one of its names: %s", shown, strings.Join(origins, ", ")),
			Detail: "Host " + shown, Err: errNotOurName}
	}
	id, err := s.reg.VerifyIDToken(ctx, x.Provider, x.IDToken, oidc.Binding{Origin: origin, Binder: x.Binder})
	if err != nil {
		return nil, ssoError(err)
	}
	binding := "nonce"
	if !id.Bound {
		binding = "unbound"
	}
	return s.signIn(ctx, id, "cli", x.Source, s.cfgs[x.Provider].Lifetime(), binding)
}

// signIn signs the person id names in; binding says how a CLI's ID token
// was bound to this server ("nonce", "unbound"; "" for the console).
func (s *sso) signIn(ctx context.Context, id *oidc.Identity, purpose, source string, ttl time.Duration, binding string) (*access.SSOSignedIn, error) {
	cfg := s.cfgs[id.Provider]
	// An address outside the provider's domains is not its to vouch for.
	verified := id.EmailVerified && cfg.VouchesFor(id.Email)
	person := access.SSOPerson{Provider: id.Provider, Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, EmailVerified: verified,
		Create: cfg.CreatePrincipals, Purpose: purpose, Source: source, Binding: binding}
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
	{oidc.ErrNonce, "the ID token was obtained for another server or another sign-in (nonce)"},
	{oidc.ErrReplay, "the ID token was exchanged before, or the sign-in was completed before"},
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
