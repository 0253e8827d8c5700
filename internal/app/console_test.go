package app

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tBrowser is a console client: it keeps the session cookie as a browser
// would, follows no redirect (the tests look at each), and sends Origin
// on its POSTs as a browser does (origin "" leaves it out).
type tBrowser struct {
	t      *testing.T
	in     *tInstance
	client *http.Client
	cookie string // the session secret, "" before sign-in
	origin string
}

func (in *tInstance) browser(t *testing.T) *tBrowser {
	t.Helper()
	c := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: in.tlsConfig()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	t.Cleanup(c.CloseIdleConnections)
	return &tBrowser{t: t, in: in, client: c, origin: in.l.HTTPSURL}
}

func (b *tBrowser) do(method, path string, form url.Values) tResp {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.in.l.HTTPSURL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost && b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-certwright", Value: b.cookie})
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-certwright" {
			b.cookie = c.Value
		}
	}
	return tResp{status: resp.StatusCode, header: resp.Header, body: data}
}

// signIn signs in with token and checks the session cookie's attributes.
func (b *tBrowser) signIn(token string) {
	b.t.Helper()
	r := b.do("POST", "/login", url.Values{"token": {token}, "next": {"/"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		b.t.Fatalf("sign-in: %d to %q, want 303 to /: %s", r.status, r.header.Get("Location"), tTrim(r.body))
	}
	sc := r.header.Get("Set-Cookie")
	for _, attr := range []string{"__Host-certwright=", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(sc, attr) {
			b.t.Errorf("session cookie %q lacks %s", sc, attr)
		}
	}
	if strings.Contains(sc, "Domain=") {
		b.t.Errorf("session cookie %q has a Domain", sc)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token off a console page.
func (b *tBrowser) csrf() string {
	b.t.Helper()
	r := b.do("GET", "/", nil)
	m := csrfField.FindSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		b.t.Fatalf("GET /: %d without a CSRF token: %s", r.status, tTrim(r.body))
	}
	return string(m[1])
}

// wantLogin checks that r sends the browser to the sign-in page saying why.
func wantLogin(t *testing.T, r tResp, ended string) {
	t.Helper()
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") || !strings.Contains(loc, "ended="+ended) {
		t.Errorf("got %d to %q, want 303 to the sign-in page with ended=%s", r.status, loc, ended)
	}
}

// tAuditActions lists the console's events after seq from, as
// "action principal" (background jobs append their own meanwhile).
func tAuditActions(t *testing.T, in *tInstance, from int64) []string {
	t.Helper()
	var out []string
	for _, ev := range tAuditEvents(t, in, from) {
		if strings.HasPrefix(ev.Action, "console.") {
			out = append(out, ev.Action+" "+ev.Principal)
		}
	}
	return out
}

// TestConsoleSignIn: sign-in with a token opens a server-side session in a
// __Host- cookie (Secure, HttpOnly, SameSite=Strict), audited; pages carry
// a CSP without inline code; sign-out needs the form's CSRF token and this
// origin, ends the session (audited) and the cookie no longer works; a
// second sign-in gets a new session and ends the first.
func TestConsoleSignIn(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			b := in.browser(t)

			wantLogin(t, b.do("GET", "/", nil), "required")
			wantLogin(t, b.do("GET", "/certificates?status=valid", nil), "required")
			login := b.do("GET", "/login", nil)
			if login.status != http.StatusOK || !strings.Contains(string(login.body), `name="token"`) {
				t.Fatalf("GET /login: %d %s", login.status, tTrim(login.body))
			}
			csp := login.header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %s", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-") {
				t.Errorf("CSP %q allows unsafe sources", csp)
			}

			head := tAuditHead(t, in)
			// Sign-in from another origin, or with no Origin, is refused
			// before the token is looked at.
			b.origin = "https://evil.example"
			if r := b.do("POST", "/login", url.Values{"token": {in.token}}); r.status != http.StatusForbidden || b.cookie != "" {
				t.Errorf("sign-in from another origin: %d, cookie %q; want 403 and none", r.status, b.cookie)
			}
			b.origin = ""
			if r := b.do("POST", "/login", url.Values{"token": {in.token}}); r.status != http.StatusForbidden || b.cookie != "" {
				t.Errorf("sign-in without Origin: %d, cookie %q; want 403 and none", r.status, b.cookie)
			}
			b.origin = in.l.HTTPSURL
			bad := b.do("POST", "/login", url.Values{"token": {"cwt_0123456789abcdef_bm90LXRoZS1zZWNyZXQ"}})
			if bad.status != http.StatusUnauthorized || b.cookie != "" || strings.Contains(string(bad.body), "bm90LXRoZS1zZWNyZXQ") {
				t.Errorf("wrong token: %d, cookie %q; want 401, no cookie, the token not echoed", bad.status, b.cookie)
			}
			if got := tAuditActions(t, in, head); len(got) != 0 {
				t.Errorf("refused sign-ins appended %v at once; refusals are counted per minute", got)
			}

			b.signIn(in.token)
			first := b.cookie
			ov := b.do("GET", "/", nil)
			if ov.status != http.StatusOK || !strings.Contains(string(ov.body), "valid") || !strings.Contains(string(ov.body), "admin") {
				t.Fatalf("overview: %d %s", ov.status, tTrim(ov.body))
			}
			if got := tAuditActions(t, in, head); len(got) != 1 || got[0] != "console.sign_in admin" {
				t.Errorf("audit after sign-in: %v, want [console.sign_in admin]", got)
			}

			// Sign-out: refused without the CSRF token, with a wrong one
			// and from another origin; then done.
			csrf := b.csrf()
			for name, tc := range map[string]struct {
				origin string
				form   url.Values
			}{
				"no CSRF token":   {in.l.HTTPSURL, url.Values{}},
				"wrong token":     {in.l.HTTPSURL, url.Values{"csrf": {csrf[:len(csrf)-2] + "xx"}}},
				"another origin":  {"https://evil.example", url.Values{"csrf": {csrf}}},
				"no Origin":       {"", url.Values{"csrf": {csrf}}},
				"null Origin":     {"null", url.Values{"csrf": {csrf}}},
				"http own origin": {"http://" + in.httpsAddr(), url.Values{"csrf": {csrf}}},
			} {
				b.origin = tc.origin
				if r := b.do("POST", "/logout", tc.form); r.status != http.StatusForbidden {
					t.Errorf("sign-out with %s: %d, want 403", name, r.status)
				}
			}
			b.origin = in.l.HTTPSURL
			if r := b.do("GET", "/", nil); r.status != http.StatusOK {
				t.Fatalf("the session ended after refused sign-outs: %d", r.status)
			}
			out := b.do("POST", "/logout", url.Values{"csrf": {csrf}})
			if out.status != http.StatusSeeOther || out.header.Get("Location") != "/login?ended=signed_out" || b.cookie != "" {
				t.Errorf("sign-out: %d to %q, cookie %q; want 303 to /login?ended=signed_out and the cookie cleared", out.status, out.header.Get("Location"), b.cookie)
			}
			b.cookie = first // a copy of the cookie kept by someone
			wantLogin(t, b.do("GET", "/", nil), "signed_out")
			if got := tAuditActions(t, in, head); len(got) != 2 || got[1] != "console.sign_out admin" {
				t.Errorf("audit after sign-out: %v", got)
			}

			// A new sign-in gets a new secret; the one it replaces ends.
			b.cookie = ""
			b.signIn(in.token)
			second := b.cookie
			b.signIn(in.token)
			if b.cookie == second || b.cookie == first {
				t.Error("a new sign-in reused an earlier session secret")
			}
			third := b.cookie
			b.cookie = second
			wantLogin(t, b.do("GET", "/", nil), "required")
			b.cookie = third
			if r := b.do("GET", "/", nil); r.status != http.StatusOK {
				t.Errorf("the newest session: %d", r.status)
			}
			// A made-up cookie is no session.
			b.cookie = strings.Repeat("A", 43)
			wantLogin(t, b.do("GET", "/", nil), "required")
		})
	}
}

