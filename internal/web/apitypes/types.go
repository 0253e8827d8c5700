// Package apitypes owns the JSON shapes of the /api/v1 REST API, shared by
// the server (web/api) and the typed client (cli).
package apitypes

import "time"

// Error is every API error body.
type Error struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
	// Rule names the profile rule or field that failed, when one did; on
	// a 403, the authorisation rule that refused: role, scope,
	// two_person_rule, machine_only_key_handout or escalation.
	Rule string `json:"rule,omitempty"`
}

// RuleTokenExpired is the Rule of the 401 answering a token that verified
// but has expired: the client should tell its user to get a new one.
const RuleTokenExpired = "token_expired"

// NameConstraints of a subordinate CA (RFC 5280 4.2.1.10).
type NameConstraints struct {
	PermittedDNS   []string `json:"permitted_dns,omitempty"`
	ExcludedDNS    []string `json:"excluded_dns,omitempty"`
	PermittedIP    []string `json:"permitted_ip,omitempty"` // CIDRs
	ExcludedIP     []string `json:"excluded_ip,omitempty"`
	PermittedEmail []string `json:"permitted_email,omitempty"`
	PermittedURI   []string `json:"permitted_uri,omitempty"`
}

// CreateCARequest creates a root, an intermediate under a CA of this
// instance (Parent set), or an external intermediate (External: key here,
// certificate signed elsewhere).
type CreateCARequest struct {
	Name         string          `json:"name"`
	Type         string          `json:"type"` // root | intermediate | external
	Parent       string          `json:"parent,omitempty"`
	CommonName   string          `json:"common_name"`
	Organization string          `json:"organization,omitempty"`
	Country      string          `json:"country,omitempty"`
	KeyAlgorithm string          `json:"key_algorithm,omitempty"` // default ecdsa-p384 root, ecdsa-p256 intermediate
	KeyProvider  string          `json:"key_provider,omitempty"`  // software | pkcs11; default the server's keys.ca_key_provider
	ValidityDays int             `json:"validity_days,omitempty"` // default 3650 root, 1825 intermediate
	PathLen      *int            `json:"path_len,omitempty"`      // default 1 root, 0 intermediate; -1 = unlimited
	Constraints  NameConstraints `json:"name_constraints,omitempty"`
}

// CA describes one certificate authority.
type CA struct {
	ID                 string     `json:"id"`
	Name               string     `json:"name"`
	Kind               string     `json:"kind"`
	External           bool       `json:"external"`
	Status             string     `json:"status"`
	ParentID           string     `json:"parent_id,omitempty"`
	Parent             string     `json:"parent,omitempty"`
	Subject            string     `json:"subject,omitempty"`
	KeyAlgorithm       string     `json:"key_algorithm"`
	KeyProvider        string     `json:"key_provider"` // software or pkcs11: where the CA's key is
	NotBefore          *time.Time `json:"not_before,omitempty"`
	NotAfter           *time.Time `json:"not_after,omitempty"`
	PathLen            *int       `json:"path_len,omitempty"`
	Fingerprint        string     `json:"sha256_fingerprint,omitempty"`
	CertificatesIssued int        `json:"certificates_issued"`
	CreatedAt          time.Time  `json:"created_at"`
	DeletedAt          *time.Time `json:"deleted_at,omitempty"`
	RestorableUntil    *time.Time `json:"restorable_until,omitempty"`
	CertificatePEM     string     `json:"certificate_pem,omitempty"`
	CSRPEM             string     `json:"csr_pem,omitempty"` // pending external CAs
	// Offline is true for a root whose key is not on the server (ca
	// import-root): it signs only at its ceremony.
	Offline bool `json:"offline,omitempty"`
	// CRLURL and CertificateURL are where relying parties fetch the CA's
	// CRL and certificate: the CRL distribution point and caIssuers URL of
	// what the CA signs (for an offline root, give them to the ceremony).
	CRLURL         string `json:"crl_url,omitempty"`
	CertificateURL string `json:"certificate_url,omitempty"`
}

// ImportRootRequest records an offline root: its certificate only.
type ImportRootRequest struct {
	Name           string `json:"name"`
	CertificatePEM string `json:"certificate_pem"`
}

// ImportCRLRequest uploads the CRL an offline root signed at its ceremony.
type ImportCRLRequest struct {
	CRLPEM string `json:"crl_pem"`
}

