package crl_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke/crl"
)

var (
	oidReasonCode     = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
)

// caKeyTypes are the issuer key types Certwright CAs use.
var caKeyTypes = []pki.KeyAlgorithm{pki.RSA2048, pki.ECDSAP256, pki.ECDSAP384, pki.Ed25519}

// testCA is a self-signed CA certificate and its key, made like
// internal/ca makes roots: SKI per RFC 7093, keyCertSign and cRLSign.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newCA(tb testing.TB, alg pki.KeyAlgorithm, mutate ...func(*x509.Certificate)) testCA {
	tb.Helper()
	key, err := alg.Generate(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	ski, err := pki.SubjectKeyID(key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "crl test CA " + string(alg), Organization: []string{"Certwright"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski,
	}
	for _, m := range mutate {
		m(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return testCA{cert, key}
}

func (ca testCA) params(number int64, this time.Time) crl.Params {
	return crl.Params{
		Issuer:     ca.cert,
		Signer:     ca.key,
		Number:     big.NewInt(number),
		ThisUpdate: this,
		NextUpdate: this.Add(7 * 24 * time.Hour),
	}
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// sampleEntries covers the serial encodings (high bit, leading zeros, the
// 20-octet maximum), every accepted reason, invalidity dates and times on
// both sides of the UTCTime range.
func sampleEntries(tb testing.TB) []crl.Entry {
	tb.Helper()
	nyc, err := time.LoadLocation("America/New_York")
	if err != nil {
		nyc = time.FixedZone("EST", -5*3600)
	}
	return []crl.Entry{
		{Serial: mustHex(tb, "01"+strings.Repeat("a5", 16)), RevokedAt: base, Reason: pki.ReasonKeyCompromise, InvalidityDate: base.Add(-48 * time.Hour)},
		{Serial: []byte{0x80, 0x01}, RevokedAt: base.Add(time.Minute), Reason: pki.ReasonUnspecified},
		{Serial: []byte{0x00, 0x00, 0x05}, RevokedAt: base.Add(2 * time.Minute), Reason: pki.ReasonSuperseded},
		{Serial: bytes.Repeat([]byte{0xff}, 20), RevokedAt: base.In(nyc), Reason: pki.ReasonAACompromise, InvalidityDate: time.Date(2055, 1, 2, 3, 4, 5, 0, time.UTC)},
		{Serial: append([]byte{0x00}, bytes.Repeat([]byte{0x9c}, 20)...), RevokedAt: base, Reason: pki.ReasonCACompromise},
		{Serial: []byte{0x7f}, RevokedAt: time.Date(2051, 6, 7, 8, 9, 10, 0, time.UTC), Reason: pki.ReasonPrivilegeWithdrawn},
		{Serial: []byte{0x01}, RevokedAt: time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC), Reason: pki.ReasonAffiliationChanged},
		{Serial: []byte{0x02}, RevokedAt: base, Reason: pki.ReasonCessationOfOperation, InvalidityDate: base.Add(-time.Hour)},
		{Serial: []byte{0x03}, RevokedAt: base, InvalidityDate: base.Add(-time.Hour)},
	}
}

func build(tb testing.TB, ca testCA, hint int, entries []crl.Entry, p crl.Params) []byte {
	tb.Helper()
	b := crl.NewBuilder(hint)
	for i, e := range entries {
		if err := b.Add(e); err != nil {
			tb.Fatalf("Add(entry %d): %v", i, err)
		}
	}
	if b.Len() != len(entries) {
		tb.Fatalf("Len() = %d, want %d", b.Len(), len(entries))
	}
	der, err := b.Sign(rand.Reader, p)
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return der
}

func findExt(exts []pkix.Extension, oid asn1.ObjectIdentifier) (pkix.Extension, bool) {
	for _, e := range exts {
		if e.Id.Equal(oid) {
			return e, true
		}
	}
	return pkix.Extension{}, false
}

// checkCRL parses der and checks it against the issuer, parameters and
// entries it was built from.
func checkCRL(tb testing.TB, der []byte, ca testCA, p crl.Params, entries []crl.Entry) *x509.RevocationList {
	tb.Helper()
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		tb.Fatalf("ParseRevocationList: %v", err)
	}
	if err := rl.CheckSignatureFrom(ca.cert); err != nil {
		tb.Fatalf("CheckSignatureFrom: %v", err)
	}
	if want := pki.SignatureAlgorithmFor(ca.cert.PublicKey); rl.SignatureAlgorithm != want {
		tb.Errorf("signature algorithm %v, want %v", rl.SignatureAlgorithm, want)
	}
	if !bytes.Equal(rl.RawIssuer, ca.cert.RawSubject) {
		tb.Errorf("issuer %x, want the CA's raw subject %x", rl.RawIssuer, ca.cert.RawSubject)
	}
	if rl.Number == nil || rl.Number.Cmp(p.Number) != 0 {
		tb.Errorf("Number = %v, want %v", rl.Number, p.Number)
	}
	if want := p.ThisUpdate.Truncate(time.Second); !rl.ThisUpdate.Equal(want) {
		tb.Errorf("ThisUpdate = %v, want %v", rl.ThisUpdate, want)
	}
	if want := p.NextUpdate.Truncate(time.Second); !rl.NextUpdate.Equal(want) {
		tb.Errorf("NextUpdate = %v, want %v", rl.NextUpdate, want)
	}
	if !bytes.Equal(rl.AuthorityKeyId, ca.cert.SubjectKeyId) {
		tb.Errorf("AuthorityKeyId = %x, want %x", rl.AuthorityKeyId, ca.cert.SubjectKeyId)
	}
	for _, oid := range []asn1.ObjectIdentifier{oidAuthorityKeyID, oidCRLNumber} {
		ext, ok := findExt(rl.Extensions, oid)
		if !ok || ext.Critical {
			tb.Errorf("CRL extension %v: present %v critical %v, want present and non-critical", oid, ok, ext.Critical)
		}
	}
	if len(rl.Extensions) != 2 {
		tb.Errorf("%d CRL extensions, want 2", len(rl.Extensions))
	}

	if len(rl.RevokedCertificateEntries) != len(entries) {
		tb.Fatalf("%d entries, want %d", len(rl.RevokedCertificateEntries), len(entries))
	}
	for i, want := range entries {
		checkEntry(tb, i, rl.RevokedCertificateEntries[i], want)
	}
	return rl
}

func checkEntry(tb testing.TB, i int, got x509.RevocationListEntry, want crl.Entry) {
	tb.Helper()
	if ws := new(big.Int).SetBytes(want.Serial); got.SerialNumber.Cmp(ws) != 0 {
		tb.Errorf("entry %d: serial %x, want %x", i, got.SerialNumber, ws)
	}
	if w := want.RevokedAt.Truncate(time.Second); !got.RevocationTime.Equal(w) {
		tb.Errorf("entry %d: revoked at %v, want %v", i, got.RevocationTime, w)
	}
	if got.ReasonCode != int(want.Reason) {
		tb.Errorf("entry %d: reason %d, want %d", i, got.ReasonCode, want.Reason)
	}
	reasonExt, hasReason := findExt(got.Extensions, oidReasonCode)
	if hasReason != (want.Reason != pki.ReasonUnspecified) || reasonExt.Critical {
		tb.Errorf("entry %d: reasonCode extension present=%v critical=%v for reason %d", i, hasReason, reasonExt.Critical, want.Reason)
	}
	invExt, hasInv := findExt(got.Extensions, oidInvalidityDate)
	if hasInv != !want.InvalidityDate.IsZero() || invExt.Critical {
		tb.Fatalf("entry %d: invalidityDate extension present=%v critical=%v, want present=%v", i, hasInv, invExt.Critical, !want.InvalidityDate.IsZero())
	}
	if hasInv {
		if len(invExt.Value) == 0 || invExt.Value[0] != asn1.TagGeneralizedTime {
			tb.Errorf("entry %d: invalidityDate %x is not a GeneralizedTime", i, invExt.Value)
		}
		var inv time.Time
		if rest, err := asn1.UnmarshalWithParams(invExt.Value, &inv, "generalized"); err != nil || len(rest) != 0 {
			tb.Fatalf("entry %d: invalidityDate: %v (%d trailing octets)", i, err, len(rest))
		}
		if w := want.InvalidityDate.Truncate(time.Second); !inv.Equal(w) {
			tb.Errorf("entry %d: invalidity date %v, want %v", i, inv, w)
		}
	}
	wantExts := 0
	if hasReason {
		wantExts++
	}
	if hasInv {
		wantExts++
	}
	if len(got.Extensions) != wantExts {
		tb.Errorf("entry %d: %d extensions, want %d", i, len(got.Extensions), wantExts)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range caKeyTypes {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ca := newCA(t, alg)
			entries := sampleEntries(t)
			p := ca.params(42, base)
			p.Number = new(big.Int).Lsh(big.NewInt(1), 159) // 20 octets, high bit set
			der := build(t, ca, len(entries), entries, p)
			checkCRL(t, der, ca, p, entries)
			if cap(der) != len(der) {
				t.Errorf("cap(der) = %d, len %d: appending to the CRL would write into memory it does not own", cap(der), len(der))
			}
		})
	}
}

// TestMatchesStdlib compares with crypto/x509's encoder: the TBSCertList
// must be identical byte for byte, and for the deterministic signature
// schemes (RSA PKCS #1 v1.5, Ed25519) the whole CRL.
func TestMatchesStdlib(t *testing.T) {
	t.Parallel()
	for _, alg := range caKeyTypes {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ca := newCA(t, alg)
			entries := sampleEntries(t)
			p := ca.params(7, base)
			ours := build(t, ca, len(entries), entries, p)

			tmpl := &x509.RevocationList{Number: p.Number, ThisUpdate: p.ThisUpdate, NextUpdate: p.NextUpdate}
			for _, e := range entries {
				re := x509.RevocationListEntry{
					SerialNumber:   new(big.Int).SetBytes(e.Serial),
					RevocationTime: e.RevokedAt,
					ReasonCode:     int(e.Reason),
				}
				if !e.InvalidityDate.IsZero() {
					v, err := asn1.MarshalWithParams(e.InvalidityDate.UTC(), "generalized")
					if err != nil {
						t.Fatal(err)
					}
					re.ExtraExtensions = []pkix.Extension{{Id: oidInvalidityDate, Value: v}}
				}
				tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, re)
			}
			theirs, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
			if err != nil {
				t.Fatal(err)
			}
			a, err := x509.ParseRevocationList(ours)
			if err != nil {
				t.Fatal(err)
			}
			b, err := x509.ParseRevocationList(theirs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.RawTBSRevocationList, b.RawTBSRevocationList) {
				t.Fatalf("TBSCertList differs from crypto/x509's:\nours   %x\ntheirs %x", a.RawTBSRevocationList, b.RawTBSRevocationList)
			}
			if alg == pki.RSA2048 || alg == pki.Ed25519 {
				if !bytes.Equal(ours, theirs) {
					t.Fatalf("CRL differs from crypto/x509's:\nours   %x\ntheirs %x", ours, theirs)
				}
			}
		})
	}
}

