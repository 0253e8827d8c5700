package issue

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/lint"
)

// lintAndSign builds the certificate tmpl for the subject key pub under
// issuer once, lints it, and only if it passes has the CA's key sign it:
// one to-be-signed encoding, one throwaway signature for the linter and
// one real signature, instead of two x509.CreateCertificate calls (each
// with its own encoding and its own verification). The real key never
// signs a certificate that failed a lint.
func (s *Service) lintAndSign(ctx context.Context, authority *ca.CA, tmpl *x509.Certificate, pub crypto.PublicKey, issuer *x509.Certificate, cabf bool) (*x509.Certificate, []string, error) {
	if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(issuer.PublicKey) {
		// A certificate for the CA's own key: linted as the linter lints
		// a self-signed one, and signed by x509 as before.
		return s.lintAndCreate(ctx, authority, tmpl, pub, issuer, cabf)
	}
	tbs, err := lint.NewTBS(tmpl, issuer, pub)
	if err != nil {
		return nil, nil, err
	}
	warnings, err := s.linter.CheckTBS(tbs, cabf)
	if err != nil {
		return nil, nil, err
	}
	signer, err := s.caSignerFor(ctx, authority, issuer.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	sig, err := crypto.SignMessage(signer, s.cfg.Rand, tbs.Raw, tbs.Opts)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: sign: %w", err)
	}
	der, err := tbs.Certificate(sig)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: parse signed certificate: %w", err)
	}
	if verifiesOwnSignatures(signer) {
		return leaf, warnings, nil
	}
	if err := issuer.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		return nil, nil, fmt.Errorf("%w: key %s of CA %s returned a signature that does not verify: %w", ErrBadSignature, authority.Key.ID, authority.Name, err)
	}
	return leaf, warnings, nil
}

// ErrBadSignature marks a CA signer that returned an invalid signature;
// nothing was stored or handed out.
var ErrBadSignature = errors.New("issue: CA signer returned an invalid signature")

// verifiesOwnSignatures reports whether a signature by sg can be trusted
// without checking it against the CA certificate.
//
// x509.CreateCertificate checks every signature it makes, to catch a
// crypto.Signer that returns a wrong one (a faulty HSM, a broken remote
// signer): such a certificate would be stored, audited and handed out as
// issued, and no relying party would accept it. For Go's own in-process
// keys — what keys/software hands out — the check buys nothing and costs
// about 55 us per P-256 certificate: crypto/rsa already verifies each
// signature before returning it (its defence against RSA-CRT faults), and
// crypto/ecdsa and crypto/ed25519 are the very code a verifier would run,
// on a key that caSignerFor has matched against the CA certificate. Every
// other signer (PKCS#11, a KMS, any wrapper) is checked.
func verifiesOwnSignatures(sg crypto.Signer) bool {
	switch sg.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		return true
	}
	return false
}

// lintAndCreate is the general path: Check (which re-signs tmpl under a
// throwaway key) and x509.CreateCertificate (which verifies its signature).
func (s *Service) lintAndCreate(ctx context.Context, authority *ca.CA, tmpl *x509.Certificate, pub crypto.PublicKey, issuer *x509.Certificate, cabf bool) (*x509.Certificate, []string, error) {
	warnings, err := s.linter.Check(tmpl, pub, issuer, cabf)
	if err != nil {
		return nil, nil, err
	}
	signer, err := s.caSignerFor(ctx, authority, issuer.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(s.cfg.Rand, tmpl, issuer, pub, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: parse signed certificate: %w", err)
	}
	return leaf, warnings, nil
}
