package cli

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

const testToken = "cwt_test_0123456789"

// request is what the fake API saw.
type request struct {
	method, path, query, auth, contentType string
	body                                   []byte
}

// fakeAPI is an httptest TLS server standing in for "certwright serve",
// with a data directory that points at it.
type fakeAPI struct {
	srv     *httptest.Server
	dataDir string
	env     map[string]string

	mu   sync.Mutex
	seen []request
}

func newFakeAPI(t *testing.T, routes map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{dataDir: t.TempDir()}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body})
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeTestJSON(w, 401, apitypes.Error{Error: "unauthorized", Detail: "a valid bearer token is required"})
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	writeFile(t, filepath.Join(f.dataDir, "server.json"), fmt.Sprintf(`{"url": %q}`, f.srv.URL), 0o644)
	writeFile(t, filepath.Join(f.dataDir, "admin.token"), testToken+"\n", 0o600)
	writeFile(t, filepath.Join(f.dataDir, "root.pem"), string(pki.CertPEM(f.srv.Certificate().Raw)), 0o644)
	f.env = map[string]string{"CERTWRIGHT_DATA_DIR": f.dataDir}
	return f
}

func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.seen...)
}

func writeFile(t *testing.T, path, data string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func testCSR(t *testing.T) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "app.example.internal"}, DNSNames: []string{"app.example.internal"},
	}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func issuedAnswer(tc *testChain) apitypes.IssuedCertificate {
	return apitypes.IssuedCertificate{
		Certificate: apitypes.Certificate{
			Serial: "01aabbcc", Subject: "CN=app.example.internal", SANs: []string{"app.example.internal"},
			NotAfter: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Profile: "web_server", CA: "issuing", Status: "valid",
			CertificatePEM: string(tc.validLeafPEM[:strings.Index(string(tc.validLeafPEM), "-----END CERTIFICATE-----")+26]),
		},
		ChainPEM: string(pki.CertPEM(tc.inter.cert.Raw)),
		RootPEM:  string(pki.CertPEM(tc.root.cert.Raw)),
	}
}

func TestListCAsDiscoversTheServer(t *testing.T) {
	t.Parallel()
	na := time.Date(2035, 5, 6, 7, 8, 0, 0, time.UTC)
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/cas": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.CAList{CAs: []apitypes.CA{
				{Name: "root", Kind: "root", Status: "active", KeyAlgorithm: "ecdsa-p384", NotAfter: &na},
				{Name: "issuing", Kind: "intermediate", Status: "active", Parent: "root", KeyAlgorithm: "ecdsa-p256", CertificatesIssued: 3},
			}})
		},
	})
	code, out, errOut := run(t, f.env, "ca", "list")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[1], "2035-05-06 07:08") ||
		!strings.Contains(lines[2], "issuing") || !strings.HasSuffix(lines[2], "3") {
		t.Errorf("table:\n%s", out)
	}
	if strings.Index(lines[0], "STATUS") != strings.Index(lines[2], "active") {
		t.Errorf("columns are not aligned:\n%s", out)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].auth != "Bearer "+testToken {
		t.Errorf("requests %+v", reqs)
	}

	code, out, _ = run(t, f.env, "ca", "list", "--json")
	var cas apitypes.CAList
	if code != 0 || json.Unmarshal([]byte(out), &cas) != nil || len(cas.CAs) != 2 || !strings.Contains(out, "\n  \"cas\": [") {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/certificates/sign": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 400, apitypes.Error{Error: "policy violation", Detail: "profile: RSA key of 1024 bits is below 2048", Rule: "keys"})
		},
		"GET /api/v1/cas/{ca}": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
		},
	})
	csr := filepath.Join(t.TempDir(), "req.pem")
	writeFile(t, csr, string(testCSR(t)), 0o644)
	out := filepath.Join(t.TempDir(), "out.pem")

	code, _, errOut := run(t, f.env, "cert", "sign", "--csr", csr, "--profile", "web_server", "--out", out)
	if code != 1 || errOut != "certwright: policy violation: RSA key of 1024 bits is below 2048 (rule: keys)\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed sign wrote its output file")
	}

	code, _, errOut = run(t, f.env, "ca", "show", "x")
	if code != 1 || errOut != "certwright: bad gateway\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}

	env := map[string]string{"CERTWRIGHT_DATA_DIR": f.dataDir, "CERTWRIGHT_TOKEN": "wrong"}
	code, _, errOut = run(t, env, "ca", "show", "x")
	if code != 1 || !strings.Contains(errOut, "certwright: unauthorized: a valid bearer token is required\nhint: ") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, nil)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close()
	code, _, errOut := run(t, f.env, "ca", "list", "--server", closed)
	if code != 1 || !strings.Contains(errOut, "connection refused") || !strings.Contains(errOut, "hint: the server is not running") {
		t.Errorf("refused: exit %d, stderr %q", code, errOut)
	}

	code, _, errOut = run(t, f.env, "ca", "list", "--ca-file", writeTestRoot(t))
	if code != 1 || !strings.Contains(errOut, "not signed by a trusted root") || !strings.Contains(errOut, "hint: --ca-file") {
		t.Errorf("unknown CA: exit %d, stderr %q", code, errOut)
	}
}

