// Package oidc owns Certwright's side of OpenID Connect: the relying party
// that signs people in through the identity providers of auth.oidc. A
// Registry, built once from the configuration, starts a console sign-in
// (Begin: state, nonce and PKCE; a Sealer seals it for the browser to
// keep) and finishes it (Finish: code exchange, ID token verification,
// claims), verifies ID tokens the CLI obtained, bound to this server
// (VerifyIDToken, Binding), and maps groups to role bindings
// (RoleBindings). What may be used once (an ID token exchanged, a console
// sign-in completed) is recorded in a OnceStore every replica shares.
// LoopbackLogin and DeviceLogin are the CLI's half, which talks to the
// provider directly. Every failure matches one of the Err* values and
// carries a reason fit for the audit log; no token or secret is ever
// logged or put into an error.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
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

// OnceStore records what may be used once, for every replica of the
// server (the store's sso_used table).
type OnceStore interface {
	// UseSSOOnce records digest, to be kept until expires, and reports
	// whether it was new (false: used before); it may forget what expired
	// before now.
	UseSSOOnce(ctx context.Context, digest string, now, expires time.Time) (bool, error)
}

// Registry holds the configured identity providers. One per server; safe
// for concurrent use.
type Registry struct {
	providers map[string]*provider
	names     []string
	clk       clock.Clock
	once      OnceStore
}

// New reads the providers' client secrets and CA bundles (relative paths
// are in dataDir; a secret file others may read is refused). It contacts
// no provider: each is discovered when first used, so the server starts
// while a provider is down.
func New(cfgs []config.OIDCProvider, dataDir string, clk clock.Clock, log *slog.Logger, once OnceStore) (*Registry, error) {
	if clk == nil || log == nil || once == nil {
		return nil, errors.New("oidc: New needs a clock, a logger and a store of what was used once")
	}
	r := &Registry{providers: map[string]*provider{}, clk: clk, once: once}
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

// Pending is a console sign-in between Begin and Finish. The browser
// keeps it sealed (Sealer), never where it could read or alter it, and
// the callback passes it to Finish; Finish completes each once.
type Pending struct {
	Provider string
	State    string
	Nonce    string
	Verifier string // PKCE code_verifier (RFC 7636)
	// Next is where the console goes after the sign-in (opaque here).
	Next string
	// AuthURL is where to send the browser (not sealed).
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
	// Bound is set by VerifyIDToken for a token whose nonce binds it to
	// this server; a token without a nonce (the device grant at most
	// providers) is unbound.
	Bound bool
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
// already completed a sign-in at any replica (ErrReplay).
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
	id, nonce, _, err := r.verify(ctx, p, meta, raw, p.cfg.ClientID)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(nonce), []byte(pend.Nonce)) != 1 {
		return nil, fail(ErrNonce, name, nil, "the ID token's nonce is not the sign-in's")
	}
	if err := r.useOnce(ctx, name, "console_nonce", pend.Nonce, pend.CreatedAt.Add(PendingLifetime+ClockSkew),
		"this sign-in was completed once already (replay)"); err != nil {
		return nil, err
	}
	return id, nil
}

// useOnce records value (by its digest, under kind) as used until expires,
// and is ErrReplay with reason when it was used before.
func (r *Registry) useOnce(ctx context.Context, provider, kind, value string, expires time.Time, reason string) error {
	sum := sha256.Sum256([]byte(value))
	fresh, err := r.once.UseSSOOnce(ctx, kind+":"+hex.EncodeToString(sum[:]), r.clk.Now(), expires)
	if err != nil {
		return fmt.Errorf("oidc: %s: record the sign-in as used: %w", provider, err)
	}
	if !fresh {
		return fail(ErrReplay, provider, nil, "%s", reason)
	}
	return nil
}

// VerifyIDToken verifies an ID token the CLI obtained from provider itself
// (certwright login --sso), for the server to exchange it for a
// short-lived Certwright token. Its audience must be the CLI's client
// (cli_client_id). The token must have been issued within FreshFor: an ID
// token can stay valid for hours at some providers; only a token from a
// sign-in that just happened may mint a new credential, so one found
// later in a log, a shell history or a file cannot.
//
// A token with a nonce must be bound to this server: its nonce must be
// b's (b.Origin is this server as the request reached it, b.Binder what
// the CLI sent), else it was obtained for another server, or another
// sign-in, and is ErrNonce. A token without one (the device grant, at
// providers that take no nonce there) is accepted as unbound unless the
// provider's cli_require_binding is set. Each token is exchanged once, at
// any replica (ErrReplay); only a token that verified is recorded.
func (r *Registry) VerifyIDToken(ctx context.Context, provider, rawIDToken string, b Binding) (*Identity, error) {
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
	id, nonce, payload, err := r.verify(ctx, p, meta, rawIDToken, p.cfg.CLIClientID)
	if err != nil {
		return nil, err
	}
	name := p.cfg.Name
	if id.IssuedAt.IsZero() {
		return nil, fail(ErrClaims, name, nil, "the ID token has no iat (issued at) claim")
	}
	if age := r.clk.Now().Sub(id.IssuedAt); age > FreshFor {
		return nil, fail(ErrExpired, name, nil, "the ID token was issued %s ago; the exchange takes one from the last %s: sign in again", age.Round(time.Second), FreshFor)
	}
	switch {
	case nonce != "" && !b.matches(nonce):
		return nil, fail(ErrNonce, name, nil, "the ID token was obtained for another server or another sign-in (its nonce is not this server's binding)")
	case nonce != "":
		id.Bound = true
	case p.cfg.CLIRequireBinding:
		return nil, fail(ErrNonce, name, nil, "the ID token carries no nonce binding it to this server, which cli_require_binding demands:"+
			" sign in with a browser (certwright login --sso without --device)")
	}
	// The record is of what the signature covers, the claims as the
	// provider signed them, not of the token's text: another spelling of
	// the same token (base64url's unused bits, a malleable signature) or
	// the same claims signed again are the same sign-in.
	if err := r.useOnce(ctx, name, "id_token", name+"\x00"+string(payload), id.IssuedAt.Add(FreshFor+ClockSkew),
		"this ID token was exchanged before"); err != nil {
		return nil, err
	}
	return id, nil
}

