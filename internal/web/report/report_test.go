package report_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/certwright/certwright/internal/web/apitypes"
	"github.com/certwright/certwright/internal/web/report"
)

var tNow = time.Date(2026, time.June, 1, 12, 0, 0, 0, time.UTC)

func ptr(v float64) *float64 { return &v }

// tReport has one certificate of each status, and a subject that tries to
// break out of the page.
func tReport() *apitypes.ComplianceReport {
	legacy := apitypes.ComplianceRow{
		Serial: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Subject: "CN=legacy.example.com",
		Names: []string{"legacy.example.com"}, Source: "imported", Issuer: "CN=legacy.example.com", KeyAlgorithm: "RSA", KeyBits: 2048,
		SignatureAlgorithm: "SHA1-RSA", NotBefore: tNow.AddDate(0, 0, -10), NotAfter: tNow.AddDate(0, 0, 790), ValidityDays: 800,
		DaysLeft: 790, Chain: "self-signed", Revocation: "not checked", Status: "non_compliant", Tags: []string{},
		Findings: []apitypes.ComplianceFinding{{Rule: "signature_algorithm", Severity: "error", Message: "signed with SHA1-RSA (SHA-1)"}},
	}
	soon := apitypes.ComplianceRow{
		Serial: "01aa", Subject: "CN=soon.example.internal", Names: []string{"soon.example.internal"}, Source: "issued", CA: "issuing",
		Profile: "web_server", KeyAlgorithm: "ECDSA", KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256", NotAfter: tNow.AddDate(0, 0, 3),
		ValidityDays: 90, DaysLeft: 3, Chain: "issued here", Revocation: "valid", Status: "warning", Tags: []string{},
		Findings: []apitypes.ComplianceFinding{{Rule: "expiry", Severity: "warning", Message: "expires in 3 days"}},
	}
	hostile := apitypes.ComplianceRow{
		Serial: "01bb", Subject: `CN=<script>alert(1)</script>`, Names: []string{`"><img src=x onerror=alert(1)>`}, Source: "issued",
		CA: "issuing", Owner: "=cmd|' /C calc'!A0", KeyAlgorithm: "ECDSA", KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256",
		NotAfter: tNow.AddDate(0, 0, 60), ValidityDays: 90, DaysLeft: 60, Chain: "issued here", Revocation: "valid",
		Status: "compliant", Tags: []string{}, Findings: []apitypes.ComplianceFinding{},
	}
	return &apitypes.ComplianceReport{
		Since: tNow.AddDate(0, 0, -90), Until: tNow, GeneratedAt: tNow,
		Summary: apitypes.ComplianceSummary{ComplianceCounts: apitypes.ComplianceCounts{Total: 3, Compliant: 1, Warning: 1, NonCompliant: 1},
			BySource: []apitypes.ComplianceSourceCounts{{Source: "imported", ComplianceCounts: apitypes.ComplianceCounts{Total: 1, NonCompliant: 1}}}},
		KPIs: apitypes.ComplianceKPIs{RenewalAttempts: 4, RenewalsSucceeded: 3, RenewalSuccessRate: ptr(0.75), CurrentCertificates: 3,
			AutoManaged: 1, AutoManagedShare: ptr(1.0 / 3), ExpiryIncidents: 2, NearMisses: 1},
		WorstOffenders: []apitypes.ComplianceRow{legacy, soon},
		Certificates:   []apitypes.ComplianceRow{soon, hostile, legacy},
	}
}

func render(t *testing.T, rep *apitypes.ComplianceReport) []byte {
	t.Helper()
	r, err := report.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// walk calls fn for every element node.
func walk(n *html.Node, fn func(*html.Node)) {
	if n.Type == html.ElementNode {
		fn(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return b.String()
}

func TestHTMLIsSelfContainedUnderStrictCSP(t *testing.T) {
	t.Parallel()
	page := render(t, tReport())
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var styles []string
	var metaCSP string
	rows := map[string]int{}
	walk(doc, func(n *html.Node) {
		switch n.Data {
		case "script", "iframe", "object", "embed", "link", "img", "form":
			t.Errorf("the page has a <%s> element", n.Data)
		case "style":
			styles = append(styles, text(n))
		case "meta":
			if strings.EqualFold(attr(n, "http-equiv"), "Content-Security-Policy") {
				metaCSP = attr(n, "content")
			}
		case "tr":
			if c := attr(n, "class"); c != "" {
				rows[c]++
			}
		}
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has a %s attribute: a strict CSP blocks it", n.Data, a.Key)
			}
			if (a.Key == "src" || a.Key == "href") && a.Val != "" {
				t.Errorf("<%s %s=%q>: the page must load nothing", n.Data, a.Key, a.Val)
			}
		}
	})
	if len(styles) != 1 {
		t.Fatalf("%d <style> elements, want 1", len(styles))
	}
	sum := sha256.Sum256([]byte(styles[0]))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if report.StyleHash() != hash {
		t.Errorf("StyleHash() = %s, but the page's style sheet hashes to %s", report.StyleHash(), hash)
	}
	for _, p := range []string{metaCSP, report.ContentSecurityPolicy()} {
		if !strings.Contains(p, "default-src 'none'") || !strings.Contains(p, "style-src "+hash) || strings.Contains(p, "unsafe") {
			t.Errorf("policy %q: want default-src 'none' and the style sheet's hash, nothing unsafe", p)
		}
	}
	// Worst offenders (2) plus all certificates (3), coloured by status.
	if rows["st-non_compliant"] != 2 || rows["st-warning"] != 2 || rows["st-compliant"] != 1 {
		t.Errorf("row classes %v", rows)
	}
	for _, want := range []string{"Non-compliant", "SHA1-RSA", "legacy.example.com", "75.0%", "33.3%", "n/a", "Worst offenders", "Renewal KPIs"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page does not show %q", want)
		}
	}
	if bytes.Contains(page, []byte("<script>alert")) || bytes.Contains(page, []byte(`"><img`)) {
		t.Error("a certificate's subject or name reached the page unescaped")
	}
	if !bytes.Contains(page, []byte("&lt;script&gt;alert(1)&lt;/script&gt;")) {
		t.Error("the hostile subject is not shown, escaped")
	}
}

