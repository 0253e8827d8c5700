// Package discovery owns what a network scan observed and what it means:
// the observation of one endpoint, its reconciliation with the inventory
// (managed, stale, revoked or expired but served, unmanaged), the history
// of each endpoint, and the encryption KPIs. Scanners fill Observations;
// a Monitor records them, raises the alerts they call for and answers the
// views. It never touches the network itself.
package discovery

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// Encryption says how an endpoint protects its traffic.
type Encryption string

// Encryptions, from the best to the worst.
const (
	// EncImplicitTLS: the connection starts with a TLS handshake.
	EncImplicitTLS Encryption = "implicit-tls"
	// EncSTARTTLS: the protocol upgrades to TLS, and refuses to go on
	// without it.
	EncSTARTTLS Encryption = "starttls"
	// EncOptional: TLS is offered, but the service also speaks (or lets a
	// client log in) in plaintext.
	EncOptional Encryption = "optional"
	// EncNone: the service speaks plaintext only.
	EncNone Encryption = "none"
	// EncUnknown: reachable, but what it speaks was not established.
	EncUnknown Encryption = "unknown"
)

// Encryptions lists every value, for validation and for metrics labels.
func Encryptions() []Encryption {
	return []Encryption{EncImplicitTLS, EncSTARTTLS, EncOptional, EncNone, EncUnknown}
}

// Encrypted reports whether e protects every connection: implicit TLS
// or mandatory STARTTLS.
func (e Encryption) Encrypted() bool { return e == EncImplicitTLS || e == EncSTARTTLS }

// Plaintext reports whether e lets traffic go unencrypted.
func (e Encryption) Plaintext() bool { return e == EncNone || e == EncOptional }

// TLS protocol versions as observations name them.
const (
	VersionSSL3  = "SSLv3"
	VersionTLS10 = "TLS1.0"
	VersionTLS11 = "TLS1.1"
	VersionTLS12 = "TLS1.2"
	VersionTLS13 = "TLS1.3"
)

// versionRank orders the versions; unknown names rank lowest.
var versionRank = map[string]int{VersionSSL3: 1, VersionTLS10: 2, VersionTLS11: 3, VersionTLS12: 4, VersionTLS13: 5}

// ModernVersion reports whether v is TLS 1.2 or later.
func ModernVersion(v string) bool { return versionRank[v] >= versionRank[VersionTLS12] }

// ForwardSecrecy says whether the key exchanges an endpoint accepts
// protect past sessions when its key leaks.
type ForwardSecrecy string

// Forward secrecy levels; "" when it was not established.
const (
	FSAll  ForwardSecrecy = "all"  // every suite offered has it
	FSSome ForwardSecrecy = "some" // some suites lack it
	FSNone ForwardSecrecy = "none" // no suite has it
)

// Reason is one rule that shaped a grade: a stable code and a plain
// sentence.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Grade is an SSL Labs style rating of an endpoint's TLS.
type Grade struct {
	// Letter is A+, A, A-, B, C, D, E, F, T (untrusted) or M (name mismatch).
	Letter string `json:"letter"`
	// Score is 0 to 100 before caps.
	Score   int      `json:"score"`
	Reasons []Reason `json:"reasons"`
	// RulesVersion names the rules the grade follows, so grades from
	// older rules can be told apart.
	RulesVersion string `json:"rules_version"`
}

// weakLetters are the grades below B.
var weakLetters = []string{"C", "D", "E", "F", "T", "M"}

// Weak reports whether the grade is below B (or the certificate is not
// trusted or does not match).
func (g *Grade) Weak() bool { return g != nil && slices.Contains(weakLetters, g.Letter) }

// Severity of a finding.
type Severity string

// Severities of findings.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Finding is one problem (or fact) a scan found at an endpoint.
type Finding struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// HSTS is an HTTPS endpoint's Strict-Transport-Security header.
type HSTS struct {
	MaxAge            int64 `json:"max_age"`
	IncludeSubDomains bool  `json:"include_subdomains"`
	Preload           bool  `json:"preload"`
}

// ProtocolDetail is what an endpoint accepted at one TLS version.
type ProtocolDetail struct {
	// Version is one of the Version* names.
	Version string `json:"version"`
	// ServerOrder is true when the server picks the suite by its own
	// preference (Suites are then in that order), false when it follows
	// the client's; nil when fewer than two suites were accepted or the
	// server's answer did not tell.
	ServerOrder *bool         `json:"server_order,omitempty"`
	Suites      []SuiteDetail `json:"suites,omitempty"`
	// Groups are the named groups accepted at this version: the ECDHE
	// curves (probed at the best version below TLS 1.3 only) or the TLS
	// 1.3 key-exchange groups.
	Groups []string `json:"groups,omitempty"`
}

