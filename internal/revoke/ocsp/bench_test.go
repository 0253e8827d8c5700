package ocsp_test

import (
	"crypto"
	"crypto/rand"
	"os"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke/ocsp"
)

func BenchmarkParseRequest(b *testing.B) {
	for _, name := range []string{"openssl-sha1.der", "openssl-sha256-nonce.der"} {
		der, err := os.ReadFile("testdata/" + name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ocsp.ParseRequest(der); err != nil {
					b.Fatal(err)
				}
			}
		})
		// For comparison: the reflection-based x/crypto parser.
		b.Run(name+"/x-crypto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := xocsp.ParseRequest(der); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	now := time.Now()
	p := newPKI(b, now, pki.ECDSAP256)
	id, err := p.issuer.CertID(crypto.SHA1, p.leaf.SerialNumber)
	if err != nil {
		b.Fatal(err)
	}
	a := ocsp.Answer{Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(4 * time.Hour)}
	b.Run("P-256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.responder.Sign(rand.Reader, id, a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("P-256/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.responder.Sign(rand.Reader, id, a); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// For comparison: x/crypto/ocsp.CreateResponse (byName responder id,
	// producedAt from the wall clock, so not used).
	b.Run("P-256/x-crypto", func(b *testing.B) {
		b.ReportAllocs()
		tmpl := xocsp.Response{Status: xocsp.Good, SerialNumber: p.leaf.SerialNumber, ThisUpdate: now, NextUpdate: now.Add(4 * time.Hour), Certificate: p.resp}
		for b.Loop() {
			if _, err := xocsp.CreateResponse(p.inter, p.resp, tmpl, p.key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMatches(b *testing.B) {
	p := newPKI(b, time.Now(), pki.ECDSAP256)
	id, err := p.issuer.CertID(crypto.SHA256, p.leaf.SerialNumber)
	if err != nil {
		b.Fatal(err)
	}
	iss := p.issuer
	b.ReportAllocs()
	for b.Loop() {
		if !iss.Matches(id) {
			b.Fatal("no match")
		}
	}
}
