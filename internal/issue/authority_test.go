package issue_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/store"
)

func TestCreateHierarchy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	root, inter := e.rootCert, e.interCert

	t.Run("root", func(t *testing.T) {
		t.Parallel()
		if e.root.Kind != ca.KindRoot || e.root.ParentID != "" || e.root.Status != ca.StatusActive || e.root.External ||
			e.root.Key.Algorithm != pki.ECDSAP384 || e.root.Key.Provider != software.Name {
			t.Errorf("root record = %+v", e.root)
		}
		if err := root.CheckSignatureFrom(root); err != nil {
			t.Errorf("root is not self-signed: %v", err)
		}
		ski, _ := pki.SubjectKeyID(root.PublicKey)
		if !root.IsCA || root.MaxPathLen != 1 || root.MaxPathLenZero || !bytes.Equal(root.SubjectKeyId, ski) ||
			(len(root.AuthorityKeyId) > 0 && !bytes.Equal(root.AuthorityKeyId, ski)) {
			t.Errorf("root: CA %v pathlen %d, SKI %x AKI %x", root.IsCA, root.MaxPathLen, root.SubjectKeyId, root.AuthorityKeyId)
		}
		if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; root.KeyUsage != want {
			t.Errorf("root KU %b, want %b", root.KeyUsage, want)
		}
		if len(root.CRLDistributionPoints)+len(root.OCSPServer)+len(root.IssuingCertificateURL) != 0 {
			t.Error("root carries revocation or AIA URLs")
		}
		if root.SignatureAlgorithm != x509.ECDSAWithSHA384 {
			t.Errorf("root signed with %s", root.SignatureAlgorithm)
		}
		if got := root.NotAfter.Sub(root.NotBefore); got != 10*365*day {
			t.Errorf("root lifetime %s", got)
		}
		pub, err := e.svc.PublicKey(ctx, e.root)
		if err != nil || !root.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Errorf("PublicKey(root) does not match the certificate (%v)", err)
		}
	})

	t.Run("intermediate", func(t *testing.T) {
		t.Parallel()
		if e.inter.Kind != ca.KindIntermediate || e.inter.ParentID != e.root.ID || e.inter.Status != ca.StatusActive {
			t.Errorf("intermediate record = %+v", e.inter)
		}
		if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
			t.Errorf("intermediate path length %d (zero %v), want 0", inter.MaxPathLen, inter.MaxPathLenZero)
		}
		if !bytes.Equal(inter.AuthorityKeyId, root.SubjectKeyId) {
			t.Errorf("intermediate AKI %x, want root SKI %x", inter.AuthorityKeyId, root.SubjectKeyId)
		}
		if !slices.Equal(inter.CRLDistributionPoints, []string{base + "/crl/" + e.root.ID + ".crl"}) ||
			!slices.Equal(inter.OCSPServer, []string{base + "/ocsp/" + e.root.ID}) ||
			!slices.Equal(inter.IssuingCertificateURL, []string{base + "/ca/" + e.root.ID + ".crt"}) {
			t.Errorf("intermediate URLs %v %v %v", inter.CRLDistributionPoints, inter.OCSPServer, inter.IssuingCertificateURL)
		}
		if inter.SignatureAlgorithm != x509.ECDSAWithSHA384 {
			t.Errorf("intermediate signed with %s, want the P-384 root's ECDSA-SHA384", inter.SignatureAlgorithm)
		}
		if err := verify(inter, []*x509.Certificate{root}, e.clk.Now()); err != nil {
			t.Errorf("intermediate does not chain to the root: %v", err)
		}
	})

	t.Run("chain", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			ca   string
			want []*x509.Certificate
		}{
			{"issuing", []*x509.Certificate{inter, root}},
			{e.inter.ID, []*x509.Certificate{inter, root}},
			{"root", []*x509.Certificate{root}},
		} {
			got, err := e.svc.Chain(ctx, tt.ca)
			if err != nil || !sameCerts(got, tt.want) {
				t.Errorf("Chain(%s) = %d certificates, %v", tt.ca, len(got), err)
			}
		}
		if _, err := e.svc.Chain(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Chain(unknown) = %v, want store.ErrNotFound", err)
		}
	})
}

func TestCreateIntermediateRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := ca.NewManager(e.db, e.clk, slog.New(slog.DiscardHandler), 0)
	e.intermediate(t, "root", "off", pki.ECDSAP256, 365*day, 0, nil)
	if _, err := m.Disable(ctx, admin, "off"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateExternal(ctx, admin, &ca.Spec{Name: "pending", Subject: pkix.Name{CommonName: "Pending"}, KeyAlg: pki.ECDSAP256, Validity: 365 * day}); err != nil {
		t.Fatal(err)
	}
	spec := func(pathLen int) *ca.Spec {
		return &ca.Spec{Name: "child", Subject: pkix.Name{CommonName: "Child CA"}, KeyAlg: pki.ECDSAP256, Validity: 365 * day, MaxPathLen: pathLen}
	}
	tests := []struct {
		name    string
		p       authz.Principal
		parent  string
		spec    *ca.Spec
		wantErr []error
	}{
		{"under a path-length-0 CA", admin, "issuing", spec(0), []error{issue.ErrInvalid, ca.ErrSpec}},
		{"under a path-length-0 CA, unlimited", admin, "issuing", spec(-1), []error{issue.ErrInvalid, ca.ErrSpec}},
		{"path length 1 under root path length 1", admin, "root", spec(1), []error{issue.ErrInvalid, ca.ErrSpec}},
		{"unlimited under root path length 1", admin, "root", spec(-1), []error{issue.ErrInvalid, ca.ErrSpec}},
		{"unknown parent", admin, "nope", spec(0), []error{store.ErrNotFound}},
		{"disabled parent", admin, "off", spec(0), []error{ca.ErrNotIssuing}},
		{"pending parent", admin, "pending", spec(0), []error{ca.ErrNotIssuing}},
		{"invalid spec", admin, "root", &ca.Spec{Name: "Bad Name", Subject: pkix.Name{CommonName: "x"}, KeyAlg: pki.ECDSAP256, Validity: 365 * day}, []error{issue.ErrInvalid, ca.ErrSpec}},
		{"invalid key", admin, "root", &ca.Spec{Name: "k", Subject: pkix.Name{CommonName: "x"}, KeyAlg: "dsa", Validity: 365 * day}, []error{issue.ErrInvalid, ca.ErrSpec, pki.ErrUnknownKeyAlgorithm}},
		{"duplicate name", admin, "root", &ca.Spec{Name: "issuing", Subject: pkix.Name{CommonName: "x"}, KeyAlg: pki.ECDSAP256, Validity: 365 * day}, []error{issue.ErrConflict}},
		{"a viewer", authz.WithRole("eve", authz.KindHuman, authz.RoleViewer, authz.Scope{}), "root", spec(0), []error{issue.ErrForbidden, authz.ErrForbidden}},
		{"an issuer", authz.WithRole("ivan", authz.KindMachine, authz.RoleIssuer, authz.Scope{}), "root", spec(0), []error{issue.ErrForbidden}},
		{"a CA admin scoped to another CA", authz.WithRole("carol", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"other"}}), "root", spec(0), []error{issue.ErrForbidden}},
		{"a CA admin of the new CA but not of its parent", authz.WithRole("carol", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"child"}}), "root", spec(0), []error{issue.ErrForbidden}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Sequential: the key-generation counter is shared.
			cas, _ := e.db.ListCAs(ctx)
			before := e.keyRand.n.Load()
			c, err := e.svc.CreateIntermediate(ctx, tt.p, tt.parent, tt.spec)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("CreateIntermediate = %+v, %v; want %v", c, err, want)
				}
			}
			if n := e.keyRand.n.Load(); n != before {
				t.Errorf("a refused CA generated a key (%d random bytes read)", n-before)
			}
			if after, _ := e.db.ListCAs(ctx); len(after) != len(cas) {
				t.Errorf("a refused CA was stored")
			}
		})
	}
	// The refusals left the name free, for a CA admin of both the parent
	// (by ID) and the new CA (by name).
	both := authz.WithRole("carol", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{e.root.ID, "child"}})
	if _, err := e.svc.CreateIntermediate(ctx, both, "root", spec(0)); err != nil {
		t.Fatalf("CreateIntermediate after refusals: %v", err)
	}
}

