package acme_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
)

func challengeTypes(a *acme.Authorization) []string {
	var out []string
	for _, c := range a.Challenges {
		out = append(out, c.Type)
	}
	return out
}

func TestNewOrderNormalizesIdentifiers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "norm"})
	acct := e.account(t, e.svc, prov)

	o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: []acme.Identifier{
		{Type: "dns", Value: "WWW.Example.TEST."},
		{Type: "dns", Value: "www.example.test"},
		{Type: "ip", Value: "2001:DB8:0:0:0:0:0:1"},
		{Type: "ip", Value: "2001:db8::1"},
		{Type: "ip", Value: "::ffff:192.0.2.7"},
		{Type: "dns", Value: "Api.Example.Test"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []acme.Identifier{
		{Type: "dns", Value: "www.example.test"},
		{Type: "ip", Value: "2001:db8::1"},
		{Type: "ip", Value: "192.0.2.7"},
		{Type: "dns", Value: "api.example.test"},
	}
	if !slices.Equal(o.Identifiers, want) {
		t.Fatalf("identifiers %v, want %v", o.Identifiers, want)
	}
	if o.Status != acme.StatusPending || o.AccountID != acct.ID || o.ProvisionerID != prov.ID || len(o.AuthzIDs) != len(want) {
		t.Fatalf("order %+v", o)
	}
	if !o.Expires.After(start) || o.Expires.After(start.Add(7*day)) {
		t.Errorf("order expires %s", o.Expires)
	}
	for i, a := range authzs(t, e.svc, acct, o) {
		if a.Identifier != want[i] || a.Wildcard || a.Status != acme.StatusPending {
			t.Errorf("authorization %d: %+v", i, a)
		}
		wantTypes := acme.ChallengeTypes()
		if a.Identifier.Type == acme.IdentifierIP {
			wantTypes = []string{acme.ChallengeHTTP01, acme.ChallengeTLSALPN01}
		}
		if got := challengeTypes(a); !slices.Equal(got, wantTypes) {
			t.Errorf("%s offers %v, want %v", a.Identifier.Value, got, wantTypes)
		}
		for _, c := range a.Challenges {
			if len(c.Token) < 43 || c.Status != acme.StatusPending {
				t.Errorf("challenge %+v", c)
			}
		}
	}
	stored, err := e.svc.Order(ctx, acct, o.ID)
	if err != nil || !slices.Equal(stored.Identifiers, want) || !slices.Equal(stored.AuthzIDs, o.AuthzIDs) {
		t.Errorf("stored order %+v, %v", stored, err)
	}
}

func TestNewOrderRejectsIdentifiers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "reject"})
	acct := e.account(t, e.svc, prov)

	many := make([]acme.Identifier, 101)
	for i := range many {
		many[i] = acme.Identifier{Type: "dns", Value: fmt.Sprintf("h%d.example.test", i)}
	}
	for _, tc := range []struct {
		name string
		req  acme.OrderRequest
		want acme.ErrorType
	}{
		{"no identifiers", acme.OrderRequest{}, acme.ErrMalformed},
		{"too many", acme.OrderRequest{Identifiers: many}, acme.ErrRejectedIdentifier},
		{"unsupported type", acme.OrderRequest{Identifiers: []acme.Identifier{{Type: "email", Value: "a@example.test"}}}, acme.ErrUnsupportedIdentifier},
		{"empty type", acme.OrderRequest{Identifiers: []acme.Identifier{{Value: "a.example.test"}}}, acme.ErrUnsupportedIdentifier},
		{"IP as dns", acme.OrderRequest{Identifiers: dnsIDs("192.0.2.1")}, acme.ErrMalformed},
		{"bad IP", acme.OrderRequest{Identifiers: []acme.Identifier{{Type: "ip", Value: "192.0.2.300"}}}, acme.ErrMalformed},
		{"IP with zone", acme.OrderRequest{Identifiers: []acme.Identifier{{Type: "ip", Value: "fe80::1%eth0"}}}, acme.ErrMalformed},
		{"underscore", acme.OrderRequest{Identifiers: dnsIDs("bad_name.example.test")}, acme.ErrRejectedIdentifier},
		{"empty label", acme.OrderRequest{Identifiers: dnsIDs("a..example.test")}, acme.ErrRejectedIdentifier},
		{"empty name", acme.OrderRequest{Identifiers: dnsIDs("")}, acme.ErrRejectedIdentifier},
		{"hyphen", acme.OrderRequest{Identifiers: dnsIDs("-a.example.test")}, acme.ErrRejectedIdentifier},
		{"unicode", acme.OrderRequest{Identifiers: dnsIDs("bücher.example.test")}, acme.ErrRejectedIdentifier},
		{"inner wildcard", acme.OrderRequest{Identifiers: dnsIDs("a.*.example.test")}, acme.ErrRejectedIdentifier},
		{"notBefore", acme.OrderRequest{Identifiers: dnsIDs("a.example.test"), NotBefore: "2026-03-02T00:00:00Z"}, acme.ErrMalformed},
		{"notAfter", acme.OrderRequest{Identifiers: dnsIDs("a.example.test"), NotAfter: "2026-04-02T00:00:00Z"}, acme.ErrMalformed},
		{"wildcard on a profile without wildcards", acme.OrderRequest{Identifiers: dnsIDs("*.example.test")}, acme.ErrRejectedIdentifier},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.NewOrder(ctx, prov, acct, tc.req)
			wantProblem(t, err, tc.want)
		})
	}

	t.Run("compound", func(t *testing.T) {
		_, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: []acme.Identifier{
			{Type: "dns", Value: "ok.example.test"},
			{Type: "email", Value: "a@example.test"},
			{Type: "dns", Value: "bad_name.example.test"},
		}})
		p := wantProblem(t, err, acme.ErrCompound)
		if len(p.Subproblems) != 2 {
			t.Fatalf("subproblems %v", p.Subproblems)
		}
		if sp := p.Subproblems[0]; sp.Type != acme.ErrUnsupportedIdentifier || sp.Identifier == nil || sp.Identifier.Value != "a@example.test" {
			t.Errorf("first subproblem %+v", sp)
		}
		if sp := p.Subproblems[1]; sp.Type != acme.ErrRejectedIdentifier || sp.Identifier == nil || sp.Identifier.Value != "bad_name.example.test" {
			t.Errorf("second subproblem %+v", sp)
		}
	})

	ids, err := e.svc.OrderIDs(ctx, acct, "", 100)
	if err != nil || len(ids) != 0 {
		t.Errorf("refused orders were stored: %v, %v", ids, err)
	}
}

