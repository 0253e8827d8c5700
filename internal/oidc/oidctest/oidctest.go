// Package oidctest owns a real OpenID provider that runs in-process on a
// loopback port, for tests and for trying single sign-on out: zitadel's
// certified op package with an in-memory store of users and clients, plain
// HTML login and device pages (a Go client with a cookie jar or a headless
// browser completes them; see Login and ApproveDevice), and hooks to rotate
// its key, change a user's groups, go down, and mint ID tokens with chosen
// claims. It is not an identity provider for production: passwords are
// kept in memory as given and the issuer is plain http.
package oidctest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Options describe a provider. The zero value is a provider with no users
// or clients on a free loopback port.
type Options struct {
	// Addr is the listen address (default 127.0.0.1:0). It must be a
	// loopback address: the provider has no TLS and trivial passwords.
	Addr    string
	Users   []User
	Clients []Client
	// IDTokenLifetime is the lifetime of the ID tokens it issues (default 1h).
	IDTokenLifetime time.Duration
	// DevicePollInterval is the interval the device grant asks clients to
	// poll at (default 1s, whole seconds).
	DevicePollInterval time.Duration
}

// User is a person who can sign in.
type User struct {
	Username string
	Password string
	// Subject is the sub claim (default derived from Username, stable
	// across restarts).
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
}

// Client is an OAuth client of the provider.
type Client struct {
	ID string
	// Secret makes a confidential client (client_secret_basic or _post);
	// empty makes a public one, which must use PKCE and may redirect to
	// any port of a registered loopback URI (RFC 8252 section 7.3).
	Secret string
	// RedirectURIs are matched exactly, except the port of loopback
	// redirects of public clients.
	RedirectURIs []string
	// PostLogoutRedirectURIs may follow the end-session endpoint.
	PostLogoutRedirectURIs []string
	// DeviceGrant allows the device authorization grant (RFC 8628).
	DeviceGrant bool
}

// Provider is a running OpenID provider.
type Provider struct {
	issuer string
	st     *store
	srv    *http.Server
	done   chan struct{}
	down   atomic.Bool
}

// Paths of the provider's own pages.
const (
	LoginPath     = "/login"
	DevicePath    = "/device"
	LoggedOutPath = "/logged-out"
)

// maxFormBytes bounds a login or device form.
const maxFormBytes = 16 << 10

// Start starts a provider on opts.Addr and returns once it accepts
// connections. Close stops it.
func Start(ctx context.Context, opts Options) (*Provider, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("oidctest: listen address %q: want a loopback IP address and port, such as 127.0.0.1:5556", addr)
	}
	st, err := newStore(opts)
	if err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("oidctest: %w", err)
	}
	p := &Provider{issuer: "http://" + ln.Addr().String(), st: st, done: make(chan struct{})}

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	poll := max(opts.DevicePollInterval, time.Second).Truncate(time.Second)
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: LoggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedUILocales:       []language.Tag{language.English},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime: 5 * time.Minute, PollInterval: poll, UserFormPath: DevicePath, UserCode: op.UserCodeBase20,
		},
	}, st, op.StaticIssuer(p.issuer),
		// The one place an http issuer is allowed: a loopback test provider.
		op.WithAllowInsecure(),
	)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("oidctest: %w", err)
	}

	pages := &pages{st: st, callback: op.AuthCallbackURL(provider)}
	mux := http.NewServeMux()
	mux.Handle(LoginPath, op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler(http.HandlerFunc(pages.login)))
	mux.HandleFunc(DevicePath, pages.device)
	mux.HandleFunc(LoggedOutPath, pages.loggedOut)
	mux.Handle("/", provider)
	p.srv = &http.Server{
		Handler:           p.gate(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln) // returns ErrServerClosed after Close
	}()
	return p, nil
}

func newStore(opts Options) (*store, error) {
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	lifetime := opts.IDTokenLifetime
	if lifetime <= 0 {
		lifetime = time.Hour
	}
	st := &store{
		users: map[string]*User{}, subjects: map[string]*User{}, clients: map[string]*client{},
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]*accessToken{},
		devices: map[string]*device{}, userCode: map[string]string{}, key: key, lifetime: lifetime,
	}
	for _, u := range opts.Users {
		u.Groups = slices.Clone(u.Groups)
		if u.Username == "" || u.Password == "" {
			return nil, errors.New("oidctest: a user needs a username and a password")
		}
		if u.Subject == "" {
			u.Subject = DefaultSubject(u.Username)
		}
		if st.users[u.Username] != nil || st.subjects[u.Subject] != nil {
			return nil, fmt.Errorf("oidctest: user %q or subject %q given twice", u.Username, u.Subject)
		}
		st.users[u.Username], st.subjects[u.Subject] = &u, &u
	}
	for _, c := range opts.Clients {
		if c.ID == "" || len(c.RedirectURIs) == 0 && !c.DeviceGrant {
			return nil, fmt.Errorf("oidctest: client %q needs an ID and a redirect URI or the device grant", c.ID)
		}
		if st.clients[c.ID] != nil {
			return nil, fmt.Errorf("oidctest: client %q given twice", c.ID)
		}
		st.clients[c.ID] = &client{Client: c, lifetime: lifetime}
	}
	return st, nil
}

