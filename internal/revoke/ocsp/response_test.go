package ocsp_test

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke/ocsp"
)

func answers(now time.Time) map[string]ocsp.Answer {
	this, next := now.Add(-time.Minute), now.Add(4*time.Hour)
	return map[string]ocsp.Answer{
		"good":    {Status: ocsp.Good, ThisUpdate: this, NextUpdate: next},
		"unknown": {Status: ocsp.Unknown, ThisUpdate: this, NextUpdate: next},
		"revoked": {Status: ocsp.Revoked, RevokedAt: now.Add(-time.Hour), Reason: pki.ReasonKeyCompromise, ThisUpdate: this, NextUpdate: next},
		"revoked-unspecified": {Status: ocsp.Revoked, RevokedAt: now.Add(-time.Hour), Reason: pki.ReasonUnspecified,
			ThisUpdate: this, NextUpdate: next},
	}
}

var xStatus = map[ocsp.Status]int{ocsp.Good: xocsp.Good, ocsp.Revoked: xocsp.Revoked, ocsp.Unknown: xocsp.Unknown}

func TestSignVerifiesWithXCrypto(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC)
	for _, alg := range []pki.KeyAlgorithm{pki.ECDSAP256, pki.ECDSAP384, pki.RSA2048} {
		p := newPKI(t, now, alg)
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512} {
			id, err := p.issuer.CertID(h, p.leaf.SerialNumber)
			if err != nil {
				t.Fatal(err)
			}
			for name, a := range answers(now) {
				t.Run(string(alg)+"/"+h.String()+"/"+name, func(t *testing.T) {
					t.Parallel()
					der, err := p.responder.Sign(nil, id, a)
					if err != nil {
						t.Fatal(err)
					}
					r, err := xocsp.ParseResponseForCert(der, p.leaf, p.inter)
					if err != nil {
						t.Fatalf("x/crypto: %v", err)
					}
					if r.Status != xStatus[a.Status] || r.IssuerHash != h || r.SerialNumber.Cmp(p.leaf.SerialNumber) != 0 {
						t.Errorf("status %d hash %v serial %x", r.Status, r.IssuerHash, r.SerialNumber)
					}
					sec := func(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
					if !r.ThisUpdate.Equal(sec(a.ThisUpdate)) || !r.NextUpdate.Equal(sec(a.NextUpdate)) || !r.ProducedAt.Equal(sec(a.ThisUpdate)) {
						t.Errorf("times this %v next %v produced %v", r.ThisUpdate, r.NextUpdate, r.ProducedAt)
					}
					if a.Status == ocsp.Revoked {
						if !r.RevokedAt.Equal(sec(a.RevokedAt)) || r.RevocationReason != int(a.Reason) {
							t.Errorf("revoked at %v reason %d", r.RevokedAt, r.RevocationReason)
						}
					}
					if r.Certificate == nil || !r.Certificate.Equal(p.resp) {
						t.Error("response does not carry the responder certificate")
					}
					wantKeyHash := responderKeyHash(t, p.resp)
					if r.RawResponderName != nil || !bytes.Equal(r.ResponderKeyHash, wantKeyHash) {
						t.Errorf("responder id: name %x keyHash %x, want byKey %x", r.RawResponderName, r.ResponderKeyHash, wantKeyHash)
					}
					if r.SignatureAlgorithm != pki.SignatureAlgorithmFor(p.key.Public()) {
						t.Errorf("signature algorithm %v", r.SignatureAlgorithm)
					}
					if len(r.Extensions) != 0 {
						t.Errorf("single extensions %v", r.Extensions)
					}
				})
			}
		}
	}
}

