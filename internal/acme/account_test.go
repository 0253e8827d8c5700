package acme_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
)

func newAccountReq(t testing.TB) acme.NewAccountRequest {
	tp := thumbprint(t)
	return acme.NewAccountRequest{
		Thumbprint: tp, JWK: []byte(`{"kty":"EC","x":"` + tp + `"}`),
		Contact: []string{"mailto:ops@example.test"}, TermsAgreed: true, ClientIP: "192.0.2.1",
	}
}

func TestNewAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "accounts"})

	t.Run("create then same key", func(t *testing.T) {
		t.Parallel()
		req := newAccountReq(t)
		a, created, err := e.svc.NewAccount(ctx, prov, req)
		if err != nil || !created {
			t.Fatalf("NewAccount: created %v, %v", created, err)
		}
		if a.ID == "" || a.Status != acme.StatusValid || a.ProvisionerID != prov.ID || a.KeyThumbprint != req.Thumbprint ||
			!bytes.Equal(a.KeyJWK, req.JWK) || !a.TermsAgreed || a.CreatedIP != "192.0.2.1" || !a.CreatedAt.Equal(start) {
			t.Errorf("new account %+v", a)
		}
		again, created, err := e.svc.NewAccount(ctx, prov, req)
		if err != nil || created {
			t.Fatalf("NewAccount with the same key: created %v, %v", created, err)
		}
		if again.ID != a.ID {
			t.Errorf("same key gave account %s, want %s", again.ID, a.ID)
		}
		// onlyReturnExisting finds it too.
		req.OnlyReturnExisting = true
		if got, created, err := e.svc.NewAccount(ctx, prov, req); err != nil || created || got.ID != a.ID {
			t.Errorf("onlyReturnExisting: %v %v %v", got, created, err)
		}
		got, err := e.svc.AccountByKey(ctx, prov, req.Thumbprint)
		if err != nil || got.ID != a.ID {
			t.Errorf("AccountByKey: %v, %v", got, err)
		}
		if got, err := e.svc.Account(ctx, prov, a.ID); err != nil || got.KeyThumbprint != req.Thumbprint {
			t.Errorf("Account: %v, %v", got, err)
		}
	})

	t.Run("only return existing", func(t *testing.T) {
		t.Parallel()
		req := newAccountReq(t)
		req.OnlyReturnExisting = true
		_, _, err := e.svc.NewAccount(ctx, prov, req)
		wantProblem(t, err, acme.ErrAccountDoesNotExist)
		_, err = e.svc.AccountByKey(ctx, prov, req.Thumbprint)
		wantProblem(t, err, acme.ErrAccountDoesNotExist)
	})

	t.Run("account of another provisioner", func(t *testing.T) {
		t.Parallel()
		other := e.provisioner(t, acme.ProvisionerSpec{Name: "accounts-other"})
		a := e.account(t, e.svc, other)
		_, err := e.svc.Account(ctx, prov, a.ID)
		wantProblem(t, err, acme.ErrAccountDoesNotExist)
		// The same key is a different account on another provisioner.
		b, created, err := e.svc.NewAccount(ctx, prov, acme.NewAccountRequest{Thumbprint: a.KeyThumbprint, JWK: a.KeyJWK})
		if err != nil || !created || b.ID == a.ID {
			t.Errorf("same key on another provisioner: %v, created %v, %v", b, created, err)
		}
	})

	t.Run("contacts", func(t *testing.T) {
		t.Parallel()
		many := make([]string, 11)
		for i := range many {
			many[i] = fmt.Sprintf("mailto:ops%d@example.test", i)
		}
		for _, tc := range []struct {
			name    string
			contact []string
			want    acme.ErrorType
		}{
			{"tel", []string{"tel:+15555550100"}, acme.ErrUnsupportedContact},
			{"no scheme", []string{"ops@example.test"}, acme.ErrUnsupportedContact},
			{"not an address", []string{"mailto:not an address"}, acme.ErrInvalidContact},
			{"display name", []string{"mailto:Ops <ops@example.test>"}, acme.ErrInvalidContact},
			{"two addresses", []string{"mailto:a@example.test,b@example.test"}, acme.ErrInvalidContact},
			{"header fields", []string{"mailto:a@example.test?subject=hi"}, acme.ErrInvalidContact},
			{"too long", []string{"mailto:" + strings.Repeat("a", 320) + "@example.test"}, acme.ErrInvalidContact},
			{"too many", many, acme.ErrInvalidContact},
			{"one bad among good", []string{"mailto:ok@example.test", "tel:+15555550100"}, acme.ErrUnsupportedContact},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := newAccountReq(t)
				req.Contact = tc.contact
				_, _, err := e.svc.NewAccount(ctx, prov, req)
				wantProblem(t, err, tc.want)
				_, err = e.svc.AccountByKey(ctx, prov, req.Thumbprint)
				wantProblem(t, err, acme.ErrAccountDoesNotExist)
			})
		}
		req := newAccountReq(t)
		req.Contact = many[:10]
		if _, _, err := e.svc.NewAccount(ctx, prov, req); err != nil {
			t.Errorf("ten contacts: %v", err)
		}
		req = newAccountReq(t)
		req.Contact = nil
		a, _, err := e.svc.NewAccount(ctx, prov, req)
		if err != nil || a.Contact == nil || len(a.Contact) != 0 {
			t.Errorf("no contacts: %#v, %v", a, err)
		}
	})
}

