package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/store"
)

// testACMEProvisionerLifecycle covers updating, disabling, enabling and
// deleting a provisioner: each writes what it says and its audit event in
// one transaction, delete refuses an enabled provisioner and ends what the
// provisioner had (accounts, open orders, keys) while keeping the records,
// and a provisioner created later under the same name gets none of it.
func testACMEProvisionerLifecycle(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreateCA(ctx, newCA("ca1", "Issuing CA"), tev()))
	must(t, db.CreateCA(ctx, newCA("ca2", "Other CA"), tev()))
	p := newProvisioner("prov1", "web", "ca1")
	must(t, db.CreateProvisioner(ctx, p, ev("acme.provisioner.create", "web")))
	log := newAuditLog(t, db)

	// Update writes the policy, not the name or the creation.
	upd := *p
	upd.Name, upd.CreatedBy = "renamed", "someone-else"
	upd.CAID, upd.Profile, upd.RequireEAB, upd.AllowSubjectFields = "ca2", "client", false, false
	upd.Challenges, upd.AllowNames = []string{acme.ChallengeTLSALPN01}, []string{}
	upd.TermsOfService, upd.Website = "", "https://example.com/acme"
	must(t, db.UpdateProvisioner(ctx, &upd, ev("acme.provisioner.update", "web")))
	got, err := db.GetProvisioner(ctx, "web")
	must(t, err)
	want := upd
	want.Name, want.CreatedBy, want.CAName = "web", "tester", "Other CA"
	checkProvisioner(t, got, &want)
	err = db.UpdateProvisioner(ctx, newProvisioner("nope", "nope", "ca1"), ev("acme.provisioner.update", "nope"))
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	err = db.UpdateProvisioner(ctx, p, ev("", ""))
	wantErr(t, err, audit.ErrInvalid)
	got, err = db.GetProvisioner(ctx, "web")
	must(t, err)
	checkProvisioner(t, got, &want) // the refused update changed nothing
	log.expect(t, "acme.provisioner.update web")

	// Disable and enable.
	at := base().Add(time.Hour)
	must(t, db.SetProvisionerDisabled(ctx, "prov1", at, "ops", ev("acme.provisioner.disable", "web")))
	got, err = db.GetProvisioner(ctx, "web")
	must(t, err)
	checkTime(t, "DisabledAt", got.DisabledAt, at)
	if got.DisabledBy != "ops" || !got.Disabled() {
		t.Errorf("after disable: DisabledBy %q, Disabled() %v", got.DisabledBy, got.Disabled())
	}
	// An update after the disable leaves it disabled.
	must(t, db.UpdateProvisioner(ctx, &want, ev("acme.provisioner.update", "web")))
	if got, err = db.GetProvisioner(ctx, "web"); err != nil || !got.Disabled() {
		t.Fatalf("after an update of the disabled provisioner: %+v, %v; want still disabled", got, err)
	}
	must(t, db.SetProvisionerDisabled(ctx, "prov1", time.Time{}, "ops", ev("acme.provisioner.enable", "web")))
	got, err = db.GetProvisioner(ctx, "web")
	must(t, err)
	if got.Disabled() || got.DisabledBy != "" {
		t.Errorf("after enable: DisabledAt %v, DisabledBy %q", got.DisabledAt, got.DisabledBy)
	}
	err = db.SetProvisionerDisabled(ctx, "nope", at, "ops", ev("acme.provisioner.disable", "nope"))
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	log.expect(t, "acme.provisioner.disable web", "acme.provisioner.update web", "acme.provisioner.enable web")

	// What the provisioner has: two valid accounts (one bound by a key)
	// and a deactivated one, a pending, a ready and a valid order, an
	// unused key; and another provisioner's account and order.
	a1, a2, a3 := newAccount("acct1", "prov1", "thumb1"), newAccount("acct2", "prov1", "thumb2"), newAccount("acct3", "prov1", "thumb3")
	a3.Status = acme.StatusDeactivated
	must(t, db.CreateEABKey(ctx, newEABKey("eab1", "prov1", ""), tev()))
	must(t, db.CreateEABKey(ctx, newEABKey("eab2", "prov1", ""), tev()))
	a1.EABKeyID = "eab1"
	other := newAccount("acct9", "prov9", "thumb1")
	for _, a := range []*acme.Account{a1, a2, a3, other} {
		must(t, db.CreateAccount(ctx, a, ev("acme.account.create", a.ID)))
	}
	pending, ready, valid := newOrder("ord1", "acct1"), newOrder("ord2", "acct2"), newOrder("ord3", "acct1")
	ready.Status, valid.Status, valid.CertSerial = acme.StatusReady, acme.StatusValid, "0a0b"
	otherOrder := newOrder("ord9", "acct9")
	otherOrder.ProvisionerID = "prov9"
	for _, o := range []*acme.Order{pending, ready, valid, otherOrder} {
		must(t, db.CreateOrder(ctx, o, nil))
	}
	log.read(t)

	// An enabled provisioner is not deleted.
	noEvent := func(acme.DeleteCounts) audit.Event {
		t.Error("the event of a refused delete was built")
		return ev("acme.provisioner.delete", "web")
	}
	_, err = db.DeleteProvisioner(ctx, "prov1", at, "ops", problem(), noEvent)
	wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	_, err = db.DeleteProvisioner(ctx, "nope", at, "ops", problem(), noEvent)
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	if _, err := db.GetProvisioner(ctx, "web"); err != nil {
		t.Fatalf("after a refused delete: %v", err)
	}
	log.expect(t)

	must(t, db.SetProvisionerDisabled(ctx, "prov1", at, "ops", ev("acme.provisioner.disable", "web")))
	var seen acme.DeleteCounts
	counts, err := db.DeleteProvisioner(ctx, "prov1", at, "ops", problem(), func(c acme.DeleteCounts) audit.Event {
		seen = c
		return ev("acme.provisioner.delete", "web")
	})
	must(t, err)
	if wantCounts := (acme.DeleteCounts{Accounts: 2, Orders: 2, EABKeys: 2}); counts != wantCounts || seen != wantCounts {
		t.Errorf("delete counts %+v, event saw %+v, want %+v", counts, seen, wantCounts)
	}
	log.expect(t, "acme.provisioner.disable web", "acme.provisioner.delete web")
	_, err = db.GetProvisioner(ctx, "web")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	_, err = db.GetProvisioner(ctx, "prov1")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)

	// Its records stay, ended; another provisioner's are untouched.
	for id, status := range map[string]string{"acct1": acme.StatusDeactivated, "acct2": acme.StatusDeactivated, "acct3": acme.StatusDeactivated, "acct9": acme.StatusValid} {
		a, err := db.GetAccount(ctx, id)
		must(t, err)
		if a.Status != status {
			t.Errorf("account %s is %s after the delete, want %s", id, a.Status, status)
		}
	}
	for id, status := range map[string]string{"ord1": acme.StatusInvalid, "ord2": acme.StatusInvalid, "ord3": acme.StatusValid, "ord9": acme.StatusPending} {
		o, err := db.GetOrder(ctx, id)
		must(t, err)
		if o.Status != status {
			t.Errorf("order %s is %s after the delete, want %s", id, o.Status, status)
		}
		if status == acme.StatusInvalid && (o.Error == nil || o.Error.Detail != problem().Detail) {
			t.Errorf("order %s ended without the reason: %+v", id, o.Error)
		}
	}
	for _, id := range []string{"eab1", "eab2"} {
		k, err := db.GetEABKey(ctx, id)
		must(t, err)
		if k.RevokedAt.IsZero() || k.RevokedBy != "ops" {
			t.Errorf("key %s after the delete: revoked %v by %q, want revoked by ops", id, k.RevokedAt, k.RevokedBy)
		}
	}

	// The name is free again, under a new ID that owns none of the old
	// accounts: the old key registers anew.
	must(t, db.CreateProvisioner(ctx, newProvisioner("prov2", "web", "ca1"), ev("acme.provisioner.create", "web")))
	_, err = db.AccountByThumbprint(ctx, "prov2", "thumb1")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	must(t, db.CreateAccount(ctx, newAccount("acct4", "prov2", "thumb1"), ev("acme.account.create", "acct4")))
}

