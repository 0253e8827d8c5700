package acme_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/pki"
)

// eventsOf returns the audit events with the given action.
func eventsOf(t *testing.T, e *env, action string) []string {
	t.Helper()
	var out []string
	for _, ev := range auditEvents(t, e) {
		if ev.Action == action {
			out = append(out, ev.Principal+" "+ev.Target+" "+string(ev.Details))
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestUpdateProvisioner: only the fields given change, each checked as
// create checks it; a refused update changes nothing and records nothing;
// an unknown name lists the provisioners; an update that changes nothing
// writes nothing.
func TestUpdateProvisioner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.issuer.CreateIntermediate(ctx, admin, "root", &ca.Spec{
		Name: "issuing2", Subject: pkix.Name{CommonName: "Certwright Test Issuing CA 2"},
		KeyAlg: pki.ECDSAP256, Validity: 365 * day, MaxPathLen: 0,
	}); err != nil {
		t.Fatal(err)
	}
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "upd", AllowNames: []string{"*.upd.test"}})

	got, changes, err := e.svc.UpdateProvisioner(ctx, admin, "upd", acme.ProvisionerUpdate{
		CA: ptr("issuing2"), Challenges: &[]string{"dns-01", "dns-01", " http-01"}, RequireEAB: ptr(true),
	})
	if err != nil {
		t.Fatalf("UpdateProvisioner: %v", err)
	}
	if got.CAName != "issuing2" || !slices.Equal(got.Challenges, []string{"dns-01", "http-01"}) || !got.RequireEAB {
		t.Errorf("after the update: %+v", got)
	}
	if got.Profile != prov.Profile || !slices.Equal(got.AllowNames, prov.AllowNames) || got.ID != prov.ID || got.CreatedBy != prov.CreatedBy {
		t.Errorf("fields not given changed: %+v, was %+v", got, prov)
	}
	var fields []string
	for _, c := range changes {
		fields = append(fields, c.Field)
	}
	if !slices.Equal(fields, []string{"ca", "challenges", "require_eab"}) {
		t.Errorf("changes %+v, want ca, challenges, require_eab", changes)
	}
	stored, err := e.svc.Provisioner(ctx, "upd")
	if err != nil || stored.CAName != "issuing2" || !stored.RequireEAB {
		t.Fatalf("the ACME endpoint sees %+v, %v; want the update at once", stored, err)
	}
	evs := eventsOf(t, e, "acme.provisioner.update")
	if len(evs) != 1 || !strings.HasPrefix(evs[0], "alice upd ") || !strings.Contains(evs[0], `"field":"ca"`) {
		t.Errorf("update events %q", evs)
	}

	// Lifting the name limit, and the same values again: nothing changes.
	if _, changes, err := e.svc.UpdateProvisioner(ctx, admin, "upd", acme.ProvisionerUpdate{AllowNames: &[]string{}}); err != nil || len(changes) != 1 {
		t.Fatalf("lift allow-names: %+v, %v", changes, err)
	}
	if _, changes, err := e.svc.UpdateProvisioner(ctx, admin, "upd", acme.ProvisionerUpdate{RequireEAB: ptr(true)}); err != nil || len(changes) != 0 {
		t.Fatalf("no-op update: %+v, %v", changes, err)
	}
	if n := len(eventsOf(t, e, "acme.provisioner.update")); n != 2 {
		t.Errorf("%d update events, want 2 (the no-op writes none)", n)
	}

	before, _ := e.db.GetProvisioner(ctx, "upd")
	for _, tc := range []struct {
		name string
		u    acme.ProvisionerUpdate
		want error
		in   string
	}{
		{"nothing", acme.ProvisionerUpdate{}, acme.ErrInvalid, "nothing to change"},
		{"unknown CA", acme.ProvisionerUpdate{CA: ptr("nope")}, acme.ErrNotFound, "nope"},
		{"unknown profile", acme.ProvisionerUpdate{Profile: ptr("nope")}, nil, "nope"},
		{"no challenges", acme.ProvisionerUpdate{Challenges: &[]string{}}, acme.ErrInvalid, "at least one"},
		{"unknown challenge", acme.ProvisionerUpdate{Challenges: &[]string{"ftp-01"}}, acme.ErrInvalid, "ftp-01"},
		{"bad pattern", acme.ProvisionerUpdate{AllowNames: &[]string{"a.*.test"}}, acme.ErrInvalid, "allow-names"},
		{"bad URL", acme.ProvisionerUpdate{Website: ptr("javascript:alert(1)")}, acme.ErrInvalid, "website"},
		{"too many patterns", acme.ProvisionerUpdate{AllowNames: ptr(slices.Repeat([]string{"*.upd.test"}, 257))}, acme.ErrInvalid, "at most 256"},
		{"empty CA", acme.ProvisionerUpdate{CA: ptr(" ")}, acme.ErrInvalid, "CA and a profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.svc.UpdateProvisioner(ctx, admin, "upd", tc.u)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.want, tc.in)
			}
		})
	}
	after, _ := e.db.GetProvisioner(ctx, "upd")
	if !slicesEqualProv(before, after) {
		t.Errorf("refused updates changed the provisioner: %+v, was %+v", after, before)
	}

	_, _, err = e.svc.UpdateProvisioner(ctx, admin, "nope", acme.ProvisionerUpdate{RequireEAB: ptr(false)})
	if !errors.Is(err, acme.ErrNotFound) || !strings.Contains(err.Error(), "the provisioners are: upd") {
		t.Errorf("unknown name: %v, want ErrNotFound listing upd", err)
	}

	// ca:manage over the provisioner's CA and over the new one.
	rootAdmin := authz.WithRole("carol", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"issuing"}})
	_, _, err = e.svc.UpdateProvisioner(ctx, rootAdmin, "upd", acme.ProvisionerUpdate{RequireEAB: ptr(false)})
	if !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("CA admin of another CA: %v, want ErrForbidden", err)
	}
	issuing2Admin := authz.WithRole("dave", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"issuing2"}})
	_, _, err = e.svc.UpdateProvisioner(ctx, issuing2Admin, "upd", acme.ProvisionerUpdate{CA: ptr("issuing")})
	if !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("moving to a CA the caller does not manage: %v, want ErrForbidden", err)
	}
	if n := len(eventsOf(t, e, "acme.provisioner.update")); n != 2 {
		t.Errorf("%d update events after refusals, want 2", n)
	}
}

