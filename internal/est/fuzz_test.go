package est

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func testCSR(t testing.TB, _ string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev"}, DNSNames: []string{"dev"}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestDecodeBody: base64 with and without line breaks decodes; garbage,
// empty and oversized bodies are ErrInvalid naming the problem.
func TestDecodeBody(t *testing.T) {
	t.Parallel()
	der := testCSR(t, "")
	flat := base64.StdEncoding.EncodeToString(der)
	for _, ok := range []string{flat, string(EncodeBody(der)), strings.ReplaceAll(string(EncodeBody(der)), "\r\n", "\n")} {
		got, err := DecodeBody([]byte(ok))
		if err != nil || string(got) != string(der) {
			t.Errorf("DecodeBody(%.20q...): %v", ok, err)
		}
	}
	for name, bad := range map[string]string{
		"garbage": "not base64!", "empty": "\r\n", "padding inside": "QUJD=QUJD", "oversized": strings.Repeat("A", MaxBody+1),
	} {
		if _, err := DecodeBody([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestChallengePassword reads the attribute a channel-bound CSR carries
// and refuses malformed ones.
func TestChallengePassword(t *testing.T) {
	t.Parallel()
	csr, _ := x509.ParseCertificateRequest(testCSR(t, ""))
	if _, ok, err := ChallengePassword(csr.RawTBSCertificateRequest); ok || err != nil {
		t.Fatalf("CSR without attributes: ok %v, %v", ok, err)
	}
	tbs := withPassword(t, csr.RawTBSCertificateRequest, "c2VjcmV0")
	pw, ok, err := ChallengePassword(tbs)
	if err != nil || !ok || pw != "c2VjcmV0" {
		t.Fatalf("challengePassword: %q %v %v", pw, ok, err)
	}
	if _, _, err := ChallengePassword(append(tbs, 0)); err == nil {
		t.Error("trailing data accepted")
	}
}

// withPassword rebuilds a CSR's request info with a challengePassword.
func withPassword(t testing.TB, tbs []byte, pw string) []byte {
	t.Helper()
	var info csrInfo
	if _, err := asn1.Unmarshal(tbs, &info); err != nil {
		t.Fatal(err)
	}
	val, _ := asn1.MarshalWithParams(pw, "printable")
	set, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: val})
	attr, _ := asn1.Marshal(struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}{asn1.ObjectIdentifier(oidChallengePassword), asn1.RawValue{FullBytes: set}})
	info.Attributes = []asn1.RawValue{{FullBytes: attr}}
	out, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzDecodeBody: the body parser never panics, accepts only what
// decodes, and the CSR attribute parser never panics on what it yields.
func FuzzDecodeBody(f *testing.F) {
	der := testCSR(f, "")
	csr, _ := x509.ParseCertificateRequest(der)
	f.Add(EncodeBody(der))
	f.Add([]byte(base64.StdEncoding.EncodeToString(withPassword(f, csr.RawTBSCertificateRequest, "abc"))))
	f.Add([]byte("not base64"))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := DecodeBody(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if len(out) == 0 {
			t.Fatal("decoded to nothing without an error")
		}
		_, _, _ = ChallengePassword(out)
		if c, err := x509.ParseCertificateRequest(out); err == nil {
			_, _, _ = ChallengePassword(c.RawTBSCertificateRequest)
		}
	})
}
