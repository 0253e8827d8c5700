package tlsprobe

import "fmt"

// Version is a TLS protocol version as it appears on the wire.
type Version uint16

// Protocol versions the prober tests. SSL 2.0 has a different hello format
// and is not probed.
const (
	VersionSSL30 Version = 0x0300
	VersionTLS10 Version = 0x0301
	VersionTLS11 Version = 0x0302
	VersionTLS12 Version = 0x0303
	VersionTLS13 Version = 0x0304
)

// probedVersions is the order the report lists versions in.
var probedVersions = []Version{VersionSSL30, VersionTLS10, VersionTLS11, VersionTLS12, VersionTLS13}

func (v Version) String() string {
	switch v {
	case VersionSSL30:
		return "SSLv3"
	case VersionTLS10:
		return "TLS 1.0"
	case VersionTLS11:
		return "TLS 1.1"
	case VersionTLS12:
		return "TLS 1.2"
	case VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", uint16(v))
}

// MarshalText writes the version's name, so JSON reports read "TLS 1.2".
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Group is a named group (RFC 8446 Section 4.2.7; RFC 8422 for curves).
type Group struct {
	ID   uint16 `json:"id"`
	Name string `json:"name"`
	// Bits is the nominal size: the curve's field size or the DH prime's.
	Bits int `json:"bits"`
	// Strength is the RSA-equivalent size (NIST SP 800-57 Part 1 Table 2),
	// the measure SSL Labs' key exchange score uses. A hybrid is at least as
	// strong as its classical half.
	Strength int  `json:"strength"`
	TLS13    bool `json:"-"` // allowed in TLS 1.3
	EC       bool `json:"-"` // usable with ECDHE suites in TLS 1.2 and earlier
	FF       bool `json:"-"` // a finite-field group, usable with DHE in TLS 1.2 (RFC 7919)
}

// groupTable lists the groups the prober knows, strongest-common first:
// that order is also the supported_groups order of enumeration probes.
var groupTable = []Group{
	{ID: 29, Name: "x25519", Bits: 253, Strength: 3072, TLS13: true, EC: true},
	{ID: 23, Name: "secp256r1", Bits: 256, Strength: 3072, TLS13: true, EC: true},
	{ID: 24, Name: "secp384r1", Bits: 384, Strength: 7680, TLS13: true, EC: true},
	{ID: 25, Name: "secp521r1", Bits: 521, Strength: 15360, TLS13: true, EC: true},
	{ID: 30, Name: "x448", Bits: 448, Strength: 7680, TLS13: true, EC: true},
	{ID: 0x11ec, Name: "X25519MLKEM768", Bits: 253, Strength: 3072, TLS13: true},
	{ID: 256, Name: "ffdhe2048", Bits: 2048, Strength: 2048, TLS13: true, FF: true},
	{ID: 257, Name: "ffdhe3072", Bits: 3072, Strength: 3072, TLS13: true, FF: true},
	{ID: 258, Name: "ffdhe4096", Bits: 4096, Strength: 4096, TLS13: true, FF: true},
	{ID: 21, Name: "secp224r1", Bits: 224, Strength: 2048, EC: true},
	{ID: 19, Name: "secp192r1", Bits: 192, Strength: 1024, EC: true},
}

// LookupGroup returns a known group by id.
func LookupGroup(id uint16) (Group, bool) {
	for _, g := range groupTable {
		if g.ID == id {
			return g, true
		}
	}
	return Group{}, false
}

func groupIDs(keep func(Group) bool) []uint16 {
	var out []uint16
	for _, g := range groupTable {
		if keep(g) {
			out = append(out, g.ID)
		}
	}
	return out
}

// signatureSchemes is offered in TLS 1.2 and 1.3 hellos: broad on purpose,
// so a server with an old certificate still answers (RFC 8446 4.2.3).
var signatureSchemes = []uint16{
	0x0403, 0x0503, 0x0603, // ecdsa_secp{256,384,521}r1_sha{256,384,512}
	0x0807, 0x0808, // ed25519, ed448
	0x0804, 0x0805, 0x0806, // rsa_pss_rsae_sha{256,384,512}
	0x0809, 0x080a, 0x080b, // rsa_pss_pss_sha{256,384,512}
	0x0401, 0x0501, 0x0601, // rsa_pkcs1_sha{256,384,512}
	0x0303, 0x0301, 0x0302, // sha224 with ecdsa, rsa, dsa
	0x0203, 0x0201, 0x0202, // sha1 with ecdsa, rsa, dsa
	0x0402, 0x0502, 0x0602, // dsa with sha2
}
