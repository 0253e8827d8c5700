package oidc_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/oidc/oidctest"
)

// TestOrigin: the CLI's server URL host and the server's Host header give
// the same origin for the same server; what names no server is refused.
func TestOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"pki.example.com":       "pki.example.com:443",
		"PKI.Example.COM:443":   "pki.example.com:443",
		"pki.example.com:8443":  "pki.example.com:8443",
		"pki.example.com:08443": "pki.example.com:8443",
		"127.0.0.1:8443":        "127.0.0.1:8443",
		"[::1]:8443":            "[::1]:8443",
		"[0:0::1]":              "[::1]:443",
		"::1":                   "[::1]:443",
		"[::ffff:127.0.0.1]:1":  "127.0.0.1:1",
		"[FE80::1]:443":         "[fe80::1]:443",
	} {
		got, err := oidc.Origin(in)
		if err != nil || got != want {
			t.Errorf("Origin(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "pki.example.com:0", "pki.example.com:65536", "pki.example.com:https", "pki example.com",
		"pki.example.com/x", "[fe80::1%eth0]:443", "user@pki.example.com", strings.Repeat("a", 400)} {
		if got, err := oidc.Origin(in); err == nil {
			t.Errorf("Origin(%q) = %q, want an error", in, got)
		}
	}
}

// TestBindingNonce: the nonce is base64url(SHA-256(label 0 origin 0
// binder)) and differs with the origin and with the binder; a binder that
// is not 32 bytes makes none.
func TestBindingNonce(t *testing.T) {
	t.Parallel()
	binder := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	n1, err := oidc.Binding{Origin: "pki.example.com:443", Binder: binder}.Nonce()
	if err != nil {
		t.Fatal(err)
	}
	// Computed independently (Python's hashlib): SHA-256 of
	// "certwright cli sign-in v1\0pki.example.com:443\0" and 32 bytes of 7.
	if n1 != "b2Z4dnCTfu9cGoLyrK9fCp-EBv6_UV10I2oJPWNlomk" {
		t.Errorf("nonce %q", n1)
	}
	n2, _ := oidc.Binding{Origin: "staging.example.com:443", Binder: binder}.Nonce()
	b2, _ := oidc.NewBinding("pki.example.com")
	n3, _ := oidc.Binding{Origin: "pki.example.com:443", Binder: b2.Binder}.Nonce()
	if n1 == n2 || n1 == n3 || n3 == "" {
		t.Errorf("nonces of different origins or binders agree: %q %q %q", n1, n2, n3)
	}
	for _, b := range []string{"", "short", binder + "AA", strings.Repeat("=", 43)} {
		if _, err := (oidc.Binding{Origin: "pki.example.com:443", Binder: b}).Nonce(); err == nil {
			t.Errorf("binder %q made a nonce", b)
		}
	}
}

// TestVerifyIDTokenBinding: a token whose nonce binds it to this server
// (origin and binder) is accepted as bound, once; bound to another
// origin, or with another binder, it is ErrNonce; a token without a nonce
// is accepted as unbound unless cli_require_binding is set.
func TestVerifyIDTokenBinding(t *testing.T) {
	t.Parallel()
	f := setup(t)
	strict := setup(t, func(c *config.OIDCProvider) { c.CLIRequireBinding = true })
	here, nonce := testBinding(t, "pki.example.test")
	mint := func(f *fixture, subject, nonce string) string {
		t.Helper()
		now := time.Now()
		raw, err := f.idp.Mint(oidctest.Claims{Subject: subject, Audience: []string{cliID}, IssuedAt: now, Expiry: now.Add(time.Hour), Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	bound := mint(f, "a", nonce)
	_, err := f.reg.VerifyIDToken(t.Context(), "test", bound, oidc.Binding{Origin: "staging.example.test:443", Binder: here.Binder})
	wantKind(t, err, oidc.ErrNonce)
	other, _ := testBinding(t, "pki.example.test")
	_, err = f.reg.VerifyIDToken(t.Context(), "test", bound, other)
	wantKind(t, err, oidc.ErrNonce)
	_, err = f.reg.VerifyIDToken(t.Context(), "test", bound, oidc.Binding{Origin: here.Origin})
	wantKind(t, err, oidc.ErrNonce)
	// Refusals record nothing: the token is still good for its server.
	id, err := f.reg.VerifyIDToken(t.Context(), "test", bound, here)
	if err != nil || !id.Bound {
		t.Fatalf("the bound token at its server: %+v, %v", id, err)
	}
	_, err = f.reg.VerifyIDToken(t.Context(), "test", bound, here)
	wantKind(t, err, oidc.ErrReplay)

	unbound := mint(f, "b", "")
	if id, err := f.reg.VerifyIDToken(t.Context(), "test", unbound, here); err != nil || id.Bound {
		t.Errorf("an unbound token by default: %+v, %v", id, err)
	}
	_, err = f.reg.VerifyIDToken(t.Context(), "test", unbound, here)
	wantKind(t, err, oidc.ErrReplay)
	_, err = strict.reg.VerifyIDToken(t.Context(), "test", mint(strict, "c", ""), here)
	wantKind(t, err, oidc.ErrNonce)
	if id, err := strict.reg.VerifyIDToken(t.Context(), "test", mint(strict, "d", nonce), here); err != nil || !id.Bound {
		t.Errorf("a bound token with cli_require_binding: %+v, %v", id, err)
	}
}

// TestSealer: a sealed sign-in opens to what was sealed; altered, cut
// short, sealed under another KEK, too long, or not a seal at all, it
// does not open, and the error says no more than that.
func TestSealer(t *testing.T) {
	t.Parallel()
	kek := bytes.Repeat([]byte{1}, 32)
	s, err := oidc.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	p := &oidc.Pending{Provider: "corp", State: "state-1", Nonce: "nonce-1", Verifier: "verifier-1", Next: "/certificates?q=a", CreatedAt: at,
		AuthURL: "https://idp.example/authorize"}
	v, err := s.Seal(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "state-1") || strings.Contains(v, "verifier-1") {
		t.Fatalf("the seal shows its content: %s", v)
	}
	got, err := s.Open(v)
	if err != nil || got.Provider != "corp" || got.State != "state-1" || got.Nonce != "nonce-1" || got.Verifier != "verifier-1" ||
		got.Next != "/certificates?q=a" || !got.CreatedAt.Equal(at) || got.AuthURL != "" {
		t.Fatalf("Open = %+v, %v", got, err)
	}
	foreign, err := oidc.NewSealer(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	fv, _ := foreign.Seal(p)
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 1
	for name, bad := range map[string]string{
		"another KEK": fv,
		"altered":     base64.RawURLEncoding.EncodeToString(flipped),
		"cut short":   v[:len(v)-4],
		"too short":   v[:10],
		"empty":       "",
		"not base64":  "!!!" + v,
		"too long":    v + strings.Repeat("A", oidc.MaxSealed),
	} {
		_, err := s.Open(bad)
		wantKind(t, err, oidc.ErrState)
		if err != nil && err.Error() != "oidc: the sign-in was not begun in this browser" {
			t.Errorf("%s: error %q says more than that", name, err)
		}
	}
	if _, err := oidc.NewSealer(kek[:16]); err == nil {
		t.Error("a 16-byte sealing key was taken")
	}
}