// tbsFields returns the top-level elements of a TBSCertList.
func tbsFields(tb testing.TB, tbs []byte) []asn1.RawValue {
	tb.Helper()
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(tbs, &seq); err != nil || len(rest) > 0 {
		tb.Fatalf("TBSCertList: %v (%d trailing octets)", err, len(rest))
	}
	var out []asn1.RawValue
	for rest := seq.Bytes; len(rest) > 0; {
		var v asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &v); err != nil {
			tb.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestEmptyCRLOmitsRevokedCertificates(t *testing.T) {
	t.Parallel()
	ca := newCA(t, pki.ECDSAP256)
	p := ca.params(1, base)
	der := build(t, ca, 0, nil, p)
	rl := checkCRL(t, der, ca, p, nil)

	// version, signature, issuer, thisUpdate, nextUpdate, crlExtensions:
	// no revokedCertificates, not even an empty SEQUENCE (RFC 5280 5.1.2.6).
	f := tbsFields(t, rl.RawTBSRevocationList)
	if len(f) != 6 {
		t.Fatalf("TBSCertList has %d fields, want 6 (no revokedCertificates)", len(f))
	}
	if last := f[5]; last.Class != asn1.ClassContextSpecific || last.Tag != 0 {
		t.Fatalf("field after nextUpdate is class %d tag %d, want crlExtensions [0]", last.Class, last.Tag)
	}

	// The same with one entry has the SEQUENCE in its place.
	e := []crl.Entry{{Serial: []byte{1}, RevokedAt: base}}
	rl = checkCRL(t, build(t, ca, 1, e, p), ca, p, e)
	if f := tbsFields(t, rl.RawTBSRevocationList); len(f) != 7 || f[5].Tag != asn1.TagSequence || f[5].Class != asn1.ClassUniversal {
		t.Fatalf("TBSCertList with one entry: %d fields, want 7 with revokedCertificates sixth", len(f))
	}
}

func TestTimeEncoding(t *testing.T) {
	t.Parallel()
	ca := newCA(t, pki.ECDSAP256)
	tests := []struct {
		name string
		at   time.Time
		tag  int
	}{
		{"1949 GeneralizedTime", time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC), asn1.TagGeneralizedTime},
		{"1950 UTCTime", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), asn1.TagUTCTime},
		{"2049 UTCTime", time.Date(2049, 12, 31, 23, 59, 59, 999999999, time.UTC), asn1.TagUTCTime},
		{"2050 GeneralizedTime", time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), asn1.TagGeneralizedTime},
		{"2050 from a zone behind UTC", time.Date(2049, 12, 31, 23, 0, 0, 0, time.FixedZone("-02", -2*3600)), asn1.TagGeneralizedTime},
		{"2137 GeneralizedTime", time.Date(2137, 5, 6, 7, 8, 9, 0, time.UTC), asn1.TagGeneralizedTime},
		{"9999", time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC), asn1.TagGeneralizedTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := ca.params(1, tt.at)
			p.NextUpdate = tt.at.Add(time.Hour)
			e := []crl.Entry{{Serial: []byte{1}, RevokedAt: tt.at, InvalidityDate: tt.at}}
			rl := checkCRL(t, build(t, ca, 1, e, p), ca, p, e)

			f := tbsFields(t, rl.RawTBSRevocationList)
			if f[3].Tag != tt.tag {
				t.Errorf("thisUpdate tag %d, want %d", f[3].Tag, tt.tag)
			}
			var entry struct {
				Serial  *big.Int
				Revoked asn1.RawValue
				Exts    asn1.RawValue `asn1:"optional"`
			}
			if _, err := asn1.Unmarshal(f[5].Bytes, &entry); err != nil {
				t.Fatal(err)
			}
			if entry.Revoked.Tag != tt.tag {
				t.Errorf("revocationDate tag %d, want %d", entry.Revoked.Tag, tt.tag)
			}
			if s := string(entry.Revoked.Bytes); !strings.HasSuffix(s, "Z") || strings.Contains(s, ".") {
				t.Errorf("revocationDate %q: want whole seconds ending in Z", s)
			}
		})
	}
}

