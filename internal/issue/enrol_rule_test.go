package issue_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
)

// TestEnrolFollowsActOnRule: minting a client certificate that carries a
// principal's identity is acting on that principal, so it follows the one
// general rule (access.MayActOn) and nothing looser or stricter: a holder
// of every admin permission under another role name may not enrol an
// admin's identity (only an unscoped admin acts on admins), and an
// administrator whose scope covers the principal's by pattern (*.internal
// covers *.svc.internal) may, exactly as it may mint that principal's
// tokens.
func TestEnrolFollowsActOnRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const saDNS, webDNS = "sa.svc.internal", "web.svc.internal"
	// sa: the built-in admin role, scoped to one profile.
	tPrincipal(t, e, "sa", authz.RoleAdmin, authz.Scope{Profiles: []string{"internal_service"}})
	// web: an issuer limited to *.svc.internal.
	tPrincipal(t, e, "web", authz.RoleIssuer, authz.Scope{Names: []string{"*.svc.internal"}})
	now := e.clk.Now()
	for _, id := range []*authz.Identity{{Kind: "dns", Value: saDNS, PrincipalID: "sa"}, {Kind: "dns", Value: webDNS, PrincipalID: "web"}} {
		id.CreatedAt = now
		if err := e.db.AddIdentity(ctx, id, audit.New(admin, now, "identity.add", id.PrincipalID, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// almighty: every permission unscoped, but under a custom role.
	almighty := authz.Principal{ID: "almighty", Name: "almighty", Kind: authz.KindMachine,
		Bindings: []authz.Binding{{ID: "b_all", PrincipalID: "almighty", Principal: "almighty",
			Role: authz.Role{Name: "everything", Permissions: authz.Permissions()}}}}
	// lead: principal:manage everywhere, issuer over *.internal.
	issuer, _ := authz.BuiltinRole(authz.RoleIssuer)
	lead := authz.Principal{ID: "lead", Name: "lead", Kind: authz.KindMachine, Bindings: []authz.Binding{
		{ID: "b_iam", PrincipalID: "lead", Principal: "lead", Role: authz.Role{Name: "iam", Permissions: []authz.Permission{authz.PermPrincipalAdmin, authz.PermPrincipalRead}}},
		{ID: "b_iss", PrincipalID: "lead", Principal: "lead", Role: issuer, Scope: authz.Scope{Names: []string{"*.internal"}}},
	}}
	key := mustKey(t, pki.ECDSAP256)
	csr := func(name string) *x509.CertificateRequest {
		return mustCSR(t, key, &x509.CertificateRequest{DNSNames: []string{name}})
	}

	t.Run("custom role with every permission on an admin", func(t *testing.T) {
		before := e.count(t)
		_, err := e.svc.Issue(ctx, issue.Request{Principal: almighty, CA: "issuing", Profile: "internal_service", CSR: csr(saDNS)})
		if !errors.Is(err, issue.ErrForbidden) {
			t.Fatalf("Issue = %v, want ErrForbidden (only an unscoped admin acts on an admin)", err)
		}
		for _, want := range []string{"identity names are not minted by others", "holds the admin role"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if n := e.count(t); n != before {
			t.Errorf("%d certificates after the refusal, want %d", n, before)
		}
	})
	t.Run("administrator covering the scope by pattern", func(t *testing.T) {
		res, err := e.svc.Issue(ctx, issue.Request{Principal: lead, CA: "issuing", Profile: "internal_service", CSR: csr(webDNS)})
		if err != nil {
			t.Fatalf("Issue: %v (lead may act on web: *.internal covers *.svc.internal)", err)
		}
		if got, err := e.db.CredentialHolder(ctx, res.Cert.Serial); err != nil || got != "web" {
			t.Errorf("credential of %q (%v), want web", got, err)
		}
	})
}
