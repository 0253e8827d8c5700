package lint

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// encodeTBS encodes the TBSCertificate that x509.CreateCertificate would
// sign for tmpl, issuer and pub, byte for byte, without encoding/asn1's
// reflection (which made building the TBS about 40 µs of an issuance). It
// covers what an end-entity template uses — serial, validity, subject, key
// usage, extended key usage, basic constraints of a non-CA, key
// identifiers, authority information access, subject alternative names
// and CRL distribution points — and reports ok false for anything else
// (a CA template, policies, name constraints, extra extensions, a value
// x509 would refuse), which NewTBS then hands to x509 itself.
// TestEncodeTBSMatchesX509 holds the two encodings equal.
func encodeTBS(tmpl, issuer *x509.Certificate, pub crypto.PublicKey) (raw []byte, opts crypto.SignerOpts, sigAlg []byte, ok bool) {
	if !leafTemplate(tmpl) || len(issuer.RawSubject) == 0 {
		return nil, nil, nil, false
	}
	alg, hash, ok := signatureAlgorithm(tmpl.SignatureAlgorithm, issuer.PublicKey)
	if !ok || !subjectKeyType(pub) {
		return nil, nil, nil, false
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, nil, false
	}
	subject := tmpl.RawSubject
	if len(subject) == 0 {
		if subject, err = asn1.Marshal(tmpl.Subject.ToRDNSequence()); err != nil {
			return nil, nil, nil, false
		}
	}
	aki := tmpl.AuthorityKeyId
	if !bytes.Equal(issuer.RawSubject, subject) && len(issuer.SubjectKeyId) > 0 {
		aki = issuer.SubjectKeyId
	}
	exts, ok := leafExtensions(tmpl, bytes.Equal(subject, emptyName), aki)
	if !ok {
		return nil, nil, nil, false
	}

	b := cryptobyte.NewBuilder(make([]byte, 0, 512+len(subject)+len(issuer.RawSubject)+len(spki)+len(exts)))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2) // v3
		})
		b.AddASN1BigInt(tmpl.SerialNumber)
		b.AddBytes(alg)
		b.AddBytes(issuer.RawSubject)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, tmpl.NotBefore)
			addTime(b, tmpl.NotAfter)
		})
		b.AddBytes(subject)
		b.AddBytes(spki)
		if len(exts) > 0 {
			b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(exts) })
			})
		}
	})
	raw, err = b.Bytes()
	if err != nil {
		return nil, nil, nil, false
	}
	return raw, hash, alg, true
}

// emptyName is an empty RDNSequence, for which x509 marks the subject
// alternative name critical (RFC 5280, section 4.2.1.6).
var emptyName = []byte{0x30, 0}

// leafTemplate reports whether tmpl uses only what encodeTBS encodes, with
// values x509.CreateCertificate accepts.
func leafTemplate(t *x509.Certificate) bool {
	return t.SerialNumber != nil && t.SerialNumber.Sign() > 0 &&
		!t.IsCA && (!t.BasicConstraintsValid || t.MaxPathLen == -1 || (t.MaxPathLen == 0 && !t.MaxPathLenZero)) &&
		len(t.ExtraExtensions) == 0 && len(t.Policies) == 0 && len(t.PolicyIdentifiers) == 0 &&
		len(t.PermittedDNSDomains) == 0 && len(t.ExcludedDNSDomains) == 0 &&
		len(t.PermittedIPRanges) == 0 && len(t.ExcludedIPRanges) == 0 &&
		len(t.PermittedEmailAddresses) == 0 && len(t.ExcludedEmailAddresses) == 0 &&
		len(t.PermittedURIDomains) == 0 && len(t.ExcludedURIDomains) == 0
}

// Signature AlgorithmIdentifiers as x509 writes them: ECDSA and Ed25519
// without parameters, RSA PKCS #1 v1.5 with NULL.
var (
	algECDSASHA256 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	algECDSASHA384 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
	algECDSASHA512 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}
	algRSASHA256   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}
	algRSASHA384   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00}
	algRSASHA512   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00}
	algEd25519     = []byte{0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}
)

