package app

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/oidc/oidctest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tSSO is a server configured for single sign-on through a real
// in-process OpenID provider with alice (pki-admins) and bob
// (pki-viewers).
type tSSO struct {
	in  *tInstance
	idp *oidctest.Provider
}

const tSSOPassword = "correct horse battery staple"

func tNewSSO(t *testing.T, dbURL string) *tSSO {
	t.Helper()
	return tNewSSOWith(t, dbURL, nil)
}

// tNewSSOWith is tNewSSO with the provider's configuration changed by
// edit (when not nil) before the server starts.
func tNewSSOWith(t *testing.T, dbURL string, edit func(*config.Config)) *tSSO {
	t.Helper()
	idp, provider := tSSOProvider(t)
	cfg := tConfig(t, dbURL)
	cfg.Auth.OIDC = []config.OIDCProvider{provider}
	if edit != nil {
		edit(cfg)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	// What certwright-testidp registers for the console.
	if err := idp.SetRedirectURIs("certwright", []string{in.l.HTTPSURL + "/login/sso/callback"}); err != nil {
		t.Fatal(err)
	}
	if err := idp.SetPostLogoutRedirectURIs("certwright", []string{in.l.HTTPSURL + "/"}); err != nil {
		t.Fatal(err)
	}
	return &tSSO{in: in, idp: idp}
}

// tSSOProvider starts a provider with alice (pki-admins) and bob
// (pki-viewers) and the console's and the CLI's clients, and returns it
// with its configuration as provider "corp".
func tSSOProvider(t *testing.T) (*oidctest.Provider, config.OIDCProvider) {
	t.Helper()
	idp, err := oidctest.Start(context.Background(), oidctest.Options{
		Users: []oidctest.User{
			{Username: "alice", Password: tSSOPassword, Email: "alice@example.test", EmailVerified: true, Groups: []string{"pki-admins"}},
			{Username: "bob", Password: tSSOPassword, Email: "bob@example.test", EmailVerified: true, Groups: []string{"pki-viewers"}},
		},
		Clients: []oidctest.Client{
			{ID: "certwright", Secret: "console-secret", RedirectURIs: []string{"https://127.0.0.1:1/login/sso/callback"}},
			{ID: "certwright-cli", RedirectURIs: []string{"http://127.0.0.1/callback"}, DeviceGrant: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	secret := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secret, []byte("console-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return idp, config.OIDCProvider{Name: "corp", Issuer: idp.Issuer(), ClientID: "certwright", ClientSecretFile: secret,
		CLIClientID: "certwright-cli", CreatePrincipals: true,
		Roles: []config.OIDCRoleMapping{{Group: "pki-admins", Role: authz.RoleAdmin}, {Group: "pki-viewers", Role: authz.RoleViewer}}}
}

// tPerson is a browser of one person: a cookie jar shared by the
// provider's pages and the console's.
type tPerson struct {
	t  *testing.T
	s  *tSSO
	hc *http.Client
}

func (s *tSSO) person(t *testing.T) *tPerson {
	hc := oidctest.NewBrowser()
	hc.Transport = &http.Transport{TLSClientConfig: s.in.tlsConfig()}
	t.Cleanup(hc.CloseIdleConnections)
	return &tPerson{t: t, s: s, hc: hc}
}

func (p *tPerson) get(u string) tResp {
	p.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = p.s.in.l.HTTPSURL + u
	}
	resp, err := p.hc.Get(u)
	if err != nil {
		p.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return tResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// begin presses "Sign in with corp" and signs in at the provider; it
// returns the console callback URL the provider sends the browser to.
func (p *tPerson) begin(user string) *url.URL {
	p.t.Helper()
	r := p.get("/login/sso/corp?next=%2Fcertificates")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), p.s.idp.Issuer()) {
		p.t.Fatalf("sign in with corp: %d to %q: %s", r.status, r.header.Get("Location"), tTrim(r.body))
	}
	cb, err := oidctest.Login(context.Background(), p.hc, r.header.Get("Location"), user, tSSOPassword)
	if err != nil {
		p.t.Fatalf("sign in at the provider as %s: %v", user, err)
	}
	return cb
}

// signIn signs user in to the console through the provider.
func (p *tPerson) signIn(user string) {
	p.t.Helper()
	r := p.get(p.begin(user).String())
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `http-equiv="refresh" content="0; url=/certificates"`) {
		p.t.Fatalf("the callback for %s: %d %s", user, r.status, tTrim(r.body))
	}
}

// TestConsoleSSO: the sign-in page offers the provider; alice (group
// pki-admins) and bob (pki-viewers) sign in through it, each created as a
// principal bound by their group: alice may revoke, bob only reads; a
// callback replayed, or one carrying another state, is refused and
// audited; the group moving moves bob's bindings at his next sign-in;
// disabling bob in Certwright ends his session at once and refuses his
// next sign-in; with the provider down the page says so, and token
// sign-in still works.
func TestConsoleSSO(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	in := s.in
	cert := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "sso.internal.test"))

	alice := s.person(t)
	if r := alice.get("/login"); !strings.Contains(string(r.body), `href="/login/sso/corp"`) {
		t.Fatalf("the sign-in page offers no provider: %s", tTrim(r.body))
	}
	alice.signIn("alice")
	page := string(alice.get("/certificates/" + cert.Serial).body)
	if !strings.Contains(page, `action="/certificates/`+cert.Serial+`/revoke"`) {
		t.Errorf("alice (pki-admins) is not offered revocation: %s", tTrim([]byte(page)))
	}

	bob := s.person(t)
	cb := bob.begin("bob")
	if r := bob.get(cb.String()); r.status != http.StatusOK {
		t.Fatalf("bob's callback: %d %s", r.status, tTrim(r.body))
	}
	page = string(bob.get("/certificates/" + cert.Serial).body)
	if !strings.Contains(page, "sso.internal.test") || strings.Contains(page, "/revoke") {
		t.Errorf("bob (pki-viewers) sees: %s", tTrim([]byte(page)))
	}
	from := tAuditHead(t, in)
	// The same answer again (a replay: the browser's state cookie went
	// with the first use, and the sign-in with it), and an answer with a
	// forged state.
	if r := bob.get(cb.String()); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "did not complete") {
		t.Errorf("a replayed callback: %d %s", r.status, tTrim(r.body))
	}
	forged := *bob.begin("bob")
	q := forged.Query()
	q.Set("state", "forged-state")
	forged.RawQuery = q.Encode()
	if r := bob.get(forged.String()); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "state does not match") {
		t.Errorf("a forged state: %d %s", r.status, tTrim(r.body))
	}

	// bob moves to pki-admins, then out of every group.
	if err := s.idp.SetGroups("bob", []string{"pki-admins"}); err != nil {
		t.Fatal(err)
	}
	bob.signIn("bob")
	if page = string(bob.get("/certificates/" + cert.Serial).body); !strings.Contains(page, "/revoke") {
		t.Error("bob, now in pki-admins, is not offered revocation")
	}
	if err := s.idp.SetGroups("bob", nil); err != nil {
		t.Fatal(err)
	}
	bob.signIn("bob")
	if r := bob.get("/certificates"); r.status != http.StatusForbidden {
		t.Errorf("bob in no group: /certificates %d, want 403", r.status)
	}

	// Disabled in Certwright: the session ends at once, sign-in refused.
	in.must(http.StatusOK, "POST", "/api/v1/principals/bob/disable", nil, nil)
	if r := bob.get("/"); r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "ended=refused") {
		t.Errorf("disabled bob's next request: %d to %q", r.status, r.header.Get("Location"))
	}
	if r := bob.get(bob.begin("bob").String()); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "disabled") {
		t.Errorf("disabled bob's sign-in: %d %s", r.status, tTrim(r.body))
	}

	if err := in.app.refusals.Flush(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	evs := tAuditEvents(t, in, from)
	var refusals []string
	for _, ev := range evs {
		if ev.Outcome != audit.Success {
			refusals = append(refusals, ev.Action+" "+string(ev.Details))
		}
	}
	tFindEvents(t, evs, "sso.sign_in", 3)
	if joined := strings.Join(refusals, "\n"); !strings.Contains(joined, "state does not match") ||
		!strings.Contains(joined, "disabled") {
		t.Errorf("the refused sign-ins are not all audited: %s", joined)
	}

	// The provider down when its answer is checked: the page says so; a
	// token still signs in.
	carol := s.person(t)
	cb = carol.begin("alice")
	s.idp.SetDown(true)
	if r := carol.get(cb.String()); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "cannot be reached") {
		t.Errorf("provider down: %d %s", r.status, tTrim(r.body))
	}
	tb := in.browser(t)
	tb.signIn(in.token)
}

