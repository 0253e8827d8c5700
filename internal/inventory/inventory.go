// Package inventory owns the record of every certificate Certwright has
// issued and the filters used to find them.
package inventory

import (
	"time"

	"github.com/certwright/certwright/internal/keys"
)

// Status of an issued certificate.
type Status string

// Certificate states. Expiry is computed from NotAfter, not stored.
const (
	StatusValid   Status = "valid"
	StatusRevoked Status = "revoked"
)

// Certificate is one issued certificate with the facts operators search by.
type Certificate struct {
	Serial             string    `json:"serial"` // lowercase hex
	CAID               string    `json:"ca_id"`
	Profile            string    `json:"profile"`
	Requester          string    `json:"requester"`
	Subject            string    `json:"subject"`
	SANs               []string  `json:"sans"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	KeyAlgorithm       string    `json:"key_algorithm"` // RSA, ECDSA, Ed25519
	KeyBits            int       `json:"key_bits"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	Status             Status    `json:"status"`
	Fingerprint        string    `json:"sha256_fingerprint"`
	Tags               []string  `json:"tags"`
	LintWarnings       []string  `json:"lint_warnings"`
	DER                []byte    `json:"-"`
	// ManagedKey is set when the server generated the key and the profile
	// says to retain it (wrapped).
	ManagedKey *keys.Ref `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
}

// Filter selects certificates; zero fields do not filter.
type Filter struct {
	CAID    string
	Profile string
	Status  Status
	// SAN matches any subject alternative name exactly (case-insensitive).
	SAN string
	Tag string
	// ExpiringBefore keeps certificates whose NotAfter is before this time.
	ExpiringBefore time.Time
	Limit          int // 0 means the store's default (1000)
	// After is the serial to continue after (keyset paging, ordered by serial).
	After string
}