// TestDuplicateName: every way of creating a CA refuses a taken name (or a
// taken ID) before generating a key.
func TestDuplicateName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, name := range []string{"root", "issuing", e.inter.ID} {
		spec := &ca.Spec{Name: name, Subject: pkix.Name{CommonName: "Dup"}, KeyAlg: pki.RSA4096, Validity: 365 * day}
		for _, create := range []struct {
			name string
			do   func() (*ca.CA, error)
		}{
			{"CreateRoot", func() (*ca.CA, error) { return e.svc.CreateRoot(ctx, admin, spec) }},
			{"CreateIntermediate", func() (*ca.CA, error) { return e.svc.CreateIntermediate(ctx, admin, "root", spec) }},
			{"CreateExternal", func() (*ca.CA, error) { return e.svc.CreateExternal(ctx, admin, spec) }},
		} {
			t.Run(create.name+"/"+name, func(t *testing.T) {
				before := e.keyRand.n.Load()
				c, err := create.do()
				if !errors.Is(err, issue.ErrConflict) {
					t.Fatalf("%s(%s) = %+v, %v; want ErrConflict", create.name, name, c, err)
				}
				if n := e.keyRand.n.Load(); n != before {
					t.Errorf("a key was generated before the name check (%d random bytes)", n-before)
				}
			})
		}
	}
}

func TestCreateIntermediateExpiredParent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateRoot(ctx, admin, &ca.Spec{Name: "brief", Subject: pkix.Name{CommonName: "Brief Root"}, KeyAlg: pki.ECDSAP256, Validity: 2 * day, MaxPathLen: 1}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(3 * day)
	c, err := e.svc.CreateIntermediate(ctx, admin, "brief", &ca.Spec{Name: "late", Subject: pkix.Name{CommonName: "Late"}, KeyAlg: pki.ECDSAP256, Validity: 365 * day})
	if !errors.Is(err, ca.ErrNotIssuing) {
		t.Fatalf("CreateIntermediate under an expired root = %+v, %v; want ca.ErrNotIssuing", c, err)
	}
}

func TestNameConstraints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, tenNet, _ := net.ParseCIDR("10.0.0.0/8")
	nc := e.intermediate(t, "root", "constrained", pki.ECDSAP256, 365*day, 0, func(s *ca.Spec) {
		s.PermittedDNS = []string{"example.com"}
		s.ExcludedDNS = []string{"secret.example.com"}
		s.PermittedIP = []*net.IPNet{tenNet}
	})
	cert := mustParse(t, nc.CertDER)
	if !slices.Equal(cert.PermittedDNSDomains, []string{"example.com"}) || !slices.Equal(cert.ExcludedDNSDomains, []string{"secret.example.com"}) ||
		len(cert.PermittedIPRanges) != 1 || cert.PermittedIPRanges[0].String() != "10.0.0.0/8" || !cert.PermittedDNSDomainsCritical {
		t.Fatalf("name constraints in the certificate: permitted %v excluded %v IP %v critical %v",
			cert.PermittedDNSDomains, cert.ExcludedDNSDomains, cert.PermittedIPRanges, cert.PermittedDNSDomainsCritical)
	}

	key := mustKey(t, pki.ECDSAP256)
	tests := []struct {
		name   string
		dns    []string
		ips    []net.IP
		inside bool
	}{
		{"permitted name and IP", []string{"www.example.com", "example.com"}, []net.IP{net.ParseIP("10.1.2.3")}, true},
		{"other domain", []string{"www.example.org"}, nil, false},
		{"suffix that is not a label boundary", []string{"badexample.com"}, nil, false},
		{"excluded subtree", []string{"db.secret.example.com"}, nil, false},
		{"IP outside the range", []string{"www.example.com"}, []net.IP{net.ParseIP("192.168.1.1")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			csr := mustCSR(t, key, &x509.CertificateRequest{DNSNames: tt.dns, IPAddresses: tt.ips})
			res, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "constrained", Profile: "web_server", CSR: csr})
			if !tt.inside {
				// A constrained CA refuses at issuance what relying parties would reject.
				if !errors.Is(err, ca.ErrNameConstraint) || !errors.Is(err, issue.ErrInvalid) {
					t.Fatalf("Issue outside the constraints = %v, want ca.ErrNameConstraint", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if err := verify(res.Leaf, res.Chain, e.clk.Now()); err != nil {
				t.Fatalf("x509.Verify: %v", err)
			}
		})
	}
}

// outsideCA is a CA that is not Certwright's, made with crypto/x509 alone.
type outsideCA struct {
	key  crypto.Signer
	cert *x509.Certificate
}

