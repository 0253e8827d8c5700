package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// runAt is run with the command's clock fixed at now.
func runAt(t *testing.T, now time.Time, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	r := &runner{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return env[k] }, now: func() time.Time { return now }}
	code = report(&errb, dispatch(context.Background(), r, commandTree(), args), wantsJSON(args))
	return code, out.String(), errb.String()
}

func TestAccessUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"principal", "create", "bot"}, "--kind is required"},
		{[]string{"principal", "create", "bot", "--kind", "robot"}, `--kind "robot": want machine or human`},
		{[]string{"principal", "create", "bot", "--kind", "machine", "--role", "issuer", "--names", "a.*.example"}, "--names: name pattern"},
		{[]string{"principal", "create", "bot", "--kind", "machine", "--role", "issuer", "--names", "*."}, "--names"},
		{[]string{"principal", "create", "bot", "--kind", "machine", "--role", "issuer", "--names", "10.0.0.0/33"}, "not a CIDR network"},
		{[]string{"principal", "create", "bot", "--kind", "machine", "--ca", "issuing"}, "give --role too"},
		{[]string{"principal", "create", "bot", "--kind", "machine", "--token-out", "f"}, "go with --token"},
		{[]string{"principal", "create", "bot", "--kind", "machine", "--token", "--token-expires", "soon"}, `--token-expires: "soon" is not a duration`},
		{[]string{"principal", "show"}, "missing NAME"},
		{[]string{"principal", "identity", "add", "bot"}, "give --uri URI, --dns NAME or --email ADDRESS"},
		{[]string{"principal", "identity", "add", "bot", "--uri", "spiffe://x/y", "--dns", "x"}, "give one of --uri, --dns and --email"},
		{[]string{"principal", "identity", "add", "bot", "--email", "Bot <bot@example.internal>"}, "not a plain e-mail address"},
		{[]string{"principal", "identity", "add", "bot", "--uri", "no-scheme"}, "not an absolute URI"},
		{[]string{"principal", "identity", "remove", "bot", "--dns", "https://x"}, "not a DNS name"},
		{[]string{"token", "create", "bot", "--expires", "0d"}, "--expires"},
		{[]string{"token", "list", "a", "b"}, `unexpected argument "b"`},
		{[]string{"role", "create", "r"}, "--permissions is required"},
		{[]string{"role", "create", "r", "--permissions", "cert:read,cert:fly"}, `unknown permission "cert:fly"`},
		{[]string{"role", "bind", "bot"}, "missing ROLE"},
		{[]string{"role", "bind", "bot", "issuer", "--names", "*@"}, "--names"},
		{[]string{"request", "reject", "req_1"}, "--comment is required"},
		{[]string{"request", "reject", "req_1", "--comment", "  "}, "--comment is required"},
		{[]string{"request", "list", "--status", "open"}, `--status "open"`},
		{[]string{"request", "fetch", "req_1"}, "--out is required"},
		{[]string{"audit", "export", "--format", "csv"}, "jsonl is the only format"},
		{[]string{"audit", "export", "--since", "yesterday"}, `--since: "yesterday" is not an RFC 3339 time`},
		{[]string{"audit", "export", "--since", "2026-02-01", "--until", "2026-01-01"}, "is not before --until"},
		{[]string{"report", "issued", "--format", "xml"}, `--format "xml"`},
		{[]string{"report", "revoked", "--until", "2026-13-01"}, "--until"},
		{[]string{"report", "issued", "--json", "--format", "csv"}, "contradicts"},
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

