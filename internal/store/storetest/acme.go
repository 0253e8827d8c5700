package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// acmeTests cover the ACME port (acme.Store): provisioners, nonces,
// accounts, external account keys, orders, authorizations, challenges and
// renew-now marks.
var acmeTests = []struct {
	name string
	fn   func(*testing.T, func(*testing.T) *store.DB)
}{
	{"ACMEProvisioners", testACMEProvisioners},
	{"ACMENonces", testACMENonces},
	{"ACMEAccounts", testACMEAccounts},
	{"ACMEExternalAccountKeys", testACMEExternalAccountKeys},
	{"ACMEOrders", testACMEOrders},
	{"ACMEListOrderIDs", testACMEListOrderIDs},
	{"ACMEAuthorizations", testACMEAuthorizations},
	{"ACMEReusableAuthorization", testACMEReusableAuthorization},
	{"ACMERateLimitCounts", testACMERateLimitCounts},
	{"ACMEMarkRenewNow", testACMEMarkRenewNow},
	{"ACMEProvisionerLifecycle", testACMEProvisionerLifecycle},
	{"ACMERevokeEABKey", testACMERevokeEABKey},
	{"ACMEActivity", testACMEActivity},
	{"CertificateRenewNowAt", testCertificateRenewNowAt},
	{"CertificateDER", testCertificateDER},
}

// wantACMEErr checks that err matches both the store's sentinel and the
// acme port's.
func wantACMEErr(t *testing.T, err, storeErr, acmeErr error) {
	t.Helper()
	if !errors.Is(err, storeErr) || !errors.Is(err, acmeErr) {
		t.Fatalf("err = %v, want %v and %v", err, storeErr, acmeErr)
	}
}

func newProvisioner(id, name, caID string) *acme.Provisioner {
	return &acme.Provisioner{
		ID: id, Name: name, CAID: caID, Profile: "server",
		Challenges:         []string{acme.ChallengeDNS01, acme.ChallengeHTTP01},
		AllowNames:         []string{"*.example.com", "10.0.0.0/8"},
		RequireEAB:         true,
		AllowSubjectFields: true,
		TermsOfService:     "https://example.com/tos",
		Website:            "https://example.com",
		CreatedAt:          base(),
		CreatedBy:          "tester",
	}
}

func checkProvisioner(t *testing.T, got, want *acme.Provisioner) {
	t.Helper()
	checkTime(t, "provisioner CreatedAt", got.CreatedAt, want.CreatedAt)
	g, w := *got, *want
	g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("provisioner = %+v\nwant %+v", g, w)
	}
}

func testACMEProvisioners(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreateCA(ctx, newCA("ca1", "Issuing CA"), tev()))
	log := newAuditLog(t, db)

	p1 := newProvisioner("prov1", "public", "ca1")
	must(t, db.CreateProvisioner(ctx, p1, ev("acme.provisioner.create", "prov1")))
	// Nil lists read back empty; a CA that does not exist has no name.
	p2 := &acme.Provisioner{ID: "prov2", Name: "internal", CAID: "gone", Profile: "client", CreatedAt: base().Add(time.Second), CreatedBy: "tester"}
	must(t, db.CreateProvisioner(ctx, p2, ev("acme.provisioner.create", "prov2")))
	log.expect(t, "acme.provisioner.create prov1", "acme.provisioner.create prov2")

	wantP1 := *p1
	wantP1.CAName = "Issuing CA"
	wantP2 := *p2
	wantP2.Challenges, wantP2.AllowNames = []string{}, []string{}
	for _, key := range []string{"prov1", "public"} {
		got, err := db.GetProvisioner(ctx, key)
		must(t, err)
		checkProvisioner(t, got, &wantP1)
	}
	got, err := db.GetProvisioner(ctx, "internal")
	must(t, err)
	checkProvisioner(t, got, &wantP2)

	// A name equal to another provisioner's ID: the ID wins.
	p3 := newProvisioner("prov3", "prov1", "ca1")
	must(t, db.CreateProvisioner(ctx, p3, ev("acme.provisioner.create", "prov3")))
	got, err = db.GetProvisioner(ctx, "prov1")
	must(t, err)
	if got.ID != "prov1" {
		t.Errorf("GetProvisioner(prov1) = %s, want the ID match", got.ID)
	}

	for _, dup := range []*acme.Provisioner{newProvisioner("prov9", "public", "ca1"), newProvisioner("prov1", "other", "ca1")} {
		err := db.CreateProvisioner(ctx, dup, ev("acme.provisioner.create", dup.ID))
		wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	}
	_, err = db.GetProvisioner(ctx, "nope")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	err = db.CreateProvisioner(ctx, newProvisioner("prov9", "x", "ca1"), ev("", ""))
	wantErr(t, err, audit.ErrInvalid)
	_, err = db.GetProvisioner(ctx, "prov9")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	log.expect(t, "acme.provisioner.create prov3")

	all, err := db.ListProvisioners(ctx)
	must(t, err)
	var names []string
	for _, p := range all {
		names = append(names, p.Name)
	}
	if want := []string{"internal", "prov1", "public"}; !slices.Equal(names, want) {
		t.Errorf("ListProvisioners names = %q, want %q", names, want)
	}
	checkProvisioner(t, all[2], &wantP1)
}