func responderKeyHash(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	var spki struct {
		Alg asn1.RawValue
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	h := sha1.Sum(spki.Key.Bytes)
	return h[:]
}

// TestSignVerifiesWithOpenSSL checks the chain root → intermediate →
// delegated responder as a relying party would, and the status text.
func TestSignVerifiesWithOpenSSL(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, alg := range []pki.KeyAlgorithm{pki.ECDSAP256, pki.RSA2048, pki.Ed25519} {
		p := newPKI(t, now, alg)
		f := p.files(t)
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			id, err := p.issuer.CertID(h, p.leaf.SerialNumber)
			if err != nil {
				t.Fatal(err)
			}
			for name, a := range answers(now) {
				t.Run(string(alg)+"/"+h.String()+"/"+name, func(t *testing.T) {
					t.Parallel()
					der, err := p.responder.Sign(nil, id, a)
					if err != nil {
						t.Fatal(err)
					}
					path := filepath.Join(t.TempDir(), "resp.der")
					if err := os.WriteFile(path, der, 0o600); err != nil {
						t.Fatal(err)
					}
					dgst := "-sha1"
					if h == crypto.SHA256 {
						dgst = "-sha256"
					}
					out := openssl(t, "ocsp", "-respin", path, "-issuer", f["ca.pem"], "-no_nonce", dgst, "-cert", f["leaf.pem"],
						"-CAfile", f["root.pem"], "-verify_other", f["ca.pem"], "-resp_text")
					if !strings.Contains(out, "Response verify OK") {
						t.Errorf("openssl did not verify:\n%s", out)
					}
					want := f["leaf.pem"] + ": " + a.Status.String()
					if !strings.Contains(out, want) {
						t.Errorf("openssl output lacks %q:\n%s", want, out)
					}
					if a.Status == ocsp.Revoked && a.Reason == pki.ReasonKeyCompromise && !strings.Contains(out, "Reason: keyCompromise") {
						t.Errorf("openssl output lacks the reason:\n%s", out)
					}
					if a.Reason == pki.ReasonUnspecified && strings.Contains(out, "Reason:") {
						t.Errorf("unspecified reason is encoded:\n%s", out)
					}
					if !strings.Contains(out, "Responder Id: ") || strings.Contains(out, "Responder Id: CN") {
						t.Errorf("responder id is not byKey:\n%s", out)
					}
				})
			}
		}
	}
}

