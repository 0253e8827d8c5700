package console

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/netsource"
)

// SSO signs people in through OpenID providers (nil in Deps: API tokens
// only).
type SSO interface {
	// Providers names the providers a person may sign in with.
	Providers() []string
	// Begin starts a sign-in at provider that returns to the local path
	// next: the URL to send the browser to, and the sign-in sealed for the
	// browser to keep in its cookie (the server keeps nothing).
	Begin(ctx context.Context, provider, redirectURL, next string) (*SSOStart, error)
	// Open returns the sign-in sealed in a cookie, begun for state; false
	// when it was not begun in this browser for that state (a cookie
	// altered, cut short, sealed by another server, or another state).
	Open(cookie, state string) (*SSOLogin, bool)
	// Complete checks the provider's answer (state and code) against l,
	// the sign-in begun, and signs the person in for ttl; each sign-in
	// completes once, at any replica. A refused answer is an
	// *access.SSOError.
	Complete(ctx context.Context, l *SSOLogin, state, code, redirectURL string, ttl time.Duration) (*access.SSOSignedIn, error)
	// EndSessionURLs are the sign-out pages of the providers that have
	// one; a provider not reached yet is asked briefly (about a second)
	// and left out when it does not answer.
	EndSessionURLs(postLogout string) map[string]string
}

// SSOStart is a sign-in begun: where to send the browser, and the
// sign-in sealed for its cookie.
type SSOStart struct {
	AuthURL, Cookie string
}

// SSOLogin is a console sign-in waiting for the identity provider's
// answer, as its cookie keeps it.
type SSOLogin struct {
	Provider  string
	State     string
	Nonce     string
	Verifier  string // the PKCE code verifier
	Next      string // the local path to return to
	CreatedAt time.Time
	// Source is the address the answer came from (not sealed).
	Source string
}

const (
	// ssoCookie binds a sign-in to the browser that began it: it holds the
	// sign-in sealed, state included, which the provider's answer must
	// carry back. Lax, not Strict: the answer arrives as a navigation from
	// the provider's site.
	ssoCookie = "__Host-certwright-sso"
	// ssoLifetime bounds the time from the button to the provider's answer.
	ssoLifetime = 10 * time.Minute
	// maxNext bounds the path a sign-in returns to (it goes into the
	// cookie); a longer one returns to the start page.
	maxNext = 1024
	// ssoCallback is where providers send their answer.
	ssoCallback = "/login/sso/callback"
)

// providerError is the sign-in page's words for an OAuth error code;
// any other code is "refused" (the provider's own description is never
// shown).
func providerError(code string) string {
	switch code {
	case "access_denied":
		return "the provider refused the sign-in (access denied)"
	case "login_required":
		return "the provider needs you to sign in there first"
	case "consent_required":
		return "the provider needs your consent first"
	case "interaction_required":
		return "the provider needs you to act there first"
	case "temporarily_unavailable":
		return "the provider is temporarily unavailable"
	case "server_error":
		return "the provider failed"
	case "invalid_request":
		return "the provider refused the request"
	case "unauthorized_client":
		return "the provider does not allow this client to sign in"
	case "unsupported_response_type":
		return "the provider does not support this sign-in"
	case "invalid_scope":
		return "the provider refused the requested scopes"
	}
	return "the provider refused the sign-in"
}

// redirectURL is this console's callback as the browser reaches it. The
// provider accepts only the redirect URLs registered with it, so a forged
// Host header leads nowhere.
func redirectURL(r *http.Request) string {
	return "https://" + r.Host + ssoCallback
}

// ssoBegin sends the browser to the provider in the path. It is a GET (a
// link on the sign-in page): the page's form-action policy would stop a
// form's redirect to another site.
func (h *Handler) ssoBegin(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	if h.d.SSO == nil || !slices.Contains(h.d.SSO.Providers(), provider) {
		h.render(w, r, http.StatusNotFound, "login", nil, h.loginView(r, "There is no identity provider of that name here.", ""))
		return
	}
	src := netsource.RemoteHost(r.RemoteAddr)
	if wait := h.ssoLimiter.Wait(src); wait > 0 {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.render(w, r, http.StatusTooManyRequests, "login", nil, h.loginView(r, "Too many sign-ins begun from your address. Try again in "+strconv.Itoa(secs)+" s.", ""))
		return
	}
	h.ssoLimiter.Fail(src) // every start counts: each asks the provider for a sign-in
	ctx, cancel := h.storeContext(r)
	defer cancel()
	next := localPath(r.URL.Query().Get("next"))
	if len(next) > maxNext {
		next = "/"
	}
	start, err := h.d.SSO.Begin(ctx, provider, redirectURL(r), next)
	if err != nil {
		var se *access.SSOError
		if errors.As(err, &se) && se.Unavailable {
			h.d.Log.Warn("console: identity provider unavailable", "provider", provider, "err", err)
			h.render(w, r, http.StatusServiceUnavailable, "login", nil, h.loginView(r, "", provider+" cannot be reached now. Try again later, or sign in with an API token."))
			return
		}
		h.unavailable(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: start.Cookie, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(ssoLifetime.Seconds())})
	http.Redirect(w, r, start.AuthURL, http.StatusSeeOther)
}

