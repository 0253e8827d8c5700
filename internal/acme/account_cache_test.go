package acme_test

import (
	"context"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// resolved resolves acct twice (the second from the cache) and fails
// unless both succeed.
func resolved(t *testing.T, svc *acme.Service, prov *acme.Provisioner, acct *acme.Account) {
	t.Helper()
	for range 2 {
		if _, err := svc.Account(context.Background(), prov, acct.ID); err != nil {
			t.Fatalf("Account %s: %v", acct.ID, err)
		}
	}
}

// TestAccountCacheChangeHere: a change made through this process binds the
// very next request, though the account sits in the cache.
func TestAccountCacheChangeHere(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		e := newEnvOn(t, open(t), nil)
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "cache"})

		// Deactivation.
		a := e.account(t, e.svc, prov)
		resolved(t, e.svc, prov, a)
		if _, err := e.svc.UpdateAccount(ctx, prov, a, nil, true); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Account(ctx, prov, a.ID)
		wantProblem(t, err, acme.ErrUnauthorized)

		// Key rollover: the kid resolves to the new key at once.
		b := e.account(t, e.svc, prov)
		resolved(t, e.svc, prov, b)
		tp := thumbprint(t)
		if _, err := e.svc.ChangeKey(ctx, prov, b, tp, []byte(`{"kty":"EC","rolled":true}`)); err != nil {
			t.Fatal(err)
		}
		if got, err := e.svc.Account(ctx, prov, b.ID); err != nil || got.KeyThumbprint != tp || string(got.KeyJWK) != `{"kty":"EC","rolled":true}` {
			t.Fatalf("after rollover the account resolves to %+v, %v; want the new key", got, err)
		}

		// A copy is handed out: changing it changes nothing cached.
		got, _ := e.svc.Account(ctx, prov, b.ID)
		got.Status, got.KeyJWK[0] = acme.StatusDeactivated, 'X'
		if again, err := e.svc.Account(ctx, prov, b.ID); err != nil || again.KeyJWK[0] != '{' {
			t.Fatalf("a caller's change reached the cache: %+v, %v", again, err)
		}

		// External account key revoked: the account it bound is deactivated.
		eabProv := e.provisioner(t, acme.ProvisionerSpec{Name: "cache-eab", RequireEAB: true})
		k, _, err := e.svc.CreateEABKey(ctx, admin, "cache-eab", e.eabPrincipal(t, "cache-bot", authz.Scope{}), "")
		if err != nil {
			t.Fatal(err)
		}
		req := newAccountReq(t)
		req.EABKeyID = k.ID
		c, _, err := e.svc.NewAccount(ctx, eabProv, req)
		if err != nil {
			t.Fatal(err)
		}
		resolved(t, e.svc, eabProv, c)
		if _, _, err := e.svc.RevokeEABKey(ctx, admin, k.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Account(ctx, eabProv, c.ID)
		wantProblem(t, err, acme.ErrUnauthorized)

		// Provisioner disabled: the next request sees it disabled; deleted:
		// its accounts stop resolving.
		d := e.account(t, e.svc, prov)
		resolved(t, e.svc, prov, d)
		if _, err := e.svc.DisableProvisioner(ctx, admin, "cache"); err != nil {
			t.Fatal(err)
		}
		cur, err := e.svc.Provisioner(ctx, "cache")
		if err != nil || !cur.Disabled() {
			t.Fatalf("after disable the provisioner resolves to %+v, %v", cur, err)
		}
		_, err = e.svc.NewOrder(ctx, cur, d, acme.OrderRequest{Identifiers: dnsIDs("a.cache.test")})
		wantProblem(t, err, acme.ErrUnauthorized)
		resolved(t, e.svc, cur, d) // revocation goes on while disabled
		if _, _, err := e.svc.DeleteProvisioner(ctx, admin, "cache"); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Account(ctx, cur, d.ID)
		wantProblem(t, err, acme.ErrUnauthorized)
	})
}

// TestAccountCacheOtherReplica: a change another replica writes to the
// database binds this one within AccountCacheMaxAge.
func TestAccountCacheOtherReplica(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		e := newEnvOn(t, open(t), nil)
		other := open(t)
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "replica"})
		a := e.account(t, e.svc, prov)
		resolved(t, e.svc, prov, a)

		ev := audit.Event{Time: e.clk.Now(), Principal: "other replica", Action: "acme.account.deactivate", Outcome: audit.Success}
		upd := *a
		upd.Status = acme.StatusDeactivated
		if err := other.UpdateAccount(ctx, &upd, a.KeyThumbprint, ev); err != nil {
			t.Fatal(err)
		}
		ev.Action = "acme.provisioner.disable"
		if err := other.SetProvisionerDisabled(ctx, prov.ID, e.clk.Now(), "other replica", ev); err != nil {
			t.Fatal(err)
		}
		// Within the bound the cached state may still serve...
		e.clk.Advance(acme.AccountCacheMaxAge - time.Millisecond)
		if _, err := e.svc.Account(ctx, prov, a.ID); err != nil {
			t.Fatalf("within the bound: %v (the cache is not used?)", err)
		}
		// ...and no longer once it has passed.
		e.clk.Advance(time.Millisecond)
		_, err := e.svc.Account(ctx, prov, a.ID)
		wantProblem(t, err, acme.ErrUnauthorized)
		if cur, err := e.svc.Provisioner(ctx, "replica"); err != nil || !cur.Disabled() {
			t.Fatalf("a second after another replica disabled it the provisioner resolves to %+v, %v", cur, err)
		}
	})
}
