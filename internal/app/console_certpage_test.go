package app

import (
	"crypto/elliptic"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-acme/lego/v4/certificate"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tPage is a console page's body, unescaped, for a test that looks for
// text in it.
func tPage(t *testing.T, b *tBrowser, path string) string {
	t.Helper()
	r := b.do("GET", path, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, tTrim(r.body))
	}
	return html.UnescapeString(string(r.body))
}

// tWant checks that page has each of wants (present) or none of them.
func tWant(t *testing.T, page, what string, present bool, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if strings.Contains(page, w) != present {
			t.Errorf("%s: the page has %q: %v, want %v", what, w, !present, present)
		}
	}
}

// TestConsoleCertificatePage: the certificate page shows the certificate's
// chain (its CAs, linked to /cas) with a chain download equal to the API's,
// the renewal window the ACME renewal-info endpoint gives, its alerts with
// their deliveries, the agents' reports, and its audit events (linked to
// the audit log filtered by target); each section says when it is empty.
func TestConsoleCertificatePage(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			ctx := t.Context()
			issued := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "seen.example.internal"))
			quiet := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "quiet.example.internal"))
			in.must(http.StatusAccepted, "POST", "/api/v1/alerts/deploy-failed", apitypes.DeployFailure{
				Entry: "nginx-front", Host: "web-7.example.internal", Serial: issued.Serial, Error: "reload failed: exit status 1",
			}, nil)
			c, err := in.app.store.GetCertificate(ctx, issued.Serial)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			if _, err := in.app.store.RaiseAlert(ctx, &lifecycle.Alert{
				ID: "alert-expiring-1", Kind: lifecycle.AlertExpiring, Severity: lifecycle.SeverityWarning,
				Subject: c.Serial, Threshold: "30d", Summary: "seen.example.internal expires in 30 days",
				Cert: &lifecycle.CertRef{Serial: c.Serial, CAID: c.CAID, SANs: c.SANs, NotAfter: c.NotAfter}, CreatedAt: now.Add(-time.Hour),
			}, []string{"ops-chat"}); err != nil {
				t.Fatal(err)
			}

			b := in.browser(t)
			b.signIn(in.token)
			path := "/certificates/" + issued.Serial
			page := tPage(t, b, path)

			cas, err := in.app.cas.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			issuing := ""
			for _, a := range cas {
				if a.ID == c.CAID {
					issuing = a.Name
				}
			}
			tWant(t, page, "chain", true, `href="/cas#ca-`+issuing+`"`, "root</span>", `href="`+path+`/chain"`)
			if cp := b.do("GET", "/cas", nil); !strings.Contains(string(cp.body), `id="ca-`+issuing+`"`) {
				t.Errorf("the CAs page has no anchor for CA %s", issuing)
			}
			dl := b.do("GET", path+"/chain", nil)
			api := in.call("GET", "/api/v1/certificates/"+issued.Serial+"/pem?chain=true", nil)
			if dl.status != http.StatusOK || string(dl.body) != string(api.body) || strings.Count(string(dl.body), "BEGIN CERTIFICATE") < 2 {
				t.Errorf("chain download: %d, %d certificates, same as the API's: %v", dl.status, strings.Count(string(dl.body), "BEGIN CERTIFICATE"), string(dl.body) == string(api.body))
			}

			// The window the ACME renewal-info endpoint computes.
			id, err := certificate.MakeARICertID(tPEMCert(t, issued.CertificatePEM))
			if err != nil {
				t.Fatal(err)
			}
			ari, err := in.app.acme.RenewalInfo(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			const exact = "2006-01-02 15:04:05 UTC"
			tWant(t, page, "renewal window", true, "Suggested window", ari.Start.Format(exact), ari.End.Format(exact), "no, not before the window starts")

			tWant(t, page, "alerts", true, "Deployment of seen.example.internal failed", "seen.example.internal expires in 30 days", "ops-chat", "30d")
			if strings.Index(page, "Deployment of seen.example.internal failed") > strings.Index(page, "expires in 30 days") {
				t.Error("alerts are not newest first")
			}
			tWant(t, page, "deployments", true, "web-7.example.internal", "nginx-front", "reload failed: exit status 1")
			tWant(t, page, "audit events", true, "certificate.issue", "alert.deploy_failed", `href="/audit?target=`+issued.Serial+`"`)
			audit := tPage(t, b, "/audit?target="+issued.Serial)
			tWant(t, audit, "audit log by target", true, "certificate.issue", "alert.deploy_failed", "whose target is "+issued.Serial)
			tWant(t, audit, "audit log by target", false, "console.sign_in")

			empty := tPage(t, b, "/certificates/"+quiet.Serial)
			tWant(t, empty, "empty sections", true, "No alert has been raised for this certificate.",
				"No agent has reported a failed deployment of this certificate.", "certificate.issue")
			tWant(t, empty, "empty sections", false, "web-7.example.internal", "ops-chat")
		})
	}
}

