package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/gencache"
	"github.com/certwright/certwright/internal/pki"
)

// ErrUnauthenticated means no valid credential was presented. Its message
// never says which part was wrong; Reason (for the audit log) does.
var ErrUnauthenticated = errors.New("authz: missing or invalid credentials")

// ErrNotFound is what a Store returns for a token, principal, identity or
// credential it does not hold. Any other Store error is the store failing,
// not the caller: authentication then fails with ErrUnavailable.
var ErrNotFound = errors.New("authz: not found")

// ErrUnavailable means the credential could not be checked because the
// store failed or did not answer in time: the caller may retry, and has
// not been refused.
var ErrUnavailable = errors.New("authz: credentials cannot be checked now")

// ErrSignInEnded refuses a credential for a sign-in whose token has been
// revoked (signed out, revoked by an administrator, the person disabled)
// by the time the credential would be stored.
var ErrSignInEnded = errors.New("authz: the sign-in has ended")

// AuthError is an authentication failure with the reason kept for the
// audit log. It matches ErrUnauthenticated and prints as it does.
type AuthError struct {
	Reason string
	// Public, when set, is what the caller may be told beyond "invalid
	// credentials": only for a credential whose secret verified (an
	// expired token), so it reveals nothing to a guesser.
	Public string
}

func (e *AuthError) Error() string        { return ErrUnauthenticated.Error() }
func (e *AuthError) Is(target error) bool { return target == ErrUnauthenticated }

func unauthenticated(reason string) error { return &AuthError{Reason: reason} }

// unavailable is a store failure during authentication. The context's
// error, when it ended, is kept too, so the edge can tell a caller that
// went away from a store that did not answer in time.
func unavailable(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w: %w", ErrUnavailable, err, cerr)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// PrincipalRecord is a principal without its bindings.
type PrincipalRecord struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Kind        Kind       `json:"kind"`
	Description string     `json:"description"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by"`
	DisabledAt  *time.Time `json:"disabled_at,omitempty"`
}

// Identity maps a client-certificate name to a principal.
type Identity struct {
	// Kind is "uri" (a SAN URI such as spiffe://...), "dns" (a SAN DNS
	// name), "email" (a SAN e-mail address, lower-cased) or IdentityOIDC.
	Kind        string    `json:"kind"`
	Value       string    `json:"value"`
	PrincipalID string    `json:"principal_id"`
	Principal   string    `json:"principal"`
	CreatedAt   time.Time `json:"created_at"`
	// Source is "oidc:NAME" for an e-mail address that provider's sign-in
	// added (and its next sign-in replaces); "" for one an administrator
	// mapped.
	Source string `json:"source,omitempty"`
}

// Token is an API bearer token as stored: only a hash of its secret is kept.
// The token string handed to a user is "cwt_<ID>_<secret>", the secret 256
// random bits.
type Token struct {
	ID          string     `json:"id"`
	PrincipalID string     `json:"principal_id"`
	Principal   string     `json:"principal"` // name, for display
	Description string     `json:"description"`
	SecretHash  []byte     `json:"-"` // SHA-256 of the secret part
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
	// Via is "oidc:NAME" for a token a sign-in through that identity
	// provider minted; "" for one an administrator created.
	Via string `json:"via,omitempty"`
}

// NewToken makes a token for the principal. The returned string is shown to
// the user once; only rec (with a hash of the secret) is stored. A zero
// expires means the token does not expire.
func NewToken(principalID, description string, now, expires time.Time) (token string, rec *Token, err error) {
	idb := make([]byte, 8)
	secret := make([]byte, 32)
	if _, err := rand.Read(idb); err != nil {
		return "", nil, fmt.Errorf("authz: token id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return "", nil, fmt.Errorf("authz: token secret: %w", err)
	}
	id := hex.EncodeToString(idb)
	sec := base64.RawURLEncoding.EncodeToString(secret)
	h := sha256.Sum256([]byte(sec))
	rec = &Token{ID: id, PrincipalID: principalID, Description: description, SecretHash: h[:], CreatedAt: now.UTC()}
	if !expires.IsZero() {
		e := expires.UTC()
		rec.ExpiresAt = &e
	}
	return "cwt_" + id + "_" + sec, rec, nil
}

// LooksLikeToken reports whether s has the shape of a Certwright token, so
// that one pasted where it does not belong (a URL) can be refused.
func LooksLikeToken(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "cwt_") }