type brokenSigner struct{ crypto.Signer }

func (s brokenSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	sig, err := s.Signer.Sign(r, d, o)
	if err == nil {
		sig[len(sig)-1] ^= 1
	}
	return sig, err
}

var errHSM = errors.New("HSM unplugged")

type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, errHSM }

func TestAddRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    crl.Entry
		want error
	}{
		{"empty serial", crl.Entry{Serial: nil, RevokedAt: base}, crl.ErrInvalidSerial},
		{"zero serial", crl.Entry{Serial: []byte{0, 0}, RevokedAt: base}, crl.ErrInvalidSerial},
		{"21-octet serial", crl.Entry{Serial: bytes.Repeat([]byte{1}, 21), RevokedAt: base}, crl.ErrInvalidSerial},
		{"certificateHold", crl.Entry{Serial: []byte{1}, RevokedAt: base, Reason: 6}, crl.ErrUnsupportedReason},
		{"reason 7 (unassigned)", crl.Entry{Serial: []byte{1}, RevokedAt: base, Reason: 7}, crl.ErrUnsupportedReason},
		{"removeFromCRL", crl.Entry{Serial: []byte{1}, RevokedAt: base, Reason: 8}, crl.ErrUnsupportedReason},
		{"reason 11", crl.Entry{Serial: []byte{1}, RevokedAt: base, Reason: 11}, crl.ErrUnsupportedReason},
		{"negative reason", crl.Entry{Serial: []byte{1}, RevokedAt: base, Reason: -1}, crl.ErrUnsupportedReason},
		{"no revocation time", crl.Entry{Serial: []byte{1}}, crl.ErrInvalidTime},
		{"year 10000", crl.Entry{Serial: []byte{1}, RevokedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, crl.ErrInvalidTime},
		{"invalidity year -1", crl.Entry{Serial: []byte{1}, RevokedAt: base, InvalidityDate: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, crl.ErrInvalidTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := crl.NewBuilder(1)
			err := b.Add(tt.e)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Add = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "crl: ") {
				t.Errorf("error %q lacks the crl: prefix", err)
			}
			if b.Len() != 0 {
				t.Errorf("Len() = %d after a rejected Add", b.Len())
			}
		})
	}

	// 21 octets with a leading zero are 20 after trimming: accepted.
	if err := crl.NewBuilder(1).Add(crl.Entry{Serial: append([]byte{0}, bytes.Repeat([]byte{1}, 20)...), RevokedAt: base}); err != nil {
		t.Errorf("Add(0x00 + 20 octets) = %v, want nil", err)
	}
}