func TestNewAccountTermsOfService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "tos", TermsOfService: "https://pki.example.test/tos"})
	req := newAccountReq(t)
	req.TermsAgreed = false
	_, _, err := e.svc.NewAccount(ctx, prov, req)
	p := wantProblem(t, err, acme.ErrUserActionRequired)
	if !strings.Contains(p.Detail, "https://pki.example.test/tos") {
		t.Errorf("detail %q does not name the terms", p.Detail)
	}
	req.TermsAgreed = true
	if _, created, err := e.svc.NewAccount(ctx, prov, req); err != nil || !created {
		t.Fatalf("after agreeing: created %v, %v", created, err)
	}
}

func TestAccountsPerIPLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.Limits.AccountsPerHour = 2 })
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "ratelimit"})
	other := e.provisioner(t, acme.ProvisionerSpec{Name: "ratelimit-other"})
	for i := range 2 {
		if _, _, err := e.svc.NewAccount(ctx, prov, newAccountReq(t)); err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
	}
	req := newAccountReq(t)
	_, _, err := e.svc.NewAccount(ctx, prov, req)
	p := wantProblem(t, err, acme.ErrRateLimited)
	if p.RetryAfterSeconds <= 0 || p.Status() != 429 {
		t.Errorf("rate limit problem: retry after %d, status %d", p.RetryAfterSeconds, p.Status())
	}
	if _, err := e.svc.AccountByKey(ctx, prov, req.Thumbprint); acme.AsProblem(err) == nil {
		t.Errorf("refused account exists: %v", err)
	}

	// Other addresses and other provisioners count separately.
	req2 := newAccountReq(t)
	req2.ClientIP = "192.0.2.2"
	if _, _, err := e.svc.NewAccount(ctx, prov, req2); err != nil {
		t.Errorf("another address: %v", err)
	}
	if _, _, err := e.svc.NewAccount(ctx, other, newAccountReq(t)); err != nil {
		t.Errorf("another provisioner: %v", err)
	}
	// Existing accounts are still returned.
	if _, created, err := e.svc.NewAccount(ctx, prov, req2); err != nil || created {
		t.Errorf("existing account over the limit: created %v, %v", created, err)
	}

	e.clk.Advance(time.Hour + time.Second)
	if _, _, err := e.svc.NewAccount(ctx, prov, req); err != nil {
		t.Errorf("an hour later: %v", err)
	}
}