// Store is the persistence authentication needs.
type Store interface {
	GetToken(ctx context.Context, id string) (*Token, error)
	// LoadPrincipal returns the principal with its bindings, roles resolved.
	LoadPrincipal(ctx context.Context, id string) (*Principal, *PrincipalRecord, error)
	// PrincipalByIdentity returns the ID of the principal an mTLS identity maps to.
	PrincipalByIdentity(ctx context.Context, kind, value string) (string, error)
	// ClientCredential returns what the issuance path recorded for the
	// certificate serial as an mTLS credential, with the state of the
	// sign-in token it names, read when asked (never cached); ErrNotFound
	// when it was issued as none.
	ClientCredential(ctx context.Context, serial string) (*Credential, error)
	TouchToken(ctx context.Context, id string, at time.Time) error
	// AccessGeneration changes after every change this process commits
	// to tokens, principals, identities, roles or bindings (TouchToken
	// aside); it may change more often. Cached authentications of an
	// older generation are not used.
	AccessGeneration() uint64
}

// Credential is a certificate's record as an mTLS credential.
type Credential struct {
	// PrincipalID is the principal the certificate authenticates as.
	PrincipalID string
	// TokenID is, for a credential a sign-in minted (a person
	// certificate, or a client certificate issued to the principal with
	// the sign-in's token or one of its certificates), the API token of
	// that sign-in; "" for any other credential.
	TokenID string
	// TokenKnown says that TokenID names a stored token, and
	// TokenRevokedAt when that token was revoked (nil while it is not).
	TokenKnown     bool
	TokenRevokedAt *time.Time
}

// CertChecker validates a client certificate chain against the CAs of this
// server and says whether it has been revoked.
type CertChecker interface {
	// VerifyClient returns nil when leaf chains (through intermediates) to
	// one of the server's CAs for client authentication and is not revoked.
	VerifyClient(ctx context.Context, leaf *x509.Certificate, intermediates []*x509.Certificate, now time.Time) error
}

// Authenticator turns bearer tokens and client certificates into principals.
type Authenticator struct {
	store Store
	certs CertChecker
	now   func() time.Time
	// dummy is compared against when the token id is unknown, so an unknown
	// id costs the same as a wrong secret.
	dummy [32]byte

	// tokens caches verified tokens and their principals (tokencache.go).
	tokens *gencache.Cache[*cachedToken]

	// touched remembers when each token's last-used time was last written,
	// so a busy token costs one write a minute, not one per request.
	mu      sync.Mutex
	touched map[string]time.Time
}

// TouchInterval is how stale a token's recorded last-used time may get.
const TouchInterval = time.Minute

// NewAuthenticator returns an Authenticator. certs may be nil: client
// certificates are then refused.
func NewAuthenticator(st Store, certs CertChecker, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{store: st, certs: certs, now: now, tokens: gencache.New[*cachedToken](TokenCacheMaxAge, TokenCacheSize, nil), touched: map[string]time.Time{}}
}

// maxTokenLen bounds the bearer string before any work is done on it.
const maxTokenLen = 128

