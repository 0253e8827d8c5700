package lint

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TBS is a to-be-signed certificate, built once: the DER of its
// TBSCertificate exactly as x509.CreateCertificate would sign it for the
// issuer, and the options the issuer's key signs it with. The Linter lints
// it under a throwaway signature (CheckTBS); the caller then has the real
// key sign Raw with Opts and assembles the certificate (Certificate).
type TBS struct {
	Raw  []byte
	Opts crypto.SignerOpts
	// sigAlg is the DER of the AlgorithmIdentifier inside Raw, which the
	// certificate repeats outside it.
	sigAlg    []byte
	issuerPub crypto.PublicKey
}

// errCaptured stops x509.CreateCertificate at the signature, once the
// capturing signer has the TBS.
var errCaptured = errors.New("lint: to-be-signed certificate captured")

// tbsCapture is a crypto.MessageSigner that records what
// x509.CreateCertificate asks it to sign and signs nothing. Its Public is
// the real issuer's key, so x509 picks the same algorithm and writes the
// same issuer fields as it will for the real signature (and its check that
// the signer matches the parent passes).
type tbsCapture struct {
	pub  crypto.PublicKey
	msg  []byte
	opts crypto.SignerOpts
}

func (c *tbsCapture) Public() crypto.PublicKey { return c.pub }

func (c *tbsCapture) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	// x509 signs through crypto.SignMessage, which prefers SignMessage.
	return nil, errors.New("lint: TBS capture was asked for a digest signature")
}

func (c *tbsCapture) SignMessage(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.msg, c.opts = msg, opts
	return nil, errCaptured
}

// NewTBS builds the to-be-signed certificate that issuer's key would sign
// for tmpl and the subject key pub, byte for byte what
// x509.CreateCertificate produces (serial, names, extensions, AKI from the
// issuer's SKI, signature algorithm): end-entity templates with this
// package's own encoder (encodeTBS, several times cheaper), anything else
// through CreateCertificate itself.
// issuer must be a real CA certificate (not nil: a self-signed root goes
// through Check).
func NewTBS(tmpl, issuer *x509.Certificate, pub crypto.PublicKey) (*TBS, error) {
	if tmpl == nil || issuer == nil || pub == nil {
		return nil, errors.New("lint: template, issuer and subject public key are required")
	}
	if raw, opts, alg, ok := encodeTBS(tmpl, issuer, pub); ok {
		return &TBS{Raw: raw, Opts: opts, sigAlg: alg, issuerPub: issuer.PublicKey}, nil
	}
	return newTBSByX509(tmpl, issuer, pub)
}

// newTBSByX509 is NewTBS through x509.CreateCertificate, for any template.
func newTBSByX509(tmpl, issuer *x509.Certificate, pub crypto.PublicKey) (*TBS, error) {
	c := &tbsCapture{pub: issuer.PublicKey}
	_, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, c)
	if !errors.Is(err, errCaptured) {
		if err == nil {
			err = errors.New("x509 did not ask for a signature")
		}
		return nil, fmt.Errorf("lint: build to-be-signed certificate: %w", err)
	}
	alg, err := tbsSignatureAlgorithm(c.msg)
	if err != nil {
		return nil, err
	}
	return &TBS{Raw: c.msg, Opts: c.opts, sigAlg: alg, issuerPub: issuer.PublicKey}, nil
}

// tbsSignatureAlgorithm returns the signature AlgorithmIdentifier of a
// TBSCertificate (RFC 5280, section 4.1): after the optional version and
// the serial number.
func tbsSignatureAlgorithm(raw []byte) ([]byte, error) {
	in := cryptobyte.String(raw)
	var tbs, alg cryptobyte.String
	if !in.ReadASN1(&tbs, cbasn1.SEQUENCE) || !in.Empty() ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) ||
		!tbs.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return nil, errors.New("lint: malformed to-be-signed certificate")
	}
	return alg, nil
}

// Certificate assembles the DER certificate from the TBS and a signature
// over it (RFC 5280, section 4.1: TBSCertificate, signatureAlgorithm,
// signatureValue), as x509.CreateCertificate encodes it.
func (t *TBS) Certificate(sig []byte) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, len(t.Raw)+len(t.sigAlg)+len(sig)+16))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(t.Raw)
		b.AddBytes(t.sigAlg)
		b.AddASN1BitString(sig)
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("lint: assemble certificate: %w", err)
	}
	return der, nil
}
