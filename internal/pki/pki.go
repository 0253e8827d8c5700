// Package pki owns the small X.509 value types every other package shares:
// key algorithms, serial numbers, fingerprints and PEM/DER helpers.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
	"time"
)

// Key families.
const (
	FamilyRSA     = "RSA"
	FamilyECDSA   = "ECDSA"
	FamilyEd25519 = "Ed25519"
)

// KeyAlgorithm names one concrete key type and size, e.g. "ecdsa-p256".
type KeyAlgorithm string

// Supported key algorithms.
const (
	RSA2048   KeyAlgorithm = "rsa-2048"
	RSA3072   KeyAlgorithm = "rsa-3072"
	RSA4096   KeyAlgorithm = "rsa-4096"
	ECDSAP256 KeyAlgorithm = "ecdsa-p256"
	ECDSAP384 KeyAlgorithm = "ecdsa-p384"
	Ed25519   KeyAlgorithm = "ed25519"
)

type keyAlgInfo struct {
	family string
	bits   int
	curve  elliptic.Curve
}

// keyAlgorithms is the one table of key types Certwright can generate.
var keyAlgorithms = map[KeyAlgorithm]keyAlgInfo{
	RSA2048:   {FamilyRSA, 2048, nil},
	RSA3072:   {FamilyRSA, 3072, nil},
	RSA4096:   {FamilyRSA, 4096, nil},
	ECDSAP256: {FamilyECDSA, 256, elliptic.P256()},
	ECDSAP384: {FamilyECDSA, 384, elliptic.P384()},
	Ed25519:   {FamilyEd25519, 256, nil},
}

// ErrUnknownKeyAlgorithm is returned for a key algorithm name not in the table.
var ErrUnknownKeyAlgorithm = errors.New("pki: unknown key algorithm")

// KeyAlgorithms lists the supported algorithm names in a stable order.
func KeyAlgorithms() []KeyAlgorithm {
	out := make([]KeyAlgorithm, 0, len(keyAlgorithms))
	for k := range keyAlgorithms {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ParseKeyAlgorithm accepts the canonical names and a few common spellings
// ("rsa2048", "p256", "ec-p384", "ecdsa-p-256").
func ParseKeyAlgorithm(s string) (KeyAlgorithm, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	n = strings.NewReplacer("_", "-", "p-", "p").Replace(n)
	aliases := map[string]KeyAlgorithm{
		"rsa2048": RSA2048, "rsa3072": RSA3072, "rsa4096": RSA4096,
		"p256": ECDSAP256, "ec-p256": ECDSAP256, "ecdsa-p256": ECDSAP256, "ecdsap256": ECDSAP256,
		"p384": ECDSAP384, "ec-p384": ECDSAP384, "ecdsa-p384": ECDSAP384, "ecdsap384": ECDSAP384,
		"ed25519": Ed25519,
	}
	if a, ok := aliases[strings.ReplaceAll(n, "rsa-", "rsa")]; ok {
		return a, nil
	}
	if a, ok := aliases[n]; ok {
		return a, nil
	}
	return "", fmt.Errorf("%w %q (supported: %s)", ErrUnknownKeyAlgorithm, s, joinAlgs())
}

func joinAlgs() string {
	var s []string
	for _, a := range KeyAlgorithms() {
		s = append(s, string(a))
	}
	return strings.Join(s, ", ")
}

// Family returns "RSA", "ECDSA" or "Ed25519".
func (a KeyAlgorithm) Family() string { return keyAlgorithms[a].family }

// Bits returns the RSA modulus size or the curve size.
func (a KeyAlgorithm) Bits() int { return keyAlgorithms[a].bits }

// Generate creates a new private key of this algorithm.
func (a KeyAlgorithm) Generate(r io.Reader) (crypto.Signer, error) {
	info, ok := keyAlgorithms[a]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKeyAlgorithm, string(a))
	}
	if r == nil {
		r = rand.Reader
	}
	switch info.family {
	case FamilyRSA:
		return rsa.GenerateKey(r, info.bits)
	case FamilyECDSA:
		return ecdsa.GenerateKey(info.curve, r)
	default:
		_, priv, err := ed25519.GenerateKey(r)
		return priv, err
	}
}

// DescribeKey reports the family and size of a public key. Curves other than
// P-256/P-384/P-521 and key types other than RSA, ECDSA and Ed25519 are errors.
func DescribeKey(pub crypto.PublicKey) (family string, bits int, err error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return FamilyRSA, k.N.BitLen(), nil
	case *ecdsa.PublicKey:
		return FamilyECDSA, k.Curve.Params().BitSize, nil
	case ed25519.PublicKey:
		return FamilyEd25519, 256, nil
	default:
		return "", 0, fmt.Errorf("pki: unsupported public key type %T", pub)
	}
}

// AlgorithmOf returns the KeyAlgorithm matching a public key, if it is one
// Certwright can generate.
func AlgorithmOf(pub crypto.PublicKey) (KeyAlgorithm, error) {
	fam, bits, err := DescribeKey(pub)
	if err != nil {
		return "", err
	}
	for name, info := range keyAlgorithms {
		if info.family == fam && info.bits == bits {
			return name, nil
		}
	}
	return "", fmt.Errorf("pki: no key algorithm for %s-%d", fam, bits)
}

// Serial numbers are 19 octets: the issuance time in Unix milliseconds
// (6 octets, big-endian) followed by 13 octets (104 bits) from the CSPRNG.
// The random part is well above the 64 bits CA/Browser Forum BR 7.1 asks
// for, and it follows the time, so the serial stays unpredictable; the time
// prefix keeps serials in issuance order, so the stores' serial-keyed
// indexes grow at their end instead of at random pages (on SQLite this
// halves the cost of an issuance's insert). The time it reveals is the
// issuance time, to the millisecond (notBefore, a minute earlier to the
// second, says nearly as much).
const (
	serialTimeOctets   = 6
	serialRandomOctets = 13
)