func TestNewOrderWildcard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.customProfile(t, "wild_server", func(p *profile.Profile) { p.Names.DNS.AllowWildcard = true })
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "wild", Profile: "wild_server"})
	acct := e.account(t, e.svc, prov)

	o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("*.Wild.Example.TEST", "wild.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	if want := dnsIDs("*.wild.example.test", "wild.example.test"); !slices.Equal(o.Identifiers, want) {
		t.Errorf("identifiers %v, want %v", o.Identifiers, want)
	}
	as := authzs(t, e.svc, acct, o)
	if len(as) != 2 || as[0].ID == as[1].ID {
		t.Fatalf("authorizations %v", o.AuthzIDs)
	}
	if w := as[0]; !w.Wildcard || w.Identifier.Value != "wild.example.test" || !slices.Equal(challengeTypes(w), []string{acme.ChallengeDNS01}) {
		t.Errorf("wildcard authorization: wildcard %v, identifier %v, challenges %v", w.Wildcard, w.Identifier, challengeTypes(w))
	}
	if b := as[1]; b.Wildcard || len(b.Challenges) != 3 {
		t.Errorf("base name authorization: wildcard %v, challenges %v", b.Wildcard, challengeTypes(b))
	}

	noDNS := e.provisioner(t, acme.ProvisionerSpec{Name: "wild-nodns", Profile: "wild_server",
		Challenges: []string{acme.ChallengeHTTP01, acme.ChallengeTLSALPN01}})
	acct2 := e.account(t, e.svc, noDNS)
	_, err = e.svc.NewOrder(ctx, noDNS, acct2, acme.OrderRequest{Identifiers: dnsIDs("*.wild.example.test")})
	p := wantProblem(t, err, acme.ErrRejectedIdentifier)
	if p.Identifier == nil || p.Identifier.Value != "*.wild.example.test" {
		t.Errorf("problem identifier %v", p.Identifier)
	}
	// The base name needs no dns-01.
	if _, err := e.svc.NewOrder(ctx, noDNS, acct2, acme.OrderRequest{Identifiers: dnsIDs("wild.example.test")}); err != nil {
		t.Errorf("base name: %v", err)
	}

	// An IP identifier cannot be proven by dns-01 alone.
	dnsOnly := e.provisioner(t, acme.ProvisionerSpec{Name: "dns01-only", Challenges: []string{acme.ChallengeDNS01}})
	acct3 := e.account(t, e.svc, dnsOnly)
	_, err = e.svc.NewOrder(ctx, dnsOnly, acct3, acme.OrderRequest{Identifiers: []acme.Identifier{{Type: "ip", Value: "192.0.2.1"}}})
	wantProblem(t, err, acme.ErrRejectedIdentifier)
}

func TestNewOrderAllowNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "allow", AllowNames: []string{"*.allowed.test", "10.0.0.0/8"}})
	acct := e.account(t, e.svc, prov)

	_, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: []acme.Identifier{
		{Type: "dns", Value: "a.allowed.test"},
		{Type: "dns", Value: "bad1.test"},
		{Type: "ip", Value: "192.0.2.1"},
	}})
	p := wantProblem(t, err, acme.ErrRejectedIdentifier)
	if len(p.Subproblems) != 2 {
		t.Fatalf("subproblems %+v, want 2", p.Subproblems)
	}
	for i, want := range []string{"bad1.test", "192.0.2.1"} {
		sp := p.Subproblems[i]
		if sp.Type != acme.ErrRejectedIdentifier || sp.Identifier == nil || sp.Identifier.Value != want {
			t.Errorf("subproblem %d: %+v, want one for %s", i, sp, want)
		}
	}
	_, err = e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("allowed.test")})
	wantProblem(t, err, acme.ErrRejectedIdentifier)
	if _, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: []acme.Identifier{
		{Type: "dns", Value: "A.B.Allowed.Test"}, {Type: "ip", Value: "10.1.2.3"},
	}}); err != nil {
		t.Errorf("allowed names: %v", err)
	}
}

func TestNewOrderEABPrincipalScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "scoped", RequireEAB: true})
	pid := e.eabPrincipal(t, "scoped-bot", authz.Scope{Names: []string{"*.ok.test"}})
	k, _, err := e.svc.CreateEABKey(ctx, admin, "scoped", pid, "")
	if err != nil {
		t.Fatal(err)
	}
	req := newAccountReq(t)
	req.EABKeyID = k.ID
	acct, _, err := e.svc.NewAccount(ctx, prov, req)
	if err != nil {
		t.Fatal(err)
	}

	_, err = e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("bad.test")})
	p := wantProblem(t, err, acme.ErrRejectedIdentifier)
	if p.Identifier == nil || p.Identifier.Value != "bad.test" {
		t.Errorf("problem identifier %v", p.Identifier)
	}
	_, err = e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("a.ok.test", "bad.test", "worse.test")})
	if p := wantProblem(t, err, acme.ErrRejectedIdentifier); len(p.Subproblems) != 2 {
		t.Errorf("subproblems %+v, want 2", p.Subproblems)
	}
	if _, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("a.ok.test")}); err != nil {
		t.Fatalf("name within the principal's scope: %v", err)
	}

	// A disabled principal disables its accounts.
	if _, err := e.access.Disable(ctx, admin, pid); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("b.ok.test")})
	wantProblem(t, err, acme.ErrUnauthorized)
}

func TestNewOrderProfileRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.customProfile(t, "dns_only", func(p *profile.Profile) {
		p.Names.IP.Allow = false
		p.Names.DNS.Suffixes = []string{"corp.test"}
	})
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "dnsonly", Profile: "dns_only"})
	acct := e.account(t, e.svc, prov)

	_, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: []acme.Identifier{
		{Type: "dns", Value: "a.corp.test"}, {Type: "ip", Value: "192.0.2.1"},
	}})
	p := wantProblem(t, err, acme.ErrRejectedIdentifier)
	if p.Identifier == nil || *p.Identifier != (acme.Identifier{Type: "ip", Value: "192.0.2.1"}) {
		t.Errorf("problem identifier %v", p.Identifier)
	}
	_, err = e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("A.Elsewhere.Test")})
	p = wantProblem(t, err, acme.ErrRejectedIdentifier)
	if p.Identifier == nil || p.Identifier.Value != "a.elsewhere.test" {
		t.Errorf("problem identifier %v", p.Identifier)
	}
	if _, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("a.corp.test")}); err != nil {
		t.Errorf("allowed name: %v", err)
	}
}

func TestOrdersPerHourLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.Limits.OrdersPerHour = 2 })
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "orders"})
	acct := e.account(t, e.svc, prov)
	other := e.account(t, e.svc, prov)
	for i := range 2 {
		if _, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs(fmt.Sprintf("o%d.example.test", i))}); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	_, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("o3.example.test")})
	if p := wantProblem(t, err, acme.ErrRateLimited); p.RetryAfterSeconds <= 0 {
		t.Errorf("retry after %d", p.RetryAfterSeconds)
	}
	if _, err := e.svc.NewOrder(ctx, prov, other, acme.OrderRequest{Identifiers: dnsIDs("o3.example.test")}); err != nil {
		t.Errorf("another account: %v", err)
	}
	e.clk.Advance(time.Hour + time.Second)
	if _, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("o3.example.test")}); err != nil {
		t.Errorf("an hour later: %v", err)
	}
}

func TestPendingAuthorizationsLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.Limits.PendingAuthorizations = 2 })
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "pending"})
	acct := e.account(t, e.svc, prov)

	_, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("a.example.test", "b.example.test", "c.example.test")})
	wantProblem(t, err, acme.ErrRateLimited)
	o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("a.example.test", "b.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("c.example.test")})
	wantProblem(t, err, acme.ErrRateLimited)

	// Giving one up makes room.
	a, err := e.svc.DeactivateAuthorization(ctx, acct, o.AuthzIDs[0])
	if err != nil || a.Status != acme.StatusDeactivated {
		t.Fatalf("DeactivateAuthorization: %v, %v", a, err)
	}
	if _, err := e.svc.DeactivateAuthorization(ctx, acct, o.AuthzIDs[0]); acme.AsProblem(err) == nil {
		t.Errorf("deactivating twice: %v", err)
	}
	if got, err := e.svc.Order(ctx, acct, o.ID); err != nil || got.Status != acme.StatusInvalid || got.Error == nil {
		t.Errorf("order with a deactivated authorization: %+v, %v", got, err)
	}
	if _, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("c.example.test")}); err != nil {
		t.Errorf("after deactivating one: %v", err)
	}
	// Pending authorizations that expired do not count.
	e.clk.Advance(7*day + time.Second)
	if _, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("d.example.test", "e.example.test")}); err != nil {
		t.Errorf("after the pending ones expired: %v", err)
	}
}

func TestOrderReusesValidAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "reuse"})
	acct := e.account(t, e.svc, prov)
	first := e.readyOrder(t, e.svc, prov, acct, dnsIDs("reuse.example.test")...)

	e.clk.Advance(time.Second) // orders list in order of creation
	second, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("REUSE.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != acme.StatusReady || !slices.Equal(second.AuthzIDs, first.AuthzIDs) {
		t.Errorf("second order: status %s, authorizations %v, want ready with %v", second.Status, second.AuthzIDs, first.AuthzIDs)
	}
	e.clk.Advance(time.Second)
	mixed, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("reuse.example.test", "new.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	if mixed.Status != acme.StatusPending || mixed.AuthzIDs[0] != first.AuthzIDs[0] || mixed.AuthzIDs[1] == first.AuthzIDs[0] {
		t.Errorf("mixed order: status %s, authorizations %v", mixed.Status, mixed.AuthzIDs)
	}

	// Authorizations belong to their account.
	other := e.account(t, e.svc, prov)
	theirs, err := e.svc.NewOrder(ctx, prov, other, acme.OrderRequest{Identifiers: dnsIDs("reuse.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	if theirs.Status != acme.StatusPending || theirs.AuthzIDs[0] == first.AuthzIDs[0] {
		t.Errorf("another account's order: status %s, authorizations %v", theirs.Status, theirs.AuthzIDs)
	}
	_, err = e.svc.Order(ctx, other, first.ID)
	if p := wantProblem(t, err, acme.ErrMalformed); p.Status() != 404 {
		t.Errorf("another account's order: status %d", p.Status())
	}
	_, err = e.svc.Authorization(ctx, other, first.AuthzIDs[0])
	if p := wantProblem(t, err, acme.ErrMalformed); p.Status() != 404 {
		t.Errorf("another account's authorization: status %d", p.Status())
	}

	ids, err := e.svc.OrderIDs(ctx, acct, "", 10)
	if err != nil || !slices.Equal(ids, []string{first.ID, second.ID, mixed.ID}) {
		t.Errorf("OrderIDs %v, %v", ids, err)
	}
	if ids, err := e.svc.OrderIDs(ctx, acct, first.ID, 1); err != nil || !slices.Equal(ids, []string{second.ID}) {
		t.Errorf("OrderIDs after the first %v, %v", ids, err)
	}
}

func TestOrderExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.OrderLifetime = time.Hour })
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "expiry"})
	acct := e.account(t, e.svc, prov)
	ready := e.readyOrder(t, e.svc, prov, acct, dnsIDs("ready.example.test")...)
	pending, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("pending.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	if !pending.Expires.Equal(start.Add(time.Hour)) {
		t.Errorf("order expires %s, want %s", pending.Expires, start.Add(time.Hour))
	}
	e.clk.Advance(time.Hour)
	for _, o := range []*acme.Order{ready, pending} {
		got, err := e.svc.Order(ctx, acct, o.ID)
		if err != nil || got.Status != acme.StatusInvalid || got.Error == nil {
			t.Errorf("expired order: %+v, %v", got, err)
		}
	}
	_, err = e.svc.Finalize(ctx, prov, acct, ready.ID, csrFor(t, newKey(t), "", []string{"ready.example.test"}))
	wantProblem(t, err, acme.ErrOrderNotReady)
}
