package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/verify"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type issued struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func p256(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t *testing.T, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, tmpl *x509.Certificate, parent *issued, key crypto.Signer) issued {
	t.Helper()
	if tmpl.SerialNumber == nil {
		s, err := pki.NewSerial(nil)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.SerialNumber = s
	}
	if tmpl.SubjectKeyId == nil {
		ski, err := pki.SubjectKeyID(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		tmpl.SubjectKeyId = ski
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issued{c, key}
}

func caTmpl(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"Example Corp"}, CommonName: cn},
		NotBefore:             now.AddDate(-1, 0, 0),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

func leafTmpl() *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "app.example.internal"},
		DNSNames:    []string{"app.example.internal"},
		IPAddresses: []net.IP{net.ParseIP("10.0.0.7")},
		NotBefore:   now.AddDate(0, 0, -30),
		NotAfter:    now.AddDate(0, 0, 335),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

type pkiFixture struct {
	root, inter issued
}

func newPKI(t *testing.T) pkiFixture {
	t.Helper()
	root := sign(t, caTmpl("Example Root CA"), nil, p256(t))
	inter := sign(t, caTmpl("Example Issuing CA"), &root, p256(t))
	return pkiFixture{root, inter}
}

func (f pkiFixture) opts() verify.Options {
	return verify.Options{
		Roots:         []*x509.Certificate{f.root.cert},
		Intermediates: []*x509.Certificate{f.inter.cert},
		Purpose:       verify.PurposeServer,
		Host:          "app.example.internal",
		Now:           now,
	}
}

func codes(r verify.Report) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.Code)
	}
	return out
}