func TestParseTimeRef(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)
	good := []struct {
		in   string
		want time.Time
	}{
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"2026-01-02T15:04:05+02:00", time.Date(2026, 1, 2, 13, 4, 5, 0, time.UTC)},
		{"2026-01-02", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"30d", now.Add(-30 * 24 * time.Hour)},
		{"2w", now.Add(-14 * 24 * time.Hour)},
		{"12h", now.Add(-12 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
	}
	for _, tt := range good {
		got, err := parseTimeRef(tt.in, now)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("parseTimeRef(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "yesterday", "2026-1-2", "2026-01-02 15:04", "-5d", "0d", "1.5d", "2026-02-30"} {
		if got, err := parseTimeRef(in, now); err == nil {
			t.Errorf("parseTimeRef(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "30d") || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("parseTimeRef(%q) error %q does not show the accepted forms", in, err)
		}
	}
}

// jsonEqual compares a request body with the JSON it should hold.
func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	if want == "" {
		return len(got) == 0
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestAccessRequestShapes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	principal := apitypes.Principal{ID: "prn_1", Name: "bot", Kind: "machine", CreatedAt: at, CreatedBy: "admin",
		Bindings:   []apitypes.Binding{{ID: "bnd_1", Principal: "bot", Role: "issuer", Scope: apitypes.Scope{Names: []string{"*.example.internal"}}}},
		Identities: []apitypes.Identity{{Kind: "uri", Value: "spiffe://example.internal/bot"}},
		Tokens:     []apitypes.Token{{ID: "tok_1", Principal: "bot", CreatedAt: at}}}
	token := apitypes.Token{ID: "tok_1", Principal: "bot", CreatedAt: at, RevokedAt: &at}
	request := apitypes.ApprovalRequest{ID: "req_1", Requester: "bot", CA: "issuing", Profile: "web_server",
		Names: []string{"app.example.internal"}, Status: "pending", CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
	ok := func(status int, v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if v == nil {
				w.WriteHeader(status)
				return
			}
			writeTestJSON(w, status, v)
		}
	}
	issued := request
	issued.Status, issued.Serial = "issued", "01ab"
	rejected := request
	rejected.Status = "rejected"
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/principals":                           ok(200, apitypes.PrincipalList{Principals: []apitypes.Principal{principal}}),
		"POST /api/v1/principals":                          ok(201, apitypes.CreatePrincipalResult{Principal: principal}),
		"GET /api/v1/principals/{name}":                    ok(200, principal),
		"POST /api/v1/principals/{name}/disable":           ok(200, principal),
		"GET /api/v1/principals/{name}/tokens":             ok(200, apitypes.TokenList{Tokens: []apitypes.Token{token}}),
		"POST /api/v1/tokens/{id}/revoke":                  ok(200, token),
		"POST /api/v1/principals/{name}/identities":        ok(201, apitypes.Identity{Kind: "dns", Value: "bot.example.internal"}),
		"POST /api/v1/principals/{name}/identities/remove": ok(204, nil),
		"GET /api/v1/roles":                                ok(200, apitypes.RoleList{Roles: []apitypes.Role{{Name: "admin", Permissions: []string{"ca:read"}, Builtin: true}}}),
		"POST /api/v1/roles":                               ok(201, apitypes.Role{Name: "renewer", Permissions: []string{"cert:read", "cert:issue"}}),
		"DELETE /api/v1/roles/{name}":                      ok(204, nil),
		"GET /api/v1/bindings":                             ok(200, apitypes.BindingList{Bindings: principal.Bindings}),
		"POST /api/v1/bindings":                            ok(201, principal.Bindings[0]),
		"DELETE /api/v1/bindings/{id}":                     ok(204, nil),
		"GET /api/v1/requests":                             ok(200, apitypes.ApprovalRequestList{Requests: []apitypes.ApprovalRequest{request}}),
		"GET /api/v1/requests/{id}":                        ok(200, request),
		"POST /api/v1/requests/{id}/approve":               ok(200, issued),
		"POST /api/v1/requests/{id}/reject":                ok(200, rejected),
		"GET /api/v1/audit/verify":                         ok(200, apitypes.AuditVerifyResult{Intact: true}),
		"GET /api/v1/reports/{kind}":                       ok(200, apitypes.Report{Kind: "issued"}),
	})
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		args                []string
		method, path, query string
		body                string
	}{
		{[]string{"principal", "list"}, "GET", "/api/v1/principals", "", ""},
		{[]string{"principal", "create", "bot", "--kind", "machine", "--description", "deploys", "--role", "issuer",
			"--ca", "issuing", "--profile", "web_server,tls_client", "--names", "*.example.internal", "--names", "10.0.0.0/8"},
			"POST", "/api/v1/principals", "",
			`{"name":"bot","kind":"machine","description":"deploys","role":"issuer","scope":{"cas":["issuing"],"profiles":["web_server","tls_client"],"names":["*.example.internal","10.0.0.0/8"]}}`},
		{[]string{"principal", "create", "alice", "--kind", "human"}, "POST", "/api/v1/principals", "", `{"name":"alice","kind":"human"}`},
		{[]string{"principal", "show", "a b"}, "GET", "/api/v1/principals/a b", "", ""},
		{[]string{"principal", "disable", "bot"}, "POST", "/api/v1/principals/bot/disable", "", ""},
		{[]string{"principal", "identity", "add", "bot", "--dns", "Bot.Example.Internal."}, "POST", "/api/v1/principals/bot/identities", "",
			`{"kind":"dns","value":"bot.example.internal"}`},
		{[]string{"principal", "identity", "remove", "bot", "--uri", "spiffe://example.internal/bot"}, "POST", "/api/v1/principals/bot/identities/remove", "",
			`{"kind":"uri","value":"spiffe://example.internal/bot"}`},
		{[]string{"principal", "identity", "add", "alice", "--email", "Alice@Example.Internal"}, "POST", "/api/v1/principals/alice/identities", "",
			`{"kind":"email","value":"alice@example.internal"}`},
		{[]string{"token", "list", "bot"}, "GET", "/api/v1/principals/bot/tokens", "", ""},
		{[]string{"token", "list"}, "GET", "/api/v1/principals", "", ""},
		{[]string{"token", "revoke", "tok_1"}, "POST", "/api/v1/tokens/tok_1/revoke", "", ""},
		{[]string{"role", "list"}, "GET", "/api/v1/roles", "", ""},
		{[]string{"role", "create", "renewer", "--permissions", "cert:read,cert:issue", "--description", "renew only"}, "POST", "/api/v1/roles", "",
			`{"name":"renewer","description":"renew only","permissions":["cert:read","cert:issue"],"builtin":false}`},
		{[]string{"role", "delete", "renewer"}, "DELETE", "/api/v1/roles/renewer", "", ""},
		{[]string{"role", "bind", "bot", "issuer", "--ca", "issuing"}, "POST", "/api/v1/bindings", "",
			`{"principal":"bot","role":"issuer","scope":{"cas":["issuing"]}}`},
		{[]string{"role", "bind", "bot", "viewer"}, "POST", "/api/v1/bindings", "", `{"principal":"bot","role":"viewer"}`},
		{[]string{"role", "unbind", "bnd_1"}, "DELETE", "/api/v1/bindings/bnd_1", "", ""},
		{[]string{"role", "bindings"}, "GET", "/api/v1/bindings", "", ""},
		{[]string{"role", "bindings", "--principal", "bot"}, "GET", "/api/v1/bindings", "principal=bot", ""},
		{[]string{"request", "list"}, "GET", "/api/v1/requests", "status=pending", ""},
		{[]string{"request", "list", "--status", "all"}, "GET", "/api/v1/requests", "status=all", ""},
		{[]string{"request", "show", "req_1"}, "GET", "/api/v1/requests/req_1", "", ""},
		{[]string{"request", "approve", "req_1"}, "POST", "/api/v1/requests/req_1/approve", "", `{}`},
		{[]string{"request", "approve", "req_1", "--comment", "ok"}, "POST", "/api/v1/requests/req_1/approve", "", `{"comment":"ok"}`},
		{[]string{"request", "reject", "req_1", "--comment", "wrong profile"}, "POST", "/api/v1/requests/req_1/reject", "", `{"comment":"wrong profile"}`},
		{[]string{"audit", "verify"}, "GET", "/api/v1/audit/verify", "", ""},
		{[]string{"report", "issued"}, "GET", "/api/v1/reports/issued", "format=json", ""},
		{[]string{"report", "revoked", "--since", "30d", "--until", "2026-02-25", "--format", "csv"}, "GET", "/api/v1/reports/revoked",
			"format=csv&since=2026-01-30T00%3A00%3A00Z&until=2026-02-25T00%3A00%3A00Z", ""},
	}
	for _, tt := range tests {
		// Sequential: each case checks the one request it adds.
		n := len(f.requests())
		code, out, errOut := runAt(t, now, f.env, tt.args...)
		if code != 0 {
			t.Errorf("%s: exit %d, stderr %q", strings.Join(tt.args, " "), code, errOut)
			continue
		}
		if out == "" {
			t.Errorf("%s: printed nothing", strings.Join(tt.args, " "))
		}
		reqs := f.requests()[n:]
		if len(reqs) != 1 {
			t.Errorf("%s: %d requests, want 1", strings.Join(tt.args, " "), len(reqs))
			continue
		}
		got := reqs[0]
		if got.method != tt.method || got.path != tt.path || got.query != tt.query || !jsonEqual(t, got.body, tt.body) {
			t.Errorf("%s:\n got %s %s?%s %s\nwant %s %s?%s %s", strings.Join(tt.args, " "),
				got.method, got.path, got.query, got.body, tt.method, tt.path, tt.query, tt.body)
		}
		if got.auth != "Bearer "+testToken || strings.Contains(got.query, testToken) {
			t.Errorf("%s: credentials %q, query %q", strings.Join(tt.args, " "), got.auth, got.query)
		}
		if tt.body != "" && got.contentType != "application/json" {
			t.Errorf("%s: content type %q", strings.Join(tt.args, " "), got.contentType)
		}
	}

	// Every list command prints an object with the items under a named key.
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"principal", "list"}, "principals"}, {[]string{"token", "list", "bot"}, "tokens"}, {[]string{"token", "list"}, "tokens"},
		{[]string{"role", "list"}, "roles"}, {[]string{"role", "bindings"}, "bindings"}, {[]string{"request", "list"}, "requests"},
	} {
		code, out, errOut := run(t, f.env, append(tc.args, "--json")...)
		var v map[string][]map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || len(v) != 1 || len(v[tc.key]) != 1 {
			t.Errorf("%s --json: exit %d, stderr %q\n%s", strings.Join(tc.args, " "), code, errOut, out)
		}
	}
}