func testACMENonces(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)

	key, err := db.EnsureNonceKey(ctx, []byte("first key\x00\xff"))
	must(t, err)
	if string(key) != "first key\x00\xff" {
		t.Errorf("EnsureNonceKey = %q, want the candidate", key)
	}
	key, err = db.EnsureNonceKey(ctx, []byte("second key"))
	must(t, err)
	if string(key) != "first key\x00\xff" {
		t.Errorf("second EnsureNonceKey = %q, want the stored key", key)
	}
	if _, err := db.EnsureNonceKey(ctx, nil); err == nil {
		t.Error("EnsureNonceKey(nil) succeeded")
	}

	exp := base().Add(time.Hour)
	for _, tc := range []struct {
		id      string
		expires time.Time
		want    bool
	}{
		{"n1", exp, true},
		{"n2", exp.Add(time.Hour), true},
		{"n1", exp, false},                // replay
		{"n1", exp.Add(time.Hour), false}, // replay with another expiry
		{"n3", exp.Add(time.Microsecond), true},
	} {
		got, err := db.UseNonce(ctx, tc.id, tc.expires)
		must(t, err)
		if got != tc.want {
			t.Errorf("UseNonce(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}

	// Expired strictly before the cut-off: n1 only.
	n, err := db.PurgeNonces(ctx, exp.Add(time.Microsecond))
	must(t, err)
	if n != 1 {
		t.Errorf("PurgeNonces = %d, want 1", n)
	}
	n, err = db.PurgeNonces(ctx, exp.Add(time.Microsecond))
	must(t, err)
	if n != 0 {
		t.Errorf("second PurgeNonces = %d, want 0", n)
	}
	for id, want := range map[string]bool{"n1": true, "n2": false, "n3": false} {
		got, err := db.UseNonce(ctx, id, exp)
		must(t, err)
		if got != want {
			t.Errorf("UseNonce(%s) after purge = %v, want %v", id, got, want)
		}
	}
}

func newAccount(id, prov, thumb string) *acme.Account {
	return &acme.Account{
		ID: id, ProvisionerID: prov, KeyThumbprint: thumb,
		KeyJWK:      []byte(`{"kty":"EC","crv":"P-256","x":"` + thumb + `"}`),
		Contact:     []string{"mailto:ops@example.com", "mailto:dev@example.com"},
		Status:      acme.StatusValid,
		TermsAgreed: true,
		CreatedAt:   base(),
		CreatedIP:   "192.0.2.1",
	}
}

func checkAccount(t *testing.T, got, want *acme.Account) {
	t.Helper()
	checkTime(t, "account CreatedAt", got.CreatedAt, want.CreatedAt)
	g, w := *got, *want
	g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
	if w.Contact == nil {
		w.Contact = []string{}
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("account = %+v\nwant %+v", g, w)
	}
}

func newEABKey(id, prov, principal string) *acme.EABKey {
	return &acme.EABKey{ID: id, ProvisionerID: prov, PrincipalID: principal, Description: "key " + id,
		Sealed: []byte("sealed\x00" + id), CreatedAt: base(), CreatedBy: "tester"}
}

func testACMEAccounts(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("pr1", "robot"), tev()))
	must(t, db.CreateEABKey(ctx, newEABKey("eab1", "prov1", "pr1"), tev()))
	must(t, db.CreateEABKey(ctx, newEABKey("eab2", "prov1", "pr1"), tev()))
	log := newAuditLog(t, db)

	a1 := newAccount("acct1", "prov1", "thumb1")
	a1.EABKeyID, a1.PrincipalID = "eab1", "pr1"
	must(t, db.CreateAccount(ctx, a1, ev("acme.account.create", "acct1")))
	// No contact, no EAB key, no principal.
	a2 := &acme.Account{ID: "acct2", ProvisionerID: "prov1", KeyThumbprint: "thumb2", KeyJWK: []byte("{}"),
		Status: acme.StatusValid, CreatedAt: base().Add(time.Minute), CreatedIP: "2001:db8::1"}
	must(t, db.CreateAccount(ctx, a2, ev("acme.account.create", "acct2")))
	// The same key on another provisioner is another account.
	a3 := newAccount("acct3", "prov2", "thumb1")
	must(t, db.CreateAccount(ctx, a3, ev("acme.account.create", "acct3")))
	log.expect(t, "acme.account.create acct1", "acme.account.create acct2", "acme.account.create acct3")

	for _, want := range []*acme.Account{a1, a2, a3} {
		got, err := db.GetAccount(ctx, want.ID)
		must(t, err)
		checkAccount(t, got, want)
		got, err = db.AccountByThumbprint(ctx, want.ProvisionerID, want.KeyThumbprint)
		must(t, err)
		checkAccount(t, got, want)
	}
	k, err := db.GetEABKey(ctx, "eab1")
	must(t, err)
	if k.AccountID != "acct1" {
		t.Errorf("EAB key bound to %q, want acct1", k.AccountID)
	}
	checkTime(t, "EAB key BoundAt", k.BoundAt, a1.CreatedAt)

	t.Run("conflicts", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			a    *acme.Account
			want []error // sentinels the error must match
		}{
			{"duplicate ID", newAccount("acct1", "prov1", "thumb9"), []error{store.ErrConflict, acme.ErrConflict}},
			{"duplicate thumbprint", newAccount("acct9", "prov1", "thumb1"), []error{store.ErrConflict, acme.ErrConflict}},
			{"EAB key bound twice", func() *acme.Account {
				a := newAccount("acct9", "prov1", "thumb9")
				a.EABKeyID = "eab1"
				return a
			}(), []error{store.ErrConflict, acme.ErrConflict}},
			{"EAB key of another provisioner", func() *acme.Account {
				a := newAccount("acct9", "prov2", "thumb9")
				a.EABKeyID = "eab2"
				return a
			}(), []error{store.ErrNotFound, acme.ErrNotFound}},
			{"unknown EAB key", func() *acme.Account {
				a := newAccount("acct9", "prov1", "thumb9")
				a.EABKeyID = "nope"
				return a
			}(), []error{store.ErrNotFound, acme.ErrNotFound}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := db.CreateAccount(ctx, tc.a, ev("acme.account.create", tc.a.ID))
				wantACMEErr(t, err, tc.want[0], tc.want[1])
				// Nothing is left behind.
				if tc.a.ID != "acct1" {
					_, err := db.GetAccount(ctx, tc.a.ID)
					wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
				}
			})
		}
		k, err := db.GetEABKey(ctx, "eab2")
		must(t, err)
		if k.AccountID != "" || !k.BoundAt.IsZero() {
			t.Errorf("eab2 bound to %q at %v by a failed create", k.AccountID, k.BoundAt)
		}
		log.expect(t)
	})

	t.Run("update", func(t *testing.T) {
		up := *a2
		up.Contact = []string{"mailto:new@example.com"}
		up.KeyThumbprint, up.KeyJWK = "thumb2b", []byte(`{"new":true}`)
		up.CreatedIP = "ignored" // not written
		must(t, db.UpdateAccount(ctx, &up, "thumb2", ev("acme.account.update", "acct2")))
		got, err := db.GetAccount(ctx, "acct2")
		must(t, err)
		up.CreatedIP = a2.CreatedIP
		checkAccount(t, got, &up)
		if _, err := db.AccountByThumbprint(ctx, "prov1", "thumb2"); !errors.Is(err, acme.ErrNotFound) {
			t.Errorf("old thumbprint still finds an account: %v", err)
		}

		// A request verified with the old key (a stale cached copy, a
		// racing rollover) changes nothing.
		stale := *a2
		stale.Contact = []string{"mailto:stale@example.com"}
		err = db.UpdateAccount(ctx, &stale, "thumb2", ev("acme.account.update", "acct2"))
		if !errors.Is(err, acme.ErrStale) {
			t.Errorf("update under the old key: %v, want ErrStale", err)
		}

		// Rolling over onto a key another account of the provisioner holds.
		clash := up
		clash.KeyThumbprint = "thumb1"
		err = db.UpdateAccount(ctx, &clash, "thumb2b", ev("acme.account.update", "acct2"))
		wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
		// Keeping one's own thumbprint is no conflict.
		up.Status = acme.StatusDeactivated
		must(t, db.UpdateAccount(ctx, &up, "thumb2b", ev("acme.account.update", "acct2")))
		got, err = db.GetAccount(ctx, "acct2")
		must(t, err)
		checkAccount(t, got, &up)

		// Deactivation is final: an update from a copy read before it
		// (valid) changes nothing.
		revive := up
		revive.Status = acme.StatusValid
		err = db.UpdateAccount(ctx, &revive, "thumb2b", ev("acme.account.update", "acct2"))
		if !errors.Is(err, acme.ErrStale) {
			t.Errorf("update after deactivation: %v, want ErrStale", err)
		}
		if got, err := db.GetAccount(ctx, "acct2"); err != nil || got.Status != acme.StatusDeactivated {
			t.Errorf("after a refused update: %v, %v", got, err)
		}

		missing := newAccount("nope", "prov1", "thumb7")
		err = db.UpdateAccount(ctx, missing, "thumb7", ev("acme.account.update", "nope"))
		wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
		log.expect(t, "acme.account.update acct2", "acme.account.update acct2")
	})

	_, err = db.GetAccount(ctx, "nope")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	_, err = db.AccountByThumbprint(ctx, "prov2", "thumb2")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
}