// DefaultSubject is the sub claim of a user without an explicit Subject.
func DefaultSubject(username string) string { return "user-" + username }

// gate answers 503 to everything while the provider is down.
func (p *Provider) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "oidctest: provider is down (SetDown)", http.StatusServiceUnavailable)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		next.ServeHTTP(w, r)
	})
}

// Issuer is the provider's issuer URL, http://127.0.0.1:PORT.
func (p *Provider) Issuer() string { return p.issuer }

// Close stops the provider.
func (p *Provider) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	<-p.done
	return err
}

// SetDown makes the provider answer 503 to every request (true) or serve
// again (false), to test a relying party while its provider is down.
func (p *Provider) SetDown(down bool) { p.down.Store(down) }

// RotateKey replaces the signing key: new ID tokens carry a new key ID, and
// the old key leaves the JWKS at once.
func (p *Provider) RotateKey() error {
	k, err := newSigningKey()
	if err != nil {
		return err
	}
	p.st.mu.Lock()
	p.st.key = k
	p.st.mu.Unlock()
	return nil
}

// KeyID is the ID of the current signing key.
func (p *Provider) KeyID() string {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return p.st.key.id
}

// SetGroups replaces a user's groups; the next ID token carries them.
func (p *Provider) SetGroups(username string, groups []string) error {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	u, ok := p.st.users[username]
	if !ok {
		return fmt.Errorf("oidctest: no user %q", username)
	}
	u.Groups = slices.Clone(groups)
	return nil
}

// SetRedirectURIs replaces a client's redirect URIs (a test learns its
// server's port only once it listens).
func (p *Provider) SetRedirectURIs(clientID string, uris []string) error {
	return p.updateClient(clientID, func(c *Client) { c.RedirectURIs = slices.Clone(uris) })
}

// SetPostLogoutRedirectURIs replaces the URIs a client's end-session
// request may return the browser to.
func (p *Provider) SetPostLogoutRedirectURIs(clientID string, uris []string) error {
	return p.updateClient(clientID, func(c *Client) { c.PostLogoutRedirectURIs = slices.Clone(uris) })
}

// updateClient replaces client clientID by a changed copy: the op reads a
// client it was handed without the store's lock.
func (p *Provider) updateClient(clientID string, change func(*Client)) error {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	c, ok := p.st.clients[clientID]
	if !ok {
		return fmt.Errorf("oidctest: no client %q", clientID)
	}
	n := *c
	change(&n.Client)
	p.st.clients[clientID] = &n
	return nil
}

// Claims are the claims of a minted ID token. Zero fields are left out,
// except Issuer, which defaults to the provider's.
type Claims struct {
	Issuer          string
	Subject         string
	Audience        []string
	AuthorizedParty string
	IssuedAt        time.Time
	Expiry          time.Time
	Nonce           string
	// Extra claims are added last and may replace the ones above; a nil
	// value removes a claim.
	Extra map[string]any
}

// Mint signs an ID token with the provider's current key, with exactly
// the given claims: for tests of what a relying party must refuse (wrong
// audience, expired, another issuer, claims of the wrong type).
func (p *Provider) Mint(c Claims) (string, error) {
	m := map[string]any{"iss": p.issuer}
	if c.Issuer != "" {
		m["iss"] = c.Issuer
	}
	set := func(k string, v any, ok bool) {
		if ok {
			m[k] = v
		}
	}
	set("sub", c.Subject, c.Subject != "")
	set("aud", c.Audience, len(c.Audience) > 0)
	set("azp", c.AuthorizedParty, c.AuthorizedParty != "")
	set("iat", c.IssuedAt.Unix(), !c.IssuedAt.IsZero())
	set("exp", c.Expiry.Unix(), !c.Expiry.IsZero())
	set("nonce", c.Nonce, c.Nonce != "")
	for k, v := range maps.All(c.Extra) {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	p.st.mu.Lock()
	key := p.st.key
	p.st.mu.Unlock()
	signer, err := op.SignerFromKey(key)
	if err != nil {
		return "", fmt.Errorf("oidctest: %w", err)
	}
	return signJSON(signer, m)
}

func signJSON(signer jose.Signer, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oidctest: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidctest: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// client adapts a Client to op.Client.
type client struct {
	Client
	lifetime time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.ID }
func (c *client) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }
func (c *client) LoginURL(id string) string        { return LoginPath + "?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c *client) IDTokenLifetime() time.Duration { return c.lifetime }
func (c *client) DevMode() bool                  { return false }
func (c *client) ClockSkew() time.Duration       { return 0 }

// IDTokenUserinfoClaimsAssertion puts email and profile claims into the ID
// token even though an access token is issued too, as most providers do.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) ApplicationType() op.ApplicationType {
	if c.Secret == "" {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.Secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	g := []oidc.GrantType{oidc.GrantTypeCode}
	if c.DeviceGrant {
		g = append(g, oidc.GrantTypeDeviceCode)
	}
	return g
}
