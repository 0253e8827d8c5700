package issue_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/url"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
)

// tPrincipal stores a machine principal bound to role within scope and
// returns it as the store loads it.
func tPrincipal(t *testing.T, e *env, id, role string, scope authz.Scope) authz.Principal {
	t.Helper()
	ctx := context.Background()
	now := e.clk.Now()
	if err := e.db.CreatePrincipal(ctx, &authz.PrincipalRecord{ID: id, Name: id, Kind: authz.KindMachine, CreatedAt: now, CreatedBy: "test"},
		audit.New(admin, now, "principal.create", id, nil)); err != nil {
		t.Fatal(err)
	}
	r, err := e.db.GetRole(ctx, role)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateBinding(ctx, &authz.Binding{ID: "b_" + id, PrincipalID: id, Principal: id, Role: *r, Scope: scope, CreatedAt: now, CreatedBy: "test"},
		audit.New(admin, now, "binding.create", id, nil)); err != nil {
		t.Fatal(err)
	}
	p, _, err := e.db.LoadPrincipal(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return *p
}

// TestIssueIdentityRule: a client-capable certificate carrying a
// principal's registered mTLS identity is issued only to that principal or
// by an administrator who holds everything it holds, and is recorded as
// that principal's credential; every other requester is refused with the
// rule named. ACME and the server itself never get a credential, and a
// certificate that cannot authenticate clients is none.
func TestIssueIdentityRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const agentURI, opsDNS = "spiffe://example.internal/agent", "ops.svc.internal"
	agent := tPrincipal(t, e, "agent", authz.RoleIssuer, authz.Scope{Profiles: []string{"internal_service"}})
	ops := tPrincipal(t, e, "ops", authz.RoleAdmin, authz.Scope{})
	ci := tPrincipal(t, e, "ci", authz.RoleIssuer, authz.Scope{Profiles: []string{"internal_service"}})
	// lead: principal:manage and an unscoped issuer role: it covers agent,
	// not ops.
	lead := tPrincipal(t, e, "lead", authz.RoleIssuer, authz.Scope{})
	lead.Bindings = append(lead.Bindings, authz.Binding{ID: "b_iam", PrincipalID: "lead", Principal: "lead",
		Role: authz.Role{Name: "iam", Permissions: []authz.Permission{authz.PermPrincipalAdmin, authz.PermPrincipalRead}}})
	now := e.clk.Now()
	for _, id := range []*authz.Identity{{Kind: "uri", Value: agentURI, PrincipalID: "agent"}, {Kind: "dns", Value: opsDNS, PrincipalID: "ops"}} {
		id.CreatedAt = now
		if err := e.db.AddIdentity(ctx, id, audit.New(admin, now, "identity.add", id.PrincipalID, nil)); err != nil {
			t.Fatal(err)
		}
	}
	acmeAsOps := ops
	acmeAsOps.Name, acmeAsOps.Auth = "acct1 (principal ops)", "acme"
	acmeAnon := authz.Principal{ID: "acme:acct2", Name: "acme:clients/acct2", Kind: authz.KindMachine, Auth: "acme",
		Bindings: []authz.Binding{{ID: "acme:prov", Role: authz.Role{Name: "acme_account", Permissions: []authz.Permission{authz.PermCertIssue}}}}}

	agentU, _ := url.Parse(agentURI)
	otherU, _ := url.Parse("spiffe://example.internal/unregistered")
	key := mustKey(t, pki.ECDSAP256)
	csrURI := func(u *url.URL) *x509.CertificateRequest {
		return mustCSR(t, key, &x509.CertificateRequest{URIs: []*url.URL{u}})
	}
	csrDNS := func(names ...string) *x509.CertificateRequest {
		return mustCSR(t, key, &x509.CertificateRequest{DNSNames: names})
	}
	for _, tc := range []struct {
		name    string
		who     authz.Principal
		profile string
		csr     *x509.CertificateRequest
		want    string // credential recorded
		err     error
	}{
		{"the principal itself", agent, "internal_service", csrURI(agentU), "agent", nil},
		{"an admin", admin, "internal_service", csrURI(agentU), "agent", nil},
		{"an administrator covering the principal", lead, "internal_service", csrURI(agentU), "agent", nil},
		{"the server", authz.System(), "internal_service", csrURI(agentU), "", nil},
		{"no identity: the requester's own", ci, "internal_service", csrURI(otherU), "ci", nil},
		{"no identity, ACME", acmeAnon, "internal_service", csrDNS("app.acme.test"), "", nil},
		{"ACME bound to the principal", acmeAsOps, "internal_service", csrDNS(opsDNS), "", nil},
		{"server-only certificate", lead, "web_server", csrDNS(opsDNS), "", nil},
		{"a scoped issuer", ci, "internal_service", csrURI(agentU), "", issue.ErrForbidden},
		{"another principal's identity", agent, "internal_service", csrDNS(opsDNS), "", issue.ErrForbidden},
		{"an administrator holding less", lead, "internal_service", csrDNS(opsDNS), "", issue.ErrForbidden},
		{"anonymous ACME", acmeAnon, "internal_service", csrDNS(opsDNS), "", issue.ErrForbidden},
		{"upper-case DNS", ci, "internal_service", csrDNS("OPS.svc.internal"), "", issue.ErrForbidden},
		{"two principals' identities", admin, "internal_service", mustCSR(t, key, &x509.CertificateRequest{URIs: []*url.URL{agentU}, DNSNames: []string{opsDNS}}), "", issue.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t)
			res, err := e.svc.Issue(ctx, issue.Request{Principal: tc.who, CA: "issuing", Profile: tc.profile, CSR: tc.csr})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Issue = %v, want %v", err, tc.err)
				}
				if n := e.count(t); n != before {
					t.Errorf("%d certificates after the refusal, want %d", n, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			got, err := e.db.CredentialHolder(ctx, res.Cert.Serial)
			if err != nil || got != tc.want {
				t.Errorf("credential of %q (%v), want %s", got, err, tc.want)
			}
		})
	}
}
