package app

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestJobRunsAPI: on a fake clock, the expiry check that ran at start and
// is run twice more is listed by GET /api/v1/jobs/runs three times,
// newest first, each with the replica that ran it, and jobs list counts
// them in the last hour; since and limit narrow the list, and every job's
// runs come without job=. A bad since or limit is refused with 400 naming
// the parameter and what it takes, an unknown job with 404, and a
// principal without cert:read with 403.
func TestJobRunsAPI(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			cfg.ReplicaName = "replica-t"
			start := time.Now().UTC().Truncate(time.Second)
			clk := clock.NewFake(start)
			tInit(t, cfg, clk)
			in := tStart(t, cfg, clk)
			first := tStartedJob(t, in, "expiry-check")
			for range 2 {
				clk.Advance(10 * time.Minute)
				tRunJob(t, in, "expiry-check")
			}

			runs := func(query string) apitypes.JobRunList {
				t.Helper()
				var l apitypes.JobRunList
				in.must(http.StatusOK, "GET", "/api/v1/jobs/runs"+query, nil, &l)
				return l
			}
			describe := func(l apitypes.JobRunList) string {
				var s []string
				for _, r := range l.Runs {
					s = append(s, fmt.Sprintf("%s@%s+%dm:%s", r.Job, r.Replica, int(r.StartedAt.Sub(*first.StartedAt)/time.Minute), r.Outcome))
				}
				return strings.Join(s, " ")
			}
			l := runs("?job=expiry-check")
			if got, want := describe(l), "expiry-check@replica-t+20m:ok expiry-check@replica-t+10m:ok expiry-check@replica-t+0m:ok"; got != want {
				t.Errorf("runs of expiry-check:\n got %s\nwant %s", got, want)
			}
			if !l.Since.Equal(clk.Now().Add(-time.Hour)) || l.Limit != 100 || l.Job != "expiry-check" {
				t.Errorf("defaults: since %v (now %v), limit %d, job %q", l.Since, clk.Now(), l.Limit, l.Job)
			}
			for _, r := range l.Runs {
				if r.FinishedAt == nil || r.FinishedAt.Before(r.StartedAt) || !strings.Contains(r.Detail, "certificates examined") {
					t.Errorf("run %+v: want its finish and its detail", r)
				}
			}
			if got := describe(runs("?job=expiry-check&since=5m")); got != "expiry-check@replica-t+20m:ok" {
				t.Errorf("since=5m: %s", got)
			}
			since := url.QueryEscape(first.StartedAt.Add(10 * time.Minute).Format(time.RFC3339))
			if got := describe(runs("?job=expiry-check&limit=1&since=" + since)); got != "expiry-check@replica-t+20m:ok" {
				t.Errorf("limit=1 since=+10m: %s", got)
			}
			all := runs("?since=2h&limit=1000")
			seen := map[string]bool{}
			for _, r := range all.Runs {
				seen[r.Job] = true
				if r.Replica != "replica-t" {
					t.Errorf("run of %s on %q", r.Job, r.Replica)
				}
			}
			if !seen["expiry-check"] || !seen["alert-delivery"] || all.Job != "" {
				t.Errorf("every job's runs: %s", describe(all))
			}
			if j := tJob(t, in, "expiry-check"); j.RunsLastHour == nil || *j.RunsLastHour != 3 {
				t.Errorf("jobs list: runs in the last hour %v, want 3", j.RunsLastHour)
			}

			for query, want := range map[string]string{
				"?since=yesterday":          `since "yesterday": want a duration back from now such as 30m, 1h or 7d, or an RFC 3339 time`,
				"?since=-1h":                `since "-1h"`,
				"?since=2026-13-01":         `since "2026-13-01"`,
				"?limit=0":                  `limit "0": want a whole number from 1 to 1000 (default 100)`,
				"?limit=1001":               `limit "1001": want a whole number from 1 to 1000`,
				"?job=expiry-check&limit=x": `limit "x"`,
			} {
				r := in.raw("GET", "/api/v1/jobs/runs"+query, in.bearer(), nil)
				if e := r.apiErr(t); r.status != http.StatusBadRequest || !strings.Contains(e.Detail, want) {
					t.Errorf("%s: %d %q, want 400 with %q", query, r.status, e.Detail, want)
				}
			}
			if r := in.raw("GET", "/api/v1/jobs/runs?job=expiry_check", in.bearer(), nil); r.status != http.StatusNotFound ||
				!strings.Contains(r.apiErr(t).Detail, "expiry_check") {
				t.Errorf("unknown job: %d %s, want 404 naming it", r.status, tTrim(r.body))
			}
			tok := in.tPrincipalWithout(t, "no-cert-read", []authz.Permission{authz.PermCertRead})
			if r := in.raw("GET", "/api/v1/jobs/runs?job=expiry-check", "Bearer "+tok, nil); r.status != http.StatusForbidden {
				t.Errorf("without cert:read: %d %s, want 403", r.status, tTrim(r.body))
			}
		})
	}
}
