package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clientctx"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// personAPI is a fake server that answers person-certificate requests:
// it signs the CSR with the test chain's intermediate, or answers what
// refuse says.
type personAPI struct {
	*fakeAPI
	signer *signingAPI
	mu     sync.Mutex
	got    []apitypes.PersonCertificateRequest
	bodies []map[string]any
	csrs   []*x509.CertificateRequest
}

func newPersonAPI(t *testing.T, refuse func(w http.ResponseWriter) bool) *personAPI {
	t.Helper()
	s := &personAPI{signer: &signingAPI{tc: newTestChain(t)}}
	s.fakeAPI = newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/certificates/person": func(w http.ResponseWriter, r *http.Request) {
			var req apitypes.PersonCertificateRequest
			var body map[string]any
			dec := json.NewDecoder(r.Body)
			if err := dec.Decode(&body); err != nil {
				writeTestJSON(w, 400, apitypes.Error{Error: "bad request", Detail: err.Error()})
				return
			}
			b, _ := json.Marshal(body)
			_ = json.Unmarshal(b, &req)
			csr, err := pki.ParseCSR([]byte(req.CSRPEM))
			if err != nil {
				writeTestJSON(w, 400, apitypes.Error{Error: "bad request", Detail: err.Error()})
				return
			}
			s.mu.Lock()
			s.got, s.bodies, s.csrs = append(s.got, req), append(s.bodies, body), append(s.csrs, csr)
			s.mu.Unlock()
			if refuse != nil && refuse(w) {
				return
			}
			writeTestJSON(w, 201, s.signer.sign(t, csr))
		},
	})
	return s
}

// TestCertRequestSSO: cert request --sso makes a P-256 key here, sends
// only a CSR naming the address (as common name and e-mail SAN, nothing
// else) to the person route, writes the key 0600 and the certificate with
// its chain, and says where and until when; --validity goes to the server
// as a duration.
func TestCertRequestSSO(t *testing.T) {
	t.Parallel()
	s := newPersonAPI(t, nil)
	dir := t.TempDir()
	key, out := filepath.Join(dir, "alice.key"), filepath.Join(dir, "alice.pem")
	code, stdout, errOut := run(t, s.env, "cert", "request", "--sso", "alice@example.com", "--out", out, "--key-out", key)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if stdout != "" || !strings.Contains(errOut, key+" (key, 0600)") || !strings.Contains(errOut, out) || !strings.Contains(errOut, "valid until") ||
		!strings.Contains(errOut, "--client-cert "+out+" --client-key "+key) {
		t.Errorf("stdout %q, stderr %q", stdout, errOut)
	}
	if len(s.got) != 1 {
		t.Fatalf("%d requests to the person route, want 1", len(s.got))
	}
	body, csr := s.bodies[0], s.csrs[0]
	if len(body) != 1 || body["csr_pem"] == nil {
		t.Errorf("request body %v: want the CSR alone", body)
	}
	if strings.Contains(s.got[0].CSRPEM, "PRIVATE KEY") {
		t.Fatal("the private key was sent to the server")
	}
	if csr.Subject.CommonName != "alice@example.com" || !slices.Equal(csr.EmailAddresses, []string{"alice@example.com"}) ||
		len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.URIs) != 0 {
		t.Errorf("CSR: CN %q, e-mail %v, DNS %v, IP %v, URI %v", csr.Subject.CommonName, csr.EmailAddresses, csr.DNSNames, csr.IPAddresses, csr.URIs)
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	priv := keyFile(t, key)
	certs, err := pki.ParseCertificates(mustRead(t, out))
	if err != nil || len(certs) != 2 {
		t.Fatalf("certificate file: %d certificates, %v", len(certs), err)
	}
	if alg, _ := pki.AlgorithmOf(priv.Public()); alg != pki.ECDSAP256 || !certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.Public()) {
		t.Errorf("key %s does not match the certificate", alg)
	}

	// --validity, and the files exist now: refused without --force.
	code, _, errOut = run(t, s.env, "cert", "request", "--sso", "alice@example.com", "--out", out, "--key-out", key, "--validity", "2h")
	if code != 1 || !strings.Contains(errOut, "already exists") || len(s.got) != 1 {
		t.Errorf("existing files: exit %d, stderr %q, %d requests", code, errOut, len(s.got))
	}
	code, _, errOut = run(t, s.env, "cert", "request", "--sso", "alice@example.com", "--out", out, "--key-out", key, "--validity", "2h", "--force")
	if code != 0 || len(s.got) != 2 || s.got[1].Validity != "2h0m0s" {
		t.Errorf("--validity 2h --force: exit %d, stderr %q, requests %+v", code, errOut, s.got)
	}
}

