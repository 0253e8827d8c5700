package apitypes

import "time"

// CreateSCEPProvisionerRequest creates a SCEP provisioner, served at
// /scep/NAME, issuing on one CA under one profile.
type CreateSCEPProvisionerRequest struct {
	Name    string `json:"name"`
	CA      string `json:"ca"` // id or name
	Profile string `json:"profile"`
	// Challenge is static (one secret every device sends) or dynamic
	// (one-time challenges from POST .../challenges).
	Challenge string `json:"challenge"`
	// StaticChallenge is the static secret (static only); the server
	// keeps a salted hash of it.
	StaticChallenge string `json:"static_challenge,omitempty"`
	// AllowLegacyCrypto admits devices that encrypt with DES or 3DES or
	// sign with SHA-1 (Debian's scepclient 2.1); off (the default),
	// their requests are refused with badAlg.
	AllowLegacyCrypto bool `json:"allow_legacy_crypto,omitempty"`
}

// UpdateSCEPProvisionerRequest changes a SCEP provisioner; absent fields
// stay as they are.
type UpdateSCEPProvisionerRequest struct {
	Profile           *string `json:"profile,omitempty"`
	StaticChallenge   *string `json:"static_challenge,omitempty"`
	AllowLegacyCrypto *bool   `json:"allow_legacy_crypto,omitempty"`
}

// SCEPProvisioner is a SCEP provisioner and the URL devices use.
type SCEPProvisioner struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CAID      string `json:"ca_id"`
	CA        string `json:"ca,omitempty"`
	Profile   string `json:"profile"`
	Challenge string `json:"challenge"`
	// AllowLegacyCrypto: see CreateSCEPProvisionerRequest.
	AllowLegacyCrypto bool   `json:"allow_legacy_crypto"`
	Principal         string `json:"principal"`
	RASerial          string `json:"ra_serial"`
	// RASHA256 is the RA certificate's SHA-256 fingerprint: devices pin it
	// (scepclient -ca-fingerprint) so that no one on the path can stand in
	// for the RA and read the challenge.
	RASHA256 string `json:"ra_sha256"`
	// RANotAfter is when the RA certificate expires (shown by show and
	// rotate-ra): rotate it before then (certwright scep rotate-ra NAME).
	RANotAfter *time.Time `json:"ra_not_after,omitempty"`
	URL        string     `json:"url"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	Disabled   bool       `json:"disabled"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	DisabledBy string     `json:"disabled_by,omitempty"`
}

// SCEPProvisionerList lists SCEP provisioners.
type SCEPProvisionerList struct {
	Provisioners []SCEPProvisioner `json:"provisioners"`
}

// CreateSCEPChallengeRequest asks for a one-time challenge.
type CreateSCEPChallengeRequest struct {
	// TTL is a Go duration ("1h", "30m"); empty takes the default (1h).
	TTL string `json:"ttl,omitempty"`
	// Identity, when set, is exactly the name the CSR may ask for: its
	// common name and every subject alternative name must be it.
	Identity string `json:"identity,omitempty"`
}

// SCEPChallenge is a one-time challenge, shown once.
type SCEPChallenge struct {
	Challenge   string    `json:"challenge"`
	ID          string    `json:"id"`
	Provisioner string    `json:"provisioner"`
	Identity    string    `json:"identity,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	URL         string    `json:"url"`
	RASHA256    string    `json:"ra_sha256"`
}