func TestSignRejects(t *testing.T) {
	t.Parallel()
	ca := newCA(t, pki.ECDSAP256)
	other := newCA(t, pki.ECDSAP256)
	// crypto/x509 adds an SKI to every CA certificate it creates, so drop
	// it from the parsed copy.
	noSKI := ca
	noSKICert := *ca.cert
	noSKICert.SubjectKeyId = nil
	noSKI.cert = &noSKICert
	noCRLSign := newCA(t, pki.ECDSAP256, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCertSign })
	tests := []struct {
		name   string
		mutate func(*crl.Params)
		want   error
	}{
		{"nil issuer", func(p *crl.Params) { p.Issuer = nil }, crl.ErrInvalidParams},
		{"issuer without SKI", func(p *crl.Params) { p.Issuer, p.Signer = noSKI.cert, noSKI.key }, crl.ErrInvalidParams},
		{"issuer without cRLSign", func(p *crl.Params) { p.Issuer, p.Signer = noCRLSign.cert, noCRLSign.key }, crl.ErrInvalidParams},
		{"nil signer", func(p *crl.Params) { p.Signer = nil }, crl.ErrInvalidParams},
		{"signer of another CA", func(p *crl.Params) { p.Signer = other.key }, crl.ErrKeyMismatch},
		{"nil number", func(p *crl.Params) { p.Number = nil }, crl.ErrInvalidParams},
		{"negative number", func(p *crl.Params) { p.Number = big.NewInt(-1) }, crl.ErrInvalidParams},
		{"21-octet number", func(p *crl.Params) { p.Number = new(big.Int).Lsh(big.NewInt(1), 160) }, crl.ErrInvalidParams},
		{"no thisUpdate", func(p *crl.Params) { p.ThisUpdate = time.Time{} }, crl.ErrInvalidTime},
		{"no nextUpdate", func(p *crl.Params) { p.NextUpdate = time.Time{} }, crl.ErrInvalidTime},
		{"nextUpdate before thisUpdate", func(p *crl.Params) { p.NextUpdate = p.ThisUpdate.Add(-time.Hour) }, crl.ErrInvalidTime},
		{"nextUpdate in the same second", func(p *crl.Params) { p.NextUpdate = p.ThisUpdate.Add(time.Nanosecond) }, crl.ErrInvalidTime},
		{"signer fails", func(p *crl.Params) { p.Signer = failingSigner{ca.key} }, errHSM},
		{"signer returns a bad signature", func(p *crl.Params) { p.Signer = brokenSigner{ca.key} }, crl.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := crl.NewBuilder(1)
			e := crl.Entry{Serial: []byte{1, 2, 3}, RevokedAt: base, Reason: pki.ReasonKeyCompromise}
			if err := b.Add(e); err != nil {
				t.Fatal(err)
			}
			p := ca.params(1, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			tt.mutate(&p)
			der, err := b.Sign(rand.Reader, p)
			if !errors.Is(err, tt.want) || der != nil {
				t.Fatalf("Sign = %d octets, %v; want %v", len(der), err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "crl: ") {
				t.Errorf("error %q lacks the crl: prefix", err)
			}
			// A failed Sign leaves the Builder usable.
			good := ca.params(2, base)
			der, err = b.Sign(rand.Reader, good)
			if err != nil {
				t.Fatalf("Sign after a failed Sign: %v", err)
			}
			checkCRL(t, der, ca, good, []crl.Entry{e})
		})
	}
}

