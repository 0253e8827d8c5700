package pki_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

func TestParseKeyAlgorithm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want pki.KeyAlgorithm
	}{
		{"rsa-2048", pki.RSA2048},
		{"rsa2048", pki.RSA2048},
		{"RSA_2048", pki.RSA2048},
		{" rsa-3072 ", pki.RSA3072},
		{"rsa4096", pki.RSA4096},
		{"ecdsa-p256", pki.ECDSAP256},
		{"p256", pki.ECDSAP256},
		{"P-256", pki.ECDSAP256},
		{"ec-p256", pki.ECDSAP256},
		{"ecdsa-p-256", pki.ECDSAP256},
		{"ECDSA_P256", pki.ECDSAP256},
		{"ecdsap256", pki.ECDSAP256},
		{"ecdsa-p384", pki.ECDSAP384},
		{"p384", pki.ECDSAP384},
		{"ec-p384", pki.ECDSAP384},
		{"ECDSA-P-384", pki.ECDSAP384},
		{"ed25519", pki.Ed25519},
		{"Ed25519", pki.Ed25519},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := pki.ParseKeyAlgorithm(tt.in)
			if err != nil {
				t.Fatalf("ParseKeyAlgorithm(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseKeyAlgorithm(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}

	for _, bad := range []string{"", "rsa", "rsa-1024", "rsa-8192", "p224", "p521", "ecdsa-p521", "ed448", "x25519", "dsa-2048", "rsa 2048"} {
		t.Run("reject/"+bad, func(t *testing.T) {
			t.Parallel()
			got, err := pki.ParseKeyAlgorithm(bad)
			if !errors.Is(err, pki.ErrUnknownKeyAlgorithm) {
				t.Fatalf("ParseKeyAlgorithm(%q) = %q, %v; want ErrUnknownKeyAlgorithm", bad, got, err)
			}
			if got != "" {
				t.Errorf("ParseKeyAlgorithm(%q) returned %q alongside an error", bad, got)
			}
		})
	}
}

func TestKeyAlgorithmTable(t *testing.T) {
	t.Parallel()
	// Every canonical name parses to itself, and Generate yields a key that
	// AlgorithmOf and DescribeKey map back to the same row of the table.
	for _, alg := range pki.KeyAlgorithms() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			if got, err := pki.ParseKeyAlgorithm(string(alg)); err != nil || got != alg {
				t.Fatalf("ParseKeyAlgorithm(%q) = %q, %v", alg, got, err)
			}
			if alg == pki.RSA4096 || alg == pki.RSA3072 {
				t.Skip("slow key generation; the RSA family is covered by rsa-2048")
			}
			k, err := alg.Generate(nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pki.AlgorithmOf(k.Public())
			if err != nil || got != alg {
				t.Fatalf("AlgorithmOf(generated %s) = %q, %v", alg, got, err)
			}
			fam, bits, err := pki.DescribeKey(k.Public())
			if err != nil || fam != alg.Family() || bits != alg.Bits() {
				t.Fatalf("DescribeKey = %s/%d, %v; want %s/%d", fam, bits, err, alg.Family(), alg.Bits())
			}
		})
	}
	if _, err := pki.KeyAlgorithm("rsa-1024").Generate(nil); !errors.Is(err, pki.ErrUnknownKeyAlgorithm) {
		t.Errorf("Generate(rsa-1024) error = %v, want ErrUnknownKeyAlgorithm", err)
	}
}

// countingReader is a deterministic byte stream that records how much was read.
type countingReader struct {
	next byte
	n    int
}

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	r.n += len(p)
	return len(p), nil
}

