package ocsp

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwright/certwright/internal/pki"
)

// Status is a certificate's status in a response (CertStatus, RFC 6960
// 4.2.1). The zero value is not a status, so a forgotten field never signs
// "good".
type Status int

// The certificate statuses.
const (
	Good Status = iota + 1
	Revoked
	Unknown
)

var certStatusNames = map[Status]string{Good: "good", Revoked: "revoked", Unknown: "unknown"}

// String returns "good", "revoked" or "unknown".
func (s Status) String() string {
	if n, ok := certStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Answer is what one response says about one certificate.
type Answer struct {
	Status Status
	// RevokedAt and Reason are read for Revoked only. ReasonUnspecified
	// leaves revocationReason out: RFC 5280 5.3.1 says the reason SHOULD
	// be absent rather than unspecified (the CA/Browser Forum Baseline
	// Requirements forbid unspecified in CRL entries); x/crypto/ocsp reads
	// an absent reason as 0 and OpenSSL prints no reason.
	RevokedAt time.Time
	Reason    pki.Reason
	// ThisUpdate is when the status was known correct; it is also the
	// response's producedAt, so set it to the signing time (RFC 5019
	// 2.2.4). NextUpdate is required and later (RFC 5019 2.2.4: responders
	// MUST include it). Both are truncated to the second.
	ThisUpdate time.Time
	NextUpdate time.Time
}

// sigAlg is one signature algorithm a responder key can sign with: the DER
// AlgorithmIdentifier it writes and the digest it signs (0: the message
// itself, for Ed25519).
type sigAlg struct {
	alg  x509.SignatureAlgorithm
	hash crypto.Hash
	der  []byte
}

// sigAlgs is the one table of response signature algorithms; the responder
// key picks its entry through pki.SignatureAlgorithmFor, as CA keys do.
var sigAlgs = []sigAlg{
	{x509.SHA256WithRSA, crypto.SHA256, []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}},
	{x509.SHA384WithRSA, crypto.SHA384, []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00}},
	{x509.SHA512WithRSA, crypto.SHA512, []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00}},
	{x509.ECDSAWithSHA256, crypto.SHA256, []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}},
	{x509.ECDSAWithSHA384, crypto.SHA384, []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}},
	{x509.ECDSAWithSHA512, crypto.SHA512, []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}},
	{x509.PureEd25519, 0, []byte{0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}},
}

// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1 (RFC 6960 4.2.1).
var oidBasic = []byte{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01}

// Responder signs responses for one CA with a delegated responder
// certificate (RFC 6960 4.2.2.2), or with the CA certificate itself.
//
// NewResponder checks it at once. A Responder may also be a literal
// &Responder{Issuer: …, Cert: …, Key: …}: the same checks then run on the
// first Sign, which returns their error. The fields must not change after
// the first Sign.
type Responder struct {
	Issuer *x509.Certificate // the CA whose certificates it answers for
	Cert   *x509.Certificate // the responder certificate, or Issuer
	Key    crypto.Signer     // Cert's key

	once sync.Once
	prep *prepared
	err  error
}

// prepared is what every response of a responder repeats.
type prepared struct {
	issuer *Issuer
	sig    sigAlg
	// responderID is the DER [2] EXPLICIT KeyHash: byKey, the shorter
	// form, which RFC 9919 2.2.2 (RFC 5019's successor) tells responders
	// to use.
	responderID []byte
	// certs is the DER [0] EXPLICIT SEQUENCE OF Certificate holding the
	// responder certificate, so a client can check the delegation; empty
	// when the CA signs.
	certs []byte
}