// TestConsoleSessionEndsWithCredential: revoking the token a session was
// signed in with, or disabling its principal, ends the session on its
// next request.
func TestConsoleSessionEndsWithCredential(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "carol", Kind: "human", Role: "viewer", Token: true}, &res)
	b := in.browser(t)
	b.signIn(res.Token.Token)
	if r := b.do("GET", "/certificates", nil); r.status != http.StatusOK {
		t.Fatalf("inventory as viewer: %d %s", r.status, tTrim(r.body))
	}
	in.must(http.StatusOK, "POST", "/api/v1/tokens/"+res.Token.Record.ID+"/revoke", nil, nil)
	wantLogin(t, b.do("GET", "/", nil), "refused")

	var res2 apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "dave", Kind: "human", Role: "viewer", Token: true}, &res2)
	b2 := in.browser(t)
	b2.signIn(res2.Token.Token)
	in.must(http.StatusOK, "POST", "/api/v1/principals/dave/disable", nil, nil)
	wantLogin(t, b2.do("GET", "/certificates", nil), "refused")
}

// TestConsoleTimeouts: a session ends after 30 minutes without a request,
// and 12 hours after sign-in however busy.
func TestConsoleTimeouts(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now().UTC())
	cfg := tConfig(t, "")
	tInit(t, cfg, clk)
	in := tStart(t, cfg, clk)
	b := in.browser(t)
	b.signIn(in.token)
	clk.Advance(29 * time.Minute)
	if r := b.do("GET", "/", nil); r.status != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", r.status)
	}
	clk.Advance(31 * time.Minute)
	wantLogin(t, b.do("GET", "/", nil), "idle")

	b.cookie = ""
	b.signIn(in.token)
	for i := 1; i <= 12*60/20; i++ {
		clk.Advance(20 * time.Minute)
		r := b.do("GET", "/", nil)
		if i < 12*60/20 {
			if r.status != http.StatusOK {
				t.Fatalf("a session used every 20 minutes ended after %d minutes: %d", 20*i, r.status)
			}
			continue
		}
		wantLogin(t, r, "expired") // 12 hours after sign-in
	}
}