// signatureAlgorithm returns the AlgorithmIdentifier and signer options
// x509 uses for sig (0: the issuer key's default) and the issuer's key, or
// false for a pair encodeTBS leaves to x509 (RSA-PSS, a mismatch).
func signatureAlgorithm(sig x509.SignatureAlgorithm, issuerPub crypto.PublicKey) ([]byte, crypto.SignerOpts, bool) {
	switch k := issuerPub.(type) {
	case *ecdsa.PublicKey:
		// x509 signs only with the named curves, compared by identity.
		var def x509.SignatureAlgorithm
		switch k.Curve {
		case elliptic.P256():
			def = x509.ECDSAWithSHA256
		case elliptic.P384():
			def = x509.ECDSAWithSHA384
		case elliptic.P521():
			def = x509.ECDSAWithSHA512
		default:
			return nil, nil, false
		}
		if sig == 0 {
			sig = def
		}
		switch sig {
		case x509.ECDSAWithSHA256:
			return algECDSASHA256, crypto.SHA256, true
		case x509.ECDSAWithSHA384:
			return algECDSASHA384, crypto.SHA384, true
		case x509.ECDSAWithSHA512:
			return algECDSASHA512, crypto.SHA512, true
		}
	case *rsa.PublicKey:
		switch sig {
		case 0, x509.SHA256WithRSA:
			return algRSASHA256, crypto.SHA256, true
		case x509.SHA384WithRSA:
			return algRSASHA384, crypto.SHA384, true
		case x509.SHA512WithRSA:
			return algRSASHA512, crypto.SHA512, true
		}
	case ed25519.PublicKey:
		if sig == 0 || sig == x509.PureEd25519 {
			return algEd25519, crypto.Hash(0), true
		}
	}
	return nil, nil, false
}

// subjectKeyType reports whether pub is of a type x509 certifies: RSA,
// ECDSA (MarshalPKIXPublicKey refuses other curves) or Ed25519 — not, for
// one, an X25519 key, which MarshalPKIXPublicKey encodes but
// CreateCertificate refuses.
func subjectKeyType(pub crypto.PublicKey) bool {
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false
}

// addTime writes t as encoding/asn1 does: UTCTime from 1950 to 2049,
// GeneralizedTime otherwise, in UTC to the second.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC()
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}

var (
	oidKeyUsage        = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidBasicConstraint = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidSubjectKeyID    = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAuthorityKeyID  = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidAuthorityInfo   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidSubjectAltName  = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidCRLDistribution = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidOCSP            = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
	oidCAIssuers       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 2}
)

// extKeyUsageOIDs are the OIDs of x509's named extended key usages.
var extKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageAny:                            {2, 5, 29, 37, 0},
	x509.ExtKeyUsageServerAuth:                     {1, 3, 6, 1, 5, 5, 7, 3, 1},
	x509.ExtKeyUsageClientAuth:                     {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageCodeSigning:                    {1, 3, 6, 1, 5, 5, 7, 3, 3},
	x509.ExtKeyUsageEmailProtection:                {1, 3, 6, 1, 5, 5, 7, 3, 4},
	x509.ExtKeyUsageIPSECEndSystem:                 {1, 3, 6, 1, 5, 5, 7, 3, 5},
	x509.ExtKeyUsageIPSECTunnel:                    {1, 3, 6, 1, 5, 5, 7, 3, 6},
	x509.ExtKeyUsageIPSECUser:                      {1, 3, 6, 1, 5, 5, 7, 3, 7},
	x509.ExtKeyUsageTimeStamping:                   {1, 3, 6, 1, 5, 5, 7, 3, 8},
	x509.ExtKeyUsageOCSPSigning:                    {1, 3, 6, 1, 5, 5, 7, 3, 9},
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     {1, 3, 6, 1, 4, 1, 311, 10, 3, 3},
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      {2, 16, 840, 1, 113730, 4, 1},
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: {1, 3, 6, 1, 4, 1, 311, 2, 1, 22},
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     {1, 3, 6, 1, 4, 1, 311, 61, 1, 1},
}

