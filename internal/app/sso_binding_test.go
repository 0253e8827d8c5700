package app

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/oidc/oidctest"
)

// tBinder is a fresh CLI binder, base64url as the CLI sends it.
func tBinder(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// tBindingNonce is the nonce a CLI talking to origin puts into its sign-in:
// base64url(SHA-256("certwright cli sign-in v1" 0x00 origin 0x00 binder)),
// computed here independently of the oidc package.
func tBindingNonce(t *testing.T, origin, binder string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(binder)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte("certwright cli sign-in v1\x00" + origin + "\x00"))
	h.Write(raw)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// mintCLI mints an ID token for the CLI's client as alice, issued now,
// carrying nonce when it is not empty.
func (s *tSSO) mintCLI(t *testing.T, nonce string) string {
	t.Helper()
	now := time.Now()
	tok, err := s.idp.Mint(oidctest.Claims{Subject: oidctest.DefaultSubject("alice"), Audience: []string{"certwright-cli"},
		IssuedAt: now, Expiry: now.Add(time.Hour), Nonce: nonce,
		Extra: map[string]any{"email": "alice@example.test", "email_verified": true, "groups": []string{"pki-viewers"}}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tExchange posts an exchange to in as the CLI does (the JSON written out,
// so that the request is the same whatever this build's types are), with
// the Host header host when it is not empty.
func tExchange(t *testing.T, in *tInstance, host, idToken, binder string) tResp {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"provider": "corp", "id_token": idToken, "binder": binder})
	req, err := http.NewRequest("POST", in.l.HTTPSURL+"/api/v1/sso/token", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if host != "" {
		req.Host = host
	}
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return tResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// origin is the server's origin as the CLI binds a sign-in to it.
func (in *tInstance) origin() string { return in.httpsAddr() }

// TestSSOExchangeBoundToServer: an ID token the CLI obtained while talking
// to another server (a rogue or a staging server sharing the provider's
// registration) is refused here, however fresh; one bound to this server
// is exchanged once, and the same token again is refused; the binder must
// be the one the nonce was made from; a request reaching the server by a
// name that is not its own is refused, so a rogue cannot pass its own
// origin off as this server's.
func TestSSOExchangeBoundToServer(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	in := s.in

	binder := tBinder(t)
	if r := tExchange(t, in, "", s.mintCLI(t, tBindingNonce(t, "evil.example:443", binder)), binder); r.status != http.StatusUnauthorized {
		t.Errorf("a token bound to evil.example:443, exchanged here: %d %s, want 401", r.status, r.body)
	}

	tok := s.mintCLI(t, tBindingNonce(t, in.origin(), binder))
	if r := tExchange(t, in, "", tok, tBinder(t)); r.status != http.StatusUnauthorized {
		t.Errorf("a token bound here, with another binder: %d %s, want 401", r.status, r.body)
	}
	if r := tExchange(t, in, "", tok, binder); r.status != http.StatusOK {
		t.Fatalf("a token bound to this server: %d %s", r.status, r.body)
	}
	if r := tExchange(t, in, "", tok, binder); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "before") {
		t.Errorf("the same ID token a second time: %d %s, want 401 (exchanged before)", r.status, r.body)
	}

	// A rogue at evil.example replays what its visitor's CLI sent it,
	// naming itself in Host so the binding computes.
	binder = tBinder(t)
	rogue := s.mintCLI(t, tBindingNonce(t, "evil.example:443", binder))
	r := tExchange(t, in, "evil.example", rogue, binder)
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "not known as") {
		t.Errorf("Host evil.example: %d %s, want 401 naming the server's names", r.status, r.body)
	}
}

// TestSSOExchangeOnceAcrossReplicas: two instances on one database,
// behind one load balancer (auth.server_urls): an ID token exchanged at
// one is refused at the other.
func TestSSOExchangeOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	const lb = "pki.example.test"
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s := tNewSSOWith(t, be.dbURL(t), func(c *config.Config) { c.Auth.ServerURLs = []string{"https://" + lb} })
			a := s.in
			b := tStart(t, a.cfg, clock.Real{})
			binder := tBinder(t)
			tokA := s.mintCLI(t, tBindingNonce(t, lb+":443", binder))
			if r := tExchange(t, a, lb, tokA, binder); r.status != http.StatusOK {
				t.Fatalf("exchange at A: %d %s", r.status, r.body)
			}
			if r := tExchange(t, b, lb, tokA, binder); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "before") {
				t.Errorf("the same token at B: %d %s, want 401 (exchanged before)", r.status, r.body)
			}
			unbound := s.mintCLI(t, "")
			if r := tExchange(t, b, "", unbound, ""); r.status != http.StatusOK {
				t.Fatalf("an unbound token at B: %d %s", r.status, r.body)
			}
			if r := tExchange(t, a, "", unbound, ""); r.status != http.StatusUnauthorized {
				t.Errorf("the same unbound token at A: %d %s, want 401", r.status, r.body)
			}
		})
	}
}