func TestVerify(t *testing.T) {
	t.Parallel()
	f := newPKI(t)
	other := newPKI(t)

	tests := []struct {
		name    string
		leaf    func(t *testing.T) *x509.Certificate
		opts    func(o *verify.Options)
		want    []string // problem codes, in report order
		wantMsg []string // substrings of the problem messages
	}{
		{
			name: "valid server certificate",
			leaf: func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, p256(t)).cert },
		},
		{
			name: "valid by IP address",
			leaf: func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, p256(t)).cert },
			opts: func(o *verify.Options) { o.Host = "10.0.0.7" },
		},
		{
			name: "no purpose or host given",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			opts: func(o *verify.Options) { o.Purpose, o.Host = "", "" },
		},
		{
			name: "expired",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.NotBefore, tmpl.NotAfter = now.AddDate(-1, 0, 0), now.AddDate(0, 0, -12)
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			want:    []string{verify.CodeExpired},
			wantMsg: []string{"certificate expired on " + now.AddDate(0, 0, -12).Format("2006-01-02"), "(12 days ago)"},
		},
		{
			name: "not yet valid",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.NotBefore = now.Add(5 * time.Hour)
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			want:    []string{verify.CodeNotYetValid},
			wantMsg: []string{"not valid until", "(in 5 hours)"},
		},
		{
			name:    "untrusted root",
			leaf:    func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, p256(t)).cert },
			opts:    func(o *verify.Options) { o.Roots = []*x509.Certificate{other.root.cert} },
			want:    []string{verify.CodeUntrusted},
			wantMsg: []string{`the chain stops at "CN=Example Issuing CA,O=Example Corp", whose issuer "CN=Example Root CA,O=Example Corp" was not found`},
		},
		{
			name: "chain ends at an untrusted root",
			leaf: func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, p256(t)).cert },
			opts: func(o *verify.Options) {
				o.Roots = []*x509.Certificate{other.root.cert}
				o.Intermediates = append(o.Intermediates, f.root.cert)
			},
			want:    []string{verify.CodeUntrusted},
			wantMsg: []string{`the chain ends at "CN=Example Root CA,O=Example Corp", which is not among the trusted roots`},
		},
		{
			name:    "missing intermediate",
			leaf:    func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, p256(t)).cert },
			opts:    func(o *verify.Options) { o.Intermediates = nil },
			want:    []string{verify.CodeUntrusted},
			wantMsg: []string{`issuer "CN=Example Issuing CA,O=Example Corp" was not found`, "--chain"},
		},
		{
			name: "empty roots trust nothing",
			leaf: func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, p256(t)).cert },
			opts: func(o *verify.Options) { o.Roots = []*x509.Certificate{} },
			want: []string{verify.CodeUntrusted},
		},
		{
			name: "client certificate used as server",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			want:    []string{verify.CodeWrongPurpose},
			wantMsg: []string{"not valid for TLS server authentication (serverAuth): its extended key usage allows only clientAuth"},
		},
		{
			name: "client certificate used as client",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			opts: func(o *verify.Options) { o.Purpose = verify.PurposeClient },
		},
		{
			name: "key usage lacks digitalSignature",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.KeyUsage = x509.KeyUsageKeyEncipherment
				return sign(t, tmpl, &f.inter, rsaKey(t, 2048)).cert
			},
			want:    []string{verify.CodeWrongPurpose},
			wantMsg: []string{"key usage lacks digitalSignature"},
		},
		{
			name: "code signing needs the EKU",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.ExtKeyUsage = nil
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			opts:    func(o *verify.Options) { o.Purpose, o.Host = verify.PurposeCode, "" },
			want:    []string{verify.CodeWrongPurpose},
			wantMsg: []string{"code signing (codeSigning): it has no extended key usage extension"},
		},
		{
			name: "code signing certificate",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			opts: func(o *verify.Options) { o.Purpose, o.Host = verify.PurposeCode, "" },
		},
		{
			name:    "hostname mismatch",
			leaf:    func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, p256(t)).cert },
			opts:    func(o *verify.Options) { o.Host = "foo.example" },
			want:    []string{verify.CodeHostnameMismatch},
			wantMsg: []string{"certificate is not valid for host foo.example: it names app.example.internal, 10.0.0.7"},
		},
		{
			name: "hostname only in common name",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.DNSNames, tmpl.IPAddresses = nil, nil
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			want:    []string{verify.CodeHostnameMismatch},
			wantMsg: []string{"no DNS or IP subject alternative names", `common name "app.example.internal" is not used`},
		},
		{
			name:    "weak RSA-1024 key",
			leaf:    func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, rsaKey(t, 1024)).cert },
			want:    []string{verify.CodeWeakKey},
			wantMsg: []string{"certificate has a 1024-bit RSA key; at least 2048 bits are needed"},
		},
		{
			name: "weak P-224 key",
			leaf: func(t *testing.T) *x509.Certificate {
				k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				return sign(t, leafTmpl(), &f.inter, k).cert
			},
			want:    []string{verify.CodeWeakKey},
			wantMsg: []string{"224-bit ECDSA key"},
		},
		{
			name: "missing SKI",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.SubjectKeyId = []byte{}
				return sign(t, tmpl, &f.inter, p256(t)).cert
			},
			want:    []string{verify.CodeMissingSKI},
			wantMsg: []string{"certificate has no subject key identifier"},
		},
		{
			name: "missing AKI",
			leaf: func(t *testing.T) *x509.Certificate {
				noSKI := *f.inter.cert
				noSKI.SubjectKeyId = nil
				return sign(t, leafTmpl(), &issued{&noSKI, f.inter.key}, p256(t)).cert
			},
			want:    []string{verify.CodeMissingAKI},
			wantMsg: []string{"certificate has no authority key identifier"},
		},
		{
			name:    "CA certificate as leaf",
			leaf:    func(t *testing.T) *x509.Certificate { return f.inter.cert },
			opts:    func(o *verify.Options) { o.Host = "" },
			want:    []string{verify.CodeCAAsLeaf, verify.CodeWrongPurpose},
			wantMsg: []string{"is a CA certificate", "lacks digitalSignature"},
		},
		{
			name: "verifying a CA without a purpose is fine",
			leaf: func(t *testing.T) *x509.Certificate { return f.inter.cert },
			opts: func(o *verify.Options) { o.Purpose, o.Host = "", "" },
		},
		{
			name: "unknown purpose",
			leaf: func(t *testing.T) *x509.Certificate { return sign(t, leafTmpl(), &f.inter, p256(t)).cert },
			opts: func(o *verify.Options) { o.Purpose = "email" },
			want: []string{verify.CodeBadOption},
		},
		{
			name: "several problems at once",
			leaf: func(t *testing.T) *x509.Certificate {
				tmpl := leafTmpl()
				tmpl.NotBefore, tmpl.NotAfter = now.AddDate(-1, 0, 0), now.AddDate(0, 0, -2)
				tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
				return sign(t, tmpl, &f.inter, rsaKey(t, 1024)).cert
			},
			opts: func(o *verify.Options) { o.Host = "foo.example" },
			want: []string{verify.CodeExpired, verify.CodeHostnameMismatch, verify.CodeWrongPurpose, verify.CodeWeakKey},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := f.opts()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			r := verify.Verify(tc.leaf(t), opts)
			if got := codes(r); !slices.Equal(got, tc.want) {
				t.Fatalf("problems = %q, want %q\n%s", got, tc.want, r.Text())
			}
			if r.Valid != (len(tc.want) == 0) {
				t.Fatalf("Valid = %v with problems %q", r.Valid, codes(r))
			}
			text := r.Text()
			for _, m := range tc.wantMsg {
				if !strings.Contains(text, m) {
					t.Errorf("report lacks %q:\n%s", m, text)
				}
			}
		})
	}
}

