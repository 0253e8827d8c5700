package app

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tManageAttack is how a principal:manage-only caller tries a route
// against an administrator: the path wildcards and the JSON body.
type tManageAttack struct {
	values map[string]string
	body   any
}

// tManageAttacks lists, for every route that declares principal:manage,
// how the walk below aims it at an admin. A principal:manage route missing
// here fails the walk: say how it could act on a principal holding more
// than its caller, or put it in tManageNoTarget with the reason.
func tManageAttacks(admin, adminTokenID, adminBinding, adminURI, adminEABKey string) map[string]tManageAttack {
	return map[string]tManageAttack{
		// A new principal bound to admin.
		"POST /api/v1/principals":                {body: apitypes.CreatePrincipalRequest{Name: "escalated", Kind: "machine", Role: authz.RoleAdmin, Token: true}},
		"POST /api/v1/principals/{name}/disable": {values: map[string]string{"name": admin}},
		"POST /api/v1/principals/{name}/tokens":  {values: map[string]string{"name": admin}, body: apitypes.CreateTokenRequest{Description: "stolen"}},
		"POST /api/v1/tokens/{id}/revoke":        {values: map[string]string{"id": adminTokenID}},
		"POST /api/v1/principals/{name}/identities": {values: map[string]string{"name": admin},
			body: apitypes.Identity{Kind: "uri", Value: "spiffe://example.internal/stolen"}},
		"POST /api/v1/principals/{name}/identities/remove": {values: map[string]string{"name": admin},
			body: apitypes.Identity{Kind: "uri", Value: adminURI}},
		// A role granting more than the caller holds, and deleting one.
		"POST /api/v1/roles":          {body: apitypes.Role{Name: "sneaky", Permissions: []string{"principal:manage", "key:export"}}},
		"DELETE /api/v1/roles/{name}": {values: map[string]string{"name": "operators"}},
		// Its own role bound to the admin, and the admin's binding removed.
		"POST /api/v1/bindings":        {body: apitypes.CreateBindingRequest{Principal: admin, Role: "iam"}},
		"DELETE /api/v1/bindings/{id}": {values: map[string]string{"id": adminBinding}},
		// An ACME account key acting as the admin.
		"POST /api/v1/acme/provisioners/{name}/eab": {values: map[string]string{"name": DefaultACMEProvisioner},
			body: apitypes.CreateEABKeyRequest{Principal: admin}},
		// Revoking the ACME account key that acts as the admin.
		"POST /api/v1/acme/eab/{id}/revoke": {values: map[string]string{"id": adminEABKey}},
	}
}

// tManageNoTarget are principal:manage routes that act on no principal.
var tManageNoTarget = map[string]string{
	"POST /api/v1/alerts/test": "sends a test alert; names no principal",
	"GET /api/v1/whoami":       "describes the caller itself",
	"POST /api/v1/certificates/person": "issues the caller's own certificate, for addresses it holds itself; " +
		"one carrying an admin's address is refused by the identity rule (TestSSOPersonCertificateRefusals)",
}

// TestManageOnlyCannotActOnAdmin walks every route that declares
// principal:manage with a caller holding only principal:manage and
// principal:read, aimed at a machine administrator: each answers 403 with
// a detail naming the admin, nothing changes (tokens, identities,
// bindings, principals, roles, EAB keys) and every refusal is audited as
// denied. Then the same caller acts on a lesser principal, which works.
func TestManageOnlyCannotActOnAdmin(t *testing.T) {
	for _, b := range tBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			tManageOnlyCannotActOnAdmin(t, b.dbURL(t))
		})
	}
}

