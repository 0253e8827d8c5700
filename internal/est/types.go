// Package est owns EST device enrolment (RFC 7030): provisioners, the
// device identities they accept (a manufacturer IDevID certificate, a
// one-time enrolment secret, or the device's current certificate on
// re-enrolment), and enrolment through the one issuance path. It holds no
// HTTP: the edge (web/estapi) decodes requests, hands this package the
// CSR, the TLS client chain and the HTTP Basic credentials, and encodes
// the answers with the helpers in encode.go.
package est

import (
	"errors"
	"slices"
	"time"
)

// Authentication modes of a provisioner.
const (
	// AuthClientCert takes a TLS client certificate chaining to the
	// provisioner's bootstrap (IDevID manufacturer) CA bundle.
	AuthClientCert = "client-cert"
	// AuthBasic takes a one-time enrolment secret over HTTP Basic.
	AuthBasic = "basic"
	// AuthAny takes either. A device presenting both must pass both, for
	// the same identity, except that a client certificate which is no
	// IDevID of the provisioner is ignored next to a valid secret.
	AuthAny = "any"
	// AuthBoth needs both: an IDevID and a one-time secret, for the same
	// identity.
	AuthBoth = "both"
)

// AuthModes lists the authentication modes.
func AuthModes() []string { return []string{AuthClientCert, AuthBasic, AuthAny, AuthBoth} }

// Identity sources of an IDevID certificate.
const (
	// IdentitySerial takes the subject's serialNumber attribute (X.520,
	// the IEEE 802.1AR device serial number) as it is; it must be one
	// word of letters, digits, '-' and '_' (no dots), so that a serial the
	// manufacturer chose cannot name a DNS host.
	IdentitySerial = "serial"
	// IdentitySerialPrefix, followed by a DNS suffix such as
	// .devices.example.com, takes the serial number, lowercased, as one
	// DNS label under that suffix (sn0007.devices.example.com).
	IdentitySerialPrefix = "serial:"
	// IdentitySANPrefix, followed by a name pattern (exact, *.suffix),
	// takes the first DNS name of the IDevID matching it.
	IdentitySANPrefix = "san:"
)

// DefaultReenrollGrace is how long after its expiry a device certificate
// still authenticates a re-enrolment when the provisioner names no grace.
const DefaultReenrollGrace = 7 * 24 * time.Hour

// MaxAllowedIdentities bounds a provisioner's identity allow-list.
const MaxAllowedIdentities = 10000

// MaxReenrollGrace bounds a provisioner's grace period.
const MaxReenrollGrace = 90 * 24 * time.Hour

// Operations of the EST protocol this server serves.
const (
	OpCACerts      = "cacerts"
	OpEnroll       = "simpleenroll"
	OpReenroll     = "simplereenroll"
	OpCSRAttrs     = "csrattrs"
	OpServerKeyGen = "serverkeygen"
)

// Errors the edges map to statuses.
var (
	// ErrInvalid marks a malformed request or one that breaks a rule (400).
	ErrInvalid = errors.New("est: invalid request")
	// ErrNotFound marks an unknown provisioner or secret (404).
	ErrNotFound = errors.New("est: not found")
	// ErrConflict marks a state conflict (409).
	ErrConflict = errors.New("est: conflict")
	// ErrUnauthenticated marks a device whose credential did not verify
	// (401).
	ErrUnauthenticated = errors.New("est: device not authenticated")
	// ErrRefused marks an authenticated device asking for what it may not
	// have (403).
	ErrRefused = errors.New("est: enrolment refused")
	// ErrRateLimited marks a source past its budget of failed
	// authentications (429).
	ErrRateLimited = errors.New("est: too many failed authentications")
)

// Provisioner is one EST endpoint (/.well-known/est/NAME): it issues on
// one CA under one profile to the devices its authentication admits.
type Provisioner struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	CAID    string `json:"ca_id"`
	CAName  string `json:"ca,omitempty"`
	Profile string `json:"profile"`
	// Auth is AuthClientCert, AuthBasic, AuthAny or AuthBoth.
	Auth string `json:"auth"`
	// BootstrapPEM is the manufacturer CA bundle IDevIDs chain to (PEM);
	// empty for AuthBasic.
	BootstrapPEM string `json:"bootstrap_pem,omitempty"`
	// IdentityFrom is IdentitySerial, IdentitySerialPrefix+suffix or
	// IdentitySANPrefix+pattern.
	IdentityFrom string `json:"identity_from"`
	// AllowedIdentities, sorted, when not empty, are the only identities
	// the provisioner enrols, from IDevIDs and secrets alike.
	AllowedIdentities []string `json:"allowed_identities,omitempty"`
	// ServerKeyGen serves /serverkeygen.
	ServerKeyGen bool `json:"server_keygen"`
	// ReenrollGrace is how long after its expiry the device's current
	// certificate still authenticates /simplereenroll.
	ReenrollGrace time.Duration `json:"reenroll_grace"`
	CreatedAt     time.Time     `json:"created_at"`
	CreatedBy     string        `json:"created_by"`
	DisabledAt    time.Time     `json:"disabled_at,omitzero"`
	DisabledBy    string        `json:"disabled_by,omitempty"`
}

// Disabled reports whether an operator disabled the provisioner.
func (p *Provisioner) Disabled() bool { return !p.DisabledAt.IsZero() }

func (p *Provisioner) allowsCert() bool  { return p.Auth != AuthBasic }
func (p *Provisioner) allowsBasic() bool { return p.Auth != AuthClientCert }

// allowsIdentity reports whether the allow-list, if any, names id.
func (p *Provisioner) allowsIdentity(id string) bool {
	if len(p.AllowedIdentities) == 0 {
		return true
	}
	_, ok := slices.BinarySearch(p.AllowedIdentities, id)
	return ok
}

// Secret is a one-time enrolment secret: the device named Identity may
// enrol once with it, over HTTP Basic, before ExpiresAt. Only the hash of
// the secret is kept.
type Secret struct {
	ID            string    `json:"id"`
	ProvisionerID string    `json:"provisioner_id"`
	Identity      string    `json:"identity"`
	Hash          []byte    `json:"-"`
	CreatedAt     time.Time `json:"created_at"`
	CreatedBy     string    `json:"created_by"`
	ExpiresAt     time.Time `json:"expires_at"`
	UsedAt        time.Time `json:"used_at,omitzero"`
	UsedFrom      string    `json:"used_from,omitempty"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	RevokedBy     string    `json:"revoked_by,omitempty"`
}
