package app

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify/notifytest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tHostileAnswer is what the hostile webhook answers: markup, and more
// text than the page shows.
const tHostileAnswer = `<script>alert("hook")</script><b>refused</b> `

// tAlertsInstance starts an instance on backend url and a fake clock whose
// alerts go to three real receivers on loopback: an SMTP server that takes
// them (ops-mail), a webhook that fails its first request with 503, so
// its delivery is retried (ops-hook), and a webhook that refuses every one
// with 400 and a reply full of markup, so its delivery is given up
// (noisy-hook). A certificate with 2 days left has raised its alert and
// one delivery round has run.
func tAlertsInstance(t *testing.T, url string) (*tInstance, *clock.Fake, apitypes.IssuedCertificate) {
	t.Helper()
	rc := tStartReceivers(t, notifytest.WebhookOptions{StatusFunc: notifytest.FailFirst(1, http.StatusServiceUnavailable)})
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, tHostileAnswer+strings.Repeat("x", 400), http.StatusBadRequest)
	}))
	t.Cleanup(hostile.Close)
	cfg := tConfig(t, url)
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	tInit(t, cfg, clk)
	tAlertConfig(t, cfg, rc)
	cfg.Alerts.Channels = append(cfg.Alerts.Channels, config.ChannelConfig{Name: "noisy-hook", Type: "webhook", URL: hostile.URL})
	cfg.Alerts.Default = []string{"noisy-hook", "ops-hook", "ops-mail"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in := tStart(t, cfg, clk)
	tRunJob(t, in, "expiry-check") // the start-up run may have set the cursor already
	cert := tSignDays(t, in, "internal_service", 2, "short.internal.test")
	tRunJob(t, in, "expiry-check")
	tRunJob(t, in, "alert-delivery")
	return in, clk, cert
}

// tCertAlert returns the expiring alert of serial as the API lists it.
func tCertAlert(t *testing.T, in *tInstance, serial string) apitypes.Alert {
	t.Helper()
	var list apitypes.AlertList
	in.must(http.StatusOK, "GET", "/api/v1/alerts", nil, &list)
	for _, a := range list.Alerts {
		if a.Serial == serial && a.Kind == string(lifecycle.AlertExpiring) {
			return a
		}
	}
	t.Fatalf("no expiring alert for %s in %+v", serial, list.Alerts)
	return apitypes.Alert{}
}