func TestTokenSources(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/cas": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.CAList{CAs: []apitypes.CA{}})
		},
	})
	open := filepath.Join(t.TempDir(), "token")
	writeFile(t, open, "  "+testToken+"\n\n", 0o644)
	code, _, errOut := run(t, f.env, "ca", "list", "--token-file", open)
	if code != 0 || !strings.Contains(errOut, "warning: token file") || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("readable token file: exit %d, stderr %q", code, errOut)
	}
	env := map[string]string{"CERTWRIGHT_SERVER": f.srv.URL, "CERTWRIGHT_TOKEN": testToken,
		"CERTWRIGHT_CA_FILE": filepath.Join(f.dataDir, "root.pem"), "CERTWRIGHT_DATA_DIR": t.TempDir()}
	if code, _, errOut := run(t, env, "ca", "list"); code != 0 || errOut != "No CAs.\n" {
		t.Errorf("environment: exit %d, stderr %q", code, errOut)
	}
}

func TestCertSign(t *testing.T) {
	t.Parallel()
	tc := newTestChain(t)
	var got apitypes.SignRequest
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/certificates/sign": func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewDecoder(r.Body).Decode(&got)
			writeTestJSON(w, 201, issuedAnswer(tc))
		},
	})
	dir := t.TempDir()
	csr := filepath.Join(dir, "req.pem")
	writeFile(t, csr, string(testCSR(t)), 0o644)
	out := filepath.Join(dir, "app.pem")
	code, stdout, errOut := run(t, f.env, "cert", "sign", "--csr", csr, "--profile", "web_server", "--tag", "a,b", "--tag", "c", "--days", "30", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if got.Profile != "web_server" || got.ValidityDays != 30 || strings.Join(got.Tags, " ") != "a b c" || !strings.Contains(got.CSRPEM, "BEGIN CERTIFICATE REQUEST") {
		t.Errorf("request %+v", got)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(tc.validLeafPEM) {
		t.Errorf("output file holds\n%s\nwant the leaf then the intermediate", data)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	if stdout != "" || !strings.Contains(errOut, "01aabbcc") || !strings.Contains(errOut, "CN=app.example.internal") || !strings.Contains(errOut, "2030-01-02T03:04:05Z") {
		t.Errorf("stdout %q, stderr %q", stdout, errOut)
	}

	code, stdout, _ = run(t, f.env, "cert", "sign", "--csr", csr, "--profile", "web_server")
	if code != 0 || stdout != string(tc.validLeafPEM) {
		t.Errorf("to stdout: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(t, f.env, "cert", "sign", "--csr", csr, "--profile", "web_server", "--json")
	if code != 0 || !strings.Contains(stdout, `"serial": "01aabbcc"`) {
		t.Errorf("--json: exit %d\n%s", code, stdout)
	}
	writeFile(t, csr, "-----BEGIN CERTIFICATE REQUEST-----\nbm90\n-----END CERTIFICATE REQUEST-----\n", 0o644)
	n := len(f.requests())
	if code, _, errOut := run(t, f.env, "cert", "sign", "--csr", csr, "--profile", "web_server"); code != 1 || !strings.Contains(errOut, "CSR") {
		t.Errorf("bad CSR: exit %d, stderr %q", code, errOut)
	}
	if len(f.requests()) != n {
		t.Error("a bad CSR was sent to the server")
	}
}

func TestCertIssueKeyFiles(t *testing.T) {
	t.Parallel()
	tc := newTestChain(t)
	var reqs []apitypes.IssueRequest
	var mu sync.Mutex
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/certificates/issue": func(w http.ResponseWriter, r *http.Request) {
			var req apitypes.IssueRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			mu.Lock()
			reqs = append(reqs, req)
			mu.Unlock()
			ans := issuedAnswer(tc)
			if req.KeyFormat == "pkcs12" {
				ans.PKCS12 = []byte{0x30, 0x82, 0x00, 0xff, 'p', '1', '2'}
			} else {
				ans.PrivateKeyPEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
			}
			writeTestJSON(w, 201, ans)
		},
	})
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "app.key"), filepath.Join(dir, "app.pem")
	args := []string{"cert", "issue", "--profile", "web_server", "--cn", "app.example.internal", "--dns", "app.example.internal,www.example.internal",
		"--ip", "10.0.0.1", "--key", "p384", "--out", cert, "--key-out", key}
	code, stdout, errOut := run(t, f.env, args...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if len(reqs) != 1 || reqs[0].KeyAlgorithm != "ecdsa-p384" || len(reqs[0].DNSNames) != 2 || reqs[0].IPAddresses[0] != "10.0.0.1" || reqs[0].KeyFormat != "" {
		t.Errorf("requests %+v", reqs)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
	if data, _ := os.ReadFile(cert); string(data) != string(tc.validLeafPEM) {
		t.Errorf("certificate file:\n%s", data)
	}
	if stdout != "" || !strings.Contains(errOut, key) || !strings.Contains(errOut, cert) {
		t.Errorf("stdout %q, stderr %q", stdout, errOut)
	}

	// A second run must not replace the key, and must fail before issuing.
	code, _, errOut = run(t, f.env, args...)
	if code != 1 || !strings.Contains(errOut, "already exists") || len(reqs) != 1 {
		t.Errorf("existing key: exit %d, stderr %q, %d requests", code, errOut, len(reqs))
	}

	// PKCS#12: raw bytes, mode 0600, the password from a file; JSON without the key.
	p12, pw := filepath.Join(dir, "app.p12"), filepath.Join(dir, "pw")
	writeFile(t, pw, "correct horse\n", 0o600)
	code, stdout, errOut = run(t, f.env, "cert", "issue", "--profile", "web_server", "--cn", "app", "--p12-out", p12, "--p12-password-file", pw, "--json")
	if code != 0 {
		t.Fatalf("p12: exit %d, stderr %q", code, errOut)
	}
	if last := reqs[len(reqs)-1]; last.KeyFormat != "pkcs12" || last.Password != "correct horse" {
		t.Errorf("p12 request %+v", last)
	}
	if data, _ := os.ReadFile(p12); string(data) != "\x30\x82\x00\xffp12" {
		t.Errorf("p12 file %q", data)
	}
	if strings.Contains(stdout, "pkcs12") || strings.Contains(stdout, "PRIVATE KEY") || !strings.Contains(stdout, "01aabbcc") {
		t.Errorf("--json output:\n%s", stdout)
	}
	writeFile(t, pw, "short\n", 0o600)
	if code, _, errOut := run(t, f.env, "cert", "issue", "--profile", "p", "--cn", "x", "--p12-out", p12+"2", "--p12-password-file", pw); code != 1 || !strings.Contains(errOut, "8 characters") {
		t.Errorf("short password: exit %d, stderr %q", code, errOut)
	}
}

func TestCertListPages(t *testing.T) {
	t.Parallel()
	const total = 5
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/certificates": func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			start := 0
			if a := q.Get("after"); a != "" {
				start, _ = strconv.Atoi(a)
			}
			size := 2 // the server's pages are smaller than asked for
			if l, _ := strconv.Atoi(q.Get("limit")); l > 0 && l < size {
				size = l
			}
			var out apitypes.CertificateList
			for i := start + 1; i <= total && len(out.Certificates) < size; i++ {
				out.Certificates = append(out.Certificates, apitypes.Certificate{
					Serial: strconv.Itoa(i), SANs: []string{fmt.Sprintf("host%d.example", i)}, Profile: "web_server",
					CA: "issuing", Status: "valid", NotAfter: time.Date(2030, 1, i, 0, 0, 0, 0, time.UTC),
				})
			}
			if n := len(out.Certificates); n == size && start+n < total {
				out.Next = out.Certificates[n-1].Serial
			}
			writeTestJSON(w, 200, out)
		},
	})
	// --all follows every page, and keeps revoked and renewed certificates.
	code, out, errOut := run(t, f.env, "cert", "list", "--expiring-within", "2w", "--profile", "web_server", "--all")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != total+1 || !strings.Contains(lines[1], "host1.example") ||
		!strings.Contains(lines[total], "2030-01-05 00:00") {
		t.Errorf("table:\n%s", out)
	}
	reqs := f.requests()
	if len(reqs) != 3 || reqs[0].query != "expiring_within=14d&limit=1000&profile=web_server&sort=expiry" || !strings.Contains(reqs[2].query, "after=4") {
		for _, r := range reqs {
			t.Logf("query %s", r.query)
		}
		t.Errorf("%d requests", len(reqs))
	}

	// Without --all: a page of 50, revoked and renewed ones left out of
	// --expiring-within.
	before := len(f.requests())
	code, out, errOut = run(t, f.env, "cert", "list", "--expiring-within", "2w", "--sort", "serial")
	reqs = f.requests()
	if first := reqs[before].query; first != "current=true&expiring_within=14d&limit=50&sort=serial" {
		t.Errorf("default page query %s", first)
	}
	if code != 0 || strings.Count(out, "host") != total || errOut != "" {
		t.Errorf("default page: exit %d, stderr %q\n%s", code, errOut, out)
	}
	// A full page says how to go on.
	code, out, errOut = run(t, f.env, "cert", "list", "--limit", "2")
	if code != 0 || strings.Count(out, "host") != 2 || !strings.Contains(errOut, "add --after 2 for the next page, or --all for every page") {
		t.Errorf("--limit 2: exit %d, stderr %q\n%s", code, errOut, out)
	}

	code, out, errOut = run(t, f.env, "cert", "list", "--limit", "1", "--json")
	var list apitypes.CertificateList
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Certificates) != 1 || list.Next != "1" {
		t.Errorf("--limit 1 --json: exit %d, stderr %q\n%s", code, errOut, out)
	}

	for _, args := range [][]string{
		{"--limit", "0"}, {"--all", "--limit", "5"}, {"--sort", "expiry_date"}, {"--status", "expird"},
	} {
		code, _, errOut := run(t, f.env, append([]string{"cert", "list"}, args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if _, _, errOut := run(t, f.env, "cert", "list", "--status", "expird"); !strings.Contains(errOut, `did you mean "expired"? valid: valid, revoked, expired`) {
		t.Errorf("--status typo: stderr %q", errOut)
	}
}

// TestCertListColumns: the days left, the first SAN, a shortened imported
// fingerprint, and the status words for expired and renewed certificates.
func TestCertListColumns(t *testing.T) {
	t.Parallel()
	now := time.Now()
	fp := strings.Repeat("ab", 32)
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/certificates": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.CertificateList{Certificates: []apitypes.Certificate{
				{Serial: "0a", SANs: []string{"old.example", "alt.example"}, Status: "valid", NotAfter: now.Add(-36 * time.Hour), Source: "issued"},
				{Serial: "0b", SANs: []string{"renewed.example"}, Status: "valid", NotAfter: now.Add(10*24*time.Hour + time.Hour), RenewedBy: "0c", Source: "issued"},
				{Serial: fp, Subject: "CN=legacy", Status: "revoked", NotAfter: now.Add(400*24*time.Hour + time.Hour), Source: "imported"},
			}})
		},
	})
	code, out, errOut := run(t, f.env, "cert", "list")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^SERIAL +NAME +PROFILE +CA +NOT AFTER +DAYS LEFT +STATUS +REQUESTER$`),
		regexp.MustCompile(`^0a +old\.example +- +- +\S+ \S+ +-2 +expired +-$`),
		regexp.MustCompile(`^0b +renewed\.example .* 10 +valid,renewed +-$`),
		regexp.MustCompile(`^abababababababab… +CN=legacy .* 400 +revoked +-$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i, lines[i], re)
		}
	}
	if strings.Contains(out, "alt.example") {
		t.Errorf("only the first SAN is shown:\n%s", out)
	}
}

