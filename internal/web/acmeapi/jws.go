package acmeapi

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"

	"github.com/certwright/certwright/internal/acme"
)

// The JWS layer of RFC 8555 §6.2. Everything here is pure: bytes in, a
// checked message or an *acme.Problem (wrapped in *problem where the
// document needs more than acme.Problem holds) out. The HTTP side decides
// which key verifies a message; these functions only check its shape.

// signatureAlgorithms are the account-key algorithms accepted on the outer
// JWS and on a key-change inner JWS, in the order the problem document
// lists them.
var signatureAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.EdDSA}

// eabAlgorithms are the MAC algorithms of an external account binding
// (RFC 8555 §7.3.4).
var eabAlgorithms = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}

// Account key size limits. The upper RSA bound keeps one request's
// verification cheap.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// privateJWKMembers are the JWK members that carry private or symmetric
// key material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// jwsMessage is a flattened JWS whose structure and header were checked;
// its signature is checked by verify.
type jwsMessage struct {
	Alg   jose.SignatureAlgorithm
	Nonce string
	URL   string
	KeyID string
	// JWK is the embedded public key, when the header has "jwk".
	JWK *jose.JSONWebKey

	hasNonce bool
	// signingInput is what the signature covers (RFC 7515 §5.2): the
	// protected header and the payload, base64url-encoded, joined by a
	// dot; payload and signature are decoded.
	signingInput []byte
	payload      []byte
	signature    []byte
}

// flattenedJWS is the JSON form of RFC 7515 §7.2.2. Signatures and Header
// are decoded only to refuse them.
type flattenedJWS struct {
	Protected  *string             `json:"protected"`
	Payload    *string             `json:"payload"`
	Signature  *string             `json:"signature"`
	Header     josejson.RawMessage `json:"header"`
	Signatures josejson.RawMessage `json:"signatures"`
}

func malformed(format string, args ...any) error {
	return acme.NewProblem(acme.ErrMalformed, format, args...)
}

// parseJWS parses the outer JWS of an ACME POST (RFC 8555 §6.2): flattened
// serialization, one signature, an accepted algorithm, "nonce" and "url"
// in the protected header and exactly one of "jwk" or "kid".
func parseJWS(body []byte) (*jwsMessage, error) {
	m, err := parseFlattened(body, signatureAlgorithms)
	if err != nil {
		return nil, err
	}
	switch {
	case !m.hasNonce || m.Nonce == "":
		return nil, acme.NewProblem(acme.ErrBadNonce, "JWS has no nonce in its protected header")
	case m.URL == "":
		return nil, malformed("JWS has no url in its protected header")
	case m.JWK != nil && m.KeyID != "":
		return nil, malformed("JWS protected header has both jwk and kid")
	case m.JWK == nil && m.KeyID == "":
		return nil, malformed("JWS protected header has neither jwk nor kid")
	}
	return m, nil
}

