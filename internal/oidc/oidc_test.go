package oidc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/oidc/oidctest"
	"github.com/certwright/certwright/internal/store/storetest"
)

const (
	consoleID       = "certwright"
	consoleSecret   = "console-secret-for-tests"
	consoleCallback = "https://127.0.0.1:8443/login/sso/callback"
	cliID           = "certwright-cli"
)

var users = []oidctest.User{
	{Username: "alice", Password: "alice-pw", Email: "alice@example.com", EmailVerified: true, Name: "Alice Admin", Groups: []string{"pki-admins"}},
	{Username: "bob", Password: "bob-pw", Email: "bob@example.com", Name: "Bob Viewer", Groups: []string{"pki-viewers"}},
}

// startIDP starts a real provider with the console's confidential client
// and the CLI's public one, as certwright-testidp does.
func startIDP(t *testing.T) *oidctest.Provider {
	t.Helper()
	idp, err := oidctest.Start(t.Context(), oidctest.Options{
		Users: users,
		Clients: []oidctest.Client{
			{ID: consoleID, Secret: consoleSecret, RedirectURIs: []string{consoleCallback}, PostLogoutRedirectURIs: []string{"https://127.0.0.1:8443/"}},
			{ID: cliID, RedirectURIs: []string{"http://127.0.0.1/callback"}, DeviceGrant: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	return idp
}

func providerConfig(t *testing.T, idp *oidctest.Provider, dir string) config.OIDCProvider {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "idp-secret"), []byte(consoleSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.OIDCProvider{
		Name: "test", Issuer: idp.Issuer(), ClientID: consoleID, ClientSecretFile: "idp-secret", CLIClientID: cliID,
		Scopes: []string{"openid", "email", "profile"}, SubjectClaim: "sub", GroupsClaim: "groups", TokenLifetime: "8h",
		Roles: []config.OIDCRoleMapping{
			{Group: "pki-admins", Role: "admin"},
			{Group: "pki-viewers", Role: "viewer"},
			{Group: "web-team", Role: "issuer", Scope: config.OIDCScope{Names: []string{"*.web.example.com"}}},
			{Group: "web-leads", Role: "issuer", Scope: config.OIDCScope{Names: []string{"*.web.example.com"}}},
		},
	}
}

type fixture struct {
	idp *oidctest.Provider
	reg *oidc.Registry
	clk *clock.Fake
}

func setup(t *testing.T, edit ...func(*config.OIDCProvider)) *fixture {
	t.Helper()
	idp := startIDP(t)
	dir := t.TempDir()
	cfg := providerConfig(t, idp, dir)
	for _, e := range edit {
		e(&cfg)
	}
	// The provider stamps tokens with the real time: the fake clock starts there.
	clk := clock.NewFake(time.Now())
	reg, err := oidc.New([]config.OIDCProvider{cfg}, dir, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), storetest.OpenSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{idp: idp, reg: reg, clk: clk}
}

// signIn runs a console sign-in as user through the provider's login form
// and returns the callback's state and code.
func signIn(t *testing.T, authURL, user, password string) (state, code string) {
	t.Helper()
	cb, err := oidctest.Login(t.Context(), oidctest.NewBrowser(), authURL, user, password)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if !strings.HasPrefix(cb.String(), consoleCallback+"?") {
		t.Fatalf("login ended at %s, want the console callback", cb)
	}
	q := cb.Query()
	if q.Get("error") != "" {
		t.Fatalf("provider answered error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	return q.Get("state"), q.Get("code")
}

func (f *fixture) login(t *testing.T, user, password string) (*oidc.Identity, error) {
	t.Helper()
	pend, err := f.reg.Begin(t.Context(), "test", consoleCallback)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	state, code := signIn(t, pend.AuthURL, user, password)
	return f.reg.Finish(t.Context(), pend, state, code, consoleCallback)
}

func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
	var e *oidc.Error
	if !errors.As(err, &e) || e.Reason == "" {
		t.Fatalf("error %v carries no reason", err)
	}
}

func TestBeginFinish(t *testing.T) {
	t.Parallel()
	f := setup(t)
	pend, err := f.reg.Begin(t.Context(), "test", consoleCallback)
	if err != nil {
		t.Fatal(err)
	}
	if len(pend.State) < 43 || len(pend.Nonce) < 43 || pend.State == pend.Nonce || len(pend.Verifier) < 43 {
		t.Errorf("state %q, nonce %q, verifier %q: want distinct 256-bit values", pend.State, pend.Nonce, pend.Verifier)
	}
	u, err := url.Parse(pend.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"state": pend.State, "nonce": pend.Nonce, "code_challenge_method": "S256", "client_id": consoleID,
		"redirect_uri": consoleCallback, "response_type": "code", "scope": "openid email profile",
	} {
		if q.Get(k) != want {
			t.Errorf("auth URL %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Get("code_challenge") == "" || strings.Contains(pend.AuthURL, pend.Verifier) {
		t.Errorf("auth URL must carry the challenge, never the verifier: %s", pend.AuthURL)
	}

	state, code := signIn(t, pend.AuthURL, "alice", "alice-pw")
	id, err := f.reg.Finish(t.Context(), pend, state, code, consoleCallback)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if id.Provider != "test" || id.Issuer != f.idp.Issuer() || id.Subject != oidctest.DefaultSubject("alice") ||
		id.Email != "alice@example.com" || !id.EmailVerified || id.Name != "Alice Admin" ||
		!slices.Equal(id.Groups, []string{"pki-admins"}) || id.RawIDToken == "" {
		t.Errorf("identity = %+v", id)
	}
	if d := id.Expiry.Sub(id.IssuedAt); d != time.Hour {
		t.Errorf("token lifetime %s, want the provider's 1h", d)
	}
	if got := f.reg.RoleBindings("test", id); len(got) != 1 || got[0].Role != "admin" || !got[0].Scope.Empty() {
		t.Errorf("RoleBindings = %+v, want admin everywhere", got)
	}

	t.Run("unverified email is not claimed", func(t *testing.T) {
		id, err := f.login(t, "bob", "bob-pw")
		if err != nil {
			t.Fatal(err)
		}
		if id.EmailVerified || id.Email != "bob@example.com" {
			t.Errorf("bob = %+v, want his email unverified", id)
		}
	})
}

func TestFinishRefusals(t *testing.T) {
	t.Parallel()
	f := setup(t)

	t.Run("state mismatch", func(t *testing.T) {
		pend, err := f.reg.Begin(t.Context(), "test", consoleCallback)
		if err != nil {
			t.Fatal(err)
		}
		_, code := signIn(t, pend.AuthURL, "alice", "alice-pw")
		_, err = f.reg.Finish(t.Context(), pend, pend.State[:len(pend.State)-1]+"x", code, consoleCallback)
		wantKind(t, err, oidc.ErrState)
		_, err = f.reg.Finish(t.Context(), pend, "", code, consoleCallback)
		wantKind(t, err, oidc.ErrState)
		_, err = f.reg.Finish(t.Context(), nil, pend.State, code, consoleCallback)
		wantKind(t, err, oidc.ErrState)
	})

	t.Run("sign-in too old", func(t *testing.T) {
		pend, err := f.reg.Begin(t.Context(), "test", consoleCallback)
		if err != nil {
			t.Fatal(err)
		}
		old := *pend
		old.CreatedAt = pend.CreatedAt.Add(-oidc.PendingLifetime - time.Second)
		state, code := signIn(t, pend.AuthURL, "alice", "alice-pw")
		_, err = f.reg.Finish(t.Context(), &old, state, code, consoleCallback)
		wantKind(t, err, oidc.ErrState)
	})

	t.Run("pending reused for a second login is a replay", func(t *testing.T) {
		pend, err := f.reg.Begin(t.Context(), "test", consoleCallback)
		if err != nil {
			t.Fatal(err)
		}
		state, code := signIn(t, pend.AuthURL, "alice", "alice-pw")
		if _, err := f.reg.Finish(t.Context(), pend, state, code, consoleCallback); err != nil {
			t.Fatal(err)
		}
		// The same authorization URL again: a valid code, state and PKCE,
		// and an ID token carrying the already used nonce.
		state, code = signIn(t, pend.AuthURL, "alice", "alice-pw")
		_, err = f.reg.Finish(t.Context(), pend, state, code, consoleCallback)
		wantKind(t, err, oidc.ErrReplay)
	})

	t.Run("nonce mismatch", func(t *testing.T) {
		pend, err := f.reg.Begin(t.Context(), "test", consoleCallback)
		if err != nil {
			t.Fatal(err)
		}
		// An attacker's authorization request with the victim's state and
		// PKCE challenge but its own nonce.
		u, _ := url.Parse(pend.AuthURL)
		q := u.Query()
		q.Set("nonce", "attacker-nonce")
		u.RawQuery = q.Encode()
		state, code := signIn(t, u.String(), "alice", "alice-pw")
		_, err = f.reg.Finish(t.Context(), pend, state, code, consoleCallback)
		wantKind(t, err, oidc.ErrNonce)
	})

	t.Run("wrong PKCE verifier", func(t *testing.T) {
		pend, err := f.reg.Begin(t.Context(), "test", consoleCallback)
		if err != nil {
			t.Fatal(err)
		}
		state, code := signIn(t, pend.AuthURL, "alice", "alice-pw")
		other := *pend
		other.Verifier = strings.Repeat("a", 43)
		_, err = f.reg.Finish(t.Context(), &other, state, code, consoleCallback)
		wantKind(t, err, oidc.ErrExchange)
	})

	t.Run("unknown provider", func(t *testing.T) {
		_, err := f.reg.Begin(t.Context(), "nope", consoleCallback)
		wantKind(t, err, oidc.ErrUnknownProvider)
		_, err = f.reg.VerifyIDToken(t.Context(), "nope", "x", oidc.Binding{})
		wantKind(t, err, oidc.ErrUnknownProvider)
	})
}

func TestKeyRotationBetweenLogins(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.login(t, "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	before := f.idp.KeyID()
	if err := f.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if f.idp.KeyID() == before {
		t.Fatal("RotateKey kept the key ID")
	}
	// The new token names a key ID the registry has not seen: it must
	// fetch the JWKS again rather than refuse (once the 6 s since its
	// last fetch have passed).
	f.clk.Advance(7 * time.Second)
	id, err := f.login(t, "alice", "alice-pw")
	if err != nil {
		t.Fatalf("login after rotation: %v", err)
	}
	// Once the registry has the new key set, a token signed with a key
	// the provider dropped no longer verifies.
	fresh, err := f.idp.Mint(oidctest.Claims{Subject: "s", Audience: []string{cliID}, IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(7 * time.Second)
	if _, err := f.login(t, "alice", "alice-pw"); err != nil {
		t.Fatalf("login after the second rotation: %v", err)
	}
	_, err = f.reg.VerifyIDToken(t.Context(), "test", fresh, oidc.Binding{})
	wantKind(t, err, oidc.ErrSignature)
	if id.Subject != oidctest.DefaultSubject("alice") {
		t.Errorf("identity after rotation %+v", id)
	}
}

func TestProviderDown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.idp.SetDown(true)
	_, err := f.reg.Begin(t.Context(), "test", consoleCallback)
	wantKind(t, err, oidc.ErrProviderUnavailable)
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q does not say what the provider answered", err)
	}

	f.idp.SetDown(false)
	_, err = f.reg.Begin(t.Context(), "test", consoleCallback)
	wantKind(t, err, oidc.ErrProviderUnavailable) // not asked again within 10 s
	f.clk.Advance(10 * time.Second)
	if _, err := f.login(t, "alice", "alice-pw"); err != nil {
		t.Fatalf("after the provider came back: %v", err)
	}

	t.Run("down between begin and finish", func(t *testing.T) {
		pend, err := f.reg.Begin(t.Context(), "test", consoleCallback)
		if err != nil {
			t.Fatal(err)
		}
		state, code := signIn(t, pend.AuthURL, "alice", "alice-pw")
		f.idp.SetDown(true)
		_, err = f.reg.Finish(t.Context(), pend, state, code, consoleCallback)
		f.idp.SetDown(false)
		wantKind(t, err, oidc.ErrProviderUnavailable)
	})

	t.Run("stopped", func(t *testing.T) {
		g := setup(t)
		g.idp.Close()
		_, err := g.reg.Begin(t.Context(), "test", consoleCallback)
		wantKind(t, err, oidc.ErrProviderUnavailable)
	})
}

func TestRoleBindingsFollowGroups(t *testing.T) {
	t.Parallel()
	f := setup(t)
	steps := []struct {
		groups []string
		want   []oidc.Mapped
	}{
		{[]string{"pki-viewers"}, []oidc.Mapped{{Role: "viewer", Groups: []string{"pki-viewers"}}}},
		{[]string{"pki-viewers", "web-team", "web-leads", "unmapped"}, []oidc.Mapped{
			{Role: "issuer", Scope: authz.Scope{Names: []string{"*.web.example.com"}}, Groups: []string{"web-leads", "web-team"}},
			{Role: "viewer", Groups: []string{"pki-viewers"}},
		}},
		{[]string{"pki-admins"}, []oidc.Mapped{{Role: "admin", Groups: []string{"pki-admins"}}}},
		{nil, []oidc.Mapped{}},
	}
	for i, s := range steps {
		if err := f.idp.SetGroups("bob", s.groups); err != nil {
			t.Fatal(err)
		}
		id, err := f.login(t, "bob", "bob-pw")
		if err != nil {
			t.Fatal(err)
		}
		got := f.reg.RoleBindings("test", id)
		if len(got) != len(s.want) {
			t.Fatalf("step %d: groups %v: bindings %+v, want %+v", i, id.Groups, got, s.want)
		}
		for j := range got {
			w := s.want[j]
			if got[j].Role != w.Role || !slices.Equal(got[j].Groups, w.Groups) || !slices.Equal(got[j].Scope.Names, w.Scope.Names) {
				t.Errorf("step %d: binding %d = %+v, want %+v", i, j, got[j], w)
			}
		}
	}
	if got := f.reg.RoleBindings("nope", &oidc.Identity{Groups: []string{"pki-admins"}}); got != nil {
		t.Errorf("unknown provider mapped %+v", got)
	}
}

func TestVerifyIDToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	other := startIDP(t)
	now := time.Now()
	good := oidctest.Claims{Subject: "user-alice", Audience: []string{cliID}, IssuedAt: now.Add(-time.Minute), Expiry: now.Add(time.Hour),
		Extra: map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"pki-admins"}}}
	tests := []struct {
		name string
		edit func(c *oidctest.Claims)
		idp  *oidctest.Provider
		kind error // nil: accepted
	}{
		{"fresh", nil, nil, nil},
		{"wrong audience (the console's client)", func(c *oidctest.Claims) { c.Audience = []string{consoleID} }, nil, oidc.ErrAudience},
		{"several audiences without azp", func(c *oidctest.Claims) { c.Audience = []string{cliID, "other"} }, nil, oidc.ErrAudience},
		{"several audiences with azp", func(c *oidctest.Claims) { c.Audience, c.AuthorizedParty = []string{cliID, "other"}, cliID }, nil, nil},
		{"azp of another client", func(c *oidctest.Claims) { c.AuthorizedParty = "other" }, nil, oidc.ErrAudience},
		{"expired", func(c *oidctest.Claims) { c.IssuedAt, c.Expiry = now.Add(-3*time.Hour), now.Add(-2*time.Hour) }, nil, oidc.ErrExpired},
		{"expired within the skew", func(c *oidctest.Claims) { c.Expiry = now.Add(-30 * time.Second) }, nil, nil},
		{"valid but stale", func(c *oidctest.Claims) { c.IssuedAt = now.Add(-oidc.FreshFor - time.Minute) }, nil, oidc.ErrExpired},
		{"issued in the future", func(c *oidctest.Claims) { c.IssuedAt = now.Add(10 * time.Minute) }, nil, oidc.ErrExpired},
		{"no iat", func(c *oidctest.Claims) { c.IssuedAt = time.Time{} }, nil, oidc.ErrClaims},
		{"foreign issuer, our key", func(c *oidctest.Claims) { c.Issuer = "https://evil.example" }, nil, oidc.ErrIssuer},
		{"another provider's token", nil, other, oidc.ErrIssuer},
		{"another provider's key, our issuer", func(c *oidctest.Claims) { c.Issuer = f.idp.Issuer() }, other, oidc.ErrSignature},
		{"no subject", func(c *oidctest.Claims) { c.Subject = "" }, nil, oidc.ErrClaims},
		{"groups of the wrong type", func(c *oidctest.Claims) { c.Extra = map[string]any{"groups": map[string]any{"a": 1}} }, nil, oidc.ErrClaims},
		{"too many groups", func(c *oidctest.Claims) { c.Extra = map[string]any{"groups": make([]string, 300)} }, nil, oidc.ErrClaims},
		{"email not an address", func(c *oidctest.Claims) { c.Extra = map[string]any{"email": "Alice <a@b.c>"} }, nil, oidc.ErrClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			if tt.edit != nil {
				tt.edit(&c)
			}
			idp := f.idp
			if tt.idp != nil {
				idp = tt.idp
			}
			raw, err := idp.Mint(c)
			if err != nil {
				t.Fatal(err)
			}
			id, err := f.reg.VerifyIDToken(t.Context(), "test", raw, oidc.Binding{})
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("VerifyIDToken: %v", err)
				}
				if id.Subject != "user-alice" || id.Email != "alice@example.com" || !id.EmailVerified || !slices.Equal(id.Groups, []string{"pki-admins"}) {
					t.Errorf("identity = %+v", id)
				}
				return
			}
			wantKind(t, err, tt.kind)
			if strings.Contains(err.Error(), raw) || strings.Contains(err.Error(), raw[strings.LastIndex(raw, ".")+1:]) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}

	t.Run("tampered signature", func(t *testing.T) {
		raw, err := f.idp.Mint(good)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(raw, ".")
		sig := []byte(parts[2])
		sig[10] ^= 1
		if sig[10] == '-' || sig[10] == '_' { // keep base64url valid
			sig[10] = 'A'
		}
		_, err = f.reg.VerifyIDToken(t.Context(), "test", parts[0]+"."+parts[1]+"."+string(sig), oidc.Binding{})
		wantKind(t, err, oidc.ErrSignature)
	})

	t.Run("not a JWT", func(t *testing.T) {
		_, err := f.reg.VerifyIDToken(t.Context(), "test", "not.a.jwt", oidc.Binding{})
		wantKind(t, err, oidc.ErrSignature)
	})

	t.Run("console sign-in token refused by the exchange", func(t *testing.T) {
		id, err := f.login(t, "alice", "alice-pw")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.reg.VerifyIDToken(t.Context(), "test", id.RawIDToken, oidc.Binding{})
		wantKind(t, err, oidc.ErrAudience)
	})
}

func TestEndSessionURL(t *testing.T) {
	t.Parallel()
	f := setup(t)
	u, ok := f.reg.EndSessionURL(t.Context(), "test", "HINT", "https://127.0.0.1:8443/")
	if !ok {
		t.Fatal("no end-session URL")
	}
	p, err := url.Parse(u)
	if err != nil || !strings.HasPrefix(u, f.idp.Issuer()+"/") {
		t.Fatalf("end-session URL %q", u)
	}
	q := p.Query()
	if q.Get("id_token_hint") != "HINT" || q.Get("post_logout_redirect_uri") != "https://127.0.0.1:8443/" || q.Get("client_id") != consoleID {
		t.Errorf("end-session URL %q", u)
	}
	if _, ok := f.reg.EndSessionURL(t.Context(), "nope", "", ""); ok {
		t.Error("end-session URL for an unknown provider")
	}
	g := setup(t)
	g.idp.SetDown(true)
	if _, ok := g.reg.EndSessionURL(t.Context(), "test", "", ""); ok {
		t.Error("end-session URL while the provider could not be discovered")
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := clock.NewFake(time.Now())
	base := config.OIDCProvider{Name: "a", Issuer: "https://login.example.com", ClientID: "c", CLIClientID: "c",
		Scopes: []string{"openid"}, SubjectClaim: "sub", GroupsClaim: "groups", TokenLifetime: "8h"}

	t.Run("no provider contacted", func(t *testing.T) {
		b := base
		b.Name = "b"
		r, err := oidc.New([]config.OIDCProvider{base, b}, t.TempDir(), clk, log, storetest.OpenSQLite(t))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Names(), []string{"a", "b"}) {
			t.Errorf("Names = %v", r.Names())
		}
	})
	t.Run("secret readable by others", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "s")
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := base
		c.ClientSecretFile = "s"
		_, err := oidc.New([]config.OIDCProvider{c}, dir, clk, log, storetest.OpenSQLite(t))
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("New = %v, want it to say chmod 600 %s", err, path)
		}
	})
	t.Run("missing secret file", func(t *testing.T) {
		c := base
		c.ClientSecretFile = "missing"
		if _, err := oidc.New([]config.OIDCProvider{c}, t.TempDir(), clk, log, storetest.OpenSQLite(t)); err == nil {
			t.Error("New accepted a missing secret file")
		}
	})
	t.Run("empty secret", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "s"), []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c := base
		c.ClientSecretFile = "s"
		if _, err := oidc.New([]config.OIDCProvider{c}, dir, clk, log, storetest.OpenSQLite(t)); err == nil {
			t.Error("New accepted an empty secret")
		}
	})
	t.Run("CA bundle without certificates", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not PEM"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := base
		c.CABundle = "ca.pem"
		if _, err := oidc.New([]config.OIDCProvider{c}, dir, clk, log, storetest.OpenSQLite(t)); err == nil {
			t.Error("New accepted a CA bundle without certificates")
		}
	})
	t.Run("duplicate name", func(t *testing.T) {
		if _, err := oidc.New([]config.OIDCProvider{base, base}, t.TempDir(), clk, log, storetest.OpenSQLite(t)); err == nil {
			t.Error("New accepted a name twice")
		}
	})
}