// TestConsoleScope: a viewer scoped to one profile sees only that
// profile's certificates in the inventory and in the overview's counts.
func TestConsoleScope(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	key := tECKey(t, elliptic.P256())
	in.sign(tCSR(t, key, "web-a.example.internal"))
	in.sign(tCSR(t, key, "web-b.example.internal"))
	var svc apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign",
		apitypes.SignRequest{CSRPEM: string(tCSR(t, key, "svc.example.internal")), Profile: "internal_service"}, &svc)

	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "svc-viewer", Kind: "human", Role: "viewer", Scope: apitypes.Scope{Profiles: []string{"internal_service"}}, Token: true}, &res)
	b := in.browser(t)
	b.signIn(res.Token.Token)
	list := string(b.do("GET", "/certificates", nil).body)
	if !strings.Contains(list, "svc.example.internal") || strings.Contains(list, "web-a.example.internal") || strings.Contains(list, "web-b.example.internal") {
		t.Errorf("scoped inventory shows the wrong certificates: %s", tTrim([]byte(list)))
	}
	// Its ca:read is scoped to a profile, so it may read no CA: the CA
	// filter names none.
	if strings.Contains(list, "<option >issuing</option>") || strings.Contains(list, ">issuing</option>") {
		t.Error("a viewer without ca:read over any CA is offered the CA names")
	}
	ov := string(b.do("GET", "/", nil).body)
	if !strings.Contains(ov, `<span class="n">1</span> valid`) || !strings.Contains(ov, "your scope covers") {
		t.Errorf("scoped overview does not count one valid certificate in scope: %s", tTrim([]byte(ov)))
	}
	// Its charts are drawn from the rows in its scope, without the
	// revocations (which the store counts over everything).
	if !strings.Contains(ov, `id="timeline-h"`) || strings.Contains(ov, `<th scope="col">revoked</th>`) || !strings.Contains(ov, "Revocations per day are shown to viewers") {
		t.Errorf("scoped overview's charts: %s", tTrim([]byte(ov)))
	}
	total := 0
	for _, f := range tChartFigures(t, ov, "daysleft") {
		total += f.values[0]
	}
	if total != 1 {
		t.Errorf("scoped days-left chart counts %d certificates, want the one in scope", total)
	}

	// A principal whose only role lacks cert:read signs in to an
	// overview that says so, and is refused the inventory.
	in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "audit-only", Permissions: []string{"audit:read"}}, nil)
	var appr apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "frank", Kind: "human", Role: "audit-only", Token: true}, &appr)
	ab := in.browser(t)
	ab.signIn(appr.Token.Token)
	if r := ab.do("GET", "/", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "do not include reading certificates") {
		t.Errorf("overview without cert:read: %d %s", r.status, tTrim(r.body))
	}
	if r := ab.do("GET", "/certificates", nil); r.status != http.StatusForbidden || strings.Contains(string(r.body), "svc.example.internal") {
		t.Errorf("inventory without cert:read: %d, want 403", r.status)
	}

	admin := in.browser(t)
	admin.signIn(in.token)
	list = string(admin.do("GET", "/certificates?sort=expiry", nil).body)
	for _, n := range []string{"svc.example.internal", "web-a.example.internal", "web-b.example.internal"} {
		if !strings.Contains(list, n) {
			t.Errorf("admin inventory lacks %s", n)
		}
	}
	// A serial typed into the name box opens the certificate, for a viewer
	// who may see it; for one who may not, nothing is found.
	if r := admin.do("GET", "/certificates?name="+svc.Serial, nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/certificates/"+svc.Serial {
		t.Errorf("serial search: %d to %q", r.status, r.header.Get("Location"))
	}
	if r := b.do("GET", "/certificates?name="+in.sign(tCSR(t, key, "web-c.example.internal")).Serial, nil); r.status != http.StatusOK || strings.Contains(string(r.body), "web-c.example.internal") {
		t.Errorf("serial search outside the scope: %d", r.status)
	}
	if r := admin.do("GET", "/certificates?status=bogus", nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "choose valid, expired or revoked") {
		t.Errorf("a bad filter: %d %s", r.status, tTrim(r.body))
	}
	ov = string(admin.do("GET", "/", nil).body)
	if !strings.Contains(ov, `<span class="n">5</span> valid`) {
		t.Errorf("admin overview does not count 5 valid certificates: %s", tTrim([]byte(ov)))
	}
}