// parseFlattened checks what every JWS ACME accepts has in common and
// decodes the protected header. algs are the accepted algorithms.
func parseFlattened(body []byte, algs []jose.SignatureAlgorithm) (*jwsMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, malformed("JWS must use the flattened JSON serialization")
	}
	var raw flattenedJWS
	if err := josejson.Unmarshal(trimmed, &raw); err != nil {
		return nil, malformed("JWS is not a valid JSON object: %v", err)
	}
	switch {
	case raw.Signatures != nil:
		return nil, malformed("JWS must use the flattened JSON serialization with exactly one signature")
	case raw.Header != nil:
		return nil, malformed("JWS must not have an unprotected header")
	case raw.Protected == nil || *raw.Protected == "":
		return nil, malformed("JWS has no protected header")
	case raw.Payload == nil:
		return nil, malformed("JWS has no payload")
	}
	protected, err := base64.RawURLEncoding.DecodeString(*raw.Protected)
	if err != nil {
		return nil, malformed("JWS protected header is not base64url")
	}
	var hdr map[string]josejson.RawMessage
	if err := josejson.Unmarshal(protected, &hdr); err != nil || hdr == nil {
		return nil, malformed("JWS protected header is not a JSON object")
	}
	m := &jwsMessage{}
	var alg string
	if err := headerString(hdr, "alg", &alg); err != nil {
		return nil, err
	}
	m.Alg = jose.SignatureAlgorithm(alg)
	if !algAllowed(algs, m.Alg) {
		return nil, badSignatureAlgorithm(algs, "JWS algorithm %q is not supported", alg)
	}
	if raw.Signature == nil || *raw.Signature == "" {
		return nil, malformed("JWS has no signature")
	}
	for _, name := range []string{"crit", "b64"} {
		if _, ok := hdr[name]; ok {
			return nil, malformed("JWS protected header must not have %q", name)
		}
	}
	if err := headerString(hdr, "kid", &m.KeyID); err != nil {
		return nil, err
	}
	if err := headerString(hdr, "url", &m.URL); err != nil {
		return nil, err
	}
	_, m.hasNonce = hdr["nonce"]
	if err := headerString(hdr, "nonce", &m.Nonce); err != nil {
		return nil, err
	}
	if rawJWK, ok := hdr["jwk"]; ok {
		if m.JWK, err = parsePublicJWK(rawJWK); err != nil {
			return nil, err
		}
	}
	if m.payload, err = base64.RawURLEncoding.DecodeString(*raw.Payload); err != nil {
		return nil, malformed("JWS payload is not base64url")
	}
	if m.signature, err = base64.RawURLEncoding.DecodeString(*raw.Signature); err != nil {
		return nil, malformed("JWS signature is not base64url")
	}
	// The input is encoded again from the decoded parts, as go-jose does:
	// the bytes signed are those of the canonical encoding.
	enc := base64.RawURLEncoding
	in := make([]byte, enc.EncodedLen(len(protected))+1+enc.EncodedLen(len(m.payload)))
	enc.Encode(in, protected)
	in[enc.EncodedLen(len(protected))] = '.'
	enc.Encode(in[enc.EncodedLen(len(protected))+1:], m.payload)
	m.signingInput = in
	return m, nil
}

func algAllowed(algs []jose.SignatureAlgorithm, alg jose.SignatureAlgorithm) bool {
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}

// headerString decodes the optional string member name of a protected
// header into dst; a member of another type is malformed.
func headerString(hdr map[string]josejson.RawMessage, name string, dst *string) error {
	v, ok := hdr[name]
	if !ok {
		return nil
	}
	if err := josejson.Unmarshal(v, dst); err != nil {
		return malformed("JWS header %q must be a string", name)
	}
	return nil
}

// parsePublicJWK parses a JWK that must be an account key: public, of a
// type and size we accept (RFC 8555 §6.2, badPublicKey otherwise).
func parsePublicJWK(raw []byte) (*jose.JSONWebKey, error) {
	var members map[string]josejson.RawMessage
	if err := josejson.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, malformed("jwk is not a JSON object")
	}
	for _, name := range privateJWKMembers {
		if _, ok := members[name]; ok {
			return nil, acme.NewProblem(acme.ErrBadPublicKey, "jwk must be a public key; it has the private member %q", name)
		}
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, acme.NewProblem(acme.ErrBadPublicKey, "jwk cannot be parsed: %v", err)
	}
	if err := checkAccountKey(&k); err != nil {
		return nil, err
	}
	return &jose.JSONWebKey{Key: k.Key}, nil
}