func slicesEqualProv(a, b *acme.Provisioner) bool {
	return a.CAID == b.CAID && a.Profile == b.Profile && slices.Equal(a.Challenges, b.Challenges) &&
		slices.Equal(a.AllowNames, b.AllowNames) && a.RequireEAB == b.RequireEAB && a.Website == b.Website
}

// TestDisabledProvisioner: a disabled provisioner refuses new accounts,
// orders, challenge responses and finalization, on this replica at once
// and, for finalization, on a replica whose cache still holds it enabled;
// revocation and renewal information go on; enabling restores it all.
func TestDisabledProvisioner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "off"})
	acct := e.account(t, e.svc, prov)
	c := e.issueCert(t, e.svc, prov, acct, "old.off.test")
	ready := e.readyOrder(t, e.svc, prov, acct, dnsIDs("ready.off.test")...)
	pending, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("pending.off.test")})
	if err != nil {
		t.Fatal(err)
	}
	pendingAuthz := authzs(t, e.svc, acct, pending)[0]
	replica := e.service(t, nil)
	stale, err := replica.Provisioner(ctx, "off") // cached enabled on the replica
	if err != nil {
		t.Fatal(err)
	}

	disabled, err := e.svc.DisableProvisioner(ctx, admin, "off")
	if err != nil || !disabled.Disabled() || disabled.DisabledBy != "alice" {
		t.Fatalf("DisableProvisioner: %+v, %v", disabled, err)
	}
	if _, err := e.svc.DisableProvisioner(ctx, admin, "off"); !errors.Is(err, acme.ErrConflict) {
		t.Errorf("disabling twice: %v, want ErrConflict", err)
	}
	cur, err := e.svc.Provisioner(ctx, "off")
	if err != nil || !cur.Disabled() {
		t.Fatalf("this replica's endpoint sees %+v, %v; want disabled at once", cur, err)
	}

	refused := func(what string, err error) {
		t.Helper()
		p := wantProblem(t, err, acme.ErrUnauthorized)
		if !strings.Contains(p.Detail, "disabled") || !strings.Contains(p.Detail, "certwright acme enable off") {
			t.Errorf("%s: detail %q does not say the provisioner is disabled and how to enable it", what, p.Detail)
		}
	}
	_, _, err = e.svc.NewAccount(ctx, cur, acme.NewAccountRequest{Thumbprint: thumbprint(t), JWK: []byte(`{}`), TermsAgreed: true})
	refused("new account", err)
	_, err = e.svc.NewOrder(ctx, cur, acct, acme.OrderRequest{Identifiers: dnsIDs("new.off.test")})
	refused("new order", err)
	_, _, err = e.svc.RespondChallenge(ctx, acct, pendingAuthz.ID, challengeOf(t, pendingAuthz, acme.ChallengeHTTP01).ID, "")
	refused("challenge", err)
	_, err = replica.Finalize(ctx, stale, acct, ready.ID, csrFor(t, newKey(t), "ready.off.test", []string{"ready.off.test"}))
	refused("finalize on a replica that cached the provisioner enabled", err)
	if o, err := e.svc.Order(ctx, acct, ready.ID); err != nil || o.Status != acme.StatusReady {
		t.Errorf("the refused finalization moved the order: %+v, %v", o, err)
	}
	// The existing account still answers, and its certificate can be
	// revoked; renewal information is still served.
	if _, _, err := e.svc.NewAccount(ctx, cur, acme.NewAccountRequest{Thumbprint: acct.KeyThumbprint, OnlyReturnExisting: true}); err != nil {
		t.Errorf("looking up the existing account: %v", err)
	}
	if _, err := e.svc.RenewalInfo(ctx, acme.CertID(c.leaf)); err != nil {
		t.Errorf("renewal information while disabled: %v", err)
	}
	if err := e.svc.Revoke(ctx, cur, acct, nil, c.leaf.Raw, nil); err != nil {
		t.Errorf("revocation while disabled: %v", err)
	}

	if _, err := e.svc.EnableProvisioner(ctx, admin, "off"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.EnableProvisioner(ctx, admin, "off"); !errors.Is(err, acme.ErrConflict) {
		t.Errorf("enabling twice: %v, want ErrConflict", err)
	}
	cur, _ = e.svc.Provisioner(ctx, "off")
	if o, err := e.svc.Finalize(ctx, cur, acct, ready.ID, csrFor(t, newKey(t), "ready.off.test", []string{"ready.off.test"})); err != nil || o.Status != acme.StatusValid {
		t.Fatalf("finalize after enable: %+v, %v", o, err)
	}
	e.issueCert(t, e.svc, cur, acct, "again.off.test")

	if got := eventsOf(t, e, "acme.provisioner.disable"); len(got) != 1 || !strings.HasPrefix(got[0], "alice off ") {
		t.Errorf("disable events %q", got)
	}
	if got := eventsOf(t, e, "acme.provisioner.enable"); len(got) != 1 {
		t.Errorf("enable events %q", got)
	}
	issuer := authz.WithRole("ops", authz.KindHuman, authz.RoleIssuer, authz.Scope{})
	if _, err := e.svc.DisableProvisioner(ctx, issuer, "off"); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("an issuer disabling: %v, want ErrForbidden", err)
	}
}

