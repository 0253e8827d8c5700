package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/netsource"
)

// cookieName carries the session's secret. The __Host- prefix makes the
// browser refuse the cookie unless it is Secure, set by this host, for
// the path / and without a Domain: no other host (a sibling subdomain)
// can set or overwrite it.
const cookieName = "__Host-certwright"

// secretLen is the session secret's length in bytes (256 bits).
const secretLen = 32

// touchEvery is how stale a session's recorded last use may get: the idle
// timeout is precise to this.
const touchEvery = time.Minute

// maxFormBytes bounds a console form's body.
const maxFormBytes = 8 << 10

// visit is one request within a session.
type visit struct {
	who     authz.Principal
	session *authz.Session
	csrf    string
}

// Reasons a session ends, as stored and as the sign-in page explains them.
const (
	endSignedOut = "signed out"
	endIdle      = "idle"
	endExpired   = "expired"
	endRefused   = "credential refused"
	endReplaced  = "replaced by a new sign-in"
)

// endMessages are what the sign-in page says after a session ended, keyed
// by the code in its ?ended= parameter: only these texts are ever shown.
var endMessages = map[string]string{
	"signed_out": "You signed out.",
	"idle":       "Your session ended after a period without activity. Sign in again.",
	"expired":    "Your session reached its maximum age. Sign in again.",
	"refused":    "Your session ended: the token it was signed in with is no longer accepted (revoked or expired, or its principal disabled).",
	"required":   "Sign in to continue.",
}

func endCode(reason string) string {
	switch reason {
	case endSignedOut:
		return "signed_out"
	case endIdle:
		return "idle"
	case endExpired:
		return "expired"
	case endRefused:
		return "refused"
	}
	return "required"
}

// newSecret returns a fresh session secret, as the cookie carries it.
func newSecret() (string, error) {
	b := make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// secretHash is what the store keeps of a secret.
func secretHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// validSecret reports whether s has the shape newSecret gives.
func validSecret(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(secretLen) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// csrfToken is the form token of a session: derived from its secret, so
// it is never stored, and unknown to anyone who does not hold the cookie.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("certwright console csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) setCookie(w http.ResponseWriter, secret string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: secret, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: max(1, int(maxAge.Seconds()))})
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// sessionSecret returns the request's session secret, "" when it has none
// of the right shape.
func sessionSecret(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil || !validSecret(c.Value) {
		return ""
	}
	return c.Value
}

// sameOrigin refuses a state-changing request a page of another origin
// could have sent: its Origin must be this server's own (a browser sends
// Origin with every POST, same-origin ones included), and Sec-Fetch-Site,
// when sent, same-origin.
func sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errors.New("the browser labelled this request as sent from another site")
	}
	o := r.Header.Values("Origin")
	if len(o) != 1 {
		return errors.New("the request carries no Origin header (or several)")
	}
	if o[0] != "https://"+r.Host {
		return errors.New("the request came from another origin")
	}
	return nil
}

// localPath returns p when it is a path (and query) on this server, else
// "/": a sign-in never redirects elsewhere. Browsers drop tabs and line
// breaks from a URL and read a backslash as a slash, so "/\t/evil" or
// "/\\evil" would leave the site: any control character, backslash,
// scheme, host or user refuses it, and what is returned is the parsed
// path and query written out again.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "/"
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	out := u.EscapedPath()
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

// toLogin sends a browser without a usable session to the sign-in page; a
// state change is refused instead (its form is gone with the session).
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, code string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.render(w, r, http.StatusForbidden, "error", nil, errorPage{Title: "Session required", Message: endMessages[code]})
		return
	}
	q := url.Values{"ended": {code}}
	if next := r.URL.RequestURI(); next != "/" {
		q.Set("next", next)
	}
	http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
}

// enter resumes the request's session: it must exist, not have ended, be
// within its idle and absolute timeouts, and its credential must still be
// accepted (a revoked token or a disabled principal ends it here, on the
// next request). A state change must also come from this origin and carry
// the session's CSRF token. It answers the request itself when it returns
// false.
func (h *Handler) enter(w http.ResponseWriter, r *http.Request) (*visit, bool) {
	secret := sessionSecret(r)
	if secret == "" {
		h.toLogin(w, r, "required")
		return nil, false
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	idHash := secretHash(secret)
	s, err := h.d.Sessions.GetSession(ctx, idHash)
	if err != nil {
		if errors.Is(err, authz.ErrNotFound) {
			clearCookie(w)
			h.toLogin(w, r, "required")
			return nil, false
		}
		h.unavailable(w, r, err)
		return nil, false
	}
	now := h.d.Clock.Now()
	end := ""
	switch {
	case s.EndedAt != nil:
		clearCookie(w)
		h.toLogin(w, r, endCode(s.EndReason))
		return nil, false
	case !now.Before(s.ExpiresAt):
		end = endExpired
	case now.Sub(s.LastSeenAt) >= h.d.IdleTimeout:
		end = endIdle
	}
	var who authz.Principal
	if end == "" {
		who, err = h.d.Auth.Resume(ctx, s.Auth)
		switch {
		case err == nil && who.ID != s.PrincipalID:
			end = endRefused
		case errors.Is(err, authz.ErrUnauthenticated), errors.Is(err, authz.ErrSessionCredential):
			end = endRefused
		case err != nil:
			h.unavailable(w, r, err)
			return nil, false
		}
	}
	if end != "" {
		if _, err := h.d.Sessions.EndSession(ctx, idHash, now, end); err != nil {
			h.d.Log.Warn("console: end session", "reason", end, "err", err)
		}
		clearCookie(w)
		h.toLogin(w, r, endCode(end))
		return nil, false
	}
	v := &visit{who: who, session: s, csrf: csrfToken(secret)}
	v.who.Source = netsource.RemoteHost(r.RemoteAddr)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := sameOrigin(r); err != nil {
			h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Request refused", Message: "This change was refused: " + err.Error() + ". Use the console's own pages to make changes."})
			return nil, false
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(v.csrf)) {
			h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Request refused", Message: "This form's security token is missing or out of date. Reload the page and try again."})
			return nil, false
		}
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		if err := h.d.Sessions.TouchSession(ctx, idHash, now); err != nil {
			h.d.Log.Warn("console: touch session", "err", err)
		}
	}
	return v, true
}

