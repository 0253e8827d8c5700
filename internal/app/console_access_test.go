package app

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/web/apitypes"
)

var tMintedToken = regexp.MustCompile(`id="newtoken">(cwt_[0-9a-f]{16}_[A-Za-z0-9_-]+)<`)

// TestConsoleAccess: an administrator creates a principal with a scoped
// role and a first token in one form, sees the token once, and the token
// works with exactly that scope; mints and revokes a further token (the
// revocation needs its confirmation); binds and unbinds a role; creates
// and deletes a custom role; disables the principal, which ends its
// console session. Every change is in the audit log. Bad input is a 400
// that leaves nothing behind; a taken name a 409.
func TestConsoleAccess(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			b := in.browser(t)
			b.signIn(in.token)
			page := string(b.do("GET", "/access", nil).body)
			for _, want := range []string{`href="/access"`, `<strong>admin</strong>`, `action="/access/principals"`, `action="/access/roles"`, "<code>principal:manage</code>"} {
				if !strings.Contains(page, want) {
					t.Fatalf("access page lacks %s: %s", want, tTrim([]byte(page)))
				}
			}
			csrf := b.csrf()
			from := tAuditHead(t, in)

			// Bad input: nothing is created.
			bad := b.do("POST", "/access/principals", url.Values{"csrf": {csrf}, "name": {"bad name!"}, "kind": {"machine"}, "role": {"viewer"}, "token": {"yes"}})
			if bad.status != http.StatusBadRequest || !strings.Contains(string(bad.body), "principal name") {
				t.Errorf("a bad name: %d, want 400 naming the problem: %s", bad.status, tTrim(bad.body))
			}
			if r := b.do("POST", "/access/principals", url.Values{"csrf": {csrf}, "name": {"deployer"}, "kind": {"machine"}, "cas": {"issuing"}}); r.status != http.StatusBadRequest {
				t.Errorf("a scope without a role: %d, want 400", r.status)
			}
			if r := b.do("POST", "/access/principals", url.Values{"csrf": {csrf}, "name": {"deployer"}, "kind": {"machine"}, "role": {"viewer"}, "token": {"yes"}, "expires": {"forever"}}); r.status != http.StatusBadRequest {
				t.Errorf("a bad expiry: %d, want 400", r.status)
			}
			if r := b.do("POST", "/access/principals", url.Values{"csrf": {csrf}, "name": {"deployer"}, "kind": {"machine"}, "role": {"no-such-role"}}); r.status != http.StatusNotFound {
				t.Errorf("an unknown role: %d, want 404", r.status)
			}
			if r := in.call("GET", "/api/v1/principals/deployer", nil); r.status != http.StatusNotFound {
				t.Fatalf("a refused create left principal deployer behind: %d", r.status)
			}

			// Create with a scoped role and a token, shown once.
			r := b.do("POST", "/access/principals", url.Values{"csrf": {csrf}, "name": {"deployer"}, "kind": {"machine"},
				"description": {"release pipeline"}, "role": {"viewer"}, "cas": {"issuing"}, "token": {"yes"}, "expires": {"30d"}})
			m := tMintedToken.FindSubmatch(r.body)
			if r.status != http.StatusCreated || m == nil {
				t.Fatalf("create: %d without the new token: %s", r.status, tTrim(r.body))
			}
			if !strings.Contains(string(r.body), "viewer") || !strings.Contains(string(r.body), "CAs issuing") {
				t.Errorf("the new principal's page does not show its scoped role: %s", tTrim(r.body))
			}
			first := string(m[1])
			if got := b.do("GET", "/access/principals/deployer", nil); strings.Contains(string(got.body), first) || strings.Contains(string(got.body), first[len("cwt_0123456789abcdef_"):]) {
				t.Error("the token is shown again after its creation")
			}
			var who apitypes.Whoami
			if r := in.raw("GET", "/api/v1/whoami", "Bearer "+first, nil); r.status != http.StatusOK || json.Unmarshal(r.body, &who) != nil {
				t.Fatalf("the minted token does not authenticate: %d", r.status)
			}
			if who.Name != "deployer" || len(who.Bindings) != 1 || who.Bindings[0].Role != "viewer" || strings.Join(who.Bindings[0].Scope.CAs, ",") != "issuing" {
				t.Errorf("the minted token's principal: %+v", who)
			}
			if r := b.do("POST", "/access/principals", url.Values{"csrf": {csrf}, "name": {"deployer"}, "kind": {"human"}}); r.status != http.StatusConflict ||
				!regexp.MustCompile(`role="alert">[^<]*already exists[^<]*deployer[^<]*<`).Match(r.body) || strings.Contains(string(r.body), "store: ") {
				t.Errorf("a taken name: %d, want 409 naming it without package prefixes: %s", r.status, tTrim(r.body))
			}

			// A second token, then its revocation.
			r = b.do("POST", "/access/principals/deployer/tokens", url.Values{"csrf": {csrf}, "description": {"rotation"}, "expires": {"90d"}})
			m = tMintedToken.FindSubmatch(r.body)
			if r.status != http.StatusCreated || m == nil {
				t.Fatalf("mint: %d without the token: %s", r.status, tTrim(r.body))
			}
			second := string(m[1])
			id := second[len("cwt_") : len("cwt_")+16]
			if r := b.do("POST", "/access/tokens/"+id+"/revoke", url.Values{"csrf": {csrf}, "principal": {"deployer"}}); r.status != http.StatusBadRequest {
				t.Errorf("revoke without the confirmation: %d, want 400", r.status)
			}
			if r := in.raw("GET", "/api/v1/whoami", "Bearer "+second, nil); r.status != http.StatusOK {
				t.Fatalf("an unconfirmed revoke stopped the token: %d", r.status)
			}
			r = b.do("POST", "/access/tokens/"+id+"/revoke", url.Values{"csrf": {csrf}, "principal": {"deployer"}, "confirm": {"yes"}})
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/access/principals/deployer?changed=token-revoked" {
				t.Fatalf("revoke: %d to %q: %s", r.status, r.header.Get("Location"), tTrim(r.body))
			}
			if r := in.raw("GET", "/api/v1/whoami", "Bearer "+second, nil); r.status != http.StatusUnauthorized {
				t.Errorf("a revoked token: %d, want 401", r.status)
			}
			if r := in.raw("GET", "/api/v1/whoami", "Bearer "+first, nil); r.status != http.StatusOK {
				t.Errorf("revoking one token stopped another: %d", r.status)
			}

			// A custom role, bound and unbound; in use it cannot be deleted.
			if r := b.do("POST", "/access/roles", url.Values{"csrf": {csrf}, "role_name": {"reader"}, "permission": {"cert:read", "ca:read"}}); r.status != http.StatusSeeOther {
				t.Fatalf("create role: %d %s", r.status, tTrim(r.body))
			}
			if r := b.do("POST", "/access/roles", url.Values{"csrf": {csrf}, "role_name": {"odd"}, "permission": {"cert:everything"}}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "unknown permission") {
				t.Errorf("a role with an unknown permission: %d, want 400 naming it", r.status)
			}
			if r := b.do("POST", "/access/principals/deployer/bindings", url.Values{"csrf": {csrf}, "role": {"reader"}, "names": {"*.example.internal"}}); r.status != http.StatusSeeOther {
				t.Fatalf("bind: %d %s", r.status, tTrim(r.body))
			}
			if r := b.do("POST", "/access/roles/reader/delete", url.Values{"csrf": {csrf}}); r.status != http.StatusConflict {
				t.Errorf("deleting a role in use: %d, want 409", r.status)
			}
			var bindings apitypes.BindingList
			in.must(http.StatusOK, "GET", "/api/v1/bindings", nil, &bindings)
			bid := ""
			for _, bd := range bindings.Bindings {
				if bd.Principal == "deployer" && bd.Role == "reader" {
					bid = bd.ID
				}
			}
			if bid == "" {
				t.Fatalf("the console's binding is not in the API's list: %+v", bindings)
			}
			if r := b.do("POST", "/access/bindings/"+bid+"/delete", url.Values{"csrf": {csrf}, "principal": {"deployer"}}); r.status != http.StatusSeeOther {
				t.Fatalf("unbind: %d %s", r.status, tTrim(r.body))
			}
			if r := b.do("POST", "/access/roles/reader/delete", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther {
				t.Errorf("deleting the unused role: %d %s", r.status, tTrim(r.body))
			}

			// Disabling needs the confirmation; it ends the principal's
			// console session and its tokens.
			db := in.browser(t)
			db.signIn(first)
			if r := b.do("POST", "/access/principals/deployer/disable", url.Values{"csrf": {csrf}}); r.status != http.StatusBadRequest {
				t.Errorf("disable without the confirmation: %d, want 400", r.status)
			}
			if r := b.do("POST", "/access/principals/deployer/disable", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusSeeOther {
				t.Fatalf("disable: %d %s", r.status, tTrim(r.body))
			}
			wantLogin(t, db.do("GET", "/", nil), "")
			if r := in.raw("GET", "/api/v1/whoami", "Bearer "+first, nil); r.status != http.StatusUnauthorized {
				t.Errorf("a disabled principal's token: %d, want 401", r.status)
			}
			// Nobody disables themselves, and the page offers it to nobody.
			if p := string(b.do("GET", "/access/principals/admin", nil).body); strings.Contains(p, "/access/principals/admin/disable") {
				t.Error("the administrator's own page offers to disable it")
			}
			if r := b.do("POST", "/access/principals/admin/disable", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusBadRequest {
				t.Errorf("disabling oneself: %d, want 400", r.status)
			}

			var actions []string
			for _, ev := range tAuditEvents(t, in, from) {
				actions = append(actions, ev.Action)
			}
			got := strings.Join(actions, " ")
			for _, want := range []string{"principal.create", "binding.create", "token.create", "token.revoke", "role.create", "binding.delete", "role.delete", "principal.disable"} {
				if !strings.Contains(got, want) {
					t.Errorf("audit log after the console's changes lacks %s: %s", want, got)
				}
			}
		})
	}
}

