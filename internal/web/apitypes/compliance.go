package apitypes

import "time"

// ImportRequest adds certificates issued elsewhere to the inventory
// (POST /api/v1/certificates/import). PEM is one bundle; Files are several,
// each a bundle of its own, named in error messages. At least one of the
// two is required. Nothing is stored unless every file is acceptable, and a
// file holding a private key is refused.
type ImportRequest struct {
	PEM   string       `json:"pem,omitempty"`
	Files []ImportFile `json:"files,omitempty"`
	Tags  []string     `json:"tags,omitempty"`
	Owner string       `json:"owner,omitempty"`
}

// ImportFile is one file of an import, as PEM text.
type ImportFile struct {
	Name string `json:"name"`
	PEM  string `json:"pem"`
}

// ImportSkipped is a certificate an import did not store, and why.
type ImportSkipped struct {
	Fingerprint string `json:"fingerprint"`
	Subject     string `json:"subject"`
	Reason      string `json:"reason"`
}

// ImportResult lists what an import stored and skipped.
type ImportResult struct {
	Imported []Certificate   `json:"imported"`
	Skipped  []ImportSkipped `json:"skipped"`
}

// ComplianceFinding is one rule a certificate does not meet. Severity
// "error" makes it non_compliant, "warning" a warning.
type ComplianceFinding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// ComplianceRow is one certificate of the compliance report.
type ComplianceRow struct {
	Serial       string   `json:"serial"`
	Fingerprint  string   `json:"sha256_fingerprint"`
	Subject      string   `json:"subject"`
	Names        []string `json:"names"`
	Source       string   `json:"source"` // issued | imported
	CAID         string   `json:"ca_id,omitempty"`
	CA           string   `json:"ca,omitempty"`
	Issuer       string   `json:"issuer,omitempty"`
	IssuerSerial string   `json:"issuer_serial,omitempty"`
	Profile      string   `json:"profile,omitempty"`
	Owner        string   `json:"owner,omitempty"`
	Tags         []string `json:"tags"`
	KeyAlgorithm string   `json:"key_algorithm"`
	KeyBits      int      `json:"key_bits"`
	// SignatureAlgorithm as Go names it: SHA256-RSA, ECDSA-SHA384, SHA1-RSA...
	SignatureAlgorithm string    `json:"signature_algorithm"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	ValidityDays       int       `json:"validity_days"`
	// DaysLeft is whole days to expiry, negative once expired.
	DaysLeft int  `json:"days_left"`
	Expired  bool `json:"expired"`
	// Public: chains to a root of the system trust store, or tagged public.
	Public bool `json:"public"`
	// Chain is "issued here", "complete", "self-signed", "incomplete" or "unknown".
	Chain string `json:"chain"`
	// Revocation is "valid", "revoked" or, for imported certificates, "not checked".
	Revocation  string `json:"revocation"`
	AutoManaged bool   `json:"auto_managed"`
	// Status is compliant, warning or non_compliant.
	Status   string              `json:"status"`
	Findings []ComplianceFinding `json:"findings"`
}

// ComplianceCounts are certificates by status.
type ComplianceCounts struct {
	Total        int `json:"total"`
	Compliant    int `json:"compliant"`
	Warning      int `json:"warning"`
	NonCompliant int `json:"non_compliant"`
}

// ComplianceSourceCounts are the counts of one source.
type ComplianceSourceCounts struct {
	Source string `json:"source"`
	ComplianceCounts
}

// ComplianceSummary counts the certificates by status and by source.
type ComplianceSummary struct {
	ComplianceCounts
	BySource []ComplianceSourceCounts `json:"by_source"`
}

// ComplianceKPIs measure renewal in the period. A rate is null when there
// was nothing to measure (no attempt, no renewal, no certificate).
type ComplianceKPIs struct {
	RenewalAttempts    int      `json:"renewal_attempts"`
	RenewalsSucceeded  int      `json:"renewals_succeeded"`
	RenewalSuccessRate *float64 `json:"renewal_success_rate"`
	AutomatedRenewals  int      `json:"automated_renewals"`
	// AutomationRate is the automated share of successful renewals.
	AutomationRate      *float64 `json:"automation_rate"`
	CurrentCertificates int      `json:"current_certificates"`
	AutoManaged         int      `json:"auto_managed"`
	// AutoManagedShare is the share of current certificates renewed
	// without a person: auto_renew, ACME clients, the agent.
	AutoManagedShare *float64 `json:"auto_managed_share"`
	// ExpiryIncidents expired in the period while valid and never renewed.
	ExpiryIncidents int `json:"expiry_incidents"`
	// NearMisses were renewed in the period with less than a day left.
	NearMisses int `json:"near_misses"`
}

// ComplianceReport is the answer of GET /api/v1/reports/compliance.
type ComplianceReport struct {
	Since       time.Time         `json:"since"`
	Until       time.Time         `json:"until"`
	GeneratedAt time.Time         `json:"generated_at"`
	Summary     ComplianceSummary `json:"summary"`
	KPIs        ComplianceKPIs    `json:"kpis"`
	// Encryption is the encryption KPIs of the scanned endpoints, in
	// every format; absent when the server has no scans.
	Encryption     *ScanKPIs       `json:"encryption,omitempty"`
	WorstOffenders []ComplianceRow `json:"worst_offenders"`
	Certificates   []ComplianceRow `json:"certificates"`
}
