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

// tbsShape says how rebuildTBS lays out a TBSCertificate after its
// subjectPublicKeyInfo.
type tbsShape struct {
	exts      [][]byte // each a DER Extension; nil drops the field
	uniqueIDs bool     // issuer and subject unique IDs before them
	// constructedIDs encodes the unique IDs in the constructed form.
	constructedIDs bool
	// trailInside and trailAfter add a NULL after the extensions, inside
	// their explicit tag or after it.
	trailInside, trailAfter bool
}

// rebuildTBS returns der with its TBSCertificate's fields after the
// subjectPublicKeyInfo laid out as shape says. The signature is left as
// it was: zcrypto parses without verifying.
func rebuildTBS(t *testing.T, der []byte, shape tbsShape) []byte {
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
	null := []byte{5, 0}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, f := range fields {
				b.AddBytes(f)
			}
			if shape.uniqueIDs {
				for i, v := range []byte{0xab, 0xcd} {
					tag := cbasn1.Tag(i + 1).ContextSpecific()
					if shape.constructedIDs {
						b.AddASN1(tag.Constructed(), func(b *cryptobyte.Builder) {
							b.AddASN1BitString([]byte{v})
						})
					} else {
						b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte{0, v}) })
					}
				}
			}
			if shape.exts != nil {
				b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, e := range shape.exts {
							b.AddBytes(e)
						}
					})
					if shape.trailInside {
						b.AddBytes(null)
					}
				})
			}
			if shape.trailAfter {
				b.AddBytes(null)
			}
		})
		b.AddBytes(sigAlg)
		b.AddBytes(sig)
	})
	return b.BytesOrPanic()
}

// extDERLeaf is a leaf as x509 makes it, valid from notBefore, to
// rebuild.
func extDERLeaf(t *testing.T, notBefore time.Time) []byte {
	t.Helper()
	keys := encTestKeys(t)
	issuer := encTestIssuer(t, keys["P-256"], pkix.Name{CommonName: "Issuing CA"})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: notBefore, NotAfter: notBefore.Add(time.Hour), DNSNames: []string{"leaf.example"}}
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
// unique IDs in either form, with bytes after the extensions, with the
// critical flag absent, TRUE, or FALSE in the first, a middle or the last
// extension (a TRUE other than 0xff zcrypto refuses to parse), and from
// before the lint's effective date, the Linter's check fails exactly when
// zlint's e_cert_ext_invalid_der does, with its status and details
// (except where zlint's decode never reaches the extensions, see
// zlintMisses), and it fires on every FALSE of an effective certificate.
func TestExtDERMatchesZlint(t *testing.T) {
	t.Parallel()
	theirs := zl.GlobalRegistry().CertificateLints().ByName(extDERLint)
	if theirs == nil {
		t.Fatal("zlint has no " + extDERLint)
	}
	der := extDERLeaf(t, time.Now())
	old := extDERLeaf(t, time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC))
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
		// zlintMisses marks a certificate whose extensions zlint's decode
		// never reaches (a constructed unique ID, which DER forbids for a
		// BIT STRING, makes encoding/asn1 skip every optional field after
		// it): there the Linter's check is stricter, and only it fires.
		zlintMisses bool
	}{
		{"as x509 makes it", der, false, false},
		{"no extensions", rebuildTBS(t, der, tbsShape{}), false, false},
		{"unique IDs, no extensions", rebuildTBS(t, der, tbsShape{uniqueIDs: true}), false, false},
		{"no flags", rebuildTBS(t, der, tbsShape{exts: [][]byte{ku, priv}}), false, false},
		{"TRUE", rebuildTBS(t, der, tbsShape{exts: [][]byte{kuTrue, bc, priv}}), false, false},
		{"FALSE first", rebuildTBS(t, der, tbsShape{exts: [][]byte{kuFalse, bc, priv}}), true, false},
		{"FALSE in the middle", rebuildTBS(t, der, tbsShape{exts: [][]byte{ku, bcFalse, priv}}), true, false},
		{"FALSE last", rebuildTBS(t, der, tbsShape{exts: [][]byte{ku, bc, privFalse}}), true, false},
		{"FALSE twice", rebuildTBS(t, der, tbsShape{exts: [][]byte{kuFalse, bcFalse}}), true, false},
		{"unique IDs, FALSE", rebuildTBS(t, der, tbsShape{exts: [][]byte{ku, privFalse}, uniqueIDs: true}), true, false},
		{"constructed unique IDs, FALSE", rebuildTBS(t, der, tbsShape{exts: [][]byte{ku, privFalse}, uniqueIDs: true, constructedIDs: true}), true, true},
		{"constructed unique IDs, no flags", rebuildTBS(t, der, tbsShape{exts: [][]byte{ku}, uniqueIDs: true, constructedIDs: true}), false, false},
		{"bytes inside [3], FALSE", rebuildTBS(t, der, tbsShape{exts: [][]byte{kuFalse}, trailInside: true}), true, false},
		{"bytes after [3], no flags", rebuildTBS(t, der, tbsShape{exts: [][]byte{ku}, trailAfter: true}), false, false},
		{"bytes after [3], FALSE", rebuildTBS(t, der, tbsShape{exts: [][]byte{bcFalse}, trailAfter: true}), true, false},
		{"before the effective date, FALSE", rebuildTBS(t, old, tbsShape{exts: [][]byte{kuFalse}}), false, false},
	}
	ran := 0
	for _, c := range cases {
		zc, err := zx509.ParseCertificate(c.der)
		if err != nil {
			// Nothing for either lint to run on.
			t.Logf("%s: zcrypto does not parse it (%v)", c.name, err)
			continue
		}
		ran++
		want := theirs.Execute(zc, zl.NewEmptyConfig())
		got := extDER(theirs, zc)
		failed := func(r *zl.LintResult) bool { return r != nil && (r.Status == zl.Error || r.Status == zl.Fatal) }
		if c.zlintMisses {
			want = nil
		}
		if c.zlintMisses == failed(want) && failed(want) {
			t.Errorf("%s: zlint's decode now reaches these extensions (%+v): drop zlintMisses", c.name, want)
		}
		if !c.zlintMisses && (failed(got) != failed(want) || failed(got) && (got.Status != want.Status || got.Details != want.Details)) {
			t.Errorf("%s: ours %+v, zlint %+v", c.name, got, want)
		}
		if fired := got != nil && got.Status == zl.Error; fired != c.wantFired {
			t.Errorf("%s: fired %v, want %v", c.name, fired, c.wantFired)
		}
	}
	if ran < len(cases)-2 {
		t.Fatalf("zcrypto parsed only %d of %d certificates: the comparison proves little", ran, len(cases))
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
	der := extDERLeaf(t, time.Now())
	f := byte(0)
	bad := rebuildTBS(t, der, tbsShape{exts: [][]byte{ext(t, asn1.ObjectIdentifier{2, 5, 29, 15}, &f, []byte{3, 2, 7, 0x80})}})
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
