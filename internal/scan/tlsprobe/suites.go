package tlsprobe

import (
	"fmt"
	"strings"
)

// KeyExchange is how a cipher suite agrees on the premaster secret.
type KeyExchange string

// Key exchange kinds. TLS13 suites do not fix the key exchange: TLS 1.3
// always uses an ephemeral (EC)DHE or hybrid group, named separately.
const (
	KexRSA   KeyExchange = "RSA"   // RSA key transport: no forward secrecy
	KexDH    KeyExchange = "DH"    // static DH from the certificate
	KexECDH  KeyExchange = "ECDH"  // static ECDH from the certificate
	KexDHE   KeyExchange = "DHE"   // ephemeral finite-field DH
	KexECDHE KeyExchange = "ECDHE" // ephemeral elliptic-curve DH
	KexTLS13 KeyExchange = "TLS1.3"
)

// Auth is how the server authenticates the key exchange.
type Auth string

// Authentication kinds. AuthAnon suites authenticate nothing (an active
// attacker can always intercept); AuthTLS13 depends on the certificate.
const (
	AuthRSA   Auth = "RSA"
	AuthDSS   Auth = "DSS"
	AuthECDSA Auth = "ECDSA"
	AuthAnon  Auth = "anon"
	AuthTLS13 Auth = "certificate"
)

// Mode is the bulk cipher's construction.
type Mode string

// Bulk cipher modes.
const (
	ModeAEAD   Mode = "AEAD"
	ModeCBC    Mode = "CBC"
	ModeStream Mode = "stream" // RC4
	ModeNull   Mode = "NULL"   // no encryption at all
)

// Suite is one cipher suite as the IANA registry names it, with the
// properties a grade needs. Bits is the effective symmetric strength
// (3DES counts 112, export ciphers 40 or 56); BlockBits is the block size,
// 64 for 3DES, DES, IDEA and RC2 (SWEET32), 0 for stream ciphers and AEADs
// whose block size does not matter.
type Suite struct {
	ID         uint16      `json:"id"`
	Name       string      `json:"name"`
	Kex        KeyExchange `json:"kex"`
	Auth       Auth        `json:"auth"`
	Cipher     string      `json:"cipher"` // AES, CHACHA20, 3DES, RC4, NULL...
	Mode       Mode        `json:"mode"`
	MAC        string      `json:"mac"` // SHA1, SHA256, SHA384, MD5, or AEAD
	Bits       int         `json:"bits"`
	BlockBits  int         `json:"block_bits,omitempty"`
	Export     bool        `json:"export,omitempty"`
	MinVersion Version     `json:"-"`
}

// ForwardSecret reports whether a stolen server key cannot decrypt a
// recorded session: ephemeral key exchange, or any TLS 1.3 suite.
func (s Suite) ForwardSecret() bool {
	return s.Kex == KexDHE || s.Kex == KexECDHE || s.Kex == KexTLS13
}

// Anonymous reports whether the suite authenticates no one.
func (s Suite) Anonymous() bool { return s.Auth == AuthAnon }

// String is the IANA name with the id, as testssl and SSL Labs print it.
func (s Suite) String() string { return fmt.Sprintf("%s (0x%04x)", s.Name, s.ID) }

