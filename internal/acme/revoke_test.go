package acme_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
)

func intp(i int) *int { return &i }

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "rev"})
	owner := e.account(t, e.svc, prov)
	stranger := e.account(t, e.svc, prov)

	revoked := func(t *testing.T, c issued) *pki.Reason {
		t.Helper()
		rec, err := e.db.GetCertificate(ctx, c.order.CertSerial)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Revocation == nil {
			return nil
		}
		return &rec.Revocation.Reason
	}

	t.Run("by the owning account", func(t *testing.T) {
		c := e.issueCert(t, e.svc, prov, owner, "owner.rev.test")
		if err := e.svc.Revoke(ctx, prov, stranger, nil, c.leaf.Raw, nil); err == nil {
			t.Fatal("an unrelated account revoked the certificate")
		} else {
			wantProblem(t, err, acme.ErrUnauthorized)
		}
		if revoked(t, c) != nil {
			t.Fatal("certificate revoked by a refused request")
		}
		if err := e.svc.Revoke(ctx, prov, owner, nil, c.leaf.Raw, intp(int(pki.ReasonSuperseded))); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		r := revoked(t, c)
		if r == nil || *r != pki.ReasonSuperseded {
			t.Fatalf("revocation reason %v, want superseded", r)
		}
		rec, _ := e.db.GetCertificate(ctx, c.order.CertSerial)
		if want := "acme:rev/" + owner.ID; rec.Revocation.RevokedBy != want {
			t.Errorf("revoked by %q, want %q", rec.Revocation.RevokedBy, want)
		}
		err := e.svc.Revoke(ctx, prov, owner, nil, c.leaf.Raw, nil)
		wantProblem(t, err, acme.ErrAlreadyRevoked)
	})

	t.Run("by the certificate key", func(t *testing.T) {
		c := e.issueCert(t, e.svc, prov, owner, "key.rev.test")
		err := e.svc.Revoke(ctx, prov, nil, newKey(t).Public(), c.leaf.Raw, nil)
		wantProblem(t, err, acme.ErrUnauthorized)
		err = e.svc.Revoke(ctx, prov, nil, nil, c.leaf.Raw, nil)
		wantProblem(t, err, acme.ErrUnauthorized)
		if revoked(t, c) != nil {
			t.Fatal("certificate revoked with the wrong key")
		}
		if err := e.svc.Revoke(ctx, prov, nil, c.key.Public(), c.leaf.Raw, intp(int(pki.ReasonKeyCompromise))); err != nil {
			t.Fatalf("Revoke with the certificate key: %v", err)
		}
		if r := revoked(t, c); r == nil || *r != pki.ReasonKeyCompromise {
			t.Fatalf("revocation reason %v, want keyCompromise", r)
		}
		err = e.svc.Revoke(ctx, prov, nil, c.key.Public(), c.leaf.Raw, nil)
		wantProblem(t, err, acme.ErrAlreadyRevoked)
	})

	t.Run("by an account holding the authorizations", func(t *testing.T) {
		c := e.issueCert(t, e.svc, prov, owner, "authz.rev.test")
		holder := e.account(t, e.svc, prov)
		e.readyOrder(t, e.svc, prov, holder, dnsIDs("authz.rev.test")...)
		if err := e.svc.Revoke(ctx, prov, holder, nil, c.leaf.Raw, nil); err != nil {
			t.Fatalf("Revoke by an account with valid authorizations: %v", err)
		}
		if revoked(t, c) == nil {
			t.Fatal("not revoked")
		}
	})

	t.Run("reasons", func(t *testing.T) {
		c := e.issueCert(t, e.svc, prov, owner, "reason.rev.test")
		for _, r := range []int{2, 6, 7, 8, 9, 10, -1, 99} {
			err := e.svc.Revoke(ctx, prov, owner, nil, c.leaf.Raw, intp(r))
			wantProblem(t, err, acme.ErrBadRevocationReason)
		}
		if revoked(t, c) != nil {
			t.Fatal("revoked with a refused reason")
		}
		if err := e.svc.Revoke(ctx, prov, owner, nil, c.leaf.Raw, intp(0)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("not ours", func(t *testing.T) {
		err := e.svc.Revoke(ctx, prov, owner, nil, []byte("garbage"), nil)
		wantProblem(t, err, acme.ErrMalformed)
		// The intermediate's own certificate is in no order.
		err = e.svc.Revoke(ctx, prov, owner, nil, e.inter.CertDER, nil)
		if p := acme.AsProblem(err); p == nil || (p.Type != acme.ErrMalformed && p.Type != acme.ErrUnauthorized) {
			t.Errorf("revoking the CA certificate: %v", err)
		}
	})
}

// TestRevokeByAuthorizationScope: an account that validated a name may
// revoke certificates for it issued through its own provisioner only, not
// ones the API or another provisioner issued (#21c).
func TestRevokeByAuthorizationScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "scope"})
	other := e.provisioner(t, acme.ProvisionerSpec{Name: "scope-other"})
	const name = "shared.scope.test"

	// Issued by the API on the same CA and profile.
	csr, err := x509.ParseCertificateRequest(csrFor(t, newKey(t), name, []string{name}))
	if err != nil {
		t.Fatal(err)
	}
	api, err := e.issuer.Issue(ctx, issue.Request{Principal: admin, CA: e.inter.ID, Profile: "web_server", CSR: csr})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	// Issued through another provisioner on the same CA and profile.
	viaOther := e.issueCert(t, e.svc, other, e.account(t, e.svc, other), name)
	// Issued through this provisioner to another account.
	viaThis := e.issueCert(t, e.svc, prov, e.account(t, e.svc, prov), name)

	holder := e.account(t, e.svc, prov)
	e.readyOrder(t, e.svc, prov, holder, dnsIDs(name)...)

	for what, der := range map[string][]byte{"API-issued": api.Cert.DER, "other provisioner's": viaOther.leaf.Raw} {
		err := e.svc.Revoke(ctx, prov, holder, nil, der, nil)
		p := wantProblem(t, err, acme.ErrUnauthorized)
		if !strings.Contains(p.Detail, "not issued through ACME provisioner scope") {
			t.Errorf("%s: detail %q", what, p.Detail)
		}
	}
	for _, serial := range []string{api.Cert.Serial, viaOther.order.CertSerial} {
		rec, err := e.db.GetCertificate(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Revocation != nil {
			t.Fatalf("certificate %s revoked by an account that only validated its name", serial)
		}
	}
	if err := e.svc.Revoke(ctx, prov, holder, nil, viaThis.leaf.Raw, nil); err != nil {
		t.Fatalf("revoking a certificate of this provisioner with valid authorizations: %v", err)
	}
}
