package est

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
)

// MaxBody bounds an EST request body (base64 of a CSR): 64 KiB holds a
// CSR with an RSA 8192 key and many names several times over.
const MaxBody = 64 << 10

// DecodeBody decodes an EST request body: base64 (RFC 7030 uses
// Content-Transfer-Encoding: base64) with or without line breaks, as
// openssl base64 and curl send it. Anything else is ErrInvalid naming
// the first offending byte.
func DecodeBody(body []byte) ([]byte, error) {
	if len(body) > MaxBody {
		return nil, invalid("the body is %d bytes; at most %d", len(body), MaxBody)
	}
	clean := make([]byte, 0, len(body))
	for i, c := range body {
		switch {
		case c == '\r' || c == '\n' || c == ' ' || c == '\t':
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
			clean = append(clean, c)
		default:
			return nil, invalid("the body is not base64: byte %d is %q; send the DER request base64-encoded (openssl base64)", i, c)
		}
	}
	if len(clean) == 0 {
		return nil, invalid("the body is empty; send a base64-encoded PKCS#10 request")
	}
	der, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, invalid("the body is not valid base64: %v; send the DER request base64-encoded (openssl base64)", err)
	}
	return der, nil
}

// EncodeBody base64-encodes der in lines of 64 characters, each ended by
// CRLF (RFC 2045 as RFC 7030 uses it).
func EncodeBody(der []byte) []byte {
	s := base64.StdEncoding.EncodeToString(der)
	var b bytes.Buffer
	for len(s) > 64 {
		b.WriteString(s[:64])
		b.WriteString("\r\n")
		s = s[64:]
	}
	b.WriteString(s)
	b.WriteString("\r\n")
	return b.Bytes()
}

// CertsOnly encodes certificates as a degenerate PKCS#7 SignedData
// ("certs-only", RFC 7030 4.1.3 and 4.2.3), DER.
func CertsOnly(certs ...*x509.Certificate) ([]byte, error) {
	var raw []byte
	for _, c := range certs {
		raw = append(raw, c.Raw...)
	}
	der, err := pkcs7.DegenerateCertificate(raw)
	if err != nil {
		return nil, fmt.Errorf("est: PKCS#7 certs-only: %w", err)
	}
	return der, nil
}

// PKCS8 encodes a server-generated key for application/pkcs8 (RFC 7030
// 4.4.2, without additional encryption: the TLS channel protects it).
func PKCS8(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("est: PKCS#8: %w", err)
	}
	return der, nil
}

// Maximum attributes a CSR may carry, and the size of a challenge password.
const (
	maxAttributes = 64
	maxPassword   = 1024
)

type csrInfo struct {
	Version    int
	Subject    asn1.RawValue
	PublicKey  asn1.RawValue
	Attributes []asn1.RawValue `asn1:"tag:0,optional,set"`
}

type csrAttribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

// ChallengePassword returns the challengePassword attribute of a CSR's
// to-be-signed bytes: ok false when there is none. A malformed attribute
// list, or a challengePassword that is not one string, is an error.
func ChallengePassword(tbs []byte) (pw string, ok bool, err error) {
	var info csrInfo
	rest, err := asn1.Unmarshal(tbs, &info)
	if err != nil {
		return "", false, fmt.Errorf("malformed request info: %w", err)
	}
	if len(rest) > 0 {
		return "", false, errors.New("trailing data after the request info")
	}
	if len(info.Attributes) > maxAttributes {
		return "", false, fmt.Errorf("%d attributes, at most %d", len(info.Attributes), maxAttributes)
	}
	for _, raw := range info.Attributes {
		var a csrAttribute
		if rest, err := asn1.Unmarshal(raw.FullBytes, &a); err != nil || len(rest) > 0 {
			return "", false, errors.New("malformed attribute")
		}
		if !a.Type.Equal(oidChallengePassword) {
			continue
		}
		if ok {
			return "", false, errors.New("two challengePassword attributes")
		}
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(a.Values.Bytes, &v)
		if err != nil || len(rest) > 0 {
			return "", false, errors.New("challengePassword must hold exactly one value")
		}
		switch v.Tag {
		case asn1.TagPrintableString, asn1.TagUTF8String, asn1.TagIA5String:
		default:
			return "", false, fmt.Errorf("challengePassword has ASN.1 tag %d; want a PrintableString, UTF8String or IA5String", v.Tag)
		}
		if v.Class != asn1.ClassUniversal || len(v.Bytes) > maxPassword {
			return "", false, errors.New("challengePassword is not a short universal string")
		}
		pw, ok = string(v.Bytes), true
	}
	return pw, ok, nil
}

// Object identifiers of the CSR attributes a provisioner asks for.
var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidRSA         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidEd25519     = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidP256        = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384        = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidECDSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidRSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
)

type attrOID struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.ObjectIdentifier `asn1:"set"`
}

// csrAttrs is the CsrAttrs (RFC 7030 4.5.2) of a profile: the channel
// binding (challengePassword), and the key type and signature algorithm
// of the profile's first key rule, which serverkeygen also generates.
func csrAttrs(prof *profile.Profile) ([]byte, error) {
	items := []any{asn1.ObjectIdentifier(oidChallengePassword)}
	switch prof.DefaultKeyAlgorithm() {
	case pki.ECDSAP256:
		items = append(items, attrOID{Type: oidECPublicKey, Values: []asn1.ObjectIdentifier{oidP256}}, oidECDSASHA256)
	case pki.ECDSAP384:
		items = append(items, attrOID{Type: oidECPublicKey, Values: []asn1.ObjectIdentifier{oidP384}}, oidECDSASHA384)
	case pki.Ed25519:
		items = append(items, oidEd25519)
	default:
		items = append(items, oidRSA, oidRSASHA256)
	}
	var body []byte
	for _, it := range items {
		b, err := asn1.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("est: csrattrs: %w", err)
		}
		body = append(body, b...)
	}
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
}
