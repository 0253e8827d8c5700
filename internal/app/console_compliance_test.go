package app

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/web/apitypes"
	"github.com/certwright/certwright/internal/web/report"
)

// tPct is a rate as the compliance page and the HTML report show it.
func tPct(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

// TestConsoleCompliance: on both backends, the page shows the newest
// summary its job built, and "Rebuild" (ca:manage) builds it anew; then
// an imported RSA-1024 certificate is listed as non-compliant with the key
// rule and a link to its page, a compliant one is not; the counts and
// KPIs are the API report's; the overview's non-compliant and weak-key
// tiles say the same; the HTML report downloads as an attachment holding
// it. An auditor (report:read, no ca:manage) sees no rebuild button and is
// refused one. A principal without report:read, or with it only within a
// scope (as the API refuses), gets 403 and no nav link.
func TestConsoleCompliance(t *testing.T) {
	t.Parallel()
	tNeedOpenSSL(t)
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			weak := in.tImport(http.StatusCreated, apitypes.ImportRequest{Files: []apitypes.ImportFile{
				{Name: "weak.pem", PEM: tLegacyPEM(t, "weak.example.com", "sha256", 1024, 30)}}}).Imported[0]
			good := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "good.example.internal"))
			now := time.Now()
			for i, a := range []inventory.RenewalAttempt{
				{Serial: "01", NewSerial: "11", Kind: inventory.RenewalAuto, OK: true, DaysLeft: 25},
				{Serial: "02", NewSerial: "12", Kind: inventory.RenewalManual, OK: true, DaysLeft: 0.5},
				{Serial: "03", Kind: inventory.RenewalAuto, OK: false, Error: "CA disabled", DaysLeft: 2},
			} {
				a.At = now.Add(-time.Duration(i+1) * time.Hour)
				if err := in.app.store.RecordRenewalAttempt(context.Background(), a); err != nil {
					t.Fatal(err)
				}
			}

			var rep apitypes.ComplianceReport
			in.must(http.StatusOK, "GET", "/api/v1/reports/compliance", nil, &rep)
			b := in.browser(t)
			b.signIn(in.token)
			// The summary the job built at start (or none yet, or one
			// from during the seeding) and a button to rebuild it.
			r := b.do("GET", "/compliance", nil)
			if r.status != http.StatusOK || !strings.Contains(string(r.body), `action="/compliance/rebuild"`) {
				t.Fatalf("compliance page before a rebuild: %d, want 200 with the rebuild button: %s", r.status, tTrim(r.body))
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				r = b.do("POST", "/compliance/rebuild", url.Values{"csrf": {b.csrf()}})
				if r.status != http.StatusConflict || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond) // the run at start still holds the job
			}
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/compliance?rebuilt=1" {
				t.Fatalf("rebuild: %d %s %s", r.status, r.header.Get("Location"), tTrim(r.body))
			}
			if !slices.ContainsFunc(tAuditEvents(t, in, 0), func(ev audit.Event) bool {
				return ev.Action == "job.run" && ev.Target == ComplianceJob && ev.Principal == "admin"
			}) {
				t.Error("the rebuild is not audited as admin's run of the job")
			}
			r = b.do("GET", "/compliance?rebuilt=1", nil)
			page := string(r.body)
			if r.status != http.StatusOK || !strings.Contains(page, `href="/compliance" aria-current="page">Compliance</a>`) || !strings.Contains(page, "rebuilt just now") {
				t.Fatalf("compliance page: %d %s", r.status, tTrim(r.body))
			}
			list := tSection(page, "noncompliant")
			if !strings.Contains(list, `href="/certificates/`+weak.Serial+`"`) || !strings.Contains(list, "<strong>key</strong>") ||
				!strings.Contains(list, "1024-bit key is below the 2048-bit minimum") || !strings.Contains(list, "weak.example.com") {
				t.Errorf("the RSA-1024 certificate is not listed with its rule: %s", list)
			}
			if strings.Contains(list, good.Serial) {
				t.Error("a compliant certificate is listed as non-compliant")
			}
			if got := strings.Count(list, `<a href="/certificates/`); got != rep.Summary.NonCompliant {
				t.Errorf("%d non-compliant rows, the API report counts %d", got, rep.Summary.NonCompliant)
			}
			summary, kpis := tSection(page, "summary"), tSection(page, "kpis")
			for _, want := range []string{
				fmt.Sprintf(`<span class="n">%d</span> reported on`, rep.Summary.Total),
				fmt.Sprintf(`<span class="n">%d</span> compliant`, rep.Summary.Compliant),
				fmt.Sprintf(`<span class="n">%d</span> non-compliant`, rep.Summary.NonCompliant),
				`<span class="n">1</span> with a weak key`,
			} {
				if !strings.Contains(summary, want) {
					t.Errorf("summary lacks %q: %s", want, summary)
				}
			}
			ov := tSection(string(b.do("GET", "/", nil).body), "risk")
			for _, want := range []string{
				fmt.Sprintf(`<span class="n">%d</span> non-compliant</a>`, rep.Summary.NonCompliant),
				`<span class="n">1</span> with a weak key</a>`, `href="/compliance#weak"`, `href="/compliance#noncompliant"`,
			} {
				if !strings.Contains(ov, want) {
					t.Errorf("overview lacks %q: %s", want, ov)
				}
			}
			k := rep.KPIs
			if k.RenewalAttempts != 3 || k.RenewalsSucceeded != 2 || k.NearMisses != 1 {
				t.Fatalf("the API's KPIs %+v do not count the recorded renewals", k)
			}
			for _, want := range []string{
				"<td>" + tPct(k.RenewalSuccessRate) + "</td>", "<td>" + tPct(k.AutomationRate) + "</td>",
				"<td>" + tPct(k.AutoManagedShare) + "</td>",
				fmt.Sprintf("%d of %d current certificates", k.AutoManaged, k.CurrentCertificates),
				fmt.Sprintf("<td>Expiry incidents</td><td>%d</td>", k.ExpiryIncidents),
				fmt.Sprintf("<td>Near misses</td><td>%d</td>", k.NearMisses),
			} {
				if !strings.Contains(kpis, want) {
					t.Errorf("KPIs lack %q: %s", want, kpis)
				}
			}

			// The HTML report: the API's page, as a download (its inline
			// style sheet would be refused under the console's policy).
			dl := b.do("GET", "/compliance/report", nil)
			if dl.status != http.StatusOK || dl.header.Get("Content-Type") != report.ContentTypeHTML ||
				!strings.HasPrefix(dl.header.Get("Content-Disposition"), `attachment; filename="certwright-compliance-`) {
				t.Fatalf("report download: %d, type %q, disposition %q", dl.status, dl.header.Get("Content-Type"), dl.header.Get("Content-Disposition"))
			}
			if !strings.Contains(string(dl.body), weak.Serial) || !strings.Contains(string(dl.body), "Non-compliant") || !strings.Contains(page, `href="/compliance/report"`) {
				t.Error("the downloaded report does not show the non-compliant certificate, or the page does not link it")
			}

			// An auditor may read the summary but not run its job.
			var aud apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "ada", Kind: "human", Role: authz.RoleAuditor, Token: true}, &aud)
			ab := in.browser(t)
			ab.signIn(aud.Token.Token)
			if r := ab.do("GET", "/compliance", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), weak.Serial) ||
				strings.Contains(string(r.body), "/compliance/rebuild") {
				t.Errorf("auditor's compliance page: %d, want 200 with the summary and no rebuild button", r.status)
			}
			if r := ab.do("POST", "/compliance/rebuild", url.Values{"csrf": {ab.csrf()}}); r.status != http.StatusForbidden {
				t.Errorf("an auditor's rebuild: %d, want 403", r.status)
			}

			// A viewer has no report:read; an auditor scoped to a CA has it
			// only within the scope, which the whole-inventory report is not.
			var viewer, scoped apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "val", Kind: "human", Role: authz.RoleViewer, Token: true}, &viewer)
			in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
				Name: "sam", Kind: "human", Role: authz.RoleAuditor, Scope: apitypes.Scope{CAs: []string{"issuing"}}, Token: true}, &scoped)
			for _, tok := range []string{viewer.Token.Token, scoped.Token.Token} {
				ob := in.browser(t)
				ob.signIn(tok)
				for _, p := range []string{"/compliance", "/compliance/report"} {
					if r := ob.do("GET", p, nil); r.status != http.StatusForbidden || strings.Contains(string(r.body), weak.Serial) {
						t.Errorf("GET %s without unscoped report:read: %d, want 403", p, r.status)
					}
				}
				if strings.Contains(string(ob.do("GET", "/", nil).body), `href="/compliance"`) {
					t.Error("the nav links the compliance page for a principal refused it")
				}
				if r := in.raw("GET", "/api/v1/reports/compliance", "Bearer "+tok, nil); r.status != http.StatusForbidden {
					t.Errorf("the API's report for the same principal: %d, want 403", r.status)
				}
			}
		})
	}
}
