package lint_test

import (
	"testing"

	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

// BenchmarkCheckTBS builds and lints a leaf's to-be-signed certificate
// for each subject key type, under a P-256 issuer: the per-certificate
// cost of linting in issuance.
func BenchmarkCheckTBS(b *testing.B) {
	l := newLinter(b)
	_, inter := newChain(b, pki.ECDSAP256)
	for _, alg := range []pki.KeyAlgorithm{pki.ECDSAP256, pki.ECDSAP384, pki.RSA2048, pki.RSA4096, pki.Ed25519} {
		b.Run(string(alg), func(b *testing.B) {
			key := mustKey(b, alg)
			tmpl := goodLeaf(b, key.Public())
			tmpl.AuthorityKeyId = inter.cert.SubjectKeyId
			tmpl.SignatureAlgorithm = pki.SignatureAlgorithmFor(inter.cert.PublicKey)
			// The first check of a curve builds its small-key table
			// (once per process): before the timed loop.
			if tbs, err := lint.NewTBS(tmpl, inter.cert, key.Public()); err != nil {
				b.Fatal(err)
			} else if _, err := l.CheckTBS(tbs, false); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				tbs, err := lint.NewTBS(tmpl, inter.cert, key.Public())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.CheckTBS(tbs, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
