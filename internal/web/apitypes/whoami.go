package apitypes

import "time"

// Whoami describes the caller of GET /api/v1/whoami: who it is, what its
// roles let it do, and how this request authenticated.
type Whoami struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Bindings []Binding `json:"bindings"`
	// Permissions is every permission some binding grants, sorted; a
	// binding's scope may still narrow where it applies.
	Permissions []string `json:"permissions"`
	// Auth is "token:<id>" or "mtls:<serial>".
	Auth string `json:"auth"`
	// AuthMethod is "token" or "client_certificate".
	AuthMethod        string `json:"auth_method"`
	TokenID           string `json:"token_id,omitempty"`
	CertificateSerial string `json:"certificate_serial,omitempty"`
	// ExpiresAt is when the credential used stops working; absent when it
	// does not expire.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Via names the identity provider whose sign-in minted the token used
	// ("oidc:NAME"); absent for other credentials.
	Via string `json:"via,omitempty"`
}

// SSOProviders answers GET /api/v1/sso/providers: what a CLI needs to sign
// a person in at each provider (nothing secret).
type SSOProviders struct {
	Providers []SSOProvider `json:"providers"`
}

// SSOProvider is one identity provider as the CLI uses it: the issuer to
// discover, and the public client to sign in with.
type SSOProvider struct {
	Name     string   `json:"name"`
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// SSOTokenRequest is POST /api/v1/sso/token: an ID token the CLI obtained
// from Provider for its client, and the binder its nonce was made from
// (256 random bits, base64url without padding), which binds the sign-in
// to the server the CLI talks to.
type SSOTokenRequest struct {
	Provider string `json:"provider"`
	IDToken  string `json:"id_token"`
	Binder   string `json:"binder,omitempty"`
}

// SSOTokenResult is the short-lived Certwright token a verified ID token
// is exchanged for (the only copy of its secret).
type SSOTokenResult struct {
	Token     string    `json:"token"`
	TokenID   string    `json:"token_id"`
	Principal string    `json:"principal"`
	ExpiresAt time.Time `json:"expires_at"`
	// Created is true when this sign-in created the principal.
	Created bool `json:"created,omitempty"`
}