// TestConsoleAccessRefused: a principal that may only read principals
// sees them without a single form or button and is refused every change;
// a principal:manage holder who is not an administrator cannot grant the
// admin role (nothing is left behind), and gets no button to act on the
// administrator, whose token it is refused to revoke; a principal without
// principal:read sees no Access link and is refused the page.
func TestConsoleAccessRefused(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "people_reader", Permissions: []string{"principal:read"}}, nil)
	in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "people_admin", Permissions: []string{"principal:read", "principal:manage", "cert:read"}}, nil)
	reader := strings.TrimPrefix(in.tCreatePrincipal(t, "reader", "people_reader", apitypes.Scope{}, true), "Bearer ")
	manager := strings.TrimPrefix(in.tCreatePrincipal(t, "manager", "people_admin", apitypes.Scope{}, true), "Bearer ")
	var tokens apitypes.TokenList
	in.must(http.StatusOK, "GET", "/api/v1/principals/admin/tokens", nil, &tokens)
	adminTokenID := tokens.Tokens[0].ID

	rb := in.browser(t)
	rb.signIn(reader)
	page := string(rb.do("GET", "/access", nil).body)
	if !strings.Contains(page, "<strong>manager</strong>") || strings.Contains(page, "<form class=\"stack\"") || strings.Contains(page, "/delete") {
		t.Errorf("a reader's access page: %s", tTrim([]byte(page)))
	}
	if p := string(rb.do("GET", "/access/principals/manager", nil).body); strings.Contains(p, "/revoke") || strings.Contains(p, "/disable") || strings.Contains(p, "/tokens\"") || strings.Contains(p, "/bindings\"") {
		t.Errorf("a reader's principal page offers changes: %s", tTrim([]byte(p)))
	}
	csrf := rb.csrf()
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/access/principals", url.Values{"name": {"sneaky"}, "kind": {"human"}, "role": {"admin"}}},
		{"/access/principals/manager/tokens", url.Values{}},
		{"/access/principals/manager/disable", url.Values{"confirm": {"yes"}}},
		{"/access/principals/manager/bindings", url.Values{"role": {"viewer"}}},
		{"/access/tokens/" + adminTokenID + "/revoke", url.Values{"confirm": {"yes"}}},
		{"/access/roles", url.Values{"role_name": {"x"}, "permission": {"cert:read"}}},
		{"/access/roles/people_admin/delete", url.Values{}},
	} {
		post.form.Set("csrf", csrf)
		if r := rb.do("POST", post.path, post.form); r.status != http.StatusForbidden {
			t.Errorf("a reader's POST %s: %d, want 403", post.path, r.status)
		}
	}

	mb := in.browser(t)
	mb.signIn(manager)
	csrf = mb.csrf()
	r := mb.do("POST", "/access/principals", url.Values{"csrf": {csrf}, "name": {"sneaky"}, "kind": {"human"}, "role": {"admin"}, "token": {"yes"}})
	if r.status != http.StatusForbidden || tMintedToken.Match(r.body) {
		t.Errorf("a manager granting admin: %d, want 403 and no token: %s", r.status, tTrim(r.body))
	}
	if r := in.call("GET", "/api/v1/principals/sneaky", nil); r.status != http.StatusNotFound {
		t.Errorf("a refused grant left principal sneaky behind: %d", r.status)
	}
	if p := string(mb.do("GET", "/access/principals/admin", nil).body); strings.Contains(p, "/revoke") || strings.Contains(p, "/disable") || strings.Contains(p, "/access/principals/admin/tokens") {
		t.Errorf("a manager is offered changes to the administrator: %s", tTrim([]byte(p)))
	}
	if r := mb.do("POST", "/access/tokens/"+adminTokenID+"/revoke", url.Values{"csrf": {csrf}, "principal": {"admin"}, "confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Errorf("a manager revoking the administrator's token: %d, want 403", r.status)
	}
	if r := in.call("GET", "/api/v1/whoami", nil); r.status != http.StatusOK {
		t.Errorf("the administrator's token after the refused revoke: %d", r.status)
	}
	// What the manager holds it may give.
	if r := mb.do("POST", "/access/principals", url.Values{"csrf": {csrf}, "name": {"helper"}, "kind": {"human"}, "role": {"people_reader"}}); r.status != http.StatusCreated {
		t.Errorf("a manager creating a principal with a role it holds: %d %s", r.status, tTrim(r.body))
	}

	vb := in.browser(t)
	vb.signIn(strings.TrimPrefix(in.tCreatePrincipal(t, "jo", "viewer", apitypes.Scope{}, true), "Bearer "))
	if p := string(vb.do("GET", "/", nil).body); strings.Contains(p, `href="/access"`) {
		t.Error("a viewer without principal:read is shown the Access link")
	}
	if r := vb.do("GET", "/access", nil); r.status != http.StatusForbidden {
		t.Errorf("a viewer's GET /access: %d, want 403", r.status)
	}
	if r := vb.do("GET", "/access/principals/admin", nil); r.status != http.StatusForbidden {
		t.Errorf("a viewer's GET /access/principals/admin: %d, want 403", r.status)
	}
}