// NewResponder checks that cert is key's certificate and is either the
// issuer itself or a delegated responder certificate it issued (EKU
// id-kp-OCSPSigning), and precomputes everything a response repeats.
// Validity dates are not checked here: rotating the responder before it
// expires is the caller's schedule.
func NewResponder(issuer, cert *x509.Certificate, key crypto.Signer) (*Responder, error) {
	r := &Responder{Issuer: issuer, Cert: cert, Key: key}
	if _, err := r.prepare(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Responder) prepare() (*prepared, error) {
	r.once.Do(func() { r.prep, r.err = prepare(r.Issuer, r.Cert, r.Key) })
	return r.prep, r.err
}

func prepare(issuer, cert *x509.Certificate, key crypto.Signer) (*prepared, error) {
	if issuer == nil || cert == nil || key == nil {
		return nil, errors.New("ocsp: responder needs the issuer, its certificate and its key")
	}
	iss, err := NewIssuer(issuer)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("ocsp: responder key: %w", err)
	}
	if !bytes.Equal(spki, cert.RawSubjectPublicKeyInfo) {
		return nil, errors.New("ocsp: responder key does not match the responder certificate")
	}
	p := &prepared{issuer: iss}
	if !cert.Equal(issuer) {
		if err := cert.CheckSignatureFrom(issuer); err != nil {
			return nil, fmt.Errorf("ocsp: responder certificate is not issued by %q: %w", issuer.Subject.CommonName, err)
		}
		if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, errors.New("ocsp: responder certificate lacks EKU id-kp-OCSPSigning (RFC 6960 4.2.2.2)")
		}
		if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
			return nil, errors.New("ocsp: responder certificate key usage lacks digitalSignature")
		}
		b := cryptobyte.NewBuilder(nil)
		b.AddASN1(explicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(cert.Raw) })
		})
		if p.certs, err = b.Bytes(); err != nil {
			return nil, fmt.Errorf("ocsp: encode responder certificate: %w", err)
		}
	}
	alg := pki.SignatureAlgorithmFor(key.Public())
	i := slices.IndexFunc(sigAlgs, func(s sigAlg) bool { return s.alg == alg })
	if i < 0 {
		return nil, fmt.Errorf("ocsp: no signature algorithm for a %T responder key", key.Public())
	}
	p.sig = sigAlgs[i]
	bits, err := publicKeyBits(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	keyHash := sha1.Sum(bits) // RFC 6960 4.2.1: KeyHash is SHA-1, fixed by the standard
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(explicit2, func(b *cryptobyte.Builder) { b.AddASN1OctetString(keyHash[:]) })
	if p.responderID, err = b.Bytes(); err != nil {
		return nil, fmt.Errorf("ocsp: encode responder id: %w", err)
	}
	return p, nil
}

// Sign returns a DER OCSPResponse (successful, id-pkix-ocsp-basic) with one
// SingleResponse for id, which must name this responder's issuer; its hash
// algorithm is the one echoed, so sign with the CertID of the request being
// answered (Issuer.CertID builds it). producedAt is a.ThisUpdate; no
// response extensions (RFC 5019 2.2.1). rand feeds the signature; nil
// means crypto/rand.
func (r *Responder) Sign(rand io.Reader, id CertID, a Answer) ([]byte, error) {
	p, err := r.prepare()
	if err != nil {
		return nil, err
	}
	if err := p.check(id, &a); err != nil {
		return nil, err
	}
	tbs := cryptobyte.NewBuilder(make([]byte, 0, 160+2*len(id.NameHash)+len(p.responderID)))
	tbs.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // ResponseData
		b.AddBytes(p.responderID)
		// producedAt, then responses: one SingleResponse.
		b.AddASN1GeneralizedTime(a.ThisUpdate)
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { addSingleResponse(b, id, &a) })
		})
	})
	tbsDER, err := tbs.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ocsp: encode response: %w", err)
	}
	sig, err := p.signature(r.Key, rand, tbsDER)
	if err != nil {
		return nil, err
	}
	out := cryptobyte.NewBuilder(make([]byte, 0, len(tbsDER)+len(sig)+len(p.certs)+48))
	out.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPResponse
		b.AddASN1Enum(int64(StatusSuccessful))
		b.AddASN1(explicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // ResponseBytes
				b.AddASN1(asn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(oidBasic) })
				b.AddASN1(asn1.OCTET_STRING, func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // BasicOCSPResponse
						b.AddBytes(tbsDER)
						b.AddBytes(p.sig.der)
						b.AddASN1BitString(sig)
						b.AddBytes(p.certs)
					})
				})
			})
		})
	})
	der, err := out.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ocsp: encode response: %w", err)
	}
	return der, nil
}