func TestDiscoveryRefusals(t *testing.T) {
	t.Parallel()
	t.Run("issuer differs from the discovery document", func(t *testing.T) {
		f := setup(t, func(c *config.OIDCProvider) { c.Issuer += "/" })
		_, err := f.reg.Begin(t.Context(), "test", consoleCallback)
		wantKind(t, err, oidc.ErrIssuer)
	})
}

func TestLoopbackLogin(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	browserErr := make(chan error, 1)
	open := func(authURL string) error {
		u, _ := url.Parse(authURL)
		if ru := u.Query().Get("redirect_uri"); !strings.HasPrefix(ru, "http://127.0.0.1:") || !strings.HasSuffix(ru, "/callback") {
			t.Errorf("redirect_uri %q: want http://127.0.0.1:PORT/callback", ru)
		}
		// The browser: sign in, then follow the redirect to the CLI's
		// loopback listener.
		go func() {
			cb, err := oidctest.Login(ctx, oidctest.NewBrowser(), authURL, "alice", "alice-pw")
			if err == nil {
				var resp *http.Response
				if resp, err = http.Get(cb.String()); err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if !strings.Contains(string(body), "close this tab") {
						t.Errorf("callback page %q", body)
					}
					// A second request finds the sign-in over.
					if resp, err2 := http.Get(cb.String()); err2 == nil {
						resp.Body.Close()
						if resp.StatusCode != http.StatusGone {
							t.Errorf("second callback: %s", resp.Status)
						}
					}
				}
			}
			browserErr <- err
		}()
		return nil
	}
	bind, nonce := testBinding(t, "pki.example.test")
	tok, err := oidc.LoopbackLogin(ctx, oidc.ClientParams{Issuer: f.idp.Issuer(), ClientID: cliID}, nonce, open)
	if err != nil {
		t.Fatalf("LoopbackLogin: %v", err)
	}
	if err := <-browserErr; err != nil {
		t.Fatal(err)
	}
	if tok.RawIDToken == "" || tok.Expiry.Before(time.Now()) {
		t.Errorf("token = %+v", tok)
	}
	// Shown to another server, the token is refused: it is bound to
	// pki.example.test:443.
	other := oidc.Binding{Origin: "rogue.example.test:443", Binder: bind.Binder}
	_, err = f.reg.VerifyIDToken(t.Context(), "test", tok.RawIDToken, other)
	wantKind(t, err, oidc.ErrNonce)
	id, err := f.reg.VerifyIDToken(t.Context(), "test", tok.RawIDToken, bind)
	if err != nil {
		t.Fatalf("the server refuses the CLI's token: %v", err)
	}
	if id.Subject != oidctest.DefaultSubject("alice") || !id.Bound {
		t.Errorf("identity %+v, want alice, bound", id)
	}

	t.Run("no browser", func(t *testing.T) {
		_, err := oidc.LoopbackLogin(ctx, oidc.ClientParams{Issuer: f.idp.Issuer(), ClientID: cliID}, nonce, func(string) error { return errors.New("no display") })
		if err == nil || !strings.Contains(err.Error(), "no display") {
			t.Errorf("LoopbackLogin = %v", err)
		}
	})
	t.Run("forged callback", func(t *testing.T) {
		// A request without the sign-in's state is turned away and the
		// sign-in goes on: the person's own answer still completes it.
		forged := make(chan int, 1)
		tok, err := oidc.LoopbackLogin(ctx, oidc.ClientParams{Issuer: f.idp.Issuer(), ClientID: cliID}, nonce, func(authURL string) error {
			u, _ := url.Parse(authURL)
			go func() {
				resp, err := http.Get(u.Query().Get("redirect_uri") + "?state=forged&code=x")
				if err != nil {
					forged <- 0
					return
				}
				resp.Body.Close()
				forged <- resp.StatusCode
				hc := oidctest.NewBrowser()
				cb, err := oidctest.Login(ctx, hc, authURL, "alice", "alice-pw")
				if err == nil {
					if resp, err := hc.Get(cb.String()); err == nil {
						resp.Body.Close()
					}
				}
			}()
			return nil
		})
		if code := <-forged; code != http.StatusBadRequest {
			t.Errorf("a forged callback: %d, want 400", code)
		}
		if err != nil || tok.RawIDToken == "" {
			t.Errorf("the sign-in after a forged callback: %+v, %v", tok, err)
		}
	})
	t.Run("gives up with the context", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := oidc.LoopbackLogin(short, oidc.ClientParams{Issuer: f.idp.Issuer(), ClientID: cliID}, nonce, func(string) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("LoopbackLogin = %v, want the deadline", err)
		}
	})
}

