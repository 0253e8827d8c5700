package app

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tIntermediateForm is the CA page's form creating an intermediate named
// name under root, confirmed.
func tIntermediateForm(csrf, name string) url.Values {
	return url.Values{"csrf": {csrf}, "name": {name}, "parent": {"root"}, "cn": {"Team CA"}, "key": {"ecdsa-p256"},
		"days": {"365"}, "path_len": {"0"}, "permit_dns": {"team.example.internal"}, "confirm": {"yes"}}
}

// tCAStatus is the API's answer for CA name: its status code.
func tCAStatus(in *tInstance, name string) int {
	return in.call("GET", "/api/v1/cas/"+name, nil).status
}

// TestConsoleCreateIntermediate: an admin creates an intermediate from
// the CA page (confirmation, CSRF, every bad field a 400 naming it, and
// nothing created by a refused form); it appears in the tree under its
// parent, the creation is audited as the API's ca.create, and the new CA
// issues within its name constraints. A viewer gets no form and is
// refused; a CA manager scoped to another CA gets no form (no parent it
// may use) and the core refuses its post with 403.
func TestConsoleCreateIntermediate(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			b := in.browser(t)
			b.signIn(in.token)
			page := string(b.do("GET", "/cas", nil).body)
			// root may sign a CA (path length 1); issuing may not (0).
			if !strings.Contains(page, `<form class="stack" method="post" action="/cas">`) || !strings.Contains(page, `<option value="root"`) ||
				strings.Contains(page, `<option value="issuing"`) {
				t.Fatalf("the admin's CA page has no form offering root alone as parent: %s", tTrim([]byte(page)))
			}
			csrf := b.csrf()
			bad := map[string]struct {
				change url.Values
				want   string
			}{
				"unconfirmed":   {url.Values{"confirm": {""}}, "Tick the confirmation"},
				"no name":       {url.Values{"name": {""}}, "Name: give the new CA"},
				"bad name":      {url.Values{"name": {"Team CA"}}, "use 1-63 lower-case letters"},
				"no CN":         {url.Values{"cn": {""}}, "Common name: give"},
				"bad key":       {url.Values{"key": {"rsa-1024"}}, "Key algorithm: unknown key algorithm"},
				"bad days":      {url.Values{"days": {"soon"}}, "Validity &#34;soon&#34;: give a whole number of days"},
				"days overflow": {url.Values{"days": {"9223372036854775"}}, "Validity &#34;9223372036854775&#34;: give a whole number of days"},
				"long days":     {url.Values{"days": {"20000"}}, "from 1 to 10,980 (30 years)"},
				"bad path":      {url.Values{"path_len": {"-2"}}, "Path length &#34;-2&#34;"},
				"deep path":     {url.Values{"path_len": {"1"}}, "path length 1 not allowed under parent"},
				"bad CIDR":      {url.Values{"permit_ip": {"10.0.0.0/33"}}, "Permitted IP ranges: &#34;10.0.0.0/33&#34; is not a CIDR range"},
				"bad DNS":       {url.Values{"permit_dns": {"*.team.example.internal"}}, "is not a domain"},
				"no parent":     {url.Values{"parent": {"nope"}}, "Parent: there is no CA named"},
				"taken name":    {url.Values{"name": {"issuing"}}, "a CA named &#34;issuing&#34; already exists"},
				"issuing path":  {url.Values{"parent": {"issuing"}}, "cannot sign another CA"},
			}
			for what, c := range bad {
				form := tIntermediateForm(csrf, "team")
				for k, v := range c.change {
					form[k] = v
				}
				r := b.do("POST", "/cas", form)
				if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), c.want) {
					t.Errorf("%s: %d, want 400 saying %q: %s", what, r.status, c.want, tTrim(r.body))
				}
				// The form comes back as posted.
				if what == "bad CIDR" && !strings.Contains(string(r.body), `value="10.0.0.0/33"`) {
					t.Errorf("the refused form does not keep what was typed")
				}
			}
			if s := tCAStatus(in, "team"); s != http.StatusNotFound {
				t.Fatalf("after refused forms, GET /api/v1/cas/team: %d, want 404", s)
			}
			if r := b.do("POST", "/cas", tIntermediateForm("", "team")); r.status != http.StatusForbidden {
				t.Errorf("create without the CSRF token: %d, want 403", r.status)
			}

			from := tAuditHead(t, in)
			r := b.do("POST", "/cas", tIntermediateForm(csrf, "team"))
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/cas?ca=team&changed=created" {
				t.Fatalf("create: %d to %q: %s", r.status, r.header.Get("Location"), tTrim(r.body))
			}
			page = string(b.do("GET", "/cas?ca=team&changed=created", nil).body)
			rootAt, teamAt := strings.Index(page, "<strong>root</strong>"), strings.Index(page, `class="depth-1"><strong>team</strong>`)
			if rootAt < 0 || teamAt < rootAt || !strings.Contains(page, "Intermediate CA team is created") || !strings.Contains(page, "permit DNS team.example.internal") {
				t.Errorf("the CA page after the creation does not show team under root: %s", tTrim([]byte(page)))
			}
			// The notice names only a CA that exists: a crafted link
			// cannot make the page announce text of its own.
			spoof := string(b.do("GET", "/cas?"+url.Values{"changed": {"created"}, "ca": {"ops-urgent: call 555-0100"}}.Encode(), nil).body)
			if strings.Contains(spoof, "555-0100") || strings.Contains(spoof, "is created") {
				t.Errorf("the CA page announced a CA named by the link alone: %s", tTrim([]byte(spoof)))
			}
			ev := tFindEvents(t, tAuditEvents(t, in, from), "ca.create", 1)[0]
			if ev.Principal != "admin" || ev.Outcome != audit.Success || !strings.Contains(string(ev.Details), `"parent":"root"`) || !strings.Contains(string(ev.Details), `"name":"team"`) {
				t.Errorf("ca.create event: %+v", ev)
			}
			var issued apitypes.IssuedCertificate
			key := tECKey(t, elliptic.P256())
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, key, "svc.team.example.internal")), Profile: "internal_service", CA: "team"}, &issued)
			if cert := tPEMCert(t, issued.CertificatePEM); cert.Issuer.CommonName != "Team CA" {
				t.Errorf("the certificate from team is issued by %q", cert.Issuer.CommonName)
			}
			if r := in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, key, "svc.other.example.internal")), Profile: "internal_service", CA: "team"}); r.status < 400 {
				t.Errorf("team issued outside its name constraints: %d", r.status)
			}

			// A viewer: no form, and the route refuses it.
			var viewer apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "vera", Kind: "human", Role: "viewer", Token: true}, &viewer)
			vb := in.browser(t)
			vb.signIn(viewer.Token.Token)
			if p := string(vb.do("GET", "/cas", nil).body); !strings.Contains(p, "<strong>team</strong>") || strings.Contains(p, `action="/cas"`) {
				t.Errorf("the viewer's CA page: %s", tTrim([]byte(p)))
			}
			if r := vb.do("POST", "/cas", tIntermediateForm(vb.csrf(), "vteam")); r.status != http.StatusForbidden {
				t.Errorf("a viewer's create: %d, want 403", r.status)
			}
			// A CA manager scoped to issuing, reading every CA: issuing
			// cannot sign a CA and root is not its to manage, so no
			// form; posting anyway under root is outside its scope.
			var scoped apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
				Name: "cass", Kind: "human", Role: authz.RoleCAAdmin, Scope: apitypes.Scope{CAs: []string{"issuing"}}, Token: true}, &scoped)
			in.must(http.StatusCreated, "POST", "/api/v1/bindings", apitypes.CreateBindingRequest{Principal: "cass", Role: authz.RoleViewer}, nil)
			sb := in.browser(t)
			sb.signIn(scoped.Token.Token)
			if p := string(sb.do("GET", "/cas", nil).body); !strings.Contains(p, "/cas/issuing/disable") || !strings.Contains(p, "<strong>root</strong>") ||
				strings.Contains(p, "/cas/root/disable") || strings.Contains(p, `action="/cas"`) {
				t.Errorf("the scoped manager's CA page: %s", tTrim([]byte(p)))
			}
			for _, name := range []string{"issuing-2", "scoped"} {
				r := sb.do("POST", "/cas", tIntermediateForm(sb.csrf(), name))
				if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "Refused: ") {
					t.Errorf("the scoped manager creating %s under root: %d, want 403: %s", name, r.status, tTrim(r.body))
				}
				if s := tCAStatus(in, name); s != http.StatusNotFound {
					t.Errorf("after the refusal, GET /api/v1/cas/%s: %d, want 404", name, s)
				}
			}
		})
	}
}

