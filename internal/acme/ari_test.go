package acme_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
)

// TestCertID checks the example of RFC 9773 §4.1.
func TestCertID(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(0x87654321),
		Subject:        pkix.Name{CommonName: "ari.example.test"},
		NotBefore:      start,
		NotAfter:       start.Add(90 * day),
		AuthorityKeyId: []byte{0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.AuthorityKeyId, tmpl.AuthorityKeyId) {
		t.Fatalf("test certificate has AKI %x", cert.AuthorityKeyId)
	}
	if got, want := acme.CertID(cert), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"; got != want {
		t.Errorf("CertID = %q, want %q", got, want)
	}
	// A serial whose top bit is clear needs no leading zero.
	cert.SerialNumber = big.NewInt(0x12345678)
	if got, want := acme.CertID(cert), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.EjRWeA"; got != want {
		t.Errorf("CertID = %q, want %q", got, want)
	}
}

func TestRenewalInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "ari"})
	acct := e.account(t, e.svc, prov)
	c := e.issueCert(t, e.svc, prov, acct, "ari.example.test")
	id := acme.CertID(c.leaf)

	ri, err := e.svc.RenewalInfo(ctx, id)
	if err != nil {
		t.Fatalf("RenewalInfo: %v", err)
	}
	if !ri.Start.After(c.leaf.NotBefore) || !ri.End.Before(c.leaf.NotAfter) || !ri.Start.Before(ri.End) {
		t.Errorf("window %s..%s is not inside the validity %s..%s", ri.Start, ri.End, c.leaf.NotBefore, c.leaf.NotAfter)
	}
	rec, err := e.db.GetCertificate(ctx, c.order.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	ws, we := acme.Window(rec, 30) // web_server renews 30 days ahead
	if !ri.Start.Equal(ws.Truncate(time.Second)) || !ri.End.Equal(we.Truncate(time.Second)) {
		t.Errorf("window %s..%s, Window says %s..%s", ri.Start, ri.End, ws, we)
	}
	if !ri.Start.Equal(c.leaf.NotAfter.Add(-30 * day)) {
		t.Errorf("window starts %s, want 30 days before expiry %s", ri.Start, c.leaf.NotAfter)
	}
	if ri.RetryAfter != 6*time.Hour {
		t.Errorf("retry after %s", ri.RetryAfter)
	}

	for _, bad := range []string{"", "nodot", ".AIdlQyE", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.", "a+b.c/d", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA"} {
		_, err := e.svc.RenewalInfo(ctx, bad)
		wantProblem(t, err, acme.ErrMalformed)
	}
	// The right serial under another AKI names no certificate of ours.
	other := *c.leaf
	other.AuthorityKeyId = []byte{1, 2, 3, 4}
	_, err = e.svc.RenewalInfo(ctx, acme.CertID(&other))
	if p := wantProblem(t, err, acme.ErrMalformed); p.Status() != 404 {
		t.Errorf("wrong AKI: status %d", p.Status())
	}

	// Revocation opens the window at once.
	if err := e.svc.Revoke(ctx, prov, acct, nil, c.leaf.Raw, nil); err != nil {
		t.Fatal(err)
	}
	ri, err = e.svc.RenewalInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ri.Start.After(e.clk.Now()) {
		t.Errorf("window of a revoked certificate starts %s, after now %s", ri.Start, e.clk.Now())
	}
}

func TestRenewalInfoUnknownCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// A well-formed ID of a certificate this server never issued.
	_, err := e.svc.RenewalInfo(context.Background(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
	p := acme.AsProblem(err)
	if p == nil || p.Status() != 404 {
		t.Fatalf("RenewalInfo of an unknown certificate: %v, want a 404 problem", err)
	}
}

func TestRenewNow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "renewnow"})
	acct := e.account(t, e.svc, prov)
	c := e.issueCert(t, e.svc, prov, acct, "renew.example.test")
	id := acme.CertID(c.leaf)

	_, err := e.svc.RenewNow(ctx, viewer, acme.RenewSelector{Serial: c.order.CertSerial})
	if !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("viewer: %v, want ErrForbidden", err)
	}
	rootOnly := authz.WithRole("ops", authz.KindHuman, authz.RoleIssuer, authz.Scope{CAs: []string{"root"}})
	sel := acme.RenewSelector{}
	sel.CAID = "issuing"
	_, err = e.svc.RenewNow(ctx, rootOnly, sel)
	if !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("issuer scoped to another CA: %v, want ErrForbidden", err)
	}
	_, err = e.svc.RenewNow(ctx, admin, acme.RenewSelector{})
	if !errors.Is(err, acme.ErrInvalid) {
		t.Errorf("empty selector: %v, want ErrInvalid", err)
	}
	_, err = e.svc.RenewNow(ctx, admin, acme.RenewSelector{Serial: "not hex"})
	if !errors.Is(err, acme.ErrInvalid) {
		t.Errorf("bad serial: %v, want ErrInvalid", err)
	}
	if ri, err := e.svc.RenewalInfo(ctx, id); err != nil || !ri.Start.After(e.clk.Now()) {
		t.Fatalf("refused renew-now moved the window: %+v, %v", ri, err)
	}

	e.clk.Advance(day)
	now := e.clk.Now()
	serials, err := e.svc.RenewNow(ctx, admin, sel)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(serials, c.order.CertSerial) {
		t.Errorf("renew-now marked %v, not %s", serials, c.order.CertSerial)
	}
	ri, err := e.svc.RenewalInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ri.Start.After(now) || !ri.Start.Before(ri.End) {
		t.Errorf("window after renew-now %s..%s, want one starting at or before %s", ri.Start, ri.End, now)
	}
	rec, err := e.db.GetCertificate(ctx, c.order.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.RenewNowAt.Equal(now) {
		t.Errorf("renew_now_at %s, want %s", rec.RenewNowAt, now)
	}
	if ws, we := acme.Window(rec, 30); !ri.Start.Equal(ws) || !ri.End.Equal(we) {
		t.Errorf("window %s..%s, Window says %s..%s", ri.Start, ri.End, ws, we)
	}
	var ev bool
	for _, a := range auditEvents(t, e) {
		ev = ev || a.Action == "acme.renew_now" && a.Principal == admin.Name
	}
	if !ev {
		t.Error("no acme.renew_now audit event")
	}
}

func TestOrderReplaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "replaces"})
	owner := e.account(t, e.svc, prov)
	c := e.issueCert(t, e.svc, prov, owner, "r.example.test")
	id := acme.CertID(c.leaf)

	_, err := e.svc.NewOrder(ctx, prov, owner, acme.OrderRequest{Identifiers: dnsIDs("unrelated.example.test"), Replaces: id})
	wantProblem(t, err, acme.ErrMalformed)
	_, err = e.svc.NewOrder(ctx, prov, owner, acme.OrderRequest{Identifiers: dnsIDs("r.example.test"), Replaces: "garbage"})
	wantProblem(t, err, acme.ErrMalformed)

	stranger := e.account(t, e.svc, prov)
	_, err = e.svc.NewOrder(ctx, prov, stranger, acme.OrderRequest{Identifiers: dnsIDs("r.example.test"), Replaces: id})
	wantProblem(t, err, acme.ErrUnauthorized)

	o, err := e.svc.NewOrder(ctx, prov, owner, acme.OrderRequest{Identifiers: dnsIDs("r.example.test"), Replaces: id})
	if err != nil {
		t.Fatalf("order replacing the account's certificate: %v", err)
	}
	if o.Replaces != id || o.Status != acme.StatusReady {
		t.Errorf("replacing order: replaces %q, status %s", o.Replaces, o.Status)
	}
	_, err = e.svc.NewOrder(ctx, prov, owner, acme.OrderRequest{Identifiers: dnsIDs("r.example.test"), Replaces: id})
	if p := wantProblem(t, err, acme.ErrAlreadyReplaced); p.Status() != 409 {
		t.Errorf("alreadyReplaced status %d", p.Status())
	}
	// Without replaces the account may order as it likes.
	if _, err := e.svc.NewOrder(ctx, prov, owner, acme.OrderRequest{Identifiers: dnsIDs("r.example.test")}); err != nil {
		t.Errorf("order without replaces: %v", err)
	}
}