func TestDeviceLogin(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	approved := make(chan error, 1)
	show := func(uri, complete, code string) {
		if !strings.HasPrefix(uri, f.idp.Issuer()+"/") || !strings.Contains(complete, url.QueryEscape(code)) {
			t.Errorf("verification URI %q, complete %q, code %q", uri, complete, code)
		}
		// The person, on another device: open the URI, type the code, sign in.
		go func() { approved <- oidctest.ApproveDevice(ctx, oidctest.NewBrowser(), uri, code, "bob", "bob-pw") }()
	}
	bind, nonce := testBinding(t, "pki.example.test:8443")
	tok, err := oidc.DeviceLogin(ctx, oidc.ClientParams{Issuer: f.idp.Issuer(), ClientID: cliID}, nonce, show)
	if err != nil {
		t.Fatalf("DeviceLogin: %v", err)
	}
	if err := <-approved; err != nil {
		t.Fatal(err)
	}
	// The test provider, as most, takes no nonce in the device grant:
	// the token is unbound, and accepted as such.
	id, err := f.reg.VerifyIDToken(t.Context(), "test", tok.RawIDToken, bind)
	if err != nil {
		t.Fatalf("the server refuses the device token: %v", err)
	}
	if id.Subject != oidctest.DefaultSubject("bob") || !slices.Equal(id.Groups, []string{"pki-viewers"}) || id.Bound {
		t.Errorf("identity %+v, want bob, unbound", id)
	}

	t.Run("wrong password leaves the device waiting", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := oidc.DeviceLogin(short, oidc.ClientParams{Issuer: f.idp.Issuer(), ClientID: cliID}, nonce, func(_, complete, _ string) {
			if err := oidctest.ApproveDevice(short, oidctest.NewBrowser(), complete, "", "bob", "wrong"); err == nil {
				t.Error("ApproveDevice accepted a wrong password")
			}
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("DeviceLogin = %v, want the deadline", err)
		}
	})
}

// testBinding binds a CLI sign-in to the server at hostport.
func testBinding(t *testing.T, hostport string) (oidc.Binding, string) {
	t.Helper()
	b, err := oidc.NewBinding(hostport)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := b.Nonce()
	if err != nil {
		t.Fatal(err)
	}
	return b, nonce
}
