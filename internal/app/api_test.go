//go:debug rsa1024min=0

package app

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/web/api"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tAPIRoutes returns the route table of the API handler this instance serves.
func tAPIRoutes(t *testing.T, a *App) []api.Route {
	t.Helper()
	h, err := a.API()
	if err != nil {
		t.Fatal(err)
	}
	return h.Routes()
}

// tMinRoutes is the size of the route table when this test was written; a
// smaller table means routes went missing from Routes().
const tMinRoutes = 53

// tPath fills a route pattern's wildcards; it fails for a wildcard it does
// not know, so a new one gets a value here before its route is covered.
func tPath(t *testing.T, pattern string, values map[string]string) string {
	t.Helper()
	for k, v := range values {
		pattern = strings.ReplaceAll(pattern, "{"+k+"}", v)
	}
	if strings.ContainsAny(pattern, "{}") {
		t.Fatalf("route %s has a wildcard this test has no value for: add one", pattern)
	}
	return pattern
}

// TestEveryRouteRequiresAuthentication walks every route of the API table
// without a token, with malformed ones and with well-formed wrong ones: each
// answers 401 with a JSON error and a WWW-Authenticate challenge, and
// changes nothing.
func TestEveryRouteRequiresAuthentication(t *testing.T) {
	t.Parallel()
	// The walk sends hundreds of refused requests from one address in a
	// second: lift the per-source limit (TestUnauthenticatedFloodIsBounded
	// tests it) so every one is answered 401.
	cfg := tConfig(t, "")
	cfg.Audit.UnauthenticatedBurst = 1_000_000
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	serverSerial, err := in.app.store.GetSetting(t.Context(), settingServerTLS)
	if err != nil {
		t.Fatal(err)
	}
	before := in.certCount()
	// Values that name real objects, so a route that skipped authentication
	// would do real work and answer 2xx.
	realValues := map[string]string{"ca": "issuing", "serial": string(serverSerial), "name": "web_server", "id": "0123456789abcdef", "kind": "issued"}
	adminID, _, _ := strings.Cut(strings.TrimPrefix(in.token, "cwt_"), "_")
	randomID := make([]byte, 8)
	rand.Read(randomID)
	auths := []struct{ name, header string }{
		{"no token", ""},
		{"empty bearer", "Bearer "},
		{"malformed bearer", "Bearer not-a-token"},
		{"truncated token", "Bearer " + in.token[:len(in.token)/2]},
		{"basic scheme", "Basic YWRtaW46YWRtaW4="},
		{"admin token without scheme", in.token},
		{"well-formed unknown token", "Bearer cwt_" + hex.EncodeToString(randomID) + "_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
		{"admin id, wrong secret", "Bearer cwt_" + adminID + "_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
		{"over-long token", "Bearer cwt_" + adminID + "_" + strings.Repeat("A", 4096)},
	}
	routes := tAPIRoutes(t, in.app)
	if len(routes) < tMinRoutes {
		t.Fatalf("Routes() lists %d routes, want at least %d", len(routes), tMinRoutes)
	}
	seen := map[string]bool{}
	walked := 0
	for _, rt := range routes {
		key := rt.Method + " " + rt.Pattern
		if seen[key] {
			t.Errorf("route %s listed twice", key)
		}
		seen[key] = true
		if !strings.HasPrefix(rt.Pattern, "/api/v1/") || len(rt.Permissions) == 0 && !rt.AuthenticatedOnly {
			t.Errorf("route %s: want a /api/v1/ pattern with a permission or marked authenticated-only, got %q", key, rt.Permissions)
		}
		path := tPath(t, rt.Pattern, realValues)
		walked++
		t.Run(key, func(t *testing.T) {
			for _, au := range auths {
				var body *strings.Reader
				if rt.Method == "POST" || rt.Method == "PUT" {
					body = strings.NewReader("{}")
				}
				var r tResp
				if body != nil {
					r = in.raw(rt.Method, path, au.header, body)
				} else {
					r = in.raw(rt.Method, path, au.header, nil)
				}
				if r.status != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401: %s", au.name, r.status, tTrim(r.body))
					continue
				}
				r.apiErr(t)
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", au.name, r.header.Get("WWW-Authenticate"))
				}
			}
			// The table is what is served: with a token the route is found
			// (it may still refuse the probe's values, but not as unknown).
			probe := tPath(t, rt.Pattern, map[string]string{"ca": "no-such-ca", "serial": "01", "name": "no_such_profile", "id": "0123456789abcdee", "kind": "issued"})
			auth := in.bearer()
			if key == "POST /api/v1/sign-out" {
				// Signing out ends the asking token: not the admin's.
				auth = in.tCreatePrincipal(t, "sign-out-probe", "viewer", apitypes.Scope{}, true)
			}
			var r tResp
			if rt.Method == "POST" || rt.Method == "PUT" {
				r = in.raw(rt.Method, probe, auth, strings.NewReader("{}"))
			} else {
				r = in.raw(rt.Method, probe, auth, nil)
			}
			if r.status == http.StatusNotFound && strings.Contains(r.apiErr(t).Detail, "no API route") {
				t.Errorf("with a token, %s %s is not routed: the table lists a route the server does not serve", rt.Method, probe)
			}
		})
	}
	if walked != len(routes) || len(seen) != len(routes) {
		t.Errorf("walked %d of %d routes", walked, len(routes))
	}

	// Paths outside the table also need a token, so their existence leaks nothing.
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/v1/no-such-thing"},
		{"GET", "/api/v2/cas"},
		{"DELETE", "/api/v1/cas"},
		{"GET", "/api/v1/cas/issuing/disable"},
		{"POST", "/api/v1/cas/issuing/certificate/extra"},
	} {
		r := in.raw(p.method, p.path, "", nil)
		if r.status != http.StatusUnauthorized {
			t.Errorf("unknown %s %s without a token: status %d, want 401", p.method, p.path, r.status)
			continue
		}
		r.apiErr(t)
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("unknown %s %s: 401 without a WWW-Authenticate challenge", p.method, p.path)
		}
		if r := in.raw(p.method, p.path, in.bearer(), nil); r.status != http.StatusNotFound {
			t.Errorf("unknown %s %s with the admin token: status %d, want 404", p.method, p.path, r.status)
		}
	}

	// Nothing the unauthenticated requests asked for happened.
	var c apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &c)
	if c.Status != "active" {
		t.Errorf("CA issuing is %s after unauthenticated disable/delete requests, want active", c.Status)
	}
	in.must(http.StatusOK, "GET", "/api/v1/profiles/web_server", nil, nil)
	if n := in.certCount(); n != before {
		t.Errorf("%d certificates after unauthenticated requests, want %d", n, before)
	}
}