func testACMEExternalAccountKeys(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("pr1", "robot"), tev()))
	log := newAuditLog(t, db)

	k1 := newEABKey("eab1", "prov1", "pr1")
	k2 := newEABKey("eab2", "prov2", "gone") // a principal since deleted: no name
	k2.CreatedAt = base().Add(time.Second)
	k3 := newEABKey("eab0", "prov1", "pr1")
	k3.CreatedAt = base().Add(time.Second)
	k3.AccountID, k3.BoundAt = "acct0", base().Add(time.Minute)
	for _, k := range []*acme.EABKey{k1, k2, k3} {
		must(t, db.CreateEABKey(ctx, k, ev("acme.eab.create", k.ID)))
	}
	err := db.CreateEABKey(ctx, newEABKey("eab1", "prov2", "pr1"), ev("acme.eab.create", "eab1"))
	wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	log.expect(t, "acme.eab.create eab1", "acme.eab.create eab2", "acme.eab.create eab0")

	check := func(got, want *acme.EABKey, principal string) {
		t.Helper()
		checkTime(t, "EAB CreatedAt", got.CreatedAt, want.CreatedAt)
		if want.BoundAt.IsZero() {
			if !got.BoundAt.IsZero() {
				t.Errorf("EAB %s BoundAt = %v, want zero", want.ID, got.BoundAt)
			}
		} else {
			checkTime(t, "EAB BoundAt", got.BoundAt, want.BoundAt)
		}
		g, w := *got, *want
		w.PrincipalName = principal
		g.CreatedAt, g.BoundAt, w.CreatedAt, w.BoundAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("EAB key = %+v\nwant %+v", g, w)
		}
	}
	got, err := db.GetEABKey(ctx, "eab1")
	must(t, err)
	check(got, k1, "robot")
	_, err = db.GetEABKey(ctx, "nope")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)

	list, err := db.ListEABKeys(ctx, "prov1")
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("ListEABKeys(prov1) = %d keys, want 2", len(list))
	}
	check(list[0], k1, "robot")
	check(list[1], k3, "robot")
	list, err = db.ListEABKeys(ctx, "")
	must(t, err)
	var ids []string
	for _, k := range list {
		ids = append(ids, k.ID)
	}
	if want := []string{"eab1", "eab0", "eab2"}; !slices.Equal(ids, want) {
		t.Errorf("ListEABKeys(\"\") = %q, want %q", ids, want)
	}
	check(list[2], k2, "")
	list, err = db.ListEABKeys(ctx, "prov3")
	must(t, err)
	if list == nil || len(list) != 0 {
		t.Errorf("ListEABKeys(prov3) = %#v, want empty", list)
	}
}

