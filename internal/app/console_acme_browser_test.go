package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestConsoleACMEComplianceInChromium opens the ACME and compliance views
// in a real browser after lego used a provisioner and a weak certificate
// was imported: the provisioner list, its page with the account, order
// and failed validation, a disable (ticking the confirmation) and an
// enable, then the compliance page, its summary rebuilt, with the weak
// certificate. No page may
// log an error (a CSP violation, a blocked resource). With
// CERTWRIGHT_SCREENSHOTS=DIR it writes a screenshot of each view there.
func TestConsoleACMEComplianceInChromium(t *testing.T) {
	t.Parallel()
	tNeedOpenSSL(t)
	e := tLegoNewEnv(t, "")
	_, bad, _, _ := tACMEActivity(t, e)
	weak := e.tImport(http.StatusCreated, apitypes.ImportRequest{Files: []apitypes.ImportFile{
		{Name: "weak.pem", PEM: tLegacyPEM(t, "weak.example.com", "sha256", 1024, 30)}}}).Imported[0]

	tab := tChromiumTab(t, e.tInstance)
	problems, step, text, shot := tab.problems, tab.step, tab.text, tab.shot
	provisioner := func() apitypes.Provisioner {
		t.Helper()
		var p apitypes.Provisioner
		e.must(http.StatusOK, "GET", "/api/v1/acme/provisioners/shop", nil, &p)
		return p
	}

	step("sign in", chromedp.Navigate(e.l.HTTPSURL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.token), chromedp.Submit(chromedp.CSS("form.login")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")))
	step("open the ACME view", chromedp.Click(chromedp.CSS(`nav a[href="/acme-provisioners"]`)), chromedp.WaitVisible(chromedp.CSS("table")))
	if s := text("table"); !strings.Contains(s, "shop") || !strings.Contains(s, e.directoryURL("shop")) {
		t.Errorf("the ACME list shows %q", s)
	}
	shot("acme")
	step("open the provisioner", chromedp.Click(chromedp.CSS(`table a[href="/acme-provisioners/shop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`section[aria-labelledby="failures"] table`)))
	if s := text(`section[aria-labelledby="failures"]`); !strings.Contains(s, "bad.shop.acme.test") || !strings.Contains(s, bad) {
		t.Errorf("the failed validations show %q", s)
	}
	if s := text(`section[aria-labelledby="orders"]`); !strings.Contains(s, "www.shop.acme.test") {
		t.Errorf("the orders show %q", s)
	}
	shot("acme-provisioner")
	step("disable it", chromedp.Click(chromedp.CSS(`form[action$="/disable"] input[name="confirm"]`)),
		chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`)), chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	if s := text(".notice.ok"); !strings.Contains(s, "disabled") || !provisioner().Disabled {
		t.Errorf("after disabling, the page says %q and the API says disabled=%v", s, provisioner().Disabled)
	}
	step("enable it", chromedp.Click(chromedp.CSS(`form[action$="/enable"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/disable"]`)))
	if provisioner().Disabled {
		t.Error("after enabling in the browser, the API says the provisioner is disabled")
	}
	// The summary of the job's run at start may predate the import:
	// rebuild it from the page.
	step("open the compliance view and rebuild its summary", chromedp.Click(chromedp.CSS(`nav a[href="/compliance"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/compliance/rebuild"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/compliance/rebuild"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`section[aria-labelledby="noncompliant"] table`)))
	if s := text(`section[aria-labelledby="noncompliant"]`); !strings.Contains(s, "weak.example.com") || !strings.Contains(s, weak.Serial) || !strings.Contains(s, "key") {
		t.Errorf("the non-compliant certificates show %q", s)
	}
	shot("compliance")
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