func TestCreateRootAndProfileRequests(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/cas": func(w http.ResponseWriter, r *http.Request) {
			var req apitypes.CreateCARequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			writeTestJSON(w, 201, apitypes.CA{Name: req.Name, Kind: req.Type, Status: "active", PathLen: req.PathLen, KeyProvider: req.KeyProvider})
		},
		"POST /api/v1/profiles": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 201, map[string]any{"name": "corp_web"})
		},
		"DELETE /api/v1/profiles/{name}": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
	})
	code, out, errOut := run(t, f.env, "ca", "create-root", "--name", "r", "--cn", "Root", "--path-len", "-1", "--key", "rsa4096")
	if code != 0 || !strings.Contains(out, "Path length:") || !strings.Contains(out, "unlimited") {
		t.Errorf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	code, _, _ = run(t, f.env, "ca", "create-root", "--name", "r2", "--cn", "Root 2")
	reqs := f.requests()
	if code != 0 || !strings.Contains(string(reqs[0].body), `"path_len":-1`) || !strings.Contains(string(reqs[0].body), `"key_algorithm":"rsa-4096"`) ||
		strings.Contains(string(reqs[1].body), "path_len") || !strings.Contains(string(reqs[1].body), `"type":"root"`) ||
		strings.Contains(string(reqs[1].body), "key_provider") {
		t.Errorf("bodies %s / %s", reqs[0].body, reqs[1].body)
	}
	for _, cmd := range [][]string{
		{"ca", "create-root", "--name", "r3", "--cn", "Root 3"},
		{"ca", "create-intermediate", "--name", "i3", "--cn", "Int 3", "--parent", "r3"},
	} {
		code, out, errOut = run(t, f.env, append(cmd, "--key-provider", "pkcs11")...)
		reqs = f.requests()
		if body := string(reqs[len(reqs)-1].body); code != 0 || !strings.Contains(body, `"key_provider":"pkcs11"`) || !strings.Contains(out, "Key provider:") || !strings.Contains(out, "pkcs11") {
			t.Errorf("%s: exit %d, stderr %q, body %s\n%s", cmd[1], code, errOut, body, out)
		}
	}

	def := "name: corp_web\nkeys: [{algorithm: ECDSA, min_bits: 256}]\n"
	file := filepath.Join(t.TempDir(), "corp.yaml")
	writeFile(t, file, def, 0o644)
	code, out, errOut = run(t, f.env, "profile", "create", "--file", file)
	reqs = f.requests()
	last := reqs[len(reqs)-1]
	if code != 0 || out != "Created profile corp_web.\n" || last.contentType != "application/yaml" || string(last.body) != def {
		t.Errorf("exit %d, stderr %q, stdout %q, request %+v", code, errOut, out, last)
	}
	code, out, _ = run(t, f.env, "profile", "delete", "corp_web")
	if code != 0 || out != "Deleted profile corp_web.\n" {
		t.Errorf("delete: exit %d, %q", code, out)
	}
}

