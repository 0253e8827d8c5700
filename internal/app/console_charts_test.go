package app

import (
	"crypto/elliptic"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

var (
	tChartRow  = regexp.MustCompile(`<tr><th scope="row">(?:<a href="([^"]+)">)?([^<]+)(?:</a>)?</th>((?:<td>[0-9,]+</td>)+)</tr>`)
	tChartCell = regexp.MustCompile(`<td>([0-9,]+)</td>`)
)

type tChartFigure struct {
	href   string
	values []int
}

// tChartFigures reads a chart's table of figures off the overview: its
// rows by name.
func tChartFigures(t *testing.T, page, id string) map[string]tChartFigure {
	t.Helper()
	start := strings.Index(page, `id="`+id+`-h"`)
	if start < 0 {
		t.Fatalf("the overview has no chart %s", id)
	}
	end := strings.Index(page[start:], "</section>")
	out := map[string]tChartFigure{}
	for _, m := range tChartRow.FindAllStringSubmatch(page[start:start+end], -1) {
		f := tChartFigure{href: html.UnescapeString(m[1])}
		for _, c := range tChartCell.FindAllStringSubmatch(m[3], -1) {
			n, _ := strconv.Atoi(strings.ReplaceAll(c[1], ",", ""))
			f.values = append(f.values, n)
		}
		out[html.UnescapeString(m[2])] = f
	}
	return out
}

// TestConsoleOverviewCharts: the overview's charts agree with the
// inventory the API lists — the week of expiry each valid certificate not
// yet renewed falls in, its band of days left, and today's issuance and
// revocations — and each bar's link lists exactly its certificates.
func TestConsoleOverviewCharts(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			key := tECKey(t, elliptic.P256())
			var issued []apitypes.IssuedCertificate
			for _, n := range []string{"a.example.internal", "b.example.internal", "c.example.internal"} {
				issued = append(issued, in.sign(tCSR(t, key, n)))
			}
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+issued[2].Serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil)
			var list apitypes.CertificateList
			in.must(http.StatusOK, "GET", "/api/v1/certificates?limit=1000", nil, &list)

			now := in.app.clock.Now().UTC()
			today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
			weeks, bands := map[int][]string{}, map[int]int{}
			issuedToday := 0
			for _, c := range list.Certificates {
				if c.Source == "issued" && !c.CreatedAt.Before(today) {
					issuedToday++
				}
				if c.Status != "valid" || c.RenewedBy != "" || !c.NotAfter.After(now) {
					continue
				}
				days := int(c.NotAfter.UTC().Sub(today) / (24 * time.Hour))
				if days < 91 {
					weeks[days/7] = append(weeks[days/7], c.Serial)
				}
				for i, top := range []int{8, 15, 31, 61, 91, 181, 366} {
					if days < top {
						bands[i]++
						break
					}
					if i == 6 {
						bands[7]++
					}
				}
			}
			if len(weeks) == 0 {
				t.Fatal("no certificate expires within 13 weeks: the test's profile changed")
			}

			b := in.browser(t)
			b.signIn(in.token)
			page := string(b.do("GET", "/", nil).body)
			for _, id := range []string{"timeline", "daysleft", "activity"} {
				if !strings.Contains(page, `<svg viewBox="0 0 720 220" role="img" aria-labelledby="`+id+`-h"`) {
					t.Errorf("the overview lacks the %s chart", id)
				}
			}
			timeline := tChartFigures(t, page, "timeline")
			if len(timeline) != 13 {
				t.Fatalf("timeline rows: %d, want 13", len(timeline))
			}
			for w := range 13 {
				from := today.AddDate(0, 0, 7*w)
				name := from.Format("2006-01-02") + " to " + from.AddDate(0, 0, 6).Format("2006-01-02")
				fig, ok := timeline[name]
				if !ok {
					t.Fatalf("timeline lacks the week %s: %v", name, timeline)
				}
				total := 0
				for _, v := range fig.values {
					total += v
				}
				if total != len(weeks[w]) {
					t.Errorf("week %s: %d certificates, the inventory has %d", name, total, len(weeks[w]))
				}
				if len(weeks[w]) > 0 {
					r := b.do("GET", fig.href, nil)
					var got []string
					for _, m := range regexp.MustCompile(`href="/certificates/([0-9a-f]+)"`).FindAllStringSubmatch(string(r.body), -1) {
						got = append(got, m[1])
					}
					slices.Sort(got)
					want := slices.Clone(weeks[w])
					slices.Sort(want)
					if r.status != http.StatusOK || !slices.Equal(got, want) {
						t.Errorf("week %s's link %s lists %v, want %v", name, fig.href, got, want)
					}
				}
			}
			daysLeft := tChartFigures(t, page, "daysleft")
			for i, name := range []string{"0–7 days", "8–14 days", "15–30 days", "31–60 days", "61–90 days", "91–180 days", "181–365 days", "366+ days"} {
				if f := daysLeft[name]; len(f.values) != 1 || f.values[0] != bands[i] {
					t.Errorf("days left %s: %v, want %d", name, f.values, bands[i])
				}
			}
			act := tChartFigures(t, page, "activity")
			if f := act[today.Format("2006-01-02")]; len(f.values) != 3 || f.values[0] != issuedToday || f.values[1] != 1 {
				t.Errorf("today's activity: %v, want %d issued and 1 revoked", f.values, issuedToday)
			}
			if len(act) != 30 {
				t.Errorf("activity rows: %d, want 30", len(act))
			}
			if r := b.do("GET", "/certificates?expires_from=2026-13-01", nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "YYYY-MM-DD") {
				t.Errorf("a bad expires_from: %d, want 400 naming the format", r.status)
			}
		})
	}
}