func tManageOnlyCannotActOnAdmin(t *testing.T, dbURL string) {
	in := tNewServer(t, dbURL)
	ctx := context.Background()

	// The target: a machine admin with a token, an identity and a binding.
	const admin, adminURI = "deploy-admin", "spiffe://example.internal/deploy-admin"
	var target apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: admin, Kind: "machine", Role: authz.RoleAdmin, Token: true}, &target)
	in.must(http.StatusCreated, "POST", "/api/v1/principals/"+admin+"/identities", apitypes.Identity{Kind: "uri", Value: adminURI}, nil)
	var adminEAB apitypes.NewEABKey
	in.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners/"+DefaultACMEProvisioner+"/eab", apitypes.CreateEABKeyRequest{Principal: admin}, &adminEAB)
	// A custom role the caller could not have granted.
	in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "operators", Permissions: []string{"cert:issue", "key:export"}}, nil)
	// The caller: principal:manage and principal:read, nothing else.
	in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "iam", Permissions: []string{"principal:manage", "principal:read"}}, nil)
	var iam apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{Name: "iam-bot", Kind: "machine", Role: "iam", Token: true}, &iam)
	caller := "Bearer " + iam.Token.Token

	snapshot := func() string {
		var v apitypes.Principal
		in.must(http.StatusOK, "GET", "/api/v1/principals/"+admin, nil, &v)
		var ps apitypes.PrincipalList
		in.must(http.StatusOK, "GET", "/api/v1/principals", nil, &ps)
		var rs apitypes.RoleList
		in.must(http.StatusOK, "GET", "/api/v1/roles", nil, &rs)
		var eab apitypes.EABKeyList
		in.must(http.StatusOK, "GET", "/api/v1/acme/provisioners/"+DefaultACMEProvisioner+"/eab", nil, &eab)
		return tJSON(t, v) + tJSON(t, len(ps.Principals)) + tJSON(t, rs) + tJSON(t, eab)
	}
	before := snapshot()

	attacks := tManageAttacks(admin, target.Token.Record.ID, target.Principal.Bindings[0].ID, adminURI, adminEAB.KeyID)
	walked := 0
	for _, rt := range tAPIRoutes(t, in.app) {
		if !slices.Contains(rt.Permissions, authz.PermPrincipalAdmin) {
			continue
		}
		key := rt.Method + " " + rt.Pattern
		if _, ok := tManageNoTarget[key]; ok {
			continue
		}
		a, ok := attacks[key]
		if !ok {
			t.Errorf("route %s declares %s but tManageAttacks has no attack on an admin for it: add one", key, authz.PermPrincipalAdmin)
			continue
		}
		walked++
		var r tResp
		if rt.Method == "POST" || rt.Method == "PUT" {
			body := "{}"
			if a.body != nil {
				body = tJSON(t, a.body)
			}
			r = in.raw(rt.Method, tPath(t, rt.Pattern, a.values), caller, strings.NewReader(body))
		} else {
			r = in.raw(rt.Method, tPath(t, rt.Pattern, a.values), caller, nil)
		}
		if r.status != http.StatusForbidden {
			t.Errorf("%s by a principal:manage-only caller against an admin: status %d, want 403: %s", key, r.status, tTrim(r.body))
			continue
		}
		e := r.apiErr(t)
		// Acting on the admin names it; granting or removing more than the
		// caller holds names the permission.
		want := admin
		switch key {
		case "POST /api/v1/principals", "POST /api/v1/roles", "DELETE /api/v1/roles/{name}":
			want = "cannot grant"
		}
		if !strings.Contains(e.Detail, want) {
			t.Errorf("%s: 403 detail %q does not say %q", key, e.Detail, want)
		}
	}
	if walked != len(attacks) {
		t.Errorf("walked %d principal:manage routes, tManageAttacks lists %d: a route went missing", walked, len(attacks))
	}
	if after := snapshot(); after != before {
		t.Errorf("refused requests changed state:\nbefore %s\nafter  %s", before, after)
	}
	if r := in.raw("GET", "/api/v1/principals/escalated", in.bearer(), nil); r.status != http.StatusNotFound {
		t.Errorf("principal escalated exists after the refused create (status %d)", r.status)
	}
	// The admin's stolen-or-not credentials still work, and none was added.
	if r := in.raw("GET", "/api/v1/whoami", "Bearer "+target.Token.Token, nil); r.status != http.StatusOK {
		t.Errorf("admin token after the refused revoke: status %d", r.status)
	}
	denied := 0
	if err := in.app.store.EachAuditEvent(ctx, 0, func(e *audit.Event) error {
		if e.Outcome == audit.Denied && e.Principal == "iam-bot" {
			denied++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if denied < walked {
		t.Errorf("%d denied audit events by iam-bot, want at least %d", denied, walked)
	}

	// A lesser principal: everything works.
	var lesser apitypes.CreatePrincipalResult
	r := in.raw("POST", "/api/v1/principals", caller, strings.NewReader(tJSON(t, apitypes.CreatePrincipalRequest{Name: "helper", Kind: "machine", Role: "iam", Token: true})))
	if r.status != http.StatusCreated {
		t.Fatalf("create a lesser principal: %d %s", r.status, tTrim(r.body))
	}
	if err := json.Unmarshal(r.body, &lesser); err != nil {
		t.Fatal(err)
	}
	ok := []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/api/v1/principals/helper/tokens", apitypes.CreateTokenRequest{Description: "second"}, http.StatusCreated},
		{"POST", "/api/v1/tokens/" + lesser.Token.Record.ID + "/revoke", nil, http.StatusOK},
		{"POST", "/api/v1/principals/helper/identities", apitypes.Identity{Kind: "dns", Value: "helper.example.internal"}, http.StatusCreated},
		{"POST", "/api/v1/principals/helper/identities/remove", apitypes.Identity{Kind: "dns", Value: "helper.example.internal"}, http.StatusNoContent},
		{"POST", "/api/v1/acme/provisioners/" + DefaultACMEProvisioner + "/eab", apitypes.CreateEABKeyRequest{Principal: "helper"}, http.StatusCreated},
		{"DELETE", "/api/v1/bindings/" + lesser.Principal.Bindings[0].ID, nil, http.StatusNoContent},
		{"POST", "/api/v1/bindings", apitypes.CreateBindingRequest{Principal: "helper", Role: "iam"}, http.StatusCreated},
		{"POST", "/api/v1/principals/helper/disable", nil, http.StatusOK},
	}
	for _, o := range ok {
		body := "{}"
		if o.body != nil {
			body = tJSON(t, o.body)
		}
		if r := in.raw(o.method, o.path, caller, strings.NewReader(body)); r.status != o.want {
			t.Errorf("%s %s on a lesser principal: status %d, want %d: %s", o.method, o.path, r.status, o.want, tTrim(r.body))
		}
	}
}