// TestConsoleCertificateRenew: Renew now moves an agent's certificate's
// renewal window to now through the API's renew-now call (audited as
// acme.renew_now, found among the certificate's events), and Renew
// renews a certificate whose key the server holds, through the API's
// renew; a viewer without the permission, or whose permission's scope
// does not cover the certificate, gets neither button and is refused.
func TestConsoleCertificateRenew(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			var agentCert apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "host.example.internal")), Profile: "web_server", Tags: []string{"agent"},
			}, &agentCert)
			// Server-held keys go to machine principals only.
			human := in.token
			in.tUseMachineAdmin(t)
			held := tIssueAuto(t, in, "held.internal.test", 30)
			var heldWeb apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
				Profile: "web_server", DNSNames: []string{"heldweb.example.internal"}, AutoRenew: true}, &heldWeb)
			in.token = human
			agentPage, heldPage := "/certificates/"+agentCert.Serial, "/certificates/"+held.Serial
			renewNow, renew := `action="`+agentPage+`/renew-now"`, `action="`+heldPage+`/renew"`

			// A viewer (cert:read only) sees neither button and is refused.
			var viewer apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "vera", Kind: "human", Role: "viewer", Token: true}, &viewer)
			vb := in.browser(t)
			vb.signIn(viewer.Token.Token)
			tWant(t, tPage(t, vb, agentPage), "viewer", false, "/renew-now", "Audit events</h2>\n<div")
			tWant(t, tPage(t, vb, agentPage), "viewer", true, "shown to those who may read the audit log")
			tWant(t, tPage(t, vb, heldPage), "viewer", false, `/renew"`)
			vcsrf := vb.csrf()
			if r := vb.do("POST", agentPage+"/renew-now", url.Values{"csrf": {vcsrf}}); r.status != http.StatusForbidden {
				t.Errorf("viewer's renew now: %d, want 403", r.status)
			}
			if r := vb.do("POST", heldPage+"/renew", url.Values{"csrf": {vcsrf}}); r.status != http.StatusForbidden {
				t.Errorf("viewer's renew: %d, want 403", r.status)
			}

			// Reading everything, but an admin only of internal_service:
			// the web_server agent certificate's Renew now is not theirs.
			var split apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "svc-ops", Kind: "human", Role: "viewer", Token: true}, &split)
			in.must(http.StatusCreated, "POST", "/api/v1/bindings", apitypes.CreateBindingRequest{
				Principal: "svc-ops", Role: "admin", Scope: apitypes.Scope{Profiles: []string{"internal_service"}}}, nil)
			sb := in.browser(t)
			sb.signIn(split.Token.Token)
			tWant(t, tPage(t, sb, agentPage), "scoped admin, out of scope", false, "/renew-now")
			if r := sb.do("POST", agentPage+"/renew-now", url.Values{"csrf": {sb.csrf()}}); r.status != http.StatusForbidden ||
				!strings.Contains(string(r.body), "only within its scope") {
				t.Errorf("renew now out of scope: %d %s", r.status, tTrim(r.body))
			}
			if c, _ := in.app.store.GetCertificate(t.Context(), agentCert.Serial); c == nil || !c.RenewNowAt.IsZero() {
				t.Fatal("a refused renew now moved the window")
			}
			// Out of its own scope too: a held key under web_server.
			heldWebPage := "/certificates/" + heldWeb.Serial
			tWant(t, tPage(t, sb, heldWebPage), "scoped admin, out of scope", false, `/renew"`)
			if r := sb.do("POST", heldWebPage+"/renew", url.Values{"csrf": {sb.csrf()}}); r.status != http.StatusForbidden {
				t.Errorf("renew out of scope: %d %s", r.status, tTrim(r.body))
			}
			tWant(t, tPage(t, sb, heldPage), "scoped admin, in scope", true, renew)

			b := in.browser(t)
			b.signIn(in.token)
			page := tPage(t, b, agentPage)
			tWant(t, page, "admin", true, renewNow)
			tWant(t, page, "admin on a certificate without a server-held key", false, `/renew"`)
			if r := b.do("POST", agentPage+"/renew-now", url.Values{}); r.status != http.StatusForbidden {
				t.Errorf("renew now without the CSRF token: %d, want 403", r.status)
			}
			csrf := b.csrf()
			r := b.do("POST", agentPage+"/renew-now", url.Values{"csrf": {csrf}})
			if r.status != http.StatusSeeOther || r.header.Get("Location") != agentPage+"?renew_now=1" {
				t.Fatalf("renew now: %d to %q: %s", r.status, r.header.Get("Location"), tTrim(r.body))
			}
			after := tPage(t, b, agentPage+"?renew_now=1")
			id, err := certificate.MakeARICertID(tPEMCert(t, agentCert.CertificatePEM))
			if err != nil {
				t.Fatal(err)
			}
			ari, err := in.app.acme.RenewalInfo(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			const exact = "2006-01-02 15:04:05 UTC"
			tWant(t, after, "after renew now", true, "renewal was asked for", "acme.renew_now", ari.End.Format(exact), "Its renewal window now ends now")

			page = tPage(t, b, heldPage)
			tWant(t, page, "admin on a server-held key", true, renew)
			r = b.do("POST", heldPage+"/renew", url.Values{"csrf": {csrf}})
			loc := r.header.Get("Location")
			if r.status != http.StatusSeeOther || !strings.HasSuffix(loc, "?renewed=1") || loc == heldPage+"?renewed=1" {
				t.Fatalf("renew: %d to %q: %s", r.status, loc, tTrim(r.body))
			}
			next := tPage(t, b, loc)
			tWant(t, next, "the successor", true, "Renewed: this is the new certificate", `href="`+heldPage+`"`)
			old := tPage(t, b, heldPage)
			tWant(t, old, "the renewed one", true, "Renewed by")
			tWant(t, old, "the renewed one", false, renew)
			// Renewing it again is a conflict, said on the page.
			if r := b.do("POST", heldPage+"/renew", url.Values{"csrf": {csrf}}); r.status != http.StatusConflict || !strings.Contains(string(r.body), "already renewed") {
				t.Errorf("renewing twice: %d %s", r.status, tTrim(r.body))
			}
		})
	}
}

