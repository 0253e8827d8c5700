// Package acme owns the ACME protocol's state (RFC 8555): provisioners,
// accounts, orders, authorizations, challenges, external account binding
// keys, nonces, rate limits and renewal information (RFC 9773). It holds no
// HTTP and no JWS: the edge (web/acmeapi) verifies requests and hands this
// package the account key's thumbprint and the decoded payload.
package acme

import (
	"time"
)

// Status values of ACME objects (RFC 8555 §7.1.6).
const (
	StatusPending     = "pending"
	StatusReady       = "ready"
	StatusProcessing  = "processing"
	StatusValid       = "valid"
	StatusInvalid     = "invalid"
	StatusDeactivated = "deactivated"
	StatusExpired     = "expired"
	StatusRevoked     = "revoked"
)

// Challenge types.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeDNS01     = "dns-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// ChallengeTypes lists the challenge types Certwright validates.
func ChallengeTypes() []string {
	return []string{ChallengeHTTP01, ChallengeDNS01, ChallengeTLSALPN01}
}

// Identifier types.
const (
	IdentifierDNS = "dns"
	IdentifierIP  = "ip"
)

// Provisioner is one ACME endpoint: its own directory, issuing on one CA
// under one profile.
type Provisioner struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// CAID is the issuing CA's ID; CAName is filled in for display.
	CAID    string `json:"ca_id"`
	CAName  string `json:"ca,omitempty"`
	Profile string `json:"profile"`
	// Challenges are the challenge types offered, in order.
	Challenges []string `json:"challenges"`
	// AllowNames limits the identifiers orders may name (authz.MatchName
	// patterns: exact, *.suffix, CIDR); empty allows every name the
	// profile allows.
	AllowNames []string `json:"allow_names"`
	RequireEAB bool     `json:"require_eab"`
	// AllowSubjectFields keeps a CSR's whole subject (O, OU, C, ...) in
	// the certificate. Off (the default), only the common name is kept,
	// and only when it is one of the order's identifiers: ACME proves
	// control of names, nothing else.
	AllowSubjectFields bool      `json:"allow_subject_fields"`
	TermsOfService     string    `json:"terms_of_service,omitempty"`
	Website            string    `json:"website,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
	CreatedBy          string    `json:"created_by"`
	// DisabledAt is when an operator disabled the provisioner (zero while
	// enabled): it then takes no new accounts, orders, challenge responses
	// or finalizations, while revocation and renewal information go on.
	DisabledAt time.Time `json:"disabled_at,omitzero"`
	DisabledBy string    `json:"disabled_by,omitempty"`
}

// Disabled reports whether an operator disabled the provisioner.
func (p *Provisioner) Disabled() bool { return !p.DisabledAt.IsZero() }

// Account is an ACME account: a public key registered with one provisioner.
type Account struct {
	ID            string `json:"id"`
	ProvisionerID string `json:"provisioner_id"`
	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint (base64url) of the
	// account key; unique per provisioner.
	KeyThumbprint string `json:"key_thumbprint"`
	// KeyJWK is the account's public key as a JSON Web Key.
	KeyJWK      []byte    `json:"-"`
	Contact     []string  `json:"contact"`
	Status      string    `json:"status"`
	TermsAgreed bool      `json:"terms_of_service_agreed"`
	EABKeyID    string    `json:"eab_key_id,omitempty"`
	PrincipalID string    `json:"principal_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedIP   string    `json:"created_ip"`
}

// Identifier is an ACME identifier (RFC 8555 §9.7.7, RFC 8738).
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Order is a request for one certificate.
type Order struct {
	ID            string       `json:"id"`
	AccountID     string       `json:"account_id"`
	ProvisionerID string       `json:"provisioner_id"`
	Status        string       `json:"status"`
	Identifiers   []Identifier `json:"identifiers"`
	// NotBefore and NotAfter are the validity the client asked for; zero
	// when it asked for none.
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	Expires   time.Time `json:"expires"`
	// AuthzIDs are the order's authorizations, one per identifier, in
	// identifier order.
	AuthzIDs []string `json:"authz_ids"`
	Error    *Problem `json:"error,omitempty"`
	// CertSerial is the issued certificate's serial once valid.
	CertSerial string `json:"cert_serial,omitempty"`
	// Replaces is the ARI certificate ID (RFC 9773) of the certificate
	// this order renews, if the client said so.
	Replaces  string    `json:"replaces,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Authorization proves control of one identifier for one account.
type Authorization struct {
	ID            string     `json:"id"`
	AccountID     string     `json:"account_id"`
	ProvisionerID string     `json:"provisioner_id"`
	Identifier    Identifier `json:"identifier"`
	// Wildcard is set when the order asked for "*." + Identifier.Value.
	Wildcard   bool        `json:"wildcard"`
	Status     string      `json:"status"`
	Expires    time.Time   `json:"expires"`
	Challenges []Challenge `json:"challenges"`
	CreatedAt  time.Time   `json:"created_at"`
}

// Challenge is one way to prove control of an authorization's identifier.
type Challenge struct {
	ID      string `json:"id"`
	AuthzID string `json:"authz_id"`
	Type    string `json:"type"`
	Token   string `json:"token"`
	Status  string `json:"status"`
	// Validated is when validation succeeded, or failed (for invalid).
	Validated time.Time `json:"validated,omitzero"`
	Error     *Problem  `json:"error,omitempty"`
}

// EABKey is an external account binding key (RFC 8555 §7.3.4). The HMAC
// key is shown once at creation and stored sealed under the KEK.
type EABKey struct {
	ID            string `json:"id"`
	ProvisionerID string `json:"provisioner_id"`
	// PrincipalID is the principal whose roles and scopes the bound
	// account inherits; PrincipalName is for display.
	PrincipalID   string `json:"principal_id"`
	PrincipalName string `json:"principal,omitempty"`
	Description   string `json:"description,omitempty"`
	// Sealed is the HMAC key sealed by a Sealer; never serialised.
	Sealed    []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// AccountID is set once the key has bound an account; a key binds
	// one account only.
	AccountID string    `json:"account_id,omitempty"`
	BoundAt   time.Time `json:"bound_at,omitzero"`
	// RevokedAt is when an operator revoked the key (zero until then): a
	// revoked key binds no account, and the account it bound is
	// deactivated.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// DeleteCounts is what deleting a provisioner ended: the accounts
// deactivated, the pending or ready orders made invalid and the external
// account keys revoked.
type DeleteCounts struct {
	Accounts int64 `json:"accounts_deactivated"`
	Orders   int64 `json:"orders_ended"`
	EABKeys  int64 `json:"eab_keys_revoked"`
}