func TestValidReport(t *testing.T) {
	t.Parallel()
	f := newPKI(t)
	leaf := sign(t, leafTmpl(), &f.inter, p256(t)).cert
	r := verify.Verify(leaf, f.opts())
	want := [][]string{{"CN=app.example.internal", "CN=Example Issuing CA,O=Example Corp", "CN=Example Root CA,O=Example Corp"}}
	if len(r.Chains) != 1 || !slices.Equal(r.Chains[0], want[0]) {
		t.Fatalf("chains = %q, want %q", r.Chains, want)
	}
	if r.Subject != "CN=app.example.internal" || r.Issuer != "CN=Example Issuing CA,O=Example Corp" || !r.NotAfter.Equal(leaf.NotAfter) {
		t.Fatalf("bad report header: %+v", r)
	}
	text := r.Text()
	if !strings.HasSuffix(text, "\nvalid\n") {
		t.Fatalf("text does not end in valid:\n%s", text)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}

func TestNotValidText(t *testing.T) {
	t.Parallel()
	f := newPKI(t)
	tmpl := leafTmpl()
	tmpl.NotAfter = now.Add(-time.Hour)
	r := verify.Verify(sign(t, tmpl, &f.inter, p256(t)).cert, verify.Options{
		Roots: []*x509.Certificate{f.root.cert}, Intermediates: []*x509.Certificate{f.inter.cert},
		Host: "other.example", Now: now,
	})
	lines := strings.Split(strings.TrimSuffix(r.Text(), "\n"), "\n")
	if last := lines[len(lines)-1]; last != "NOT valid: 2 problem(s)" {
		t.Fatalf("last line %q\n%s", last, r.Text())
	}
	var problemLines int
	for _, l := range lines {
		if strings.HasPrefix(l, "problem:") {
			problemLines++
		}
	}
	if problemLines != 2 {
		t.Fatalf("%d problem lines, want 2:\n%s", problemLines, r.Text())
	}
	if !strings.Contains(r.Text(), "(1 hour ago)") {
		t.Fatalf("no relative time:\n%s", r.Text())
	}
}

// Path building fails on a SHA-1 signature; the report must still say why
// in plain words rather than only "unknown authority".
func TestWeakSignature(t *testing.T) {
	t.Parallel()
	root := sign(t, caTmpl("RSA Root"), nil, rsaKey(t, 2048))
	inter := sign(t, caTmpl("RSA Issuing CA"), &root, rsaKey(t, 2048))
	tmpl := leafTmpl()
	tmpl.SignatureAlgorithm = x509.SHA1WithRSA
	leaf := sign(t, tmpl, &inter, p256(t)).cert
	if leaf.SignatureAlgorithm != x509.SHA1WithRSA {
		t.Fatalf("leaf signed with %v", leaf.SignatureAlgorithm)
	}
	r := verify.Verify(leaf, verify.Options{
		Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{inter.cert},
		Purpose: verify.PurposeServer, Host: "app.example.internal", Now: now,
	})
	if got, want := codes(r), []string{verify.CodeUntrusted, verify.CodeWeakSignature}; !slices.Equal(got, want) {
		t.Fatalf("problems = %q, want %q\n%s", got, want, r.Text())
	}
	for _, m := range []string{"certificate is signed with SHA1-RSA (SHA-1)", `by "CN=RSA Issuing CA,O=Example Corp" uses SHA-1, which crypto/x509 refuses to verify`} {
		if !strings.Contains(r.Text(), m) {
			t.Errorf("report lacks %q:\n%s", m, r.Text())
		}
	}
}

func TestWeakIntermediate(t *testing.T) {
	t.Parallel()
	root := sign(t, caTmpl("RSA Root"), nil, rsaKey(t, 2048))
	itmpl := caTmpl("Small Issuing CA")
	itmpl.SignatureAlgorithm = x509.SHA1WithRSA
	inter := sign(t, itmpl, &root, rsaKey(t, 1024))
	leaf := sign(t, leafTmpl(), &inter, p256(t)).cert
	r := verify.Verify(leaf, verify.Options{
		Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{inter.cert}, Now: now,
	})
	if got, want := codes(r), []string{verify.CodeUntrusted, verify.CodeWeakSignature, verify.CodeWeakKey}; !slices.Equal(got, want) {
		t.Fatalf("problems = %q, want %q\n%s", got, want, r.Text())
	}
	if !strings.Contains(r.Text(), `intermediate "CN=Small Issuing CA,O=Example Corp" has a 1024-bit RSA key`) {
		t.Errorf("report does not name the intermediate:\n%s", r.Text())
	}
}

// A SHA-1 self-signature on a root is not a problem: roots are trusted by
// presence, and crypto/x509 never checks their signature.
func TestSHA1RootIsFine(t *testing.T) {
	t.Parallel()
	rtmpl := caTmpl("Old Root")
	rtmpl.SignatureAlgorithm = x509.SHA1WithRSA
	root := sign(t, rtmpl, nil, rsaKey(t, 2048))
	inter := sign(t, caTmpl("Issuing CA"), &root, p256(t))
	leaf := sign(t, leafTmpl(), &inter, p256(t)).cert
	r := verify.Verify(leaf, verify.Options{
		Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{inter.cert}, Now: now,
	})
	if !r.Valid {
		t.Fatalf("not valid:\n%s", r.Text())
	}
}

func TestExpiredIntermediate(t *testing.T) {
	t.Parallel()
	root := sign(t, caTmpl("Root"), nil, p256(t))
	itmpl := caTmpl("Issuing CA")
	itmpl.NotAfter = now.AddDate(0, 0, -3)
	inter := sign(t, itmpl, &root, p256(t))
	leaf := sign(t, leafTmpl(), &inter, p256(t)).cert
	r := verify.Verify(leaf, verify.Options{
		Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{inter.cert}, Now: now,
	})
	if got, want := codes(r), []string{verify.CodeExpired}; !slices.Equal(got, want) {
		t.Fatalf("problems = %q, want %q\n%s", got, want, r.Text())
	}
	if !strings.Contains(r.Text(), `intermediate "CN=Issuing CA,O=Example Corp" expired on`) || len(r.Chains) != 1 {
		t.Fatalf("report:\n%s", r.Text())
	}
}

func TestIntermediateEKURestriction(t *testing.T) {
	t.Parallel()
	root := sign(t, caTmpl("Root"), nil, p256(t))
	itmpl := caTmpl("Client CA")
	itmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	inter := sign(t, itmpl, &root, p256(t))
	leaf := sign(t, leafTmpl(), &inter, p256(t)).cert
	r := verify.Verify(leaf, verify.Options{
		Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{inter.cert},
		Purpose: verify.PurposeServer, Now: now,
	})
	if got, want := codes(r), []string{verify.CodeWrongPurpose}; !slices.Equal(got, want) {
		t.Fatalf("problems = %q, want %q\n%s", got, want, r.Text())
	}
	if !strings.Contains(r.Text(), `intermediate "CN=Client CA,O=Example Corp" may not issue for TLS server authentication`) {
		t.Fatalf("report:\n%s", r.Text())
	}
}

func TestNotACA(t *testing.T) {
	t.Parallel()
	f := newPKI(t)
	notCA := sign(t, leafTmpl(), &f.inter, p256(t))
	tmpl := leafTmpl()
	tmpl.DNSNames = []string{"evil.example.internal"}
	tmpl.Subject.CommonName = "evil.example.internal"
	leaf := sign(t, tmpl, &notCA, p256(t)).cert
	r := verify.Verify(leaf, verify.Options{
		Roots: []*x509.Certificate{f.root.cert}, Intermediates: []*x509.Certificate{f.inter.cert, notCA.cert}, Now: now,
	})
	if got := codes(r); !slices.Contains(got, verify.CodeUntrusted) {
		t.Fatalf("problems = %q\n%s", got, r.Text())
	}
	if !strings.Contains(r.Text(), `"CN=app.example.internal" issued the certificate but is not a CA certificate`) {
		t.Fatalf("report:\n%s", r.Text())
	}
}

func TestNilLeaf(t *testing.T) {
	t.Parallel()
	r := verify.Verify(nil, verify.Options{})
	if r.Valid || len(r.Problems) != 1 || r.Problems[0].Code != verify.CodeBadOption {
		t.Fatalf("%+v", r)
	}
}

func TestCodesTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range verify.Codes() {
		if c.Code == "" || c.Summary == "" || seen[c.Code] {
			t.Fatalf("bad code entry %+v", c)
		}
		seen[c.Code] = true
	}
	for _, c := range []string{verify.CodeExpired, verify.CodeNotYetValid, verify.CodeUntrusted, verify.CodeWrongPurpose,
		verify.CodeHostnameMismatch, verify.CodeWeakSignature, verify.CodeWeakKey, verify.CodeMissingSKI,
		verify.CodeMissingAKI, verify.CodeCAAsLeaf, verify.CodeBadOption} {
		if !seen[c] {
			t.Errorf("code %s missing from Codes()", c)
		}
	}
}
