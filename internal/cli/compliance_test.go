package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// importAnswer echoes a successful import of every file's certificates.
func importAnswer(w http.ResponseWriter, r *http.Request) {
	var req apitypes.ImportRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeTestJSON(w, 400, apitypes.Error{Error: "invalid request", Detail: err.Error()})
		return
	}
	out := apitypes.ImportResult{Imported: []apitypes.Certificate{}, Skipped: []apitypes.ImportSkipped{
		{Fingerprint: "ab12", Subject: "CN=dup.example.com", Reason: "already in the inventory"}}}
	for _, f := range req.Files {
		certs, err := pki.ParseCertificates([]byte(f.PEM))
		if err != nil {
			writeTestJSON(w, 400, apitypes.Error{Error: "invalid request", Detail: err.Error()})
			return
		}
		c := certs[0]
		out.Imported = append(out.Imported, apitypes.Certificate{Serial: pki.Fingerprint(c.Raw), Subject: c.Subject.String(),
			Issuer: c.Issuer.String(), NotAfter: c.NotAfter, KeyAlgorithm: "ECDSA", KeyBits: 256, Source: "imported"})
	}
	writeTestJSON(w, 201, out)
}

func TestCertImportSendsOnlyCertificates(t *testing.T) {
	t.Parallel()
	tc := newTestChain(t)
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /api/v1/certificates/import": importAnswer})
	der := filepath.Join(tc.dir, "root.der")
	if err := os.WriteFile(der, tc.root.cert.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// openssl x509 -text output around the blocks stays on this host.
	withText := filepath.Join(tc.dir, "text.pem")
	if err := os.WriteFile(withText, append([]byte("Certificate:\n    Data: secret-looking-note\n"), tc.validLeafPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, f.env, "cert", "import", withText, der, "--tag", "legacy,vendor", "--owner", "team-web")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].method != "POST" || reqs[0].path != "/api/v1/certificates/import" {
		t.Fatalf("requests = %+v, want one POST /api/v1/certificates/import", reqs)
	}
	var sent apitypes.ImportRequest
	if err := json.Unmarshal(reqs[0].body, &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Owner != "team-web" || strings.Join(sent.Tags, ",") != "legacy,vendor" || len(sent.Files) != 2 ||
		sent.Files[0].Name != withText || sent.Files[1].Name != der {
		t.Errorf("sent %+v", sent)
	}
	if bytes.Contains(reqs[0].body, []byte("secret-looking-note")) {
		t.Error("text around the PEM blocks was sent: only the certificates should travel")
	}
	if got := sent.Files[1].PEM; got != string(pki.CertPEM(tc.root.cert.Raw)) {
		t.Errorf("the DER file was sent as %q, want its certificate as PEM", got)
	}
	if !strings.HasPrefix(out, "Imported 2 certificates, skipped 1.") || !strings.Contains(out, "CN=app.example.internal") ||
		!strings.Contains(out, "already in the inventory") {
		t.Errorf("output:\n%s", out)
	}
}

func TestCertImportRefusesKeysLocally(t *testing.T) {
	t.Parallel()
	tc := newTestChain(t)
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /api/v1/certificates/import": importAnswer})
	keyDER, err := x509.MarshalECPrivateKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	bundle := filepath.Join(tc.dir, "app-with-key.pem")
	if err := os.WriteFile(bundle, append(append([]byte{}, tc.validLeafPEM[:len(tc.validLeafPEM)/2+1]...), keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(tc.dir, "full.pem")
	if err := os.WriteFile(full, append(pki.CertPEM(tc.root.cert.Raw), keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	csr := filepath.Join(tc.dir, "req.pem")
	if err := os.WriteFile(csr, testCSR(t), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(tc.dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(tc.dir, "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), 1<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"key after a certificate, in the second file", []string{tc.validLeaf, full},
			"full.pem: block 2 is a private key (EC PRIVATE KEY): Certwright never stores keys of imported certificates; remove it and import the certificates only"},
		{"key in a damaged bundle", []string{bundle}, "is a private key (EC PRIVATE KEY)"},
		{"CSR", []string{csr}, "req.pem: block 1 is a CERTIFICATE REQUEST, not a certificate"},
		{"empty file", []string{empty}, "empty.pem is empty"},
		{"file over 1 MiB", []string{big}, "big.pem is larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(t, f.env, append([]string{"cert", "import"}, tt.args...)...)
			if code != exitError || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tt.want)
			}
		})
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("the server got %d requests: a refused import must not reach it", n)
	}
	if code, _, errOut := run(t, f.env, "cert", "import"); code != exitUsage || !strings.Contains(errOut, "missing FILE") {
		t.Errorf("no file: exit %d, stderr %q", code, errOut)
	}
}

func TestReportCompliance(t *testing.T) {
	t.Parallel()
	rate := 0.5
	na := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	rep := apitypes.ComplianceReport{
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		Summary: apitypes.ComplianceSummary{ComplianceCounts: apitypes.ComplianceCounts{Total: 1, NonCompliant: 1},
			BySource: []apitypes.ComplianceSourceCounts{{Source: "imported", ComplianceCounts: apitypes.ComplianceCounts{Total: 1, NonCompliant: 1}}}},
		KPIs: apitypes.ComplianceKPIs{RenewalAttempts: 2, RenewalsSucceeded: 1, RenewalSuccessRate: &rate, ExpiryIncidents: 3},
		Certificates: []apitypes.ComplianceRow{{Serial: "9f86", Subject: "CN=legacy.example.com", Source: "imported", KeyAlgorithm: "RSA",
			KeyBits: 2048, SignatureAlgorithm: "SHA1-RSA", NotAfter: na, Status: "non_compliant",
			Findings: []apitypes.ComplianceFinding{{Rule: "signature_algorithm", Severity: "error", Message: "signed with SHA1-RSA (SHA-1)"}}}},
	}
	rep.WorstOffenders = rep.Certificates
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/reports/compliance": func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Query().Get("format") {
			case "html":
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = w.Write([]byte("<!DOCTYPE html><p>Non-compliant</p>"))
			default:
				writeTestJSON(w, 200, rep)
			}
		},
	})
	code, out, errOut := run(t, f.env, "report", "compliance", "--since", "2026-01-01")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"1 certificate, 0 compliant, 0 warning, 1 non-compliant", "imported: 1", "renewal success rate", "50.0%",
		"n/a", "Worst offenders:", "non_compliant", "SHA1-RSA", "error signature_algorithm: signed with SHA1-RSA (SHA-1)", "2027-01-02 03:04"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	q, _ := url.ParseQuery(f.requests()[0].query)
	if q.Get("format") != "json" || q.Get("since") != "2026-01-01T00:00:00Z" {
		t.Errorf("query %v, want format=json since=2026-01-01T00:00:00Z", q)
	}

	dir := t.TempDir()
	outFile := filepath.Join(dir, "r.html")
	if code, _, errOut := run(t, f.env, "report", "compliance", "--format", "html", "--out", outFile); code != 0 {
		t.Fatalf("html: exit %d, stderr %q", code, errOut)
	}
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(outFile)
	if string(data) != "<!DOCTYPE html><p>Non-compliant</p>" || fi.Mode().Perm() != 0o644 {
		t.Errorf("r.html = %q mode %o, want the server's bytes, 0644", data, fi.Mode().Perm())
	}
	reqs := f.requests()
	if q, _ := url.ParseQuery(reqs[len(reqs)-1].query); q.Get("format") != "html" || q.Has("since") {
		t.Errorf("html query %v: want format=html and the server's default period", q)
	}

	for _, bad := range [][]string{{"--format", "pdf"}, {"--since", "tomorrow"}, {"--since", "2999-01-01"}, {"--json", "--format", "csv"}} {
		if code, _, errOut := run(t, f.env, append([]string{"report", "compliance"}, bad...)...); code != exitUsage {
			t.Errorf("%q: exit %d (stderr %q), want 2", bad, code, errOut)
		}
	}
}

func TestCertImportTooLargeForTheServer(t *testing.T) {
	t.Parallel()
	tc := newTestChain(t)
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /api/v1/certificates/import": func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, http.StatusRequestEntityTooLarge, apitypes.Error{Error: "request body too large", Detail: "the limit is 1048576 bytes"})
	}})
	code, _, errOut := run(t, f.env, "cert", "import", tc.validLeaf)
	if code != exitError || !strings.Contains(errOut, "the limit is 1048576 bytes") || !strings.Contains(errOut, "hint: nothing was imported") {
		t.Errorf("exit %d, stderr %q; want the server's limit and a hint", code, errOut)
	}
}