// SuiteDetail is one cipher suite accepted at a version, with the key
// exchange the server used for it.
type SuiteDetail struct {
	// Name is the IANA name.
	Name string `json:"name"`
	// KeyExchange is ECDHE, DHE, RSA, ECDH, DH, DH_anon, ECDH_anon, or
	// TLS1.3 (whose key exchange is the group).
	KeyExchange string `json:"key_exchange"`
	// Cipher is the bulk cipher and its construction: AES-GCM, AES-CCM,
	// ChaCha20-Poly1305, AES-CBC, 3DES-CBC, RC4, NULL...
	Cipher string `json:"cipher"`
	// Bits is the cipher's effective strength (3DES counts 112).
	Bits int `json:"bits"`
	// Group is the curve or group of the key exchange (x25519,
	// secp256r1...; "RSA 512" for an export suite's temporary key) and
	// DHBits the DHE prime size; both empty when it was not seen.
	Group  string `json:"group,omitempty"`
	DHBits int    `json:"dh_bits,omitempty"`
	// Weak: RC4, 64-bit blocks, export, NULL, anonymous, under 112 bits,
	// or CBC with SHA-1 in SSL 3.0 and TLS 1.0.
	Weak bool `json:"weak,omitempty"`
}

// KeyExchangeText names the key exchange with its group or size, as
// "ECDHE x25519", "DHE 2048-bit", "RSA" or, in TLS 1.3, the group alone.
func (s SuiteDetail) KeyExchangeText() string {
	kex := s.KeyExchange
	if kex == VersionTLS13 {
		kex = ""
	}
	var param string
	switch {
	case s.DHBits > 0:
		param = fmt.Sprintf("%d-bit", s.DHBits)
	case s.Group != "":
		param = s.Group
	}
	return strings.TrimSpace(kex + " " + param)
}

// WeakSuites names the weak suites accepted at the version.
func (p ProtocolDetail) WeakSuites() []string {
	var out []string
	for _, s := range p.Suites {
		if s.Weak {
			out = append(out, s.Name)
		}
	}
	return out
}

// Summary says in one line what the version accepts: "6 suites (ECDHE
// 4, RSA 2; AES-GCM, ChaCha20-Poly1305; server order; groups x25519,
// secp256r1)". Key exchanges are counted per kind (with the DHE prime
// sizes), ciphers named once each, in the order first seen.
func (p ProtocolDetail) Summary() string {
	var kexes, ciphers []string
	count := map[string]int{}
	dh := map[string][]int{}
	for _, s := range p.Suites {
		if s.KeyExchange != VersionTLS13 {
			if count[s.KeyExchange] == 0 {
				kexes = append(kexes, s.KeyExchange)
			}
			count[s.KeyExchange]++
			if s.DHBits > 0 && !slices.Contains(dh[s.KeyExchange], s.DHBits) {
				dh[s.KeyExchange] = append(dh[s.KeyExchange], s.DHBits)
			}
		}
		if !slices.Contains(ciphers, s.Cipher) {
			ciphers = append(ciphers, s.Cipher)
		}
	}
	var parts []string
	if len(kexes) > 0 {
		words := make([]string, len(kexes))
		for i, k := range kexes {
			words[i] = fmt.Sprintf("%s %d", k, count[k])
			if sizes := dh[k]; len(sizes) > 0 {
				slices.Sort(sizes)
				bits := make([]string, len(sizes))
				for j, b := range sizes {
					bits[j] = fmt.Sprintf("%d", b)
				}
				words[i] += " at " + strings.Join(bits, "/") + " bits"
			}
		}
		parts = append(parts, strings.Join(words, ", "))
	}
	if len(ciphers) > 0 {
		parts = append(parts, strings.Join(ciphers, ", "))
	}
	if p.ServerOrder != nil {
		parts = append(parts, map[bool]string{true: "server order", false: "client order"}[*p.ServerOrder])
	}
	if len(p.Groups) > 0 {
		parts = append(parts, "groups "+strings.Join(p.Groups, ", "))
	}
	n := fmt.Sprintf("%d suites", len(p.Suites))
	if len(p.Suites) == 1 {
		n = "1 suite"
	}
	if len(parts) == 0 {
		return n
	}
	return n + " (" + strings.Join(parts, "; ") + ")"
}