// newAuthz returns a pending authorization with three challenges.
func newAuthz(id, account, value string) *acme.Authorization {
	a := &acme.Authorization{
		ID: id, AccountID: account, ProvisionerID: "prov1",
		Identifier: acme.Identifier{Type: acme.IdentifierDNS, Value: value},
		Status:     acme.StatusPending,
		Expires:    base().Add(7 * 24 * time.Hour),
		CreatedAt:  base(),
	}
	for _, typ := range []string{acme.ChallengeTLSALPN01, acme.ChallengeHTTP01, acme.ChallengeDNS01} {
		a.Challenges = append(a.Challenges, acme.Challenge{ID: id + "-" + typ, AuthzID: id, Type: typ,
			Token: "token-" + id + "-" + typ, Status: acme.StatusPending})
	}
	return a
}

func newOrder(id, account string, authzs ...*acme.Authorization) *acme.Order {
	o := &acme.Order{
		ID: id, AccountID: account, ProvisionerID: "prov1", Status: acme.StatusPending,
		Expires: base().Add(24 * time.Hour), CreatedAt: base(), UpdatedAt: base(),
		Identifiers: []acme.Identifier{}, AuthzIDs: []string{},
	}
	for _, a := range authzs {
		o.Identifiers = append(o.Identifiers, a.Identifier)
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
	}
	return o
}

func checkOrder(t *testing.T, got, want *acme.Order) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"NotBefore", got.NotBefore, want.NotBefore}, {"NotAfter", got.NotAfter, want.NotAfter},
		{"Expires", got.Expires, want.Expires}, {"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
	} {
		if f.want.IsZero() {
			if !f.got.IsZero() {
				t.Errorf("order %s %s = %v, want zero", want.ID, f.name, f.got)
			}
			continue
		}
		checkTime(t, "order "+f.name, f.got, f.want)
	}
	g, w := *got, *want
	g.NotBefore, g.NotAfter, g.Expires, g.CreatedAt, g.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	w.NotBefore, w.NotAfter, w.Expires, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("order = %+v\nwant %+v", g, w)
	}
}

func checkAuthz(t *testing.T, got, want *acme.Authorization) {
	t.Helper()
	checkTime(t, "authz Expires", got.Expires, want.Expires)
	checkTime(t, "authz CreatedAt", got.CreatedAt, want.CreatedAt)
	g, w := *got, *want
	g.Expires, g.CreatedAt, w.Expires, w.CreatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	g.Challenges, w.Challenges = slices.Clone(g.Challenges), slices.Clone(w.Challenges)
	if w.Challenges == nil {
		w.Challenges = []acme.Challenge{}
	}
	if len(g.Challenges) == len(w.Challenges) {
		for i := range w.Challenges {
			if w.Challenges[i].Validated.IsZero() {
				if !g.Challenges[i].Validated.IsZero() {
					t.Errorf("challenge %s Validated = %v, want zero", w.Challenges[i].ID, g.Challenges[i].Validated)
				}
			} else {
				checkTime(t, "challenge Validated", g.Challenges[i].Validated, w.Challenges[i].Validated)
			}
			g.Challenges[i].Validated, w.Challenges[i].Validated = time.Time{}, time.Time{}
		}
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("authorization = %+v\nwant %+v", g, w)
	}
}

// problem returns a compound problem with an identifier and nested
// subproblems, to check that every level round-trips with its type.
func problem() *acme.Problem {
	return &acme.Problem{
		Type: acme.ErrCompound, Detail: "several things failed",
		Subproblems: []*acme.Problem{
			{Type: acme.ErrDNS, Detail: "no TXT record", Identifier: &acme.Identifier{Type: acme.IdentifierDNS, Value: "a.example.com"}},
			{Type: acme.ErrCAA, Detail: "CAA forbids", Subproblems: []*acme.Problem{{Type: acme.ErrMalformed, Detail: "deeper"}}},
		},
	}
}