type loginView struct {
	Message, Error string
	Next           string
	// Providers are the identity providers to sign in with; EndSession
	// their sign-out pages, offered after signing out.
	Providers  []string
	EndSession map[string]string
}

// loginView is the sign-in page for r with a message or an error.
func (h *Handler) loginView(r *http.Request, message, problem string) loginView {
	return loginView{Message: message, Error: problem, Next: localPath(r.URL.Query().Get("next")), Providers: h.ssoProviders()}
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	ended := r.URL.Query().Get("ended")
	lv := h.loginView(r, endMessages[ended], "")
	if ended == "signed_out" {
		lv.EndSession = h.endSessionLinks(r)
	}
	h.render(w, r, http.StatusOK, "login", nil, lv)
}

// signIn checks a pasted API token and opens a session for its principal.
// The token is used once, here: the browser keeps only the session's
// cookie, and the server only the session's hash and the token's ID.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		h.render(w, r, http.StatusForbidden, "error", nil, errorPage{Title: "Sign-in refused", Message: "This sign-in was refused: " + err.Error() + ". Sign in from the console's own page."})
		return
	}
	src := netsource.RemoteHost(r.RemoteAddr)
	if wait := h.limiter.Wait(src); wait > 0 {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.d.Refusals.Add(audit.Refusal{Source: src, Action: "console.sign_in", Path: r.URL.Path, Status: http.StatusTooManyRequests, Reason: "rate limited"})
		h.render(w, r, http.StatusTooManyRequests, "login", nil, loginView{Error: "Too many failed sign-ins from your address. Try again in " + strconv.Itoa(secs) + " s.", Providers: h.ssoProviders()})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := localPath(r.PostFormValue("next"))
	ctx, cancel := h.storeContext(r)
	defer cancel()
	who, err := h.d.Auth.Authenticate(ctx, token)
	if err != nil {
		if !errors.Is(err, authz.ErrUnauthenticated) {
			h.unavailable(w, r, err)
			return
		}
		h.limiter.Fail(src)
		h.d.Refusals.Add(audit.Refusal{Source: src, Action: "console.sign_in", Path: r.URL.Path, Status: http.StatusUnauthorized, Reason: "token refused"})
		h.render(w, r, http.StatusUnauthorized, "login", nil, loginView{Error: "That token was not accepted: it is unknown, revoked or expired, or its principal is disabled.", Next: next, Providers: h.ssoProviders()})
		return
	}
	who.Source = src
	if h.openSession(w, r, who, nil) {
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

// openSession opens a new session for who, signed in just now (its
// credential in who.Auth), audited as console.sign_in with details added,
// and sets its cookie. It answers the request itself when it returns
// false.
func (h *Handler) openSession(w http.ResponseWriter, r *http.Request, who authz.Principal, details map[string]any) bool {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	now := h.d.Clock.Now()
	// A new sign-in always gets a new session: one this browser held
	// before ends here, so a secret set before sign-in is never promoted.
	if old := sessionSecret(r); old != "" {
		if _, err := h.d.Sessions.EndSession(ctx, secretHash(old), now, endReplaced); err != nil {
			h.d.Log.Warn("console: end replaced session", "err", err)
		}
	}
	secret, err := newSecret()
	if err != nil {
		h.unavailable(w, r, err)
		return false
	}
	expires := now.Add(h.d.MaxAge)
	if who.AuthExpiresAt != nil && who.AuthExpiresAt.Before(expires) {
		expires = *who.AuthExpiresAt
	}
	s := &authz.Session{IDHash: secretHash(secret), PrincipalID: who.ID, Auth: who.Auth, Source: who.Source,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: expires}
	d := map[string]any{"session": s.IDHash[:16], "auth": who.Auth, "expires_at": expires.UTC().Format(time.RFC3339)}
	for k, v := range details {
		d[k] = v
	}
	ev := audit.New(who, now, "console.sign_in", who.Name, d)
	if err := h.d.Sessions.CreateSession(ctx, s, ev); err != nil {
		h.unavailable(w, r, err)
		return false
	}
	h.setCookie(w, secret, expires.Sub(now))
	return true
}

// signOut ends the session (audited) and forgets its cookie.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	now := h.d.Clock.Now()
	ev := audit.New(v.who, now, "console.sign_out", v.who.Name, map[string]any{"session": v.session.IDHash[:16]})
	if _, err := h.d.Sessions.EndSession(ctx, v.session.IDHash, now, endSignedOut, ev); err != nil {
		h.unavailable(w, r, err)
		return
	}
	clearCookie(w)
	http.Redirect(w, r, "/login?ended=signed_out", http.StatusSeeOther)
}

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	h.d.Log.Error("console: request failed", "path", r.URL.Path, "err", err)
	h.render(w, r, http.StatusServiceUnavailable, "error", nil, errorPage{Title: "Temporarily unavailable", Message: "The server could not complete this request. Try again in a moment; the server's log says why."})
}