// suiteIDs lists the suites the prober offers, by IANA id and name. The
// properties are derived from the name (parseSuiteName) so the table cannot
// disagree with itself; a test checks the names against OpenSSL's table.
// PSK, SRP, Kerberos and GOST suites are left out: they need credentials
// or a national profile a scanner does not have.
var suiteIDs = []struct {
	id   uint16
	name string
}{
	// TLS 1.3 (RFC 8446 Appendix B.4).
	{0x1301, "TLS_AES_128_GCM_SHA256"}, {0x1302, "TLS_AES_256_GCM_SHA384"},
	{0x1303, "TLS_CHACHA20_POLY1305_SHA256"}, {0x1304, "TLS_AES_128_CCM_SHA256"},
	{0x1305, "TLS_AES_128_CCM_8_SHA256"},

	// ECDHE, AEAD first.
	{0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, {0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
	{0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, {0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
	{0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"}, {0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
	{0xc0ac, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"}, {0xc0ad, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM"},
	{0xc0ae, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"}, {0xc0af, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8"},
	{0xc05c, "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256"}, {0xc05d, "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384"},
	{0xc060, "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256"}, {0xc061, "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384"},
	{0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"}, {0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"},
	{0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"}, {0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"},
	{0xc072, "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256"}, {0xc073, "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384"},
	{0xc076, "TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256"}, {0xc077, "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384"},
	{0xc048, "TLS_ECDHE_ECDSA_WITH_ARIA_128_CBC_SHA256"}, {0xc049, "TLS_ECDHE_ECDSA_WITH_ARIA_256_CBC_SHA384"},
	{0xc04c, "TLS_ECDHE_RSA_WITH_ARIA_128_CBC_SHA256"}, {0xc04d, "TLS_ECDHE_RSA_WITH_ARIA_256_CBC_SHA384"},
	{0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"}, {0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
	{0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}, {0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
	{0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"}, {0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
	{0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"}, {0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"},
	{0xc006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA"}, {0xc010, "TLS_ECDHE_RSA_WITH_NULL_SHA"},

	// DHE.
	{0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"}, {0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"},
	{0x00a2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256"}, {0x00a3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384"},
	{0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
	{0xc09e, "TLS_DHE_RSA_WITH_AES_128_CCM"}, {0xc09f, "TLS_DHE_RSA_WITH_AES_256_CCM"},
	{0xc0a2, "TLS_DHE_RSA_WITH_AES_128_CCM_8"}, {0xc0a3, "TLS_DHE_RSA_WITH_AES_256_CCM_8"},
	{0xc052, "TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256"}, {0xc053, "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384"},
	{0xc056, "TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256"}, {0xc057, "TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384"},
	{0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"}, {0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"},
	{0x0040, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256"}, {0x006a, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256"},
	{0x00be, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256"}, {0x00c4, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256"},
	{0x00bd, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256"}, {0x00c3, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256"},
	{0xc044, "TLS_DHE_RSA_WITH_ARIA_128_CBC_SHA256"}, {0xc045, "TLS_DHE_RSA_WITH_ARIA_256_CBC_SHA384"},
	{0xc042, "TLS_DHE_DSS_WITH_ARIA_128_CBC_SHA256"}, {0xc043, "TLS_DHE_DSS_WITH_ARIA_256_CBC_SHA384"},
	{0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"}, {0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"},
	{0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA"}, {0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA"},
	{0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA"}, {0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA"},
	{0x0044, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA"}, {0x0087, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA"},
	{0x009a, "TLS_DHE_RSA_WITH_SEED_CBC_SHA"}, {0x0099, "TLS_DHE_DSS_WITH_SEED_CBC_SHA"},
	{0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"}, {0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA"},
	{0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA"}, {0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA"},
	{0x0066, "TLS_DHE_DSS_WITH_RC4_128_SHA"},
	{0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA"}, {0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA"},
	{0x0063, "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA"}, {0x0065, "TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA"},

	// RSA key transport.
	{0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"}, {0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"},
	{0xc09c, "TLS_RSA_WITH_AES_128_CCM"}, {0xc09d, "TLS_RSA_WITH_AES_256_CCM"},
	{0xc0a0, "TLS_RSA_WITH_AES_128_CCM_8"}, {0xc0a1, "TLS_RSA_WITH_AES_256_CCM_8"},
	{0xc050, "TLS_RSA_WITH_ARIA_128_GCM_SHA256"}, {0xc051, "TLS_RSA_WITH_ARIA_256_GCM_SHA384"},
	{0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"}, {0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"},
	{0x00ba, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256"}, {0x00c0, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256"},
	{0xc03c, "TLS_RSA_WITH_ARIA_128_CBC_SHA256"}, {0xc03d, "TLS_RSA_WITH_ARIA_256_CBC_SHA384"},
	{0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"}, {0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"},
	{0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"}, {0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"},
	{0x0096, "TLS_RSA_WITH_SEED_CBC_SHA"}, {0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA"},
	{0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"}, {0x0009, "TLS_RSA_WITH_DES_CBC_SHA"},
	{0x0005, "TLS_RSA_WITH_RC4_128_SHA"}, {0x0004, "TLS_RSA_WITH_RC4_128_MD5"},
	{0x0062, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA"}, {0x0064, "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA"},
	{0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA"}, {0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5"},
	{0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"},
	{0x003b, "TLS_RSA_WITH_NULL_SHA256"}, {0x0002, "TLS_RSA_WITH_NULL_SHA"}, {0x0001, "TLS_RSA_WITH_NULL_MD5"},

	// Static (EC)DH from the certificate.
	{0xc02d, "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256"}, {0xc02e, "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384"},
	{0xc031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256"}, {0xc032, "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384"},
	{0xc025, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"}, {0xc026, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384"},
	{0xc029, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256"}, {0xc02a, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384"},
	{0xc004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA"}, {0xc005, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA"},
	{0xc00e, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA"}, {0xc00f, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA"},
	{0xc003, "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA"}, {0xc00d, "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA"},
	{0xc002, "TLS_ECDH_ECDSA_WITH_RC4_128_SHA"}, {0xc00c, "TLS_ECDH_RSA_WITH_RC4_128_SHA"},
	{0xc001, "TLS_ECDH_ECDSA_WITH_NULL_SHA"}, {0xc00b, "TLS_ECDH_RSA_WITH_NULL_SHA"},
	{0x00a0, "TLS_DH_RSA_WITH_AES_128_GCM_SHA256"}, {0x00a1, "TLS_DH_RSA_WITH_AES_256_GCM_SHA384"},
	{0x00a4, "TLS_DH_DSS_WITH_AES_128_GCM_SHA256"}, {0x00a5, "TLS_DH_DSS_WITH_AES_256_GCM_SHA384"},
	{0x003f, "TLS_DH_RSA_WITH_AES_128_CBC_SHA256"}, {0x0069, "TLS_DH_RSA_WITH_AES_256_CBC_SHA256"},
	{0x003e, "TLS_DH_DSS_WITH_AES_128_CBC_SHA256"}, {0x0068, "TLS_DH_DSS_WITH_AES_256_CBC_SHA256"},
	{0x0031, "TLS_DH_RSA_WITH_AES_128_CBC_SHA"}, {0x0037, "TLS_DH_RSA_WITH_AES_256_CBC_SHA"},
	{0x0030, "TLS_DH_DSS_WITH_AES_128_CBC_SHA"}, {0x0036, "TLS_DH_DSS_WITH_AES_256_CBC_SHA"},
	{0x0010, "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA"}, {0x000d, "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA"},

	// Anonymous: no authentication at all.
	{0x00a6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256"}, {0x00a7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384"},
	{0x006c, "TLS_DH_anon_WITH_AES_128_CBC_SHA256"}, {0x006d, "TLS_DH_anon_WITH_AES_256_CBC_SHA256"},
	{0x00bf, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256"}, {0x00c5, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256"},
	{0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA"}, {0x003a, "TLS_DH_anon_WITH_AES_256_CBC_SHA"},
	{0x0046, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA"}, {0x0089, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA"},
	{0x009b, "TLS_DH_anon_WITH_SEED_CBC_SHA"}, {0x001b, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA"},
	{0x001a, "TLS_DH_anon_WITH_DES_CBC_SHA"}, {0x0018, "TLS_DH_anon_WITH_RC4_128_MD5"},
	{0x0019, "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA"}, {0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5"},
	{0xc018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"}, {0xc019, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA"},
	{0xc017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA"}, {0xc016, "TLS_ECDH_anon_WITH_RC4_128_SHA"},
	{0xc015, "TLS_ECDH_anon_WITH_NULL_SHA"},
}

// cipherProps maps the bulk-cipher part of a suite name to its properties.
// Longer names come first where one is a prefix of another (CCM_8, CCM).
var cipherProps = []struct {
	name, family string
	mode         Mode
	bits, block  int
}{
	{"CHACHA20_POLY1305", "CHACHA20", ModeAEAD, 256, 0},
	{"AES_128_CCM_8", "AES", ModeAEAD, 128, 0}, {"AES_256_CCM_8", "AES", ModeAEAD, 256, 0},
	{"AES_128_CCM", "AES", ModeAEAD, 128, 0}, {"AES_256_CCM", "AES", ModeAEAD, 256, 0},
	{"AES_128_GCM", "AES", ModeAEAD, 128, 0}, {"AES_256_GCM", "AES", ModeAEAD, 256, 0},
	{"ARIA_128_GCM", "ARIA", ModeAEAD, 128, 0}, {"ARIA_256_GCM", "ARIA", ModeAEAD, 256, 0},
	{"AES_128_CBC", "AES", ModeCBC, 128, 128}, {"AES_256_CBC", "AES", ModeCBC, 256, 128},
	{"CAMELLIA_128_CBC", "CAMELLIA", ModeCBC, 128, 128}, {"CAMELLIA_256_CBC", "CAMELLIA", ModeCBC, 256, 128},
	{"ARIA_128_CBC", "ARIA", ModeCBC, 128, 128}, {"ARIA_256_CBC", "ARIA", ModeCBC, 256, 128},
	{"SEED_CBC", "SEED", ModeCBC, 128, 128}, {"IDEA_CBC", "IDEA", ModeCBC, 128, 64},
	{"3DES_EDE_CBC", "3DES", ModeCBC, 112, 64},
	{"DES40_CBC", "DES", ModeCBC, 40, 64}, {"DES_CBC", "DES", ModeCBC, 56, 64},
	{"RC2_CBC_40", "RC2", ModeCBC, 40, 64},
	{"RC4_128", "RC4", ModeStream, 128, 0}, {"RC4_56", "RC4", ModeStream, 56, 0}, {"RC4_40", "RC4", ModeStream, 40, 0},
	{"NULL", "NULL", ModeNull, 0, 0},
}

var kexProps = map[string]struct {
	kex  KeyExchange
	auth Auth
}{
	"RSA": {KexRSA, AuthRSA}, "DHE_RSA": {KexDHE, AuthRSA}, "DHE_DSS": {KexDHE, AuthDSS},
	"DH_RSA": {KexDH, AuthRSA}, "DH_DSS": {KexDH, AuthDSS}, "DH_anon": {KexDHE, AuthAnon},
	"ECDHE_RSA": {KexECDHE, AuthRSA}, "ECDHE_ECDSA": {KexECDHE, AuthECDSA},
	"ECDH_RSA": {KexECDH, AuthRSA}, "ECDH_ECDSA": {KexECDH, AuthECDSA}, "ECDH_anon": {KexECDHE, AuthAnon},
}

// parseSuiteName derives a suite's properties from its IANA name
// ("TLS_<kex>_WITH_<cipher>_<mac>", or "TLS_<cipher>_<hash>" for TLS 1.3).
func parseSuiteName(id uint16, name string) (Suite, error) {
	s := Suite{ID: id, Name: name}
	rest, ok := strings.CutPrefix(name, "TLS_")
	if !ok {
		return s, fmt.Errorf("tlsprobe: suite name %q lacks the TLS_ prefix", name)
	}
	kexPart, cipherPart, found := strings.Cut(rest, "_WITH_")
	if !found {
		s.Kex, s.Auth, s.MinVersion = KexTLS13, AuthTLS13, VersionTLS13
		cipherPart = rest
	} else {
		s.MinVersion = VersionSSL30
		for _, exp := range []string{"_EXPORT1024", "_EXPORT"} {
			if k, ok := strings.CutSuffix(kexPart, exp); ok {
				kexPart, s.Export = k, true
				break
			}
		}
		kp, ok := kexProps[kexPart]
		if !ok {
			return s, fmt.Errorf("tlsprobe: suite %q: unknown key exchange %q", name, kexPart)
		}
		s.Kex, s.Auth = kp.kex, kp.auth
	}
	for _, c := range cipherProps {
		mac, ok := strings.CutPrefix(cipherPart, c.name)
		if !ok || (mac != "" && mac[0] != '_') {
			continue
		}
		s.Cipher, s.Mode, s.Bits, s.BlockBits = c.family, c.mode, c.bits, c.block
		switch mac = strings.TrimPrefix(mac, "_"); mac {
		case "SHA":
			s.MAC = "SHA1"
		case "MD5", "SHA256", "SHA384":
			s.MAC = mac
		case "":
			if c.mode != ModeAEAD {
				return s, fmt.Errorf("tlsprobe: suite %q has no MAC", name)
			}
		default:
			return s, fmt.Errorf("tlsprobe: suite %q: unknown MAC %q", name, mac)
		}
		if c.mode == ModeAEAD {
			s.MAC = "AEAD"
		}
		if s.Export && s.Bits > 56 {
			return s, fmt.Errorf("tlsprobe: export suite %q claims %d bits", name, s.Bits)
		}
		// AEAD suites and SHA-2 MACs came with TLS 1.2 (RFC 5246, 5288, 5289).
		if s.Kex != KexTLS13 && (c.mode == ModeAEAD || mac == "SHA256" || mac == "SHA384") {
			s.MinVersion = VersionTLS12
		}
		return s, nil
	}
	return s, fmt.Errorf("tlsprobe: suite %q: unknown bulk cipher", name)
}

// suiteTable is built once from suiteIDs; it is never written after.
var suiteTable = func() map[uint16]Suite {
	m := make(map[uint16]Suite, len(suiteIDs))
	for _, e := range suiteIDs {
		s, err := parseSuiteName(e.id, e.name)
		if err != nil {
			panic(err)
		}
		if _, dup := m[e.id]; dup {
			panic(fmt.Sprintf("tlsprobe: suite 0x%04x listed twice", e.id))
		}
		m[e.id] = s
	}
	return m
}()

// LookupSuite returns the properties of a suite the prober knows.
func LookupSuite(id uint16) (Suite, bool) {
	s, ok := suiteTable[id]
	return s, ok
}

// candidates lists, in table order, the suites that may be negotiated at v.
func candidates(v Version) []uint16 {
	var out []uint16
	for _, e := range suiteIDs {
		s := suiteTable[e.id]
		if v == VersionTLS13 {
			if s.Kex == KexTLS13 {
				out = append(out, e.id)
			}
			continue
		}
		if s.Kex != KexTLS13 && v >= s.MinVersion {
			out = append(out, e.id)
		}
	}
	return out
}
