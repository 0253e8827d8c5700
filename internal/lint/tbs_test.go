package lint_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

// TestTBSMatchesCreateCertificate: the TBS built once is byte for byte the
// one x509.CreateCertificate signs for the same template and issuer, the
// certificate assembled around the real signature parses and verifies
// under the issuer, and it lints clean. Ed25519 and RSA PKCS#1 v1.5
// signatures are deterministic, so there the whole certificate is equal.
func TestTBSMatchesCreateCertificate(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	for _, tc := range []struct {
		name          string
		alg           pki.KeyAlgorithm
		sigAlg        x509.SignatureAlgorithm // 0: pki.SignatureAlgorithmFor
		deterministic bool
	}{
		{"P-256", pki.ECDSAP256, 0, false},
		{"P-384", pki.ECDSAP384, 0, false},
		{"RSA-2048", pki.RSA2048, 0, true},
		{"RSA-2048-PSS", pki.RSA2048, x509.SHA256WithRSAPSS, false},
		{"Ed25519", pki.Ed25519, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, inter := newChain(t, tc.alg)
			leafKey := mustKey(t, pki.ECDSAP256)
			tmpl := goodLeaf(t, leafKey.Public())
			tmpl.AuthorityKeyId = inter.cert.SubjectKeyId
			tmpl.SignatureAlgorithm = tc.sigAlg
			if tc.sigAlg == 0 {
				tmpl.SignatureAlgorithm = pki.SignatureAlgorithmFor(inter.cert.PublicKey)
			}
			tbs, err := lint.NewTBS(tmpl, inter.cert, leafKey.Public())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.CheckTBS(tbs, false); err != nil {
				t.Fatalf("CheckTBS: %v", err)
			}
			sig, err := crypto.SignMessage(inter.key, rand.Reader, tbs.Raw, tbs.Opts)
			if err != nil {
				t.Fatal(err)
			}
			der, err := tbs.Certificate(sig)
			if err != nil {
				t.Fatal(err)
			}
			got, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatalf("assembled certificate does not parse: %v", err)
			}
			if err := got.CheckSignatureFrom(inter.cert); err != nil {
				t.Fatalf("assembled certificate does not verify under its issuer: %v", err)
			}
			wantDER, err := x509.CreateCertificate(rand.Reader, tmpl, inter.cert, leafKey.Public(), inter.key)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := x509.ParseCertificate(wantDER)
			if !bytes.Equal(got.RawTBSCertificate, want.RawTBSCertificate) {
				t.Error("TBS differs from x509.CreateCertificate's")
			}
			if got.SignatureAlgorithm != want.SignatureAlgorithm {
				t.Errorf("signature algorithm %v, x509 chose %v", got.SignatureAlgorithm, want.SignatureAlgorithm)
			}
			if tc.deterministic && !bytes.Equal(der, wantDER) {
				t.Error("deterministic signature, yet the certificate differs from x509.CreateCertificate's")
			}
		})
	}
}

// TestTBSLintFails: a TBS that breaks a lint fails CheckTBS, like Check.
func TestTBSLintFails(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	_, inter := newChain(t, pki.ECDSAP256)
	k := mustKey(t, pki.ECDSAP256)
	tmpl := goodLeaf(t, k.Public())
	tmpl.DNSNames, tmpl.IPAddresses, tmpl.Subject.CommonName = nil, nil, "" // no name at all
	tbs, err := lint.NewTBS(tmpl, inter.cert, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.CheckTBS(tbs, false)
	var lerr *lint.Error
	if !errors.As(err, &lerr) {
		t.Fatalf("CheckTBS of a leaf with no names = %v, want a lint error", err)
	}
}