// ImportedCRL is the CRL stored by an upload.
type ImportedCRL struct {
	CA         string    `json:"ca"`
	CAID       string    `json:"ca_id"`
	Number     int64     `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Entries    int       `json:"entries"`
	CRLURL     string    `json:"crl_url,omitempty"`
	// RevokedCAs are the subordinate CAs the CRL listed that this upload
	// revoked and disabled.
	RevokedCAs []string `json:"revoked_cas"`
}

// CAList is every CA.
type CAList struct {
	CAs []CA `json:"cas"`
}

// ImportCARequest completes a pending external CA.
type ImportCARequest struct {
	CertificatePEM string `json:"certificate_pem"`
	ChainPEM       string `json:"chain_pem,omitempty"`
}

// SignRequest signs a CSR.
type SignRequest struct {
	CSRPEM       string   `json:"csr_pem"`
	Profile      string   `json:"profile"`
	CA           string   `json:"ca,omitempty"` // default: the server's default issuing CA
	ValidityDays int      `json:"validity_days,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	// Owner is who answers for the certificate (free text, shown in alerts).
	Owner string `json:"owner,omitempty"`
	// Replaces is the serial of the certificate this one renews; it must
	// be valid, not yet replaced, and share a name with the request.
	Replaces string `json:"replaces,omitempty"`
	// RenewalKind says who renews: "agent" (certwright agent) or "manual"
	// (the default). Only meaningful with Replaces.
	RenewalKind string `json:"renewal_kind,omitempty"`
	// AutoRenew asks the server to renew this certificate itself, reusing
	// the CSR's key; the profile must set allow_key_reuse.
	AutoRenew bool `json:"auto_renew,omitempty"`
}

