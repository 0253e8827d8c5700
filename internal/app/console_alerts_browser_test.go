package app

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleAlertsInChromium opens the alerts and jobs page in a real
// browser from the nav, filters it by kind, and runs the delivery job
// with Run now: the retried webhook then shows delivered. No page may log
// an error (a CSP violation, a blocked resource). With
// CERTWRIGHT_SCREENSHOTS=DIR it writes a screenshot of the page there.
func TestConsoleAlertsInChromium(t *testing.T) {
	t.Parallel()
	in, clk, _ := tAlertsInstance(t, "")
	tab := tChromiumTab(t, in)
	problems, step, text, shot := tab.problems, tab.step, tab.text, tab.shot
	step("sign in", chromedp.Navigate(in.l.HTTPSURL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), in.token), chromedp.Submit(chromedp.CSS("form.login")),
		chromedp.WaitVisible(chromedp.CSS("ul.tiles")))
	step("open alerts and jobs", chromedp.Click(chromedp.CSS(`nav a[href="/alerts"]`)), chromedp.WaitVisible(chromedp.CSS("table.alerts")))
	alerts := text("table.alerts")
	for _, want := range []string{"short.internal.test", "ops-mail", "delivered", "ops-hook", "retrying", "noisy-hook", "given up", `<script>alert(\"hook\")`} {
		if !strings.Contains(alerts, want) {
			t.Errorf("the alerts table lacks %q: %q", want, alerts)
		}
	}
	shot("alerts")
	step("filter by kind", chromedp.SetValue(chromedp.CSS(`select[name="kind"]`), "expired"),
		chromedp.Submit(chromedp.CSS("form.filters")), chromedp.WaitVisible(chromedp.CSS("#jobs")))
	if s := text("main"); strings.Contains(s, "short.internal.test") || !strings.Contains(s, "No alert matches the filter.") {
		t.Errorf("filtered by kind expired, the page says %q", s)
	}
	clk.Advance(time.Minute) // the webhook's retry is due
	step("run the delivery now", chromedp.Click(chromedp.CSS(`form[action="/jobs/alert-delivery/run"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	if s := text(".notice.ok"); !strings.Contains(s, "Job alert-delivery ran:") {
		t.Errorf("after Run now, the page says %q", s)
	}
	if s := text("table.alerts"); strings.Contains(s, "retrying") {
		t.Errorf("after Run now, a delivery still retries: %q", s)
	}
	shot("alerts-ran")
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