// TestConsoleSignInLimited: failed sign-ins from one address are limited;
// past the budget even a good token waits (a guess must not be cheaper
// than the wait).
func TestConsoleSignInLimited(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	b := in.browser(t)
	for i := range 5 {
		if r := b.do("POST", "/login", url.Values{"token": {"cwt_0123456789abcdef_d3Jvbmc"}}); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, r.status)
		}
	}
	r := b.do("POST", "/login", url.Values{"token": {in.token}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || b.cookie != "" {
		t.Errorf("after 5 failures: %d, Retry-After %q, cookie %q; want 429 with Retry-After and no session", r.status, r.header.Get("Retry-After"), b.cookie)
	}
}

// TestConsoleRoutesNeedSession walks every console route without a
// session: pages send the browser to sign in, state changes are refused,
// and only the sign-in page and the stylesheet are served.
func TestConsoleRoutesNeedSession(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	h, err := in.app.Console()
	if err != nil {
		t.Fatal(err)
	}
	b := in.browser(t)
	public := 0
	for _, rt := range h.Routes() {
		path := strings.TrimSuffix(rt.Pattern, "{$}")
		if rt.Pattern == "/static/" {
			path = "/static/console.css"
		}
		path = strings.NewReplacer("{serial}", "01", "{id}", "0123456789abcdef", "{address}", "127.0.0.1:443").Replace(path)
		r := b.do(rt.Method, path, url.Values{})
		switch {
		case rt.Public:
			public++
			want := http.StatusOK
			if strings.HasPrefix(path, "/login/sso/") {
				want = http.StatusNotFound // no identity provider is configured here
			}
			if rt.Method == "GET" && r.status != want {
				t.Errorf("public %s %s: %d, want %d", rt.Method, path, r.status, want)
			}
		case rt.Method == "GET":
			wantLogin(t, r, "required")
		default:
			if r.status != http.StatusForbidden {
				t.Errorf("%s %s without a session: %d, want 403", rt.Method, path, r.status)
			}
		}
		// Every page but the landing page names the permission it needs
		// (the landing page shows only what cert:read allows).
		if !rt.Public && rt.Method == "GET" && len(rt.Permissions) == 0 && rt.Pattern != "/{$}" {
			t.Errorf("page %s %s names no permission", rt.Method, rt.Pattern)
		}
	}
	if public != 5 {
		t.Errorf("%d public routes, want 5 (sign-in page, sign-in, stylesheet, single sign-on's start and answer)", public)
	}
	if r := b.do("GET", "/no/such/page", nil); r.status != http.StatusNotFound {
		t.Errorf("an unknown page: %d, want 404", r.status)
	}
}

// TestConsoleRevoke: the certificate page revokes through the core with
// the viewer's own permission and scope: the form needs a reason, the
// confirmation, the CSRF token and this origin; a viewer without
// cert:revoke gets no form and is refused; a certificate outside the
// viewer's scope is not found. After the revocation the OCSP responder
// answers revoked.
func TestConsoleRevoke(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	key := tECKey(t, elliptic.P256())
	issued := in.sign(tCSR(t, key, "gone.example.internal"))
	var svc apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign",
		apitypes.SignRequest{CSRPEM: string(tCSR(t, key, "svc.example.internal")), Profile: "internal_service"}, &svc)
	page := "/certificates/" + issued.Serial

	// A viewer sees the certificate but no revoke form, and is refused.
	var viewer apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "erin", Kind: "human", Role: "viewer", Token: true}, &viewer)
	vb := in.browser(t)
	vb.signIn(viewer.Token.Token)
	if r := vb.do("GET", page, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "gone.example.internal") || strings.Contains(string(r.body), "/revoke") {
		t.Errorf("viewer's certificate page: %d, revoke form shown: %v", r.status, strings.Contains(string(r.body), "/revoke"))
	}
	vcsrf := vb.csrf()
	if r := vb.do("POST", page+"/revoke", url.Values{"csrf": {vcsrf}, "reason": {"key_compromise"}, "confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Errorf("viewer revoking: %d, want 403", r.status)
	}

	// Scoped to internal_service: the web_server certificate is not found.
	var scoped apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "svc-ops", Kind: "human", Role: "admin", Scope: apitypes.Scope{Profiles: []string{"internal_service"}}, Token: true}, &scoped)
	sb := in.browser(t)
	sb.signIn(scoped.Token.Token)
	if r := sb.do("GET", page, nil); r.status != http.StatusNotFound || strings.Contains(string(r.body), "gone.example.internal") {
		t.Errorf("out-of-scope certificate page: %d", r.status)
	}
	if r := sb.do("POST", page+"/revoke", url.Values{"csrf": {sb.csrf()}, "reason": {"key_compromise"}, "confirm": {"yes"}}); r.status != http.StatusNotFound {
		t.Errorf("revoking out of scope: %d, want 404", r.status)
	}
	if r := sb.do("GET", "/certificates/"+svc.Serial, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "/revoke") {
		t.Errorf("in-scope certificate page: %d, revoke form shown: %v", r.status, strings.Contains(string(r.body), "/revoke"))
	}

	b := in.browser(t)
	b.signIn(in.token)
	if r := b.do("GET", page, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "/revoke") {
		t.Fatalf("admin's certificate page: %d, no revoke form", r.status)
	}
	csrf := b.csrf()
	for name, form := range map[string]url.Values{
		"no confirmation": {"csrf": {csrf}, "reason": {"key_compromise"}},
		"no reason":       {"csrf": {csrf}, "confirm": {"yes"}},
		"unknown reason":  {"csrf": {csrf}, "reason": {"because"}, "confirm": {"yes"}},
		"bad date":        {"csrf": {csrf}, "reason": {"key_compromise"}, "confirm": {"yes"}, "invalidity_date": {"yesterday"}},
	} {
		if r := b.do("POST", page+"/revoke", form); r.status != http.StatusBadRequest {
			t.Errorf("revoke with %s: %d, want 400", name, r.status)
		}
	}
	if r := b.do("POST", page+"/revoke", url.Values{"reason": {"key_compromise"}, "confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Errorf("revoke without the CSRF token: %d, want 403", r.status)
	}
	leaf, issuer := tPEMCert(t, issued.CertificatePEM), tPEMCert(t, issued.ChainPEM)
	if s := tOCSPStatus(t, in, leaf, issuer); s != ocsp.Good {
		t.Fatalf("OCSP before the revocation: %d", s)
	}
	r := b.do("POST", page+"/revoke", url.Values{"csrf": {csrf}, "reason": {"key_compromise"}, "confirm": {"yes"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != page+"?revoked=1" {
		t.Fatalf("revoke: %d to %q: %s", r.status, r.header.Get("Location"), tTrim(r.body))
	}
	if s := tOCSPStatus(t, in, leaf, issuer); s != ocsp.Revoked {
		t.Errorf("OCSP after the console's revocation: %d, want revoked", s)
	}
	after := string(b.do("GET", page+"?revoked=1", nil).body)
	if !strings.Contains(after, "key_compromise") || !strings.Contains(after, "admin") || strings.Contains(after, "/revoke\"") {
		t.Errorf("the page after revocation does not show it: %s", tTrim([]byte(after)))
	}
	if r := b.do("GET", page+"/pem", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "BEGIN CERTIFICATE") {
		t.Errorf("PEM download: %d", r.status)
	}
}

// TestConsoleAudit: on both backends, the audit page filters by action
// prefix, principal, target and time, pages on with "Older events", shows
// each event's details escaped, refuses a bad date with 400; "Verify the
// chain now" needs the CSRF token, says intact, is recorded in the log
// as the verifier's, and the page shows it afterwards with the newest
// checkpoint; a viewer without audit:read is refused and not linked.
func TestConsoleAudit(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			b := in.browser(t)
			b.signIn(in.token)
			page := string(b.do("GET", "/audit?action=console.", nil).body)
			if !strings.Contains(page, "console.sign_in") || strings.Contains(page, "ca.create") || !strings.Contains(page, `href="/audit"`) {
				t.Errorf("audit page filtered to console.: %s", tTrim([]byte(page)))
			}
			// The audit-verify job runs at start; the page shows its
			// verification without anyone pressing the button.
			tRunJob(t, in, AuditVerifyJob)
			if page = string(b.do("GET", "/audit", nil).body); !strings.Contains(page, "Intact up to event") || !strings.Contains(page, "by system") {
				t.Errorf("the page does not show the job's verification: %s", tSection(page, "chain"))
			}
			// A refused verification through the API is recorded under the
			// same action; it must not pass for a verification.
			var nosy apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "nosy", Kind: "human", Role: "viewer", Token: true}, &nosy)
			if r := in.raw("GET", "/api/v1/audit/verify", "Bearer "+nosy.Token.Token, nil); r.status != http.StatusForbidden {
				t.Fatalf("a viewer's verification through the API: %d, want 403", r.status)
			}
			if page = string(b.do("GET", "/audit", nil).body); !strings.Contains(page, "by system") || strings.Contains(page, "by nosy") {
				t.Errorf("a refused verification shows as the last one: %s", tSection(page, "chain"))
			}

			// 120 events of one action, one with details a person typed.
			ctx := context.Background()
			now := time.Now()
			var evs []audit.Event
			for i := range 120 {
				ev := audit.New(authz.System(), now, "test.page", fmt.Sprintf("item-%03d", i), nil)
				if i == 7 {
					ev = audit.New(authz.System(), now, "test.page", "item-007", map[string]string{"note": "<b>bold</b>"})
				}
				evs = append(evs, ev)
			}
			if err := in.app.store.AppendAudit(ctx, evs...); err != nil {
				t.Fatal(err)
			}
			page = string(b.do("GET", "/audit?action=test.", nil).body)
			older := regexp.MustCompile(`<a href="(/audit\?[^"]+)" rel="next">`).FindStringSubmatch(page)
			if n := strings.Count(page, "<td>test.page</td>"); n != 100 || older == nil || !strings.Contains(page, "item-119") || strings.Contains(page, "item-019<") {
				t.Fatalf("first page: %d test events (want 100, newest first) and Older link %v", n, older)
			}
			page = string(b.do("GET", html.UnescapeString(older[1]), nil).body)
			if n := strings.Count(page, "<td>test.page</td>"); n != 20 || !strings.Contains(page, "item-000") || strings.Contains(page, `rel="next"`) {
				t.Errorf("second page: %d test events, want the oldest 20 and no Older link", n)
			}
			if !strings.Contains(page, "&lt;b&gt;bold&lt;/b&gt;") || strings.Contains(page, "<b>bold</b>") {
				t.Error("an event's details are not shown escaped")
			}
			if page = string(b.do("GET", "/audit?target=item-042", nil).body); strings.Count(page, "<td>test.page</td>") != 1 {
				t.Errorf("target filter: %s", tTrim([]byte(page)))
			}
			tomorrow := now.UTC().AddDate(0, 0, 1).Format("2006-01-02")
			if page = string(b.do("GET", "/audit?principal=admin&from="+tomorrow, nil).body); !strings.Contains(page, "No event matches") {
				t.Error("events from tomorrow on were listed")
			}
			today := now.UTC().Format("2006-01-02")
			if page = string(b.do("GET", "/audit?principal=admin&from="+today+"&to="+today, nil).body); !strings.Contains(page, "console.sign_in") || strings.Contains(page, "test.page") {
				t.Error("admin's events of today are not listed, or another principal's are")
			}
			if r := b.do("GET", "/audit?from=yesterday", nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "give a UTC date") {
				t.Errorf("a bad date: %d, want 400 naming the format", r.status)
			}
			// Bytes no database takes as text are refused as bad input,
			// not sent to the store (PostgreSQL would fail the query).
			for _, p := range []string{"/audit?principal=%ff", "/audit?target=a%00b", "/certificates?owner=%ff", "/certificates?tag=%00"} {
				if r := b.do("GET", p, nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "without control bytes") {
					t.Errorf("GET %s: %d, want 400 saying what to give", p, r.status)
				}
			}

			if r := b.do("POST", "/audit/verify", url.Values{}); r.status != http.StatusForbidden {
				t.Errorf("verify without the CSRF token: %d, want 403", r.status)
			}
			r := b.do("POST", "/audit/verify", url.Values{"csrf": {b.csrf()}})
			if r.status != http.StatusOK || !strings.Contains(string(r.body), "The audit log is intact") {
				t.Errorf("verify: %d %s", r.status, tTrim(r.body))
			}
			if !slices.ContainsFunc(tAuditEvents(t, in, 0), func(ev audit.Event) bool {
				return ev.Action == audit.ActionVerify && ev.Principal == "admin" && ev.Outcome == audit.Success && strings.Contains(string(ev.Details), `"intact":true`)
			}) {
				t.Error("the verification is not recorded as admin's, intact")
			}
			page = string(b.do("GET", "/audit", nil).body)
			if !regexp.MustCompile(`Intact up to event \d+[^<]*: verified <time[^>]*>[^<]*</time> by admin`).MatchString(page) || !strings.Contains(page, "The newest signed checkpoint pins event") {
				t.Errorf("the page does not show the last verification and checkpoint: %s", tSection(page, "chain"))
			}

			var viewer apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "gina", Kind: "human", Role: "viewer", Token: true}, &viewer)
			vb := in.browser(t)
			vb.signIn(viewer.Token.Token)
			if ov := string(vb.do("GET", "/", nil).body); strings.Contains(ov, `href="/audit"`) {
				t.Error("a viewer without audit:read is shown the audit link")
			}
			if r := vb.do("GET", "/audit", nil); r.status != http.StatusForbidden || strings.Contains(string(r.body), "console.sign_in") {
				t.Errorf("viewer's audit page: %d", r.status)
			}
			if r := vb.do("POST", "/audit/verify", url.Values{"csrf": {vb.csrf()}}); r.status != http.StatusForbidden {
				t.Errorf("viewer's verify: %d, want 403", r.status)
			}
		})
	}
}

