package acme_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
)

// Two clients finalizing the same order at once get one certificate,
// whether the order was stored ready (polled) or is still stored pending
// (finalized without a poll: Finalize moves it to processing directly).
func TestFinalizeConcurrent(t *testing.T) {
	t.Parallel()
	for _, polled := range []bool{true, false} {
		t.Run(fmt.Sprintf("polled=%t", polled), func(t *testing.T) {
			t.Parallel()
			testFinalizeConcurrent(t, polled)
		})
	}
}

func testFinalizeConcurrent(t *testing.T, polled bool) {
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "race"})
	acct := e.account(t, e.svc, prov)
	var o *acme.Order
	if polled {
		o = e.readyOrder(t, e.svc, prov, acct, dnsIDs("race.example.test")...)
	} else {
		o = e.provedOrder(t, e.svc, prov, acct, dnsIDs("race.example.test")...)
		if o.Status != acme.StatusPending {
			t.Fatalf("order is stored %s, want pending", o.Status)
		}
	}
	replica := e.service(t, nil)

	const n = 4
	var wg sync.WaitGroup
	results := make([]*acme.Order, n)
	errs := make([]error, n)
	for i := range n {
		svc := e.svc
		if i%2 == 1 {
			svc = replica
		}
		csr := csrFor(t, newKey(t), "", []string{"race.example.test"})
		wg.Go(func() { results[i], errs[i] = svc.Finalize(ctx, prov, acct, o.ID, csr) })
	}
	wg.Wait()
	var ok int
	for i := range n {
		if errs[i] == nil {
			ok++
			continue
		}
		wantProblem(t, errs[i], acme.ErrOrderNotReady)
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent finalizations succeeded, want 1: %v", ok, n, errs)
	}
	var issued int
	for _, ev := range auditEvents(t, e) {
		if ev.Action == "certificate.issue" && strings.HasPrefix(ev.Principal, "acme:race/") {
			issued++
		}
	}
	if issued != 1 {
		t.Errorf("%d certificates issued, want 1", issued)
	}
	if got, err := e.svc.Order(ctx, acct, o.ID); err != nil || got.Status != acme.StatusValid || got.CertSerial == "" {
		t.Errorf("order after finalization: %+v, %v", got, err)
	}
}

// An order for IP addresses and DNS names, proven over http-01 and
// tls-alpn-01, ends in one certificate.
func TestIPOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "ip"})
	acct := e.account(t, e.svc, prov)
	o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: []acme.Identifier{
		{Type: "ip", Value: "127.0.0.1"}, {Type: "dns", Value: "ip.example.test"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	as := authzs(t, e.svc, acct, o)
	e.respond(t, e.svc, acct, as[0], acme.ChallengeTLSALPN01)
	e.respond(t, e.svc, acct, as[1], acme.ChallengeDNS01)
	waitAuthz(t, e.svc, acct, as[0].ID, acme.StatusValid)
	waitAuthz(t, e.svc, acct, as[1].ID, acme.StatusValid)

	key := newKey(t)
	_, err = e.svc.Finalize(ctx, prov, acct, o.ID, csrFor(t, key, "", []string{"ip.example.test"}, net.ParseIP("127.0.0.2")))
	wantProblem(t, err, acme.ErrBadCSR)
	done, err := e.svc.Finalize(ctx, prov, acct, o.ID, csrFor(t, key, "127.0.0.1", []string{"ip.example.test"}, net.ParseIP("127.0.0.1")))
	if err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	rec, err := e.db.GetCertificate(ctx, done.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.SANs) != 2 {
		t.Errorf("SANs %v", rec.SANs)
	}
}

// A wildcard is proven with dns-01 and issued; the account's authorization
// then lets another of its orders revoke the certificate.
func TestWildcardFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.customProfile(t, "wild_server", func(p *profile.Profile) { p.Names.DNS.AllowWildcard = true })
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "wildflow", Profile: "wild_server"})
	acct := e.account(t, e.svc, prov)
	o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("*.w.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	a := authzs(t, e.svc, acct, o)[0]
	e.respond(t, e.svc, acct, a, acme.ChallengeDNS01)
	waitAuthz(t, e.svc, acct, a.ID, acme.StatusValid)

	// The wildcard's authorization does not cover the base name.
	base, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("w.example.test")})
	if err != nil || base.Status != acme.StatusPending {
		t.Fatalf("order for the base name: %+v, %v", base, err)
	}
	again, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("*.w.example.test")})
	if err != nil || again.Status != acme.StatusReady {
		t.Fatalf("second wildcard order: %+v, %v", again, err)
	}

	key := newKey(t)
	done, err := e.svc.Finalize(ctx, prov, acct, o.ID, csrFor(t, key, "", []string{"*.w.example.test"}))
	if err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	rec, err := e.db.GetCertificate(ctx, done.CertSerial)
	if err != nil || len(rec.SANs) != 1 || rec.SANs[0] != "*.w.example.test" {
		t.Fatalf("certificate %+v, %v", rec, err)
	}
	if err := e.svc.Revoke(ctx, prov, acct, nil, rec.DER, nil); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
}

// An account bound to a principal issues as that principal, within its
// scope, and the certificate names both.
func TestEABAccountFinalize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "bound", RequireEAB: true})
	pid := e.eabPrincipal(t, "bound-bot", authz.Scope{Names: []string{"*.ok.test"}})
	k, _, err := e.svc.CreateEABKey(ctx, admin, "bound", pid, "")
	if err != nil {
		t.Fatal(err)
	}
	req := newAccountReq(t)
	req.EABKeyID = k.ID
	acct, _, err := e.svc.NewAccount(ctx, prov, req)
	if err != nil {
		t.Fatal(err)
	}
	c := e.issueCert(t, e.svc, prov, acct, "www.ok.test")
	rec, err := e.db.GetCertificate(ctx, c.order.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.Requester, "acme:bound/"+acct.ID) || !strings.Contains(rec.Requester, "bound-bot") {
		t.Errorf("requester %q", rec.Requester)
	}
}