// Authenticate returns the principal a bearer token belongs to. An
// expired or revoked token, or one whose principal is disabled, fails.
//
// A token that verified is cached with its principal (tokencache.go), so
// the next requests read nothing from the store: the presented secret is
// still compared with the stored hash, and the expiry with the clock, on
// every request. A change made through this process (store writes move
// AccessGeneration) takes effect on the next request; one made by
// another process within TokenCacheMaxAge.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Principal, error) {
	if len(token) > maxTokenLen || !strings.HasPrefix(token, "cwt_") {
		return Principal{}, unauthenticated("malformed token")
	}
	id, secret, ok := strings.Cut(strings.TrimPrefix(token, "cwt_"), "_")
	if !ok || len(id) != 16 || secret == "" {
		return Principal{}, unauthenticated("malformed token")
	}
	h := sha256.Sum256([]byte(secret))
	// Both are read before the store is: a change committed after this
	// point moves the generation, so what is read below is not cached
	// past it, and the entry's age counts from here.
	gen := a.store.AccessGeneration()
	now := a.now()
	if e, ok := a.tokens.Get(id, gen, now); ok {
		// A wrong secret goes on to the store, as it would uncached: a
		// guess costs and tells the same whether the token is cached.
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			return a.fromCache(ctx, id, e, now)
		}
	}
	rec, err := a.store.GetToken(ctx, id)
	if err != nil {
		subtle.ConstantTimeCompare(h[:], a.dummy[:])
		if !errors.Is(err, ErrNotFound) {
			return Principal{}, unavailable(ctx, err)
		}
		return Principal{}, unauthenticated("unknown token " + id)
	}
	if subtle.ConstantTimeCompare(h[:], rec.SecretHash) != 1 {
		return Principal{}, unauthenticated("wrong secret for token " + id)
	}
	return a.admit(ctx, rec, gen, now)
}

// fromCache returns the principal of the cached token id, unless it has
// expired.
func (a *Authenticator) fromCache(ctx context.Context, id string, e *cachedToken, now time.Time) (Principal, error) {
	if !e.expires.IsZero() && !now.Before(e.expires) {
		a.tokens.Remove(id)
		return Principal{}, expiredToken(id, e.expires)
	}
	a.touch(ctx, id, now)
	return CopyPrincipal(e.principal), nil
}

// admit finishes authenticating the token rec (its secret already proved,
// or vouched for by a session): it must be neither revoked nor expired,
// and its principal enabled; the result is cached under gen.
func (a *Authenticator) admit(ctx context.Context, rec *Token, gen uint64, now time.Time) (Principal, error) {
	id := rec.ID
	if len(rec.SecretHash) != sha256.Size {
		return Principal{}, unauthenticated("token " + id + " has no valid stored hash")
	}
	if rec.RevokedAt != nil {
		return Principal{}, unauthenticated("token " + id + " was revoked")
	}
	if rec.ExpiresAt != nil && !now.Before(*rec.ExpiresAt) {
		return Principal{}, expiredToken(id, *rec.ExpiresAt)
	}
	p, err := a.load(ctx, rec.PrincipalID)
	if err != nil {
		return Principal{}, err
	}
	p.Auth, p.AuthExpiresAt, p.Via = "token:"+id, rec.ExpiresAt, rec.Via
	if strings.HasPrefix(rec.Via, "oidc:") {
		p.SignIn = id
	}
	e := &cachedToken{principal: CopyPrincipal(p)}
	copy(e.hash[:], rec.SecretHash) // checked above: 32 bytes
	if rec.ExpiresAt != nil {
		e.expires = *rec.ExpiresAt
		exp := e.expires
		e.principal.AuthExpiresAt = &exp
	}
	a.tokens.Put(id, gen, now, e)
	a.touch(ctx, id, now)
	return p, nil
}

func expiredToken(id string, at time.Time) error {
	return &AuthError{Reason: "token " + id + " expired",
		Public: "token " + id + " expired at " + at.UTC().Format(time.RFC3339)}
}