func TestNewSerial(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 22, 0, 0, 123e6, time.UTC)

	t.Run("shape", func(t *testing.T) {
		t.Parallel()
		seen := map[string]bool{}
		for range 1000 {
			s, err := pki.NewSerial(nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.Sign() <= 0 {
				t.Fatalf("serial %x is not positive", s)
			}
			// 6 octets of Unix milliseconds (first octet non-zero, below
			// 0x80) then 104 random bits: 19 octets, within RFC 5280's
			// 20-octet limit and with no sign octet.
			b := s.Bytes()
			if len(b) != 19 || b[0] == 0 || b[0] >= 0x80 {
				t.Fatalf("serial %x is %d octets starting %#x, want 19 starting 0x01-0x7f", s, len(b), b[0])
			}
			h := pki.SerialHex(s)
			if seen[h] {
				t.Fatalf("serial %s repeated", h)
			}
			seen[h] = true
		}
	})

	t.Run("time then 13 bytes of the reader", func(t *testing.T) {
		t.Parallel()
		r := &countingReader{}
		s, err := pki.NewSerialAt(r, at)
		if err != nil {
			t.Fatal(err)
		}
		if r.n != 13 {
			t.Errorf("read %d bytes, want 13", r.n)
		}
		want, _ := new(big.Int).SetString(fmt.Sprintf("%012x", at.UnixMilli())+"000102030405060708090a0b0c", 16)
		if s.Cmp(want) != 0 {
			t.Errorf("serial = %x, want %x", s, want)
		}
	})

	t.Run("issuance order", func(t *testing.T) {
		t.Parallel()
		// Later issuance, larger serial and a larger fixed-width hex form,
		// whatever the random part: what keeps the stores' serial-keyed
		// indexes growing at their end.
		prev := ""
		for i := range 200 {
			s, err := pki.NewSerialAt(nil, at.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			h := pki.SerialHex(s)
			if len(h) != 38 || h <= prev {
				t.Fatalf("serial %d: %s after %s", i, h, prev)
			}
			prev = h
		}
	})

	t.Run("clock before 1970 counts as 1970", func(t *testing.T) {
		t.Parallel()
		s, err := pki.NewSerialAt(&countingReader{}, time.Unix(-5, 0))
		if err != nil {
			t.Fatal(err)
		}
		epoch, err := pki.NewSerialAt(&countingReader{}, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if s.Cmp(epoch) != 0 {
			t.Errorf("serial at -5 s = %x, want the epoch's %x", s, epoch)
		}
	})

	t.Run("all-zero randomness is still positive", func(t *testing.T) {
		t.Parallel()
		// At the epoch the time octets are zero too: NewSerialAt reads
		// again until the serial is positive.
		r := io.MultiReader(bytes.NewReader(make([]byte, 13)), bytes.NewReader([]byte{12: 1}))
		s, err := pki.NewSerialAt(r, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if s.Cmp(big.NewInt(1)) != 0 {
			t.Errorf("serial = %x, want 1", s)
		}
	})

	t.Run("short reader", func(t *testing.T) {
		t.Parallel()
		_, err := pki.NewSerialAt(bytes.NewReader(make([]byte, 12)), at)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	})
}

func TestNormalizeSerial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"01ab", "01ab"},
		{"1ab", "01ab"},
		{"0x01ab", "01ab"},
		{"0X01AB", "01ab"},
		{"01:AB", "01ab"},
		{"  01:ab:CD  ", "01abcd"},
		{"00ff", "ff"},
		{"0000000000000001", "01"},
		{strings.Repeat("f", 64), strings.Repeat("f", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := pki.NormalizeSerial(tt.in)
			if err != nil {
				t.Fatalf("NormalizeSerial(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("NormalizeSerial(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Canonical output is a fixed point.
			if again, err := pki.NormalizeSerial(got); err != nil || again != got {
				t.Fatalf("NormalizeSerial(%q) = %q, %v; not a fixed point", got, again, err)
			}
		})
	}
	for _, bad := range []string{"", "0x", "::", "0", "00", "-1", "xyz", "01 ab", strings.Repeat("f", 65)} {
		t.Run("reject/"+bad, func(t *testing.T) {
			t.Parallel()
			if got, err := pki.NormalizeSerial(bad); err == nil {
				t.Fatalf("NormalizeSerial(%q) = %q, want an error", bad, got)
			}
		})
	}
	// SerialHex and NormalizeSerial agree on a fresh serial.
	s, err := pki.NewSerial(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pki.NormalizeSerial(pki.SerialHex(s)); err != nil || got != pki.SerialHex(s) {
		t.Fatalf("NormalizeSerial(SerialHex) = %q, %v", got, err)
	}
}

func mustKey(t testing.TB, alg pki.KeyAlgorithm) crypto.Signer {
	t.Helper()
	k, err := alg.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrDER(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "svc.example.internal"},
		DNSNames: []string{"svc.example.internal"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseCSR(t *testing.T) {
	t.Parallel()
	key := mustKey(t, pki.ECDSAP256)
	der := csrDER(t, key)
	good := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})

	badSig := bytes.Clone(der)
	badSig[len(badSig)-1] ^= 0x01 // last octet of the signature value
	tamperedName := bytes.Replace(der, []byte("svc.example.internal"), []byte("evil.example.interna"), 1)

	accept := []struct {
		name string
		in   []byte
	}{
		{"PEM", good},
		{"DER", der},
		{"NEW CERTIFICATE REQUEST", pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: der})},
		{"text before PEM", append([]byte("subject=CN = svc\n"), good...)},
	}
	for _, tt := range accept {
		t.Run("accept/"+tt.name, func(t *testing.T) {
			t.Parallel()
			csr, err := pki.ParseCSR(tt.in)
			if err != nil {
				t.Fatalf("ParseCSR: %v", err)
			}
			if !key.Public().(*ecdsa.PublicKey).Equal(csr.PublicKey) {
				t.Errorf("CSR key differs from the signing key")
			}
			if csr.Subject.CommonName != "svc.example.internal" {
				t.Errorf("CommonName = %q", csr.Subject.CommonName)
			}
		})
	}

	reject := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"garbage", []byte("this is not a certificate request")},
		{"random bytes", bytes.Repeat([]byte{0x30, 0x82, 0xff}, 50)},
		{"truncated PEM", good[:len(good)/2]},
		{"PEM without end line", bytes.TrimSuffix(good, []byte("-----END CERTIFICATE REQUEST-----\n"))},
		{"wrong PEM type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
		{"private key PEM", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})},
		{"truncated DER", der[:len(der)-10]},
		{"PEM of garbage", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("junk")})},
		{"bad signature", badSig},
		{"tampered subject", tamperedName},
		{"oversized", append(bytes.Repeat([]byte{' '}, pki.MaxPEMInput), good...)},
	}
	for _, tt := range reject {
		t.Run("reject/"+tt.name, func(t *testing.T) {
			t.Parallel()
			csr, err := pki.ParseCSR(tt.in)
			if err == nil {
				t.Fatalf("ParseCSR accepted %s: %+v", tt.name, csr.Subject)
			}
			if csr != nil {
				t.Errorf("ParseCSR returned a CSR alongside error %v", err)
			}
		})
	}
}