// TestConsoleApprovals: a request held for approval appears on the
// approvals page; its requester sees no buttons and is refused by the
// two-person rule if it posts anyway; a second principal approves it and
// the certificate is issued; a rejected one is recorded as such.
func TestConsoleApprovals(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	p, _ := profile.Builtin("internal_service")
	p.Name, p.Builtin, p.RequireApproval = "held_service", false, true
	if err := in.app.profiles.Create(t.Context(), authz.System(), p); err != nil {
		t.Fatal(err)
	}
	key := tECKey(t, elliptic.P256())
	hold := func(name string) string {
		t.Helper()
		r := in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{CSRPEM: string(tCSR(t, key, name)), Profile: "held_service"})
		var held struct {
			ID string `json:"id"`
		}
		if r.status != http.StatusAccepted || json.Unmarshal(r.body, &held) != nil || held.ID == "" {
			t.Fatalf("sign under held_service: %d %s", r.status, tTrim(r.body))
		}
		return held.ID
	}
	first, second := hold("held-1.example.internal"), hold("held-2.example.internal")

	// The requester (admin, who holds request:approve) sees them pending,
	// without buttons, and the two-person rule refuses its decision.
	b := in.browser(t)
	b.signIn(in.token)
	page := string(b.do("GET", "/requests", nil).body)
	if !strings.Contains(page, "held-1.example.internal") || strings.Contains(page, "/requests/"+first+"/approve") || !strings.Contains(page, "another approver must decide") {
		t.Errorf("the requester's approvals page: %s", tTrim([]byte(page)))
	}
	r := b.do("POST", "/requests/"+first+"/approve", url.Values{"csrf": {b.csrf()}})
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "two-person rule") {
		t.Errorf("the requester approving its own request: %d %s", r.status, tTrim(r.body))
	}

	var appr apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "hana", Kind: "human", Role: "approver", Token: true}, &appr)
	ab := in.browser(t)
	ab.signIn(appr.Token.Token)
	if ov := string(ab.do("GET", "/", nil).body); !strings.Contains(ov, `<span class="n">2</span> pending approval`) {
		t.Errorf("the approver's overview does not count 2 pending requests: %s", tTrim([]byte(ov)))
	}
	page = string(ab.do("GET", "/requests", nil).body)
	if !strings.Contains(page, "/requests/"+first+"/approve") || !strings.Contains(page, "/requests/"+second+"/reject") {
		t.Fatalf("the approver's page lacks the buttons: %s", tTrim([]byte(page)))
	}
	csrf := ab.csrf()
	if r := ab.do("POST", "/requests/"+first+"/approve", url.Values{"comment": {"ok"}}); r.status != http.StatusForbidden {
		t.Errorf("approve without the CSRF token: %d, want 403", r.status)
	}
	r = ab.do("POST", "/requests/"+first+"/approve", url.Values{"csrf": {csrf}, "comment": {"checked the names"}})
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/requests?decided=approved&serial=") {
		t.Fatalf("approve: %d to %q: %s", r.status, loc, tTrim(r.body))
	}
	serial := strings.TrimPrefix(loc, "/requests?decided=approved&serial=")
	if c := string(ab.do("GET", "/certificates/"+serial, nil).body); !strings.Contains(c, "held-1.example.internal") {
		t.Errorf("the approved request's certificate %s: %s", serial, tTrim([]byte(c)))
	}
	if r := ab.do("POST", "/requests/"+first+"/approve", url.Values{"csrf": {csrf}}); r.status != http.StatusConflict {
		t.Errorf("approving it again: %d, want 409", r.status)
	}
	if r := ab.do("POST", "/requests/"+second+"/reject", url.Values{"csrf": {csrf}, "comment": {"not ours"}}); r.status != http.StatusSeeOther {
		t.Errorf("reject: %d", r.status)
	}
	page = string(ab.do("GET", "/requests?status=", nil).body)
	if !strings.Contains(page, "issued") || !strings.Contains(page, "rejected") || !strings.Contains(page, "not ours") {
		t.Errorf("all requests after the decisions: %s", tTrim([]byte(page)))
	}
}