// TestRefusalHintsAndJSONErrors: a 403's hint follows the rule the server
// names, and under --json the error is one JSON object on stderr with the
// status, the rule and the exit code.
func TestRefusalHintsAndJSONErrors(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/certificates/{serial}": func(w http.ResponseWriter, r *http.Request) {
			rule := map[string]string{"01": "scope", "02": "two_person_rule", "03": "machine_only_key_handout", "04": "role", "05": ""}[r.PathValue("serial")]
			writeTestJSON(w, 403, apitypes.Error{Error: "forbidden", Detail: "forbidden: refused", Rule: rule})
		},
	})
	for serial, want := range map[string]string{
		"01": "its scope (CAs, profiles, names)", "02": "two-person rule", "03": "machine principals only",
		"04": "certwright role bind", "05": "refused this for the reason above",
	} {
		code, _, errOut := run(t, f.env, "cert", "show", serial)
		if code != 1 || !strings.Contains(errOut, "hint: HTTP 403: ") || !strings.Contains(errOut, want) {
			t.Errorf("cert show %s: exit %d, stderr %q; want a hint with %q", serial, code, errOut, want)
		}
	}

	code, out, errOut := run(t, f.env, "cert", "show", "01", "--json")
	var e struct{ Error errorJSON }
	if err := json.Unmarshal([]byte(errOut), &e); err != nil || code != 1 || out != "" {
		t.Fatalf("--json: exit %d, stdout %q, stderr %q (%v)", code, out, errOut, err)
	}
	if e.Error.Status != 403 || e.Error.Rule != "scope" || e.Error.Exit != 1 || !strings.Contains(e.Error.Message, "refused") ||
		!strings.Contains(e.Error.Hint, "scope") {
		t.Errorf("--json error %+v", e.Error)
	}
}