// TestCertRequestSSORefused: the server's refusals come with the fix —
// not signed in through the provider (run certwright login --sso), an
// address that is not yours — and leave no file behind.
func TestCertRequestSSORefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   apitypes.Error
		want   string
	}{
		{"a long-lived token", 403, apitypes.Error{Error: "forbidden", Detail: "forbidden: requester alice did not sign in through an identity provider", Rule: apitypes.RuleSSOSignIn},
			"hint: run certwright login --sso first"},
		{"someone else's address", 400, apitypes.Error{Error: "policy violation", Detail: "profile person: rule names.email: bob@example.com is not an e-mail address of requester alice", Rule: "names.email"},
			"hint: bob@example.com must be the address your identity provider verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newPersonAPI(t, func(w http.ResponseWriter) bool {
				writeTestJSON(w, tc.status, tc.body)
				return true
			})
			dir := t.TempDir()
			code, _, errOut := run(t, s.env, "cert", "request", "--sso", "bob@example.com", "--out", filepath.Join(dir, "c"), "--key-out", filepath.Join(dir, "k"))
			if code != 1 || !strings.Contains(errOut, tc.body.Detail) || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %q", code, errOut, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refusal left files behind: %v", entries)
			}
		})
	}
}

// TestPersonOutputs: without --out and --key-out, the files are named
// after the address in the current directory.
func TestPersonOutputs(t *testing.T) {
	t.Parallel()
	if out, key := personOutputs("alice@example.com", "", ""); out != "alice@example.com.pem" || key != "alice@example.com.key" {
		t.Errorf("defaults %q, %q", out, key)
	}
	if out, key := personOutputs("alice@example.com", "a.pem", ""); out != "a.pem" || key != "alice@example.com.key" {
		t.Errorf("--out only: %q, %q", out, key)
	}
}

// TestCertRequestSSOEndToEnd is the acceptance of issue 17's person
// certificates as a user types it, against a real server and provider:
// login --sso (device flow, alice approving), then cert request --sso
// alice@example.test writes a 12-hour client certificate and its 0600 key;
// with them alone (no token) whoami is alice over mTLS. Asking for
// bob@example.test is refused with the fix and writes nothing.
func TestCertRequestSSOEndToEnd(t *testing.T) {
	t.Parallel()
	_, url, fp := ssoServer(t)
	dir := t.TempDir()
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "home")}
	approver := &deviceApprover{t: t, done: make(chan error, 1)}
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"login", "--sso", "--device", "--server", url, "--fingerprint", fp.String()},
		strings.NewReader(""), &out, approver, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("login --sso: %d\n%s\n%s", code, out.String(), approver.String())
	}
	if err := <-approver.done; err != nil {
		t.Fatal(err)
	}

	key, cert := filepath.Join(dir, "alice.key"), filepath.Join(dir, "alice.pem")
	code, _, errOut := runIn(t, env, "", "cert", "request", "--sso", "alice@example.test", "--out", cert, "--key-out", key)
	if code != 0 || !strings.Contains(errOut, "valid until") {
		t.Fatalf("cert request --sso: %d %s", code, errOut)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	certs, err := pki.ParseCertificates(mustRead(t, cert))
	if err != nil {
		t.Fatal(err)
	}
	leaf := certs[0]
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d != 12*time.Hour || !slices.Equal(leaf.EmailAddresses, []string{"alice@example.test"}) ||
		!slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("certificate: %s, e-mail %v, EKU %v", d, leaf.EmailAddresses, leaf.ExtKeyUsage)
	}
	// The certificate alone, from a shell with no context and no token
	// (trusting the root login pinned).
	bare := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "elsewhere"), "CERTWRIGHT_SERVER": url,
		"CERTWRIGHT_CA_FILE": filepath.Join(env["XDG_CONFIG_HOME"], "certwright", "contexts", defaultContext, clientctx.RootFile)}
	code, whoOut, errOut := runIn(t, bare, "", "whoami", "--client-cert", cert, "--client-key", key, "--json")
	var who struct{ Name, Auth string }
	if code != 0 || json.Unmarshal([]byte(whoOut), &who) != nil || who.Name != "alice" || who.Auth != "mtls:"+pki.SerialHex(leaf.SerialNumber) {
		t.Errorf("whoami with the person certificate: %d %s %s", code, whoOut, errOut)
	}

	bobKey, bobCert := filepath.Join(dir, "bob.key"), filepath.Join(dir, "bob.pem")
	code, _, errOut = runIn(t, env, "", "cert", "request", "--sso", "bob@example.test", "--out", bobCert, "--key-out", bobKey)
	if code != 1 || !strings.Contains(errOut, "bob@example.test is not an e-mail address of requester alice") ||
		!strings.Contains(errOut, "hint: bob@example.test must be the address your identity provider verified") {
		t.Errorf("asking for bob's address: %d %s", code, errOut)
	}
	for _, f := range []string{bobKey, bobCert} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s written for a refused request: %v", f, err)
		}
	}
}
