package oidc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/oidc/oidctest"
)

const base64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// padVariants are seg with its last character's unused low bits set
// otherwise: strings a lenient base64url decoder reads as seg's bytes.
func padVariants(seg string) []string {
	var unused int
	switch len(seg) % 4 {
	case 2:
		unused = 4
	case 3:
		unused = 2
	default:
		return nil
	}
	v := strings.IndexByte(base64url, seg[len(seg)-1])
	var out []string
	for low := 0; low < 1<<unused; low++ {
		if nv := v&^(1<<unused-1) | low; nv != v {
			out = append(out, seg[:len(seg)-1]+string(base64url[nv]))
		}
	}
	return out
}

// variants are raw with one segment's unused bits changed.
func variants(raw string) []string {
	parts := strings.Split(raw, ".")
	var out []string
	for i := range parts {
		for _, v := range padVariants(parts[i]) {
			p := append([]string(nil), parts...)
			p[i] = v
			out = append(out, strings.Join(p, "."))
		}
	}
	return out
}

// TestVerifyIDTokenOnceWhateverTheEncoding: an ID token is exchanged once
// however it is spelled. A segment whose unused low bits are set decodes
// to the same bytes; a token re-signed with the same claims (another key
// of the provider; ES256 signatures are malleable too) is the same
// sign-in. None of them is exchanged again, and a token that is not in
// canonical base64url is refused even the first time.
func TestVerifyIDTokenOnceWhateverTheEncoding(t *testing.T) {
	t.Parallel()
	f := setup(t)
	here, nonce := testBinding(t, "pki.example.test")
	now := time.Now()
	claims := oidctest.Claims{Subject: "a", Audience: []string{cliID}, IssuedAt: now, Expiry: now.Add(time.Hour), Nonce: nonce}
	raw, err := f.idp.Mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.VerifyIDToken(t.Context(), "test", raw, here); err != nil {
		t.Fatal(err)
	}
	vs := variants(raw)
	if len(vs) == 0 {
		t.Fatal("the test token has no segment with unused bits")
	}
	for _, v := range vs {
		if _, err := f.reg.VerifyIDToken(t.Context(), "test", v, here); err == nil {
			t.Errorf("a spelling of the exchanged ID token (unused bits set) was exchanged again")
		}
	}
	if err := f.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(7 * time.Second) // past the gap between fetches of the provider's keys
	resigned, err := f.idp.Mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	if resigned == raw {
		t.Fatal("the re-signed token is the same string")
	}
	_, err = f.reg.VerifyIDToken(t.Context(), "test", resigned, here)
	wantKind(t, err, oidc.ErrReplay)

	fresh, err := f.idp.Mint(oidctest.Claims{Subject: "b", Audience: []string{cliID}, IssuedAt: now, Expiry: now.Add(time.Hour), Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range variants(fresh) {
		_, err := f.reg.VerifyIDToken(t.Context(), "test", v, here)
		wantKind(t, err, oidc.ErrSignature)
	}
	if _, err := f.reg.VerifyIDToken(t.Context(), "test", fresh, here); err != nil {
		t.Errorf("the canonical token after its refused spellings: %v", err)
	}
}