func testACMEOrders(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	log := newAuditLog(t, db)

	az1, az2 := newAuthz("az1", "acct1", "a.example.com"), newAuthz("az2", "acct1", "b.example.com")
	az2.Wildcard = true
	o1 := newOrder("ord1", "acct1", az1, az2)
	o1.NotBefore, o1.NotAfter = base().Add(time.Hour), base().Add(48*time.Hour)
	o1.Replaces = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
	must(t, db.CreateOrder(ctx, o1, []*acme.Authorization{az1, az2}))
	// An order that reuses az1 and creates nothing else.
	o2 := newOrder("ord2", "acct1", az1)
	o2.Status, o2.Error = acme.StatusInvalid, problem()
	o2.Replaces = "other-cert-id"
	must(t, db.CreateOrder(ctx, o2, nil))
	log.expect(t) // orders are not audited

	got, err := db.GetOrder(ctx, "ord1")
	must(t, err)
	checkOrder(t, got, o1)
	got, err = db.GetOrder(ctx, "ord2")
	must(t, err)
	checkOrder(t, got, o2)
	if p := got.Error; p == nil || p.Subproblems[1].Subproblems[0].Type != acme.ErrMalformed {
		t.Errorf("nested problem lost its type: %+v", p)
	}
	_, err = db.GetOrder(ctx, "nope")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)

	// Duplicates of the order ID or of an authorization ID store nothing.
	err = db.CreateOrder(ctx, newOrder("ord1", "acct1"), nil)
	wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	az3 := newAuthz("az3", "acct1", "c.example.com")
	err = db.CreateOrder(ctx, newOrder("ord3", "acct1", az3, az1), []*acme.Authorization{az3, az1})
	wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	_, err = db.GetOrder(ctx, "ord3")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	_, err = db.GetAuthorizations(ctx, "az3")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)

	t.Run("update", func(t *testing.T) {
		up := *o1
		up.Status, up.UpdatedAt = acme.StatusReady, base().Add(time.Minute)
		up.Identifiers = nil // not written
		must(t, db.UpdateOrder(ctx, &up, acme.StatusPending))
		// A second writer that read pending loses.
		err := db.UpdateOrder(ctx, &up, acme.StatusPending)
		wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
		err = db.UpdateOrder(ctx, newOrder("nope", "acct1"), acme.StatusPending)
		wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)

		up.Status, up.CertSerial, up.Error = acme.StatusValid, "0a1b2c", &acme.Problem{Type: acme.ErrServerInternal, Detail: "kept"}
		up.UpdatedAt = base().Add(2 * time.Minute)
		must(t, db.UpdateOrder(ctx, &up, acme.StatusReady))
		want := *o1
		want.Status, want.CertSerial, want.Error, want.UpdatedAt = up.Status, up.CertSerial, up.Error, up.UpdatedAt
		got, err := db.GetOrder(ctx, "ord1")
		must(t, err)
		checkOrder(t, got, &want)

		got, err = db.OrderByCertificate(ctx, "0a1b2c")
		must(t, err)
		checkOrder(t, got, &want)
		_, err = db.OrderByCertificate(ctx, "ffff")
		wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	})

	t.Run("replacing", func(t *testing.T) {
		got, err := db.OrderReplacing(ctx, o1.Replaces)
		must(t, err)
		if got.ID != "ord1" {
			t.Errorf("OrderReplacing = %s, want ord1", got.ID)
		}
		// ord2 replaces other-cert-id but is invalid.
		_, err = db.OrderReplacing(ctx, "other-cert-id")
		wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
		_, err = db.OrderReplacing(ctx, "unknown")
		wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	})

	t.Run("authorizations", func(t *testing.T) {
		got, err := db.GetAuthorizations(ctx, "az2", "az1")
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("GetAuthorizations = %d, want 2", len(got))
		}
		checkAuthz(t, got[0], az2)
		checkAuthz(t, got[1], az1)
		got, err = db.GetAuthorizations(ctx, "az1", "az1")
		must(t, err)
		if len(got) != 2 || got[0].ID != "az1" || got[1].ID != "az1" {
			t.Errorf("GetAuthorizations(az1, az1) = %v", got)
		}
		got, err = db.GetAuthorizations(ctx)
		must(t, err)
		if len(got) != 0 {
			t.Errorf("GetAuthorizations() = %v, want none", got)
		}
		_, err = db.GetAuthorizations(ctx, "az1", "nope", "az2")
		wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	})
}

func testACMEListOrderIDs(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	// Creation times out of ID order, with ties broken by ID.
	for _, o := range []struct {
		id, account string
		at          time.Duration
	}{
		{"o5", "acct1", 0}, {"o3", "acct1", time.Second}, {"o4", "acct1", time.Second},
		{"o1", "acct1", 2 * time.Second}, {"o2", "acct1", 3 * time.Second},
		{"o0", "acct2", time.Second},
	} {
		ord := newOrder(o.id, o.account)
		ord.CreatedAt = base().Add(o.at)
		must(t, db.CreateOrder(ctx, ord, nil))
	}
	want := []string{"o5", "o3", "o4", "o1", "o2"}
	var got []string
	after := ""
	for range 10 {
		page, err := db.ListOrderIDs(ctx, "acct1", after, 2)
		must(t, err)
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged ListOrderIDs = %q, want %q", got, want)
	}
	all, err := db.ListOrderIDs(ctx, "acct1", "", 0)
	must(t, err)
	if !slices.Equal(all, want) {
		t.Errorf("ListOrderIDs(limit 0) = %q, want %q", all, want)
	}
	for _, tc := range []struct{ account, after string }{
		{"acct3", ""},   // no orders
		{"acct1", "o0"}, // another account's order
		{"acct1", "o9"}, // no such order
		{"acct1", "o2"}, // the last one
		{"acct2", "o0"},
	} {
		ids, err := db.ListOrderIDs(ctx, tc.account, tc.after, 10)
		must(t, err)
		if ids == nil || len(ids) != 0 {
			t.Errorf("ListOrderIDs(%s, after %q) = %#v, want empty", tc.account, tc.after, ids)
		}
	}
}