func TestSignSpendsBuilder(t *testing.T) {
	t.Parallel()
	ca := newCA(t, pki.Ed25519)
	b := crl.NewBuilder(1)
	if err := b.Add(crl.Entry{Serial: []byte{9}, RevokedAt: base}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sign(rand.Reader, ca.params(1, base)); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(crl.Entry{Serial: []byte{10}, RevokedAt: base}); !errors.Is(err, crl.ErrSigned) {
		t.Errorf("Add after Sign = %v, want ErrSigned", err)
	}
	if _, err := b.Sign(rand.Reader, ca.params(2, base)); !errors.Is(err, crl.ErrSigned) {
		t.Errorf("Sign after Sign = %v, want ErrSigned", err)
	}
}

// TestBufferShapes exercises both ways Sign lays out the CRL: in place in
// the Builder's buffer, and copied when the size hint was far too large,
// absent, or the issuer name does not fit the headroom.
func TestBufferShapes(t *testing.T) {
	t.Parallel()
	ca := newCA(t, pki.ECDSAP384)
	bigName := newCA(t, pki.ECDSAP384, func(c *x509.Certificate) {
		c.Subject.OrganizationalUnit = []string{strings.Repeat("u", 1500)}
	})
	if len(bigName.cert.RawSubject) < 1500 {
		t.Fatalf("issuer name is only %d octets", len(bigName.cert.RawSubject))
	}
	many := make([]crl.Entry, 3000)
	for i := range many {
		many[i] = crl.Entry{Serial: []byte{0x01, byte(i >> 8), byte(i)}, RevokedAt: base.Add(time.Duration(i) * time.Second), Reason: pki.Reason(i % 6)}
	}
	tests := []struct {
		name    string
		ca      testCA
		hint    int
		entries []crl.Entry
	}{
		{"exact hint", ca, len(many), many},
		{"no hint", ca, 0, many},
		{"hint far too large", ca, 100000, many[:3]},
		{"hint too small", ca, 10, many},
		{"issuer name beyond headroom", bigName, len(many), many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.ca.params(5, base)
			der := build(t, tt.ca, tt.hint, tt.entries, p)
			checkCRL(t, der, tt.ca, p, tt.entries)
		})
	}
}

