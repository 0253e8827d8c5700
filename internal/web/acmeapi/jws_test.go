package acmeapi

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certwright/certwright/internal/acme"
)

const (
	testURL   = "https://ca.example/acme/prov/new-order"
	testNonce = "nonce-1"
	testKID   = "https://ca.example/acme/prov/account/acct1"
)

var b64 = base64.RawURLEncoding

// Keys are slow to make (RSA), so every test shares one per algorithm.
var (
	keysOnce sync.Once
	keys     map[string]crypto.Signer
)

func testKeys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]crypto.Signer{}
		mustKey := func(k crypto.Signer, err error) crypto.Signer {
			if err != nil {
				panic(err)
			}
			return k
		}
		keys["ES256"] = mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		keys["ES384"] = mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
		keys["ES256b"] = mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		keys["RS256"] = mustKey(rsa.GenerateKey(rand.Reader, 2048))
		keys["RS1024"] = mustKey(rsa.GenerateKey(rand.Reader, 1024))
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		keys["EdDSA"] = mustKey(ed, err)
	})
	return keys
}

// jwkOf is the public JWK of k as raw JSON.
func jwkOf(t testing.TB, k crypto.Signer) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tpOf(t testing.TB, k crypto.Signer) string {
	t.Helper()
	tp, err := thumbprint(&jose.JSONWebKey{Key: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// sign signs by hand, so tests can build JWSs go-jose would refuse to
// make. key is a crypto.Signer, or []byte for the HS algorithms.
func sign(t testing.TB, alg string, key any, input []byte) []byte {
	t.Helper()
	digest := func(h hash.Hash) []byte { h.Write(input); return h.Sum(nil) }
	ecSig := func(k *ecdsa.PrivateKey, d []byte, size int) []byte {
		r, s, err := ecdsa.Sign(rand.Reader, k, d)
		if err != nil {
			t.Fatal(err)
		}
		size = max(size, (k.Curve.Params().BitSize+7)/8)
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
	mac := func(h func() hash.Hash) []byte {
		m := hmac.New(h, key.([]byte))
		m.Write(input)
		return m.Sum(nil)
	}
	switch alg {
	case "ES256":
		return ecSig(key.(*ecdsa.PrivateKey), digest(sha256.New()), 32)
	case "ES384":
		return ecSig(key.(*ecdsa.PrivateKey), digest(sha512.New384()), 48)
	case "RS256":
		s, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest(sha256.New()))
		if err != nil {
			t.Fatal(err)
		}
		return s
	case "EdDSA":
		return ed25519.Sign(key.(ed25519.PrivateKey), input)
	case "HS256":
		return mac(sha256.New)
	case "HS384":
		return mac(sha512.New384)
	case "HS512":
		return mac(sha512.New)
	case "none":
		return nil
	}
	t.Fatalf("sign: unknown alg %s", alg)
	return nil
}

// flattened builds a flattened JWS with protected header hdr over payload.
func flattened(t testing.TB, alg string, key any, hdr map[string]any, payload []byte) []byte {
	t.Helper()
	if _, ok := hdr["alg"]; !ok {
		hdr["alg"] = alg
	}
	ph, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	prot, pl := b64.EncodeToString(ph), b64.EncodeToString(payload)
	sig := sign(t, alg, key, []byte(prot+"."+pl))
	out, err := json.Marshal(map[string]string{"protected": prot, "payload": pl, "signature": b64.EncodeToString(sig)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jwkHeader is an outer header with the signer's jwk.
func jwkHeader(t testing.TB, k crypto.Signer) map[string]any {
	return map[string]any{"nonce": testNonce, "url": testURL, "jwk": jwkOf(t, k)}
}

func kidHeader() map[string]any {
	return map[string]any{"nonce": testNonce, "url": testURL, "kid": testKID}
}

func problemType(err error) acme.ErrorType {
	if p := acme.AsProblem(err); p != nil {
		return p.Type
	}
	return ""
}

func TestParseJWS(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	payload := []byte(`{"identifiers":[{"type":"dns","value":"a.example"}]}`)
	mutate := func(body []byte, f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	good := flattened(t, "ES256", ks["ES256"], jwkHeader(t, ks["ES256"]), payload)
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: ks["ES256"]})
	compact := func() []byte {
		var m map[string]string
		_ = json.Unmarshal(good, &m)
		return []byte(m["protected"] + "." + m["payload"] + "." + m["signature"])
	}()
	tests := []struct {
		name      string
		body      []byte
		verifyKey crypto.Signer // nil: the embedded jwk
		want      acme.ErrorType
		wantVerif acme.ErrorType // problem from verify, when parse succeeds
	}{
		{name: "ES256", body: good},
		{name: "ES384", body: flattened(t, "ES384", ks["ES384"], jwkHeader(t, ks["ES384"]), payload)},
		{name: "RS256", body: flattened(t, "RS256", ks["RS256"], jwkHeader(t, ks["RS256"]), payload)},
		{name: "EdDSA", body: flattened(t, "EdDSA", ks["EdDSA"], jwkHeader(t, ks["EdDSA"]), payload)},
		{name: "kid", body: flattened(t, "ES256", ks["ES256"], kidHeader(), payload), verifyKey: ks["ES256"]},
		{name: "kid wrong account key", body: flattened(t, "ES256", ks["ES256"], kidHeader(), payload), verifyKey: ks["ES256b"], wantVerif: acme.ErrMalformed},
		{name: "empty payload", body: flattened(t, "ES256", ks["ES256"], jwkHeader(t, ks["ES256"]), nil)},
		{name: "RS256 1024-bit", body: flattened(t, "RS256", ks["RS1024"], jwkHeader(t, ks["RS1024"]), payload), want: acme.ErrBadPublicKey},
		{name: "HS256 outer", body: flattened(t, "HS256", make([]byte, 32), kidHeader(), payload), want: acme.ErrBadSignatureAlgorithm},
		{name: "none", body: flattened(t, "none", nil, jwkHeader(t, ks["ES256"]), payload), want: acme.ErrBadSignatureAlgorithm},
		{name: "PS256", body: mutate(good, func(m map[string]any) {
			m["protected"] = b64.EncodeToString([]byte(`{"alg":"PS256","nonce":"n","url":"u","kid":"k"}`))
		}), want: acme.ErrBadSignatureAlgorithm},
		{name: "no alg", body: flattened(t, "ES256", ks["ES256"], map[string]any{"alg": nil, "nonce": testNonce, "url": testURL, "kid": testKID}, payload), want: acme.ErrBadSignatureAlgorithm},
		{name: "alg not a string", body: flattened(t, "ES256", ks["ES256"], map[string]any{"alg": 1, "nonce": testNonce, "url": testURL, "kid": testKID}, payload), want: acme.ErrMalformed},
		{name: "jwk and kid", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": testNonce, "url": testURL, "kid": testKID, "jwk": jwkOf(t, ks["ES256"])}, payload), want: acme.ErrMalformed},
		{name: "neither jwk nor kid", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": testNonce, "url": testURL}, payload), want: acme.ErrMalformed},
		{name: "missing nonce", body: flattened(t, "ES256", ks["ES256"], map[string]any{"url": testURL, "kid": testKID}, payload), want: acme.ErrBadNonce},
		{name: "empty nonce", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": "", "url": testURL, "kid": testKID}, payload), want: acme.ErrBadNonce},
		{name: "nonce not a string", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": 7, "url": testURL, "kid": testKID}, payload), want: acme.ErrMalformed},
		{name: "missing url", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": testNonce, "kid": testKID}, payload), want: acme.ErrMalformed},
		{name: "compact serialization", body: compact, want: acme.ErrMalformed},
		{name: "two signatures", body: mutate(good, func(m map[string]any) {
			sig := map[string]any{"protected": m["protected"], "signature": m["signature"]}
			m["signatures"] = []any{sig, sig}
			delete(m, "protected")
			delete(m, "signature")
		}), want: acme.ErrMalformed},
		{name: "general serialization with one signature", body: mutate(good, func(m map[string]any) {
			m["signatures"] = []any{map[string]any{"protected": m["protected"], "signature": m["signature"]}}
			delete(m, "protected")
			delete(m, "signature")
		}), want: acme.ErrMalformed},
		{name: "unprotected header", body: mutate(good, func(m map[string]any) { m["header"] = map[string]any{"kid": "x"} }), want: acme.ErrMalformed},
		{name: "tampered payload", body: mutate(good, func(m map[string]any) { m["payload"] = b64.EncodeToString([]byte(`{"identifiers":[]}`)) }), wantVerif: acme.ErrMalformed},
		{name: "tampered header", body: mutate(good, func(m map[string]any) {
			h, _ := b64.DecodeString(m["protected"].(string))
			m["protected"] = b64.EncodeToString([]byte(strings.Replace(string(h), testNonce, "nonce-2", 1)))
		}), wantVerif: acme.ErrMalformed},
		{name: "private jwk", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": testNonce, "url": testURL, "jwk": json.RawMessage(privJWK)}, payload), want: acme.ErrBadPublicKey},
		{name: "symmetric jwk", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": testNonce, "url": testURL, "jwk": json.RawMessage(`{"kty":"oct","k":"AAAA"}`)}, payload), want: acme.ErrBadPublicKey},
		{name: "jwk not an object", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": testNonce, "url": testURL, "jwk": "x"}, payload), want: acme.ErrMalformed},
		{name: "alg does not fit key", body: flattened(t, "ES256", ks["ES384"], jwkHeader(t, ks["ES384"]), payload), wantVerif: acme.ErrMalformed},
		{name: "crit", body: flattened(t, "ES256", ks["ES256"], map[string]any{"nonce": testNonce, "url": testURL, "kid": testKID, "crit": []string{"b64"}, "b64": false}, payload), want: acme.ErrMalformed},
		{name: "duplicate member", body: []byte(`{"protected":"e30","protected":"e30","payload":"","signature":"AA"}`), want: acme.ErrMalformed},
		{name: "not JSON", body: []byte(`{"protected":`), want: acme.ErrMalformed},
		{name: "empty", body: nil, want: acme.ErrMalformed},
		{name: "no signature", body: mutate(good, func(m map[string]any) { delete(m, "signature") }), want: acme.ErrMalformed},
		{name: "no payload", body: mutate(good, func(m map[string]any) { delete(m, "payload") }), want: acme.ErrMalformed},
		{name: "protected not base64url", body: mutate(good, func(m map[string]any) { m["protected"] = "!!" }), want: acme.ErrMalformed},
		{name: "payload not base64url", body: mutate(good, func(m map[string]any) { m["payload"] = "!!" }), want: acme.ErrMalformed},
		{name: "payload padded", body: mutate(good, func(m map[string]any) { m["payload"] = m["payload"].(string) + "=" }), want: acme.ErrMalformed},
		{name: "signature not base64url", body: mutate(good, func(m map[string]any) { m["signature"] = "!!" }), want: acme.ErrMalformed},
		{name: "signature truncated", body: mutate(good, func(m map[string]any) { s := m["signature"].(string); m["signature"] = s[:len(s)-4] }), wantVerif: acme.ErrMalformed},
		{name: "signature extended", body: mutate(good, func(m map[string]any) { m["signature"] = m["signature"].(string) + "AAAA" }), wantVerif: acme.ErrMalformed},
		{name: "kid with an account key of another type", body: flattened(t, "ES256", ks["ES256"], kidHeader(), payload), verifyKey: ks["RS256"], wantVerif: acme.ErrMalformed},
		{name: "EdDSA header, ECDSA jwk", body: flattened(t, "EdDSA", ks["EdDSA"], jwkHeader(t, ks["ES256"]), payload), wantVerif: acme.ErrMalformed},
		{name: "RS256 header, ECDSA jwk", body: flattened(t, "RS256", ks["RS256"], jwkHeader(t, ks["ES256"]), payload), wantVerif: acme.ErrMalformed},
		{name: "ES384 header, P-256 jwk", body: flattened(t, "ES384", ks["ES384"], jwkHeader(t, ks["ES256"]), payload), wantVerif: acme.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := parseJWS(tc.body)
			if got := problemType(err); got != tc.want || (err != nil && got == "") {
				t.Fatalf("parseJWS: got %v (%q), want %q", err, got, tc.want)
			}
			if err != nil {
				return
			}
			if m.Nonce != testNonce && tc.name != "tampered header" {
				t.Errorf("nonce = %q", m.Nonce)
			}
			key := m.JWK
			if tc.verifyKey != nil {
				key = &jose.JSONWebKey{Key: tc.verifyKey.Public()}
			}
			got, err := m.verify(key)
			// The verdict is go-jose's on the same message and key.
			joseOK := false
			if obj, jerr := jose.ParseSignedJSON(string(tc.body), signatureAlgorithms); jerr == nil {
				_, jerr = obj.Verify(key)
				joseOK = jerr == nil
			}
			if joseOK != (err == nil) {
				t.Errorf("verify ok = %v, go-jose's = %v", err == nil, joseOK)
			}
			if gotT := problemType(err); gotT != tc.wantVerif || (err != nil && gotT == "") {
				t.Fatalf("verify: got %v, want %q", err, tc.wantVerif)
			}
			if err == nil && tc.name != "empty payload" && string(got) != string(payload) {
				t.Errorf("payload = %s", got)
			}
			if err != nil && !strings.Contains(err.Error(), "JWS signature invalid") {
				t.Errorf("verify error %q does not say the signature is invalid", err)
			}
		})
	}
}

func TestBadSignatureAlgorithmListsAlgorithms(t *testing.T) {
	t.Parallel()
	_, err := parseJWS(flattened(t, "HS256", make([]byte, 32), kidHeader(), []byte("{}")))
	var pr *problem
	if !errors.As(err, &pr) {
		t.Fatalf("error %v is not a *problem", err)
	}
	if want := []string{"ES256", "ES384", "RS256", "EdDSA"}; !slices.Equal(pr.algorithms, want) {
		t.Errorf("algorithms = %v, want %v", pr.algorithms, want)
	}
}

func TestEAB(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	const url = "https://ca.example/acme/prov/new-account"
	hmacKey := []byte("0123456789abcdef0123456789abcdef")
	acctKey := &jose.JSONWebKey{Key: ks["ES256"].Public()}
	eab := func(alg string, key any, hdr map[string]any, payload []byte) []byte {
		return flattened(t, alg, key, hdr, payload)
	}
	hdr := func() map[string]any { return map[string]any{"kid": "eab1", "url": url} }
	tests := []struct {
		name      string
		raw       []byte
		verifyKey []byte
		wantParse acme.ErrorType
		want      acme.ErrorType
	}{
		{name: "HS256", raw: eab("HS256", hmacKey, hdr(), jwkOf(t, ks["ES256"]))},
		{name: "HS512", raw: eab("HS512", append(hmacKey, hmacKey...), hdr(), jwkOf(t, ks["ES256"])), verifyKey: append(hmacKey, hmacKey...)},
		{name: "wrong MAC key", raw: eab("HS256", []byte("ffffffffffffffffffffffffffffffff"), hdr(), jwkOf(t, ks["ES256"])), want: acme.ErrUnauthorized},
		{name: "wrong url", raw: eab("HS256", hmacKey, map[string]any{"kid": "eab1", "url": url + "x"}, jwkOf(t, ks["ES256"])), wantParse: acme.ErrUnauthorized},
		{name: "payload is another key", raw: eab("HS256", hmacKey, hdr(), jwkOf(t, ks["ES256b"])), want: acme.ErrUnauthorized},
		{name: "payload not a key", raw: eab("HS256", hmacKey, hdr(), []byte(`{"a":1}`)), want: acme.ErrMalformed},
		{name: "nonce", raw: eab("HS256", hmacKey, map[string]any{"kid": "eab1", "url": url, "nonce": "n"}, jwkOf(t, ks["ES256"])), wantParse: acme.ErrMalformed},
		{name: "no kid", raw: eab("HS256", hmacKey, map[string]any{"url": url}, jwkOf(t, ks["ES256"])), wantParse: acme.ErrMalformed},
		{name: "signed with a key pair", raw: eab("ES256", ks["ES256"], hdr(), jwkOf(t, ks["ES256"])), wantParse: acme.ErrMalformed},
		{name: "not a JWS", raw: []byte(`"x"`), wantParse: acme.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := parseEAB(tc.raw, url)
			if got := problemType(err); got != tc.wantParse || (err != nil && got == "") {
				t.Fatalf("parseEAB: %v, want %q", err, tc.wantParse)
			}
			if err != nil {
				return
			}
			if b.KeyID != "eab1" {
				t.Errorf("KeyID = %q", b.KeyID)
			}
			key := hmacKey
			if tc.verifyKey != nil {
				key = tc.verifyKey
			}
			err = b.verify(key, acctKey)
			if got := problemType(err); got != tc.want || (err != nil && got == "") {
				t.Fatalf("verify: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestVerifyKeyChange(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	const outerURL = "https://ca.example/acme/prov/key-change"
	oldTP := tpOf(t, ks["ES256"])
	newKey := ks["EdDSA"]
	body := func(account string, oldKey crypto.Signer) []byte {
		b, _ := json.Marshal(map[string]any{"account": account, "oldKey": jwkOf(t, oldKey)})
		return b
	}
	inner := func(hdr map[string]any, payload []byte) []byte {
		return flattened(t, "EdDSA", newKey, hdr, payload)
	}
	hdr := func() map[string]any { return map[string]any{"url": outerURL, "jwk": jwkOf(t, newKey)} }
	tests := []struct {
		name  string
		inner []byte
		want  acme.ErrorType
	}{
		{name: "ok", inner: inner(hdr(), body(testKID, ks["ES256"]))},
		{name: "url differs", inner: inner(map[string]any{"url": outerURL + "/x", "jwk": jwkOf(t, newKey)}, body(testKID, ks["ES256"])), want: acme.ErrMalformed},
		{name: "nonce", inner: inner(map[string]any{"url": outerURL, "nonce": "n", "jwk": jwkOf(t, newKey)}, body(testKID, ks["ES256"])), want: acme.ErrMalformed},
		{name: "kid", inner: inner(map[string]any{"url": outerURL, "kid": testKID}, body(testKID, ks["ES256"])), want: acme.ErrMalformed},
		{name: "other account", inner: inner(hdr(), body(testKID+"x", ks["ES256"])), want: acme.ErrUnauthorized},
		{name: "wrong old key", inner: inner(hdr(), body(testKID, ks["ES384"])), want: acme.ErrUnauthorized},
		{name: "no old key", inner: inner(hdr(), []byte(`{"account":"`+testKID+`"}`)), want: acme.ErrMalformed},
		{name: "same key", inner: flattened(t, "ES256", ks["ES256"], map[string]any{"url": outerURL, "jwk": jwkOf(t, ks["ES256"])}, body(testKID, ks["ES256"])), want: acme.ErrMalformed},
		{name: "signed by another key", inner: flattened(t, "EdDSA", newKey, map[string]any{"url": outerURL, "jwk": jwkOf(t, ks["ES256b"])}, body(testKID, ks["ES256"])), want: acme.ErrMalformed},
		{name: "weak new key", inner: flattened(t, "RS256", ks["RS1024"], map[string]any{"url": outerURL, "jwk": jwkOf(t, ks["RS1024"])}, body(testKID, ks["ES256"])), want: acme.ErrBadPublicKey},
		{name: "payload wrong types", inner: inner(hdr(), []byte(`{"account":1,"oldKey":{}}`)), want: acme.ErrMalformed},
		{name: "not a JWS", inner: []byte("x.y.z"), want: acme.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := verifyKeyChange(tc.inner, outerURL, testKID, oldTP)
			if got := problemType(err); got != tc.want || (err != nil && got == "") {
				t.Fatalf("verifyKeyChange: %v, want %q", err, tc.want)
			}
			if err == nil && tpOf(t, newKey) != mustTP(t, k) {
				t.Errorf("returned key is not the new key")
			}
		})
	}
}

func mustTP(t *testing.T, k *jose.JSONWebKey) string {
	t.Helper()
	tp, err := thumbprint(k)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestThumbprintRFC7638(t *testing.T) {
	t.Parallel()
	// RFC 7638 §3.1's example key and thumbprint.
	const jwk = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	k, err := parsePublicJWK([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustTP(t, k); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("thumbprint = %s", got)
	}
	pub, err := publicJWKJSON(k)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pub), "kid") || strings.Contains(string(pub), "alg") {
		t.Errorf("public JWK keeps kid/alg: %s", pub)
	}
}

func TestCheckAccountKey(t *testing.T) {
	t.Parallel()
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	huge := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), maxRSABits+8), E: 65537}
	for name, key := range map[string]any{"P-521": &p521.PublicKey, "RSA too large": huge} {
		if err := checkAccountKey(&jose.JSONWebKey{Key: key}); problemType(err) != acme.ErrBadPublicKey {
			t.Errorf("%s: %v, want badPublicKey", name, err)
		}
	}
}

// FuzzParseJWS feeds arbitrary bodies through every JWS parser: none may
// panic, and a parsed message must verify (or fail) cleanly.
func FuzzParseJWS(f *testing.F) {
	ks := testKeys(f)
	payload := []byte(`{"status":"deactivated"}`)
	for _, alg := range []string{"ES256", "ES384", "RS256", "EdDSA"} {
		f.Add(flattened(f, alg, ks[alg], jwkHeader(f, ks[alg]), payload))
		f.Add(flattened(f, alg, ks[alg], kidHeader(), nil))
	}
	f.Add(flattened(f, "RS256", ks["RS1024"], jwkHeader(f, ks["RS1024"]), payload))
	f.Add(flattened(f, "HS256", make([]byte, 32), map[string]any{"kid": "eab", "url": testURL}, jwkOf(f, ks["ES256"])))
	f.Add(flattened(f, "none", nil, kidHeader(), payload))
	f.Add(flattened(f, "EdDSA", ks["EdDSA"], map[string]any{"url": testURL, "jwk": jwkOf(f, ks["EdDSA"])},
		[]byte(`{"account":"`+testKID+`","oldKey":`+string(jwkOf(f, ks["ES256"]))+`}`)))
	f.Add([]byte(`{"protected":"e30","payload":"","signature":"AA","signatures":[{}]}`))
	f.Add([]byte(`{"protected":"e30","payload":"","signature":"AA","header":{}}`))
	f.Add([]byte("eyJhbGciOiJFUzI1NiJ9.e30.AA"))
	oldTP := tpOf(f, ks["ES256"])
	acctKey := &jose.JSONWebKey{Key: ks["ES256"].Public()}
	f.Fuzz(func(t *testing.T, body []byte) {
		if m, err := parseJWS(body); err == nil {
			if m.JWK != nil {
				_, _ = m.verify(m.JWK)
				_, _ = thumbprint(m.JWK)
				_, _ = publicJWKJSON(m.JWK)
			}
			_, _ = m.verify(acctKey)
		} else if acme.AsProblem(err) == nil {
			t.Fatalf("parseJWS returned a non-problem error: %v", err)
		}
		if b, err := parseEAB(body, testURL); err == nil {
			_ = b.verify(make([]byte, 32), acctKey)
		}
		_, _ = verifyKeyChange(body, testURL, testKID, oldTP)
	})
}
