package apitypes

import "time"

// ScanReason is one rule that shaped an endpoint's grade.
type ScanReason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ScanGrade is an endpoint's TLS grade.
type ScanGrade struct {
	Letter       string       `json:"letter"`
	Score        int          `json:"score"`
	Reasons      []ScanReason `json:"reasons"`
	RulesVersion string       `json:"rules_version"`
}

// ScanFinding is one problem a scan found at an endpoint.
type ScanFinding struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// ScanMatch is the served leaf matched against the inventory: status is
// managed, stale, revoked, expired or unmanaged.
type ScanMatch struct {
	Status      string    `json:"status"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"sha256_fingerprint"`
	Source      string    `json:"source"`
	Subject     string    `json:"subject"`
	NotAfter    time.Time `json:"not_after"`
	Successor   string    `json:"successor,omitempty"`
}

// ScanSuite is one cipher suite an endpoint accepted at a version.
type ScanSuite struct {
	Name string `json:"name"`
	// KeyExchange is ECDHE, DHE, RSA, ECDH, DH, DH_anon, ECDH_anon or
	// TLS1.3 (whose key exchange is the group).
	KeyExchange string `json:"key_exchange"`
	// Cipher is AES-GCM, AES-CCM, ChaCha20-Poly1305, AES-CBC, 3DES-CBC,
	// RC4, NULL...
	Cipher string `json:"cipher"`
	Bits   int    `json:"bits"`
	// Group is the curve or group the key exchange used, DHBits the DHE
	// prime size.
	Group  string `json:"group,omitempty"`
	DHBits int    `json:"dh_bits,omitempty"`
	Weak   bool   `json:"weak"`
}

// ScanProtocol is what an endpoint accepted at one TLS version.
type ScanProtocol struct {
	Version string `json:"version"`
	// Summary is the version's suites in one line, as the CLI prints it.
	Summary string `json:"summary"`
	// ServerOrder: the server picks by its own preference (true) or the
	// client's (false); absent when it was not established.
	ServerOrder *bool       `json:"server_order,omitempty"`
	Suites      []ScanSuite `json:"suites"`
	// Groups are the ECDHE curves or TLS 1.3 groups accepted.
	Groups []string `json:"groups"`
}

// Endpoint is one scanned endpoint as of its latest reachable scan.
type Endpoint struct {
	// Address is the endpoint's key: host:port as the target named it.
	Address string `json:"address"`
	// IP is the address:port connected to.
	IP               string        `json:"ip"`
	Host             string        `json:"host,omitempty"`
	ServerName       string        `json:"server_name,omitempty"`
	Protocol         string        `json:"protocol,omitempty"`
	Encryption       string        `json:"encryption"`
	Versions         []string      `json:"versions"`
	VersionsComplete bool          `json:"versions_complete"`
	Negotiated       string        `json:"negotiated,omitempty"`
	Suite            string        `json:"suite,omitempty"`
	Suites           []string      `json:"suites"`
	SuitesComplete   bool          `json:"suites_complete"`
	WeakSuites       bool          `json:"weak_suites"`
	ForwardSecrecy   string        `json:"forward_secrecy,omitempty"`
	Grade            *ScanGrade    `json:"grade,omitempty"`
	Findings         []ScanFinding `json:"findings"`
	HSTSMaxAge       *int64        `json:"hsts_max_age,omitempty"`
	// Protocols are the versions accepted with their suites and groups,
	// oldest first; empty for endpoints last scanned before they were
	// recorded. DHBits are the DHE prime sizes seen.
	Protocols []ScanProtocol `json:"protocols"`
	DHBits    []int          `json:"dh_bits"`
	// ChainPEM is the served chain, leaf first.
	ChainPEM     string     `json:"chain_pem,omitempty"`
	Match        *ScanMatch `json:"match,omitempty"`
	ObservedAt   time.Time  `json:"observed_at"`
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
	LastScanned  time.Time  `json:"last_scanned"`
	Misses       int        `json:"misses"`
	LastError    string     `json:"last_error,omitempty"`
	Gone         bool       `json:"gone"`
	ExposedSince *time.Time `json:"exposed_since,omitempty"`
	Error        string     `json:"error,omitempty"`
}

// EndpointList is the scanned endpoints, by address.
type EndpointList struct {
	Endpoints []Endpoint `json:"endpoints"`
	// Next, when set, is the "after" of the next page.
	Next string `json:"next,omitempty"`
}

// EndpointEvent is one change in an endpoint's history.
type EndpointEvent struct {
	Kind  string     `json:"kind"`
	At    time.Time  `json:"at"`
	From  string     `json:"from,omitempty"`
	To    string     `json:"to,omitempty"`
	Since *time.Time `json:"since,omitempty"`
}

// ServedAt is an endpoint that served a certificate, and when.
type ServedAt struct {
	Endpoint  string    `json:"endpoint"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// EndpointDetail is one endpoint, its newest changes, and every endpoint
// its certificate was seen at.
type EndpointDetail struct {
	Endpoint Endpoint        `json:"endpoint"`
	Events   []EndpointEvent `json:"events"`
	ServedAt []ServedAt      `json:"served_at"`
}

// ScanRequest runs a scan now: of Targets (each within the server's
// scan.allow), or of the configured targets when empty.
type ScanRequest struct {
	Targets []string `json:"targets,omitempty"`
}

// ScanResult counts what a scan found and changed.
type ScanResult struct {
	Targets    int    `json:"targets"`
	Reachable  int    `json:"reachable"`
	Changes    int    `json:"changes"`
	Discovered int    `json:"discovered"`
	Alerts     int    `json:"alerts"`
	Skipped    string `json:"skipped,omitempty"`
	// Unfinished counts the targets not scanned before the request's
	// deadline: not recorded (the scheduled scan, or a smaller run,
	// covers them).
	Unfinished int `json:"unfinished,omitempty"`
}

// ScanKPIs are the encryption KPIs of the scanned endpoints. Shares are
// 0 to 1 over the endpoints for which the figure is known.
type ScanKPIs struct {
	GeneratedAt         time.Time      `json:"generated_at"`
	Endpoints           int            `json:"endpoints"`
	Gone                int            `json:"gone"`
	ByEncryption        map[string]int `json:"by_encryption"`
	Encrypted           int            `json:"encrypted"`
	EncryptionKnown     int            `json:"encryption_known"`
	EncryptedShare      float64        `json:"encrypted_share"`
	TLS12Only           int            `json:"tls12_only"`
	TLS12Known          int            `json:"tls12_known"`
	TLS12OnlyShare      float64        `json:"tls12_only_share"`
	StrongOnly          int            `json:"strong_only"`
	StrongKnown         int            `json:"strong_known"`
	StrongOnlyShare     float64        `json:"strong_only_share"`
	Grades              map[string]int `json:"grades"`
	Exposed             int            `json:"exposed"`
	Remediated          int            `json:"remediated"`
	MeanTimeToRemediate float64        `json:"mean_time_to_remediate_seconds"`
	Unmanaged           int            `json:"unmanaged_certificates"`
	ByStatus            map[string]int `json:"by_status"`
}
