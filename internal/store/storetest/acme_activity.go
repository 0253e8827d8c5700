package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/store"
)

// testACMEActivity: the operator's view of a provisioner lists its own
// accounts, orders and failed validations only, newest first, within
// the limit; orders are counted up to the cap, and an account's last
// activity is its newest order, or its creation.
func testACMEActivity(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	t0 := base()
	for i := range 3 {
		a := newAccount(fmt.Sprintf("acct%d", i), "prov1", fmt.Sprintf("thumb%d", i))
		a.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
		must(t, db.CreateAccount(ctx, a, tev()))
	}
	must(t, db.CreateAccount(ctx, newAccount("acctP", "prov2", "thumbP"), tev()))
	for i := range 3 {
		o := newOrder(fmt.Sprintf("ord%d", i), "acct0")
		o.CreatedAt = t0.Add(time.Duration(i+1) * time.Hour)
		must(t, db.CreateOrder(ctx, o, nil))
	}
	other := newOrder("ordP", "acctP")
	other.ProvisionerID, other.CreatedAt = "prov2", t0.Add(5*time.Hour)
	must(t, db.CreateOrder(ctx, other, nil))

	accts, err := db.RecentAccounts(ctx, "prov1", 2, 2)
	must(t, err)
	if ids := accountIDs(accts); !slices.Equal(ids, []string{"acct2", "acct1"}) {
		t.Errorf("RecentAccounts(prov1, limit 2) = %v, want [acct2 acct1]", ids)
	}
	accts, err = db.RecentAccounts(ctx, "prov1", 0, 2)
	must(t, err)
	if ids := accountIDs(accts); !slices.Equal(ids, []string{"acct2", "acct1", "acct0"}) {
		t.Fatalf("RecentAccounts(prov1) = %v, want [acct2 acct1 acct0]", ids)
	}
	if a := accts[2]; a.Orders != 2 {
		t.Errorf("acct0 has %d orders counted with a cap of 2, want 2", a.Orders)
	}
	checkTime(t, "acct0 last activity", accts[2].LastActivity, t0.Add(3*time.Hour))
	checkTime(t, "acct1 last activity", accts[1].LastActivity, t0.Add(time.Minute))
	if accts[1].Orders != 0 || !slices.Equal(accts[1].Contact, []string{"mailto:ops@example.com", "mailto:dev@example.com"}) {
		t.Errorf("acct1: %d orders, contact %v", accts[1].Orders, accts[1].Contact)
	}
	if accts, err = db.RecentAccounts(ctx, "prov1", 0, 0); err != nil || accts[2].Orders != 3 {
		t.Errorf("acct0 orders with the default cap: %v, %v", accts, err)
	}

	orders, err := db.RecentOrders(ctx, "prov1", 2)
	must(t, err)
	if len(orders) != 2 || orders[0].ID != "ord2" || orders[1].ID != "ord1" {
		t.Errorf("RecentOrders(prov1, 2) = %v, want ord2, ord1", orderIDs(orders))
	}

	// Failed validations: fA and fB failed on prov1 (fB later), pending
	// stays pending, fP failed on prov2.
	var azs []*acme.Authorization
	for i, id := range []string{"fA", "fB", "pending"} {
		az := newAuthz(id, "acct1", id+".example.com")
		az.CreatedAt = t0.Add(time.Duration(i) * time.Hour)
		azs = append(azs, az)
	}
	must(t, db.CreateOrder(ctx, newOrder("ordF", "acct1", azs...), azs))
	fP := newAuthz("fP", "acctP", "fp.example.com")
	fP.ProvisionerID = "prov2"
	po := newOrder("ordFP", "acctP", fP)
	po.ProvisionerID = "prov2"
	must(t, db.CreateOrder(ctx, po, []*acme.Authorization{fP}))
	for _, az := range []*acme.Authorization{azs[0], azs[1], fP} {
		az.Status = acme.StatusInvalid
		az.Challenges[1].Status, az.Challenges[1].Validated = acme.StatusInvalid, t0.Add(6*time.Hour)
		az.Challenges[1].Error = &acme.Problem{Type: acme.ErrDNS, Detail: "no TXT record at " + az.Identifier.Value}
		must(t, db.UpdateAuthorization(ctx, az, acme.StatusPending))
	}
	fails, err := db.RecentFailedValidations(ctx, "prov1", 0)
	must(t, err)
	if len(fails) != 2 || fails[0].AuthzID != "fB" || fails[1].AuthzID != "fA" {
		t.Fatalf("RecentFailedValidations(prov1) = %+v, want fB then fA", fails)
	}
	f := fails[0]
	if f.AccountID != "acct1" || f.Type != azs[1].Challenges[1].Type || f.Identifier.Value != "fB.example.com" ||
		f.Error == nil || f.Error.Type != acme.ErrDNS || f.Error.Detail != "no TXT record at fB.example.com" {
		t.Errorf("failed validation %+v (error %+v)", f, f.Error)
	}
	checkTime(t, "failed validation time", f.At, t0.Add(6*time.Hour))
	if fails, err = db.RecentFailedValidations(ctx, "prov1", 1); err != nil || len(fails) != 1 || fails[0].AuthzID != "fB" {
		t.Errorf("RecentFailedValidations(prov1, 1) = %v, %v; want fB", fails, err)
	}
}

func accountIDs(as []*acme.AccountActivity) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func orderIDs(os []*acme.Order) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}