// tTile reads the figure of the overview tile whose label follows it.
func tTile(t *testing.T, page, label string) string {
	t.Helper()
	m := regexp.MustCompile(`<span class="n">([^<]*)</span> ` + regexp.QuoteMeta(label) + `</a>`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// tHealthRow is the CA health row of CA name on the overview, or "".
func tHealthRow(page, name string) string {
	_, rest, ok := strings.Cut(page, `<a href="/cas">`+name+`</a>`)
	if !ok {
		return ""
	}
	row, _, _ := strings.Cut(rest, "</tr>")
	return row
}

// TestConsoleOverviewHealth: the overview's tiles count from the store,
// as the viewer's permissions and scope allow: pending approvals (all for
// an unscoped approver, those its scope covers for a scoped one, its own
// for a requester), undelivered alerts (as the alerts page counts them,
// linking there; not shown to a scoped viewer); its CA health shows each
// CA's expiry (flagged when near) and CRL and OCSP state, stale once the
// clock passes their refresh and fresh again after it, and the scheduled
// jobs' last runs.
func TestConsoleOverviewHealth(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in, clk, _ := tAlertsInstance(t, be.dbURL(t))
			ctx := context.Background()
			p, _ := profile.Builtin("internal_service")
			p.Name, p.Builtin, p.RequireApproval = "held_service", false, true
			if err := in.app.profiles.Create(ctx, authz.System(), p); err != nil {
				t.Fatal(err)
			}
			key := tECKey(t, elliptic.P256())
			hold := func(auth, name string) {
				t.Helper()
				r := in.raw("POST", "/api/v1/certificates/sign", auth, strings.NewReader(tJSON(t, apitypes.SignRequest{CSRPEM: string(tCSR(t, key, name)), Profile: "held_service"})))
				if r.status != http.StatusAccepted {
					t.Fatalf("sign under held_service: %d %s", r.status, tTrim(r.body))
				}
			}
			hold(in.bearer(), "held-1.internal.test")
			hold(in.bearer(), "held-2.internal.test")
			issuer := in.tCreatePrincipal(t, "ivan", authz.RoleIssuer, apitypes.Scope{}, true)
			hold(issuer, "held-3.internal.test")

			signIn := func(name, role string, scope apitypes.Scope) *tBrowser {
				t.Helper()
				var res apitypes.CreatePrincipalResult
				in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{Name: name, Kind: "human", Role: role, Scope: scope, Token: true}, &res)
				b := in.browser(t)
				b.signIn(res.Token.Token)
				return b
			}
			admin := in.browser(t)
			admin.signIn(in.token)
			ib := in.browser(t)
			ib.signIn(strings.TrimPrefix(issuer, "Bearer "))
			for _, c := range []struct {
				who  string
				b    *tBrowser
				want string
			}{
				{"admin", admin, "3"},
				{"an unscoped approver", signIn("amy", authz.RoleApprover, apitypes.Scope{}), "3"},
				{"an approver scoped to held_service", signIn("hal", authz.RoleApprover, apitypes.Scope{Profiles: []string{"held_service"}}), "3"},
				{"an approver scoped to web_server", signIn("wes", authz.RoleApprover, apitypes.Scope{Profiles: []string{"web_server"}}), "0"},
				{"an approver scoped to other names", signIn("nia", authz.RoleApprover, apitypes.Scope{Names: []string{"held-1.internal.test"}}), "1"},
				{"the issuer (its own request)", ib, "1"},
			} {
				if got := tTile(t, string(c.b.do("GET", "/", nil).body), "pending approval"); got != c.want {
					t.Errorf("%s: %q pending approval, want %s", c.who, got, c.want)
				}
			}

			// Undelivered alerts: as the alerts page counts them.
			undelivered := tUndeliveredAlerts(t, in)
			ov := string(admin.do("GET", "/", nil).body)
			if got := tTile(t, ov, "undelivered alerts"); undelivered == 0 || got != fmt.Sprint(undelivered) || !strings.Contains(ov, `<a href="/alerts?undelivered=1">`) {
				t.Errorf("undelivered alerts tile %q, want %d linking to /alerts?undelivered=1", got, undelivered)
			}
			if got := tTile(t, string(admin.do("GET", "/alerts", nil).body), "undelivered"); got != fmt.Sprint(undelivered) {
				t.Errorf("the alerts page counts %q undelivered, the API %d", got, undelivered)
			}
			scopedViewer := signIn("sal", authz.RoleViewer, apitypes.Scope{Profiles: []string{"internal_service"}})
			if sp := string(scopedViewer.do("GET", "/", nil).body); strings.Contains(sp, "undelivered alerts") {
				t.Error("a scoped viewer is shown the undelivered alerts tile")
			}

			// CA health: the revocation service has built both CAs' CRLs
			// and OCSP responses at start-up.
			for deadline := time.Now().Add(20 * time.Second); ; {
				loaded := 0
				for _, f := range in.app.revoker.Freshness() {
					if f.CRLNumber > 0 && !f.OCSPLastPresign.IsZero() {
						loaded++
					}
				}
				if loaded >= 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("revocation data not built: %+v", in.app.revoker.Freshness())
				}
				time.Sleep(50 * time.Millisecond)
			}
			ov = string(admin.do("GET", "/", nil).body)
			row := tHealthRow(ov, "issuing")
			if !strings.Contains(ov, `<h2 id="health">CA health</h2>`) || strings.Count(row, `<span class="status ok">fresh</span>`) != 2 || strings.Contains(row, "stale") ||
				!strings.Contains(row, `<time class="" datetime=`) {
				t.Errorf("issuing's health row, fresh: %q", row)
			}
			for _, j := range []string{"expiry-check", "alert-delivery", "renewal"} {
				if !strings.Contains(ov, `<td><a href="/alerts#jobs">`+j+`</a></td>`) {
					t.Errorf("the CA health section lacks job %s", j)
				}
			}
			if !strings.Contains(ov, `<span class="status ok">ok</span>`) {
				t.Error("no job run shows its outcome")
			}
			// Past the CRL's refresh (a third of 7 days) and the OCSP
			// pass's (a quarter of the responses' lifetime), with the
			// refresh not run: stale; and the CA expiry within 90 days
			// is flagged.
			clk.Advance(5*24*time.Hour + time.Hour)
			admin.signIn(in.token) // the session ended meanwhile
			row = tHealthRow(string(admin.do("GET", "/", nil).body), "issuing")
			if strings.Count(row, `<span class="status error">stale</span>`) != 2 || strings.Contains(row, "fresh") {
				t.Errorf("issuing's health row after 5 days without refresh: %q", row)
			}
			in.app.revoker.MaintainCRLs(ctx)
			in.app.revoker.MaintainOCSP(ctx)
			row = tHealthRow(string(admin.do("GET", "/", nil).body), "issuing")
			if strings.Count(row, `<span class="status ok">fresh</span>`) != 2 {
				t.Errorf("issuing's health row after the refresh: %q", row)
			}
			var issuingCA apitypes.CA
			in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &issuingCA)
			clk.Set(issuingCA.NotAfter.Add(-30 * 24 * time.Hour))
			admin.signIn(in.token)
			row = tHealthRow(string(admin.do("GET", "/", nil).body), "issuing")
			if !strings.Contains(row, `<time class="status error" datetime=`) || !strings.Contains(row, "in 30 days") {
				t.Errorf("issuing's health row 30 days before its expiry: %q", row)
			}
		})
	}
}