// TestUnknownNamesSuggest: a 404 for a profile, CA or job named on the
// command line suggests the closest one the caller can list, and lists
// them; a caller that may not list them learns nothing more.
func TestUnknownNamesSuggest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, 404, apitypes.Error{Error: "not found", Detail: "not found: " + r.PathValue("name")})
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/profiles/{name}":  notFound,
		"GET /api/v1/cas/{name}":       notFound,
		"POST /api/v1/jobs/{name}/run": notFound,
		"POST /api/v1/certificates/sign": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 404, apitypes.Error{Error: "not found", Detail: `unknown profile "web_servr"`})
		},
		"GET /api/v1/profiles": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, map[string]any{"profiles": []map[string]any{{"name": "web_server"}, {"name": "internal_service"}}})
		},
		"GET /api/v1/cas": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 403, apitypes.Error{Error: "forbidden", Rule: "role"})
		},
		"GET /api/v1/jobs": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.JobList{Jobs: []apitypes.Job{{Name: "expiry_check"}, {Name: "renewal"}}})
		},
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"profile", "show", "web_servr"}, `hint: there is no profile "web_servr": did you mean "web_server"? valid: web_server, internal_service`},
		{[]string{"jobs", "run", "expiry-check"}, `hint: there is no job "expiry-check": did you mean "expiry_check"? valid: expiry_check, renewal`},
		{[]string{"cert", "request", "x.example.internal", "--profile", "web_servr", "--out", filepath.Join(dir, "x.pem"), "--key-out", filepath.Join(dir, "x.key")},
			`hint: there is no profile "web_servr": did you mean "web_server"?`},
	} {
		code, _, errOut := run(t, f.env, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cert request refused for its profile left a key file behind: %v", err)
	}
	// The caller may not list CAs: the 404 stays as it is.
	code, _, errOut := run(t, f.env, "ca", "show", "isuing")
	if code != 1 || strings.Contains(errOut, "hint:") || strings.Contains(errOut, "valid") {
		t.Errorf("ca show without ca list: exit %d, stderr %q", code, errOut)
	}
}

