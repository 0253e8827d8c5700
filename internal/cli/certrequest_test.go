package cli

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// signingAPI is a fake server that signs the CSR it gets with the test
// chain's intermediate, or answers what refuse says.
type signingAPI struct {
	*fakeAPI
	tc *testChain
	mu sync.Mutex
	// got are the sign requests seen; csrs their parsed CSRs.
	got  []apitypes.SignRequest
	csrs []*x509.CertificateRequest
}

func newSigningAPI(t *testing.T, answer func(w http.ResponseWriter, s *signingAPI, csr *x509.CertificateRequest) bool) *signingAPI {
	t.Helper()
	s := &signingAPI{tc: newTestChain(t)}
	s.fakeAPI = newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/certificates/sign": func(w http.ResponseWriter, r *http.Request) {
			var req apitypes.SignRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			csr, err := pki.ParseCSR([]byte(req.CSRPEM))
			if err != nil {
				writeTestJSON(w, 400, apitypes.Error{Error: "bad request", Detail: err.Error()})
				return
			}
			s.mu.Lock()
			s.got, s.csrs = append(s.got, req), append(s.csrs, csr)
			s.mu.Unlock()
			if answer != nil && answer(w, s, csr) {
				return
			}
			writeTestJSON(w, 201, s.sign(t, csr))
		},
	})
	return s
}

// sign issues a leaf for csr's key under the test intermediate.
func (s *signingAPI) sign(t *testing.T, csr *x509.CertificateRequest) apitypes.IssuedCertificate {
	serial, _ := pki.NewSerial(nil)
	tmpl := leafTemplate(csr.Subject.CommonName, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	tmpl.SerialNumber, tmpl.DNSNames, tmpl.IPAddresses, tmpl.EmailAddresses = serial, csr.DNSNames, csr.IPAddresses, csr.EmailAddresses
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.tc.inter.cert, csr.PublicKey, s.tc.inter.key)
	if err != nil {
		t.Error(err)
	}
	return apitypes.IssuedCertificate{
		Certificate: apitypes.Certificate{Serial: pki.SerialHex(serial), Subject: "CN=" + csr.Subject.CommonName,
			NotAfter: tmpl.NotAfter, CertificatePEM: string(pki.CertPEM(der))},
		ChainPEM: string(pki.CertPEM(s.tc.inter.cert.Raw)),
		RootPEM:  string(pki.CertPEM(s.tc.root.cert.Raw)),
	}
}

func (s *signingAPI) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func TestCertRequestWritesKeyAndChain(t *testing.T) {
	t.Parallel()
	s := newSigningAPI(t, nil)
	dir := t.TempDir()
	key, out := filepath.Join(dir, "app.key"), filepath.Join(dir, "app.pem")
	code, stdout, errOut := run(t, s.env, "cert", "request", "app.example.internal", "--san", "www.example.internal,10.0.0.5",
		"--out", out, "--key-out", key)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if stdout != "" || !strings.Contains(errOut, key) || !strings.Contains(errOut, out) {
		t.Errorf("stdout %q, stderr %q", stdout, errOut)
	}
	req, csr := s.got[0], s.csrs[0]
	if req.Profile != defaultRequestProfile || csr.Subject.CommonName != "app.example.internal" ||
		strings.Join(csr.DNSNames, ",") != "app.example.internal,www.example.internal" || len(csr.IPAddresses) != 1 {
		t.Errorf("request %+v, CSR CN %q DNS %v IP %v", req, csr.Subject.CommonName, csr.DNSNames, csr.IPAddresses)
	}
	if strings.Contains(req.CSRPEM, "PRIVATE KEY") {
		t.Fatal("the private key was sent to the server")
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	certs, err := pki.ParseCertificates(mustRead(t, out))
	if err != nil || len(certs) != 2 {
		t.Fatalf("chain file: %d certificates, %v", len(certs), err)
	}
	if !certs[1].Equal(s.tc.inter.cert) {
		t.Error("the chain file's second certificate is not the intermediate")
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o644 {
		t.Errorf("chain mode %v", fi.Mode())
	}
	// The key written is the key certified (and ECDSA P-256 by default).
	priv := keyFile(t, key)
	if alg, _ := pki.AlgorithmOf(priv.Public()); alg != pki.ECDSAP256 || !certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.Public()) {
		t.Errorf("key %s does not match the certificate", alg)
	}

	// A real relying party accepts the chain file with the root alone.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found: install it (apt-get install openssl) to check the chain with openssl verify")
	}
	cmd := exec.Command("openssl", "verify", "-CAfile", s.tc.rootFile, "-untrusted", out, out)
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), ": OK") {
		t.Errorf("openssl verify: %v\n%s", err, b)
	}
}