// TestUpdateAppliesToOpenOrders: tightening a provisioner binds what is
// already under way: a narrowed name list refuses finalization of a ready
// order, a dropped challenge type refuses a pending challenge and is not
// reused, and EAB turned on stops accounts made without it.
func TestUpdateAppliesToOpenOrders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "tight"})
	acct := e.account(t, e.svc, prov)
	ready := e.readyOrder(t, e.svc, prov, acct, dnsIDs("a.tight.test")...)
	pending, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("b.tight.test")})
	if err != nil {
		t.Fatal(err)
	}
	pendingAuthz := authzs(t, e.svc, acct, pending)[0]

	if _, _, err := e.svc.UpdateProvisioner(ctx, admin, "tight", acme.ProvisionerUpdate{AllowNames: &[]string{"*.other.test"}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Finalize(ctx, prov, acct, ready.ID, csrFor(t, newKey(t), "a.tight.test", []string{"a.tight.test"}))
	if p := wantProblem(t, err, acme.ErrRejectedIdentifier); !strings.Contains(p.Detail, "no longer") {
		t.Errorf("detail %q", p.Detail)
	}

	if _, _, err := e.svc.UpdateProvisioner(ctx, admin, "tight", acme.ProvisionerUpdate{
		AllowNames: &[]string{}, Challenges: &[]string{acme.ChallengeDNS01, acme.ChallengeTLSALPN01},
	}); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.RespondChallenge(ctx, acct, pendingAuthz.ID, challengeOf(t, pendingAuthz, acme.ChallengeHTTP01).ID, "")
	if p := wantProblem(t, err, acme.ErrUnauthorized); !strings.Contains(p.Detail, "no longer offers http-01") {
		t.Errorf("detail %q", p.Detail)
	}
	// a.tight.test was proved by http-01: a new order proves it again.
	cur, _ := e.svc.Provisioner(ctx, "tight")
	o, err := e.svc.NewOrder(ctx, cur, acct, acme.OrderRequest{Identifiers: dnsIDs("a.tight.test")})
	if err != nil {
		t.Fatal(err)
	}
	if a := authzs(t, e.svc, acct, o)[0]; a.Status != acme.StatusPending || slices.ContainsFunc(a.Challenges, func(c acme.Challenge) bool { return c.Type == acme.ChallengeHTTP01 }) {
		t.Errorf("authorization %+v: want a new pending one without http-01", a)
	}

	if _, _, err := e.svc.UpdateProvisioner(ctx, admin, "tight", acme.ProvisionerUpdate{RequireEAB: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	cur, _ = e.svc.Provisioner(ctx, "tight")
	_, err = e.svc.NewOrder(ctx, cur, acct, acme.OrderRequest{Identifiers: dnsIDs("c.tight.test")})
	wantProblem(t, err, acme.ErrExternalAccountRequired)
}

// TestDeleteProvisioner: only a disabled provisioner is deleted; its
// accounts end, its certificates stay on record, and a provisioner created
// later under the name gives none of the old accounts back.
func TestDeleteProvisioner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "gone"})
	acct := e.account(t, e.svc, prov)
	c := e.issueCert(t, e.svc, prov, acct, "a.gone.test")
	ready := e.readyOrder(t, e.svc, prov, acct, dnsIDs("b.gone.test")...)

	if _, _, err := e.svc.DeleteProvisioner(ctx, admin, "gone"); !errors.Is(err, acme.ErrConflict) || !strings.Contains(err.Error(), "disable it first") {
		t.Fatalf("deleting an enabled provisioner: %v, want ErrConflict saying to disable it first", err)
	}
	if _, err := e.svc.DisableProvisioner(ctx, admin, "gone"); err != nil {
		t.Fatal(err)
	}
	deleted, counts, err := e.svc.DeleteProvisioner(ctx, admin, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if deleted.ID != prov.ID || counts.Accounts != 1 || counts.Orders != 1 {
		t.Errorf("deleted %s with counts %+v, want %s, 1 account, 1 order", deleted.ID, counts, prov.ID)
	}
	if _, err := e.svc.Provisioner(ctx, "gone"); !errors.Is(err, acme.ErrNotFound) {
		t.Errorf("the directory after the delete: %v, want ErrNotFound", err)
	}
	if _, err := e.db.GetCertificate(ctx, c.order.CertSerial); err != nil {
		t.Errorf("the issued certificate's record after the delete: %v", err)
	}
	// A replica still holding the provisioner cannot finalize the old order.
	_, err = e.svc.Finalize(ctx, prov, acct, ready.ID, csrFor(t, newKey(t), "b.gone.test", []string{"b.gone.test"}))
	if err == nil {
		t.Error("finalized an order of a deleted provisioner")
	}

	again := e.provisioner(t, acme.ProvisionerSpec{Name: "gone"})
	if again.ID == prov.ID {
		t.Fatalf("the new provisioner reuses the old ID %s", prov.ID)
	}
	if _, err := e.svc.Account(ctx, again, acct.ID); err == nil {
		t.Error("the old account acts on the new provisioner of the same name")
	}
	a, created, err := e.svc.NewAccount(ctx, again, acme.NewAccountRequest{Thumbprint: acct.KeyThumbprint, JWK: acct.KeyJWK, TermsAgreed: true})
	if err != nil || !created || a.ID == acct.ID {
		t.Errorf("the old key on the new provisioner: %+v created %v, %v; want a new account", a, created, err)
	}
	if got := eventsOf(t, e, "acme.provisioner.delete"); len(got) != 1 || !strings.Contains(got[0], `"accounts_deactivated":1`) {
		t.Errorf("delete events %q", got)
	}
}

// TestRevokeEABKey: revoking a bound key deactivates its account, which
// then gets nothing more; an unused revoked key binds nothing; the audit
// trail never holds the HMAC key; principal:manage is required.
func TestRevokeEABKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "eab", RequireEAB: true})
	bound, secret1, err := e.svc.CreateEABKey(ctx, admin, "eab", "", "leaked")
	if err != nil {
		t.Fatal(err)
	}
	unused, secret2, err := e.svc.CreateEABKey(ctx, admin, "eab", "", "spare")
	if err != nil {
		t.Fatal(err)
	}
	acct, _, err := e.svc.NewAccount(ctx, prov, acme.NewAccountRequest{Thumbprint: thumbprint(t), JWK: []byte(`{}`), TermsAgreed: true, EABKeyID: bound.ID})
	if err != nil {
		t.Fatal(err)
	}
	e.issueCert(t, e.svc, prov, acct, "a.eab.test")

	issuer := authz.WithRole("ops", authz.KindHuman, authz.RoleIssuer, authz.Scope{})
	if _, _, err := e.svc.RevokeEABKey(ctx, issuer, bound.ID); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("an issuer revoking: %v, want ErrForbidden", err)
	}
	k, deactivated, err := e.svc.RevokeEABKey(ctx, admin, bound.ID)
	if err != nil || !deactivated || k.AccountID != acct.ID {
		t.Fatalf("RevokeEABKey: %+v, %v, %v; want the account deactivated", k, deactivated, err)
	}
	if _, err := e.svc.Account(ctx, prov, acct.ID); err == nil {
		t.Error("the account of a revoked key still acts")
	}
	if _, _, err := e.svc.RevokeEABKey(ctx, admin, bound.ID); !errors.Is(err, acme.ErrConflict) {
		t.Errorf("revoking twice: %v, want ErrConflict", err)
	}

	if _, deactivated, err := e.svc.RevokeEABKey(ctx, admin, unused.ID); err != nil || deactivated {
		t.Fatalf("revoking the unused key: %v, %v", deactivated, err)
	}
	_, err = e.svc.EABKey(ctx, prov, unused.ID)
	if p := wantProblem(t, err, acme.ErrUnauthorized); !strings.Contains(p.Detail, "revoked") {
		t.Errorf("detail %q", p.Detail)
	}
	_, _, err = e.svc.NewAccount(ctx, prov, acme.NewAccountRequest{Thumbprint: thumbprint(t), JWK: []byte(`{}`), TermsAgreed: true, EABKeyID: unused.ID})
	if p := wantProblem(t, err, acme.ErrUnauthorized); !strings.Contains(p.Detail, "revoked") {
		t.Errorf("binding a revoked key: detail %q", p.Detail)
	}

	evs := eventsOf(t, e, "acme.eab.revoke")
	if len(evs) != 2 || !strings.Contains(evs[0], `"account_deactivated":true`) || !strings.Contains(evs[0], acct.ID) {
		t.Errorf("revoke events %q", evs)
	}
	for _, ev := range auditEvents(t, e) {
		for _, s := range [][]byte{secret1, secret2} {
			for _, enc := range []string{base64.RawURLEncoding.EncodeToString(s), base64.StdEncoding.EncodeToString(s)} {
				if strings.Contains(string(ev.Details), enc) {
					t.Errorf("audit event %s holds an HMAC key", ev.Action)
				}
			}
		}
	}
}