// tJob returns job name as the API lists it.
func tJob(t *testing.T, in *tInstance, name string) apitypes.Job {
	t.Helper()
	var list apitypes.JobList
	in.must(http.StatusOK, "GET", "/api/v1/jobs", nil, &list)
	for _, j := range list.Jobs {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no job %s in %+v", name, list.Jobs)
	return apitypes.Job{}
}

// tUndeliveredAlerts counts the alerts the API lists (up to 1,000) that
// are not delivered to every channel, or routed to none.
func tUndeliveredAlerts(t *testing.T, in *tInstance) int {
	t.Helper()
	var list apitypes.AlertList
	in.must(http.StatusOK, "GET", "/api/v1/alerts?limit=1000", nil, &list)
	n := 0
	for _, a := range list.Alerts {
		open := len(a.Deliveries) == 0
		for _, d := range a.Deliveries {
			open = open || d.Status != lifecycle.DeliverySent
		}
		if open {
			n++
		}
	}
	return n
}

// tDeliveryCell is the part of an alerts page that describes channel's
// delivery (up to the next channel's), or "".
func tDeliveryCell(page, channel string) string {
	_, rest, ok := strings.Cut(page, "<strong>"+channel+"</strong>")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, `<div class="delivery">`); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.Index(rest, "</td>"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// TestConsoleAlerts: the alerts page shows an alert with each channel's
// delivery as the API records it (delivered; retrying with its attempts
// and next attempt; given up, with the peer's reply escaped and cut), the
// undelivered count and the kind and undelivered filters (a bad one is a
// 400 saying what to fix); the jobs table lists the scheduled jobs. A
// viewer sees the same without a Run now button and is refused the run;
// a viewer whose cert:read is scoped is not shown the alerts, which cover
// every certificate. The admin's Run now runs the job (its last run and
// the alert's delivery change, through the API, and the run is audited),
// and an unknown job is a 404.
func TestConsoleAlerts(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in, clk, cert := tAlertsInstance(t, be.dbURL(t))
			al := tCertAlert(t, in, cert.Serial)
			states := map[string]string{}
			for _, d := range al.Deliveries {
				states[d.Channel] = d.Status
			}
			if states["ops-mail"] != lifecycle.DeliverySent || states["ops-hook"] != lifecycle.DeliveryPending || states["noisy-hook"] != lifecycle.DeliveryFailed {
				t.Fatalf("deliveries after one round: %+v", al.Deliveries)
			}

			admin := in.browser(t)
			admin.signIn(in.token)
			r := admin.do("GET", "/alerts", nil)
			page := string(r.body)
			if r.status != http.StatusOK || !strings.Contains(page, `<a href="/certificates/`+cert.Serial+`">short.internal.test</a>`) {
				t.Fatalf("alerts page: %d %s", r.status, tTrim(r.body))
			}
			if !strings.Contains(page, `href="/alerts" aria-current="page">Alerts &amp; jobs</a>`) {
				t.Error("the nav has no current Alerts & jobs link")
			}
			if c := tDeliveryCell(page, "ops-mail"); !strings.Contains(c, `<span class="status delivered">delivered</span>`) {
				t.Errorf("ops-mail delivery: %q", c)
			}
			var next time.Time
			for _, d := range al.Deliveries {
				if d.Channel == "ops-hook" {
					next = d.NextAttemptAt
				}
			}
			if c := tDeliveryCell(page, "ops-hook"); !strings.Contains(c, `<span class="status retrying">retrying</span>`) ||
				!strings.Contains(c, "1 attempt failed; next attempt <time") || !strings.Contains(c, `title="`+next.UTC().Format("2006-01-02 15:04:05")+` UTC"`) ||
				!strings.Contains(c, "503 Service Unavailable") {
				t.Errorf("ops-hook delivery (next attempt %v): %q", next, c)
			}
			c := tDeliveryCell(page, "noisy-hook")
			if !strings.Contains(c, `<span class="status failed">failed</span>`) || !strings.Contains(c, "after 1 attempt, given up") {
				t.Errorf("noisy-hook delivery: %q", c)
			}
			if !strings.Contains(c, `&lt;script&gt;alert(\&#34;hook\&#34;)&lt;/script&gt;&lt;b&gt;refused&lt;/b&gt;`) || !strings.Contains(c, "…") {
				t.Errorf("the hostile webhook's reply is not shown escaped and cut: %q", c)
			}
			if strings.Contains(page, "<script") || strings.Contains(page, "<b>refused") {
				t.Error("the hostile webhook's markup reaches the page unescaped")
			}
			// The undelivered count agrees with the API's records.
			undelivered := tUndeliveredAlerts(t, in)
			if undelivered == 0 || !strings.Contains(page, `<span class="n">`+strconv.Itoa(undelivered)+`</span> undelivered`) {
				t.Errorf("the page does not count the %d undelivered alerts: %s", undelivered, tTrim(r.body))
			}
			for _, j := range []string{"expiry-check", "alert-delivery", "renewal", "supersede", "rotation"} {
				if !strings.Contains(page, "<td><strong>"+j+"</strong></td>") || !strings.Contains(page, `action="/jobs/`+j+`/run"`) {
					t.Errorf("the jobs table lacks %s or its Run now", j)
				}
			}

			// Filters.
			for q, shown := range map[string]bool{"kind=expiring": true, "kind=expiring&undelivered=1": true, "kind=expired": false, "kind=ca_expiring&undelivered=1": false} {
				r := admin.do("GET", "/alerts?"+q, nil)
				if r.status != http.StatusOK || strings.Contains(string(r.body), "short.internal.test") != shown {
					t.Errorf("alerts?%s: %d, shows the alert %v, want %v", q, r.status, !shown, shown)
				}
			}
			if r := admin.do("GET", "/alerts?kind=bogus", nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "choose one of expiring, renewal_due") {
				t.Errorf("an unknown kind: %d %s", r.status, tTrim(r.body))
			}
			if r := admin.do("GET", "/alerts?undelivered=yes", nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "give 1 to show only alerts not yet delivered") {
				t.Errorf("a bad undelivered filter: %d %s", r.status, tTrim(r.body))
			}

			// A viewer sees the alerts and jobs, without Run now, and is refused the run.
			before := tStartedJob(t, in, "alert-delivery")
			var viewer apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "vic", Kind: "human", Role: "viewer", Token: true}, &viewer)
			vb := in.browser(t)
			vb.signIn(viewer.Token.Token)
			vp := string(vb.do("GET", "/alerts", nil).body)
			if !strings.Contains(vp, "short.internal.test") || !strings.Contains(vp, "<td><strong>alert-delivery</strong></td>") {
				t.Errorf("viewer's alerts page: %s", tTrim([]byte(vp)))
			}
			if strings.Contains(vp, "/run") || strings.Contains(vp, "Run now") {
				t.Error("a viewer without ca:manage is shown Run now")
			}
			if r := vb.do("POST", "/jobs/alert-delivery/run", url.Values{"csrf": {vb.csrf()}}); r.status != http.StatusForbidden {
				t.Errorf("viewer running a job: %d, want 403", r.status)
			}
			if after := tJob(t, in, "alert-delivery"); !after.StartedAt.Equal(*before.StartedAt) {
				t.Errorf("the viewer's refused run ran the job: last run %v, was %v", after.StartedAt, before.StartedAt)
			}

			// A viewer scoped to a profile is not shown alerts (they
			// span every certificate), but sees the jobs.
			var scoped apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
				Name: "sam", Kind: "human", Role: "viewer", Scope: apitypes.Scope{Profiles: []string{"internal_service"}}, Token: true}, &scoped)
			sb := in.browser(t)
			sb.signIn(scoped.Token.Token)
			r = sb.do("GET", "/alerts", nil)
			if sp := string(r.body); r.status != http.StatusOK || strings.Contains(sp, "short.internal.test") || strings.Contains(sp, "noisy-hook") ||
				!strings.Contains(sp, "limited to a scope") || !strings.Contains(sp, "<td><strong>renewal</strong></td>") || strings.Contains(sp, "Run now") {
				t.Errorf("scoped viewer's alerts page: %d %s", r.status, tTrim(r.body))
			}

			// An unknown job.
			csrf := admin.csrf()
			if r := admin.do("POST", "/jobs/nope/run", url.Values{"csrf": {csrf}}); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "There is no job named nope.") {
				t.Errorf("running an unknown job: %d %s", r.status, tTrim(r.body))
			}

			// The admin runs the delivery once the retry is due: the
			// webhook now takes the alert.
			from := tAuditHead(t, in)
			clk.Advance(time.Minute)
			r = admin.do("POST", "/jobs/alert-delivery/run", url.Values{"csrf": {csrf}})
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/alerts?ran=alert-delivery#jobs" {
				t.Fatalf("run now: %d to %q: %s", r.status, r.header.Get("Location"), tTrim(r.body))
			}
			after := tJob(t, in, "alert-delivery")
			if after.StartedAt == nil || after.StartedAt.Equal(*before.StartedAt) || !after.StartedAt.Equal(clk.Now()) || after.Outcome != lifecycle.OutcomeOK {
				t.Errorf("after run now, the job's last run is %v (%s), was %v; want %v", after.StartedAt, after.Outcome, before.StartedAt, clk.Now())
			}
			runs := tFindEvents(t, tAuditEvents(t, in, from), "job.run", 1)
			if ev := runs[0]; ev.Principal != "admin" || ev.Target != "alert-delivery" || ev.Outcome != audit.Success {
				t.Errorf("job.run event: %+v", ev)
			}
			for _, d := range tCertAlert(t, in, cert.Serial).Deliveries {
				if d.Channel == "ops-hook" && (d.Status != lifecycle.DeliverySent || d.Attempts != 2) {
					t.Errorf("ops-hook after run now: %+v, want sent at attempt 2", d)
				}
			}
			page = string(admin.do("GET", "/alerts?ran=alert-delivery", nil).body)
			if !strings.Contains(page, `<p class="notice ok" role="status">Job alert-delivery ran: `) {
				t.Errorf("no notice after run now: %s", tTrim([]byte(page)))
			}
			if c := tDeliveryCell(page, "ops-hook"); !strings.Contains(c, `<span class="status delivered">delivered</span>`) || !strings.Contains(c, "at attempt 2") {
				t.Errorf("ops-hook after run now: %q", c)
			}
		})
	}
}
