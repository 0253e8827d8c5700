// Package oidc owns Certwright's side of OpenID Connect: the relying party
// that signs people in through the identity providers of auth.oidc. A
// Registry, built once from the configuration, starts a console sign-in
// (Begin: state, nonce and PKCE) and finishes it (Finish: code exchange,
// ID token verification, claims), verifies ID tokens the CLI obtained
// (VerifyIDToken) and maps groups to role bindings (RoleBindings).
// LoopbackLogin and DeviceLogin are the CLI's half, which talks to the
// provider directly. Every failure matches one of the Err* values and
// carries a reason fit for the audit log; no token or secret is ever
// logged or put into an error.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// Time limits of a sign-in.
const (
	// PendingLifetime is how long a sign-in may take from Begin to Finish.
	PendingLifetime = 10 * time.Minute
	// FreshFor is how recently an ID token presented to VerifyIDToken must
	// have been issued.
	FreshFor = 10 * time.Minute
	// ClockSkew is the tolerance for clocks of provider and server apart.
	ClockSkew = time.Minute
)

// Registry holds the configured identity providers. One per server; safe
// for concurrent use.
type Registry struct {
	providers map[string]*provider
	names     []string
	clk       clock.Clock
	used      *replayCache
}

// New reads the providers' client secrets and CA bundles (relative paths
// are in dataDir; a secret file others may read is refused). It contacts
// no provider: each is discovered when first used, so the server starts
// while a provider is down.
func New(cfgs []config.OIDCProvider, dataDir string, clk clock.Clock, log *slog.Logger) (*Registry, error) {
	if clk == nil || log == nil {
		return nil, errors.New("oidc: New needs a clock and a logger")
	}
	r := &Registry{providers: map[string]*provider{}, clk: clk, used: newReplayCache(clk)}
	for _, c := range cfgs {
		if _, dup := r.providers[c.Name]; dup {
			return nil, fmt.Errorf("oidc: provider %q configured twice", c.Name)
		}
		p, err := newProvider(c, dataDir, clk, log)
		if err != nil {
			return nil, err
		}
		r.providers[c.Name] = p
		r.names = append(r.names, c.Name)
	}
	return r, nil
}

// Names lists the providers in configuration order.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

func (r *Registry) provider(name string) (*provider, error) {
	p, ok := r.providers[name]
	if !ok {
		return nil, fail(ErrUnknownProvider, "", nil, "no identity provider called %s is configured", quote(name))
	}
	return p, nil
}

// Pending is a console sign-in between Begin and Finish. The caller keeps
// it server-side (never in a cookie the browser could alter) and passes it
// to Finish once.
type Pending struct {
	Provider string
	State    string
	Nonce    string
	Verifier string // PKCE code_verifier (RFC 7636)
	// AuthURL is where to send the browser.
	AuthURL   string
	CreatedAt time.Time
}

// Identity is a person as a verified ID token describes them. Subject is
// the value of the provider's subject_claim; together with Issuer it
// identifies the person.
type Identity struct {
	Provider      string
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	IssuedAt      time.Time
	Expiry        time.Time
	RawIDToken    string
}

// Begin starts a sign-in at provider: fresh 256-bit state and nonce, a
// PKCE verifier, and the authorization URL carrying them, the S256
// challenge and the configured scopes. redirectURL is the console's
// callback as registered at the provider.
func (r *Registry) Begin(ctx context.Context, provider, redirectURL string) (*Pending, error) {
	p, err := r.provider(provider)
	if err != nil {
		return nil, err
	}
	if err := validRedirect(redirectURL); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	meta, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	pend := &Pending{Provider: provider, State: random256(), Nonce: random256(), Verifier: oauth2.GenerateVerifier(), CreatedAt: r.clk.Now()}
	pend.AuthURL = p.oauth2Config(meta, redirectURL).AuthCodeURL(pend.State,
		oauth2.S256ChallengeOption(pend.Verifier), gooidc.Nonce(pend.Nonce))
	return pend, nil
}

// maxCode bounds an authorization code from the callback's query.
const maxCode = 4096