// leafExtensions encodes tmpl's extensions (the contents of the
// Extensions SEQUENCE) in x509's order, with aki the authority key
// identifier x509 picks; false for a value x509 would refuse.
func leafExtensions(t *x509.Certificate, subjectEmpty bool, aki []byte) ([]byte, bool) {
	b := cryptobyte.NewBuilder(make([]byte, 0, 512))
	ok := true
	ext := func(oid asn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			if critical {
				b.AddASN1Boolean(true)
			}
			b.AddASN1(cbasn1.OCTET_STRING, value)
		})
	}
	if t.KeyUsage != 0 {
		ext(oidKeyUsage, true, func(b *cryptobyte.Builder) { addKeyUsage(b, t.KeyUsage) })
	}
	if len(t.ExtKeyUsage) > 0 || len(t.UnknownExtKeyUsage) > 0 {
		ext(oidExtKeyUsage, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range t.ExtKeyUsage {
					oid, known := extKeyUsageOIDs[u]
					if !known {
						ok = false
						return
					}
					b.AddASN1ObjectIdentifier(oid)
				}
				for _, oid := range t.UnknownExtKeyUsage {
					b.AddASN1ObjectIdentifier(oid)
				}
			})
		})
	}
	if t.BasicConstraintsValid {
		// Not a CA, no path length: both fields take their defaults.
		ext(oidBasicConstraint, true, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
		})
	}
	if len(t.SubjectKeyId) > 0 {
		ext(oidSubjectKeyID, false, func(b *cryptobyte.Builder) { b.AddASN1OctetString(t.SubjectKeyId) })
	}
	if len(aki) > 0 {
		ext(oidAuthorityKeyID, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(aki) })
			})
		})
	}
	if len(t.OCSPServer) > 0 || len(t.IssuingCertificateURL) > 0 {
		ext(oidAuthorityInfo, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				access := func(method asn1.ObjectIdentifier, url string) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(method)
						addGeneralName(b, 6, url)
					})
				}
				for _, u := range t.OCSPServer {
					access(oidOCSP, u)
				}
				for _, u := range t.IssuingCertificateURL {
					access(oidCAIssuers, u)
				}
			})
		})
	}
	if len(t.DNSNames) > 0 || len(t.EmailAddresses) > 0 || len(t.IPAddresses) > 0 || len(t.URIs) > 0 {
		ext(oidSubjectAltName, subjectEmpty, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				ia5 := func(tag uint8, s string) {
					if !isIA5(s) {
						ok = false // x509 refuses it
						return
					}
					addGeneralName(b, tag, s)
				}
				for _, n := range t.DNSNames {
					ia5(2, n)
				}
				for _, e := range t.EmailAddresses {
					ia5(1, e)
				}
				for _, ip := range t.IPAddresses {
					if v4 := ip.To4(); v4 != nil {
						ip = v4
					}
					b.AddASN1(cbasn1.Tag(7).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ip) })
				}
				for _, u := range t.URIs {
					ia5(6, u.String())
				}
			})
		})
	}
	if len(t.CRLDistributionPoints) > 0 {
		ext(oidCRLDistribution, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range t.CRLDistributionPoints {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
								addGeneralName(b, 6, u)
							})
						})
					})
				}
			})
		})
	}
	out, err := b.Bytes()
	if err != nil || !ok {
		return nil, false
	}
	return out, true
}

// addGeneralName writes a GeneralName of the string kind tag (1 email,
// 2 DNS, 6 URI), implicitly tagged.
func addGeneralName(b *cryptobyte.Builder, tag uint8, s string) {
	b.AddASN1(cbasn1.Tag(tag).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}

// addKeyUsage writes ku as a BIT STRING the way x509 does: bits 0-15,
// bit 0 first, in one octet or two when a bit of the second is set, with
// the trailing zero bits counted as unused.
func addKeyUsage(b *cryptobyte.Builder, ku x509.KeyUsage) {
	a := []byte{reverseBits(byte(ku)), reverseBits(byte(ku >> 8))}
	if a[1] == 0 {
		a = a[:1]
	}
	bitLen := 8 * len(a)
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != 0 {
			bitLen -= trailingZeros(a[i])
			break
		}
		bitLen -= 8
	}
	b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
		b.AddUint8(uint8((8 - bitLen%8) % 8))
		b.AddBytes(a)
	})
}

func reverseBits(in byte) byte {
	var out byte
	for i := range 8 {
		out |= (in >> i & 1) << (7 - i)
	}
	return out
}

// trailingZeros counts the zero bits below the lowest set bit of v (not 0).
func trailingZeros(v byte) int {
	n := 0
	for v&1 == 0 {
		v >>= 1
		n++
	}
	return n
}

// isIA5 reports whether s is all ASCII, what x509 requires of the names
// it writes as IA5String.
func isIA5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