func TestHTMLEmptyReport(t *testing.T) {
	t.Parallel()
	page := render(t, &apitypes.ComplianceReport{Since: tNow.AddDate(0, 0, -90), Until: tNow, GeneratedAt: tNow})
	for _, want := range []string{"Every certificate is compliant.", "No certificate to report on.", "n/a"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("empty report does not say %q", want)
		}
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	rep := tReport()
	rep.Certificates[2].Findings = append(rep.Certificates[2].Findings,
		apitypes.ComplianceFinding{Rule: "zlint:w_x", Severity: "warning", Message: "second"})
	var b bytes.Buffer
	if err := report.WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want a header and 3 rows", len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	legacy := recs[3]
	if legacy[col["status"]] != "non_compliant" || legacy[col["signature_algorithm"]] != "SHA1-RSA" || legacy[col["validity_days"]] != "800" {
		t.Errorf("legacy row %q", legacy)
	}
	if got, want := legacy[col["findings"]], "error signature_algorithm: signed with SHA1-RSA (SHA-1); warning zlint:w_x: second"; got != want {
		t.Errorf("findings = %q, want %q", got, want)
	}
	if owner := recs[2][col["owner"]]; !strings.HasPrefix(owner, "'=") {
		t.Errorf("owner %q: a formula must be defused", owner)
	}
}

