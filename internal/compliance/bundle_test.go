package compliance_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/compliance"
)

func TestParseBundleAccepts(t *testing.T) {
	t.Parallel()
	root := tRoot(t, "Elsewhere Root")
	inter := root.sub(t, "Elsewhere Issuing")
	leaf := inter.leaf(t, "app.example.com", leafOpts{})
	withText := append([]byte("subject=CN=app.example.com\nissuer=CN=Elsewhere Issuing\n"), tPEM(leaf, inter.cert)...)
	tests := []struct {
		name string
		data []byte
		want []*x509.Certificate
	}{
		{"one PEM certificate", tPEM(leaf), []*x509.Certificate{leaf}},
		{"bundle", tPEM(leaf, inter.cert, root.cert), []*x509.Certificate{leaf, inter.cert, root.cert}},
		{"DER certificate", leaf.Raw, []*x509.Certificate{leaf}},
		{"text around the blocks, as openssl prints it", withText, []*x509.Certificate{leaf, inter.cert}},
		{"CRLF line ends", bytes.ReplaceAll(tPEM(leaf), []byte("\n"), []byte("\r\n")), []*x509.Certificate{leaf}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := compliance.ParseBundle("app.pem", tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d certificates, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i].Raw, tt.want[i].Raw) {
					t.Errorf("certificate %d differs", i+1)
				}
			}
		})
	}
}

func TestParseBundleRefuses(t *testing.T) {
	t.Parallel()
	ca := tRoot(t, "Elsewhere Root")
	key := tECKey(t)
	leaf := ca.leaf(t, "app.example.com", leafOpts{key: key})
	keyPEM := tKeyPEM(t, key)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	truncatedKey := []byte("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n")
	csr, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{DNSNames: []string{"a.example.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
	badCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	many := bytes.Repeat(tPEM(leaf), compliance.MaxImportCertificates+1)
	huge := append(tPEM(leaf), bytes.Repeat([]byte("#"), compliance.MaxImportFile)...)
	truncated := tPEM(leaf)
	truncated = truncated[:len(truncated)-30]

	tests := []struct {
		name       string
		data       []byte
		privateKey bool
		want       string // the message, after "app.pem"
	}{
		{"key after the certificate", append(tPEM(leaf), keyPEM...), true,
			"app.pem: block 2 is a private key (EC PRIVATE KEY): Certwright never stores keys of imported certificates; remove it and import the certificates only"},
		{"PKCS#8 key first", append(pkcs8, tPEM(leaf)...), true, "app.pem: block 1 is a private key (PRIVATE KEY)"},
		{"truncated key block", append(tPEM(leaf), truncatedKey...), true, "app.pem: block 2 is a private key (RSA PRIVATE KEY)"},
		{"DER key", keyDER, true, "app.pem is a private key (DER)"},
		{"CSR", csrPEM, false, "app.pem: block 1 is a CERTIFICATE REQUEST, not a certificate"},
		{"certificate block that is not DER", badCert, false, "app.pem: block 1 is not a valid certificate"},
		{"garbage", []byte("hello, this is not a certificate\n"), false, "app.pem is neither PEM certificates nor a DER certificate"},
		{"empty", nil, false, "app.pem is empty"},
		{"only whitespace", []byte(" \n\t\n"), false, "app.pem is empty"},
		{"too large", huge, false, "app.pem is 1049" /* ...576+ bytes */},
		{"too many certificates", many, false, "app.pem holds 1001 PEM blocks, more than the 1000 certificates"},
		{"truncated certificate", truncated, false, "malformed or truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			certs, err := compliance.ParseBundle("app.pem", tt.data)
			if err == nil {
				t.Fatalf("accepted, returning %d certificates", len(certs))
			}
			if !errors.Is(err, compliance.ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			var ie *compliance.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T is not an *InputError", err)
			}
			if ie.PrivateKey != tt.privateKey {
				t.Errorf("PrivateKey = %v, want %v", ie.PrivateKey, tt.privateKey)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if ie.PrivateKey && strings.Contains(err.Error(), string(keyDER[:8])) {
				t.Error("the error message carries key bytes")
			}
		})
	}
}

func TestValidateImportCountsEveryFile(t *testing.T) {
	t.Parallel()
	ca := tRoot(t, "Elsewhere Root")
	leaf := ca.leaf(t, "app.example.com", leafOpts{})
	half := bytes.Repeat(tPEM(leaf), compliance.MaxImportCertificates/2+1)
	err := compliance.ValidateImport([]compliance.ImportFile{{Name: "a.pem", Data: half}, {Name: "b.pem", Data: half}})
	if !errors.Is(err, compliance.ErrInvalid) || !strings.Contains(err.Error(), "more than 1000 certificates") {
		t.Errorf("two files of %d certificates each: err = %v, want the import limit", compliance.MaxImportCertificates/2+1, err)
	}
	if err := compliance.ValidateImport(nil); !errors.Is(err, compliance.ErrInvalid) {
		t.Errorf("no files: err = %v, want ErrInvalid", err)
	}
	key := tECKey(t)
	err = compliance.ValidateImport([]compliance.ImportFile{{Name: "ok.pem", Data: tPEM(leaf)}, {Name: "bad.pem", Data: tKeyPEM(t, key)}})
	if err == nil || !strings.HasPrefix(err.Error(), "bad.pem: block 1 is a private key") {
		t.Errorf("a key in the second file: err = %v, want it named", err)
	}
}

// FuzzParseBundle: whatever the input, ParseBundle never panics, never
// accepts a file with a private key header, and either refuses with an
// InputError or returns at least one certificate.
func FuzzParseBundle(f *testing.F) {
	ca := tRoot(f, "Fuzz Root")
	key := tECKey(f)
	leaf := ca.leaf(f, "fuzz.example.com", leafOpts{key: key})
	f.Add(tPEM(leaf, ca.cert))
	f.Add(leaf.Raw)
	f.Add(append(tPEM(leaf), tKeyPEM(f, key)...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN X PRIVATE KEY"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := compliance.ParseBundle("fuzz.pem", data)
		if err != nil {
			var ie *compliance.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T is not an *InputError: %v", err, err)
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("accepted with no certificate")
		}
		if bytes.Contains(bytes.ToUpper(data), []byte("PRIVATE KEY")) && bytes.Contains(data, []byte("-----BEGIN ")) {
			for _, l := range strings.Split(string(data), "-----BEGIN ")[1:] {
				if i := strings.IndexAny(l, "\r\n"); i >= 0 {
					l = l[:i]
				}
				if strings.Contains(strings.ToUpper(l), "PRIVATE KEY") {
					t.Fatalf("accepted input with a private key header: %q", data)
				}
			}
		}
	})
}

func TestImportFileNamesAreSafeToPrint(t *testing.T) {
	t.Parallel()
	err := compliance.ValidateImport([]compliance.ImportFile{{Name: "evil\n\x1b[31mname" + strings.Repeat("x", 300), Data: []byte("junk")}})
	if err == nil {
		t.Fatal("junk accepted")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\x1b") || !strings.HasPrefix(msg, "evil??[31mname") || strings.Count(msg, "x") > 250 {
		t.Errorf("error message %q: want control characters replaced and the name bounded", msg)
	}
}
