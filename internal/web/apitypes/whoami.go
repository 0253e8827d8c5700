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
}