func newOutsideCA(t *testing.T, at time.Time) *outsideCA {
	t.Helper()
	key := mustKey(t, pki.ECDSAP256)
	ski, _ := pki.SubjectKeyID(key.Public())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"Outside Corp"}, CommonName: "Outside Root"},
		NotBefore: at.Add(-day), NotAfter: at.Add(20 * 365 * day),
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 2,
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &outsideCA{key: key, cert: mustParse(t, der)}
}

// sign issues a CA certificate for csr's key; mutate may spoil it.
func (o *outsideCA) sign(t *testing.T, csr *x509.CertificateRequest, pub crypto.PublicKey, at time.Time, mutate func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	ski, _ := pki.SubjectKeyID(pub)
	serial, _ := pki.NewSerial(nil)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: csr.Subject,
		NotBefore: at.Add(-time.Hour), NotAfter: at.Add(2 * 365 * day),
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 0, MaxPathLenZero: true,
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId: ski,
	}
	if mutate != nil {
		mutate(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, o.cert, pub, o.key)
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, der)
}

func TestExternalCA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	outside := newOutsideCA(t, start)

	pending, err := e.svc.CreateExternal(ctx, admin, &ca.Spec{
		Name: "ext", Subject: pkix.Name{Organization: []string{"Certwright Test"}, CommonName: "Externally Signed CA"},
		KeyAlg: pki.ECDSAP256, Validity: 365 * day,
	})
	if err != nil {
		t.Fatal(err)
	}
	if pending.Status != ca.StatusPending || !pending.External || pending.CertDER != nil || pending.ParentID != "" {
		t.Fatalf("pending record = %+v", pending)
	}
	csr, err := pki.ParseCSR(pending.CSRDER)
	if err != nil {
		t.Fatalf("CSR of the external CA: %v", err)
	}
	pub, err := e.svc.PublicKey(ctx, pending)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
		t.Fatal("CSR is not for the CA's key")
	}
	if csr.Subject.CommonName != "Externally Signed CA" {
		t.Errorf("CSR subject %q", csr.Subject)
	}
	if _, err := e.svc.Chain(ctx, "ext"); !errors.Is(err, ca.ErrNotIssuing) {
		t.Errorf("Chain of a pending CA = %v, want ca.ErrNotIssuing", err)
	}

	otherKey := mustKey(t, pki.ECDSAP256)
	unrelated := newOutsideCA(t, start)
	bad := []struct {
		name  string
		cert  *x509.Certificate
		chain []*x509.Certificate
	}{
		{"certificate for another key", outside.sign(t, csr, otherKey.Public(), start, nil), nil},
		{"not a CA certificate", outside.sign(t, csr, pub, start, func(c *x509.Certificate) {
			c.IsCA, c.MaxPathLenZero, c.KeyUsage = false, false, x509.KeyUsageDigitalSignature
		}), nil},
		{"without keyCertSign", outside.sign(t, csr, pub, start, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }), nil},
		{"expired", outside.sign(t, csr, pub, start, func(c *x509.Certificate) { c.NotBefore, c.NotAfter = start.Add(-30*day), start.Add(-day) }), nil},
		{"not yet valid", outside.sign(t, csr, pub, start, func(c *x509.Certificate) { c.NotBefore = start.Add(day) }), nil},
		{"chain that did not sign it", outside.sign(t, csr, pub, start, nil), []*x509.Certificate{unrelated.cert}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.svc.ImportCertificate(ctx, admin, "ext", tt.cert, tt.chain)
			if !errors.Is(err, ca.ErrImport) || !errors.Is(err, issue.ErrInvalid) {
				t.Fatalf("ImportCertificate = %+v, %v; want ca.ErrImport", c, err)
			}
			if got, _ := e.db.GetCA(ctx, "ext"); got.Status != ca.StatusPending || got.CertDER != nil {
				t.Fatalf("a refused import changed the CA: %s", got.Status)
			}
		})
	}
	if _, err := e.svc.ImportCertificate(ctx, authz.Principal{}, "ext", outside.sign(t, csr, pub, start, nil), nil); !errors.Is(err, issue.ErrForbidden) {
		t.Errorf("import without a principal = %v, want ErrForbidden", err)
	}
	if _, err := e.svc.ImportCertificate(ctx, admin, "nope", outside.sign(t, csr, pub, start, nil), nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("import to an unknown CA = %v, want store.ErrNotFound", err)
	}
	if _, err := e.svc.ImportCertificate(ctx, admin, "issuing", outside.sign(t, csr, pub, start, nil), nil); !errors.Is(err, ca.ErrTransition) {
		t.Errorf("import to an active CA = %v, want ca.ErrTransition", err)
	}

	extCert := outside.sign(t, csr, pub, start, nil)
	active, err := e.svc.ImportCertificate(ctx, admin, "ext", extCert, []*x509.Certificate{outside.cert})
	if err != nil {
		t.Fatalf("ImportCertificate: %v", err)
	}
	if active.Status != ca.StatusActive || !bytes.Equal(active.CertDER, extCert.Raw) {
		t.Fatalf("imported CA = %+v", active)
	}
	stored, err := e.db.GetCA(ctx, "ext")
	if err != nil || stored.Status != ca.StatusActive || !bytes.Equal(stored.CertDER, extCert.Raw) || len(stored.ChainDER) != 1 {
		t.Fatalf("stored CA after import: %+v, %v", stored, err)
	}

	chain, err := e.svc.Chain(ctx, "ext")
	if err != nil {
		t.Fatal(err)
	}
	if !sameCerts(chain, []*x509.Certificate{extCert, outside.cert}) {
		t.Fatalf("Chain(ext) has %d certificates, want the CA then the imported chain", len(chain))
	}

	key := mustKey(t, pki.ECDSAP256)
	res, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "ext", Profile: "web_server", CSR: mustCSR(t, key, names("web_server"))})
	if err != nil {
		t.Fatalf("Issue from the imported CA: %v", err)
	}
	web, _ := profile.Builtin("web_server")
	checkLeaf(t, e, res, active, web, key.Public(), 365)
	if !sameCerts(res.Chain, chain) {
		t.Error("the leaf's chain is not Chain(ext)")
	}

	if _, err := e.svc.ImportCertificate(ctx, admin, "ext", extCert, nil); !errors.Is(err, ca.ErrTransition) {
		t.Errorf("second import = %v, want ca.ErrTransition", err)
	}
}

func TestVerifyKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateExternal(ctx, admin, &ca.Spec{Name: "ext", Subject: pkix.Name{CommonName: "Ext"}, KeyAlg: pki.Ed25519, Validity: 365 * day}); err != nil {
		t.Fatal(err)
	}
	cas, err := e.db.ListCAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cas) != 3 {
		t.Fatalf("%d CAs, want 3", len(cas))
	}

	t.Run("same KEK, fresh provider", func(t *testing.T) {
		t.Parallel()
		kp, err := software.New(e.kek, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.newService(t, kp).VerifyKeys(ctx, cas); err != nil {
			t.Fatalf("VerifyKeys: %v", err)
		}
	})

	t.Run("other KEK", func(t *testing.T) {
		t.Parallel()
		kp, err := software.New(newKEK(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		svc := e.newService(t, kp)
		if err := svc.VerifyKeys(ctx, cas); !errors.Is(err, keys.ErrWrongKEK) {
			t.Fatalf("VerifyKeys under another KEK = %v, want keys.ErrWrongKEK", err)
		}
		// Nor can that server issue.
		n := e.count(t)
		_, err = svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "web_server", CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))})
		if !errors.Is(err, keys.ErrWrongKEK) {
			t.Errorf("Issue under another KEK = %v, want keys.ErrWrongKEK", err)
		}
		if e.count(t) != n {
			t.Error("a certificate was stored")
		}
	})

	t.Run("deleted CAs are skipped", func(t *testing.T) {
		t.Parallel()
		broken := *cas[0]
		broken.Key.Blob = []byte("not a wrapped key")
		broken.Status = ca.StatusDeleted
		kp, err := software.New(e.kek, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.newService(t, kp).VerifyKeys(ctx, []*ca.CA{&broken, cas[1]}); err != nil {
			t.Fatalf("VerifyKeys with a deleted CA's broken key: %v", err)
		}
		broken.Status = ca.StatusDisabled
		if err := e.newService(t, kp).VerifyKeys(ctx, []*ca.CA{&broken}); err == nil {
			t.Fatal("VerifyKeys accepted a broken key of a live CA")
		}
	})
}
