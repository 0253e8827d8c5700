package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/certwright/certwright/internal/config"
)

// This file is the CLI's half (certwright login --sso): it talks to the
// provider directly, with no Certwright server involved, and hands the ID
// token it obtains to the server, which verifies it again (VerifyIDToken).
// The caller passes the nonce that binds the sign-in to its server
// (Binding.Nonce).

// ClientParams name the provider and the CLI's public client there.
type ClientParams struct {
	Issuer   string
	ClientID string
	// Scopes default to openid, email and profile.
	Scopes []string
	// HTTPClient talks to the provider (default HTTPClient(nil): system
	// roots, 10 s timeout, bounded responses).
	HTTPClient *http.Client
}

// Token is the outcome of a CLI sign-in.
type Token struct {
	RawIDToken string
	Expiry     time.Time
}

type cliProvider struct {
	params ClientParams
	gp     *gooidc.Provider
	ctx    context.Context // carries the HTTP client for oauth2 and go-oidc
}

func discoverCLI(ctx context.Context, p ClientParams) (*cliProvider, error) {
	if err := config.ValidateIssuer(p.Issuer); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if p.ClientID == "" {
		return nil, errors.New("oidc: no client ID")
	}
	if len(p.Scopes) == 0 {
		p.Scopes = []string{"openid", "email", "profile"}
	}
	if p.HTTPClient == nil {
		hc, err := HTTPClient(nil)
		if err != nil {
			return nil, err
		}
		p.HTTPClient = hc
	}
	ctx = gooidc.ClientContext(ctx, p.HTTPClient)
	gp, err := gooidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		return nil, fail(ErrProviderUnavailable, "", err, "discovery at %s failed: %s", p.Issuer, short(err))
	}
	return &cliProvider{params: p, gp: gp, ctx: ctx}, nil
}

func (c *cliProvider) config(redirect string) *oauth2.Config {
	ep := c.gp.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams // a public client: client_id in the form, no secret
	return &oauth2.Config{ClientID: c.params.ClientID, Endpoint: ep, RedirectURL: redirect, Scopes: c.params.Scopes}
}

// token verifies the ID token of a token response (signature, issuer,
// audience = the CLI's client, expiry) and its nonce: it must be nonce,
// or, unless required, absent (a provider that took no nonce).
func (c *cliProvider) token(ctx context.Context, tok *oauth2.Token, nonce string, required bool) (*Token, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fail(ErrClaims, "", nil, "the token response holds no ID token (is openid among the scopes?)")
	}
	idt, err := c.gp.Verifier(&gooidc.Config{ClientID: c.params.ClientID}).Verify(gooidc.ClientContext(ctx, c.params.HTTPClient), raw)
	if err != nil {
		var exp *gooidc.TokenExpiredError
		if errors.As(err, &exp) {
			return nil, fail(ErrExpired, "", err, "the ID token has expired")
		}
		return nil, fail(ErrSignature, "", err, "the ID token does not verify: %s", short(err))
	}
	if (required || idt.Nonce != "") && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, fail(ErrNonce, "", nil, "the ID token's nonce is not this sign-in's")
	}
	return &Token{RawIDToken: raw, Expiry: idt.Expiry}, nil
}