// TestHTMLInChromium opens the page in a real browser, as a file, under
// its own policy: the DOM it builds shows the report, and the style sheet
// applies (a copy whose policy names another hash renders differently).
func TestHTMLInChromium(t *testing.T) {
	t.Parallel()
	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("install chromium (Debian package chromium) to open the report in a real browser")
	}
	dir := t.TempDir()
	page := render(t, tReport())
	hash := strings.Trim(report.StyleHash(), "'")
	escaped := strings.ReplaceAll(hash, "+", "&#43;")
	if !bytes.Contains(page, []byte(escaped)) {
		t.Fatalf("the page does not carry its style hash %s", hash)
	}
	blocked := bytes.Replace(page, []byte(escaped), []byte("sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), 1)
	chromium := func(name string, page []byte, mode string) []byte {
		t.Helper()
		path := filepath.Join(dir, name+".html")
		if err := os.WriteFile(path, page, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile-"+name+mode)}
		shot := filepath.Join(dir, name+".png")
		if mode == "dom" {
			args = append(args, "--dump-dom")
		} else {
			args = append(args, "--window-size=1200,900", "--screenshot="+shot)
		}
		out, err := exec.CommandContext(ctx, bin, append(args, "file://"+path)...).Output()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		if mode == "dom" {
			return out
		}
		png, err := os.ReadFile(shot)
		if err != nil {
			t.Fatalf("chromium wrote no screenshot: %v", err)
		}
		return png
	}
	dom := string(chromium("report", page, "dom"))
	for _, want := range []string{"SHA1-RSA", "Non-compliant", "legacy.example.com", `class="st-non_compliant"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM chromium built lacks %q", want)
		}
	}
	if bytes.Equal(chromium("report", page, "png"), chromium("blocked", blocked, "png")) {
		t.Error("the page renders the same with its style sheet blocked: the policy's hash does not allow it")
	}
}

// tEncryption is the KPIs of four scanned endpoints.
func tEncryption() *apitypes.ScanKPIs {
	return &apitypes.ScanKPIs{Endpoints: 4, Gone: 1, Encrypted: 3, EncryptionKnown: 4, EncryptedShare: 0.75, TLS12Only: 1, TLS12Known: 3,
		TLS12OnlyShare: 1.0 / 3, Exposed: 2, Remediated: 1, MeanTimeToRemediate: 5400, Unmanaged: 1,
		Grades: map[string]int{"A": 2, "F": 1}, ByEncryption: map[string]int{"implicit-tls": 3, "none": 1}}
}

// TestHTMLEncryptionKPIs: the page shows the scanned endpoints' KPIs
// when the report has them, says none were scanned when there are none,
// and has no such section when the server does not scan.
func TestHTMLEncryptionKPIs(t *testing.T) {
	t.Parallel()
	rep := tReport()
	rep.Encryption = tEncryption()
	doc, err := html.Parse(bytes.NewReader(render(t, rep)))
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	walk(doc, func(n *html.Node) {
		if n.Data != "table" || attr(n, "id") != "encryption-kpis" {
			return
		}
		walk(n, func(tr *html.Node) {
			if tr.Data != "tr" {
				return
			}
			var cells []string
			for c := tr.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode {
					cells = append(cells, text(c))
				}
			}
			rows = append(rows, cells)
		})
	})
	want := [][]string{
		{"Indicator", "Value", "Based on"},
		{"Scanned endpoints", "4", "endpoints the scans know, not counting 1 gone"},
		{"Encrypted endpoints", "75.0%", "3 of 4 endpoints (implicit TLS or mandatory STARTTLS)"},
		{"TLS 1.2+ only", "33.3%", "1 of 3 endpoints whose versions were all tried"},
		{"Strong ciphers only", "n/a", "0 of 0 endpoints whose suites were enumerated"},
		{"Plaintext or weak now", "2", "endpoints to remediate"},
		{"Mean time to remediate", "1h30m0s", "1 plaintext or weak endpoint remediated"},
		{"Unmanaged certificates", "1", "served, found only by scanning (source discovered)"},
		{"Grades", "A 2, F 1", "graded endpoints"},
		{"By encryption", "implicit-tls 3, starttls 0, optional 0, none 1, unknown 0", "endpoints"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("encryption KPI table:\n%q\nwant\n%q", rows, want)
	}

	rep.Encryption = &apitypes.ScanKPIs{}
	if page := render(t, rep); !bytes.Contains(page, []byte("Encryption KPIs")) || !bytes.Contains(page, []byte("No endpoint scanned yet")) ||
		bytes.Contains(page, []byte(`id="encryption-kpis"`)) {
		t.Error("a server that scanned nothing yet: want the section saying so, without a table")
	}
	rep.Encryption = nil
	if page := render(t, rep); bytes.Contains(page, []byte("Encryption KPIs")) {
		t.Error("a server without scans: the page has an encryption section")
	}
}

// TestCSVEncryptionKPIs: the KPIs follow the certificates as a block of
// their own, after an empty line, every row as wide as a certificate's,
// so a strict reader reads the whole file; with no scans, or nothing
// scanned, there is no block.
func TestCSVEncryptionKPIs(t *testing.T) {
	t.Parallel()
	rep := tReport()
	rep.Encryption = tEncryption()
	var b bytes.Buffer
	if err := report.WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\n\nencryption_kpi,value,based_on,") {
		t.Errorf("the block is not set apart by an empty line and its header:\n%s", b.String())
	}
	recs, err := csv.NewReader(bytes.NewReader(b.Bytes())).ReadAll() // FieldsPerRecord 0: every record as wide as the first
	if err != nil {
		t.Fatalf("a strict reader: %v", err)
	}
	if len(recs) != 4+1+10-1 {
		t.Fatalf("%d records, want the header, 3 certificates, the block's header and 9 KPIs", len(recs))
	}
	if recs[3][0] != "non_compliant" || strings.Join(recs[4][:3], ",") != "encryption_kpi,value,based_on" {
		t.Errorf("the certificates end at %q, the block starts at %q", recs[3][:2], recs[4][:3])
	}
	kpis := map[string][]string{}
	for _, r := range recs[5:] {
		kpis[r[0]] = r[1:3]
		if strings.Join(r[3:], "") != "" {
			t.Errorf("KPI row %q fills the certificates' columns", r)
		}
	}
	for name, want := range map[string]string{"Scanned endpoints": "4", "Encrypted endpoints": "75.0%", "TLS 1.2+ only": "33.3%",
		"Strong ciphers only": "n/a", "Mean time to remediate": "1h30m0s", "Grades": "A 2, F 1"} {
		if got := kpis[name]; len(got) == 0 || got[0] != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	for _, k := range []*apitypes.ScanKPIs{nil, {}} {
		rep.Encryption = k
		b.Reset()
		if err := report.WriteCSV(&b, rep); err != nil || strings.Contains(b.String(), "encryption_kpi") || strings.Contains(b.String(), "\n\n") {
			t.Errorf("KPIs %+v (no scans, or nothing scanned): %v\n%s", k, err, b.String())
		}
	}
}