// checkAccountKey accepts ECDSA P-256 and P-384, Ed25519 and RSA keys of
// 2048 to 8192 bits: exactly the key types of signatureAlgorithms.
func checkAccountKey(k *jose.JSONWebKey) error {
	if !k.Valid() || !k.IsPublic() {
		return acme.NewProblem(acme.ErrBadPublicKey, "jwk must be a valid public key")
	}
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() && key.Curve != elliptic.P384() {
			return acme.NewProblem(acme.ErrBadPublicKey, "ECDSA key curve %s is not supported; use P-256 or P-384", key.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if bits := key.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return acme.NewProblem(acme.ErrBadPublicKey, "RSA key of %d bits is not accepted; use %d to %d bits", bits, minRSABits, maxRSABits)
		}
	case ed25519.PublicKey:
	default:
		return acme.NewProblem(acme.ErrBadPublicKey, "jwk key type is not supported; use EC, RSA or OKP (Ed25519)")
	}
	return nil
}

// verify checks the signature with key (the embedded jwk or the account's
// key) and returns the payload. An algorithm that does not fit the key
// fails here too.
func (m *jwsMessage) verify(key *jose.JSONWebKey) ([]byte, error) {
	if key == nil || !verifySignature(m.Alg, key.Key, m.signingInput, m.signature) {
		return nil, malformed("JWS signature invalid")
	}
	return m.payload, nil
}

// verifySignature reports whether sig is a valid signature of input under
// alg by key. The key's type (and, for ECDSA, curve) must be alg's: ES256
// P-256, ES384 P-384, RS256 RSA, EdDSA Ed25519, HS256/384/512 a []byte
// MAC key. Every other algorithm fails.
func verifySignature(alg jose.SignatureAlgorithm, key any, input, sig []byte) bool {
	switch alg {
	case jose.ES256, jose.ES384:
		pub, ok := key.(*ecdsa.PublicKey)
		curve, size, h := elliptic.P256(), 32, crypto.SHA256
		if alg == jose.ES384 {
			curve, size, h = elliptic.P384(), 48, crypto.SHA384
		}
		if !ok || pub.Curve != curve || len(sig) != 2*size {
			return false
		}
		d := h.New()
		d.Write(input)
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, d.Sum(nil), r, s)
	case jose.RS256:
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return false
		}
		d := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
	case jose.EdDSA:
		pub, ok := key.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, input, sig)
	case jose.HS256, jose.HS384, jose.HS512:
		k, ok := key.([]byte)
		if !ok {
			return false
		}
		h := sha256.New
		switch alg {
		case jose.HS384:
			h = sha512.New384
		case jose.HS512:
			h = sha512.New
		}
		mac := hmac.New(h, k)
		mac.Write(input)
		return hmac.Equal(mac.Sum(nil), sig)
	}
	return false
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of k, base64url.
func thumbprint(k *jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", acme.NewProblem(acme.ErrBadPublicKey, "jwk thumbprint: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// publicJWKJSON is k's public key alone as a JWK (no kid, alg or use).
func publicJWKJSON(k *jose.JSONWebKey) ([]byte, error) {
	return json.Marshal(jose.JSONWebKey{Key: k.Key})
}

// parseAccountKey parses a stored account key.
func parseAccountKey(b []byte) (*jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		return nil, errors.Join(errors.New("acmeapi: stored account key"), err)
	}
	if !k.Valid() || !k.IsPublic() {
		return nil, errors.New("acmeapi: stored account key is not a public key")
	}
	return &k, nil
}

// eabBinding is a checked external account binding JWS (RFC 8555 §7.3.4)
// awaiting its MAC key.
type eabBinding struct {
	KeyID string
	m     *jwsMessage
}

// parseEAB checks the shape of the externalAccountBinding member of a
// new-account payload sent to url.
func parseEAB(raw []byte, url string) (*eabBinding, error) {
	m, err := parseFlattened(raw, eabAlgorithms)
	if err != nil {
		if p := acme.AsProblem(err); p != nil {
			return nil, malformed("external account binding: %s", p.Detail)
		}
		return nil, err
	}
	switch {
	case m.KeyID == "":
		return nil, malformed("external account binding has no kid")
	case m.JWK != nil:
		return nil, malformed("external account binding must not have a jwk header")
	case m.hasNonce:
		return nil, malformed("external account binding must not have a nonce")
	case m.URL != url:
		return nil, acme.NewProblem(acme.ErrUnauthorized, "external account binding url %q does not match request URL %q", m.URL, url)
	}
	return &eabBinding{KeyID: m.KeyID, m: m}, nil
}