// TestConsoleCertificateInChromium opens a certificate the server holds
// the key of, which an agent failed to deploy and an alert concerns, in a
// real browser: every section shows, Renew now and then Renew work from
// their buttons, and no page logs an error (a CSP violation, a blocked
// resource). With CERTWRIGHT_SCREENSHOTS=DIR it writes the page's
// screenshot (certificate.png) there.
func TestConsoleCertificateInChromium(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	human := in.token
	in.tUseMachineAdmin(t)
	var held apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
		Profile: "internal_service", DNSNames: []string{"api.internal.test", "api-2.internal.test"}, ValidityDays: 30,
		AutoRenew: true, Owner: "team-b", Tags: []string{"agent", "payments"},
	}, &held)
	in.must(http.StatusAccepted, "POST", "/api/v1/alerts/deploy-failed", apitypes.DeployFailure{
		Entry: "nginx-front", Host: "web-7.internal.test", Serial: held.Serial, Error: "reload failed: exit status 1",
	}, nil)
	in.token = human
	c, err := in.app.store.GetCertificate(t.Context(), held.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.app.store.RaiseAlert(t.Context(), &lifecycle.Alert{
		ID: "alert-expiring-1", Kind: lifecycle.AlertExpiring, Severity: lifecycle.SeverityWarning,
		Subject: c.Serial, Threshold: "30d", Summary: "api.internal.test expires in 30 days",
		Cert: &lifecycle.CertRef{Serial: c.Serial, CAID: c.CAID, SANs: c.SANs, NotAfter: c.NotAfter}, CreatedAt: time.Now().Add(-time.Hour),
	}, []string{"ops-chat"}); err != nil {
		t.Fatal(err)
	}

	tab := tChromiumTab(t, in)
	problems, step, text, shot := tab.problems, tab.step, tab.text, tab.shot
	page := in.l.HTTPSURL + "/certificates/" + held.Serial
	step("sign in", chromedp.Navigate(in.l.HTTPSURL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), in.token), chromedp.Submit(chromedp.CSS("form.login")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")))
	step("open the certificate", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#events")))
	main := text("main")
	for _, want := range []string{"Chain", "issuing", "Suggested window", "api.internal.test expires in 30 days", "ops-chat",
		"web-7.internal.test", "nginx-front", "certificate.issue", "alert.deploy_failed", "Renew now", "Download chain"} {
		if !strings.Contains(main, want) {
			t.Errorf("the certificate page lacks %q", want)
		}
	}
	shot("certificate")
	step("renew now", chromedp.Click(chromedp.CSS(`form[action$="/renew-now"] button`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if s := text(".notice"); !strings.Contains(s, "Its renewal window now ends now") {
		t.Errorf("after Renew now, the page says %q", s)
	}
	// The page before the click has a notice too: wait for the new
	// certificate's page, the only one linking the old as the one it renews.
	step("renew", chromedp.Click(chromedp.CSS(`form[action$="/renew"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`dd a[href="/certificates/`+held.Serial+`"]`)))
	if s := text("main"); !strings.Contains(s, "Renewed: this is the new certificate") || !strings.Contains(s, held.Serial) {
		t.Errorf("after Renew, the page says %q", s)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
