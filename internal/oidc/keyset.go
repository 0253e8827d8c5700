package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/certwright/certwright/internal/clock"
)

// Key set bounds. A token naming an unknown key ID makes the key set
// refetch the JWKS (that is how a provider's key rotation is picked up),
// but an unauthenticated caller can send such tokens at will: fetches are
// at least keyFetchGap apart, and a token in between is refused as a
// signature failure. A gap, not a budget per window: forged tokens could
// spend a budget and leave a real rotation unseen for the whole window;
// a gap delays it by at most keyFetchGap.
const (
	keyFetchGap = 6 * time.Second
	maxKeys     = 100
)

// keySet is a provider's JWKS (RFC 7517), fetched on first use and again
// when a token names a key ID it does not hold. It implements go-oidc's
// KeySet; its own verify returns this package's typed errors, which
// go-oidc's verifier would flatten into text.
type keySet struct {
	provider string
	url      string
	client   *http.Client
	clk      clock.Clock
	algs     []jose.SignatureAlgorithm

	fetchMu sync.Mutex // one fetch at a time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	lastFetch time.Time
}

var _ gooidc.KeySet = (*keySet)(nil)

// VerifySignature implements gooidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	return k.verify(ctx, raw)
}

func (k *keySet) verify(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, k.algs)
	if err != nil {
		return nil, fail(ErrSignature, k.provider, err, "ID token is not a JWS signed with an algorithm the provider announces (%s)", algNames(k.algs))
	}
	if len(jws.Signatures) != 1 {
		return nil, fail(ErrSignature, k.provider, nil, "ID token has %d signatures, want 1", len(jws.Signatures))
	}
	kid := jws.Signatures[0].Header.KeyID
	if payload, ok := k.tryKeys(jws, kid); ok {
		return payload, nil
	}
	if err := k.refresh(ctx, kid); err != nil {
		return nil, err
	}
	if payload, ok := k.tryKeys(jws, kid); ok {
		return payload, nil
	}
	return nil, fail(ErrSignature, k.provider, nil, "no key of the provider verifies the ID token's signature (key ID %s)", quote(kid))
}

func (k *keySet) tryKeys(jws *jose.JSONWebSignature, kid string) ([]byte, bool) {
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

func (k *keySet) holds(kid string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range k.keys {
		if key.KeyID == kid {
			return true
		}
	}
	return false
}

// refresh fetches the JWKS unless another caller just fetched one holding
// kid, or the fetch budget of the current window is spent.
func (k *keySet) refresh(ctx context.Context, kid string) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if kid != "" && k.holds(kid) {
		return nil
	}
	now := k.clk.Now()
	k.mu.Lock()
	since := now.Sub(k.lastFetch)
	early := !k.lastFetch.IsZero() && since >= 0 && since < keyFetchGap
	if !early {
		k.lastFetch = now
	}
	k.mu.Unlock()
	if early {
		return fail(ErrSignature, k.provider, nil, "ID token names unknown key ID %s and the provider's keys were fetched %s ago (at most one fetch every %s)",
			quote(kid), since.Round(time.Millisecond), keyFetchGap)
	}
	keys, err := k.fetch(ctx)
	if err != nil {
		return fail(ErrProviderUnavailable, k.provider, err, "fetching the provider's signing keys from %s: %s", k.url, short(err))
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		// Keys of unknown types, encryption keys and private keys are
		// skipped, not fatal: providers publish all sorts.
		if json.Unmarshal(raw, &key) != nil || !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		keys = append(keys, key)
		if len(keys) == maxKeys {
			break
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the JWKS holds no usable signing key")
	}
	return keys, nil
}

// signingAlgs are the asymmetric algorithms an ID token may be signed
// with: never "none", never HMAC with the client secret.
var signingAlgs = map[string]jose.SignatureAlgorithm{
	gooidc.RS256: jose.RS256, gooidc.RS384: jose.RS384, gooidc.RS512: jose.RS512,
	gooidc.ES256: jose.ES256, gooidc.ES384: jose.ES384, gooidc.ES512: jose.ES512,
	gooidc.PS256: jose.PS256, gooidc.PS384: jose.PS384, gooidc.PS512: jose.PS512,
	gooidc.EdDSA: jose.EdDSA,
}

// announcedAlgs keeps the supported algorithms of the discovery
// document's list; RS256 when it names none (OpenID Connect Discovery
// makes RS256 the default).
func announcedAlgs(names []string) []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, n := range names {
		if a, ok := signingAlgs[n]; ok {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []jose.SignatureAlgorithm{jose.RS256}
	}
	return out
}

func algNames(algs []jose.SignatureAlgorithm) string {
	s := ""
	for i, a := range algs {
		if i > 0 {
			s += ", "
		}
		s += string(a)
	}
	return s
}
