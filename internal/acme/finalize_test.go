package acme_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/profile"
)

func TestFinalize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "fin"})
	acct := e.account(t, e.svc, prov)
	names := []string{"www.fin.test", "fin.test"}
	o := e.readyOrder(t, e.svc, prov, acct, dnsIDs(names...)...)
	key := newKey(t)

	for _, tc := range []struct {
		name string
		csr  []byte
	}{
		{"not a CSR", []byte("garbage")},
		{"different name", csrFor(t, key, "", []string{"www.fin.test", "other.test"})},
		{"missing name", csrFor(t, key, "", []string{"www.fin.test"})},
		{"extra name", csrFor(t, key, "", append(slices.Clone(names), "extra.fin.test"))},
		{"extra IP", csrFor(t, key, "", names, net.ParseIP("192.0.2.1"))},
		{"common name not a SAN", csrFor(t, key, "cn.fin.test", names)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Finalize(ctx, prov, acct, o.ID, tc.csr)
			wantProblem(t, err, acme.ErrBadCSR)
			got, err := e.svc.Order(ctx, acct, o.ID)
			if err != nil || got.Status != acme.StatusReady || got.CertSerial != "" {
				t.Fatalf("order after a bad CSR: %+v, %v", got, err)
			}
		})
	}

	t.Run("another account", func(t *testing.T) {
		other := e.account(t, e.svc, prov)
		_, err := e.svc.Finalize(ctx, prov, other, o.ID, csrFor(t, key, names[0], names))
		if p := wantProblem(t, err, acme.ErrMalformed); p.Status() != 404 {
			t.Errorf("status %d", p.Status())
		}
	})

	// Neither case nor order matter.
	done, err := e.svc.Finalize(ctx, prov, acct, o.ID, csrFor(t, key, "FIN.test", []string{"fin.test", "WWW.fin.test"}))
	if err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	if done.Status != acme.StatusValid || done.CertSerial == "" {
		t.Fatalf("finalized order %+v", done)
	}
	if got, err := e.svc.Order(ctx, acct, o.ID); err != nil || got.Status != acme.StatusValid || got.CertSerial != done.CertSerial {
		t.Errorf("stored order %+v, %v", got, err)
	}
	_, err = e.svc.Finalize(ctx, prov, acct, o.ID, csrFor(t, key, "", names))
	wantProblem(t, err, acme.ErrOrderNotReady)

	rec, err := e.db.GetCertificate(ctx, done.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	wantRequester := "acme:fin/" + acct.ID
	if rec.Requester != wantRequester {
		t.Errorf("requester %q, want %q", rec.Requester, wantRequester)
	}
	if !slices.Contains(rec.Tags, "acme") || !slices.Contains(rec.Tags, "acme:fin") {
		t.Errorf("tags %v", rec.Tags)
	}
	if rec.CAID != e.inter.ID || rec.Profile != "web_server" {
		t.Errorf("CA %s, profile %s", rec.CAID, rec.Profile)
	}
	leaf, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("certificate is not for the CSR's key")
	}
	lower := make([]string, len(leaf.DNSNames))
	for i, n := range leaf.DNSNames {
		lower[i] = strings.ToLower(n)
	}
	if slices.Sort(lower); !slices.Equal(lower, []string{"fin.test", "www.fin.test"}) {
		t.Errorf("certificate names %v", leaf.DNSNames)
	}

	var issueEv bool
	for _, ev := range auditEvents(t, e) {
		if ev.Action == "certificate.issue" && ev.Target == done.CertSerial {
			issueEv = true
			if ev.Principal != wantRequester {
				t.Errorf("audit principal %q, want %q", ev.Principal, wantRequester)
			}
			var d map[string]any
			if err := json.Unmarshal(ev.Details, &d); err != nil || d["profile"] != "web_server" {
				t.Errorf("audit details %s", ev.Details)
			}
		}
	}
	if !issueEv {
		t.Error("no certificate.issue audit event for the certificate")
	}

	t.Run("chain", func(t *testing.T) {
		pemChain, err := e.svc.CertificateChain(ctx, acct, done.CertSerial)
		if err != nil {
			t.Fatal(err)
		}
		var ders [][]byte
		for rest := pemChain; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				t.Errorf("PEM block %s", b.Type)
			}
			ders = append(ders, b.Bytes)
		}
		if len(ders) != 2 || !bytes.Equal(ders[0], rec.DER) || !bytes.Equal(ders[1], e.inter.CertDER) {
			t.Fatalf("chain has %d certificates, want the leaf then the intermediate", len(ders))
		}
		// The serial may be written in any case, with colons.
		if _, err := e.svc.CertificateChain(ctx, acct, "0x"+upper(done.CertSerial)); err != nil {
			t.Errorf("upper-case serial: %v", err)
		}
		// What relying parties see verifies against the root alone.
		roots, inters := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(e.rootCert)
		inters.AddCert(e.interCert)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "www.fin.test",
			CurrentTime: start.Add(day)}); err != nil {
			t.Errorf("leaf does not verify: %v", err)
		}
		other := e.account(t, e.svc, prov)
		for _, serial := range []string{done.CertSerial, "not-hex", "01"} {
			_, err = e.svc.CertificateChain(ctx, other, serial)
			if p := wantProblem(t, err, acme.ErrMalformed); p.Status() != 404 {
				t.Errorf("%s: status %d", serial, p.Status())
			}
		}
	})
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestFinalizeNotReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "notready"})
	acct := e.account(t, e.svc, prov)
	o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("pending.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Finalize(ctx, prov, acct, o.ID, csrFor(t, newKey(t), "", []string{"pending.example.test"}))
	wantProblem(t, err, acme.ErrOrderNotReady)
	if got, err := e.svc.Order(ctx, acct, o.ID); err != nil || got.Status != acme.StatusPending {
		t.Errorf("order %+v, %v", got, err)
	}
	_, err = e.svc.Finalize(ctx, prov, acct, "no-such-order", csrFor(t, newKey(t), "", []string{"pending.example.test"}))
	if p := wantProblem(t, err, acme.ErrMalformed); p.Status() != 404 {
		t.Errorf("unknown order: status %d", p.Status())
	}
}

// A CSR the profile rejects (here: its key) leaves the order ready for
// another attempt.
func TestFinalizeProfileRejectsCSR(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.customProfile(t, "p384_only", func(p *profile.Profile) {
		p.Keys = []profile.KeyRule{{Algorithm: "ECDSA", MinBits: 384}}
		p.KeyUsage = []string{"digital_signature"}
	})
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "p384", Profile: "p384_only"})
	acct := e.account(t, e.svc, prov)
	o := e.readyOrder(t, e.svc, prov, acct, dnsIDs("p384.example.test")...)
	_, err := e.svc.Finalize(ctx, prov, acct, o.ID, csrFor(t, newKey(t), "", []string{"p384.example.test"}))
	wantProblem(t, err, acme.ErrBadCSR)
	got, err := e.svc.Order(ctx, acct, o.ID)
	if err != nil || got.Status != acme.StatusReady {
		t.Fatalf("order after a rejected key: %+v, %v", got, err)
	}
	k384, err := pkiP384(t)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := e.svc.Finalize(ctx, prov, acct, o.ID, csrFor(t, k384, "", []string{"p384.example.test"})); err != nil || done.Status != acme.StatusValid {
		t.Fatalf("second attempt: %+v, %v", done, err)
	}
}