func testACMEAuthorizations(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	az := newAuthz("az1", "acct1", "a.example.com")
	must(t, db.CreateOrder(ctx, newOrder("ord1", "acct1", az), []*acme.Authorization{az}))

	// A challenge fails, then validation succeeds on another.
	c := az.Challenges[1]
	c.Status = acme.StatusProcessing
	must(t, db.UpdateChallenge(ctx, &c, acme.StatusPending))
	err := db.UpdateChallenge(ctx, &c, acme.StatusPending)
	wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	missing := acme.Challenge{ID: "nope", Status: acme.StatusValid}
	err = db.UpdateChallenge(ctx, &missing, acme.StatusPending)
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	c.Status, c.Validated, c.Error = acme.StatusInvalid, base().Add(time.Minute), problem()
	must(t, db.UpdateChallenge(ctx, &c, acme.StatusProcessing))
	want := *az
	want.Challenges = slices.Clone(az.Challenges)
	want.Challenges[1] = c
	got, err := db.GetAuthorizations(ctx, "az1")
	must(t, err)
	checkAuthz(t, got[0], &want)

	up := want
	up.Challenges = slices.Clone(want.Challenges)
	up.Status = acme.StatusValid
	up.Challenges[0].Status, up.Challenges[0].Validated = acme.StatusValid, base().Add(2*time.Minute)
	up.Challenges[1].Error = nil // cleared
	log := newAuditLog(t, db)
	must(t, db.UpdateAuthorization(ctx, &up, acme.StatusPending, ev("acme.challenge.validate", "dns:a.example.com")))
	got, err = db.GetAuthorizations(ctx, "az1")
	must(t, err)
	checkAuthz(t, got[0], &up)
	log.expect(t, "acme.challenge.validate dns:a.example.com")

	// A refused update appends nothing either.
	stale := up
	stale.Status = acme.StatusInvalid
	err = db.UpdateAuthorization(ctx, &stale, acme.StatusPending, ev("acme.challenge.validate", "dns:a.example.com"))
	wantACMEErr(t, err, store.ErrConflict, acme.ErrConflict)
	log.expect(t)
	err = db.UpdateAuthorization(ctx, newAuthz("nope", "acct1", "x.example.com"), acme.StatusPending)
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	// A challenge that is not the authorization's fails the whole update.
	bad := up
	bad.Status = acme.StatusDeactivated
	bad.Challenges = []acme.Challenge{{ID: "nope", Status: acme.StatusValid}}
	err = db.UpdateAuthorization(ctx, &bad, acme.StatusValid)
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
	got, err = db.GetAuthorizations(ctx, "az1")
	must(t, err)
	checkAuthz(t, got[0], &up)
}

func testACMEReusableAuthorization(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	now := base().Add(24 * time.Hour)
	ident := acme.Identifier{Type: acme.IdentifierDNS, Value: "a.example.com"}
	var azs []*acme.Authorization
	for _, tc := range []struct {
		id, account, value, status string
		wildcard                   bool
		expires                    time.Duration // after now
	}{
		{"valid-soon", "acct1", ident.Value, acme.StatusValid, false, time.Hour},
		{"valid-late", "acct1", ident.Value, acme.StatusValid, false, 48 * time.Hour}, // the one
		{"expired", "acct1", ident.Value, acme.StatusValid, false, 0},                 // expires at now: not after
		{"pending", "acct1", ident.Value, acme.StatusPending, false, 72 * time.Hour},
		{"invalid", "acct1", ident.Value, acme.StatusInvalid, false, 72 * time.Hour},
		{"wildcard", "acct1", ident.Value, acme.StatusValid, true, 24 * time.Hour},
		{"other-account", "acct2", ident.Value, acme.StatusValid, false, 96 * time.Hour},
		{"other-name", "acct1", "b.example.com", acme.StatusValid, false, 96 * time.Hour},
	} {
		a := newAuthz(tc.id, tc.account, tc.value)
		a.Status, a.Wildcard, a.Expires = tc.status, tc.wildcard, now.Add(tc.expires)
		azs = append(azs, a)
	}
	must(t, db.CreateOrder(ctx, newOrder("ord1", "acct1"), azs))

	for _, tc := range []struct {
		account  string
		ident    acme.Identifier
		wildcard bool
		at       time.Time
		want     string // "" for none
	}{
		{"acct1", ident, false, now, "valid-late"},
		{"acct1", ident, false, now.Add(47 * time.Hour), "valid-late"},
		{"acct1", ident, false, now.Add(48 * time.Hour), ""},
		{"acct1", ident, true, now, "wildcard"},
		{"acct2", ident, false, now, "other-account"},
		{"acct1", acme.Identifier{Type: acme.IdentifierIP, Value: ident.Value}, false, now, ""},
		{"acct3", ident, false, now, ""},
	} {
		got, err := db.ReusableAuthorization(ctx, tc.account, tc.ident, tc.wildcard, tc.at)
		if tc.want == "" {
			wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
			continue
		}
		must(t, err)
		for _, a := range azs {
			if a.ID == tc.want {
				checkAuthz(t, got, a)
			}
		}
	}
}

