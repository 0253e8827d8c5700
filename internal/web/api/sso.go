package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// SSO exchanges an ID token that certwright login --sso obtained from an
// identity provider for a short-lived Certwright token.
type SSO interface {
	// Providers describes the configured providers to a CLI.
	Providers() []apitypes.SSOProvider
	// Exchange verifies x's ID token as its provider's, for its CLI
	// client, bound to this server as x.Host names it, and signs the
	// person in; a refusal is an *access.SSOError or one of access's
	// ErrSSO* errors.
	Exchange(ctx context.Context, x SSOExchange) (*access.SSOSignedIn, error)
}

// SSOExchange is an exchange as the API received it.
type SSOExchange struct {
	Provider, IDToken, Binder string
	// Host is the name (and port) the request reached this server at.
	Host string
	// Source is the caller's address.
	Source string
}

// maxBinder bounds the binder (43 characters: 32 bytes in base64url).
const maxBinder = 64

// maxIDToken bounds the ID token a client sends (the oidc package bounds
// it again).
const maxIDToken = 16 << 10

// ssoRoutes are the routes that authenticate with what their body carries
// (an ID token), not with a Certwright credential: the provider list a
// CLI starts from, and the exchange.
func (h *Handler) ssoRoutes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/api/v1/sso/providers", Action: "sso.providers", handle: h.ssoProviders},
		{Method: "POST", Pattern: "/api/v1/sso/token", Action: "sso.token", handle: h.ssoToken},
	}
}

// PublicRoutes lists the routes served without a Certwright credential
// (for the route-walk tests).
func (h *Handler) PublicRoutes() []Route { return append([]Route(nil), h.public...) }

func (h *Handler) ssoProviders(w http.ResponseWriter, _ *http.Request, _ authz.Principal) error {
	out := apitypes.SSOProviders{Providers: []apitypes.SSOProvider{}}
	if h.d.SSO != nil {
		out.Providers = h.d.SSO.Providers()
	}
	return writeJSON(w, http.StatusOK, out)
}

// errSSORefused marks an exchange refused for what the ID token or the
// person is (answered 401, counted against the source like a bad token).
var errSSORefused = errors.New("api: sign-in refused")

func (h *Handler) ssoToken(w http.ResponseWriter, r *http.Request, anon authz.Principal) error {
	if h.d.SSO == nil {
		return notFound("no identity provider is configured on this server")
	}
	var req apitypes.SSOTokenRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	switch {
	case req.Provider == "":
		return badInput("provider is required: one of GET /api/v1/sso/providers")
	case req.IDToken == "":
		return badInput("id_token is required: the ID token the provider issued to the CLI's client")
	case len(req.IDToken) > maxIDToken:
		return badInput("id_token is %d bytes, at most %d", len(req.IDToken), maxIDToken)
	case len(req.Binder) > maxBinder:
		return badInput("binder is %d bytes, at most %d: the 32 random bytes the nonce was made from, in base64url", len(req.Binder), maxBinder)
	}
	in, err := h.d.SSO.Exchange(r.Context(), SSOExchange{Provider: req.Provider, IDToken: req.IDToken, Binder: req.Binder,
		Host: r.Host, Source: anon.Source})
	var se *access.SSOError
	switch {
	case errors.As(err, &se) && se.Unavailable:
		h.d.Log.Warn("sso exchange: provider unavailable", "provider", req.Provider, "err", err)
		h.writeUnavailable(w)
		return nil
	case errors.As(err, &se):
		return refusedSSO(se.Reason, se.Detail)
	case errors.Is(err, access.ErrSSODisabled):
		return refusedSSO("your principal is disabled in Certwright", "")
	case errors.Is(err, access.ErrSSOUnknown):
		return refusedSSO("no principal here has your identity; ask an administrator to add you", "")
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusOK, apitypes.SSOTokenResult{Token: in.Secret, TokenID: in.Token.ID, Principal: in.Principal.Name,
		ExpiresAt: in.Token.ExpiresAt.UTC(), Created: in.Created})
}

// ssoRefusal is a refused exchange: Reason is ours, for the caller;
// Detail goes to the audit log only.
type ssoRefusal struct{ Reason, Detail string }

func (e *ssoRefusal) Error() string { return e.Reason }
func (e *ssoRefusal) Unwrap() error { return errSSORefused }

func refusedSSO(reason, detail string) error { return &ssoRefusal{Reason: reason, Detail: detail} }

func notFound(msg string) error { return errors.Join(errNotFound, errors.New(msg)) }

// wrapPublic serves a route that authenticates itself: it gets what every
// route gets (request ID, deadline, no credential in the URL, the write
// checks, the body bound, the source's refusal budget), with anonymous as
// the principal; a refused exchange is counted and audited as a refused
// authentication is.
func (h *Handler) wrapPublic(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, anon, cancel, ok := h.admit(w, r, rt)
		defer cancel()
		if !ok {
			return
		}
		if wait := h.limiter.Wait(anon.Source); wait > 0 && unsafeMethod(r.Method) {
			h.tooMany(w, r, rt, anon, wait)
			return
		}
		if status, msg, detail := h.writeCheck(r, nil); status != 0 {
			writeError(w, status, msg, detail, "")
			h.refuse(r, rt, anon, status, detail)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.d.MaxBody)
		start := time.Now()
		err := rt.handle(w, r, anon)
		var sr *ssoRefusal
		switch {
		case errors.As(err, &sr):
			writeError(w, http.StatusUnauthorized, "sign-in refused", sr.Reason, "")
			reason := "sso: " + sr.Reason
			if sr.Detail != "" {
				reason += " (" + truncate(sr.Detail, 300) + ")"
			}
			h.refuse(r, rt, anon, http.StatusUnauthorized, reason)
		case err != nil:
			if status := h.fail(w, err); status >= 400 && status < 500 {
				h.refuse(r, rt, anon, status, truncate(err.Error(), 300))
			}
		}
		h.d.Log.Debug("api request", "method", r.Method, "path", r.URL.Path, "principal", anon.Name,
			"request_id", anon.RequestID, "duration_ms", time.Since(start).Milliseconds())
	})
}