// tSecurityHeaders are the headers every HTTPS answer carries.
var tSecurityHeaders = []struct{ name, contains string }{
	{"Strict-Transport-Security", "max-age="},
	{"Content-Security-Policy", "frame-ancestors 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
}

// TestSecurityHeaders checks the security headers on successes and on every
// kind of refusal.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	big := `{"csr_pem":"` + strings.Repeat("A", 10<<20) + `"}`
	tests := []struct {
		name         string
		method, path string
		auth         string
		body         string
		want         int
	}{
		{"healthz", "GET", "/healthz", "", "", http.StatusOK},
		{"readyz", "GET", "/readyz", "", "", http.StatusOK},
		{"index", "GET", "/", "", "", http.StatusOK},
		{"api list", "GET", "/api/v1/cas", in.bearer(), "", http.StatusOK},
		{"api pem", "GET", "/api/v1/cas/issuing/chain", in.bearer(), "", http.StatusOK},
		{"no token", "GET", "/api/v1/cas", "", "", http.StatusUnauthorized},
		{"unknown api path no token", "GET", "/api/v1/nope", "", "", http.StatusUnauthorized},
		{"unknown api path", "GET", "/api/v1/nope", in.bearer(), "", http.StatusNotFound},
		{"unknown page", "GET", "/nope", "", "", http.StatusNotFound},
		{"unknown CA", "GET", "/api/v1/cas/no-such-ca", in.bearer(), "", http.StatusNotFound},
		{"bad request", "POST", "/api/v1/certificates/sign", in.bearer(), `{"nope":1}`, http.StatusBadRequest},
		{"body too large", "POST", "/api/v1/certificates/sign", in.bearer(), big, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r tResp
			if tt.body != "" {
				r = in.raw(tt.method, tt.path, tt.auth, strings.NewReader(tt.body))
			} else {
				r = in.raw(tt.method, tt.path, tt.auth, nil)
			}
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, tTrim(r.body))
			}
			for _, h := range tSecurityHeaders {
				want := h.contains
				// Console pages keep the referrer within the origin: under
				// no-referrer a browser posts forms with Origin: null.
				if h.name == "Referrer-Policy" && !strings.HasPrefix(tt.path, "/api/") && !strings.HasPrefix(tt.path, "/healthz") && !strings.HasPrefix(tt.path, "/readyz") {
					want = "same-origin"
				}
				if got := r.header.Get(h.name); !strings.Contains(got, want) {
					t.Errorf("%s: %q, want it to contain %q", h.name, got, want)
				}
			}
		})
	}
}