func testACMERateLimitCounts(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	t0 := base()

	for i, at := range []time.Duration{0, time.Minute, 2 * time.Minute} {
		a := newAccount(fmt.Sprintf("acct%d", i), "prov1", fmt.Sprintf("thumb%d", i))
		a.CreatedAt = t0.Add(at)
		must(t, db.CreateAccount(ctx, a, tev()))
	}
	other := newAccount("acctX", "prov1", "thumbX")
	other.CreatedIP = "192.0.2.99"
	must(t, db.CreateAccount(ctx, other, tev()))
	other = newAccount("acctY", "prov2", "thumbY")
	must(t, db.CreateAccount(ctx, other, tev()))
	for _, tc := range []struct {
		prov, ip string
		since    time.Time
		want     int
	}{
		{"prov1", "192.0.2.1", t0, 3},
		{"prov1", "192.0.2.1", t0.Add(time.Minute), 2}, // at or after
		{"prov1", "192.0.2.1", t0.Add(time.Minute + time.Microsecond), 1},
		{"prov1", "192.0.2.99", t0, 1},
		{"prov2", "192.0.2.1", t0, 1},
		{"prov3", "192.0.2.1", t0, 0},
	} {
		n, err := db.CountAccountsSince(ctx, tc.prov, tc.ip, tc.since)
		must(t, err)
		if n != tc.want {
			t.Errorf("CountAccountsSince(%s, %s, %v) = %d, want %d", tc.prov, tc.ip, tc.since, n, tc.want)
		}
	}

	for i, at := range []time.Duration{0, time.Hour, 2 * time.Hour} {
		o := newOrder(fmt.Sprintf("ord%d", i), "acct0")
		o.CreatedAt = t0.Add(at)
		must(t, db.CreateOrder(ctx, o, nil))
	}
	must(t, db.CreateOrder(ctx, newOrder("ordX", "acct1"), nil))
	for _, tc := range []struct {
		account string
		since   time.Time
		want    int
	}{
		{"acct0", t0, 3}, {"acct0", t0.Add(time.Hour), 2}, {"acct0", t0.Add(3 * time.Hour), 0}, {"acct1", t0, 1}, {"acct9", t0, 0},
	} {
		n, err := db.CountOrdersSince(ctx, tc.account, tc.since)
		must(t, err)
		if n != tc.want {
			t.Errorf("CountOrdersSince(%s, %v) = %d, want %d", tc.account, tc.since, n, tc.want)
		}
	}

	// Pending authorizations: p1 and p2 expire after now, p3 at now; v1 is valid.
	now := t0.Add(time.Hour)
	var azs []*acme.Authorization
	for _, a := range []struct {
		id, account, status string
		expires             time.Time
	}{
		{"p1", "acct0", acme.StatusPending, now.Add(time.Hour)},
		{"p2", "acct0", acme.StatusPending, now.Add(time.Microsecond)},
		{"p3", "acct0", acme.StatusPending, now},
		{"v1", "acct0", acme.StatusValid, now.Add(time.Hour)},
		{"q1", "acct1", acme.StatusPending, now.Add(time.Hour)},
	} {
		az := newAuthz(a.id, a.account, a.id+".example.com")
		az.Status, az.Expires = a.status, a.expires
		azs = append(azs, az)
	}
	must(t, db.CreateOrder(ctx, newOrder("ordA", "acct0"), azs))
	for account, want := range map[string]int{"acct0": 2, "acct1": 1, "acct9": 0} {
		n, err := db.CountPendingAuthorizations(ctx, account, now)
		must(t, err)
		if n != want {
			t.Errorf("CountPendingAuthorizations(%s) = %d, want %d", account, n, want)
		}
	}

	// Failed validations: challenges of the account's authorizations
	// that became invalid at or after since.
	fail := func(a *acme.Authorization, i int, at time.Time, status string) {
		t.Helper()
		c := a.Challenges[i]
		c.Status, c.Validated = status, at
		must(t, db.UpdateChallenge(ctx, &c, acme.StatusPending))
	}
	fail(azs[0], 0, now, acme.StatusInvalid)
	fail(azs[0], 1, now.Add(time.Minute), acme.StatusInvalid)
	fail(azs[1], 0, now.Add(-time.Minute), acme.StatusInvalid) // before since
	fail(azs[1], 1, now.Add(time.Minute), acme.StatusValid)    // succeeded
	fail(azs[4], 0, now.Add(time.Minute), acme.StatusInvalid)  // another account
	for account, want := range map[string]int{"acct0": 2, "acct1": 1, "acct9": 0} {
		n, err := db.CountFailedValidationsSince(ctx, account, now)
		must(t, err)
		if n != want {
			t.Errorf("CountFailedValidationsSince(%s) = %d, want %d", account, n, want)
		}
	}
}