// Observation is what one scan saw at one endpoint. Scanners fill it from
// their own results; every field but Address and ObservedAt may be empty.
type Observation struct {
	// Address is the host:port connected to: an IP address and port.
	Address string `json:"address"`
	// Host is the name the target was given by, when it was a name.
	Host string `json:"host,omitempty"`
	// ServerName is the TLS server name (SNI) sent, if any.
	ServerName string    `json:"server_name,omitempty"`
	ObservedAt time.Time `json:"observed_at"`
	// Reachable: a TCP connection was established.
	Reachable bool `json:"reachable"`
	// Protocol is what the endpoint speaks when known: tls, https, smtp,
	// imap, postgres, mysql, redis, amqp, mqtt, nats, http...
	Protocol   string     `json:"protocol,omitempty"`
	Encryption Encryption `json:"encryption"`
	// Versions are the TLS versions the endpoint accepted; VersionsComplete
	// says every version was tried (otherwise only the negotiated one is
	// known).
	Versions         []string `json:"versions,omitempty"`
	VersionsComplete bool     `json:"versions_complete,omitempty"`
	// Negotiated and Suite are what a default handshake agreed on.
	Negotiated string `json:"negotiated,omitempty"`
	Suite      string `json:"suite,omitempty"`
	// Suites are the cipher suites accepted; SuitesComplete says they were
	// enumerated; WeakSuites says a weak one (RC4, 3DES, CBC with SHA-1 in
	// TLS 1.0, export, NULL, anonymous) was accepted.
	Suites         []string       `json:"suites,omitempty"`
	SuitesComplete bool           `json:"suites_complete,omitempty"`
	WeakSuites     bool           `json:"weak_suites,omitempty"`
	ForwardSecrecy ForwardSecrecy `json:"forward_secrecy,omitempty"`
	// Protocols are the versions accepted, oldest first, each with the
	// suites and groups accepted at it; DHBits are the DHE prime sizes
	// seen, smallest first. Both are empty in observations recorded
	// before they were kept, and when no enumeration ran.
	Protocols []ProtocolDetail `json:"protocols,omitempty"`
	DHBits    []int            `json:"dh_bits,omitempty"`
	// Chain is the served certificate chain, leaf first, DER.
	Chain    [][]byte  `json:"chain,omitempty"`
	Grade    *Grade    `json:"grade,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
	HSTS     *HSTS     `json:"hsts,omitempty"`

	// KeyProven says a handshake with Chain completed, so the server
	// proved it holds the leaf's private key (its signature in the
	// handshake verified, or it decrypted the key exchange). Anyone can
	// present a public certificate; only a proven one is matched to the
	// inventory, sighted, added as discovered or alerted on.
	KeyProven bool `json:"key_proven,omitempty"`

	// Error says why the scan could not tell more (refused, timed out,
	// handshake failed).
	Error string `json:"error,omitempty"`
}

// Leaf returns the served leaf certificate, nil when none was served or
// it does not parse.
func (o *Observation) Leaf() *x509.Certificate {
	if len(o.Chain) == 0 {
		return nil
	}
	c, err := x509.ParseCertificate(o.Chain[0])
	if err != nil {
		return nil
	}
	return c
}

// Fingerprint is the lower-case hex SHA-256 of the served leaf, "" when
// none was served.
func (o *Observation) Fingerprint() string {
	if len(o.Chain) == 0 {
		return ""
	}
	return pki.Fingerprint(o.Chain[0])
}

// Key names the endpoint the observation is of: host:port when the
// target was a hostname (names sharing an address are told apart by
// the certificate each is served), else the address.
func (o *Observation) Key() string {
	if o.Host == "" {
		return o.Address
	}
	_, port, err := net.SplitHostPort(o.Address)
	if err != nil {
		return o.Address
	}
	return net.JoinHostPort(o.Host, port)
}

// TLS12Only reports whether the endpoint accepts nothing older than TLS
// 1.2; known is false when its versions were not all tried.
func (o *Observation) TLS12Only() (only, known bool) {
	if !o.Encryption.Encrypted() && o.Encryption != EncOptional {
		return false, false
	}
	if !o.VersionsComplete {
		// One old version seen is enough to know.
		for _, v := range append(slices.Clone(o.Versions), o.Negotiated) {
			if v != "" && !ModernVersion(v) {
				return false, true
			}
		}
		return false, false
	}
	for _, v := range o.Versions {
		if !ModernVersion(v) {
			return false, true
		}
	}
	return len(o.Versions) > 0, true
}

// StrongOnly reports whether the endpoint accepts only strong cipher
// suites; known is false when its suites were not enumerated.
func (o *Observation) StrongOnly() (strong, known bool) {
	if o.WeakSuites {
		return false, true
	}
	if !o.SuitesComplete {
		return false, false
	}
	return true, true
}

// Weak reports whether an encrypted endpoint's TLS is weak: a grade below
// B, a protocol older than TLS 1.2 or a weak cipher suite accepted.
func (o *Observation) Weak() bool {
	if !o.Reachable || o.Encryption == EncNone || o.Encryption == EncUnknown {
		return false
	}
	if o.Grade.Weak() || o.WeakSuites {
		return true
	}
	only, known := o.TLS12Only()
	return known && !only
}

// Exposed reports whether the endpoint needs remediation: reachable and
// plaintext or weak.
func (o *Observation) Exposed() bool {
	return o.Reachable && (o.Encryption.Plaintext() || o.Weak())
}