func TestRoleDeleteWhileBound(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"DELETE /api/v1/roles/{name}": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 409, apitypes.Error{Error: "conflict", Detail: "role renewer has 2 bindings"})
		},
	})
	code, _, errOut := run(t, f.env, "role", "delete", "renewer")
	if code != 1 || !strings.Contains(errOut, "certwright: conflict: role renewer has 2 bindings\nhint: ") || !strings.Contains(errOut, "role unbind") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestCertSignPending(t *testing.T) {
	t.Parallel()
	expires := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/certificates/sign": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 202, apitypes.ApprovalRequest{ID: "req_7", Status: "pending", Requester: "bot", ExpiresAt: expires})
		},
	})
	dir := t.TempDir()
	csr := filepath.Join(dir, "req.pem")
	writeFile(t, csr, string(testCSR(t)), 0o644)
	out := filepath.Join(dir, "app.pem")
	code, stdout, errOut := run(t, f.env, "cert", "sign", "--csr", csr, "--profile", "code_signing", "--out", out)
	want := "request req_7 is pending approval by a second principal (expires 2026-05-06T07:08:09Z); once approved: certwright request fetch req_7 --out " + out + "\n"
	if code != exitPending || stdout != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 3 and %q", code, stdout, errOut, want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a pending request wrote %s: %v", out, err)
	}

	code, stdout, errOut = run(t, f.env, "cert", "sign", "--csr", csr, "--profile", "code_signing")
	if code != exitPending || stdout != "" || !strings.Contains(errOut, "--out FILE\n") {
		t.Errorf("to stdout: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	code, stdout, _ = run(t, f.env, "cert", "sign", "--csr", csr, "--profile", "code_signing", "--json")
	var got apitypes.ApprovalRequest
	if code != exitPending || json.Unmarshal([]byte(stdout), &got) != nil || got.ID != "req_7" {
		t.Errorf("--json: exit %d\n%s", code, stdout)
	}
}

func TestRequestFetch(t *testing.T) {
	t.Parallel()
	const certPEM = "-----BEGIN CERTIFICATE-----\nTEFG\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nSU5U\n-----END CERTIFICATE-----"
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/requests/{id}": func(w http.ResponseWriter, r *http.Request) {
			q := apitypes.ApprovalRequest{ID: r.PathValue("id"), Status: r.PathValue("id")}
			switch q.Status {
			case "issued":
				q.Serial, q.CertificatePEM = "01ab", certPEM
			case "rejected":
				q.Comment = "use web_server"
			}
			writeTestJSON(w, 200, q)
		},
	})
	out := filepath.Join(t.TempDir(), "app.pem")
	code, stdout, errOut := run(t, f.env, "request", "fetch", "issued", "--out", out)
	if data, _ := os.ReadFile(out); code != 0 || string(data) != certPEM+"\n" || stdout != "" || !strings.Contains(errOut, out) {
		t.Errorf("issued: exit %d, stdout %q, stderr %q, file %q", code, stdout, errOut, data)
	}
	if code, stdout, _ := run(t, f.env, "request", "fetch", "issued", "--out", "-"); code != 0 || stdout != certPEM+"\n" {
		t.Errorf("issued to stdout: exit %d, %q", code, stdout)
	}
	for status, want := range map[string]int{"pending": exitPending, "approved": exitPending, "rejected": exitError, "expired": exitError, "failed": exitError} {
		file := filepath.Join(t.TempDir(), "x.pem")
		code, stdout, errOut := run(t, f.env, "request", "fetch", status, "--out", file)
		if code != want || stdout != "" || !strings.HasPrefix(errOut, "certwright: request "+status+" is "+status) {
			t.Errorf("%s: exit %d (want %d), stdout %q, stderr %q", status, code, want, stdout, errOut)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("%s: wrote %s", status, file)
		}
	}
	if _, _, errOut := run(t, f.env, "request", "fetch", "rejected", "--out", out+"2"); !strings.Contains(errOut, "use web_server") {
		t.Errorf("rejected: the comment is missing from %q", errOut)
	}
}