var serialCell = regexp.MustCompile(`href="/certificates/([0-9a-f]+)"`)

// TestConsoleExpiringMatchesCLI: the inventory filtered to "expiring
// within 30 days" lists exactly the certificates `cert list
// --expiring-within 30d` lists (the API's expiring_within=30d).
func TestConsoleExpiringMatchesCLI(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	key := tECKey(t, elliptic.P256())
	for i, days := range []int{5, 20, 29, 31, 60, 90} {
		in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
			CSRPEM: string(tCSR(t, key, fmt.Sprintf("e%d.example.internal", i))), Profile: "internal_service", ValidityDays: days}, nil)
	}
	var list apitypes.CertificateList
	in.must(http.StatusOK, "GET", "/api/v1/certificates?expiring_within=30d&sort=expiry&limit=1000", nil, &list)
	var want []string
	for _, c := range list.Certificates {
		want = append(want, c.Serial)
	}
	b := in.browser(t)
	b.signIn(in.token)
	page := b.do("GET", "/certificates?within=30&sort=expiry", nil)
	var got []string
	for _, m := range serialCell.FindAllSubmatch(page.body, -1) {
		got = append(got, string(m[1]))
	}
	if len(want) != 3 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("console within=30: %v; API expiring_within=30d: %v (want the 3 of 5, 20 and 29 days)", got, want)
	}
}