// IssueRequest issues a certificate with a key the server generates.
type IssueRequest struct {
	Profile      string   `json:"profile"`
	CA           string   `json:"ca,omitempty"`
	CommonName   string   `json:"common_name,omitempty"`
	DNSNames     []string `json:"dns_names,omitempty"`
	IPAddresses  []string `json:"ip_addresses,omitempty"`
	Emails       []string `json:"emails,omitempty"`
	URIs         []string `json:"uris,omitempty"`
	KeyAlgorithm string   `json:"key_algorithm,omitempty"`
	ValidityDays int      `json:"validity_days,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	// KeyFormat is "pkcs8" (default, PEM) or "pkcs12" (base64, needs Password).
	KeyFormat string `json:"key_format,omitempty"`
	Password  string `json:"password,omitempty"`
	// Owner is who answers for the certificate (free text, shown in alerts).
	Owner string `json:"owner,omitempty"`
	// AutoRenew asks the server to keep the key (wrapped) and renew the
	// certificate itself, with a new key, at the profile's threshold.
	AutoRenew bool `json:"auto_renew,omitempty"`
}

// KeyCompromise is the report that put a key on the compromised-key list.
type KeyCompromise struct {
	ReportedAt time.Time `json:"reported_at"`
	// Source is "rotation" (a rotation by key) or "revocation" (a
	// certificate revoked as key_compromise); Ref its ID or serial.
	Source     string `json:"source"`
	Ref        string `json:"ref"`
	ReportedBy string `json:"reported_by,omitempty"`
}

// Certificate is an inventory record.
type Certificate struct {
	Serial             string    `json:"serial"`
	CAID               string    `json:"ca_id"`
	CA                 string    `json:"ca"`
	Profile            string    `json:"profile"`
	Requester          string    `json:"requester"`
	Subject            string    `json:"subject"`
	SANs               []string  `json:"sans"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	KeyAlgorithm       string    `json:"key_algorithm"`
	KeyBits            int       `json:"key_bits"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	Status             string    `json:"status"`
	Fingerprint        string    `json:"sha256_fingerprint"`
	Tags               []string  `json:"tags"`
	LintWarnings       []string  `json:"lint_warnings"`
	CreatedAt          time.Time `json:"created_at"`
	SPKISHA256         string    `json:"spki_sha256"`
	CertificatePEM     string    `json:"certificate_pem,omitempty"`
	// Revocation is set for a revoked certificate.
	Revocation *Revocation `json:"revocation,omitempty"`
	// KeyCompromised is set (cert show only) when the certificate's key was
	// reported compromised: it is never certified again.
	KeyCompromised *KeyCompromise `json:"key_compromised,omitempty"`
	// Source is "issued" (signed here), "imported" or "discovered" (found
	// served by a scan, issued elsewhere).
	Source       string `json:"source"`
	Owner        string `json:"owner,omitempty"`
	Issuer       string `json:"issuer,omitempty"`        // imported certificates
	IssuerSerial string `json:"issuer_serial,omitempty"` // imported certificates' own serial
	AutoRenew    bool   `json:"auto_renew"`
	Replaces     string `json:"replaces,omitempty"`
	RenewedBy    string `json:"renewed_by,omitempty"`
	RenewalKind  string `json:"renewal_kind,omitempty"`
	RenewError   string `json:"renew_error,omitempty"`
}

// RenewalInfo says when a certificate should be renewed: agents poll it.
type RenewalInfo struct {
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	// WindowStart..WindowEnd is when to renew; both in the past once an
	// operator or a rotation asked for it now.
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// RenewNow is true when the window has started (or the certificate is
	// revoked): replace it at once.
	RenewNow bool `json:"renew_now"`
	// Reason explains RenewNow: "threshold", "requested", "rotation",
	// "revoked" or "".
	Reason     string    `json:"reason,omitempty"`
	RenewedBy  string    `json:"renewed_by,omitempty"`
	Revoked    bool      `json:"revoked"`
	ServerTime time.Time `json:"server_time"`
}

// IssuedCertificate is the answer to sign and issue.
type IssuedCertificate struct {
	Certificate
	// ChainPEM is the issuing CA and any intermediates above it, without
	// the self-signed root.
	ChainPEM string `json:"chain_pem"`
	RootPEM  string `json:"root_pem"`
	// Managed-key answers only; shown once.
	PrivateKeyPEM string `json:"private_key_pem,omitempty"`
	PKCS12        []byte `json:"pkcs12,omitempty"`
}

// CertificateList is a page of inventory.
type CertificateList struct {
	Certificates []Certificate `json:"certificates"`
	// Next, when set, is what to pass as "after" for the next page: the
	// serial of the last certificate shown, or, when the server stopped
	// reading rows outside the caller's scope before the page was full
	// (the page may even be empty), an opaque cursor ("scan." + ...).
	Next string `json:"next,omitempty"`
}

// Profile is carried as its JSON definition (see internal/profile).
type ProfileList struct {
	Profiles []map[string]any `json:"profiles"`
}

// RevokeRequest revokes one certificate, or a subordinate CA's certificate.
type RevokeRequest struct {
	// Reason is one of unspecified, key_compromise, ca_compromise,
	// affiliation_changed, superseded, cessation_of_operation,
	// privilege_withdrawn, aa_compromise. Required for certificates; a CA
	// defaults to ca_compromise.
	Reason string `json:"reason"`
	// InvalidityDate (RFC 3339) is when the key is known or suspected to
	// have been compromised; it may not be in the future.
	InvalidityDate *time.Time `json:"invalidity_date,omitempty"`
}

// Revocation is a stored revocation.
type Revocation struct {
	Serial         string     `json:"serial"`
	CAID           string     `json:"ca_id"`
	RevokedAt      time.Time  `json:"revoked_at"`
	Reason         string     `json:"reason"`
	InvalidityDate *time.Time `json:"invalidity_date,omitempty"`
	RevokedBy      string     `json:"revoked_by"`
	NotAfter       time.Time  `json:"not_after"`
	// CA marks a subordinate CA's own certificate.
	CA bool `json:"ca,omitempty"`
	// AlreadyRevoked is true when the serial was revoked before this
	// request; the record is the original one.
	AlreadyRevoked bool `json:"already_revoked,omitempty"`
}

// Selector picks certificates for bulk revocation; every given field must
// match and at least one is required.
type Selector struct {
	CA         string `json:"ca,omitempty"` // id or name
	Profile    string `json:"profile,omitempty"`
	SAN        string `json:"san,omitempty"`
	SPKISHA256 string `json:"spki_sha256,omitempty"`
}

// BulkRevokeRequest revokes every unexpired certificate that matches.
type BulkRevokeRequest struct {
	Selector       Selector   `json:"selector"`
	Reason         string     `json:"reason"`
	InvalidityDate *time.Time `json:"invalidity_date,omitempty"`
	// DryRun lists what would be revoked and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// BulkRevokeResult lists the certificates revoked (or that would be).
type BulkRevokeResult struct {
	DryRun  bool     `json:"dry_run"`
	Count   int      `json:"count"`
	Serials []string `json:"serials"`
}