// TestCallerMayReuseSerial: Add copies the serial, so the store layer can
// decode every row into one scratch slice.
func TestCallerMayReuseSerial(t *testing.T) {
	t.Parallel()
	ca := newCA(t, pki.ECDSAP256)
	b := crl.NewBuilder(3)
	scratch := make([]byte, 17)
	var want []crl.Entry
	for i := range 3 {
		for j := range scratch {
			scratch[j] = byte(i + 1)
		}
		e := crl.Entry{Serial: scratch, RevokedAt: base}
		if err := b.Add(e); err != nil {
			t.Fatal(err)
		}
		e.Serial = bytes.Clone(scratch)
		want = append(want, e)
	}
	clear(scratch)
	p := ca.params(3, base)
	der, err := b.Sign(rand.Reader, p)
	if err != nil {
		t.Fatal(err)
	}
	checkCRL(t, der, ca, p, want)
}

// TestSignAllocatesLittle holds Sign to its memory promise: with a good
// size hint the CRL is assembled in the Builder's buffer, so signing a
// 50,000-entry CRL (about 2.5 MB) allocates kilobytes, not another copy.
// Not parallel: parallel tests wait while it reads the allocation counter.
func TestSignAllocatesLittle(t *testing.T) {
	ca := newCA(t, pki.ECDSAP256)
	const n = 50000
	b := crl.NewBuilder(n)
	serial := make([]byte, 17)
	serial[0] = 1
	for i := range n {
		serial[15], serial[16] = byte(i>>8), byte(i)
		if err := b.Add(crl.Entry{Serial: serial, RevokedAt: base, Reason: pki.ReasonSuperseded}); err != nil {
			t.Fatal(err)
		}
	}
	p := ca.params(1, base)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	der, err := b.Sign(rand.Reader, p)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(der) < n*50 {
		t.Fatalf("CRL of %d octets for %d entries", len(der), n)
	}
	if _, err := x509.ParseRevocationList(der); err != nil {
		t.Fatal(err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("Sign allocated %d bytes for a %d-byte CRL; want it built in place", got, len(der))
	}
}

// TestOversizedHintDoesNotPin: a CRL built in a buffer sized for far more
// entries than were added must not keep that buffer alive. Not parallel,
// for the heap reading.
func TestOversizedHintDoesNotPin(t *testing.T) {
	ca := newCA(t, pki.ECDSAP256)
	const hint = 200_000 // about 13 MB of buffer
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	b := crl.NewBuilder(hint)
	if err := b.Add(crl.Entry{Serial: []byte{1}, RevokedAt: base}); err != nil {
		t.Fatal(err)
	}
	der, err := b.Sign(rand.Reader, ca.params(1, base))
	if err != nil {
		t.Fatal(err)
	}
	b = nil
	if held := int64(heap()) - int64(before); held > 1<<20 {
		t.Errorf("a %d-byte CRL holds %d bytes of heap", len(der), held)
	}
	runtime.KeepAlive(der)
}

func writeFile(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func needOpenSSL(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		tb.Skip("openssl not found: install the openssl package")
	}
	return path
}

func runOpenSSL(tb testing.TB, openssl string, args ...string) (string, error) {
	tb.Helper()
	out, err := exec.Command(openssl, args...).CombinedOutput()
	return string(out), err
}

func TestOpenSSLReadsAndVerifies(t *testing.T) {
	t.Parallel()
	openssl := needOpenSSL(t)
	for _, alg := range caKeyTypes {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ca := newCA(t, alg)
			entries := sampleEntries(t)
			p := ca.params(4242, base)
			der := build(t, ca, len(entries), entries, p)
			dir := t.TempDir()
			crlPath := writeFile(t, dir, "x.crl", der)
			caPath := writeFile(t, dir, "ca.pem", pki.CertPEM(ca.cert.Raw))

			out, err := runOpenSSL(t, openssl, "crl", "-inform", "DER", "-in", crlPath, "-text", "-noout")
			if err != nil {
				t.Fatalf("openssl crl -text: %v\n%s", err, out)
			}
			if n := strings.Count(out, "Serial Number:"); n != len(entries) {
				t.Errorf("openssl shows %d serial numbers, want %d:\n%s", n, len(entries), out)
			}
			for _, want := range []string{"Key Compromise", "Superseded", "Invalidity Date", "X509v3 CRL Number", "4242", "X509v3 Authority Key Identifier", "Version 2"} {
				if !strings.Contains(out, want) {
					t.Errorf("openssl crl -text output lacks %q:\n%s", want, out)
				}
			}

			out, err = runOpenSSL(t, openssl, "crl", "-inform", "DER", "-in", crlPath, "-CAfile", caPath, "-noout")
			if err != nil || !strings.Contains(out, "verify OK") {
				t.Fatalf("openssl crl -CAfile: %v\n%s", err, out)
			}
		})
	}
}