// Finish completes a sign-in from the callback's state and code: it
// checks state (in constant time) and the sign-in's age, exchanges the
// code with the PKCE verifier, verifies the ID token (signature, issuer,
// audience = client_id, expiry) and its nonce, and refuses a Pending that
// already completed a sign-in (a replay).
func (r *Registry) Finish(ctx context.Context, pend *Pending, state, code, redirectURL string) (*Identity, error) {
	if pend == nil {
		return nil, fail(ErrState, "", nil, "no sign-in in progress for this callback")
	}
	p, err := r.provider(pend.Provider)
	if err != nil {
		return nil, err
	}
	name := p.cfg.Name
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(pend.State)) != 1 {
		return nil, fail(ErrState, name, nil, "the callback's state does not match the sign-in's")
	}
	if age := r.clk.Now().Sub(pend.CreatedAt); age > PendingLifetime || age < -ClockSkew {
		return nil, fail(ErrState, name, nil, "the sign-in started %s ago, longer than %s: start again", age.Round(time.Second), PendingLifetime)
	}
	if r.used.seen(pend.Nonce) {
		return nil, fail(ErrNonce, name, nil, "this sign-in was already completed once (replay)")
	}
	if code == "" || len(code) > maxCode {
		return nil, fail(ErrExchange, name, nil, "the callback carries no usable authorization code")
	}
	if err := validRedirect(redirectURL); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	meta, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := p.oauth2Config(meta, redirectURL).Exchange(gooidc.ClientContext(ctx, p.client), code, oauth2.VerifierOption(pend.Verifier))
	if err != nil {
		return nil, exchangeError(name, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fail(ErrClaims, name, nil, "the token response holds no ID token (is openid among the scopes?)")
	}
	id, nonce, err := r.verify(ctx, p, meta, raw, p.cfg.ClientID)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(nonce), []byte(pend.Nonce)) != 1 {
		return nil, fail(ErrNonce, name, nil, "the ID token's nonce is not the sign-in's")
	}
	if !r.used.add(pend.Nonce, pend.CreatedAt.Add(PendingLifetime+ClockSkew)) {
		return nil, fail(ErrNonce, name, nil, "this sign-in was already completed once (replay)")
	}
	return id, nil
}

// VerifyIDToken verifies an ID token the CLI obtained from provider itself
// (certwright login --sso), for the server to exchange it for a
// short-lived Certwright token. Its audience must be the CLI's client
// (cli_client_id). The token must have been issued within FreshFor: the
// server did not start this sign-in, so it has no nonce to bind the token
// to, and an ID token can stay valid for hours at some providers; only a
// token from a sign-in that just happened may mint a new credential, so
// one found later in a log, a shell history or a file cannot.
func (r *Registry) VerifyIDToken(ctx context.Context, provider, rawIDToken string) (*Identity, error) {
	p, err := r.provider(provider)
	if err != nil {
		return nil, err
	}
	if p.cfg.CLIClientID == "" {
		return nil, fail(ErrAudience, p.cfg.Name, nil, "no CLI client is configured for this provider (auth.oidc cli_client_id)")
	}
	meta, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	id, _, err := r.verify(ctx, p, meta, rawIDToken, p.cfg.CLIClientID)
	if err != nil {
		return nil, err
	}
	if id.IssuedAt.IsZero() {
		return nil, fail(ErrClaims, p.cfg.Name, nil, "the ID token has no iat (issued at) claim")
	}
	if age := r.clk.Now().Sub(id.IssuedAt); age > FreshFor {
		return nil, fail(ErrExpired, p.cfg.Name, nil, "the ID token was issued %s ago; the exchange takes one from the last %s: sign in again", age.Round(time.Second), FreshFor)
	}
	return id, nil
}

// verify checks an ID token for audience aud and returns the identity and
// the token's nonce. Acceptance is go-oidc's verdict (signature with the
// provider's keys, issuer, audience, expiry); this package adds the
// checks it lacks (size, azp, iat not in the future, claim types) and
// sorts failures into its error kinds.
func (r *Registry) verify(ctx context.Context, p *provider, meta *metadata, raw, aud string) (*Identity, string, error) {
	name := p.cfg.Name
	if len(raw) > maxIDTokenBytes {
		return nil, "", fail(ErrClaims, name, nil, "ID token larger than %d bytes", maxIDTokenBytes)
	}
	// A token from another issuer is refused before any key is fetched
	// for it. Its claims are not trusted here, only named in the reason.
	unverified, err := peek(raw, meta.algs)
	if err != nil {
		return nil, "", fail(ErrSignature, name, err, "ID token is not a JWS signed with an algorithm the provider announces: %s", short(err))
	}
	if unverified.Issuer != p.cfg.Issuer {
		return nil, "", fail(ErrIssuer, name, nil, "ID token issued by %s, want %s", quote(unverified.Issuer), quote(p.cfg.Issuer))
	}
	ctx = gooidc.ClientContext(ctx, p.client)
	payload, err := meta.keys.verify(ctx, raw)
	if err != nil {
		return nil, "", err
	}
	verifier := gooidc.NewVerifier(p.cfg.Issuer, meta.keys, &gooidc.Config{
		ClientID:             aud,
		SupportedSigningAlgs: algStrings(meta.algs),
		// Expiry gets ClockSkew of leeway: go-oidc compares exp with Now.
		Now: func() time.Time { return r.clk.Now().Add(-ClockSkew) },
	})
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		var exp *gooidc.TokenExpiredError
		switch {
		case errors.As(err, &exp):
			return nil, "", fail(ErrExpired, name, nil, "the ID token expired at %s", exp.Expiry.UTC().Format(time.RFC3339))
		case !slices.Contains(unverified.Audience, aud):
			return nil, "", fail(ErrAudience, name, nil, "the ID token is for %s, not client %s", quote(fmt.Sprint(unverified.Audience)), quote(aud))
		default:
			return nil, "", fail(ErrClaims, name, err, "the ID token was refused: %s", short(err))
		}
	}
	claims, err := parseClaims(payload, p.cfg.SubjectClaim, p.cfg.GroupsClaim)
	if err != nil {
		return nil, "", fail(ErrClaims, name, err, "%s", short(err))
	}
	// OpenID Connect Core 1.0 section 3.1.3.7: with several audiences the
	// token must name this client as its authorized party; a present azp
	// must be this client.
	if (len(idt.Audience) > 1 || claims.azp != "") && claims.azp != aud {
		return nil, "", fail(ErrAudience, name, nil, "the ID token's authorized party is %s, not client %s", quote(claims.azp), quote(aud))
	}
	if idt.IssuedAt.After(r.clk.Now().Add(ClockSkew)) {
		return nil, "", fail(ErrExpired, name, nil, "the ID token claims to be issued in the future, at %s", idt.IssuedAt.UTC().Format(time.RFC3339))
	}
	// The console's and the CLI's clients never share a token: one that
	// also names the other client is refused, so a token (or a code) one
	// of them was given cannot serve the other.
	for _, other := range []string{p.cfg.ClientID, p.cfg.CLIClientID} {
		if other != "" && other != aud && slices.Contains(idt.Audience, other) {
			return nil, "", fail(ErrAudience, name, nil, "the ID token names both client %s and client %s", quote(aud), quote(other))
		}
	}
	return &Identity{
		Provider: name, Issuer: idt.Issuer, Subject: claims.subject,
		Email: claims.email, EmailVerified: claims.emailVerified, Name: claims.name, Groups: claims.groups,
		IssuedAt: idt.IssuedAt, Expiry: idt.Expiry, RawIDToken: raw,
	}, claims.nonce, nil
}