func TestRequestApproveFailed(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/requests/{id}/approve": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.ApprovalRequest{ID: "req_1", Status: "failed", Error: "CA issuing is disabled"})
		},
	})
	code, _, errOut := run(t, f.env, "request", "approve", "req_1")
	if code != 1 || errOut != "certwright: request req_1 was approved, but issuance failed: CA issuing is disabled\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestTokenSecretHandling(t *testing.T) {
	t.Parallel()
	const secret = "cwt_new_secret_value"
	var mu sync.Mutex
	var bodies []string
	rec := apitypes.Token{ID: "tok_9", Principal: "bot"}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/principals/{name}/tokens": func(w http.ResponseWriter, r *http.Request) {
			var b bytes.Buffer
			_, _ = b.ReadFrom(r.Body)
			mu.Lock()
			bodies = append(bodies, b.String())
			mu.Unlock()
			writeTestJSON(w, 201, apitypes.NewToken{Token: secret, Record: rec})
		},
		"POST /api/v1/principals": func(w http.ResponseWriter, r *http.Request) {
			var req apitypes.CreatePrincipalRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			res := apitypes.CreatePrincipalResult{Principal: apitypes.Principal{Name: req.Name, Kind: req.Kind}}
			if req.Token {
				res.Token = &apitypes.NewToken{Token: secret, Record: rec}
			}
			writeTestJSON(w, 201, res)
		},
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "bot.token")
	code, stdout, errOut := run(t, f.env, "token", "create", "bot", "--expires", "2w", "--description", "ci", "--out", file)
	if code != 0 || strings.Contains(stdout+errOut, secret) || !strings.Contains(errOut, file) || !strings.Contains(errOut, "will not be shown again") {
		t.Errorf("--out: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if data, _ := os.ReadFile(file); string(data) != secret+"\n" {
		t.Errorf("token file holds %q", data)
	}
	if len(bodies) != 1 || !jsonEqual(t, []byte(bodies[0]), `{"description":"ci","expires_in":"14d"}`) {
		t.Errorf("request bodies %q", bodies)
	}
	// An existing file is never replaced, and no token is minted for it.
	code, _, errOut = run(t, f.env, "token", "create", "bot", "--out", file)
	if code != 1 || !strings.Contains(errOut, "already exists") || len(bodies) != 1 {
		t.Errorf("existing file: exit %d, stderr %q, %d requests", code, errOut, len(bodies))
	}

	// Without --out the token alone is on stdout.
	code, stdout, errOut = run(t, f.env, "token", "create", "bot")
	if code != 0 || stdout != secret+"\n" || !strings.Contains(errOut, "will not be shown again") {
		t.Errorf("stdout: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	// --json with --out keeps the secret out of the JSON.
	file2 := filepath.Join(dir, "bot2.token")
	code, stdout, _ = run(t, f.env, "token", "create", "bot", "--out", file2, "--json")
	if code != 0 || strings.Contains(stdout, secret) || !strings.Contains(stdout, "tok_9") {
		t.Errorf("--json --out: exit %d\n%s", code, stdout)
	}

	// principal create --token: the token alone on stdout, the principal on stderr.
	code, stdout, errOut = run(t, f.env, "principal", "create", "bot", "--kind", "machine", "--token", "--token-expires", "90d")
	if code != 0 || stdout != secret+"\n" || !strings.Contains(errOut, "Created principal bot") || !strings.Contains(errOut, "will not be shown again") {
		t.Errorf("principal --token: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	reqs := f.requests()
	if last := reqs[len(reqs)-1]; !jsonEqual(t, last.body, `{"name":"bot","kind":"machine","token":true,"token_expires_in":"90d"}`) {
		t.Errorf("principal create body %s", last.body)
	}
	file3 := filepath.Join(dir, "bot3.token")
	code, stdout, errOut = run(t, f.env, "principal", "create", "bot", "--kind", "machine", "--token", "--token-out", file3)
	if fi, err := os.Stat(file3); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("--token-out file: %v %v", fi, err)
	}
	if code != 0 || strings.Contains(stdout+errOut, secret) || !strings.Contains(stdout, "Created principal bot") || !strings.Contains(stdout, file3) {
		t.Errorf("principal --token-out: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
}

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	answer := apitypes.AuditVerifyResult{Intact: true, Events: 1204, Checkpoints: 12, LastCheckpoint: 1200, Unanchored: 4}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/audit/verify": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			writeTestJSON(w, 200, answer)
		},
	})
	code, stdout, errOut := run(t, f.env, "audit", "verify")
	if code != 0 || stdout != "audit log intact: 1204 events, 12 checkpoints, last checkpoint at seq 1200 (4 events since)\n" || errOut != "" {
		t.Errorf("intact: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	mu.Lock()
	answer = apitypes.AuditVerifyResult{Intact: false, Events: 1204, Problem: &apitypes.AuditProblem{Seq: 17, Kind: "modified", Message: "hash mismatch"}}
	mu.Unlock()
	code, stdout, errOut = run(t, f.env, "audit", "verify")
	if code != 1 || stdout != "" || !strings.HasPrefix(errOut, "certwright: audit log TAMPERED: modified at event 17: hash mismatch\nhint: ") {
		t.Errorf("tampered: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	code, stdout, _ = run(t, f.env, "audit", "verify", "--json")
	var got apitypes.AuditVerifyResult
	if code != 1 || json.Unmarshal([]byte(stdout), &got) != nil || got.Problem == nil || got.Problem.Seq != 17 {
		t.Errorf("tampered --json: exit %d\n%s", code, stdout)
	}
}

func TestAuditExport(t *testing.T) {
	t.Parallel()
	const lines = `{"seq":1,"action":"ca.create"}` + "\n" + `{"seq":2,"action":"cert.issue"}` + "\n"
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/audit/events": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-ndjson")
			_, _ = w.Write([]byte(lines))
		},
	})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	code, stdout, errOut := runAt(t, now, f.env, "audit", "export", "--since", "12h")
	if code != 0 || stdout != lines || errOut != "" {
		t.Errorf("stdout: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	reqs := f.requests()
	if q := reqs[len(reqs)-1].query; q != "since=2026-03-01T00%3A00%3A00Z" {
		t.Errorf("query %q", q)
	}
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	code, stdout, errOut = runAt(t, now, f.env, "audit", "export", "--since", "2026-01-01", "--until", "2026-02-01T10:00:00Z", "--out", out)
	data, _ := os.ReadFile(out)
	if code != 0 || stdout != "" || string(data) != lines || !strings.Contains(errOut, "Wrote 2 audit events") {
		t.Errorf("--out: exit %d, stdout %q, stderr %q, file %q", code, stdout, errOut, data)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file: %v %v", fi, err)
	}
	reqs = f.requests()
	if q := reqs[len(reqs)-1].query; q != "since=2026-01-01T00%3A00%3A00Z&until=2026-02-01T10%3A00%3A00Z" {
		t.Errorf("query %q", q)
	}
}

func TestAuditExportErrorLeavesNoFile(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/audit/events": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 403, apitypes.Error{Error: "forbidden", Detail: "audit:read is required"})
		},
	})
	dir := t.TempDir()
	code, _, errOut := run(t, f.env, "audit", "export", "--out", filepath.Join(dir, "a.jsonl"))
	entries, _ := os.ReadDir(dir)
	if code != 1 || !strings.Contains(errOut, "audit:read is required\nhint: HTTP 403: ") || len(entries) != 0 {
		t.Errorf("exit %d, stderr %q, %d files left", code, errOut, len(entries))
	}
}