// TestOpenSSLVerifyCRLCheck is the relying party's view: openssl verify
// with -crl_check refuses the revoked leaf and accepts the other. OpenSSL
// reads the wall clock, so the CRL is current as of now.
func TestOpenSSLVerifyCRLCheck(t *testing.T) {
	t.Parallel()
	openssl := needOpenSSL(t)
	for _, alg := range []pki.KeyAlgorithm{pki.ECDSAP256, pki.RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ca := newCA(t, alg)
			dir := t.TempDir()
			now := time.Now()
			leaf := func(name string) (string, []byte) {
				key, err := pki.ECDSAP256.Generate(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				serial, err := pki.NewSerial(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				tmpl := &x509.Certificate{
					SerialNumber: serial,
					Subject:      pkix.Name{CommonName: name},
					DNSNames:     []string{name},
					NotBefore:    now.Add(-time.Hour),
					NotAfter:     now.Add(time.Hour),
					KeyUsage:     x509.KeyUsageDigitalSignature,
					ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
				if err != nil {
					t.Fatal(err)
				}
				return writeFile(t, dir, name+".pem", pki.CertPEM(der)), serial.Bytes()
			}
			revokedPath, revokedSerial := leaf("revoked.example")
			goodPath, goodSerial := leaf("good.example")

			b := crl.NewBuilder(3)
			for i, e := range []crl.Entry{
				{Serial: bytes.Repeat([]byte{0x42}, 17), RevokedAt: now.Add(-2 * time.Hour)},
				{Serial: revokedSerial, RevokedAt: now.Add(-time.Minute), Reason: pki.ReasonKeyCompromise, InvalidityDate: now.Add(-time.Hour)},
				{Serial: append(goodSerial[:16:16], goodSerial[16]^1), RevokedAt: now.Add(-time.Minute)}, // a neighbour of the good serial
			} {
				if err := b.Add(e); err != nil {
					t.Fatalf("Add %d: %v", i, err)
				}
			}
			p := ca.params(1, now.Add(-time.Minute))
			der, err := b.Sign(rand.Reader, p)
			if err != nil {
				t.Fatal(err)
			}
			crlPath := writeFile(t, dir, "crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
			caPath := writeFile(t, dir, "ca.pem", pki.CertPEM(ca.cert.Raw))

			out, err := runOpenSSL(t, openssl, "verify", "-crl_check", "-CAfile", caPath, "-CRLfile", crlPath, revokedPath)
			if err == nil || !strings.Contains(out, "certificate revoked") {
				t.Errorf("openssl verify of the revoked leaf: err %v, want failure with \"certificate revoked\":\n%s", err, out)
			}
			out, err = runOpenSSL(t, openssl, "verify", "-crl_check", "-CAfile", caPath, "-CRLfile", crlPath, goodPath)
			if err != nil || !strings.Contains(out, ": OK") {
				t.Errorf("openssl verify of the good leaf: %v\n%s", err, out)
			}
		})
	}
}

// FuzzRoundTrip builds CRLs from arbitrary entries and checks that
// crypto/x509 reads back exactly what Add accepted, and that Add accepts
// exactly the valid entries. The CA is made once: key generation would
// dominate every iteration.
func FuzzRoundTrip(f *testing.F) {
	ca := newCA(f, pki.ECDSAP256)
	seeds := [][]byte{
		{},
		{17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 1, 0, 0, 0, 0, 0, 0},
		{2, 0x80, 0, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0x10, 0, 0, 0, 0},
		{0},
		{21, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6},
		{3, 0, 0, 0, 0},
		{3, 0, 0, 7, 8, 1, 2, 3, 4, 5, 9, 1, 2, 3, 4, 5, 1, 0x55, 5, 0x20, 0, 0, 0, 0, 0},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	this := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	p := ca.params(99, this)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fuzzReader{data}
		b := crl.NewBuilder(int(r.byte() % 8))
		var accepted []crl.Entry
		for i := 0; i < 8 && len(r.data) > 0; i++ {
			e := crl.Entry{
				Serial:    r.bytes(int(r.byte()) % 24),
				Reason:    pki.Reason(r.byte() % 12),
				RevokedAt: r.time(),
			}
			if r.byte()&1 == 1 {
				e.InvalidityDate = r.time()
			}
			err := b.Add(e)
			if want := expectValid(e); (err == nil) != want {
				t.Fatalf("Add(%+v) = %v; valid %v", e, err, want)
			}
			if err == nil {
				e.Serial = bytes.Clone(e.Serial)
				accepted = append(accepted, e)
			}
		}
		der, err := b.Sign(rand.Reader, p)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		checkCRL(t, der, ca, p, accepted)
	})
}

// expectValid restates Add's rules independently of the implementation.
func expectValid(e crl.Entry) bool {
	mag := new(big.Int).SetBytes(e.Serial)
	inRange := func(t time.Time) bool { y := t.UTC().Year(); return y >= 0 && y <= 9999 }
	return mag.Sign() > 0 && len(mag.Bytes()) <= 20 &&
		e.Reason.Valid() &&
		!e.RevokedAt.IsZero() && inRange(e.RevokedAt) &&
		(e.InvalidityDate.IsZero() || inRange(e.InvalidityDate))
}

type fuzzReader struct{ data []byte }

func (r *fuzzReader) byte() byte {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b
}

func (r *fuzzReader) bytes(n int) []byte {
	n = min(n, len(r.data))
	b := r.data[:n]
	r.data = r.data[n:]
	return b
}

// time spreads five octets over years 0000-9999 and a little beyond on
// both sides, so the UTCTime boundaries and the range checks are reached.
func (r *fuzzReader) time() time.Time {
	const (
		lo   = -62167219200 - 1e9 // before 0000-01-01
		span = 253402300800 + 62167219200 + 2e9
	)
	var v int64
	for range 5 {
		v = v<<8 | int64(r.byte())
	}
	return time.Unix(lo+v%span, int64(r.byte())*3906250).UTC()
}

// benchEntries makes n entries shaped like Certwright's: 17-octet serials
// starting 0x01, a mix of reasons, an invalidity date on one in eight.
func benchEntries(n int) []crl.Entry {
	rng := mrand.New(mrand.NewChaCha8([32]byte{1}))
	serials := make([]byte, 17*n)
	reasons := []pki.Reason{0, 0, 0, pki.ReasonKeyCompromise, pki.ReasonSuperseded, pki.ReasonCessationOfOperation, pki.ReasonAffiliationChanged, 0}
	out := make([]crl.Entry, n)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range out {
		s := serials[17*i : 17*i+17 : 17*i+17]
		for j := range s {
			s[j] = byte(rng.Uint32())
		}
		s[0] = 0x01
		out[i] = crl.Entry{Serial: s, RevokedAt: at.Add(time.Duration(i) * time.Second), Reason: reasons[i%len(reasons)]}
		if i%8 == 3 {
			out[i].InvalidityDate = out[i].RevokedAt.Add(-time.Hour)
		}
	}
	return out
}

func benchBuild(b *testing.B, n int) {
	ca := newCA(b, pki.ECDSAP256)
	entries := benchEntries(n)
	p := ca.params(1, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	var der []byte
	b.ReportAllocs()
	for b.Loop() {
		bl := crl.NewBuilder(len(entries))
		for _, e := range entries {
			if err := bl.Add(e); err != nil {
				b.Fatal(err)
			}
		}
		var err error
		if der, err = bl.Sign(rand.Reader, p); err != nil {
			b.Fatal(err)
		}
	}
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/perOp, "entries/s")
	b.ReportMetric(float64(len(der)), "DER-bytes")
}

func BenchmarkBuild100k(b *testing.B) { benchBuild(b, 100_000) }
func BenchmarkBuild1M(b *testing.B)   { benchBuild(b, 1_000_000) }

// BenchmarkStdlib100k is the baseline this package exists to beat.
func BenchmarkStdlib100k(b *testing.B) {
	ca := newCA(b, pki.ECDSAP256)
	entries := benchEntries(100_000)
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: base, NextUpdate: base.Add(time.Hour)}
	for _, e := range entries {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: new(big.Int).SetBytes(e.Serial), RevocationTime: e.RevokedAt, ReasonCode: int(e.Reason),
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key); err != nil {
			b.Fatal(err)
		}
	}
}