// TestSSOProviderDownAtStart: a server whose identity provider is down
// starts and serves; "Sign in with corp" says the provider cannot be
// reached (503), and a token still signs in.
func TestSSOProviderDownAtStart(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	// tNewSSO's server has not asked the provider anything yet: discovery
	// happens at the first sign-in.
	s.idp.SetDown(true)
	p := s.person(t)
	if r := p.get("/login/sso/corp"); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "corp cannot be reached now") {
		t.Errorf("provider down: %d %s", r.status, tTrim(r.body))
	}
	b := s.in.browser(t)
	b.signIn(s.in.token)
	if r := b.do("GET", "/", nil); r.status != http.StatusOK {
		t.Errorf("the token's session: %d", r.status)
	}
}

// TestSSOTokenExchange: the only API routes served without a Certwright
// credential are the provider list and the exchange; the list names the
// CLI's client and nothing secret; an ID token for the CLI's client is
// exchanged for a token of the person (created, bound by group) that
// expires after the provider's token lifetime; an ID token for another
// audience, an expired one, one from another issuer, and one of a
// disabled person are refused with 401 and our own words, audited.
func TestSSOTokenExchange(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	in := s.in
	h, err := in.app.API()
	if err != nil {
		t.Fatal(err)
	}
	var public []string
	for _, rt := range h.PublicRoutes() {
		public = append(public, rt.Method+" "+rt.Pattern)
	}
	if strings.Join(public, ",") != "GET /api/v1/sso/providers,POST /api/v1/sso/token" {
		t.Errorf("routes served without a credential: %v", public)
	}
	var list apitypes.SSOProviders
	r := in.raw("GET", "/api/v1/sso/providers", "", nil)
	if r.status != http.StatusOK || json.Unmarshal(r.body, &list) != nil || len(list.Providers) != 1 ||
		list.Providers[0].ClientID != "certwright-cli" || strings.Contains(string(r.body), "console-secret") {
		t.Fatalf("providers: %d %s", r.status, r.body)
	}
	now := time.Now()
	mint := func(c oidctest.Claims) string {
		t.Helper()
		if c.Subject == "" {
			c.Subject = oidctest.DefaultSubject("alice")
		}
		if c.Audience == nil {
			c.Audience = []string{"certwright-cli"}
		}
		if c.IssuedAt.IsZero() {
			c.IssuedAt, c.Expiry = now, now.Add(time.Hour)
		}
		c.Extra = map[string]any{"email": "alice@example.test", "email_verified": true, "groups": []string{"pki-viewers"}}
		tok, err := s.idp.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	exchange := func(idToken string) tResp {
		body, _ := json.Marshal(apitypes.SSOTokenRequest{Provider: "corp", IDToken: idToken})
		return in.raw("POST", "/api/v1/sso/token", "", bytes.NewReader(body))
	}
	r = exchange(mint(oidctest.Claims{}))
	var res apitypes.SSOTokenResult
	if r.status != http.StatusOK || json.Unmarshal(r.body, &res) != nil || res.Principal != "alice" || !res.Created {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	if left := time.Until(res.ExpiresAt); left < 7*time.Hour+50*time.Minute || left > 8*time.Hour {
		t.Errorf("the token expires in %s, want 8h", left)
	}
	var who apitypes.Whoami
	wr := in.raw("GET", "/api/v1/whoami", "Bearer "+res.Token, nil)
	if wr.status != http.StatusOK || json.Unmarshal(wr.body, &who) != nil || who.Name != "alice" || len(who.Bindings) != 1 || who.Bindings[0].Role != authz.RoleViewer {
		t.Errorf("whoami with the exchanged token: %d %s", wr.status, wr.body)
	}

	// The binding is marked as the provider's, in the API and on the
	// console's principal page.
	var bl apitypes.BindingList
	in.must(http.StatusOK, "GET", "/api/v1/bindings", nil, &bl)
	marked := false
	for _, b := range bl.Bindings {
		if b.Principal == "alice" {
			marked = b.Source == "oidc:corp" && b.Role == authz.RoleViewer
		}
	}
	if !marked {
		t.Errorf("alice's binding is not marked as the provider's: %+v", bl.Bindings)
	}
	admin := in.browser(t)
	admin.signIn(in.token)
	if page := string(admin.do("GET", "/access/principals/alice", nil).body); !strings.Contains(page, "from the groups of oidc:corp") {
		t.Errorf("alice's principal page does not mark the binding: %s", tTrim([]byte(page)))
	}

	from := tAuditHead(t, in)
	for name, tok := range map[string]string{
		"console audience": mint(oidctest.Claims{Audience: []string{"certwright"}}),
		"both clients":     mint(oidctest.Claims{Audience: []string{"certwright-cli", "certwright"}, AuthorizedParty: "certwright-cli"}),
		"expired":          mint(oidctest.Claims{IssuedAt: now.Add(-3 * time.Hour), Expiry: now.Add(-2 * time.Hour)}),
		"other issuer":     mint(oidctest.Claims{Issuer: "https://idp.elsewhere.test"}),
		"not a token":      "not-a-jwt",
	} {
		if r := exchange(tok); r.status != http.StatusUnauthorized || strings.Contains(string(r.body), tok) {
			t.Errorf("%s: %d %s, want 401", name, r.status, r.body)
		}
	}
	in.must(http.StatusOK, "POST", "/api/v1/principals/alice/disable", nil, nil)
	// Another token (the first was exchanged, and is used up).
	if r := exchange(mint(oidctest.Claims{IssuedAt: now.Add(-time.Second), Expiry: now.Add(time.Hour)})); r.status != http.StatusUnauthorized ||
		!strings.Contains(string(r.body), "disabled") {
		t.Errorf("disabled alice: %d %s", r.status, r.body)
	}
	if r := in.raw("GET", "/api/v1/whoami", "Bearer "+res.Token, nil); r.status != http.StatusUnauthorized {
		t.Errorf("disabled alice's exchanged token: %d, want 401", r.status)
	}
	if err := in.app.refusals.Flush(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	var reasons string
	for _, ev := range tAuditEvents(t, in, from) {
		reasons += string(ev.Details)
	}
	for _, want := range []string{"not issued to this server's client", "expired", "another issuer", "disabled"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("no audited refusal says %q: %s", want, reasons)
		}
	}
}

// TestSSOSignOutOfProvider: the signed-out page's "sign out of corp" link
// is one the provider accepts: it returns the browser to the console's
// root, the post-logout redirect URI registered for the console (as
// certwright-testidp registers it), and nowhere else.
func TestSSOSignOutOfProvider(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	alice := s.person(t)
	alice.signIn("alice")
	page := alice.get("/login?ended=signed_out")
	m := regexp.MustCompile(`<a href="([^"]+)">sign out of corp</a>`).FindSubmatch(page.body)
	if m == nil {
		t.Fatalf("the signed-out page offers no sign-out of corp: %s", tTrim(page.body))
	}
	link := html.UnescapeString(string(m[1]))
	if !strings.HasPrefix(link, s.idp.Issuer()+"/") {
		t.Fatalf("sign out of corp links to %s", link)
	}
	r := alice.get(link)
	if loc := r.header.Get("Location"); r.status/100 != 3 || loc != s.in.l.HTTPSURL+"/" {
		t.Errorf("the provider's end-session page: %d to %q, want a redirect to %s/: %s", r.status, loc, s.in.l.HTTPSURL, tTrim(r.body))
	}
}

// TestSSOEmailDomains: a provider configured for example.org does not
// vouch for alice@example.test, however verified it says it is: her
// principal is not named after it, holds no e-mail identity, and gets no
// person certificate for it (a second provider cannot claim a first
// one's addresses).
func TestSSOEmailDomains(t *testing.T) {
	t.Parallel()
	s := tNewSSOWith(t, "", func(c *config.Config) { c.Auth.OIDC[0].EmailDomains = []string{"example.org"} })
	in := s.in
	alice := s.cliSignIn(t, "alice")
	var who apitypes.Whoami
	r := in.raw("GET", "/api/v1/whoami", alice, nil)
	if r.status != http.StatusOK || json.Unmarshal(r.body, &who) != nil {
		t.Fatalf("whoami: %d %s", r.status, r.body)
	}
	if who.Name == "alice" || !strings.HasPrefix(who.Name, "corp-") {
		t.Errorf("the principal is named %q after an address its provider does not vouch for", who.Name)
	}
	var p apitypes.Principal
	in.must(http.StatusOK, "GET", "/api/v1/principals/"+who.Name, nil, &p)
	for _, id := range p.Identities {
		if id.Kind == "email" {
			t.Errorf("an e-mail identity was added: %+v", id)
		}
	}
	pr, _, _ := in.personCert(t, alice, apitypes.PersonCertificateRequest{
		CSRPEM: tPersonCSR(t, tECKey(t, elliptic.P256()), "", []string{"alice@example.test"})})
	if pr.status != http.StatusBadRequest {
		t.Errorf("a person certificate for an address outside the provider's domains: %d %s", pr.status, tTrim(pr.body))
	}
}