func TestReportFormats(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	rep := apitypes.Report{Kind: "issued", Since: at.Add(-30 * 24 * time.Hour), Until: at, Total: 2,
		PerCA: []apitypes.ReportCA{{CAID: "ca_1", CA: "issuing", Count: 2}},
		Certificates: []apitypes.ReportEntry{
			{Serial: "01aa", CA: "issuing", Profile: "web_server", Subject: "CN=a.example.internal", IssuedAt: &at, NotAfter: &at, Requester: "bot"},
			{Serial: "01bb", CA: "issuing", Profile: "web_server", SANs: []string{"b.example.internal"}, IssuedAt: &at},
		}}
	const csv = "serial,ca,ca_id,profile,subject,sans,requester,issued_at,not_before,not_after\n01aa,issuing,ca_1,web_server,CN=a.example.internal,,bot,,,\n"
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/reports/{kind}": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("format") == "csv" {
				w.Header().Set("Content-Type", "text/csv")
				_, _ = w.Write([]byte(csv))
				return
			}
			writeTestJSON(w, 200, rep)
		},
	})
	code, stdout, errOut := run(t, f.env, "report", "issued")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 8 || !strings.HasPrefix(lines[0], "Certificates issued from 2025-12-16T10:00:00Z to 2026-01-15T10:00:00Z: 2") ||
		!strings.HasPrefix(lines[2], "CA ") || !strings.Contains(lines[3], "ca_1") || !strings.HasPrefix(lines[5], "SERIAL") ||
		!strings.Contains(lines[6], "CN=a.example.internal") || !strings.Contains(lines[7], "b.example.internal") {
		t.Errorf("table: exit %d, stderr %q\n%s", code, errOut, stdout)
	}
	code, stdout, _ = run(t, f.env, "report", "issued", "--format", "csv")
	if code != 0 || stdout != csv {
		t.Errorf("csv: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{{"--format", "json"}, {"--json"}} {
		code, stdout, _ = run(t, f.env, append([]string{"report", "issued"}, args...)...)
		var got apitypes.Report
		if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil || got.Total != 2 {
			t.Errorf("%s: exit %d\n%s", args, code, stdout)
		}
	}
	out := filepath.Join(t.TempDir(), "r.csv")
	code, stdout, _ = run(t, f.env, "report", "revoked", "--format", "csv", "--out", out)
	if data, _ := os.ReadFile(out); code != 0 || stdout != "" || string(data) != csv {
		t.Errorf("--out: exit %d, stdout %q, file %q", code, stdout, data)
	}
	for _, r := range f.requests() {
		if want := map[bool]string{true: "csv", false: "json"}[strings.Contains(r.query, "csv")]; !strings.Contains(r.query, "format="+want) {
			t.Errorf("query %q", r.query)
		}
	}
}