// TestConsoleCAs: the CA page shows the hierarchy (root above issuing)
// with the certificates each issued; an admin disables the issuing CA
// (confirmation required) and issuance stops at once, then enables it;
// a viewer gets no buttons and is refused.
func TestConsoleCAs(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	b := in.browser(t)
	b.signIn(in.token)
	page := string(b.do("GET", "/cas", nil).body)
	root, issuing := strings.Index(page, "<strong>root</strong>"), strings.Index(page, "<strong>issuing</strong>")
	if root < 0 || issuing < root || !strings.Contains(page, `class="depth-1"><strong>issuing`) || !strings.Contains(page, "/cas/issuing/disable") {
		t.Fatalf("CA page: %s", tTrim([]byte(page)))
	}
	csrf := b.csrf()
	if r := b.do("POST", "/cas/issuing/disable", url.Values{"csrf": {csrf}}); r.status != http.StatusBadRequest {
		t.Errorf("disable without the confirmation: %d, want 400", r.status)
	}
	if r := b.do("POST", "/cas/issuing/disable", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", r.status, tTrim(r.body))
	}
	key := tECKey(t, elliptic.P256())
	if r := in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{CSRPEM: string(tCSR(t, key, "x.example.internal")), Profile: "web_server"}); r.status != http.StatusConflict {
		t.Errorf("issuance after the console disabled the CA: %d, want 409", r.status)
	}
	if !strings.Contains(string(b.do("GET", "/cas", nil).body), "/cas/issuing/enable") {
		t.Error("a disabled CA shows no enable button")
	}
	if r := b.do("POST", "/cas/issuing/enable", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("enable: %d %s", r.status, tTrim(r.body))
	}
	in.sign(tCSR(t, key, "x.example.internal"))

	var viewer apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "jo", Kind: "human", Role: "viewer", Token: true}, &viewer)
	vb := in.browser(t)
	vb.signIn(viewer.Token.Token)
	if p := string(vb.do("GET", "/cas", nil).body); !strings.Contains(p, "<strong>issuing</strong>") || strings.Contains(p, "/disable") {
		t.Errorf("viewer's CA page: %s", tTrim([]byte(p)))
	}
	if r := vb.do("POST", "/cas/issuing/disable", url.Values{"csrf": {vb.csrf()}, "confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Errorf("viewer disabling: %d, want 403", r.status)
	}
	if r := vb.do("GET", "/cas/issuing/certificate", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "BEGIN CERTIFICATE") {
		t.Errorf("CA certificate download: %d", r.status)
	}
	if r := vb.do("GET", "/cas/no-such-ca/certificate", nil); r.status != http.StatusNotFound {
		t.Errorf("an unknown CA's certificate: %d, want 404", r.status)
	}
	// The CRL downloads (built if there is none yet), signed by the CA,
	// and the CA's row then says which CRL is served and until when.
	r := vb.do("GET", "/cas/issuing/crl", nil)
	list, err := x509.ParseRevocationList(r.body)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/pkix-crl" || err != nil {
		t.Fatalf("CRL download: %d %q: %v", r.status, r.header.Get("Content-Type"), err)
	}
	var issuingCA apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &issuingCA)
	if caCert := tPEMCert(t, issuingCA.CertificatePEM); list.CheckSignatureFrom(caCert) != nil {
		t.Error("the downloaded CRL is not signed by the issuing CA")
	}
	want := fmt.Sprintf("CRL #%d, ", list.Number.Int64())
	if p := string(vb.do("GET", "/cas", nil).body); !strings.Contains(p, want) || !strings.Contains(p, "next update <time") {
		t.Errorf("the CA page does not show the CRL served (%s): %s", want, tTrim([]byte(p)))
	}
}

