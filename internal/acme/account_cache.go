package acme

import (
	"slices"
	"time"
)

// Account cache bounds.
const (
	// AccountCacheMaxAge is how long a resolved account is used without
	// reading it again. It bounds how stale a change made by another
	// process writing the same database (another replica on PostgreSQL, a
	// CLI on the SQLite file) can be on this one: an account deactivated
	// or rolled over to a new key, an external account key revoked, a
	// provisioner disabled, changed or deleted there takes effect here
	// within AccountCacheMaxAge. A change made through this process takes
	// effect on the very next request: the store moves its ACME generation
	// with it (Store.ACMEGeneration), and an entry of an older generation
	// is never used. The provisioner cache follows the same rules.
	AccountCacheMaxAge = time.Second
	// AccountCacheSize bounds the cached accounts; a new one past it
	// evicts an arbitrary one.
	AccountCacheSize = 10000
)

// cloneAccount returns a copy of a sharing nothing with it.
func cloneAccount(a *Account) *Account {
	c := *a
	c.KeyJWK = slices.Clone(a.KeyJWK)
	c.Contact = slices.Clone(a.Contact)
	return &c
}

// cloneProvisioner returns a copy of p sharing nothing with it.
func cloneProvisioner(p *Provisioner) *Provisioner {
	c := *p
	c.Challenges = slices.Clone(p.Challenges)
	c.AllowNames = slices.Clone(p.AllowNames)
	return &c
}
