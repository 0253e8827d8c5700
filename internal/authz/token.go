package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnauthenticated means no valid credential was presented. Its message
// never says which part was wrong.
var ErrUnauthenticated = errors.New("authz: missing or invalid token")

// TokenStore is the persistence token authentication needs.
type TokenStore interface {
	GetToken(ctx context.Context, id string) (*Token, error)
}

// NewToken makes a token for name with role. The returned string is shown
// to the user once; only rec (with a hash of the secret) is stored.
func NewToken(name string, role Role, now time.Time) (token string, rec *Token, err error) {
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
	return "cwt_" + id + "_" + sec, &Token{ID: id, Name: name, Role: role, SecretHash: h[:], CreatedAt: now.UTC()}, nil
}

// Authenticator checks bearer tokens against their stored hashes.
type Authenticator struct {
	store TokenStore
	// dummy is compared against when the token id is unknown, so an unknown
	// id costs the same as a wrong secret.
	dummy [32]byte
}

// NewAuthenticator returns an Authenticator over st.
func NewAuthenticator(st TokenStore) *Authenticator { return &Authenticator{store: st} }

// maxTokenLen bounds the bearer string before any work is done on it.
const maxTokenLen = 128

// Authenticate returns the principal a token belongs to.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Principal, error) {
	if len(token) > maxTokenLen || !strings.HasPrefix(token, "cwt_") {
		return Principal{}, ErrUnauthenticated
	}
	id, secret, ok := strings.Cut(strings.TrimPrefix(token, "cwt_"), "_")
	if !ok || len(id) != 16 || secret == "" {
		return Principal{}, ErrUnauthenticated
	}
	h := sha256.Sum256([]byte(secret))
	rec, err := a.store.GetToken(ctx, id)
	if err != nil {
		subtle.ConstantTimeCompare(h[:], a.dummy[:])
		if ctx.Err() != nil {
			return Principal{}, ctx.Err()
		}
		return Principal{}, ErrUnauthenticated
	}
	if subtle.ConstantTimeCompare(h[:], rec.SecretHash) != 1 {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Name: rec.Name, Role: rec.Role}, nil
}