func TestSignRejects(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := newPKI(t, now, pki.ECDSAP256)
	id, err := p.issuer.CertID(crypto.SHA1, p.leaf.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	good := ocsp.Answer{Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	otherIssuer, err := ocsp.NewIssuer(p.root)
	if err != nil {
		t.Fatal(err)
	}
	rootID, err := otherIssuer.CertID(crypto.SHA1, p.leaf.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		id   ocsp.CertID
		a    ocsp.Answer
	}{
		{"other issuer", rootID, good},
		{"unsupported hash", ocsp.CertID{Hash: crypto.MD5, NameHash: id.NameHash, KeyHash: id.KeyHash, Serial: id.Serial}, good},
		{"nil serial", ocsp.CertID{Hash: id.Hash, NameHash: id.NameHash, KeyHash: id.KeyHash}, good},
		{"negative serial", ocsp.CertID{Hash: id.Hash, NameHash: id.NameHash, KeyHash: id.KeyHash, Serial: big.NewInt(-1)}, good},
		{"zero status", id, ocsp.Answer{ThisUpdate: now, NextUpdate: now.Add(time.Hour)}},
		{"no nextUpdate", id, ocsp.Answer{Status: ocsp.Good, ThisUpdate: now}},
		{"no thisUpdate", id, ocsp.Answer{Status: ocsp.Good, NextUpdate: now}},
		{"next before this", id, ocsp.Answer{Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(-time.Hour)}},
		{"revoked without time", id, ocsp.Answer{Status: ocsp.Revoked, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}},
		{"revoked in the future", id, ocsp.Answer{Status: ocsp.Revoked, RevokedAt: now.Add(time.Minute), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}},
		{"certificateHold", id, ocsp.Answer{Status: ocsp.Revoked, Reason: 6, RevokedAt: now, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if der, err := p.responder.Sign(nil, c.id, c.a); err == nil {
				t.Errorf("Sign accepted it: % x", der)
			}
		})
	}
	// Sub-second revocation within thisUpdate's second is fine.
	a := ocsp.Answer{Status: ocsp.Revoked, RevokedAt: now.Truncate(time.Second).Add(900 * time.Millisecond),
		ThisUpdate: now.Truncate(time.Second).Add(100 * time.Millisecond), NextUpdate: now.Add(time.Hour)}
	if _, err := p.responder.Sign(nil, id, a); err != nil {
		t.Errorf("revocation in thisUpdate's second: %v", err)
	}
}

func TestNewResponder(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := newPKI(t, now, pki.ECDSAP256)
	q := newPKI(t, now, pki.ECDSAP256)
	noEKU := *p.leaf // a leaf issued by the intermediate, but not for OCSP
	cases := []struct {
		name         string
		issuer, cert *x509.Certificate
		key          crypto.Signer
	}{
		{"key mismatch", p.inter, p.resp, q.key},
		{"other issuer", q.inter, p.resp, p.key},
		{"no OCSPSigning EKU", p.inter, &noEKU, p.leafKey},
		{"nil key", p.inter, p.resp, nil},
	}
	id, err := p.issuer.CertID(crypto.SHA1, p.leaf.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	a := ocsp.Answer{Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ocsp.NewResponder(c.issuer, c.cert, c.key); err == nil {
				t.Error("NewResponder accepted")
			}
			// The literal form fails the same way, on every Sign.
			r := &ocsp.Responder{Issuer: c.issuer, Cert: c.cert, Key: c.key}
			for range 2 {
				if _, err := r.Sign(nil, id, a); err == nil {
					t.Error("Sign on a literal accepted")
				}
			}
		})
	}
	t.Run("literal", func(t *testing.T) {
		t.Parallel()
		r := &ocsp.Responder{Issuer: p.inter, Cert: p.resp, Key: p.key}
		der, err := r.Sign(nil, id, a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := xocsp.ParseResponseForCert(der, p.leaf, p.inter); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("CA signs itself", func(t *testing.T) {
		t.Parallel()
		r, err := ocsp.NewResponder(p.inter, p.inter, p.interKey)
		if err != nil {
			t.Fatal(err)
		}
		id, err := p.issuer.CertID(crypto.SHA256, p.leaf.SerialNumber)
		if err != nil {
			t.Fatal(err)
		}
		der, err := r.Sign(nil, id, ocsp.Answer{Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := xocsp.ParseResponseForCert(der, p.leaf, p.inter)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Certificate != nil || resp.Status != xocsp.Good {
			t.Errorf("certificate %v status %d", resp.Certificate, resp.Status)
		}
	})
}

func TestResponderTemplate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := newPKI(t, now, pki.ECDSAP256)
	c := p.resp
	if c.Subject.CommonName != "Test Issuing CA OCSP Responder" || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "Certwright Test" {
		t.Errorf("subject %v", c.Subject)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %v", c.KeyUsage)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning || len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("EKU %v %v", c.ExtKeyUsage, c.UnknownExtKeyUsage)
	}
	if !c.BasicConstraintsValid || c.IsCA {
		t.Error("not CA:FALSE")
	}
	ski, err := pki.SubjectKeyID(p.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.SubjectKeyId, ski) || !bytes.Equal(c.AuthorityKeyId, p.inter.SubjectKeyId) {
		t.Errorf("SKI %x AKI %x", c.SubjectKeyId, c.AuthorityKeyId)
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm %v", c.SignatureAlgorithm)
	}
	oids := map[string]bool{}
	for _, e := range c.Extensions {
		oids[e.Id.String()] = e.Critical
		switch e.Id.String() {
		case "1.3.6.1.5.5.7.48.1.5":
			if e.Critical || !bytes.Equal(e.Value, []byte{0x05, 0x00}) {
				t.Errorf("ocsp-nocheck critical %v value %x", e.Critical, e.Value)
			}
		case "2.5.29.15":
			if !e.Critical {
				t.Error("key usage not critical")
			}
		}
	}
	if _, ok := oids["1.3.6.1.5.5.7.48.1.5"]; !ok {
		t.Error("no id-pkix-ocsp-nocheck")
	}
	f := p.files(t)
	out := openssl(t, "x509", "-in", f["responder.pem"], "-noout", "-text")
	for _, want := range []string{"OCSP No Check", "OCSP Signing", "Digital Signature", "CA:FALSE"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl x509 -text lacks %q", want)
		}
	}
	openssl(t, "verify", "-CAfile", f["root.pem"], "-untrusted", f["ca.pem"], "-purpose", "ocsphelper", f["responder.pem"])

	// Validity is clamped to the issuer's; a bad serial or window is refused.
	tmpl, err := ocsp.ResponderTemplate(p.inter, p.key.Public(), big.NewInt(7), now, now.Add(1000*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !tmpl.NotAfter.Equal(p.inter.NotAfter) {
		t.Errorf("notAfter %v, issuer's %v", tmpl.NotAfter, p.inter.NotAfter)
	}
	if _, err := ocsp.ResponderTemplate(p.inter, p.key.Public(), big.NewInt(0), now, now.Add(time.Hour)); err == nil {
		t.Error("zero serial accepted")
	}
	if _, err := ocsp.ResponderTemplate(p.inter, p.key.Public(), big.NewInt(7), now, now.Add(-time.Hour)); err == nil {
		t.Error("inverted validity accepted")
	}
	if _, err := ocsp.ResponderTemplate(p.leaf, p.key.Public(), big.NewInt(7), now, now.Add(time.Hour)); err == nil {
		t.Error("non-CA issuer accepted")
	}
}
