package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestConsoleESTInChromium opens the EST views in a real browser after a
// device enrolled with a one-time secret: the provisioner list, its page
// with the enrolled certificate and the used secret, a new secret created
// with the form (shown once, then usable by a device), a disable (ticking
// the confirmation) and an enable. No page may log an error (a CSP
// violation, a blocked resource). With CERTWRIGHT_SCREENSHOTS=DIR it
// writes a screenshot of each view there.
func TestConsoleESTInChromium(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	tESTFleetDevice(t, in)
	tab := tChromiumTab(t, in)
	problems, step, text, shot := tab.problems, tab.step, tab.text, tab.shot
	disabled := func() bool {
		t.Helper()
		var p apitypes.ESTProvisioner
		in.must(http.StatusOK, "GET", "/api/v1/est/provisioners/fleet", nil, &p)
		return p.Disabled
	}

	step("sign in", chromedp.Navigate(in.l.HTTPSURL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), in.token), chromedp.Submit(chromedp.CSS("form.login")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")))
	step("open the EST view", chromedp.Click(chromedp.CSS(`nav a[href="/est-provisioners"]`)), chromedp.WaitVisible(chromedp.CSS("table")))
	if s := text("table"); !strings.Contains(s, "fleet") || !strings.Contains(s, "/.well-known/est/fleet/") {
		t.Errorf("the EST list shows %q", s)
	}
	shot("est")
	step("open the provisioner", chromedp.Click(chromedp.CSS(`table a[href="/est-provisioners/fleet"]`)),
		chromedp.WaitVisible(chromedp.CSS(`section[aria-labelledby="secrets"] table`)))
	if s := text(`section[aria-labelledby="certificates"]`); !strings.Contains(s, "dev-0001.devices.example.com") {
		t.Errorf("the certificates show %q", s)
	}
	if s := text(`section[aria-labelledby="secrets"]`); !strings.Contains(s, "used") || !strings.Contains(s, "unused") {
		t.Errorf("the secrets show %q", s)
	}
	shot("est-provisioner")
	const id = "dev-0003.devices.example.com"
	step("create a secret", chromedp.SendKeys(chromedp.CSS(`form[action$="/secrets"] input[name="identity"]`), id),
		chromedp.Click(chromedp.CSS(`form[action$="/secrets"] button`)), chromedp.WaitVisible(chromedp.CSS("#newsecret")))
	secret := text("#newsecret")
	tESTEnrol(t, in, id, secret)
	shot("est-secret")
	step("disable it", chromedp.Click(chromedp.CSS(`form[action$="/disable"] input[name="confirm"]`)),
		chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`)), chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	if s := text(".notice.ok"); !strings.Contains(s, "disabled") || !disabled() {
		t.Errorf("after disabling, the page says %q and the API says disabled=%v", s, disabled())
	}
	if strings.Contains(text("main"), secret) {
		t.Error("the page after the next request shows the secret again")
	}
	step("enable it", chromedp.Click(chromedp.CSS(`form[action$="/enable"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/disable"]`)))
	if disabled() {
		t.Error("after enabling in the browser, the API says the provisioner is disabled")
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