// tRSACSR makes a CSR with an RSA key of bits (1024 needs rsa1024min=0).
func tRSACSR(t *testing.T, bits int, name string) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("RSA-%d key: %v", bits, err)
	}
	return tCSR(t, k, name)
}

// TestBadInput sends refused requests: each gets the right 4xx with a JSON
// error naming the problem, and leaves no certificate behind.
func TestBadInput(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	in.tUseMachineAdmin(t)
	if r := in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tCorpProfile)); r.status != http.StatusCreated {
		t.Fatalf("create profile: %d %s", r.status, r.body)
	}
	in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
		Name: "team", Type: "intermediate", Parent: "root", CommonName: "Team CA",
	}, nil)
	in.must(http.StatusOK, "POST", "/api/v1/cas/team/disable", nil, nil)

	good := tCSR(t, tECKey(t, elliptic.P256()), "app.example.internal")
	block, _ := pem.Decode(good)
	badSig := bytes.Clone(block.Bytes)
	badSig[len(badSig)-1] ^= 0x01 // the last byte of the signature value
	if _, err := x509.ParseCertificateRequest(badSig); err != nil {
		t.Fatalf("the flipped CSR no longer parses (the test wants only its signature broken): %v", err)
	}
	badSigPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: badSig})
	signReq := func(csr []byte, profile, ca string, days int) string {
		return tJSON(t, apitypes.SignRequest{CSRPEM: string(csr), Profile: profile, CA: ca, ValidityDays: days})
	}
	var rootCA, issuingCA apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/root", nil, &rootCA)
	in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &issuingCA)
	crlPEM := string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte("not DER")}))
	tests := []struct {
		name   string
		path   string
		auth   string // "" = the admin token; "-" = none
		body   string
		status int
		// every string must appear in the error, detail or rule
		want []string
	}{
		{"garbage CSR", "/api/v1/certificates/sign", "", signReq([]byte("this is not a CSR"), "web_server", "", 0),
			400, []string{"csr_pem"}},
		{"truncated CSR", "/api/v1/certificates/sign", "", signReq(good[:len(good)/2], "web_server", "", 0),
			400, []string{"csr_pem", "truncated"}},
		{"CSR signature does not verify", "/api/v1/certificates/sign", "", signReq(badSigPEM, "web_server", "", 0),
			400, []string{"csr_pem", "signature"}},
		{"RSA-1024 CSR", "/api/v1/certificates/sign", "", signReq(tRSACSR(t, 1024, "weak.example.internal"), "web_server", "", 0),
			400, []string{"policy violation", "keys", "1024"}},
		{"P-224 CSR", "/api/v1/certificates/sign", "", signReq(tCSR(t, tECKey(t, elliptic.P224()), "p224.example.internal"), "web_server", "", 0),
			400, []string{"policy violation", "keys", "224"}},
		{"name outside the profile's DNS suffixes", "/api/v1/certificates/sign", "",
			signReq(tCSR(t, tECKey(t, elliptic.P256()), "www.other.example"), "corp_web", "", 0),
			400, []string{"policy violation", "names.dns", "www.other.example"}},
		{"validity longer than allowed", "/api/v1/certificates/sign", "", signReq(good, "web_server", "", 400),
			400, []string{"policy violation", "max_validity_days", "400"}},
		{"unknown profile", "/api/v1/certificates/sign", "", signReq(good, "no_such_profile", "", 0),
			404, []string{"unknown profile", "no_such_profile"}},
		{"unknown CA", "/api/v1/certificates/sign", "", signReq(good, "web_server", "no-such-ca", 0),
			404, []string{"not found", "no-such-ca"}},
		{"root CA cannot issue leaves", "/api/v1/certificates/sign", "", signReq(good, "web_server", "root", 0),
			409, []string{"root"}},
		{"disabled CA", "/api/v1/certificates/sign", "", signReq(good, "web_server", "team", 0),
			409, []string{"CA cannot issue", "team", "disabled"}},
		{"10 MB body", "/api/v1/certificates/sign", "", `{"csr_pem":"` + strings.Repeat("A", 10<<20) + `","profile":"web_server"}`,
			413, []string{"too large", "1048576"}},
		{"unknown JSON field", "/api/v1/certificates/sign", "", `{"csr_pem":` + tJSON(t, string(good)) + `,"profile":"web_server","validity":30}`,
			400, []string{"unknown field", "validity"}},
		{"two JSON values", "/api/v1/certificates/sign", "", signReq(good, "web_server", "", 0) + "{}",
			400, []string{"more than one"}},
		{"missing token", "/api/v1/certificates/sign", "-", signReq(good, "web_server", "", 0),
			401, []string{"unauthorized"}},
		{"wrong token", "/api/v1/certificates/sign", "Bearer cwt_0000000000000000_wrong", signReq(good, "web_server", "", 0),
			401, []string{"unauthorized"}},
		{"PKCS#12 with a short password", "/api/v1/certificates/issue", "",
			`{"profile":"web_server","common_name":"p12.example.internal","key_format":"pkcs12","password":"short"}`,
			400, []string{"password", "8"}},
		{"PKCS#12 without a password", "/api/v1/certificates/issue", "",
			`{"profile":"web_server","common_name":"p12.example.internal","key_format":"pkcs12"}`,
			400, []string{"password"}},
		{"managed key outside the profile's names", "/api/v1/certificates/issue", "",
			`{"profile":"corp_web","common_name":"www.other.example"}`,
			400, []string{"names.dns", "www.other.example"}},
		{"managed key algorithm the profile refuses", "/api/v1/certificates/issue", "",
			`{"profile":"corp_web","common_name":"a.example.internal","key_algorithm":"rsa-2048"}`,
			400, []string{"keys"}},
		{"offline root that is not a certificate", "/api/v1/cas/import-root", "",
			tJSON(t, apitypes.ImportRootRequest{Name: "offline", CertificatePEM: "not a certificate"}),
			400, []string{"certificate_pem"}},
		{"offline root without a name", "/api/v1/cas/import-root", "",
			tJSON(t, apitypes.ImportRootRequest{CertificatePEM: rootCA.CertificatePEM}),
			400, []string{"name is required"}},
		{"offline root that is the server's own root", "/api/v1/cas/import-root", "",
			tJSON(t, apitypes.ImportRootRequest{Name: "offline", CertificatePEM: rootCA.CertificatePEM}),
			409, []string{"already has this certificate's key"}},
		{"offline root that is not a root", "/api/v1/cas/import-root", "",
			tJSON(t, apitypes.ImportRootRequest{Name: "offline", CertificatePEM: issuingCA.CertificatePEM}),
			400, []string{"not self-issued"}},
		{"CRL that is not PEM", "/api/v1/cas/root/crl", "", tJSON(t, apitypes.ImportCRLRequest{CRLPEM: "garbage"}),
			400, []string{"crl_pem", "X509 CRL"}},
		{"two CRLs", "/api/v1/cas/root/crl", "", tJSON(t, apitypes.ImportCRLRequest{CRLPEM: crlPEM + crlPEM}),
			400, []string{"one CRL only"}},
		{"CRL for a CA the server signs for", "/api/v1/cas/root/crl", "", tJSON(t, apitypes.ImportCRLRequest{CRLPEM: crlPEM}),
			400, []string{"only an offline root"}},
		{"CRL for an unknown CA", "/api/v1/cas/nope/crl", "", tJSON(t, apitypes.ImportCRLRequest{CRLPEM: crlPEM}),
			404, []string{"nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := in.certCount()
			auth := in.bearer()
			switch tt.auth {
			case "":
			case "-":
				auth = ""
			default:
				auth = tt.auth
			}
			r := in.raw("POST", tt.path, auth, strings.NewReader(tt.body))
			if r.status != tt.status {
				t.Errorf("status %d, want %d: %s", r.status, tt.status, tTrim(r.body))
			}
			if r.status >= 400 {
				e := r.apiErr(t)
				all := e.Error + " | " + e.Detail + " | " + e.Rule
				for _, w := range tt.want {
					if !strings.Contains(all, w) {
						t.Errorf("error %q does not name %q", all, w)
					}
				}
			}
			if after := in.certCount(); after != before {
				t.Errorf("%d certificates after a refused request, want %d", after, before)
			}
		})
	}

	// The same ingredients, put right, are accepted (so each refusal above
	// was about its one defect) and do show in the count.
	before := in.certCount()
	in.sign(good)
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign",
		apitypes.SignRequest{CSRPEM: string(good), Profile: "corp_web", ValidityDays: 90}, nil)
	in.must(http.StatusOK, "POST", "/api/v1/cas/team/enable", nil, nil)
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign",
		apitypes.SignRequest{CSRPEM: string(good), Profile: "web_server", CA: "team", ValidityDays: 365}, nil)
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
		Profile: "web_server", CommonName: "p12.example.internal", KeyFormat: "pkcs12", Password: "long enough",
	}, nil)
	if after := in.certCount(); after != before+4 {
		t.Errorf("%d certificates after 4 accepted requests, want %d", after, before+4)
	}
}