func TestSubjectKeyID(t *testing.T) {
	t.Parallel()
	for _, alg := range []pki.KeyAlgorithm{pki.RSA2048, pki.ECDSAP256, pki.ECDSAP384, pki.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			k := mustKey(t, alg)
			a, err := pki.SubjectKeyID(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != 20 {
				t.Fatalf("SKI is %d bytes, want 20 (RFC 7093 method 1: 160 bits)", len(a))
			}
			b, err := pki.SubjectKeyID(k.Public())
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("SKI not stable: %x then %x (%v)", a, b, err)
			}
			other, err := pki.SubjectKeyID(mustKey(t, alg).Public())
			if err != nil || bytes.Equal(a, other) {
				t.Fatalf("two keys share SKI %x (%v)", a, err)
			}
			// RFC 7093 method 1 hashes the subjectPublicKey BIT STRING only.
			var bits []byte
			switch pub := k.Public().(type) {
			case ed25519.PublicKey:
				bits = pub
			case *ecdsa.PublicKey:
				ecdh, err := pub.ECDH()
				if err != nil {
					t.Fatal(err)
				}
				bits = ecdh.Bytes()
			case *rsa.PublicKey:
				bits = x509.MarshalPKCS1PublicKey(pub)
			}
			h := sha256.Sum256(bits)
			if !bytes.Equal(a, h[:20]) {
				t.Fatalf("SKI = %x, want leftmost 160 bits of SHA-256(subjectPublicKey) %x", a, h[:20])
			}
		})
	}
	if _, err := pki.SubjectKeyID(struct{}{}); err == nil {
		t.Error("SubjectKeyID accepted an unsupported key type")
	}
}

// TestSubjectKeyIDOf: from the DER SubjectPublicKeyInfo, the same SKI as
// SubjectKeyID gives for the key; anything but one DER SubjectPublicKeyInfo
// with a whole-octet key is refused.
func TestSubjectKeyIDOf(t *testing.T) {
	t.Parallel()
	var spki []byte
	for _, alg := range []pki.KeyAlgorithm{pki.RSA2048, pki.ECDSAP256, pki.Ed25519} {
		k := mustKey(t, alg)
		var err error
		if spki, err = x509.MarshalPKIXPublicKey(k.Public()); err != nil {
			t.Fatal(err)
		}
		want, err := pki.SubjectKeyID(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		got, err := pki.SubjectKeyIDOf(spki)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: SubjectKeyIDOf = %x (%v), SubjectKeyID %x", alg, got, err, want)
		}
	}
	// An Ed25519 SPKI is 30 0x2a 30 05 06 03 2b6570 03 0x21 00 <32 octets>.
	unused := slices.Clone(spki)
	unused[11] = 1 // one unused bit in the BIT STRING
	for name, der := range map[string][]byte{
		"trailing data":   append(slices.Clone(spki), 0),
		"not a SEQUENCE":  {4, 1, 0},
		"unused key bits": unused,
		"empty":           nil,
		"truncated":       spki[:len(spki)-1],
	} {
		if ski, err := pki.SubjectKeyIDOf(der); err == nil {
			t.Errorf("%s: SubjectKeyIDOf = %x, want an error", name, ski)
		}
	}
}

func FuzzParseCSR(f *testing.F) {
	key, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		f.Fatal(err)
	}
	der := csrDER(f, key)
	f.Add(der)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: der}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB"))
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := pki.ParseCSR(data)
		if err != nil {
			if csr != nil {
				t.Fatalf("CSR returned alongside error %v", err)
			}
			return
		}
		// Whatever ParseCSR accepts has a verifying self-signature.
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("accepted CSR does not verify: %v", err)
		}
		if csr.PublicKey == nil {
			t.Fatal("accepted CSR has no public key")
		}
	})
}

func TestCertPEMMatchesEncodeToMemory(t *testing.T) {
	var ders [][]byte
	for _, n := range []int{0, 1, 2, 3, 47, 48, 49, 95, 96, 97, 500, 1024} {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(i*7 + n)
		}
		ders = append(ders, d)
		want := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})
		if got := pki.CertPEM(d); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: got\n%s\nwant\n%s", n, got, want)
		}
	}
	var want []byte
	for _, d := range ders {
		want = append(want, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	if got := pki.CertPEM(ders...); !bytes.Equal(got, want) {
		t.Fatal("concatenated blocks differ from pem.EncodeToMemory's")
	}
}