// ssoFinish takes the provider's answer: the state must be the one sealed
// in this browser's cookie, the sign-in not expired; then the provider's
// code and ID token are checked, the sign-in recorded as completed (once,
// at any replica) and the person signed in, and the session opened as a
// token sign-in opens it.
func (h *Handler) ssoFinish(w http.ResponseWriter, r *http.Request) {
	if h.d.SSO == nil {
		http.NotFound(w, r)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	src := netsource.RemoteHost(r.RemoteAddr)
	q := r.URL.Query()
	state := q.Get("state")
	ctx, cancel := h.storeContext(r)
	defer cancel()
	detail := ""
	fail := func(provider, reason string) {
		h.limiter.Fail(src)
		rec := "sso " + provider + ": " + reason
		if detail != "" {
			rec += " (" + clip(detail, 300) + ")"
		}
		h.d.Refusals.Add(audit.Refusal{Source: src, Action: "console.sign_in", Path: r.URL.Path, Status: http.StatusUnauthorized, Reason: rec})
		h.render(w, r, http.StatusUnauthorized, "login", nil, h.loginView(r, "", "The sign-in through "+provider+" did not complete: "+reason+". Try again."))
	}
	c, err := r.Cookie(ssoCookie)
	if err != nil || state == "" || len(state) > 512 {
		fail("the identity provider", "it was not begun in this browser (the state does not match)")
		return
	}
	l, ok := h.d.SSO.Open(c.Value, state)
	if !ok {
		fail("the identity provider", "it was not begun in this browser (the state does not match)")
		return
	}
	l.Source = src
	if age := h.d.Clock.Now().Sub(l.CreatedAt); age > ssoLifetime {
		fail(l.Provider, "it took longer than "+ssoLifetime.String()+" and has expired")
		return
	}
	if e := q.Get("error"); e != "" {
		fail(l.Provider, providerError(e))
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		fail(l.Provider, "the provider's answer carries no code")
		return
	}
	in, err := h.d.SSO.Complete(ctx, l, state, code, redirectURL(r), h.d.MaxAge)
	var se *access.SSOError
	switch {
	case errors.Is(err, access.ErrSSODisabled):
		fail(l.Provider, "your principal is disabled in Certwright")
		return
	case errors.Is(err, access.ErrSSOUnknown):
		fail(l.Provider, "no principal here has your identity; ask an administrator to add you")
		return
	case errors.As(err, &se):
		h.d.Log.Info("console: sign-in through an identity provider refused", "provider", l.Provider, "reason", se.Reason, "detail", se.Detail)
		detail = se.Detail
		fail(l.Provider, se.Reason)
		return
	case err != nil:
		h.unavailable(w, r, err)
		return
	}
	who, err := h.d.Auth.Resume(ctx, "token:"+in.Token.ID)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	who.Source = src
	if !h.openSession(w, r, who, map[string]any{"provider": l.Provider}) {
		return
	}
	// A page, not a redirect: the session cookie is SameSite=Strict, and
	// a browser still on the provider's redirect chain would not send it.
	h.render(w, r, http.StatusOK, "continue", nil, continueView{Next: localPath(l.Next), Name: who.Name})
}

// continueView is the page that takes a person on after a sign-in.
type continueView struct {
	Next, Name string
}

// ssoProviders lists the sign-in page's providers, in the order given.
func (h *Handler) ssoProviders() []string {
	if h.d.SSO == nil {
		return nil
	}
	return h.d.SSO.Providers()
}

// endSessionLinks are the providers' sign-out pages the signed-out page
// offers, by provider. They return the browser to the console's root: a
// provider follows only a post-logout redirect URI registered for the
// client, exactly as registered (RP-Initiated Logout 1.0, section 3), and
// answers any other with an error page instead of signing out. The root
// is the address an administrator registers (certwright-testidp does).
func (h *Handler) endSessionLinks(r *http.Request) map[string]string {
	if h.d.SSO == nil {
		return nil
	}
	return h.d.SSO.EndSessionURLs(postLogoutURL(r))
}

// postLogoutURL is where a provider's sign-out returns the browser: this
// console's root as the browser reaches it.
func postLogoutURL(r *http.Request) string {
	return "https://" + r.Host + "/"
}