// TestExternalCA creates an external CA through the API, has an "outside"
// openssl CA sign its CSR, imports the result (refusing a certificate for
// another key and a non-CA certificate), issues under it and verifies the
// leaf with openssl against the outside root.
func TestExternalCA(t *testing.T) {
	t.Parallel()
	tNeedOpenSSL(t)
	in := tNewServer(t, "")
	in.tUseMachineAdmin(t)
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// The outside CA.
	tMustOpenSSL(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "outside.key", "-out", "outside.pem", "-subj", "/O=Outside/CN=Outside Root CA", "-days", "3650",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	write("ca.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
	write("leaf.ext", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
	signCSR := func(csr, ext, out string) {
		t.Helper()
		serial := make([]byte, 16)
		rand.Read(serial)
		serial[0] &= 0x7f
		tMustOpenSSL(t, dir, "x509", "-req", "-in", csr, "-CA", "outside.pem", "-CAkey", "outside.key",
			"-set_serial", "0x"+hex.EncodeToString(serial), "-days", "1000", "-sha256", "-extfile", ext, "-out", out)
	}

	var ext apitypes.CA
	in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
		Name: "ext", Type: "external", CommonName: "Certwright External CA", Organization: "Example",
	}, &ext)
	if ext.Status != "pending" || !ext.External || !strings.Contains(ext.CSRPEM, "BEGIN CERTIFICATE REQUEST") {
		t.Fatalf("external CA: status %q, external %v, CSR %q", ext.Status, ext.External, ext.CSRPEM)
	}
	write("ext.csr", ext.CSRPEM)
	tMustOpenSSL(t, dir, "req", "-in", "ext.csr", "-noout", "-verify")
	// A pending CA cannot issue yet.
	if r := in.call("POST", "/api/v1/certificates/issue", apitypes.IssueRequest{Profile: "web_server", CA: "ext", CommonName: "a.example.internal"}); r.status != http.StatusConflict {
		t.Errorf("issuing from a pending CA: status %d, want 409: %s", r.status, tTrim(r.body))
	}

	importCA := func(certFile string) tResp {
		t.Helper()
		return in.call("POST", "/api/v1/cas/ext/certificate", apitypes.ImportCARequest{
			CertificatePEM: read(certFile), ChainPEM: read("outside.pem"),
		})
	}

	// Refused: a CA certificate for another key.
	tMustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "other.key", "-subj", "/CN=Certwright External CA", "-out", "other.csr")
	signCSR("other.csr", "ca.ext", "other.pem")
	if r := importCA("other.pem"); r.status != http.StatusBadRequest {
		t.Errorf("importing a certificate for another key: status %d, want 400: %s", r.status, tTrim(r.body))
	} else if e := r.apiErr(t); !strings.Contains(e.Detail, "does not match") {
		t.Errorf("importing a certificate for another key: %+v, want it to say the key does not match", e)
	}
	// Refused: the right key, but not a CA certificate.
	signCSR("ext.csr", "leaf.ext", "notca.pem")
	if r := importCA("notca.pem"); r.status != http.StatusBadRequest {
		t.Errorf("importing a CA:FALSE certificate: status %d, want 400: %s", r.status, tTrim(r.body))
	} else if e := r.apiErr(t); !strings.Contains(e.Detail, "not a CA") {
		t.Errorf("importing a CA:FALSE certificate: %+v, want it to say it is not a CA certificate", e)
	}
	var still apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/ext", nil, &still)
	if still.Status != "pending" {
		t.Fatalf("after refused imports the CA is %s, want pending", still.Status)
	}

	// Accepted: the real one.
	signCSR("ext.csr", "ca.ext", "ext.pem")
	r := importCA("ext.pem")
	if r.status != http.StatusOK {
		t.Fatalf("import: status %d: %s", r.status, tTrim(r.body))
	}
	var active apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/ext", nil, &active)
	if active.Status != "active" || active.PathLen == nil || *active.PathLen != 0 {
		t.Fatalf("after import: status %q, path length %v, want active with path length 0", active.Status, active.PathLen)
	}
	if r := importCA("ext.pem"); r.status != http.StatusConflict {
		t.Errorf("importing again into an active CA: status %d, want 409", r.status)
	}

	var leaf apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
		Profile: "web_server", CA: "ext", CommonName: "leaf.example.internal",
	}, &leaf)
	write("leaf.pem", leaf.CertificatePEM)
	write("chain.pem", leaf.ChainPEM)
	if !strings.Contains(leaf.RootPEM, "BEGIN CERTIFICATE") {
		t.Errorf("issued answer has no root PEM (the outside root): %q", leaf.RootPEM)
	}
	out := tMustOpenSSL(t, dir, "verify", "-CAfile", "outside.pem", "-untrusted", "chain.pem", "-purpose", "sslserver", "leaf.pem")
	if !strings.Contains(out, "leaf.pem: OK") {
		t.Errorf("openssl verify: %s", out)
	}
	// The chain the server hands out, root included, is the outside one.
	write("served-root.pem", leaf.RootPEM)
	if got, want := tMustOpenSSL(t, dir, "x509", "-in", "served-root.pem", "-noout", "-fingerprint", "-sha256"),
		tMustOpenSSL(t, dir, "x509", "-in", "outside.pem", "-noout", "-fingerprint", "-sha256"); got != want {
		t.Errorf("root in the answer %s, want the outside root %s", got, want)
	}
	// And not the server's own root.
	out, err := tOpenSSL(t, dir, "", "verify", "-CAfile", filepath.Join(in.cfg.DataDir, RootFile), "-untrusted", "chain.pem", "leaf.pem")
	if err == nil {
		t.Errorf("the leaf under the external CA verifies against the server's own root:\n%s", out)
	}
}

// tJSON encodes v as JSON text.
func tJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