// check validates id and a, and normalises a's times to UTC seconds.
func (p *prepared) check(id CertID, a *Answer) error {
	n := hashIndex(id.Hash)
	if n < 0 {
		return fmt.Errorf("%w: %v", ErrUnsupportedHash, id.Hash)
	}
	if id.Serial == nil || id.Serial.Sign() < 0 {
		return errors.New("ocsp: sign: CertID serial must be a non-negative number")
	}
	if !p.issuer.Matches(id) {
		return fmt.Errorf("ocsp: sign: CertID does not name %q", p.issuer.cert.Subject.CommonName)
	}
	if a.ThisUpdate.IsZero() || a.NextUpdate.IsZero() {
		return errors.New("ocsp: sign: thisUpdate and nextUpdate are required")
	}
	a.ThisUpdate = a.ThisUpdate.UTC().Truncate(time.Second)
	a.NextUpdate = a.NextUpdate.UTC().Truncate(time.Second)
	if !a.NextUpdate.After(a.ThisUpdate) {
		return errors.New("ocsp: sign: nextUpdate must be after thisUpdate")
	}
	switch a.Status {
	case Good, Unknown:
	case Revoked:
		if a.RevokedAt.IsZero() {
			return errors.New("ocsp: sign: a revoked answer needs the revocation time")
		}
		a.RevokedAt = a.RevokedAt.UTC().Truncate(time.Second)
		if a.RevokedAt.After(a.ThisUpdate) {
			return errors.New("ocsp: sign: revocation time is after thisUpdate")
		}
		if !a.Reason.Valid() {
			return fmt.Errorf("ocsp: sign: revocation reason %d is not supported", int(a.Reason))
		}
	default:
		return fmt.Errorf("ocsp: sign: %v is not a certificate status", a.Status)
	}
	return nil
}

// addSingleResponse writes the content of a SingleResponse (RFC 6960 4.2.1).
func addSingleResponse(b *cryptobyte.Builder, id CertID, a *Answer) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // CertID
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			// NULL parameters, as OpenSSL and x/crypto/ocsp write them;
			// clients compare the OID only.
			b.AddASN1(asn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(hashAlgs[hashIndex(id.Hash)].oid) })
			b.AddASN1NULL()
		})
		b.AddASN1OctetString(id.NameHash)
		b.AddASN1OctetString(id.KeyHash)
		b.AddASN1BigInt(id.Serial)
	})
	switch a.Status {
	case Good: // good [0] IMPLICIT NULL
		b.AddASN1(asn1.Tag(0).ContextSpecific(), func(*cryptobyte.Builder) {})
	case Revoked: // revoked [1] IMPLICIT RevokedInfo
		b.AddASN1(asn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1GeneralizedTime(a.RevokedAt)
			if a.Reason != pki.ReasonUnspecified {
				b.AddASN1(explicit0, func(b *cryptobyte.Builder) { b.AddASN1Enum(int64(a.Reason)) })
			}
		})
	case Unknown: // unknown [2] IMPLICIT UnknownInfo (NULL)
		b.AddASN1(asn1.Tag(2).ContextSpecific(), func(*cryptobyte.Builder) {})
	}
	b.AddASN1GeneralizedTime(a.ThisUpdate)
	b.AddASN1(explicit0, func(b *cryptobyte.Builder) { b.AddASN1GeneralizedTime(a.NextUpdate) })
}

// signature signs tbs with the responder key.
func (p *prepared) signature(key crypto.Signer, rnd io.Reader, tbs []byte) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	msg := tbs
	if p.sig.hash != 0 {
		h := p.sig.hash.New()
		h.Write(tbs)
		msg = h.Sum(nil)
	}
	sig, err := key.Sign(rnd, msg, p.sig.hash)
	if err != nil {
		return nil, fmt.Errorf("ocsp: sign response: %w", err)
	}
	return sig, nil
}