// NewSerial returns a positive serial number for a certificate issued now;
// see NewSerialAt.
func NewSerial(r io.Reader) (*big.Int, error) { return NewSerialAt(r, time.Now()) }

// NewSerialAt returns a positive serial number for a certificate issued at
// t: t in Unix milliseconds (6 octets) then 104 random bits read from r
// (crypto/rand when r is nil). From November 2004 until the year 6429 (2^47
// milliseconds) the first octet is non-zero and below 0x80, so the DER INTEGER is always 19 octets
// with no sign octet, within RFC 5280's 20-octet limit.
func NewSerialAt(r io.Reader, t time.Time) (*big.Int, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [serialTimeOctets + serialRandomOctets]byte
	ms := max(t.UnixMilli(), 0)
	binary.BigEndian.PutUint64(b[:8], uint64(ms)<<16) // the low 48 bits in the first 6 octets
	b[0] &= 0x7f                                      // never negative, whatever the clock says
	for {
		if _, err := io.ReadFull(r, b[serialTimeOctets:]); err != nil {
			return nil, fmt.Errorf("pki: read serial randomness: %w", err)
		}
		s := new(big.Int).SetBytes(b[:])
		if s.Sign() > 0 {
			return s, nil
		}
	}
}

// SerialHex formats a serial as lowercase hex, the form used in URLs and the CLI.
func SerialHex(s *big.Int) string { return hex.EncodeToString(s.Bytes()) }

// NormalizeSerial accepts hex with optional colons or 0x prefix and returns the
// canonical lowercase form.
func NormalizeSerial(s string) (string, error) {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	s = strings.ReplaceAll(s, ":", "")
	if s == "" || len(s) > 64 {
		return "", fmt.Errorf("pki: serial %q: want 1-64 hex digits", s)
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 {
		return "", fmt.Errorf("pki: serial %q is not a positive hex number", s)
	}
	return SerialHex(n), nil
}

// Fingerprint is the lowercase hex SHA-256 of DER bytes.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// FingerprintColons formats the SHA-256 of DER as AA:BB:... as openssl prints it.
func FingerprintColons(der []byte) string {
	h := sha256.Sum256(der)
	return ColonHex(h[:])
}

// ColonHex formats bytes as AA:BB:..., as openssl prints key identifiers.
func ColonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

// CertPEM encodes DER certificates as concatenated PEM blocks, byte for
// byte as pem.EncodeToMemory does (64-character lines), into one buffer
// sized up front: every issuance answer carries a leaf and its chain.
func CertPEM(ders ...[]byte) []byte {
	const (
		begin = "-----BEGIN CERTIFICATE-----\n"
		end   = "-----END CERTIFICATE-----\n"
		line  = 48 // DER bytes per 64-character base64 line
	)
	n := 0
	for _, d := range ders {
		enc := base64.StdEncoding.EncodedLen(len(d))
		n += len(begin) + enc + (enc+63)/64 + len(end)
	}
	out := make([]byte, 0, n)
	for _, d := range ders {
		out = append(out, begin...)
		for len(d) > 0 {
			chunk := d[:min(line, len(d))]
			out = base64.StdEncoding.AppendEncode(out, chunk)
			out = append(out, '\n')
			d = d[len(chunk):]
		}
		out = append(out, end...)
	}
	return out
}

// MaxPEMInput bounds every PEM document Certwright parses from outside.
const MaxPEMInput = 256 << 10

// ErrNoPEM is returned when input holds no PEM block of the wanted type.
var ErrNoPEM = errors.New("pki: no PEM block found")

// ParseCertificates reads all CERTIFICATE blocks from PEM, or a single DER
// certificate when the input is not PEM.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if len(data) > MaxPEMInput {
		return nil, fmt.Errorf("pki: certificate input of %d bytes exceeds %d", len(data), MaxPEMInput)
	}
	var certs []*x509.Certificate
	rest := data
	sawPEM := false
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		sawPEM = true
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if !sawPEM && len(data) > 0 {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("pki: input is neither PEM nor a DER certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: want CERTIFICATE", ErrNoPEM)
	}
	return certs, nil
}

// ParseCSR reads one PEM "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST")
// or raw DER, and verifies its self-signature.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxPEMInput {
		return nil, fmt.Errorf("pki: CSR of %d bytes exceeds %d", len(data), MaxPEMInput)
	}
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("pki: PEM block is %q, want CERTIFICATE REQUEST", b.Type)
		}
		der = b.Bytes
	} else if strings.Contains(string(data), "-----BEGIN") {
		return nil, errors.New("pki: CSR PEM is malformed or truncated")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: CSR signature does not verify: %w", err)
	}
	return csr, nil
}

// SignatureAlgorithmFor picks the signature algorithm a CA key signs with:
// SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521, Ed25519 pure.
func SignatureAlgorithmFor(pub crypto.PublicKey) x509.SignatureAlgorithm {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return x509.SHA256WithRSA
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 384:
			return x509.ECDSAWithSHA384
		case 521:
			return x509.ECDSAWithSHA512
		}
		return x509.ECDSAWithSHA256
	case ed25519.PublicKey:
		return x509.PureEd25519
	}
	return x509.UnknownSignatureAlgorithm
}

// SubjectKeyID computes the RFC 7093 method 1 key identifier: the leftmost
// 160 bits of the SHA-256 of the subjectPublicKey bit string.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal public key: %w", err)
	}
	return SubjectKeyIDOf(spki)
}

// SelfSigned reports whether c names itself as issuer and its signature
// verifies with its own key: the shape of a root certificate.
func SelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}