// TestConsoleAlertsPaging: the alerts page pages through the store, so an
// alert older than the newest page is reached through the Older link,
// also within the kind and undelivered filters (the undelivered filter
// and count follow deliveries as they are recorded); a bad cursor is a
// 400. Run now asks for a confirmation on the jobs that issue or revoke,
// refuses their run without it (400, the job not run) and runs them with
// it; other jobs run at once.
func TestConsoleAlertsPaging(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			ctx := context.Background()
			base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			// 150 test alerts a second apart, the oldest first, each
			// routed to one channel; and an expiring one older still.
			var as []*lifecycle.Alert
			var chans [][]string
			old := &lifecycle.Alert{ID: "alert-oldest", Kind: lifecycle.AlertExpiring, Severity: lifecycle.SeverityWarning, Subject: "0badc0de",
				Threshold: "7d", Summary: "the oldest alert", CreatedAt: base.Add(-time.Minute)}
			as, chans = append(as, old), append(chans, []string{"ops"})
			for i := range 150 {
				as = append(as, &lifecycle.Alert{ID: fmt.Sprintf("alert-%03d", i), Kind: lifecycle.AlertTest, Severity: lifecycle.SeverityInfo,
					Subject: fmt.Sprintf("test:%03d", i), Summary: fmt.Sprintf("test alert %03d", i), CreatedAt: base.Add(time.Duration(i) * time.Second)})
				chans = append(chans, []string{"ops"})
			}
			if _, err := in.app.store.RaiseAlerts(ctx, as, chans); err != nil {
				t.Fatal(err)
			}
			// The newest 20 are delivered.
			for i := 130; i < 150; i++ {
				if err := in.app.store.UpdateDelivery(ctx, &lifecycle.Delivery{AlertID: fmt.Sprintf("alert-%03d", i), Channel: "ops",
					Status: lifecycle.DeliverySent, Attempts: 1, NextAttemptAt: base, SentAt: base}); err != nil {
					t.Fatal(err)
				}
			}
			b := in.browser(t)
			b.signIn(in.token)
			older := regexp.MustCompile(`<a href="([^"]+)" rel="next">Older alerts</a>`)
			follow := func(path string) (string, string) {
				t.Helper()
				r := b.do("GET", path, nil)
				if r.status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, r.status, tTrim(r.body))
				}
				m := older.FindStringSubmatch(string(r.body))
				if m == nil {
					return string(r.body), ""
				}
				next, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
				if err != nil {
					t.Fatal(err)
				}
				return string(r.body), next.String()
			}
			page, next := follow("/alerts")
			if !strings.Contains(page, "test alert 149") || strings.Contains(page, "test alert 049") || strings.Contains(page, "the oldest alert") || next == "" {
				t.Fatalf("the first page: newest 100 and an Older link, got: %s", tTrim([]byte(page)))
			}
			if got := tTile(t, page, "undelivered"); got != "131" {
				t.Errorf("undelivered count %q, want 131 (151 less the 20 delivered)", got)
			}
			page, last := follow(next)
			if !strings.Contains(page, "test alert 049") || strings.Contains(page, "test alert 050") || !strings.Contains(page, "the oldest alert") || last != "" ||
				!strings.Contains(page, `<a href="/alerts">Newest</a>`) {
				t.Errorf("the second page: alerts 049 down to the oldest, no Older link: %s", tTrim([]byte(page)))
			}
			// Filters page in the store too: the oldest alert is the only
			// expiring one; 131 undelivered take two pages, the second
			// holding 030 down to the oldest.
			if page, _ := follow("/alerts?kind=expiring"); !strings.Contains(page, "the oldest alert") || strings.Contains(page, "test alert") {
				t.Errorf("kind=expiring: %s", tTrim([]byte(page)))
			}
			page, next = follow("/alerts?undelivered=1")
			if strings.Contains(page, "test alert 130") || !strings.Contains(page, "test alert 129") || !strings.Contains(next, "undelivered=1") {
				t.Errorf("undelivered, first page: %s", tTrim([]byte(page)))
			}
			page, _ = follow(next)
			if !strings.Contains(page, "test alert 029") || strings.Contains(page, "test alert 030") || !strings.Contains(page, "the oldest alert") {
				t.Errorf("undelivered, second page: %s", tTrim([]byte(page)))
			}
			for _, q := range []string{"before=x", "before=12-", "before=-5-alert-001"} {
				if r := b.do("GET", "/alerts?"+q, nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "follow the page&#39;s Older link") {
					t.Errorf("alerts?%s: %d %s", q, r.status, tTrim(r.body))
				}
			}

			// Run now: the confirmation on the jobs that issue or revoke.
			page = string(b.do("GET", "/alerts", nil).body)
			for job, confirm := range map[string]bool{"renewal": true, "supersede": true, "rotation": true, "expiry-check": false, "alert-delivery": false} {
				_, form, _ := strings.Cut(page, `action="/jobs/`+job+`/run"`)
				form, _, _ = strings.Cut(form, "</form>")
				if got := strings.Contains(form, `name="confirm" value="yes" required`); got != confirm {
					t.Errorf("job %s's Run now asks for a confirmation: %v, want %v", job, got, confirm)
				}
			}
			csrf := b.csrf()
			before := tStartedJob(t, in, "renewal")
			r := b.do("POST", "/jobs/renewal/run", url.Values{"csrf": {csrf}})
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "Tick the confirmation to run renewal now: it issues a new certificate") {
				t.Errorf("renewal without the confirmation: %d, want 400: %s", r.status, tTrim(r.body))
			}
			if after := tJob(t, in, "renewal"); !tSameTime(after.StartedAt, before.StartedAt) {
				t.Errorf("the refused run ran renewal: last run %v, was %v", after.StartedAt, before.StartedAt)
			}
			if r := b.do("POST", "/jobs/renewal/run", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusSeeOther {
				t.Errorf("renewal with the confirmation: %d %s", r.status, tTrim(r.body))
			}
			if r := b.do("POST", "/jobs/expiry-check/run", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther {
				t.Errorf("expiry-check without a confirmation: %d %s", r.status, tTrim(r.body))
			}
		})
	}
}

// tSameTime reports whether two optional times are both unset or equal.
// tStartedJob returns job name as the API lists it once its start-up run
// is recorded, so a later change of its last run is a later run's.
func tStartedJob(t *testing.T, in *tInstance, name string) apitypes.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if j := tJob(t, in, name); j.StartedAt != nil && j.FinishedAt != nil {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s has not run at start after 20s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tSameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}