// keyFile reads a PKCS#8 PEM key file.
func keyFile(t *testing.T, path string) crypto.Signer {
	t.Helper()
	b, _ := pem.Decode(mustRead(t, path))
	if b == nil || b.Type != "PRIVATE KEY" {
		t.Fatalf("%s holds no PKCS#8 PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCertRequestRefusedLeavesNothing(t *testing.T) {
	t.Parallel()
	s := newSigningAPI(t, func(w http.ResponseWriter, _ *signingAPI, csr *x509.CertificateRequest) bool {
		if csr.Subject.CommonName == "evil.example.com" {
			writeTestJSON(w, 400, apitypes.Error{Error: "profile violation", Detail: "rule dns_suffix: evil.example.com is not under example.internal"})
			return true
		}
		return false
	})
	dir := t.TempDir()
	key, out := filepath.Join(dir, "k.key"), filepath.Join(dir, "c.pem")
	code, _, errOut := run(t, s.env, "cert", "request", "evil.example.com", "--out", out, "--key-out", key)
	if code != 1 || !strings.Contains(errOut, "dns_suffix") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refusal left files behind: %v", entries)
	}
}

func TestCertRequestExistingFiles(t *testing.T) {
	t.Parallel()
	s := newSigningAPI(t, nil)
	dir := t.TempDir()
	key, out := filepath.Join(dir, "app.key"), filepath.Join(dir, "app.pem")
	for _, existing := range []string{key, out} {
		writeFile(t, existing, "old\n", 0o644)
		code, _, errOut := run(t, s.env, "cert", "request", "app.example.internal", "--out", out, "--key-out", key)
		if code != 1 || !strings.Contains(errOut, existing+" already exists") || !strings.Contains(errOut, "--force") {
			t.Errorf("existing %s: exit %d, stderr %q", existing, code, errOut)
		}
		if s.requestCount() != 0 {
			t.Fatal("a request was sent although an output file exists")
		}
		if string(mustRead(t, existing)) != "old\n" {
			t.Errorf("%s was changed", existing)
		}
		os.Remove(existing)
	}
	writeFile(t, key, "old\n", 0o644)
	writeFile(t, out, "old\n", 0o644)
	// --force replaces both; the key file becomes 0600 even though the old one was 0644.
	code, _, errOut := run(t, s.env, "cert", "request", "app.example.internal", "--key-type", "ed25519", "--out", out, "--key-out", key, "--force")
	if code != 0 {
		t.Fatalf("--force: exit %d, stderr %q", code, errOut)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced key mode %v", fi.Mode())
	}
	if alg, _ := pki.AlgorithmOf(keyFile(t, key).Public()); alg != pki.Ed25519 {
		t.Errorf("key type %s, want ed25519", alg)
	}
}

func TestCertRequestPending(t *testing.T) {
	t.Parallel()
	expires := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newSigningAPI(t, func(w http.ResponseWriter, _ *signingAPI, _ *x509.CertificateRequest) bool {
		writeTestJSON(w, 202, apitypes.ApprovalRequest{ID: "req_77", Status: "pending", ExpiresAt: expires})
		return true
	})
	dir := t.TempDir()
	key, out := filepath.Join(dir, "pay.key"), filepath.Join(dir, "pay.pem")
	code, stdout, errOut := run(t, s.env, "cert", "request", "pay.example.internal", "--profile", "needs_approval", "--key-type", "rsa-3072",
		"--out", out, "--key-out", key)
	if code != exitPending {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitPending, errOut)
	}
	if stdout != "" || !strings.Contains(errOut, "request fetch req_77 --out "+out) || !strings.Contains(errOut, "Wrote the private key to "+key) {
		t.Errorf("stdout %q, stderr %q", stdout, errOut)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key of a pending request must be kept (0600): %v %v", fi, err)
	}
	if alg, _ := pki.AlgorithmOf(keyFile(t, key).Public()); alg != pki.RSA3072 {
		t.Errorf("key type %s, want rsa-3072", alg)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a certificate file was written for a pending request: %v", err)
	}
	if !s.csrs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(keyFile(t, key).Public()) {
		t.Error("the kept key is not the key of the CSR sent")
	}
	// --json prints the request object.
	code, stdout, _ = run(t, s.env, "cert", "request", "pay.example.internal", "--out", out, "--key-out", filepath.Join(dir, "k2"), "--json")
	if code != exitPending || !strings.Contains(stdout, `"id": "req_77"`) {
		t.Errorf("--json: exit %d, stdout %q", code, stdout)
	}
}