// mtlsServer is a TLS server that asks for (but does not verify) a client
// certificate and records what each request presented.
type mtlsServer struct {
	srv     *httptest.Server
	env     map[string]string
	dataDir string

	mu    sync.Mutex
	auths []string
	certs []string
}

func newMTLSServer(t *testing.T) *mtlsServer {
	t.Helper()
	m := &mtlsServer{dataDir: t.TempDir()}
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		m.mu.Lock()
		m.auths = append(m.auths, r.Header.Get("Authorization"))
		m.certs = append(m.certs, cn)
		m.mu.Unlock()
		if cn == "" && r.Header.Get("Authorization") == "" || cn == "revoked.example.internal" {
			writeTestJSON(w, 401, apitypes.Error{Error: "unauthorized"})
			return
		}
		writeTestJSON(w, 200, apitypes.RoleList{Roles: []apitypes.Role{}})
	}))
	m.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	m.srv.StartTLS()
	t.Cleanup(m.srv.Close)
	writeFile(t, filepath.Join(m.dataDir, "server.json"), `{"url": "`+m.srv.URL+`"}`, 0o644)
	writeFile(t, filepath.Join(m.dataDir, "admin.token"), testToken+"\n", 0o600)
	writeFile(t, filepath.Join(m.dataDir, "root.pem"), string(pki.CertPEM(m.srv.Certificate().Raw)), 0o644)
	m.env = map[string]string{"CERTWRIGHT_DATA_DIR": m.dataDir}
	return m
}

