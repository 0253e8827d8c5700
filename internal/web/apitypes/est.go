package apitypes

import "time"

// CreateESTProvisionerRequest creates an EST provisioner, served at
// /.well-known/est/NAME/ (RFC 7030).
type CreateESTProvisionerRequest struct {
	Name    string `json:"name"`
	CA      string `json:"ca"` // id or name
	Profile string `json:"profile"`
	// Auth is client-cert, basic, any (either) or both (IDevID and secret).
	Auth string `json:"auth"`
	// BootstrapPEM is the manufacturer (IDevID) CA bundle, PEM.
	BootstrapPEM string `json:"bootstrap_pem,omitempty"`
	// IdentityFrom is "serial" (default) or "san:PATTERN".
	IdentityFrom string `json:"identity_from,omitempty"`
	ServerKeyGen bool   `json:"server_keygen,omitempty"`
	// ReenrollGrace is a Go duration ("168h"); empty: 7 days.
	ReenrollGrace string `json:"reenroll_grace,omitempty"`
	// AllowedIdentities, when not empty, are the only device identities
	// the provisioner enrols (from IDevIDs and secrets alike).
	AllowedIdentities []string `json:"allowed_identities,omitempty"`
}

// UpdateESTProvisionerRequest changes an EST provisioner; absent fields
// stay as they are.
type UpdateESTProvisionerRequest struct {
	CA            *string `json:"ca,omitempty"`
	Profile       *string `json:"profile,omitempty"`
	Auth          *string `json:"auth,omitempty"`
	BootstrapPEM  *string `json:"bootstrap_pem,omitempty"`
	IdentityFrom  *string `json:"identity_from,omitempty"`
	ServerKeyGen  *bool   `json:"server_keygen,omitempty"`
	ReenrollGrace *string `json:"reenroll_grace,omitempty"`
	// AllowedIdentities replaces the allow-list; an empty list lifts it.
	AllowedIdentities *[]string `json:"allowed_identities,omitempty"`
}

// ESTProvisioner is an EST provisioner with the URL devices use.
type ESTProvisioner struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	CAID    string `json:"ca_id"`
	CA      string `json:"ca"`
	Profile string `json:"profile"`
	Auth    string `json:"auth"`
	// BootstrapCAs lists the bundle's certificates: subject and SHA-256.
	BootstrapCAs  []string   `json:"bootstrap_cas"`
	IdentityFrom  string     `json:"identity_from"`
	ServerKeyGen  bool       `json:"server_keygen"`
	ReenrollGrace string     `json:"reenroll_grace"`
	URL           string     `json:"url"`
	CreatedAt     time.Time  `json:"created_at"`
	CreatedBy     string     `json:"created_by"`
	Disabled      bool       `json:"disabled"`
	DisabledAt    *time.Time `json:"disabled_at,omitempty"`
	DisabledBy    string     `json:"disabled_by,omitempty"`
	// AllowedIdentities is the identity allow-list (empty: none).
	AllowedIdentities []string `json:"allowed_identities,omitempty"`
}

// ESTProvisionerList is the answer to GET /api/v1/est/provisioners.
type ESTProvisionerList struct {
	Provisioners []ESTProvisioner `json:"provisioners"`
}

// UpdatedESTProvisioner is an updated provisioner and what changed.
type UpdatedESTProvisioner struct {
	Provisioner ESTProvisioner      `json:"provisioner"`
	Changes     []ProvisionerChange `json:"changes"`
}

// CreateESTSecretRequest creates a one-time enrolment secret.
type CreateESTSecretRequest struct {
	Identity string `json:"identity"`
	// TTL is a Go duration ("24h"); empty: a day.
	TTL string `json:"ttl,omitempty"`
}

// NewESTSecret is a created secret: Secret is shown this once.
type NewESTSecret struct {
	ID          string    `json:"id"`
	Provisioner string    `json:"provisioner"`
	Identity    string    `json:"identity"`
	Secret      string    `json:"secret"`
	ExpiresAt   time.Time `json:"expires_at"`
	URL         string    `json:"url"`
}

// ESTSecret is a stored secret, without the secret.
type ESTSecret struct {
	ID        string     `json:"id"`
	Identity  string     `json:"identity"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	UsedFrom  string     `json:"used_from,omitempty"`
	// Status is unused, used, expired or revoked.
	Status    string     `json:"status"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// ESTSecretList is the answer to GET .../secrets.
type ESTSecretList struct {
	Secrets []ESTSecret `json:"secrets"`
}
