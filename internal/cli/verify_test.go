package cli

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revcheck/revchecktest"
)

// testCA is a certificate with its key, for building chains in tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issueCert signs tmpl with parent (nil: self-signed) and returns it.
func issueCert(t *testing.T, tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *testCA) *testCA {
	t.Helper()
	var p *revchecktest.CA
	if parent != nil {
		p = &revchecktest.CA{Cert: parent.cert, Key: parent.key}
	}
	return &testCA{cert: revchecktest.Issue(t, tmpl, key, p).Cert, key: key}
}

func caTemplate(cn string, pathLen int) *x509.Certificate {
	return revchecktest.CATemplate(cn, pathLen)
}

func leafTemplate(host string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
}

// testChain is root -> intermediate, written to files in a temp dir.
type testChain struct {
	dir          string
	root, inter  *testCA
	rootFile     string
	interFile    string
	validLeaf    string // leaf then intermediate
	expiredLeaf  string // leaf only
	validLeafPEM []byte
}

func newTestChain(t *testing.T) *testChain {
	t.Helper()
	dir := t.TempDir()
	root := issueCert(t, caTemplate("Test Root CA", 1), newKey(t), nil)
	inter := issueCert(t, caTemplate("Test Issuing CA", 0), newKey(t), root)
	now := time.Now()
	valid := issueCert(t, leafTemplate("app.example.internal", now.Add(-time.Hour), now.Add(30*24*time.Hour)), newKey(t), inter)
	expired := issueCert(t, leafTemplate("old.example.internal", now.Add(-60*24*time.Hour), now.Add(-24*time.Hour)), newKey(t), inter)
	tc := &testChain{
		dir: dir, root: root, inter: inter,
		rootFile:     filepath.Join(dir, "root.pem"),
		interFile:    filepath.Join(dir, "inter.pem"),
		validLeaf:    filepath.Join(dir, "app.pem"),
		expiredLeaf:  filepath.Join(dir, "old.pem"),
		validLeafPEM: pki.CertPEM(valid.cert.Raw, inter.cert.Raw),
	}
	write := func(path string, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(tc.rootFile, pki.CertPEM(root.cert.Raw))
	write(tc.interFile, pki.CertPEM(inter.cert.Raw))
	write(tc.validLeaf, tc.validLeafPEM)
	write(tc.expiredLeaf, pki.CertPEM(expired.cert.Raw))
	return tc
}

// writeTestRoot writes a self-signed CA certificate and returns its path.
func writeTestRoot(t *testing.T) string {
	t.Helper()
	return newTestChain(t).rootFile
}

func TestVerify(t *testing.T) {
	t.Parallel()
	tc := newTestChain(t)
	noData := filepath.Join(tc.dir, "no-data-dir")
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		want     []string // in stdout
		wantErr  []string // in stderr
	}{
		{
			name: "valid chain in the certificate file",
			args: []string{"verify", tc.validLeaf, "--roots", tc.rootFile, "--purpose", "server", "--host", "app.example.internal"},
			want: []string{"valid", "Test Issuing CA", "roots:     " + tc.rootFile},
		},
		{
			name: "flags before the certificate",
			args: []string{"verify", "--purpose", "server", "--roots", tc.rootFile, tc.validLeaf},
			want: []string{"valid"},
		},
		{
			name: "roots from the data directory",
			args: []string{"verify", tc.validLeaf, "--data-dir", tc.dir},
			want: []string{"valid", filepath.Join(tc.dir, "root.pem")},
		},
		{
			name: "intermediate from --chain",
			env:  map[string]string{"CERTWRIGHT_DATA_DIR": tc.dir},
			args: []string{"verify", tc.expiredLeaf, "--chain", tc.interFile},
			// Expired, but the chain itself is sound.
			wantCode: 1, want: []string{"[expired]", "NOT valid"}, wantErr: []string{"certwright: verify " + tc.expiredLeaf, "expired"},
		},
		{
			name:     "expired",
			args:     []string{"verify", tc.expiredLeaf, "--chain", tc.interFile, "--roots", tc.rootFile, "--purpose", "server"},
			wantCode: 1, want: []string{"expired", "NOT valid: 1 problem(s)"},
		},
		{
			name:     "hostname mismatch",
			args:     []string{"verify", tc.validLeaf, "--roots", tc.rootFile, "--host", "other.example.internal"},
			wantCode: 1, want: []string{"hostname_mismatch", "other.example.internal"}, wantErr: []string{"other.example.internal"},
		},
		{
			name:     "wrong purpose",
			args:     []string{"verify", tc.validLeaf, "--roots", tc.rootFile, "--purpose", "client"},
			wantCode: 1, want: []string{"wrong_purpose"},
		},
		{
			name:     "untrusted without the intermediate",
			args:     []string{"verify", tc.expiredLeaf, "--roots", tc.rootFile, "--data-dir", noData},
			wantCode: 1, want: []string{"untrusted"},
		},
		{
			name:     "not a certificate",
			args:     []string{"verify", tc.dir + "/nope.pem", "--roots", tc.rootFile},
			wantCode: 1, wantErr: []string{"nope.pem"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := tt.env
			if env == nil {
				env = map[string]string{"CERTWRIGHT_DATA_DIR": noData}
			}
			code, out, errOut := run(t, env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tt.wantCode == 0 && errOut != "" {
				t.Errorf("stderr %q, want nothing", errOut)
			}
		})
	}
}

func TestVerifyJSONAndStdin(t *testing.T) {
	t.Parallel()
	tc := newTestChain(t)
	var out, errb strings.Builder
	code := Main(t.Context(), []string{"verify", "-", "--roots", tc.rootFile, "--json", "--host", "nope.example"},
		strings.NewReader(string(tc.validLeafPEM)), &out, &errb, func(string) string { return "" })
	if code != 1 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	var rep struct {
		Valid    bool
		Problems []struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if rep.Valid || len(rep.Problems) != 1 || rep.Problems[0].Code != "hostname_mismatch" {
		t.Errorf("report %+v, want one hostname_mismatch", rep)
	}
}

// TestVerifyOfflineWithoutCheckRevocation: without --check-revocation the
// command stays offline, whatever URLs the certificate names, and its JSON
// has no revocation member.
func TestVerifyOfflineWithoutCheckRevocation(t *testing.T) {
	t.Parallel()
	f := newRevFiles(t, revchecktest.Options{})
	var hits atomic.Int32
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	})
	f.CRL, f.OCSP = count, count
	f.Start()
	code, out, errOut := run(t, nil, "verify", f.leafFile, "--roots", f.rootFile, "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if _, ok := rep["revocation"]; ok || rep["valid"] != true {
		t.Errorf("report %v, want valid and no revocation member", rep)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests to the CRL/OCSP server, want none", n)
	}
}

func TestVerifyHelpListsCheckRevocation(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, nil, "verify", "--help")
	if code != 0 || !strings.Contains(out, "--check-revocation") {
		t.Errorf("exit %d, help lacks --check-revocation:\n%s", code, out)
	}
}
