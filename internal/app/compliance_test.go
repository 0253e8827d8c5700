package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
	"github.com/certwright/certwright/internal/web/report"
)

// tElsewhere is a CA of another PKI, for certificates to import.
type tElsewhere struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func tElsewhereSign(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	s, err := pki.NewSerial(nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = s
	if tmpl.SubjectKeyId, err = pki.SubjectKeyID(pub); err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tElsewhereChain makes a root and an intermediate of another PKI.
func tElsewhereChain(t *testing.T) (root, inter tElsewhere) {
	t.Helper()
	now := time.Now()
	ca := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{Organization: []string{"Vendor"}, CommonName: cn}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.AddDate(5, 0, 0), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true}
	}
	rk, ik := tECKey(t, elliptic.P256()), tECKey(t, elliptic.P256())
	root = tElsewhere{tElsewhereSign(t, ca("Vendor Root"), nil, rk.Public(), rk), rk}
	inter = tElsewhere{tElsewhereSign(t, ca("Vendor Issuing"), root.cert, ik.Public(), rk), ik}
	return root, inter
}

func (ca tElsewhere) leaf(t *testing.T, name string, key crypto.Signer) *x509.Certificate {
	t.Helper()
	now := time.Now()
	return tElsewhereSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 0, 60), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true}, ca.cert, key.Public(), ca.key)
}

func tPEMs(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pki.CertPEM(c.Raw))
	}
	return b.String()
}

// tImport posts an import and decodes a 2xx answer.
func (in *tInstance) tImport(want int, req apitypes.ImportRequest) apitypes.ImportResult {
	in.t.Helper()
	var out apitypes.ImportResult
	in.must(want, "POST", "/api/v1/certificates/import", req, &out)
	return out
}

func TestCertImport(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			root, inter := tElsewhereChain(t)
			appKey := tECKey(t, elliptic.P256())
			app := inter.leaf(t, "app.vendor.example", appKey)
			other := inter.leaf(t, "other.vendor.example", tECKey(t, elliptic.P256()))
			before := in.certCount()

			// A bundle with leaf and chain, and a second file: two records.
			res := in.tImport(http.StatusCreated, apitypes.ImportRequest{Tags: []string{"vendor"}, Owner: "team-web", Files: []apitypes.ImportFile{
				{Name: "app.pem", PEM: tPEMs(app, inter.cert, root.cert)}, {Name: "other.pem", PEM: tPEMs(other)}}})
			if len(res.Imported) != 2 || len(res.Skipped) != 0 {
				t.Fatalf("imported %d, skipped %+v; want 2 and none", len(res.Imported), res.Skipped)
			}
			got := res.Imported[0]
			if got.Serial != compliance.InventorySerial(app.Raw) || got.Source != "imported" || got.Owner != "team-web" ||
				got.Issuer != app.Issuer.String() || got.IssuerSerial != pki.SerialHex(app.SerialNumber) || got.Requester == "" || got.CAID != "" {
				t.Errorf("imported record %+v", got)
			}
			var shown apitypes.Certificate
			in.must(http.StatusOK, "GET", "/api/v1/certificates/"+got.Serial, nil, &shown)
			if shown.Fingerprint != pki.Fingerprint(app.Raw) || shown.Source != "imported" || !strings.Contains(shown.CertificatePEM, "BEGIN CERTIFICATE") {
				t.Errorf("cert show of the imported certificate: %+v", shown)
			}
			stored, err := in.app.store.GetCertificate(context.Background(), got.Serial)
			if err != nil {
				t.Fatal(err)
			}
			if len(stored.Chain) != 2 || !bytes.Equal(stored.Chain[0], inter.cert.Raw) {
				t.Errorf("stored chain has %d certificates, want the intermediate and the root", len(stored.Chain))
			}

			// Again: skipped, not an error.
			res = in.tImport(http.StatusOK, apitypes.ImportRequest{PEM: tPEMs(app)})
			if len(res.Imported) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != "already in the inventory" ||
				res.Skipped[0].Fingerprint != pki.Fingerprint(app.Raw) {
				t.Errorf("re-import: %+v", res)
			}
			if n := in.certCount(); n != before+2 {
				t.Errorf("%d certificates, want %d", n, before+2)
			}

			// Refusals store nothing, from any file of the request.
			keyDER, err := x509.MarshalECPrivateKey(appKey)
			if err != nil {
				t.Fatal(err)
			}
			keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
			fresh := inter.leaf(t, "fresh.vendor.example", tECKey(t, elliptic.P256()))
			csrPEM := string(tCSR(t, tECKey(t, elliptic.P256()), "req.vendor.example"))
			huge := strings.Repeat("A", 1<<20)
			for _, tc := range []struct {
				name   string
				body   any
				status int
				detail string
			}{
				{"private key in the bundle", apitypes.ImportRequest{Files: []apitypes.ImportFile{{Name: "fresh.pem", PEM: tPEMs(fresh)}, {Name: "app.pem", PEM: tPEMs(app) + keyPEM}}},
					http.StatusBadRequest, "app.pem: block 2 is a private key (EC PRIVATE KEY): Certwright never stores keys of imported certificates"},
				{"CSR", apitypes.ImportRequest{Files: []apitypes.ImportFile{{Name: "fresh.pem", PEM: tPEMs(fresh)}, {Name: "req.pem", PEM: csrPEM}}},
					http.StatusBadRequest, "req.pem: block 1 is a CERTIFICATE REQUEST, not a certificate"},
				{"garbage", apitypes.ImportRequest{Files: []apitypes.ImportFile{{Name: "fresh.pem", PEM: tPEMs(fresh)}, {Name: "junk.txt", PEM: "hello"}}},
					http.StatusBadRequest, "junk.txt is neither PEM certificates nor a DER certificate"},
				{"empty file", apitypes.ImportRequest{Files: []apitypes.ImportFile{{Name: "empty.pem", PEM: ""}}}, http.StatusBadRequest, "empty.pem is empty"},
				{"nothing", apitypes.ImportRequest{}, http.StatusBadRequest, "pem or files is required"},
				{"body over the limit", apitypes.ImportRequest{PEM: tPEMs(fresh) + huge}, http.StatusRequestEntityTooLarge, "the limit is"},
				{"unknown field", map[string]any{"pem": tPEMs(fresh), "key": keyPEM}, http.StatusBadRequest, "unknown field"},
			} {
				r := in.call("POST", "/api/v1/certificates/import", tc.body)
				if r.status != tc.status || !strings.Contains(r.apiErr(t).Detail, tc.detail) {
					t.Errorf("%s: status %d %s, want %d with %q", tc.name, r.status, tTrim(r.body), tc.status, tc.detail)
				}
			}
			if n := in.certCount(); n != before+2 {
				t.Errorf("%d certificates after refused imports, want %d", n, before+2)
			}
			// The key sent with the refused bundle is nowhere in the database.
			tScanTables(t, in.cfg, map[string][]byte{"imported certificate's key": tSecret(t, appKey)})

			// Importing needs cert:issue.
			tok := in.tPrincipalWithout(t, "no-issue", []authz.Permission{authz.PermCertIssue})
			r := in.raw("POST", "/api/v1/certificates/import", "Bearer "+tok, strings.NewReader(tJSON(t, apitypes.ImportRequest{PEM: tPEMs(fresh)})))
			if r.status != http.StatusForbidden {
				t.Errorf("without cert:issue: status %d, want 403", r.status)
			}
		})
	}
}