// TestConsoleExport: the inventory's current view exports as CSV and JSON,
// every page of it, limited to the viewer's scope, with a value a
// requester chose kept from being read as a spreadsheet formula.
func TestConsoleExport(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	key := tECKey(t, elliptic.P256())
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: string(tCSR(t, key, "csv.example.internal")), Profile: "internal_service", Owner: `=HYPERLINK("http://x","y")`}, nil)
	in.sign(tCSR(t, key, "web.example.internal"))
	b := in.browser(t)
	b.signIn(in.token)
	if p := string(b.do("GET", "/certificates?profile=internal_service", nil).body); !strings.Contains(p, "/certificates/export?format=csv&amp;profile=internal_service") {
		t.Errorf("the inventory page has no export link for its view: %s", tTrim([]byte(p)))
	}
	r := b.do("GET", "/certificates/export?format=csv&profile=internal_service", nil)
	body := string(r.body)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || r.header.Get("X-Certwright-Export") != "complete" ||
		!strings.Contains(body, "csv.example.internal") || strings.Contains(body, "web.example.internal") {
		t.Fatalf("CSV export: %d %q %q: %s", r.status, r.header.Get("Content-Type"), r.header.Get("X-Certwright-Export"), body)
	}
	if !strings.Contains(body, `"'=HYPERLINK(""http://x"",""y"")"`) {
		t.Errorf("the owner is not defused in the CSV: %s", body)
	}
	r = b.do("GET", "/certificates/export?format=json", nil)
	var rows []map[string]any
	if err := json.Unmarshal(r.body, &rows); err != nil || len(rows) != 3 {
		t.Fatalf("JSON export: %v, %d rows, want 3 (the server's own and two): %s", err, len(rows), tTrim(r.body))
	}
	if r := b.do("GET", "/certificates/export?format=xml", nil); r.status != http.StatusBadRequest {
		t.Errorf("an unknown format: %d", r.status)
	}
	var scoped apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "kim", Kind: "human", Role: "viewer", Scope: apitypes.Scope{Profiles: []string{"internal_service"}}, Token: true}, &scoped)
	sb := in.browser(t)
	sb.signIn(scoped.Token.Token)
	if body := string(sb.do("GET", "/certificates/export?format=csv", nil).body); !strings.Contains(body, "csv.example.internal") || strings.Contains(body, "web.example.internal") {
		t.Errorf("a scoped viewer's export: %s", body)
	}
}

// TestConsoleSessionsPruned: the approval-expiry loop deletes a console
// session's row 30 days after it ended, and keeps a younger one.
func TestConsoleSessionsPruned(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now().UTC())
	cfg := tConfig(t, "")
	tInit(t, cfg, clk)
	in := tStart(t, cfg, clk)
	old, young := in.browser(t), in.browser(t)
	old.signIn(in.token)
	if r := old.do("POST", "/logout", url.Values{"csrf": {old.csrf()}}); r.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", r.status)
	}
	clk.Advance(29 * 24 * time.Hour)
	young.signIn(in.token)
	if n := tSessionRows(t, in); n != 2 {
		t.Fatalf("%d session rows before the prune, want 2", n)
	}
	clk.Advance(2 * 24 * time.Hour) // the first ended 31 days ago
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.app.expireLoop(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for n := tSessionRows(t, in); n != 1; n = tSessionRows(t, in) {
		if time.Now().After(deadline) {
			t.Fatalf("%d console session rows after the prune, want 1 (the younger)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tSessionRows counts the rows of console_sessions of in's SQLite file.
func tSessionRows(t *testing.T, in *tInstance) int {
	t.Helper()
	path, ok := strings.CutPrefix(DBURL(in.cfg), "sqlite:")
	if !ok {
		t.Fatal("tSessionRows reads SQLite only")
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM console_sessions").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