// testACMERevokeEABKey covers revoking external account keys: an unused
// key no longer binds, a bound key's account is deactivated in the same
// transaction, and revoking twice or an unknown key changes nothing.
func testACMERevokeEABKey(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	for _, id := range []string{"eab1", "eab2", "eab3"} {
		must(t, db.CreateEABKey(ctx, newEABKey(id, "prov1", ""), tev()))
	}
	bound := newAccount("acct1", "prov1", "thumb1")
	bound.EABKeyID = "eab1"
	must(t, db.CreateAccount(ctx, bound, tev()))
	// eab3's account deactivated itself before the revocation.
	gone := newAccount("acct3", "prov1", "thumb3")
	gone.EABKeyID = "eab3"
	must(t, db.CreateAccount(ctx, gone, tev()))
	gone.Status = acme.StatusDeactivated
	must(t, db.UpdateAccount(ctx, gone, gone.KeyThumbprint, tev()))
	log := newAuditLog(t, db)

	at := base().Add(time.Hour)
	revoke := func(id string) (string, bool, error) {
		return db.RevokeEABKey(ctx, id, at, "ops", func(account string, deactivated bool) audit.Event {
			e := ev("acme.eab.revoke", id)
			if deactivated {
				e.Target += " deactivated " + account
			}
			return e
		})
	}
	account, deactivated, err := revoke("eab1")
	must(t, err)
	if account != "acct1" || !deactivated {
		t.Errorf("revoking the bound key: account %q, deactivated %v; want acct1, true", account, deactivated)
	}
	a, err := db.GetAccount(ctx, "acct1")
	must(t, err)
	if a.Status != acme.StatusDeactivated {
		t.Errorf("the bound account is %s after the revocation, want deactivated", a.Status)
	}
	k, err := db.GetEABKey(ctx, "eab1")
	must(t, err)
	checkTime(t, "RevokedAt", k.RevokedAt, at)
	if k.RevokedBy != "ops" || k.AccountID != "acct1" {
		t.Errorf("revoked key: by %q, account %q", k.RevokedBy, k.AccountID)
	}

	account, deactivated, err = revoke("eab2")
	must(t, err)
	if account != "" || deactivated {
		t.Errorf("revoking an unused key: account %q, deactivated %v", account, deactivated)
	}
	account, deactivated, err = revoke("eab3")
	must(t, err)
	if account != "acct3" || deactivated {
		t.Errorf("revoking the key of a deactivated account: account %q, deactivated %v; want acct3, false", account, deactivated)
	}
	log.expect(t, "acme.eab.revoke eab1 deactivated acct1", "acme.eab.revoke eab2", "acme.eab.revoke eab3")

	_, _, err = revoke("eab1")
	wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	_, _, err = revoke("nope")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	log.expect(t)

	// A revoked key binds nothing, and the account is not created.
	fresh := newAccount("acct2", "prov1", "thumb2")
	fresh.EABKeyID = "eab2"
	err = db.CreateAccount(ctx, fresh, ev("acme.account.create", "acct2"))
	wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	_, err = db.GetAccount(ctx, "acct2")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	log.expect(t)
}
