package lint

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	zl "github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// rebuildTBS returns der with its TBSCertificate's extensions replaced by
// exts (each a DER Extension; none drops the field) and, with uniqueIDs
// set, issuer and subject unique IDs inserted before them. The signature
// is left as it was: zcrypto parses without verifying.
func rebuildTBS(t *testing.T, der []byte, exts [][]byte, uniqueIDs bool) []byte {
	t.Helper()
	in := cryptobyte.String(der)
	var cert, tbs, sigAlg, sig cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!cert.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) || !cert.ReadASN1Element(&sig, cbasn1.BIT_STRING) {
		t.Fatal("certificate does not parse")
	}
	var body cryptobyte.String
	if !tbs.ReadASN1(&body, cbasn1.SEQUENCE) {
		t.Fatal("TBS does not parse")
	}
	var fields [][]byte
	for range 7 { // version … subjectPublicKeyInfo
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !body.ReadAnyASN1Element(&el, &tag) {
			t.Fatal("TBS field does not parse")
		}
		fields = append(fields, el)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, f := range fields {
				b.AddBytes(f)
			}
			if uniqueIDs {
				b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte{0, 0xab}) })
				b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte{0, 0xcd}) })
			}
			if exts != nil {
				b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, e := range exts {
							b.AddBytes(e)
						}
					})
				})
			}
		})
		b.AddBytes(sigAlg)
		b.AddBytes(sig)
	})
	return b.BytesOrPanic()
}

// extDERLeaf is a leaf as x509 makes it, to rebuild.
func extDERLeaf(t *testing.T) []byte {
	t.Helper()
	keys := encTestKeys(t)
	issuer := encTestIssuer(t, keys["P-256"], pkix.Name{CommonName: "Issuing CA"})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"leaf.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, keys["P-256"].Public(), keys["P-256"])
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ext encodes an Extension; critical is nil for no flag, else its one
// content octet.
func ext(t *testing.T, oid asn1.ObjectIdentifier, critical *byte, value []byte) []byte {
	t.Helper()
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical != nil {
			b.AddASN1(cbasn1.BOOLEAN, func(b *cryptobyte.Builder) { b.AddUint8(*critical) })
		}
		b.AddASN1OctetString(value)
	})
	return b.BytesOrPanic()
}

// TestExtDERMatchesZlint: over certificates without extensions, with
// unique IDs, and with the critical flag absent, TRUE, or FALSE in the
// first, a middle or the last extension (a TRUE other than 0xff zcrypto
// refuses to parse), the Linter's check gives exactly
// zlint's e_cert_ext_invalid_der result (status and details), and it
// fires on every FALSE.
func TestExtDERMatchesZlint(t *testing.T) {
	t.Parallel()
	theirs := zl.GlobalRegistry().CertificateLints().ByName(extDERLint)
	if theirs == nil {
		t.Fatal("zlint has no " + extDERLint)
	}
	der := extDERLeaf(t)
	f, tr := byte(0), byte(0xff)
	ku := ext(t, asn1.ObjectIdentifier{2, 5, 29, 15}, nil, []byte{3, 2, 7, 0x80})
	kuFalse := ext(t, asn1.ObjectIdentifier{2, 5, 29, 15}, &f, []byte{3, 2, 7, 0x80})
	kuTrue := ext(t, asn1.ObjectIdentifier{2, 5, 29, 15}, &tr, []byte{3, 2, 7, 0x80})
	bc := ext(t, asn1.ObjectIdentifier{2, 5, 29, 19}, &tr, []byte{0x30, 0})
	bcFalse := ext(t, asn1.ObjectIdentifier{2, 5, 29, 19}, &f, []byte{0x30, 0})
	priv := ext(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, nil, []byte{5, 0})
	privFalse := ext(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, &f, []byte{5, 0})
	cases := []struct {
		name      string
		der       []byte
		wantFired bool
	}{
		{"as x509 makes it", der, false},
		{"no extensions", rebuildTBS(t, der, nil, false), false},
		{"unique IDs, no extensions", rebuildTBS(t, der, nil, true), false},
		{"no flags", rebuildTBS(t, der, [][]byte{ku, priv}, false), false},
		{"TRUE", rebuildTBS(t, der, [][]byte{kuTrue, bc, priv}, false), false},
		{"FALSE first", rebuildTBS(t, der, [][]byte{kuFalse, bc, priv}, false), true},
		{"FALSE in the middle", rebuildTBS(t, der, [][]byte{ku, bcFalse, priv}, false), true},
		{"FALSE last", rebuildTBS(t, der, [][]byte{ku, bc, privFalse}, false), true},
		{"FALSE twice", rebuildTBS(t, der, [][]byte{kuFalse, bcFalse}, false), true},
		{"unique IDs, FALSE", rebuildTBS(t, der, [][]byte{ku, privFalse}, true), true},
	}
	for _, c := range cases {
		zc, err := zx509.ParseCertificate(c.der)
		if err != nil {
			t.Fatalf("%s: zcrypto: %v", c.name, err)
		}
		want := theirs.Execute(zc, zl.NewEmptyConfig())
		got := extDER(zc)
		if got == nil {
			got = &zl.LintResult{Status: zl.Pass}
		}
		if got.Status != want.Status || got.Details != want.Details {
			t.Errorf("%s: ours %v %q, zlint %v %q", c.name, got.Status, got.Details, want.Status, want.Details)
		}
		if fired := got.Status == zl.Error; fired != c.wantFired {
			t.Errorf("%s: fired %v, want %v", c.name, fired, c.wantFired)
		}
	}
}

// TestExtDERRunsOnce: zlint's lint is out of the registries, the Linter's
// own check is in Names and refuses a certificate, and excluding the lint
// by name turns the Linter's check off.
func TestExtDERRunsOnce(t *testing.T) {
	t.Parallel()
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cabf := range []bool{false, true} {
		if l.registry(cabf).CertificateLints().ByName(extDERLint) != nil {
			t.Errorf("cabf=%v: zlint's %s is still in the registry", cabf, extDERLint)
		}
		found := false
		for _, n := range l.Names(cabf) {
			found = found || n == extDERLint
		}
		if !found {
			t.Errorf("cabf=%v: %s missing from Names", cabf, extDERLint)
		}
	}
	der := extDERLeaf(t)
	f := byte(0)
	bad := rebuildTBS(t, der, [][]byte{ext(t, asn1.ObjectIdentifier{2, 5, 29, 15}, &f, []byte{3, 2, 7, 0x80})}, false)
	zc, err := zx509.ParseCertificate(bad)
	if err != nil {
		t.Fatal(err)
	}
	if !failedLint(l, zc) {
		t.Error("a certificate with a critical flag of FALSE passed " + extDERLint)
	}
	off, err := New(Options{ExcludeNames: []string{extDERLint}})
	if err != nil {
		t.Fatal(err)
	}
	if failedLint(off, zc) {
		t.Errorf("with %s excluded it still runs", extDERLint)
	}
}

// failedLint reports whether l's lint of zc fails extDERLint.
func failedLint(l *Linter, zc *zx509.Certificate) bool {
	_, err := processResults(l.lint(zc, false))
	var le *Error
	if !errors.As(err, &le) {
		return false
	}
	for _, f := range le.Lints {
		if f.Name == extDERLint {
			return true
		}
	}
	return false
}
