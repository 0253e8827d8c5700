package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

func TestACMELifecycleUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"acme", "update", "internal"}, "nothing to change"},
		{[]string{"acme", "update"}, "missing NAME"},
		{[]string{"acme", "update", "internal", "--challenges", "ftp-01"}, `unknown challenge type "ftp-01"`},
		{[]string{"acme", "update", "internal", "--challenges", ""}, "at least one challenge type"},
		{[]string{"acme", "update", "internal", "--allow-names", "a.*.test"}, "--allow-names"},
		{[]string{"acme", "update", "internal", "--ca", ""}, "--ca must name a CA"},
		{[]string{"acme", "update", "internal", "--website", "ftp://x"}, "--website"},
		{[]string{"acme", "update", "internal", "--require-eab=maybe"}, "require-eab"},
		{[]string{"acme", "disable"}, "missing NAME"},
		{[]string{"acme", "enable", "a", "b"}, `unexpected argument "b"`},
		{[]string{"acme", "delete"}, "missing NAME"},
		{[]string{"acme", "eab", "revoke"}, "missing KEYID"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			// No server is reachable: exit 2 proves the check comes first.
			code, out, errOut := run(t, map[string]string{"CERTWRIGHT_DATA_DIR": t.TempDir()}, tt.args...)
			if code != exitUsage || out != "" || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d naming %q", code, out, errOut, exitUsage, tt.want)
			}
		})
	}
}

func TestACMELifecycleRequestShapes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const dir = "https://ca.example.internal/acme/internal/directory"
	prov := apitypes.Provisioner{ID: "acme_1", Name: "internal", CAID: "ca_1", CA: "issuing", Profile: "web_server",
		Challenges: []string{"http-01"}, AllowNames: []string{}, CreatedAt: at, CreatedBy: "admin", DirectoryURL: dir}
	off := prov
	off.Disabled, off.DisabledAt, off.DisabledBy = true, &at, "admin"
	ok := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, 200, v) }
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"PATCH /api/v1/acme/provisioners/{name}": ok(apitypes.UpdatedProvisioner{Provisioner: prov, Changes: []apitypes.ProvisionerChange{
			{Field: "allow_names", From: []string{"*.a.test"}, To: []string{}}, {Field: "require_eab", From: true, To: false}}}),
		"POST /api/v1/acme/provisioners/{name}/disable": ok(off),
		"POST /api/v1/acme/provisioners/{name}/enable":  ok(prov),
		"DELETE /api/v1/acme/provisioners/{name}":       ok(apitypes.DeletedProvisioner{Provisioner: off, AccountsDeactivated: 3, OrdersEnded: 1, EABKeysRevoked: 2}),
		"POST /api/v1/acme/eab/{id}/revoke": ok(apitypes.RevokedEABKey{EABKey: apitypes.EABKey{ID: "eab_1", AccountID: "acct_9", RevokedAt: &at},
			AccountDeactivated: true}),
		"GET /api/v1/acme/provisioners/{name}": ok(off),
	})
	checkRequestShapes(t, f, []requestShape{
		{[]string{"acme", "update", "internal", "--allow-names", "", "--require-eab=false"}, "PATCH", "/api/v1/acme/provisioners/internal",
			`{"allow_names":[],"require_eab":false}`, []string{"Updated ACME provisioner internal", "allow_names", "*.a.test -> (none)", "true -> false"}},
		{[]string{"acme", "update", "internal", "--ca", "issuing2", "--challenges", "dns-01,http-01", "--allow-subject-fields", "--website", ""},
			"PATCH", "/api/v1/acme/provisioners/internal", `{"ca":"issuing2","challenges":["dns-01","http-01"],"allow_subject_fields":true,"website":""}`, nil},
		{[]string{"acme", "disable", "internal"}, "POST", "/api/v1/acme/provisioners/internal/disable", "",
			[]string{"Disabled ACME provisioner internal", "stay valid", "certwright acme enable internal"}},
		{[]string{"acme", "enable", "internal"}, "POST", "/api/v1/acme/provisioners/internal/enable", "", []string{"Enabled ACME provisioner internal", dir}},
		{[]string{"acme", "delete", "internal"}, "DELETE", "/api/v1/acme/provisioners/internal", "",
			[]string{"Deleted ACME provisioner internal (acme_1)", "3 account(s) deactivated", "1 open order(s) ended", "2 external account key(s) revoked"}},
		{[]string{"acme", "eab", "revoke", "eab_1"}, "POST", "/api/v1/acme/eab/eab_1/revoke", "",
			[]string{"Revoked external account binding key eab_1", "acct_9, is deactivated"}},
		{[]string{"acme", "show", "internal"}, "GET", "/api/v1/acme/provisioners/internal", "", []string{"Status:", "disabled since", "by admin"}},
	})

	// --json prints the API's answer: one object.
	checkJSONKeys(t, f, []jsonKey{
		{[]string{"acme", "update", "internal", "--require-eab"}, "changes"},
		{[]string{"acme", "disable", "internal"}, "disabled_at"},
		{[]string{"acme", "enable", "internal"}, "disabled"},
		{[]string{"acme", "delete", "internal"}, "accounts_deactivated"},
		{[]string{"acme", "eab", "revoke", "eab_1"}, "account_deactivated"},
	})
}

