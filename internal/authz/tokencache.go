package authz

import (
	"slices"
	"time"
)

// Token cache bounds.
const (
	// TokenCacheMaxAge is how long a cached token and principal are used
	// without reading them again. It bounds how stale a change made by
	// another process writing the same database (another replica on
	// PostgreSQL, a CLI on the SQLite file) can be on this one: a token
	// revoked, a principal disabled or a role binding removed there stops
	// working here within TokenCacheMaxAge. A change made through this
	// process takes effect on the very next request: the store moves its
	// AccessGeneration with it, and an entry of an older generation is
	// never used.
	TokenCacheMaxAge = time.Second
	// TokenCacheSize bounds the cached tokens; a new one past it evicts
	// an arbitrary one.
	TokenCacheSize = 10000
)

// The token cache (a gencache.Cache of *cachedToken, by token ID) holds
// what a successful token authentication read from the store. Only tokens
// whose secret verified and whose principal was enabled are added, so a
// guesser cannot fill it. An entry is a hint, never a credential: every
// use compares the presented secret with the stored hash and checks
// expiry against the clock. Entries are never changed once added.
type cachedToken struct {
	hash    [32]byte
	expires time.Time // zero: never
	// principal is what the uncached path returns, Auth and AuthExpiresAt
	// filled.
	principal Principal
}

// CopyPrincipal returns p with its own Bindings, so that a caller changing
// a binding cannot change what the next request sees: what a cache of
// principals (this token cache, the SCEP service's) hands out.
func CopyPrincipal(p Principal) Principal {
	p.Bindings = slices.Clone(p.Bindings)
	return p
}