func (m *mtlsServer) last() (auth, cert string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.auths[len(m.auths)-1], m.certs[len(m.certs)-1]
}

// writeClientCert writes a client certificate and its key for host.
func writeClientCert(t *testing.T, host string) (certFile, keyFile string) {
	t.Helper()
	tc := newTestChain(t)
	key := newKey(t)
	tmpl := leafTemplate(host, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	leaf := issueCert(t, tmpl, key, tc.inter)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, host+".pem"), filepath.Join(dir, host+".key")
	writeFile(t, certFile, string(pki.CertPEM(leaf.cert.Raw)), 0o644)
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), 0o600)
	return certFile, keyFile
}

func TestClientCertificate(t *testing.T) {
	t.Parallel()
	m := newMTLSServer(t)
	certFile, keyFile := writeClientCert(t, "bot.example.internal")

	// Without a client certificate, DIR/admin.token as before.
	if code, _, errOut := run(t, m.env, "role", "list"); code != 0 {
		t.Fatalf("token: exit %d, stderr %q", code, errOut)
	}
	if auth, cert := m.last(); auth != "Bearer "+testToken || cert != "" {
		t.Errorf("token: auth %q, cert %q", auth, cert)
	}

	// With one and no explicit token: no Authorization header, and
	// DIR/admin.token is not read.
	code, _, errOut := run(t, m.env, "role", "list", "--client-cert", certFile, "--client-key", keyFile)
	if code != 0 {
		t.Fatalf("mTLS: exit %d, stderr %q", code, errOut)
	}
	if auth, cert := m.last(); auth != "" || cert != "bot.example.internal" {
		t.Errorf("mTLS: auth %q, cert %q", auth, cert)
	}

	// From the environment, without any token in the data directory.
	env := map[string]string{"CERTWRIGHT_SERVER": m.srv.URL, "CERTWRIGHT_CA_FILE": filepath.Join(m.dataDir, "root.pem"),
		"CERTWRIGHT_DATA_DIR": t.TempDir(), "CERTWRIGHT_CLIENT_CERT": certFile, "CERTWRIGHT_CLIENT_KEY": keyFile}
	if code, _, errOut := run(t, env, "role", "list"); code != 0 {
		t.Fatalf("mTLS from env: exit %d, stderr %q", code, errOut)
	}
	if auth, cert := m.last(); auth != "" || cert != "bot.example.internal" {
		t.Errorf("mTLS from env: auth %q, cert %q", auth, cert)
	}

	// An explicit token is sent along with the certificate.
	env["CERTWRIGHT_TOKEN"] = "cwt_explicit"
	if code, _, errOut := run(t, env, "role", "list"); code != 0 {
		t.Fatalf("both: exit %d, stderr %q", code, errOut)
	}
	if auth, cert := m.last(); auth != "Bearer cwt_explicit" || cert != "bot.example.internal" {
		t.Errorf("both: auth %q, cert %q", auth, cert)
	}

	// A refused certificate: the hint names it.
	revCert, revKey := writeClientCert(t, "revoked.example.internal")
	code, _, errOut = run(t, m.env, "role", "list", "--client-cert", revCert, "--client-key", revKey)
	if code != 1 || !strings.Contains(errOut, "hint: HTTP 401: the server did not accept the client certificate "+revCert) {
		t.Errorf("refused: exit %d, stderr %q", code, errOut)
	}

	// Half a pair, or a key that does not match, fails before any request.
	for _, args := range [][]string{
		{"--client-cert", certFile},
		{"--client-key", keyFile},
		{"--client-cert", certFile, "--client-key", revKey},
	} {
		code, _, errOut := run(t, m.env, append([]string{"role", "list"}, args...)...)
		if code != 1 || !strings.Contains(errOut, "client") || !strings.Contains(errOut, "hint: ") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}