// AuthenticateCertificate returns the principal a verified client
// certificate maps to: its SAN URIs first, then its DNS names, then its
// e-mail addresses.
//
// A name alone proves nothing — any requester can put any name its scope
// allows into a CSR, and an ACME account any name it validated — so the
// certificate must also have been issued as a credential of that very
// principal: the issuance path records one only for a certificate issued
// to the principal itself, or by an administrator with principal:manage
// over it while the identity was registered, and never for ACME.
func (a *Authenticator) AuthenticateCertificate(ctx context.Context, leaf *x509.Certificate, intermediates []*x509.Certificate) (Principal, error) {
	if a.certs == nil {
		return Principal{}, unauthenticated("client certificates are not accepted")
	}
	if err := a.certs.VerifyClient(ctx, leaf, intermediates, a.now()); err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrUnavailable) {
			return Principal{}, unavailable(ctx, err)
		}
		return Principal{}, unauthenticated("client certificate: " + err.Error())
	}
	var names [][2]string
	for _, u := range leaf.URIs {
		names = append(names, [2]string{"uri", u.String()})
	}
	for _, d := range leaf.DNSNames {
		names = append(names, [2]string{"dns", strings.ToLower(d)})
	}
	for _, e := range leaf.EmailAddresses {
		names = append(names, [2]string{IdentityEmail, strings.ToLower(e)})
	}
	found := ""
	for _, n := range names {
		id, err := a.store.PrincipalByIdentity(ctx, n[0], n[1])
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				return Principal{}, unavailable(ctx, err)
			}
			continue
		}
		if found != "" && found != id {
			return Principal{}, unauthenticated("client certificate names map to more than one principal")
		}
		found = id
	}
	if found == "" {
		return Principal{}, unauthenticated("client certificate maps to no principal")
	}
	serial := pki.SerialHex(leaf.SerialNumber) // as the inventory writes it
	cred, err := a.store.ClientCredential(ctx, serial)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return Principal{}, unavailable(ctx, err)
		}
		cred = &Credential{}
	}
	if cred.PrincipalID != found {
		return Principal{}, unauthenticated("client certificate " + serial + " carries the identity of principal " + found +
			" but was not issued to it as a credential (issued to another requester, by ACME, or before the identity was registered):" +
			" register the identity first, then issue the certificate as that principal or as its administrator")
	}
	if err := signInEnded(serial, cred); err != nil {
		return Principal{}, err
	}
	p, err := a.load(ctx, found)
	if err != nil {
		return Principal{}, err
	}
	notAfter := leaf.NotAfter.UTC()
	p.Auth, p.AuthExpiresAt, p.SignIn = "mtls:"+serial, &notAfter, cred.TokenID
	return p, nil
}

// signInEnded refuses a person certificate whose sign-in has ended: the
// token it was issued to has been revoked (by an administrator, by the
// person signing out, or with its principal disabled). Revoking the token
// also revokes the certificate (access.CertificateRevoker); this check
// holds the line for the API should that publication have failed. A token
// that merely expired ends nothing: a certificate of 12 hours may outlive
// a sign-in of 8 by design.
func signInEnded(serial string, c *Credential) error {
	switch {
	case c.TokenID == "":
		return nil
	case !c.TokenKnown:
		return &AuthError{Reason: "client certificate " + serial + " was issued to the sign-in of token " + c.TokenID +
			", which this server does not hold; sign in again (certwright login --sso) and ask for a new certificate"}
	case c.TokenRevokedAt != nil:
		return &AuthError{Reason: "client certificate " + serial + " was issued to the sign-in of token " + c.TokenID +
			", which has been revoked (signed out); sign in again (certwright login --sso) and ask for a new certificate"}
	}
	return nil
}

func (a *Authenticator) load(ctx context.Context, id string) (Principal, error) {
	p, rec, err := a.store.LoadPrincipal(ctx, id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return Principal{}, unavailable(ctx, err)
		}
		return Principal{}, unauthenticated("principal " + id + " not found")
	}
	if rec.DisabledAt != nil {
		return Principal{}, unauthenticated("principal " + rec.Name + " is disabled")
	}
	return *p, nil
}

// touch records the token's use at most once per TouchInterval. A failed
// write costs only freshness.
func (a *Authenticator) touch(ctx context.Context, id string, now time.Time) {
	a.mu.Lock()
	last, ok := a.touched[id]
	if ok && now.Sub(last) < TouchInterval {
		a.mu.Unlock()
		return
	}
	if len(a.touched) > 100000 {
		clear(a.touched)
	}
	a.touched[id] = now
	a.mu.Unlock()
	_ = a.store.TouchToken(ctx, id, now)
}