// unverifiedClaims are read before the signature is checked, only to
// choose which check fails and to name it.
type unverifiedClaims struct {
	Issuer   string
	Audience []string
}

func peek(raw string, algs []jose.SignatureAlgorithm) (*unverifiedClaims, error) {
	jws, err := jose.ParseSigned(raw, algs)
	if err != nil {
		return nil, err
	}
	var c struct {
		Issuer   string `json:"iss"`
		Audience any    `json:"aud"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return nil, err
	}
	out := &unverifiedClaims{Issuer: c.Issuer}
	switch a := c.Audience.(type) {
	case string:
		out.Audience = []string{a}
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok {
				out.Audience = append(out.Audience, s)
			}
		}
	}
	return out, nil
}

func algStrings(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// exchangeError sorts a failed token request: the provider unreachable or
// failing (5xx) is ErrProviderUnavailable, a refusal is ErrExchange with
// the OAuth error code (RFC 6749 section 5.2), never the response body.
func exchangeError(name string, err error) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if status >= 500 || status == 0 {
			return fail(ErrProviderUnavailable, name, nil, "the provider's token endpoint answered %d", status)
		}
		code := re.ErrorCode
		if code == "" {
			code = "no error code"
		}
		return fail(ErrExchange, name, nil, "the provider refused the code: %s (HTTP %d) %s", quote(code), status, quote(re.ErrorDescription))
	}
	return fail(ErrProviderUnavailable, name, err, "the provider's token endpoint is unreachable: %s", short(err))
}

// EndSessionURL returns the provider's end-session URL (OpenID Connect
// RP-Initiated Logout 1.0) with the ID token hint and the redirect after
// sign-out, and false when the provider has none or cannot be discovered:
// signing out of Certwright never waits for the provider.
func (r *Registry) EndSessionURL(ctx context.Context, provider, idTokenHint, postLogoutRedirect string) (string, bool) {
	p, err := r.provider(provider)
	if err != nil {
		return "", false
	}
	meta, err := p.discover(ctx)
	if err != nil || meta.endSession == "" {
		return "", false
	}
	u, err := url.Parse(meta.endSession)
	if err != nil {
		return "", false
	}
	q := u.Query()
	q.Set("client_id", p.cfg.ClientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String(), true
}

// random256 returns 256 random bits, base64url without padding.
func random256() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// replayCache remembers the nonces of completed sign-ins until their
// Pending could no longer be finished anyway.
type replayCache struct {
	clk   clock.Clock
	mu    sync.Mutex
	until map[string]time.Time // nonce -> forget after
}

// maxReplay bounds the cache; entries come only from completed sign-ins.
const maxReplay = 100_000

func newReplayCache(clk clock.Clock) *replayCache {
	return &replayCache{clk: clk, until: map[string]time.Time{}}
}

func (c *replayCache) seenLocked(nonce string) bool {
	t, ok := c.until[nonce]
	return ok && c.clk.Now().Before(t)
}

func (c *replayCache) seen(nonce string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seenLocked(nonce)
}

// add records nonce and reports whether it was new.
func (c *replayCache) add(nonce string, until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seenLocked(nonce) {
		return false
	}
	if len(c.until) >= maxReplay {
		now := c.clk.Now()
		for n, t := range c.until {
			if !now.Before(t) {
				delete(c.until, n)
			}
		}
		for n := range c.until { // still full: forget the oldest-ish entry
			if len(c.until) < maxReplay {
				break
			}
			delete(c.until, n)
		}
	}
	c.until[nonce] = until
	return true
}
