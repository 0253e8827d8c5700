package acme_test

import (
	"context"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
)

// TestFinalizeProfileGainedApproval: a provisioner's profile that gained
// require_approval after the provisioner was created makes finalize fail
// with unauthorized, naming the profile, the provisioner and what the
// operator must do; the order becomes invalid, and neither an approval
// request nor a certificate is stored — for an anonymous account and for
// one bound to a principal by EAB (whose held request, once approved, would
// have been replayed as that principal).
func TestFinalizeProfileGainedApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.customProfile(t, "later_approval", func(*profile.Profile) {})
	anon := e.provisioner(t, acme.ProvisionerSpec{Name: "anon", Profile: "later_approval"})
	bound := e.provisioner(t, acme.ProvisionerSpec{Name: "bound", Profile: "later_approval", RequireEAB: true})
	principalID := e.eabPrincipal(t, "deploy-bot", authz.Scope{})
	k, _, err := e.svc.CreateEABKey(ctx, admin, "bound", principalID, "deploy host")
	if err != nil {
		t.Fatal(err)
	}
	req := newAccountReq(t)
	req.EABKeyID = k.ID
	boundAcct, _, err := e.svc.NewAccount(ctx, bound, req)
	if err != nil {
		t.Fatal(err)
	}
	type tcase struct {
		prov  *acme.Provisioner
		acct  *acme.Account
		name  string
		order *acme.Order
	}
	cases := []*tcase{
		{prov: anon, acct: e.account(t, e.svc, anon), name: "anon.approval.test"},
		{prov: bound, acct: boundAcct, name: "bound.approval.test"},
	}
	for _, c := range cases {
		c.order = e.readyOrder(t, e.svc, c.prov, c.acct, dnsIDs(c.name)...)
	}
	// The profile gains require_approval after the provisioners exist.
	p, err := e.profiles.Get(ctx, "later_approval")
	if err != nil {
		t.Fatal(err)
	}
	p.RequireApproval = true
	if err := e.profiles.Update(ctx, admin, p); err != nil {
		t.Fatal(err)
	}

	for _, c := range cases {
		t.Run(c.prov.Name, func(t *testing.T) {
			_, err := e.svc.Finalize(ctx, c.prov, c.acct, c.order.ID, csrFor(t, newKey(t), "", []string{c.name}))
			pb := wantProblem(t, err, acme.ErrUnauthorized)
			for _, want := range []string{"later_approval", "provisioner " + c.prov.Name, "requires approval", "nothing was issued or held", "operator"} {
				if !strings.Contains(pb.Detail, want) {
					t.Errorf("problem detail %q does not say %q", pb.Detail, want)
				}
			}
			got, err := e.svc.Order(ctx, c.acct, c.order.ID)
			if err != nil || got.Status != acme.StatusInvalid || got.CertSerial != "" {
				t.Errorf("order after the refusal: %+v, %v; want invalid without a certificate", got, err)
			}
			held, err := e.db.ListApprovalRequests(ctx, "", 0)
			if err != nil || len(held) != 0 {
				t.Errorf("approval requests after the refusal: %d (%v), want none", len(held), err)
			}
			if n, err := e.db.CountCertificates(ctx, ""); err != nil || n != 0 {
				t.Errorf("%d leaf certificates after the refusal (%v), want none", n, err)
			}
		})
	}
}