// eabPrincipal creates a machine principal holding the issuer role within
// scope.
func (e *env) eabPrincipal(t *testing.T, name string, scope authz.Scope) string {
	t.Helper()
	ctx := context.Background()
	rec, err := e.access.CreatePrincipal(ctx, admin, name, authz.KindMachine, "ACME client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.access.Bind(ctx, admin, rec.ID, authz.RoleIssuer, scope); err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

func TestExternalAccountBinding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "eab", RequireEAB: true})
	other := e.provisioner(t, acme.ProvisionerSpec{Name: "eab-other", RequireEAB: true})
	principalID := e.eabPrincipal(t, "eab-bot", authz.Scope{})

	_, _, err := e.svc.NewAccount(ctx, prov, newAccountReq(t))
	wantProblem(t, err, acme.ErrExternalAccountRequired)

	k, hmacKey, err := e.svc.CreateEABKey(ctx, admin, "eab", principalID, "deploy host")
	if err != nil {
		t.Fatal(err)
	}
	if len(hmacKey) < 32 || k.PrincipalID != principalID || k.PrincipalName != "eab-bot" || k.ProvisionerID != prov.ID {
		t.Fatalf("CreateEABKey: %+v, key of %d bytes", k, len(hmacKey))
	}
	got, err := e.svc.EABKey(ctx, prov, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, hmacKey) {
		t.Fatal("EABKey returns a different HMAC key than CreateEABKey handed out")
	}
	_, err = e.svc.EABKey(ctx, other, k.ID)
	wantProblem(t, err, acme.ErrUnauthorized)
	_, err = e.svc.EABKey(ctx, prov, "eab_unknown")
	wantProblem(t, err, acme.ErrUnauthorized)

	req := newAccountReq(t)
	req.EABKeyID = k.ID
	a, created, err := e.svc.NewAccount(ctx, prov, req)
	if err != nil || !created {
		t.Fatalf("NewAccount with EAB: created %v, %v", created, err)
	}
	if a.EABKeyID != k.ID || a.PrincipalID != principalID {
		t.Errorf("bound account: EAB key %q, principal %q", a.EABKeyID, a.PrincipalID)
	}
	stored, err := e.db.GetEABKey(ctx, k.ID)
	if err != nil || stored.AccountID != a.ID || stored.BoundAt.IsZero() {
		t.Errorf("stored key after binding: %+v, %v", stored, err)
	}
	// A bound key cannot be used again.
	_, err = e.svc.EABKey(ctx, prov, k.ID)
	wantProblem(t, err, acme.ErrUnauthorized)

	// Even by an edge that verified the binding before the key was bound.
	req2 := newAccountReq(t)
	req2.EABKeyID = k.ID
	_, _, err = e.svc.NewAccount(ctx, prov, req2)
	wantProblem(t, err, acme.ErrUnauthorized)
	_, err = e.svc.AccountByKey(ctx, prov, req2.Thumbprint)
	wantProblem(t, err, acme.ErrAccountDoesNotExist)

	// The first account is still returned for its key, without EAB.
	if got, created, err := e.svc.NewAccount(ctx, prov, acme.NewAccountRequest{Thumbprint: req.Thumbprint}); err != nil || created || got.ID != a.ID {
		t.Errorf("existing EAB account: %v, created %v, %v", got, created, err)
	}

	keys, err := e.svc.ListEABKeys(ctx, admin, "eab")
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID || keys[0].AccountID != a.ID {
		t.Errorf("ListEABKeys: %+v, %v", keys, err)
	}
	_, err = e.svc.ListEABKeys(ctx, authz.Principal{Name: "nobody"}, "eab")
	if !errorsIs(err, authz.ErrForbidden) {
		t.Errorf("ListEABKeys without principal:read: %v", err)
	}

	t.Run("unknown key", func(t *testing.T) {
		req := newAccountReq(t)
		req.EABKeyID = "eab_nonexistent"
		_, _, err := e.svc.NewAccount(ctx, prov, req)
		wantProblem(t, err, acme.ErrUnauthorized)
	})
	t.Run("key of another provisioner", func(t *testing.T) {
		k2, _, err := e.svc.CreateEABKey(ctx, admin, "eab-other", "", "")
		if err != nil {
			t.Fatal(err)
		}
		req := newAccountReq(t)
		req.EABKeyID = k2.ID
		_, _, err = e.svc.NewAccount(ctx, prov, req)
		wantProblem(t, err, acme.ErrUnauthorized)
		if _, err := e.svc.AccountByKey(ctx, prov, req.Thumbprint); acme.AsProblem(err) == nil {
			t.Errorf("account exists after a refused binding: %v", err)
		}
		if _, err := e.svc.EABKey(ctx, other, k2.ID); err != nil {
			t.Errorf("the other provisioner's key was spent: %v", err)
		}
	})
	t.Run("principal by name", func(t *testing.T) {
		k, _, err := e.svc.CreateEABKey(ctx, admin, "eab", "eab-bot", "")
		if err != nil {
			t.Fatal(err)
		}
		if k.PrincipalID != principalID || k.PrincipalName != "eab-bot" {
			t.Errorf("key bound to %q (%s), want %s", k.PrincipalID, k.PrincipalName, principalID)
		}
		if _, _, err := e.svc.CreateEABKey(ctx, admin, "eab", "no-such-bot", ""); err == nil {
			t.Error("a key was created for an unknown principal")
		}
		if _, _, err := e.svc.CreateEABKey(ctx, admin, "no-such-provisioner", "", ""); err == nil {
			t.Error("a key was created for an unknown provisioner")
		}
	})
	t.Run("create needs principal:manage", func(t *testing.T) {
		_, _, err := e.svc.CreateEABKey(ctx, viewer, "eab", "", "")
		if !errorsIs(err, authz.ErrForbidden) {
			t.Errorf("viewer: %v", err)
		}
	})
	t.Run("human principal", func(t *testing.T) {
		rec, err := e.access.CreatePrincipal(ctx, admin, "bob", authz.KindHuman, "")
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.svc.CreateEABKey(ctx, admin, "eab", rec.ID, "")
		if !errorsIs(err, acme.ErrInvalid) {
			t.Errorf("binding a human: %v", err)
		}
	})
}

func TestUpdateAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "update"})
	a := e.account(t, e.svc, prov)

	same, err := e.svc.UpdateAccount(ctx, prov, a, nil, false)
	if err != nil || same.Status != acme.StatusValid {
		t.Fatalf("no-op update: %v, %v", same, err)
	}
	_, err = e.svc.UpdateAccount(ctx, prov, a, []string{"tel:+15555550100"}, false)
	wantProblem(t, err, acme.ErrUnsupportedContact)

	upd, err := e.svc.UpdateAccount(ctx, prov, a, []string{"mailto:new@example.test", "mailto:other@example.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(upd.Contact) != 2 || upd.Contact[0] != "mailto:new@example.test" {
		t.Errorf("updated contact %v", upd.Contact)
	}
	got, err := e.svc.Account(ctx, prov, a.ID)
	if err != nil || len(got.Contact) != 2 || got.Contact[1] != "mailto:other@example.test" {
		t.Errorf("stored contact: %v, %v", got, err)
	}
	// An empty list removes every contact.
	if upd, err = e.svc.UpdateAccount(ctx, prov, got, []string{}, false); err != nil || len(upd.Contact) != 0 {
		t.Errorf("clearing contacts: %v, %v", upd, err)
	}

	deact, err := e.svc.UpdateAccount(ctx, prov, upd, nil, true)
	if err != nil || deact.Status != acme.StatusDeactivated {
		t.Fatalf("deactivate: %v, %v", deact, err)
	}
	_, err = e.svc.Account(ctx, prov, a.ID)
	wantProblem(t, err, acme.ErrUnauthorized)
	_, err = e.svc.AccountByKey(ctx, prov, a.KeyThumbprint)
	wantProblem(t, err, acme.ErrUnauthorized)
	_, _, err = e.svc.NewAccount(ctx, prov, acme.NewAccountRequest{Thumbprint: a.KeyThumbprint})
	wantProblem(t, err, acme.ErrUnauthorized)

	var actions []string
	for _, ev := range auditEvents(t, e) {
		if ev.Target == a.ID {
			actions = append(actions, ev.Action)
		}
	}
	want := []string{"acme.account.create", "acme.account.update", "acme.account.update", "acme.account.deactivate"}
	if strings.Join(actions, " ") != strings.Join(want, " ") {
		t.Errorf("audit actions for the account %v, want %v", actions, want)
	}
}

func TestChangeKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "rollover"})
	a := e.account(t, e.svc, prov)
	b := e.account(t, e.svc, prov)

	_, err := e.svc.ChangeKey(ctx, prov, a, b.KeyThumbprint, b.KeyJWK)
	p := acme.AsProblem(err)
	if p == nil {
		t.Fatalf("rollover onto another account's key: %v, want a problem", err)
	}
	if p.Status() != 409 || p.Location != "account/"+b.ID {
		t.Errorf("rollover onto another account's key: status %d, location %q, want 409 and account/%s", p.Status(), p.Location, b.ID)
	}
	if !strings.HasSuffix(p.URN(), ":malformed") {
		t.Errorf("conflict URN %q", p.URN())
	}
	_, err = e.svc.ChangeKey(ctx, prov, a, a.KeyThumbprint, a.KeyJWK)
	wantProblem(t, err, acme.ErrMalformed)

	tp := thumbprint(t)
	jwk := []byte(`{"kty":"EC","new":true}`)
	upd, err := e.svc.ChangeKey(ctx, prov, a, tp, jwk)
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID != a.ID || upd.KeyThumbprint != tp || !bytes.Equal(upd.KeyJWK, jwk) {
		t.Errorf("after rollover %+v", upd)
	}
	if got, err := e.svc.AccountByKey(ctx, prov, tp); err != nil || got.ID != a.ID {
		t.Errorf("new key finds %v, %v", got, err)
	}
	_, err = e.svc.AccountByKey(ctx, prov, a.KeyThumbprint)
	wantProblem(t, err, acme.ErrAccountDoesNotExist)
}
