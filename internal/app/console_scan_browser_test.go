package app

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleEndpointsInChromium scans two loopback TLS servers with the
// endpoints page's Scan now in a real browser (its form's POST, with the
// browser's Origin and the CSRF token, under the console's CSP), then
// checks the list renders each endpoint's grade (T, self-signed, with
// its reason on hover) and served-certificate status (unmanaged), the
// peer's markup as text, and opens an endpoint's page from its link. Both
// views pass the accessibility checks every console view does (keyboard,
// contrast in light and dark mode, no overflow at phone width), and no
// page may log an error. With CERTWRIGHT_SCREENSHOTS=DIR it writes
// screenshots there.
func TestConsoleEndpointsInChromium(t *testing.T) {
	t.Parallel()
	in, plain, evil := tScanInstance(t)
	b := &tA11yTab{tTab: tChromiumTab(t, in)}
	b.view = "endpoints"
	b.step("sign in", chromedp.Navigate(in.l.HTTPSURL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), in.token), chromedp.Submit(chromedp.CSS("form.login")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")))
	b.step("open endpoints", chromedp.Click(chromedp.CSS(`nav a[href="/endpoints"]`)), chromedp.WaitVisible(chromedp.CSS(`form[action="/endpoints/scan"]`)))
	b.step("scan now", chromedp.SendKeys(chromedp.CSS(`textarea[name="targets"]`), plain.addr+"\n"+evil.addr),
		chromedp.Click(chromedp.CSS(`form[action="/endpoints/scan"] button`)), chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	if s := b.text(".notice.ok"); !strings.Contains(s, "2 targets scanned, 2 reachable") {
		t.Errorf("after Scan now, the page says %q", s)
	}
	rows := b.text("table.endpoints")
	for _, want := range []string{plain.addr, evil.addr, "TLS1.3", "unmanaged", "CN=console.internal.test", `\<img src=x onerror=alert(1)\>`} {
		if !strings.Contains(rows, want) {
			t.Errorf("the endpoints table lacks %q: %q", want, rows)
		}
	}
	grades := tEval[[]string](b, "grades", `[...document.querySelectorAll("table.endpoints .grade.bad")].map(e => e.textContent)`)
	title := tEval[string](b, "a grade's title", `document.querySelector("table.endpoints .grade").title`)
	if len(grades) != 2 || grades[0] != "T" || grades[1] != "T" {
		t.Errorf("grades shown %q, want T (bad) for both self-signed endpoints", grades)
	}
	if !strings.Contains(title, "self-signed") {
		t.Errorf("the grade's reasons on hover: %q", title)
	}
	if injected := tEval[int](b, "injected markup", `document.querySelectorAll("main img, main script").length`); injected != 0 {
		t.Errorf("the peer's subject became %d elements", injected)
	}
	b.shot("endpoints")
	b.keyboard()
	b.static()

	b.view = "endpoint"
	b.step("open an endpoint", chromedp.Navigate(in.l.HTTPSURL+"/endpoints"), chromedp.WaitVisible(chromedp.CSS("table.endpoints")),
		chromedp.Click(chromedp.CSS(`table.endpoints a[href="/endpoints/`+evil.addr+`"]`)), chromedp.WaitVisible(chromedp.CSS("#history")))
	if s := b.text("main"); !strings.Contains(s, "Grade reasons") || !strings.Contains(s, "self-signed") || !strings.Contains(s, "found weak: needs remediation") ||
		!strings.Contains(s, evil.addr+" (this one)") {
		t.Errorf("the endpoint page says %q", s)
	}
	b.shot("endpoint")
	b.keyboard()
	b.static()
	if p := b.problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