func TestCertRequestWrongKeyFromServer(t *testing.T) {
	t.Parallel()
	s := newSigningAPI(t, func(w http.ResponseWriter, s *signingAPI, _ *x509.CertificateRequest) bool {
		other, _ := x509.ParseCertificateRequest(mustDER(t, testCSR(t)))
		writeTestJSON(w, 201, s.sign(t, other))
		return true
	})
	dir := t.TempDir()
	code, _, errOut := run(t, s.env, "cert", "request", "app.example.internal", "--out", filepath.Join(dir, "c"), "--key-out", filepath.Join(dir, "k"))
	if code != 1 || !strings.Contains(errOut, "not for the key made here") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written for a certificate of another key: %v", entries)
	}
}

func mustDER(t *testing.T, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM")
	}
	return b.Bytes
}

func TestCertRequestUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, c := filepath.Join(dir, "k"), filepath.Join(dir, "c")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"app.example.internal", "--out", c}, "--key-out is required"},
		{[]string{"app.example.internal", "--key-out", k}, "--out is required"},
		{[]string{"app.example.internal", "--out", c, "--key-out", c}, "must differ"},
		{[]string{"app.example.internal", "--out", c, "--key-out", "-"}, "never printed"},
		{[]string{"app.example.internal", "--out", c, "--key-out", k, "--key-type", "dsa-1024"}, "unknown key algorithm"},
		{[]string{"app.example.internal", "--out", c, "--key-out", k, "--san", "ip:not-an-ip"}, "not an IP address"},
		{[]string{"app.example.internal", "--out", filepath.Join(dir, "no", "c"), "--key-out", k}, "does not exist"},
		{[]string{"--out", c, "--key-out", k}, "missing NAME"},
		{[]string{"--sso", "alice@example.com", "--profile", "client_auth", "--out", c, "--key-out", k}, "--profile does not go with --sso"},
		{[]string{"--sso", "alice@example.com", "--days", "1", "--out", c, "--key-out", k}, "--days does not go with --sso"},
		{[]string{"--sso", "alice@example.com", "--san", "bob@example.com", "--out", c, "--key-out", k}, "--san does not go with --sso"},
		{[]string{"--sso", "alice.example.com", "--out", c, "--key-out", k}, "--sso takes your e-mail address"},
		{[]string{"--sso", "alice@example.com", "--out", c, "--key-out", c}, "must differ"},
		{[]string{"--sso", "alice@example.com", "--out", c, "--key-out", k, "--validity", "soon"}, `invalid value "soon" for flag -validity`},
		{[]string{"app.example.internal", "--out", c, "--key-out", k, "--validity", "12h"}, "--validity goes with --sso"},
		{[]string{"--sso"}, "missing NAME"},
	} {
		code, _, errOut := run(t, map[string]string{"CERTWRIGHT_DATA_DIR": filepath.Join(dir, "none")}, append([]string{"cert", "request"}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors left files: %v", entries)
	}
}
