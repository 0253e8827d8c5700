// Package inventory owns the record of every certificate Certwright has
// issued and the filters used to find them.
package inventory

import (
	"fmt"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// Status of an issued certificate.
type Status string

// Certificate states. Expiry is computed from NotAfter, not stored.
const (
	StatusValid   Status = "valid"
	StatusRevoked Status = "revoked"
)

// ServerOwned reports whether the server requested c for itself (its own
// TLS certificate). It goes by the requester's principal ID, which no
// stored principal can share, never by its name.
func (c *Certificate) ServerOwned() bool { return c.RequesterID == authz.System().ID }

// Certificate is one issued certificate with the facts operators search by.
type Certificate struct {
	Serial    string `json:"serial"` // lowercase hex
	CAID      string `json:"ca_id"`
	Profile   string `json:"profile"`
	Requester string `json:"requester"`
	// RequesterID is the requesting principal's ID: what identifies it,
	// where Requester (its name) is for people to read. The server's own
	// certificates carry authz.System().ID (see ServerOwned).
	RequesterID        string    `json:"requester_id,omitempty"`
	Subject            string    `json:"subject"`
	SANs               []string  `json:"sans"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	KeyAlgorithm       string    `json:"key_algorithm"` // RSA, ECDSA, Ed25519
	KeyBits            int       `json:"key_bits"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	Status             Status    `json:"status"`
	Fingerprint        string    `json:"sha256_fingerprint"`
	// SPKISHA256 is the hex SHA-256 of the SubjectPublicKeyInfo, the key's
	// identity across certificates (used to revoke everything on a leaked key).
	SPKISHA256   string   `json:"spki_sha256"`
	Tags         []string `json:"tags"`
	LintWarnings []string `json:"lint_warnings"`
	DER          []byte   `json:"-"`
	// ManagedKey is set when the server generated the key and the profile
	// says to retain it (wrapped).
	ManagedKey *keys.Ref `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	// RenewNowAt is set when an operator asked for the certificate to be
	// replaced now (acme renew-now): its renewal window starts then.
	RenewNowAt time.Time `json:"renew_now_at,omitzero"`
	// Revocation is set once the certificate is revoked.
	Revocation *Revocation `json:"revocation,omitempty"`

	// Source is SourceIssued, SourceImported or SourceDiscovered.
	Source Source `json:"source"`
	// Owner is who answers for the certificate (a team or person), free text.
	Owner string `json:"owner,omitempty"`
	// Issuer is the issuer's distinguished name (imported certificates).
	Issuer string `json:"issuer,omitempty"`
	// IssuerSerial is an imported certificate's own serial number in
	// lowercase hex; its inventory Serial is its SHA-256 fingerprint,
	// because serials are unique only per issuer.
	IssuerSerial string `json:"issuer_serial,omitempty"`
	// Chain is an imported certificate's issuer chain as given, nearest first.
	Chain [][]byte `json:"-"`
	// AutoRenew is set when the server renews the certificate itself at its
	// profile's renewal threshold (it holds the key, or may reuse it).
	AutoRenew bool `json:"auto_renew"`
	// Replaces is the serial of the certificate this one renewed.
	Replaces string `json:"replaces,omitempty"`
	// RenewedBy is the serial of the certificate that renewed this one.
	RenewedBy string `json:"renewed_by,omitempty"`
	// RenewalKind says how this certificate replaced its predecessor.
	RenewalKind RenewalKind `json:"renewal_kind,omitempty"`
	// RenewFailures counts failed automatic renewals since the last success;
	// RenewRetryAt is when the next attempt is due and RenewError the last error.
	RenewFailures int       `json:"renew_failures,omitempty"`
	RenewRetryAt  time.Time `json:"renew_retry_at,omitzero"`
	RenewError    string    `json:"renew_error,omitempty"`
	// SupersedeAt is when this renewed certificate is revoked as superseded.
	SupersedeAt time.Time `json:"supersede_at,omitzero"`
	// ClientPrincipalID is the principal this certificate may authenticate
	// as over mTLS, decided by the issuance path; "" for none (ACME, the
	// server's own, certificates that cannot authenticate clients). It is
	// written with the certificate and read back only by
	// authentication (ClientCredential), not by listings.
	ClientPrincipalID string `json:"-"`
	// ClientTokenID is, for a person certificate (issue.Request.Person),
	// the ID of the API token of the sign-in that asked for it; "" for
	// every other certificate. Authentication refuses the certificate once
	// that token is revoked, and revoking the token revokes it. Written
	// with ClientPrincipalID, read back only by authentication and by
	// that revocation.
	ClientTokenID string `json:"-"`
	// Completes is set by ACME finalization only: the order the
	// certificate completes. The insert marks that order valid with this
	// certificate in the same transaction, provided the finalization
	// still holds the order's claim; otherwise nothing is stored. Never
	// read back.
	Completes *OrderClaim `json:"-"`
}

// OrderClaim names an ACME order in processing, the claim its
// finalization holds and the time to record as the order's update.
type OrderClaim struct {
	ID, Claim string
	UpdatedAt time.Time
}

// Source says where a certificate in the inventory came from.
type Source string

// Sources.
const (
	SourceIssued   Source = "issued"
	SourceImported Source = "imported"
	// SourceDiscovered: issued elsewhere and found served by a network
	// scan, not imported by anyone. Like an imported certificate it is
	// keyed by its fingerprint, monitored for expiry and never renewed
	// here.
	SourceDiscovered Source = "discovered"
	// SourceACME is a filter value, never stored: the certificates
	// issued here to an ACME client (tagged "acme", requested by an
	// "acme:" name, a namespace reserved for ACME accounts). As a
	// filter, SourceIssued is the certificates issued here otherwise.
	SourceACME Source = "acme"
)

// External reports whether certificates from s were issued elsewhere
// (imported or discovered): their own issuer renews them.
func (s Source) External() bool { return s == SourceImported || s == SourceDiscovered }

// RenewalKind says how a certificate came to replace its predecessor.
type RenewalKind string

// Renewal kinds. Every kind but RenewalManual is automation: no person
// was involved.
const (
	RenewalAuto   RenewalKind = "auto"   // the server's renewal job
	RenewalAgent  RenewalKind = "agent"  // certwright agent on the host
	RenewalACME   RenewalKind = "acme"   // an ACME client (replaces / ARI)
	RenewalEST    RenewalKind = "est"    // an EST device (simplereenroll)
	RenewalSCEP   RenewalKind = "scep"   // a SCEP device (RenewalReq)
	RenewalRotate RenewalKind = "rotate" // an emergency rotation
	RenewalManual RenewalKind = "manual" // a person ran cert renew or submitted replaces
)

// Automated reports whether no person was involved in the renewal.
func (k RenewalKind) Automated() bool {
	return k == RenewalAuto || k == RenewalAgent || k == RenewalACME || k == RenewalEST || k == RenewalSCEP || k == RenewalRotate
}

// Revocation records that a certificate was revoked. It is permanent: a
// serial is revoked at most once, and the first record stands.
type Revocation struct {
	Serial string `json:"serial"`
	// CAID is the CA that issued the revoked certificate: the CA whose CRL
	// and OCSP responses list it.
	CAID      string     `json:"ca_id"`
	RevokedAt time.Time  `json:"revoked_at"`
	Reason    pki.Reason `json:"reason"`
	// InvalidityDate is when the key is known or suspected to have been
	// compromised (RFC 5280 5.3.2); zero when not given.
	InvalidityDate time.Time `json:"invalidity_date,omitzero"`
	RevokedBy      string    `json:"revoked_by"`
	// NotAfter is the revoked certificate's expiry; the entry leaves the
	// CA's CRL after it.
	NotAfter time.Time `json:"not_after"`
	// CA is true when the revoked certificate is a subordinate CA's own
	// certificate (listed on its parent's CRL).
	CA bool `json:"ca"`
}

// Selector picks certificates for bulk revocation; every non-empty field
// must match and at least one must be set.
type Selector struct {
	CAID    string `json:"ca_id,omitempty"`
	Profile string `json:"profile,omitempty"`
	// SAN matches any subject alternative name exactly (case-insensitive).
	SAN string `json:"san,omitempty"`
	// SPKISHA256 matches the hex SHA-256 of the public key (SubjectPublicKeyInfo).
	SPKISHA256 string `json:"spki_sha256,omitempty"`
}

// Empty reports whether no field is set.
func (s Selector) Empty() bool {
	return s.CAID == "" && s.Profile == "" && s.SAN == "" && s.SPKISHA256 == ""
}

// Filter selects certificates; zero fields do not filter.
type Filter struct {
	CAID    string
	Profile string
	Status  Status
	// SAN matches any subject alternative name exactly (case-insensitive).
	SAN string
	Tag string
	// SPKISHA256 keeps certificates for this public key (hex SHA-256 of the SPKI).
	SPKISHA256 string
	// Fingerprint keeps the certificate with this SHA-256 fingerprint
	// (lower-case hex).
	Fingerprint string
	// Owner and Requester match those fields exactly.
	Owner, Requester string
	// Source keeps certificates from one source: SourceImported,
	// SourceDiscovered, SourceACME, or SourceIssued (issued here, not to
	// an ACME client).
	Source Source
	// ExpiringBefore keeps certificates whose NotAfter is before this time.
	ExpiringBefore time.Time
	// ExpiredAt keeps unrevoked certificates whose NotAfter is at or
	// before this time: the expired ones.
	ExpiredAt time.Time
	// UnexpiredAt keeps certificates whose NotAfter is after this time.
	UnexpiredAt time.Time
	// Current drops revoked certificates and those superseded by a renewal.
	Current bool
	Limit   int // 0 means the store's default (1000)
	// Order is the order of the listing (by serial when zero); Desc
	// reverses it, the serial that ends it included.
	Order Order
	Desc  bool
	// After is the serial to continue after (keyset paging); AfterKey or
	// AfterTime is that certificate's key in Order (Order.Key).
	After     string
	AfterKey  string
	AfterTime time.Time
}

// Order is the order of a certificate listing. Every order ends on the
// serial, so that paging is stable in every store.
type Order string

// Orders of a listing: each by one column shown in the inventory, then
// by serial.
const (
	OrderSerial  Order = ""        // by serial
	OrderExpiry  Order = "expiry"  // by NotAfter, soonest first
	OrderIssued  Order = "issued"  // by NotBefore
	OrderName    Order = "name"    // by the first SAN as written, or the subject without one
	OrderCA      Order = "ca"      // by CA ID
	OrderProfile Order = "profile" // by profile name
	OrderStatus  Order = "status"  // by stored status (revoked before valid)
	OrderSource  Order = "source"  // by stored source (imported before issued)
)

// orders names every order, in the order ParseOrder lists them.
var orders = []Order{OrderSerial, OrderExpiry, OrderIssued, OrderName, OrderCA, OrderProfile, OrderStatus, OrderSource}

// OrderNames lists the names ParseOrder reads.
func OrderNames() []string {
	out := make([]string, len(orders))
	for i, o := range orders {
		out[i] = o.Name()
	}
	return out
}

// Name is the name ParseOrder reads o by.
func (o Order) Name() string {
	if o == OrderSerial {
		return "serial"
	}
	return string(o)
}

// ParseOrder reads an order by name: "serial", "expiry", "issued",
// "name", "ca", "profile", "status" or "source".
func ParseOrder(s string) (Order, error) {
	for _, o := range orders {
		if s == o.Name() {
			return o, nil
		}
	}
	return "", fmt.Errorf("inventory: unknown order %q: want %s", s, strings.Join(OrderNames(), ", "))
}

// Timed reports whether o orders by a time (Key's t), not a text.
func (o Order) Timed() bool { return o == OrderExpiry || o == OrderIssued }

// Key is c's key in order o before its serial: a time for a timed order,
// else a text ("" in serial order). The store orders by the same values.
func (o Order) Key(c *Certificate) (text string, t time.Time) {
	switch o {
	case OrderExpiry:
		return "", c.NotAfter
	case OrderIssued:
		return "", c.NotBefore
	case OrderName:
		if len(c.SANs) > 0 {
			return c.SANs[0], time.Time{}
		}
		return c.Subject, time.Time{}
	case OrderCA:
		return c.CAID, time.Time{}
	case OrderProfile:
		return c.Profile, time.Time{}
	case OrderStatus:
		return string(c.Status), time.Time{}
	case OrderSource:
		return string(c.Source), time.Time{}
	}
	return "", time.Time{}
}

// Continue sets f to resume after c, the last certificate of a page.
func (f *Filter) Continue(c *Certificate) {
	f.After = c.Serial
	f.AfterKey, f.AfterTime = f.Order.Key(c)
}

// Statuses a listing filters by: StatusValid and StatusRevoked as stored,
// and StatusExpired, unrevoked past NotAfter (not a stored status).
const StatusExpired Status = "expired"

// SetStatus narrows f to the certificates in status s at now: valid
// (neither revoked nor expired), expired (unrevoked past NotAfter) or
// revoked. The API's listing and the console's inventory read it alike.
func (f *Filter) SetStatus(s string, now time.Time) error {
	switch Status(s) {
	case StatusValid:
		f.Status, f.UnexpiredAt = StatusValid, now
	case StatusRevoked:
		f.Status = StatusRevoked
	case StatusExpired:
		f.ExpiredAt = now
	default:
		return fmt.Errorf("inventory: unknown status %q: want valid, expired or revoked", s)
	}
	return nil
}

// ParseSource reads a listing's source filter: "issued", "acme",
// "imported" or "discovered".
func ParseSource(s string) (Source, error) {
	switch Source(s) {
	case SourceIssued, SourceACME, SourceImported, SourceDiscovered:
		return Source(s), nil
	}
	return "", fmt.Errorf("inventory: unknown source %q: want issued, acme, imported or discovered", s)
}

// Sources of a compromised-key report.
const (
	CompromiseRotation   = "rotation"   // an emergency rotation by key
	CompromiseRevocation = "revocation" // a certificate revoked as keyCompromise
)

// CompromisedKey is a public key reported compromised: it is never
// certified again.
type CompromisedKey struct {
	SPKISHA256 string // lower-case hex SHA-256 of the SubjectPublicKeyInfo
	ReportedAt time.Time
	Source     string // CompromiseRotation or CompromiseRevocation
	Ref        string // the rotation's ID, or the revoked certificate's serial
	ReportedBy string // principal name; empty for reports older than the list
}

// Counts is the inventory's risk summary at one moment: certificates
// valid (neither revoked nor expired), expired (not revoked) and revoked,
// and for each of a list of bounds how many valid ones not yet renewed
// expire after the moment and at or before that bound.
type Counts struct {
	Valid, Expired, Revoked int
	Expiring                []int
}

// DayCount is how many certificates one UTC day (its midnight) holds for
// one CA: expiring that day (with Renewed telling whether they were
// renewed), issued or revoked on it.
type DayCount struct {
	Day     time.Time
	CAID    string
	Renewed bool
	N       int
}

// Resource is what a scope check of the certificate c looks at; caName is
// the name of c's CA (a binding may name CAs by ID or by name).
func (c *Certificate) Resource(caName string) authz.Resource {
	return authz.Resource{CAID: c.CAID, CAName: caName, Profile: c.Profile, Names: c.SANs}
}

// SavedView is a named inventory filter of one principal: the console
// page's query string, checked when it was saved.
type SavedView struct {
	ID, PrincipalID, Name, Query string
	CreatedAt                    time.Time
}
