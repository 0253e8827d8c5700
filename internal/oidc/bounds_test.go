package oidc_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/oidc/oidctest"
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestKeyFetchBudget: tokens naming unknown key IDs make the registry
// fetch the JWKS again, but at most once every 6 seconds, so that
// unauthenticated callers cannot make it hammer the provider; and
// however many such tokens arrive, a real key rotation is picked up at
// the next fetch after the gap, not a whole window later.
func TestKeyFetchBudget(t *testing.T) {
	t.Parallel()
	f := setup(t)
	now := time.Now()
	good, err := f.idp.Mint(oidctest.Claims{Subject: "s", Audience: []string{cliID}, IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.VerifyIDToken(t.Context(), "test", good, oidc.Binding{}); err != nil {
		t.Fatal(err)
	}
	other := startIDP(t)
	foreign, err := other.Mint(oidctest.Claims{Issuer: f.idp.Issuer(), Subject: "s", Audience: []string{cliID}, IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	flood := func() error {
		var last error
		for range 15 {
			_, last = f.reg.VerifyIDToken(t.Context(), "test", foreign, oidc.Binding{})
			wantKind(t, last, oidc.ErrSignature)
		}
		return last
	}
	if last := flood(); !strings.Contains(last.Error(), "at most one fetch every 6s") {
		t.Errorf("after 15 unknown key IDs: %v, want the fetch gap named", last)
	}
	// Known keys still verify meanwhile.
	again, err := f.idp.Mint(oidctest.Claims{Subject: "s2", Audience: []string{cliID}, IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.VerifyIDToken(t.Context(), "test", again, oidc.Binding{}); err != nil {
		t.Fatal(err)
	}
	// The provider rotates its key while forged tokens keep coming: the
	// rotated key verifies once the gap has passed, well within a minute.
	f.idp.RotateKey()
	rotated, _ := f.idp.Mint(oidctest.Claims{Subject: "s3", Audience: []string{cliID}, IssuedAt: now, Expiry: now.Add(time.Hour)})
	for range 3 {
		f.clk.Advance(7 * time.Second)
		flood()
	}
	f.clk.Advance(7 * time.Second)
	if _, err := f.reg.VerifyIDToken(t.Context(), "test", rotated, oidc.Binding{}); err != nil {
		t.Errorf("a rotated key 28 s into a flood of forged key IDs: %v", err)
	}
}

// fakeIssuer serves a discovery document (edited by doc) and nothing else
// useful: for what the real provider cannot be made to do.
func fakeIssuer(t *testing.T, doc func(iss string, d map[string]any)) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		d := map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"},
		}
		doc(srv.URL, d)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func fakeRegistry(t *testing.T, issuer string) *oidc.Registry {
	t.Helper()
	reg, err := oidc.New([]config.OIDCProvider{{Name: "fake", Issuer: issuer, ClientID: "c", CLIClientID: "c",
		Scopes: []string{"openid"}, SubjectClaim: "sub", GroupsClaim: "groups", TokenLifetime: "8h"}},
		t.TempDir(), clock.NewFake(time.Now()), slog.New(slog.NewTextHandler(io.Discard, nil)), storetest.OpenSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestDiscoveryBounds(t *testing.T) {
	t.Parallel()
	t.Run("oversized document", func(t *testing.T) {
		t.Parallel()
		iss := fakeIssuer(t, func(_ string, d map[string]any) { d["padding"] = strings.Repeat("x", 2<<20) })
		_, err := fakeRegistry(t, iss).Begin(t.Context(), "fake", consoleCallback)
		wantKind(t, err, oidc.ErrProviderUnavailable)
		if !strings.Contains(err.Error(), "larger than") {
			t.Errorf("error %q does not say the answer was too large", err)
		}
	})
	t.Run("endpoint on plain http elsewhere", func(t *testing.T) {
		t.Parallel()
		iss := fakeIssuer(t, func(_ string, d map[string]any) { d["token_endpoint"] = "http://token.example.com/token" })
		_, err := fakeRegistry(t, iss).Begin(t.Context(), "fake", consoleCallback)
		wantKind(t, err, oidc.ErrProviderUnavailable)
	})
	t.Run("no device endpoint", func(t *testing.T) {
		t.Parallel()
		iss := fakeIssuer(t, func(string, map[string]any) {})
		_, err := oidc.DeviceLogin(t.Context(), oidc.ClientParams{Issuer: iss, ClientID: "c"}, "", func(string, string, string) {
			t.Error("show called")
		})
		if !errors.Is(err, oidc.ErrDeviceUnsupported) {
			t.Errorf("DeviceLogin = %v, want ErrDeviceUnsupported", err)
		}
	})
	t.Run("redirects not followed", func(t *testing.T) {
		t.Parallel()
		target := fakeIssuer(t, func(string, map[string]any) {})
		redir := httptest.NewServer(http.RedirectHandler(target+"/.well-known/openid-configuration", http.StatusFound))
		t.Cleanup(redir.Close)
		_, err := fakeRegistry(t, redir.URL).Begin(t.Context(), "fake", consoleCallback)
		wantKind(t, err, oidc.ErrProviderUnavailable)
	})
}
