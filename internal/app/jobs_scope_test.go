package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestScopedCAAdminCannotRunJobs: the scheduled jobs work across every CA,
// profile and name, so running one now needs ca:manage everywhere. A CA
// administrator scoped to one profile is refused through the API and the
// console (the job does not run), and the console shows it no Run now or
// Rebuild button.
func TestScopedCAAdminCannotRunJobs(t *testing.T) {
	in := tNewServer(t, "")
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "team-ca", Kind: "human", Role: authz.RoleCAAdmin, Token: true,
		Scope: apitypes.Scope{Profiles: []string{"internal_service"}},
	}, &res)
	tok := res.Token.Token

	before := tStartedJob(t, in, "alert-delivery")
	if r := in.raw("POST", "/api/v1/jobs/alert-delivery/run", "Bearer "+tok, nil); r.status != http.StatusForbidden {
		t.Errorf("a scoped CA admin running a job through the API: %d %s, want 403", r.status, tTrim(r.body))
	}

	b := in.browser(t)
	b.signIn(tok)
	for _, page := range []string{"/alerts", "/compliance"} {
		body := string(b.do("GET", page, nil).body)
		if strings.Contains(body, "/run\"") || strings.Contains(body, "/compliance/rebuild") {
			t.Errorf("%s offers a scoped CA admin a job run", page)
		}
	}
	csrf := b.csrf()
	if r := b.do("POST", "/jobs/alert-delivery/run", url.Values{"csrf": {csrf}}); r.status != http.StatusForbidden {
		t.Errorf("a scoped CA admin's Run now: %d %s, want 403", r.status, tTrim(r.body))
	}
	if r := b.do("POST", "/compliance/rebuild", url.Values{"csrf": {csrf}}); r.status != http.StatusForbidden {
		t.Errorf("a scoped CA admin's compliance rebuild: %d %s, want 403", r.status, tTrim(r.body))
	}
	if after := tJob(t, in, "alert-delivery"); !after.StartedAt.Equal(*before.StartedAt) {
		t.Errorf("a refused run ran the job: last run %v, was %v", after.StartedAt, before.StartedAt)
	}
}
