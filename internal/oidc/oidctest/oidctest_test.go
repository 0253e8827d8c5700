package oidctest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/oidc/oidctest"
)

func start(t *testing.T) *oidctest.Provider {
	t.Helper()
	p, err := oidctest.Start(t.Context(), oidctest.Options{
		Users:   []oidctest.User{{Username: "u", Password: "p", Groups: []string{"g"}}},
		Clients: []oidctest.Client{{ID: "c", RedirectURIs: []string{"http://127.0.0.1/cb"}, DeviceGrant: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestDiscoveryAndDown(t *testing.T) {
	t.Parallel()
	p := start(t)
	get := func() (*http.Response, map[string]any) {
		resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		return resp, doc
	}
	resp, doc := get()
	if resp.StatusCode != 200 || doc["issuer"] != p.Issuer() || doc["device_authorization_endpoint"] == nil ||
		!strings.Contains(strings.Join(toStrings(doc["code_challenge_methods_supported"]), " "), "S256") {
		t.Errorf("discovery %d %v", resp.StatusCode, doc)
	}
	p.SetDown(true)
	if resp, _ := get(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("down: %s", resp.Status)
	}
	p.SetDown(false)
	if resp, _ := get(); resp.StatusCode != 200 {
		t.Errorf("up again: %s", resp.Status)
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func TestStartRefusals(t *testing.T) {
	t.Parallel()
	for _, o := range []oidctest.Options{
		{Addr: "0.0.0.0:0"},
		{Users: []oidctest.User{{Username: "u"}}},
		{Users: []oidctest.User{{Username: "u", Password: "p"}, {Username: "u", Password: "q"}}},
		{Clients: []oidctest.Client{{ID: "c"}}},
	} {
		if p, err := oidctest.Start(t.Context(), o); err == nil {
			p.Close()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	p := start(t)
	now := time.Unix(1_800_000_000, 0)
	raw, err := p.Mint(oidctest.Claims{Subject: "s", Audience: []string{"a"}, IssuedAt: now, Expiry: now.Add(time.Hour),
		Extra: map[string]any{"iss": nil, "groups": []string{"x"}}})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["iss"]; ok || m["sub"] != "s" || m["iat"] != float64(now.Unix()) || m["groups"] == nil {
		t.Errorf("minted claims %v", m)
	}
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if !strings.Contains(string(header), p.KeyID()) {
		t.Errorf("header %s lacks the key ID %s", header, p.KeyID())
	}
}

func TestLoginRefusesWrongPassword(t *testing.T) {
	t.Parallel()
	p := start(t)
	authURL := p.Issuer() + "/authorize?client_id=c&response_type=code&scope=openid&redirect_uri=http://127.0.0.1:9/cb&state=s&code_challenge=" +
		strings.Repeat("A", 43) + "&code_challenge_method=S256"
	if _, err := oidctest.Login(t.Context(), oidctest.NewBrowser(), authURL, "u", "wrong"); err == nil || !strings.Contains(err.Error(), "wrong username or password") {
		t.Errorf("Login = %v", err)
	}
	cb, err := oidctest.Login(t.Context(), oidctest.NewBrowser(), authURL, "u", "p")
	if err != nil || cb.Query().Get("code") == "" || cb.Query().Get("state") != "s" || cb.Port() != "9" {
		t.Errorf("Login = %v, %v (a public client's loopback redirect may use any port)", cb, err)
	}
	if err := p.SetGroups("nobody", nil); err == nil {
		t.Error("SetGroups of an unknown user succeeded")
	}
}

// TestLoginFormMayLeadBackToClient: a browser applies the login page's
// form-action policy to the redirects that follow the form's POST too
// (Chromium blocks the navigation), so the policy must allow the origin
// of the sign-in's redirect URI, the client's registered one; and only
// that: a page of no sign-in allows 'self' alone.
func TestLoginFormMayLeadBackToClient(t *testing.T) {
	t.Parallel()
	p := start(t)
	authURL := p.Issuer() + "/authorize?client_id=c&response_type=code&scope=openid&redirect_uri=http://127.0.0.1:9/cb&state=s&code_challenge=" +
		strings.Repeat("A", 43) + "&code_challenge_method=S256"
	csp := func(method, u string, form url.Values) string {
		t.Helper()
		var resp *http.Response
		var err error
		if form != nil {
			resp, err = http.PostForm(u, form)
		} else {
			resp, err = http.Get(u)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Request.URL.Path, oidctest.LoginPath) {
			t.Fatalf("%s %s ended at %s", method, u, resp.Request.URL)
		}
		return resp.Header.Get("Content-Security-Policy")
	}
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	for _, tc := range []struct {
		name, method, url string
		form              url.Values
		want              string
	}{
		{"the login form", "GET", authURL, nil, "form-action 'self' http://127.0.0.1:9;"},
		{"the form again after a wrong password", "POST", p.Issuer() + oidctest.LoginPath,
			url.Values{"authRequestID": {id}, "username": {"u"}, "password": {"wrong"}}, "form-action 'self' http://127.0.0.1:9;"},
		{"no sign-in", "GET", p.Issuer() + oidctest.LoginPath + "?authRequestID=unknown", nil, "form-action 'self';"},
	} {
		if got := csp(tc.method, tc.url, tc.form) + ";"; !strings.Contains(got, tc.want) {
			t.Errorf("%s: Content-Security-Policy %q, want %q", tc.name, got, tc.want)
		}
	}
}
