package authz

// CachedTokens is how many tokens a holds in its cache.
func CachedTokens(a *Authenticator) int { return a.tokens.Len() }