// TestExpiredTokenSaysSo: a 401 for an expired token says "expired" and
// when, with a hint to get a new token, not the generic "check the token".
func TestExpiredTokenSaysSo(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/cas": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 401, apitypes.Error{Error: "token expired",
				Detail: "token 0123456789abcdef expired at 2026-01-02T03:04:05Z; a new token is needed", Rule: apitypes.RuleTokenExpired})
		},
	})
	code, _, errOut := run(t, f.env, "ca", "list")
	if code == 0 || !strings.Contains(errOut, "expired at 2026-01-02T03:04:05Z") ||
		!strings.Contains(errOut, "hint: HTTP 401: the token has expired; get a new one") || strings.Contains(errOut, "check --token-file") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

// TestUnavailableSaysRetry: a 503 (the server's database is down) says to
// retry, not that the request was wrong.
func TestUnavailableSaysRetry(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/cas": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "5")
			writeTestJSON(w, 503, apitypes.Error{Error: "service unavailable",
				Detail: "the server's database did not answer in time or cannot be written; retry later"})
		},
	})
	code, _, errOut := run(t, f.env, "ca", "list")
	if code == 0 || !strings.Contains(errOut, "service unavailable") || !strings.Contains(errOut, "hint: HTTP 503: the server is up but its database did not answer; retry shortly") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}