// verify checks the binding's MAC with hmacKey and that it binds
// accountKey, the key of the outer JWS.
func (b *eabBinding) verify(hmacKey []byte, accountKey *jose.JSONWebKey) error {
	if !verifySignature(b.m.Alg, hmacKey, b.m.signingInput, b.m.signature) {
		return acme.NewProblem(acme.ErrUnauthorized, "external account binding signature is invalid")
	}
	payload := b.m.payload
	var bound jose.JSONWebKey
	if err := bound.UnmarshalJSON(payload); err != nil || !bound.Valid() || !bound.IsPublic() {
		return malformed("external account binding payload is not a public JWK")
	}
	if !sameKey(&bound, accountKey) {
		return acme.NewProblem(acme.ErrUnauthorized, "external account binding is for a different account key")
	}
	return nil
}

// sameKey compares two keys by thumbprint.
func sameKey(a, b *jose.JSONWebKey) bool {
	ta, errA := thumbprint(a)
	tb, errB := thumbprint(b)
	return errA == nil && errB == nil && ta == tb
}

// keyChangeRequest is the inner payload of a key rollover (RFC 8555 §7.3.5).
type keyChangeRequest struct {
	Account string          `json:"account"`
	OldKey  json.RawMessage `json:"oldKey"`
}

// verifyKeyChange checks the inner JWS of a key-change request whose outer
// JWS was sent to outerURL and signed by the account accountURL, whose key
// has thumbprint oldThumbprint. It returns the new key.
func verifyKeyChange(inner []byte, outerURL, accountURL, oldThumbprint string) (*jose.JSONWebKey, error) {
	m, err := parseFlattened(inner, signatureAlgorithms)
	if err != nil {
		if p := acme.AsProblem(err); p != nil && p.Type == acme.ErrMalformed {
			return nil, malformed("key change inner JWS: %s", p.Detail)
		}
		return nil, err
	}
	switch {
	case m.JWK == nil:
		return nil, malformed("key change inner JWS must carry the new key as jwk")
	case m.KeyID != "":
		return nil, malformed("key change inner JWS must not have a kid")
	case m.hasNonce:
		return nil, malformed("key change inner JWS must not have a nonce")
	case m.URL != outerURL:
		return nil, malformed("key change inner JWS url %q does not match the outer url %q", m.URL, outerURL)
	}
	payload, err := m.verify(m.JWK)
	if err != nil {
		return nil, malformed("key change inner JWS signature invalid")
	}
	var req keyChangeRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, malformed("key change payload: %v", err)
	}
	if req.Account != accountURL {
		return nil, acme.NewProblem(acme.ErrUnauthorized, "key change is for account %q, but the request is signed by %q", req.Account, accountURL)
	}
	if len(req.OldKey) == 0 {
		return nil, malformed("key change payload has no oldKey")
	}
	var old jose.JSONWebKey
	if err := old.UnmarshalJSON(req.OldKey); err != nil || !old.Valid() || !old.IsPublic() {
		return nil, malformed("key change oldKey is not a public JWK")
	}
	if tp, err := thumbprint(&old); err != nil || tp != oldThumbprint {
		return nil, acme.NewProblem(acme.ErrUnauthorized, "key change oldKey is not the account's current key")
	}
	newTP, err := thumbprint(m.JWK)
	if err != nil {
		return nil, err
	}
	if newTP == oldThumbprint {
		return nil, malformed("key change new key is the account's current key")
	}
	return m.JWK, nil
}