var closePage = template.Must(template.New("done").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Certwright sign-in</title></head>
<body><h1>{{.}}</h1><p>You can close this tab and return to the terminal.</p></body></html>
`))

// LoopbackLogin signs in with the authorization code flow on a loopback
// redirect (RFC 8252 section 7.3): it listens on 127.0.0.1 at a free port,
// calls open with the authorization URL (PKCE, state, and nonce, which
// the ID token must carry), serves the one callback, shows a page saying
// the tab can be closed, and returns the verified ID token. It waits
// until ctx ends; give it a deadline.
func LoopbackLogin(ctx context.Context, p ClientParams, nonce string, open func(authURL string) error) (*Token, error) {
	if nonce == "" {
		return nil, errors.New("oidc: LoopbackLogin needs a nonce")
	}
	cp, err := discoverCLI(ctx, p)
	if err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("oidc: loopback listener: %w", err)
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	cfg := cp.config(redirect)
	state, verifier := random256(), oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce))

	type result struct {
		tok *Token
		err error
	}
	done := make(chan result, 1)
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		// Only the answer to this sign-in ends it: any page or local
		// process can reach the listener, and a request without the
		// state must not abort the person's sign-in.
		if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("state")), []byte(state)) != 1 {
			http.Error(w, "this is not the answer to the sign-in in progress", http.StatusBadRequest)
			return
		}
		served := false
		once.Do(func() {
			served = true
			tok, err := cp.callback(ctx, cfg, r.URL.Query(), state, nonce, verifier)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			title := "Signed in to Certwright"
			if err != nil {
				title = "Sign-in failed: see the terminal"
				w.WriteHeader(http.StatusBadRequest)
			}
			_ = closePage.Execute(w, title)
			done <- result{tok, err}
		})
		if !served {
			http.Error(w, "this sign-in is over", http.StatusGone)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	if err := open(authURL); err != nil {
		return nil, fmt.Errorf("oidc: open the browser: %w", err)
	}
	select {
	case res := <-done:
		return res.tok, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("oidc: waiting for the browser sign-in: %w", ctx.Err())
	}
}

func (c *cliProvider) callback(ctx context.Context, cfg *oauth2.Config, q url.Values, state, nonce, verifier string) (*Token, error) {
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return nil, fail(ErrState, "", nil, "the callback's state does not match the sign-in's")
	}
	if e := q.Get("error"); e != "" {
		return nil, fail(ErrExchange, "", nil, "the provider refused the sign-in: %s %s", quote(e), quote(q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" || len(code) > maxCode {
		return nil, fail(ErrExchange, "", nil, "the callback carries no usable authorization code")
	}
	tok, err := cfg.Exchange(gooidc.ClientContext(ctx, c.params.HTTPClient), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, exchangeError("", err)
	}
	return c.token(ctx, tok, nonce, true)
}

// userCodeRe bounds what a provider's user code may be before it is shown
// in a terminal.
var userCodeRe = regexp.MustCompile(`^[\x21-\x7e]{1,64}$`)

// DeviceLogin signs in with the device authorization grant (RFC 8628): it
// asks the provider for a user code, calls show with the URL the person
// opens on any device and the code, and polls until they approve, the
// code expires or ctx ends. The request carries nonce as an extra
// parameter, which some providers put into the ID token (then it must be
// nonce); most ignore it. It returns ErrDeviceUnsupported when the
// provider's discovery document has no device authorization endpoint.
func DeviceLogin(ctx context.Context, p ClientParams, nonce string, show func(verificationURI, verificationURIComplete, userCode string)) (*Token, error) {
	cp, err := discoverCLI(ctx, p)
	if err != nil {
		return nil, err
	}
	if cp.gp.Endpoint().DeviceAuthURL == "" {
		return nil, fail(ErrDeviceUnsupported, "", nil, "%s announces no device_authorization_endpoint: sign in with a browser instead", cp.params.Issuer)
	}
	cfg := cp.config("")
	var opts []oauth2.AuthCodeOption
	if nonce != "" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", nonce))
	}
	da, err := cfg.DeviceAuth(cp.ctx, opts...)
	if err != nil {
		return nil, exchangeError("", err)
	}
	// The provider's strings go to a terminal: nothing but URLs and a
	// printable code.
	for _, u := range []string{da.VerificationURI, da.VerificationURIComplete} {
		if u != "" && !verificationURL(u) {
			return nil, fail(ErrProviderUnavailable, "", nil, "the provider's verification URI %s is not an https URL", quote(u))
		}
	}
	if da.VerificationURI == "" || !userCodeRe.MatchString(da.UserCode) {
		return nil, fail(ErrProviderUnavailable, "", nil, "the provider's device authorization answer lacks a verification URI or a printable user code")
	}
	show(da.VerificationURI, da.VerificationURIComplete, da.UserCode)
	tok, err := cfg.DeviceAccessToken(cp.ctx, da)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("oidc: waiting for the device sign-in: %w", ctx.Err())
		}
		return nil, exchangeError("", err)
	}
	return cp.token(ctx, tok, nonce, false)
}

// verificationURL accepts a printable https URL (http on loopback), with
// a query: verification_uri_complete carries the code in one.
func verificationURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && len(s) <= 2048 && printable.MatchString(s) && u.User == nil && u.Host != "" &&
		config.ValidateIssuer(u.Scheme+"://"+u.Host) == nil
}

var printable = regexp.MustCompile(`^[\x21-\x7e]+$`)
