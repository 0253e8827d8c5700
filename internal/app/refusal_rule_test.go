package app

import (
	"crypto/elliptic"
	"net/http"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestRefusalsNameTheRule: a 403 says which rule refused in the error
// body's "rule": no role grants the route, a scope does not cover the
// names, and server-generated keys go to machine principals only.
func TestRefusalsNameTheRule(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	viewer := in.tCreatePrincipal(t, "view-bot", "viewer", apitypes.Scope{}, true)
	scoped := in.tCreatePrincipal(t, "in-bot", "issuer", apitypes.Scope{Names: []string{"*.in.example.internal"}}, true)
	var human apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "hugo", Kind: "human", Role: "issuer", Token: true}, &human)

	csr := string(tCSR(t, tECKey(t, elliptic.P256()), "app.example.internal"))
	issue := tJSON(t, apitypes.IssueRequest{Profile: "internal_service", CommonName: "svc.example.internal", DNSNames: []string{"svc.example.internal"}})
	for _, tc := range []struct {
		name, auth, path, body, rule string
	}{
		{"no role", viewer, "/api/v1/certificates/sign", tJSON(t, apitypes.SignRequest{CSRPEM: csr, Profile: "internal_service"}), "role"},
		{"outside the scope", scoped, "/api/v1/certificates/sign", tJSON(t, apitypes.SignRequest{CSRPEM: csr, Profile: "internal_service"}), "scope"},
		{"key to a human", "Bearer " + human.Token.Token, "/api/v1/certificates/issue", issue, "machine_only_key_handout"},
	} {
		r := in.raw("POST", tc.path, tc.auth, strings.NewReader(tc.body))
		if r.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403: %s", tc.name, r.status, tTrim(r.body))
			continue
		}
		if e := r.apiErr(t); e.Rule != tc.rule {
			t.Errorf("%s: rule %q, want %q (%s)", tc.name, e.Rule, tc.rule, e.Detail)
		}
	}
}
