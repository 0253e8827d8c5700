package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

func TestACMEUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"acme", "create"}, "missing NAME"},
		{[]string{"acme", "create", "internal", "--profile", "web_server"}, "--ca is required"},
		{[]string{"acme", "create", "internal", "--ca", "issuing"}, "--profile is required"},
		{[]string{"acme", "create", " ", "--ca", "issuing", "--profile", "web_server"}, "NAME must not be empty"},
		{[]string{"acme", "create", "internal", "--ca", "issuing", "--profile", "web_server", "--challenges", "http-01,dns-02"}, `unknown challenge type "dns-02"`},
		{[]string{"acme", "create", "internal", "--ca", "issuing", "--profile", "web_server", "--allow-names", "10.0.0.0/33"}, "--allow-names"},
		{[]string{"acme", "create", "internal", "--ca", "issuing", "--profile", "web_server", "--terms-of-service", "terms.html"}, "--terms-of-service"},
		{[]string{"acme", "create", "internal", "--ca", "issuing", "--profile", "web_server", "--website", "ftp://x"}, "--website"},
		{[]string{"acme", "show"}, "missing NAME"},
		{[]string{"acme", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"acme", "eab", "create"}, "--provisioner is required"},
		{[]string{"acme", "eab", "list"}, "--provisioner is required"},
		{[]string{"acme", "renew-now"}, "give at least one selector"},
		{[]string{"acme", "renew-now", "--json"}, "give at least one selector"},
		{[]string{"acme", "renew-now", "--spki", "abcd"}, "--spki"},
		{[]string{"acme", "renew-now", "--serial", "not-hex"}, "serial"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			// No server is reachable: exit 2 proves the check comes first.
			code, out, errOut := run(t, map[string]string{"CERTWRIGHT_DATA_DIR": t.TempDir()}, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %q", code, exitUsage, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			checkUsageError(t, tt.args, errOut, tt.want)
		})
	}
}

func TestACMERequestShapes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const dir = "https://ca.example.internal/acme/internal/directory"
	prov := apitypes.Provisioner{ID: "prv_1", Name: "internal", CAID: "ca_1", CA: "issuing", Profile: "web_server",
		Challenges: []string{"http-01", "dns-01"}, AllowNames: []string{"*.example.internal"}, RequireEAB: true,
		CreatedAt: at, CreatedBy: "admin", DirectoryURL: dir}
	key := apitypes.EABKey{ID: "kid_1", ProvisionerID: "prv_1", PrincipalID: "prn_1", Principal: "web-fleet", CreatedAt: at, CreatedBy: "admin"}
	ok := func(status int, v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, status, v) }
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/acme/provisioners":            ok(201, prov),
		"GET /api/v1/acme/provisioners":             ok(200, apitypes.ProvisionerList{Provisioners: []apitypes.Provisioner{prov}}),
		"GET /api/v1/acme/provisioners/{name}":      ok(200, prov),
		"POST /api/v1/acme/provisioners/{name}/eab": ok(201, apitypes.NewEABKey{KeyID: "kid_1", HMACKey: "c2VjcmV0LWhtYWM", Provisioner: "internal", Principal: "web-fleet", DirectoryURL: dir}),
		"GET /api/v1/acme/provisioners/{name}/eab":  ok(200, apitypes.EABKeyList{Keys: []apitypes.EABKey{key}}),
		"POST /api/v1/acme/renew-now":               ok(200, apitypes.RenewNowResult{Count: 2, Serials: []string{"01ab", "02cd"}}),
	})
	spki := strings.Repeat("AB", 32)
	tests := []requestShape{
		{[]string{"acme", "create", "internal", "--ca", "issuing", "--profile", "web_server", "--challenges", "http-01", "--challenges", "dns-01",
			"--allow-names", "*.example.internal,10.0.0.0/8", "--require-eab", "--terms-of-service", "https://example.internal/terms"},
			"POST", "/api/v1/acme/provisioners",
			`{"name":"internal","ca":"issuing","profile":"web_server","challenges":["http-01","dns-01"],"allow_names":["*.example.internal","10.0.0.0/8"],"require_eab":true,"terms_of_service":"https://example.internal/terms"}`,
			[]string{"Created ACME provisioner internal.", dir, "acme eab create --provisioner internal"}},
		{[]string{"acme", "create", "plain", "--ca", "issuing", "--profile", "web_server"}, "POST", "/api/v1/acme/provisioners",
			`{"name":"plain","ca":"issuing","profile":"web_server"}`, []string{dir}},
		{[]string{"acme", "list"}, "GET", "/api/v1/acme/provisioners", "", []string{"internal", "issuing", "http-01,dns-01", "required", dir}},
		{[]string{"acme", "show", "a b"}, "GET", "/api/v1/acme/provisioners/a b", "", []string{"Directory URL:", dir, "*.example.internal"}},
		{[]string{"acme", "eab", "create", "--provisioner", "internal", "--principal", "web-fleet", "--description", "web servers"},
			"POST", "/api/v1/acme/provisioners/internal/eab", `{"principal":"web-fleet","description":"web servers"}`,
			[]string{"kid_1", "c2VjcmV0LWhtYWM", "--eab --kid kid_1 --hmac c2VjcmV0LWhtYWM", "--eab-kid kid_1 --eab-hmac-key c2VjcmV0LWhtYWM", "web-fleet"}},
		{[]string{"acme", "eab", "create", "--provisioner", "internal"}, "POST", "/api/v1/acme/provisioners/internal/eab", `{}`, []string{"kid_1"}},
		{[]string{"acme", "eab", "list", "--provisioner", "internal"}, "GET", "/api/v1/acme/provisioners/internal/eab", "", []string{"kid_1", "web-fleet", "unused"}},
		{[]string{"acme", "renew-now", "--ca", "issuing", "--san", "app.example.internal"}, "POST", "/api/v1/acme/renew-now",
			`{"ca":"issuing","san":"app.example.internal"}`,
			[]string{"2 certificates will be renewed by ARI-aware clients at their next check", "01ab\n02cd\n"}},
		{[]string{"acme", "renew-now", "--spki", spki, "--serial", "01:AB", "--profile", "web_server"}, "POST", "/api/v1/acme/renew-now",
			`{"profile":"web_server","spki_sha256":"` + strings.ToLower(spki) + `","serial":"01ab"}`, nil},
	}
	checkRequestShapes(t, f, tests)

	// --json prints the API's answer.
	checkJSONKeys(t, f, []jsonKey{
		{[]string{"acme", "list"}, "provisioners"},
		{[]string{"acme", "show", "internal"}, "directory_url"},
		{[]string{"acme", "eab", "list", "--provisioner", "internal"}, "keys"},
		{[]string{"acme", "eab", "create", "--provisioner", "internal"}, "hmac_key"},
		{[]string{"acme", "renew-now", "--profile", "web_server"}, "serials"},
	})
}

func TestACMERenewNowNothingMatches(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/acme/renew-now": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.RenewNowResult{Serials: []string{}})
		},
	})
	code, out, errOut := run(t, f.env, "acme", "renew-now", "--san", "gone.example.internal")
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestACMEProvisionerNotFound(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/acme/provisioners/{name}": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 404, apitypes.Error{Error: "not found", Detail: "acme: not found: provisioner nope"})
		},
	})
	code, _, errOut := run(t, f.env, "acme", "show", "nope")
	if code != exitError || !strings.Contains(errOut, "certwright: not found") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
