package authz

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Session is a person's signed-in session of the web console, kept on the
// server. The browser holds only a random secret (in a __Host- cookie);
// the server stores its SHA-256. A session never holds a credential: it
// names how its principal signed in (Auth, "token:ID" for an API token),
// and every request through it checks that credential again (Resume), so a
// revoked token or a disabled principal ends it at once.
type Session struct {
	IDHash      string // hex SHA-256 of the cookie's secret
	PrincipalID string
	Auth        string // how it signed in: "token:ID"
	Source      string // the address it signed in from
	CreatedAt   time.Time
	LastSeenAt  time.Time
	ExpiresAt   time.Time // the absolute end, whatever the activity
	EndedAt     *time.Time
	EndReason   string // "signed out", "idle", "expired", "credential refused"
}

// ErrSessionCredential is returned by Resume for a session whose sign-in
// method it does not know.
var ErrSessionCredential = errors.New("authz: the session names no credential this server can check")

// Resume returns the principal of a session signed in with an API token
// (auth "token:ID"), checking what Authenticate checks — the token is
// neither revoked nor expired and its principal is enabled — through the
// same cache and with the same bounds, but without the token's secret: the
// holder proved it at sign-in and holds the session's own secret since.
func (a *Authenticator) Resume(ctx context.Context, auth string) (Principal, error) {
	id, ok := strings.CutPrefix(auth, "token:")
	if !ok || len(id) != 16 {
		return Principal{}, ErrSessionCredential
	}
	gen := a.store.AccessGeneration()
	now := a.now()
	if e, ok := a.tokens.Get(id, gen, now); ok {
		return a.fromCache(ctx, id, e, now)
	}
	rec, err := a.store.GetToken(ctx, id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return Principal{}, unavailable(ctx, err)
		}
		return Principal{}, unauthenticated("unknown token " + id)
	}
	return a.admit(ctx, rec, gen, now)
}