func testACMEMarkRenewNow(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	// Fixture at f.now: 01-04 and 06 valid, 05 expired, 07 and 08 revoked.
	for _, tc := range []struct {
		name string
		sel  acme.RenewSelector
		want []string
	}{
		{"CA", acme.RenewSelector{Selector: inventory.Selector{CAID: "caA"}}, []string{"01", "02", "06"}},
		{"profile", acme.RenewSelector{Selector: inventory.Selector{Profile: "client"}}, []string{"02"}},
		{"SAN", acme.RenewSelector{Selector: inventory.Selector{SAN: "WWW.Example.COM"}}, []string{"01", "03", "06"}},
		{"SAN of revoked and expired only", acme.RenewSelector{Selector: inventory.Selector{SAN: "old.example.com"}}, []string{}},
		{"SPKI", acme.RenewSelector{Selector: inventory.Selector{SPKISHA256: "keyB"}}, []string{"02", "04"}},
		{"serial", acme.RenewSelector{Serial: "04"}, []string{"04"}},
		{"serial of an expired certificate", acme.RenewSelector{Serial: "05"}, []string{}},
		{"serial of a revoked certificate", acme.RenewSelector{Serial: "07"}, []string{}},
		{"CA and SAN", acme.RenewSelector{Selector: inventory.Selector{CAID: "caB", SAN: "api.example.com"}}, []string{"03", "04"}},
		{"CA and serial", acme.RenewSelector{Selector: inventory.Selector{CAID: "caB"}, Serial: "01"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t)
			f := insertMatchFixture(t, db)
			sel := tc.sel
			if sel.SPKISHA256 == "keyB" {
				sel.SPKISHA256 = f.keyB
			}
			log := newAuditLog(t, db)
			e := ev("acme.renew_now", "selector")
			e.Details = json.RawMessage(`{"b": 1, "a": "kept as written"}`)
			// 06 expires at f.now exactly: still valid.
			at := f.now
			got, err := db.MarkRenewNow(ctx, sel, at, e)
			must(t, err)
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("MarkRenewNow = %#v, want %q", got, tc.want)
			}
			evs := log.read(t)
			if len(evs) != 1 || evs[0].Action != "acme.renew_now" || !bytes.Equal(evs[0].Details, e.Details) {
				t.Errorf("audit events = %+v, want one with details %s", evs, e.Details)
			}
			// Only the matched certificates carry the mark.
			all, err := db.ListCertificates(ctx, inventory.Filter{})
			must(t, err)
			for _, c := range all {
				if slices.Contains(tc.want, c.Serial) {
					checkTime(t, "RenewNowAt of "+c.Serial, c.RenewNowAt, at)
				} else if !c.RenewNowAt.IsZero() {
					t.Errorf("certificate %s marked at %v", c.Serial, c.RenewNowAt)
				}
			}
		})
	}

	t.Run("empty selector", func(t *testing.T) {
		db := open(t)
		insertMatchFixture(t, db)
		log := newAuditLog(t, db)
		if _, err := db.MarkRenewNow(ctx, acme.RenewSelector{}, base(), ev("acme.renew_now", "")); err == nil ||
			errors.Is(err, store.ErrNotFound) || errors.Is(err, acme.ErrNotFound) {
			t.Errorf("MarkRenewNow(empty) = %v, want a plain error", err)
		}
		log.expect(t)
	})

	t.Run("again", func(t *testing.T) {
		db := open(t)
		f := insertMatchFixture(t, db)
		sel := acme.RenewSelector{Serial: "01"}
		_, err := db.MarkRenewNow(ctx, sel, f.now, ev("acme.renew_now", "01"))
		must(t, err)
		later := f.now.Add(time.Hour)
		_, err = db.MarkRenewNow(ctx, sel, later, ev("acme.renew_now", "01"))
		must(t, err)
		c, err := db.GetCertificate(ctx, "01")
		must(t, err)
		checkTime(t, "RenewNowAt", c.RenewNowAt, later)
	})
}

// testCertificateRenewNowAt checks that RenewNowAt round-trips through
// every way a certificate is written and read.
func testCertificateRenewNowAt(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	marked := newCert("0a", "ca1")
	marked.RenewNowAt = base().Add(time.Hour)
	plain := newCert("0b", "ca1")
	for _, c := range []*inventory.Certificate{marked, plain} {
		must(t, db.InsertCertificate(ctx, c, tev()))
		got, err := db.GetCertificate(ctx, c.Serial)
		must(t, err)
		checkRenewNow(t, got, c)
	}
	list, err := db.ListCertificates(ctx, inventory.Filter{})
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("ListCertificates = %d, want 2", len(list))
	}
	checkRenewNow(t, list[0], marked)
	checkRenewNow(t, list[1], plain)

	// The report of revocations reads the certificate too.
	for _, s := range []string{"0a", "0b"} {
		_, _, err := db.RevokeCertificate(ctx, newRev(s), tev())
		must(t, err)
	}
	var seen []string
	must(t, db.EachRevokedBetween(ctx, base(), time.Time{}, func(r *inventory.Revocation, c *inventory.Certificate) error {
		if c == nil {
			return fmt.Errorf("revocation %s without its certificate", r.Serial)
		}
		want := plain
		if c.Serial == marked.Serial {
			want = marked
		}
		checkRenewNow(t, c, want)
		seen = append(seen, c.Serial)
		return nil
	}))
	if len(seen) != 2 {
		t.Errorf("EachRevokedBetween saw %q", seen)
	}
}

func checkRenewNow(t *testing.T, got, want *inventory.Certificate) {
	t.Helper()
	if want.RenewNowAt.IsZero() {
		if !got.RenewNowAt.IsZero() {
			t.Errorf("certificate %s RenewNowAt = %v, want zero", want.Serial, got.RenewNowAt)
		}
		return
	}
	checkTime(t, "RenewNowAt of "+want.Serial, got.RenewNowAt, want.RenewNowAt)
}

// testCertificateDER checks the download read: the issuing CA and the DER
// by serial, ErrNotFound for an unknown serial.
func testCertificateDER(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	c := newCert("0c", "ca1")
	must(t, db.InsertCertificate(ctx, c, tev()))
	caID, der, err := db.CertificateDER(ctx, "0c")
	must(t, err)
	if caID != "ca1" || !bytes.Equal(der, c.DER) {
		t.Errorf("CertificateDER = %q, %x; want ca1, %x", caID, der, c.DER)
	}
	_, _, err = db.CertificateDER(ctx, "0d")
	wantACMEErr(t, err, store.ErrNotFound, acme.ErrNotFound)
}