// TestConsoleSSOFlood: a flood of begun sign-ins from many addresses (each
// within its own budget) does not push out a person's sign-in begun
// before it: the server keeps nothing per begun sign-in.
func TestConsoleSSOFlood(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	alice := s.person(t)
	cb := alice.begin("alice")
	h, err := s.in.app.Handler()
	if err != nil {
		t.Fatal(err)
	}
	// More than were ever kept pending (10,000), 20 per address.
	for i := range 10_020 {
		req := httptest.NewRequest("GET", s.in.l.HTTPSURL+"/login/sso/corp", nil)
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.1:40000", i/20/256, i/20%256)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("begin %d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	if r := alice.get(cb.String()); r.status != http.StatusOK {
		t.Errorf("alice's callback after the flood: %d %s", r.status, tTrim(r.body))
	}
}

// TestConsoleSSOReplayWithCookie: a callback replayed with everything the
// first carried (the same cookie, state and code) is refused.
func TestConsoleSSOReplayWithCookie(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	alice := s.person(t)
	cb := alice.begin("alice")
	cookies := alice.hc.Jar.Cookies(cb)
	if len(cookies) == 0 {
		t.Fatal("no cookie for the callback")
	}
	if r := alice.get(cb.String()); r.status != http.StatusOK {
		t.Fatalf("the callback: %d %s", r.status, tTrim(r.body))
	}
	mallory := s.person(t)
	mallory.hc.Jar.SetCookies(cb, cookies)
	if r := mallory.get(cb.String()); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "did not complete") {
		t.Errorf("the callback replayed with its cookie: %d %s", r.status, tTrim(r.body))
	}
}

// TestSSOExchangeUnbound: an ID token without a nonce (the device grant
// at a provider that takes none, as the test provider) is exchanged, and
// the sign-in audited as unbound, a bound one as bound by its nonce; with
// cli_require_binding an unbound token is refused and a bound one still
// exchanged.
func TestSSOExchangeUnbound(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	in := s.in
	from := tAuditHead(t, in)
	if r := tExchange(t, in, "", s.mintCLI(t, ""), ""); r.status != http.StatusOK {
		t.Fatalf("an unbound token: %d %s", r.status, r.body)
	}
	binder := tBinder(t)
	if r := tExchange(t, in, "", s.mintCLI(t, tBindingNonce(t, in.origin(), binder)), binder); r.status != http.StatusOK {
		t.Fatalf("a bound token: %d %s", r.status, r.body)
	}
	var bindings []string
	for _, ev := range tAuditEvents(t, in, from) {
		if ev.Action == "sso.sign_in" {
			var d struct{ Binding string }
			if err := json.Unmarshal(ev.Details, &d); err != nil {
				t.Fatal(err)
			}
			bindings = append(bindings, d.Binding)
		}
	}
	if strings.Join(bindings, ",") != "unbound,nonce" {
		t.Errorf("sign-ins audited with bindings %v, want unbound then nonce", bindings)
	}

	strict := tNewSSOWith(t, "", func(c *config.Config) { c.Auth.OIDC[0].CLIRequireBinding = true })
	r := tExchange(t, strict.in, "", strict.mintCLI(t, ""), "")
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "another server or another sign-in") {
		t.Errorf("an unbound token with cli_require_binding: %d %s, want 401", r.status, r.body)
	}
	if r := tExchange(t, strict.in, "", strict.mintCLI(t, tBindingNonce(t, strict.in.origin(), binder)), binder); r.status != http.StatusOK {
		t.Errorf("a bound token with cli_require_binding: %d %s", r.status, r.body)
	}
}

// TestConsoleSSOForeignCookie: a sign-in sealed by a server with another
// KEK, or a cookie altered or cut short, does not complete, and the page
// says only that it was not begun in this browser.
func TestConsoleSSOForeignCookie(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	alice := s.person(t)
	cb := alice.begin("alice")
	state := cb.Query().Get("state")
	otherKEK := make([]byte, 32)
	if _, err := rand.Read(otherKEK); err != nil {
		t.Fatal(err)
	}
	other, err := oidc.NewSealer(otherKEK)
	if err != nil {
		t.Fatal(err)
	}
	// What another server would have sealed for this very answer.
	foreign, err := other.Seal(&oidc.Pending{Provider: "corp", State: state, Nonce: "n", Verifier: strings.Repeat("v", 43),
		Next: "/", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	own := alice.hc.Jar.Cookies(cb)[0].Value
	for name, v := range map[string]string{
		"another KEK": foreign,
		"altered":     own[:20] + string("AB"[strings.IndexByte("AB", own[20])+1&1]) + own[21:],
		"cut short":   own[:len(own)/2],
		"oversized":   own + strings.Repeat("A", 4000),
	} {
		p := s.person(t)
		p.hc.Jar.SetCookies(cb, []*http.Cookie{{Name: "__Host-certwright-sso", Value: v, Path: "/", Secure: true}})
		r := p.get(cb.String())
		if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "not begun in this browser") {
			t.Errorf("%s: %d %s", name, r.status, tTrim(r.body))
		}
	}
	// Alice's own cookie still completes her sign-in.
	if r := alice.get(cb.String()); r.status != http.StatusOK {
		t.Errorf("alice's callback: %d %s", r.status, tTrim(r.body))
	}
}