// tLegacyPEM makes, with openssl, a self-signed RSA certificate signed with
// the given digest, as legacy systems still carry them.
func tLegacyPEM(t *testing.T, cn, digest string, bits, days int) string {
	t.Helper()
	dir := t.TempDir()
	tMustOpenSSL(t, dir, "req", "-x509", "-"+digest, "-newkey", fmt.Sprintf("rsa:%d", bits), "-nodes", "-subj", "/CN="+cn,
		"-days", fmt.Sprint(days), "-keyout", "legacy.key", "-out", "legacy.pem")
	b, err := os.ReadFile(filepath.Join(dir, "legacy.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tRowBySerial(t *testing.T, rep apitypes.ComplianceReport, serial string) apitypes.ComplianceRow {
	t.Helper()
	for _, r := range rep.Certificates {
		if r.Serial == serial {
			return r
		}
	}
	t.Fatalf("certificate %s is not in the compliance report", serial)
	return apitypes.ComplianceRow{}
}

func TestComplianceReport(t *testing.T) {
	t.Parallel()
	tNeedOpenSSL(t)
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			ctx := context.Background()
			legacy := in.tImport(http.StatusCreated, apitypes.ImportRequest{Files: []apitypes.ImportFile{
				{Name: "legacy.pem", PEM: tLegacyPEM(t, "legacy.example.com", "sha1", 2048, 800)}}}).Imported[0]
			weak := in.tImport(http.StatusCreated, apitypes.ImportRequest{Files: []apitypes.ImportFile{
				{Name: "weak.pem", PEM: tLegacyPEM(t, "weak.example.com", "sha256", 1024, 30)}}}).Imported[0]
			issued := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "app.example.internal"))

			now := time.Now()
			for i, a := range []inventory.RenewalAttempt{
				{Serial: "01", NewSerial: "11", Kind: inventory.RenewalAuto, OK: true, DaysLeft: 25},
				{Serial: "02", NewSerial: "12", Kind: inventory.RenewalACME, OK: true, DaysLeft: 0.4},
				{Serial: "03", NewSerial: "13", Kind: inventory.RenewalManual, OK: true, DaysLeft: 9},
				{Serial: "04", Kind: inventory.RenewalAuto, OK: false, Error: "CA disabled", DaysLeft: 2},
			} {
				a.At = now.Add(-time.Duration(i+1) * time.Hour)
				if err := in.app.store.RecordRenewalAttempt(ctx, a); err != nil {
					t.Fatal(err)
				}
			}

			var rep apitypes.ComplianceReport
			in.must(http.StatusOK, "GET", "/api/v1/reports/compliance", nil, &rep)
			row := tRowBySerial(t, rep, legacy.Serial)
			if row.Status != "non_compliant" || row.SignatureAlgorithm != "SHA1-RSA" || row.Source != "imported" || row.Revocation != "not checked" {
				t.Errorf("legacy SHA-1 certificate: %+v", row)
			}
			sha1 := false
			for _, f := range row.Findings {
				sha1 = sha1 || (f.Rule == "signature_algorithm" && f.Severity == "error" && strings.Contains(f.Message, "SHA-1"))
			}
			if !sha1 {
				t.Errorf("legacy certificate findings %+v: want an error naming SHA-1", row.Findings)
			}
			row = tRowBySerial(t, rep, weak.Serial)
			if row.Status != "non_compliant" || !strings.Contains(fmt.Sprint(row.Findings), "1024-bit key is below the 2048-bit minimum") {
				t.Errorf("RSA-1024 certificate: status %s findings %+v", row.Status, row.Findings)
			}
			row = tRowBySerial(t, rep, issued.Serial)
			if row.Status != "compliant" || len(row.Findings) != 0 || row.CA != "issuing" || row.Profile != "web_server" || row.Revocation != "valid" {
				t.Errorf("issued certificate: %+v", row)
			}
			k := rep.KPIs
			if k.RenewalAttempts != 4 || k.RenewalsSucceeded != 3 || k.RenewalSuccessRate == nil || *k.RenewalSuccessRate != 0.75 ||
				k.AutomatedRenewals != 2 || k.NearMisses != 1 {
				t.Errorf("KPIs %+v", k)
			}
			if rep.Summary.NonCompliant < 2 || len(rep.WorstOffenders) < 2 || rep.WorstOffenders[0].Status != "non_compliant" {
				t.Errorf("summary %+v, worst offenders %d", rep.Summary, len(rep.WorstOffenders))
			}

			// CSV: one row per certificate, with the findings.
			r := in.call("GET", "/api/v1/reports/compliance?format=csv", nil)
			if r.status != http.StatusOK || r.header.Get("Content-Type") != report.ContentTypeCSV {
				t.Fatalf("csv: status %d type %q", r.status, r.header.Get("Content-Type"))
			}
			recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(rep.Certificates)+1 || !strings.Contains(string(r.body), "SHA-1") {
				t.Errorf("csv has %d records for %d certificates", len(recs), len(rep.Certificates))
			}

			// HTML: its own strict policy, and a real browser shows the verdict.
			r = in.call("GET", "/api/v1/reports/compliance?format=html", nil)
			if r.status != http.StatusOK || r.header.Get("Content-Type") != report.ContentTypeHTML {
				t.Fatalf("html: status %d type %q", r.status, r.header.Get("Content-Type"))
			}
			if csp := r.header.Get("Content-Security-Policy"); csp != report.ContentSecurityPolicy() {
				t.Errorf("html CSP %q, want %q", csp, report.ContentSecurityPolicy())
			}
			if !bytes.Contains(r.body, []byte("legacy.example.com")) || !bytes.Contains(r.body, []byte("Non-compliant")) {
				t.Error("the HTML report does not show the legacy certificate as non-compliant")
			}
			tChromiumShows(t, r.body, "legacy.example.com", "SHA1-RSA", "Non-compliant")

			for _, q := range []string{"format=pdf", "since=2999-01-01T00:00:00Z", "since=yesterday"} {
				if r := in.call("GET", "/api/v1/reports/compliance?"+q, nil); r.status != http.StatusBadRequest {
					t.Errorf("?%s: status %d, want 400", q, r.status)
				}
			}
		})
	}
}

// tChromiumShows opens page in headless Chromium, when installed, and
// checks the DOM it builds holds every want.
func tChromiumShows(t *testing.T, page []byte, want ...string) {
	t.Helper()
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		t.Log("chromium not installed (Debian package chromium): the HTML report was not opened in a browser")
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--dump-dom", "file://"+path).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("the DOM chromium built lacks %q", w)
		}
	}
}
