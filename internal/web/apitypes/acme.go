package apitypes

import "time"

// CreateProvisionerRequest creates an ACME provisioner: one directory
// (RFC 8555 §7.1.1) issuing on one CA under one profile.
type CreateProvisionerRequest struct {
	Name    string `json:"name"`
	CA      string `json:"ca"` // id or name
	Profile string `json:"profile"`
	// Challenges are the challenge types offered (http-01, dns-01,
	// tls-alpn-01); empty offers all three.
	Challenges []string `json:"challenges,omitempty"`
	// AllowNames limits the identifiers orders may name (a.example.internal,
	// *.example.internal, 10.0.0.0/8); empty allows what the profile allows.
	AllowNames []string `json:"allow_names,omitempty"`
	// RequireEAB makes new accounts present an external account binding
	// (RFC 8555 §7.3.4).
	RequireEAB bool `json:"require_eab,omitempty"`
	// AllowSubjectFields keeps the CSR's subject fields (O, OU, C, ...);
	// by default a certificate carries only a validated common name.
	AllowSubjectFields bool   `json:"allow_subject_fields,omitempty"`
	TermsOfService     string `json:"terms_of_service,omitempty"`
	Website            string `json:"website,omitempty"`
}

// Provisioner is an ACME provisioner with the URL ACME clients start from.
type Provisioner struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	CAID               string    `json:"ca_id"`
	CA                 string    `json:"ca,omitempty"`
	Profile            string    `json:"profile"`
	Challenges         []string  `json:"challenges"`
	AllowNames         []string  `json:"allow_names"`
	RequireEAB         bool      `json:"require_eab"`
	AllowSubjectFields bool      `json:"allow_subject_fields"`
	TermsOfService     string    `json:"terms_of_service,omitempty"`
	Website            string    `json:"website,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
	CreatedBy          string    `json:"created_by"`
	// Disabled provisioners take no new accounts, orders, challenge
	// responses or finalizations; revocation and renewal information go on.
	Disabled   bool       `json:"disabled"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	DisabledBy string     `json:"disabled_by,omitempty"`
	// DirectoryURL is the ACME directory of the provisioner, as reached
	// through the host the API was called on.
	DirectoryURL string `json:"directory_url"`
}

// UpdateProvisionerRequest changes an ACME provisioner's policy: only
// the fields present change (an empty list clears allow_names; challenges
// must keep at least one type).
type UpdateProvisionerRequest struct {
	CA                 *string   `json:"ca,omitempty"` // id or name
	Profile            *string   `json:"profile,omitempty"`
	Challenges         *[]string `json:"challenges,omitempty"`
	AllowNames         *[]string `json:"allow_names,omitempty"`
	RequireEAB         *bool     `json:"require_eab,omitempty"`
	AllowSubjectFields *bool     `json:"allow_subject_fields,omitempty"`
	TermsOfService     *string   `json:"terms_of_service,omitempty"`
	Website            *string   `json:"website,omitempty"`
}

// ProvisionerChange is one field an update changed.
type ProvisionerChange struct {
	Field string `json:"field"`
	From  any    `json:"from"`
	To    any    `json:"to"`
}

// UpdatedProvisioner is a provisioner after an update, with what changed
// (empty when the update changed nothing).
type UpdatedProvisioner struct {
	Provisioner
	Changes []ProvisionerChange `json:"changes"`
}

// DeletedProvisioner is a provisioner just deleted, with what its
// deletion ended. Its accounts, orders and certificates stay on record.
type DeletedProvisioner struct {
	Provisioner
	AccountsDeactivated int64 `json:"accounts_deactivated"`
	OrdersEnded         int64 `json:"orders_ended"`
	EABKeysRevoked      int64 `json:"eab_keys_revoked"`
}

// ProvisionerList is every ACME provisioner.
type ProvisionerList struct {
	Provisioners []Provisioner `json:"provisioners"`
}

// CreateEABKeyRequest makes an external account binding key. The account
// it binds inherits Principal's roles and scopes.
type CreateEABKeyRequest struct {
	Principal   string `json:"principal,omitempty"` // id or name
	Description string `json:"description,omitempty"`
}

// NewEABKey is an external account binding key just made: the only time
// its HMAC key is shown.
type NewEABKey struct {
	KeyID string `json:"key_id"`
	// HMACKey is base64url without padding, as ACME clients take it.
	HMACKey      string `json:"hmac_key"`
	Provisioner  string `json:"provisioner"`
	Principal    string `json:"principal,omitempty"`
	DirectoryURL string `json:"directory_url"`
}

// EABKey describes an external account binding key; never its HMAC key.
type EABKey struct {
	ID            string    `json:"id"`
	ProvisionerID string    `json:"provisioner_id"`
	PrincipalID   string    `json:"principal_id"`
	Principal     string    `json:"principal,omitempty"`
	Description   string    `json:"description,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	CreatedBy     string    `json:"created_by"`
	// AccountID is the account the key bound, once it did; a key binds
	// one account only.
	AccountID string     `json:"account_id,omitempty"`
	BoundAt   *time.Time `json:"bound_at,omitempty"`
	// A revoked key binds no account; the account it bound is deactivated.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// RevokedEABKey is an external account binding key just revoked;
// AccountDeactivated says whether the account it bound was deactivated
// by the revocation.
type RevokedEABKey struct {
	EABKey
	AccountDeactivated bool `json:"account_deactivated"`
}

// EABKeyList is a provisioner's external account binding keys.
type EABKeyList struct {
	Keys []EABKey `json:"keys"`
}

// RenewNowRequest moves the ARI renewal window (RFC 9773) of every
// unexpired, unrevoked certificate matching all given fields to now; at
// least one is required.
type RenewNowRequest struct {
	CA         string `json:"ca,omitempty"` // id or name
	Profile    string `json:"profile,omitempty"`
	SAN        string `json:"san,omitempty"`
	SPKISHA256 string `json:"spki_sha256,omitempty"`
	Serial     string `json:"serial,omitempty"`
}

// RenewNowResult lists the certificates whose renewal window moved.
type RenewNowResult struct {
	Count   int      `json:"count"`
	Serials []string `json:"serials"`
}