// verify checks an ID token for audience aud and returns the identity and
// the token's nonce. Acceptance is go-oidc's verdict (signature with the
// provider's keys, issuer, audience, expiry); this package adds the
// checks it lacks (size, canonical encoding, azp, iat not in the future,
// claim types) and sorts failures into its error kinds. It also returns
// the payload the signature covers, as the provider signed it.
func (r *Registry) verify(ctx context.Context, p *provider, meta *metadata, raw, aud string) (*Identity, string, []byte, error) {
	name := p.cfg.Name
	if len(raw) > maxIDTokenBytes {
		return nil, "", nil, fail(ErrClaims, name, nil, "ID token larger than %d bytes", maxIDTokenBytes)
	}
	if !canonicalJWS(raw) {
		return nil, "", nil, fail(ErrSignature, name, nil, "ID token is not a JWS in canonical base64url (three segments, no padding, no unused bits set)")
	}
	// A token from another issuer is refused before any key is fetched
	// for it. Its claims are not trusted here, only named in the reason.
	unverified, err := peek(raw, meta.algs)
	if err != nil {
		return nil, "", nil, fail(ErrSignature, name, err, "ID token is not a JWS signed with an algorithm the provider announces: %s", short(err))
	}
	if unverified.Issuer != p.cfg.Issuer {
		return nil, "", nil, fail(ErrIssuer, name, nil, "ID token issued by %s, want %s", quote(unverified.Issuer), quote(p.cfg.Issuer))
	}
	ctx = gooidc.ClientContext(ctx, p.client)
	payload, err := meta.keys.verify(ctx, raw)
	if err != nil {
		return nil, "", nil, err
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
			return nil, "", nil, fail(ErrExpired, name, nil, "the ID token expired at %s", exp.Expiry.UTC().Format(time.RFC3339))
		case !slices.Contains(unverified.Audience, aud):
			return nil, "", nil, fail(ErrAudience, name, nil, "the ID token is for %s, not client %s", quote(fmt.Sprint(unverified.Audience)), quote(aud))
		default:
			return nil, "", nil, fail(ErrClaims, name, err, "the ID token was refused: %s", short(err))
		}
	}
	claims, err := parseClaims(payload, p.cfg.SubjectClaim, p.cfg.GroupsClaim)
	if err != nil {
		return nil, "", nil, fail(ErrClaims, name, err, "%s", short(err))
	}
	// OpenID Connect Core 1.0 section 3.1.3.7: with several audiences the
	// token must name this client as its authorized party; a present azp
	// must be this client.
	if (len(idt.Audience) > 1 || claims.azp != "") && claims.azp != aud {
		return nil, "", nil, fail(ErrAudience, name, nil, "the ID token's authorized party is %s, not client %s", quote(claims.azp), quote(aud))
	}
	if idt.IssuedAt.After(r.clk.Now().Add(ClockSkew)) {
		return nil, "", nil, fail(ErrExpired, name, nil, "the ID token claims to be issued in the future, at %s", idt.IssuedAt.UTC().Format(time.RFC3339))
	}
	// The console's and the CLI's clients never share a token: one that
	// also names the other client is refused, so a token (or a code) one
	// of them was given cannot serve the other.
	for _, other := range []string{p.cfg.ClientID, p.cfg.CLIClientID} {
		if other != "" && other != aud && slices.Contains(idt.Audience, other) {
			return nil, "", nil, fail(ErrAudience, name, nil, "the ID token names both client %s and client %s", quote(aud), quote(other))
		}
	}
	return &Identity{
		Provider: name, Issuer: idt.Issuer, Subject: claims.subject,
		Email: claims.email, EmailVerified: claims.emailVerified, Name: claims.name, Groups: claims.groups,
		IssuedAt: idt.IssuedAt, Expiry: idt.Expiry, RawIDToken: raw,
	}, claims.nonce, payload, nil
}

// canonicalJWS reports whether raw is a compact JWS whose three segments
// are each base64url without padding exactly as encoding their bytes
// gives it: decoders ignore the unused low bits of a segment's last
// character (and line breaks), so one token has many spellings.
func canonicalJWS(raw string) bool {
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return false
	}
	for _, seg := range segs {
		b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != seg {
			return false
		}
	}
	return true
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