// TestInitACMEFlag: init --acme=false asks for no provisioner; without the
// flag (the quick start) the provisioner "default" is made.
func TestInitACMEFlag(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	for _, tt := range []struct {
		args []string
		skip bool
	}{
		{nil, false},
		{[]string{"--acme"}, false},
		{[]string{"--acme=true"}, false},
		{[]string{"--acme=false"}, true},
	} {
		cfg, err := parseServerFlags("init", append(tt.args, "--data-dir", t.TempDir()+"/d"), nil, env, true, nil)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if cfg.Init.SkipACMEProvisioner != tt.skip {
			t.Errorf("%q: SkipACMEProvisioner %v, want %v", tt.args, cfg.Init.SkipACMEProvisioner, tt.skip)
		}
	}
	if _, err := parseServerFlags("init", []string{"--acme=perhaps"}, nil, env, true, nil); err == nil || !strings.Contains(err.Error(), "acme") {
		t.Errorf("--acme=perhaps: %v, want an error naming the flag", err)
	}
}

// requestShape is a command line, the one API request it must send and
// what its output must contain.
type requestShape struct {
	args         []string
	method, path string
	body         string
	stdout       []string
}

// checkRequestShapes runs each command line against f in turn (each case
// checks the one request it adds).
func checkRequestShapes(t *testing.T, f *fakeAPI, tests []requestShape) {
	t.Helper()
	for _, tt := range tests {
		name := strings.Join(tt.args, " ")
		n := len(f.requests())
		code, out, errOut := run(t, f.env, tt.args...)
		if code != 0 {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
			continue
		}
		for _, w := range tt.stdout {
			if !strings.Contains(out, w) {
				t.Errorf("%s: stdout lacks %q:\n%s", name, w, out)
			}
		}
		reqs := f.requests()[n:]
		if len(reqs) != 1 {
			t.Errorf("%s: %d requests, want 1", name, len(reqs))
			continue
		}
		got := reqs[0]
		if got.method != tt.method || got.path != tt.path || !jsonEqual(t, got.body, tt.body) {
			t.Errorf("%s:\n got %s %s %s\nwant %s %s %s", name, got.method, got.path, got.body, tt.method, tt.path, tt.body)
		}
	}
}

// jsonKey is a command line whose --json output must be one object
// holding key.
type jsonKey struct {
	args []string
	key  string
}

func checkJSONKeys(t *testing.T, f *fakeAPI, tests []jsonKey) {
	t.Helper()
	for _, tt := range tests {
		code, out, errOut := run(t, f.env, append(tt.args, "--json")...)
		var v map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v[tt.key] == nil {
			t.Errorf("%s --json: exit %d, stderr %q\n%s", strings.Join(tt.args, " "), code, errOut, out)
		}
	}
}
