package ceremony_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/ceremony"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

const (
	day        = 24 * time.Hour
	year       = 365 * day
	passphrase = "correct horse battery staple"
	crlURL     = "http://pki.example.internal:8080/crl/ca_0123456789abcdef.crl"
	aiaURL     = "http://pki.example.internal:8080/ca/ca_0123456789abcdef.crt"
)

var start = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func newLinter(t *testing.T) *lint.Linter {
	t.Helper()
	l, err := lint.New(lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newSession(l *lint.Linter, clk clock.Clock) ceremony.Session {
	return ceremony.Session{Clock: clk, Linter: l, Host: "vault-laptop", Operators: []string{"alice", "bob"}}
}

func passFunc(p string) ceremony.PassphraseFunc {
	return func(bool) ([]byte, error) { return []byte(p), nil }
}

// fileKey is the key source the CLI makes, with a low PBKDF2 count so
// that the tests stay fast.
func fileKey(dir, pass string) *ceremony.FileKey {
	return &ceremony.FileKey{Path: filepath.Join(dir, ceremony.KeyFileName), Passphrase: passFunc(pass), Iterations: 1000}
}

func rootSpec() ceremony.RootSpec {
	return ceremony.RootSpec{CommonName: "Example Offline Root", Organization: "Example", KeyAlg: pki.ECDSAP384, Validity: 20 * year, PathLen: 1}
}

// newRoot runs the root ceremony in a new directory.
func newRoot(t *testing.T, l *lint.Linter, clk clock.Clock) *ceremony.Dir {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	d, _, err := ceremony.CreateRoot(context.Background(), newSession(l, clk), dir, fileKey(dir, passphrase), rootSpec())
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	return d
}

func keys(t *testing.T, d *ceremony.Dir, pass string) ceremony.KeySource {
	t.Helper()
	ks, err := d.KeySource(ceremony.Unlock{Passphrase: passFunc(pass)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

func transcript(t *testing.T, d *ceremony.Dir) []ceremony.Entry {
	t.Helper()
	f, err := os.Open(filepath.Join(d.Path(), ceremony.TranscriptFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ceremony.Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e ceremony.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("transcript line %d: %v", len(out)+1, err)
		}
		out = append(out, e)
	}
	return out
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestCreateRoot(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(start)
	d := newRoot(t, newLinter(t), clk)
	root := d.Root()

	if !pki.SelfSigned(root) || !root.IsCA || !root.BasicConstraintsValid || root.MaxPathLen != 1 || root.MaxPathLenZero {
		t.Errorf("root: self-signed %v, CA %v, path length %d", pki.SelfSigned(root), root.IsCA, root.MaxPathLen)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; root.KeyUsage != want {
		t.Errorf("root key usage %b, want %b (the server's root template)", root.KeyUsage, want)
	}
	ski, _ := pki.SubjectKeyID(root.PublicKey)
	if !bytes.Equal(root.SubjectKeyId, ski) || !bytes.Equal(root.AuthorityKeyId, ski) {
		t.Errorf("root SKI %x AKI %x, want %x", root.SubjectKeyId, root.AuthorityKeyId, ski)
	}
	if root.Subject.CommonName != "Example Offline Root" || !slices.Equal(root.Subject.Organization, []string{"Example"}) {
		t.Errorf("root subject %s", root.Subject)
	}
	if got := root.NotAfter.Sub(root.NotBefore); got != 20*year {
		t.Errorf("root lifetime %s, want 20 years", got)
	}
	if root.SignatureAlgorithm != x509.ECDSAWithSHA384 || len(root.CRLDistributionPoints)+len(root.IssuingCertificateURL)+len(root.OCSPServer) != 0 {
		t.Errorf("root signed with %s, URLs %v %v %v", root.SignatureAlgorithm, root.CRLDistributionPoints, root.IssuingCertificateURL, root.OCSPServer)
	}
	if m := mode(t, d.Path()); m != 0o700 {
		t.Errorf("ceremony directory mode %04o, want 0700", m)
	}
	if m := mode(t, filepath.Join(d.Path(), ceremony.KeyFileName)); m != 0o600 {
		t.Errorf("key file mode %04o, want 0600", m)
	}
	ks := keys(t, d, passphrase)
	sg, err := ks.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !sg.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(root.PublicKey) {
		t.Error("the key file holds another key than the root certificate's")
	}

	st := d.State()
	if st.Key != (ceremony.KeyRef{Source: ceremony.SourceFile, Location: ceremony.KeyFileName}) || st.KeyAlgorithm != pki.ECDSAP384 ||
		st.RootSHA256 != pki.Fingerprint(root.Raw) || st.CRLNumber != 0 || len(st.Issued) != 0 || len(st.Revoked) != 0 {
		t.Errorf("state = %+v", st)
	}
	tr := transcript(t, d)
	if len(tr) != 1 {
		t.Fatalf("%d transcript lines, want 1", len(tr))
	}
	e := tr[0]
	if e.Seq != 1 || e.PrevSHA256 != "" || e.Action != ceremony.ActionRootCreate || !slices.Equal(e.Operators, []string{"alice", "bob"}) ||
		e.Host != "vault-laptop" || !e.Time.Equal(start) || e.Key.Algorithm != pki.ECDSAP384 || e.Key.SPKISHA256 != st.KeySPKISHA256 ||
		e.Certificate == nil || e.Certificate.SHA256 != pki.Fingerprint(root.Raw) || e.Certificate.Serial != pki.SerialHex(root.SerialNumber) {
		t.Errorf("transcript entry = %+v", e)
	}

	again, err := ceremony.Open(d.Path())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !again.Root().Equal(root) {
		t.Error("Open read another root")
	}
	if _, _, err := ceremony.CreateRoot(context.Background(), newSession(newLinter(t), clk), d.Path(), fileKey(d.Path(), passphrase), rootSpec()); !errors.Is(err, ceremony.ErrInvalid) {
		t.Errorf("a second root in the same directory: %v, want ErrInvalid", err)
	}
}

func TestCreateRootRefusals(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	spec := func(f func(*ceremony.RootSpec)) ceremony.RootSpec {
		s := rootSpec()
		f(&s)
		return s
	}
	for _, tt := range []struct {
		name string
		spec ceremony.RootSpec
		sess func(*ceremony.Session)
		pass string
		want error
	}{
		{"rsa-2048", spec(func(s *ceremony.RootSpec) { s.KeyAlg = pki.RSA2048 }), nil, passphrase, ceremony.ErrInvalid},
		{"ed25519", spec(func(s *ceremony.RootSpec) { s.KeyAlg = pki.Ed25519 }), nil, passphrase, ceremony.ErrInvalid},
		{"31 years", spec(func(s *ceremony.RootSpec) { s.Validity = 31 * year }), nil, passphrase, ceremony.ErrInvalid},
		{"an hour", spec(func(s *ceremony.RootSpec) { s.Validity = time.Hour }), nil, passphrase, ceremony.ErrInvalid},
		{"no common name", spec(func(s *ceremony.RootSpec) { s.CommonName = "" }), nil, passphrase, ceremony.ErrInvalid},
		{"path length 9", spec(func(s *ceremony.RootSpec) { s.PathLen = 9 }), nil, passphrase, ceremony.ErrInvalid},
		{"no operator", rootSpec(), func(s *ceremony.Session) { s.Operators = nil }, passphrase, ceremony.ErrInvalid},
		{"operator with a line break", rootSpec(), func(s *ceremony.Session) { s.Operators = []string{"alice\nbob"} }, passphrase, ceremony.ErrInvalid},
		{"short passphrase", rootSpec(), nil, "eleven char", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "root")
			s := newSession(l, clock.NewFake(start))
			if tt.sess != nil {
				tt.sess(&s)
			}
			_, _, err := ceremony.CreateRoot(context.Background(), s, dir, fileKey(dir, tt.pass), tt.spec)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("CreateRoot = %v, want %v", err, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("a refused root left %s behind (%v)", dir, err)
			}
		})
	}

	t.Run("existing empty directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := newSession(l, clock.NewFake(start))
		if _, _, err := ceremony.CreateRoot(context.Background(), s, dir, fileKey(dir, "short"), rootSpec()); err == nil {
			t.Fatal("a short passphrase was accepted")
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("a refused root left %d entries in the directory it was given", len(entries))
		}
		if _, _, err := ceremony.CreateRoot(context.Background(), s, dir, fileKey(dir, passphrase), rootSpec()); err != nil {
			t.Fatal(err)
		}
		if m := mode(t, dir); m != 0o700 {
			t.Errorf("directory mode %04o, want 0700", m)
		}
	})
}

// newCSR returns a subordinate CA's CSR and its key.
func newCSR(t *testing.T, cn string) ([]byte, crypto.Signer) {
	t.Helper()
	key, err := pki.ECDSAP256.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: []string{"Example"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func intermediate() ceremony.IntermediateSpec {
	return ceremony.IntermediateSpec{Validity: 5 * year, PathLen: 0, CRLURL: crlURL, CAIssuersURL: aiaURL}
}

func TestSignIntermediate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLinter(t)
	clk := clock.NewFake(start)
	d := newRoot(t, l, clk)
	root := d.Root()
	clk.Set(start.Add(30 * day))
	csrDER, key := newCSR(t, "Example Issuing CA")
	csr, _ := x509.ParseCertificateRequest(csrDER)

	plan, err := d.PlanIntermediate(newSession(l, clk), csrDER, intermediate())
	if err != nil {
		t.Fatalf("PlanIntermediate: %v", err)
	}
	if plan.Subject != "CN=Example Issuing CA,O=Example" || plan.KeyAlgorithm != pki.ECDSAP256 || plan.PathLen != 0 || plan.Capped ||
		plan.CRLURL != crlURL || plan.NotAfter.Sub(plan.NotBefore) != 5*year || plan.CSRSHA256 != pki.Fingerprint(csrDER) {
		t.Errorf("plan = %+v", plan)
	}
	signed, err := plan.Sign(ctx, keys(t, d, passphrase))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	c := signed.Cert
	if err := c.CheckSignatureFrom(root); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.RawSubject, csr.RawSubject) || !bytes.Equal(c.RawIssuer, root.RawSubject) || !bytes.Equal(c.AuthorityKeyId, root.SubjectKeyId) {
		t.Errorf("subject %s issuer %s AKI %x", c.Subject, c.Issuer, c.AuthorityKeyId)
	}
	if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature {
		t.Errorf("CA %v path length %d (zero %v) key usage %b", c.IsCA, c.MaxPathLen, c.MaxPathLenZero, c.KeyUsage)
	}
	if !slices.Equal(c.CRLDistributionPoints, []string{crlURL}) || !slices.Equal(c.IssuingCertificateURL, []string{aiaURL}) || len(c.OCSPServer) != 0 {
		t.Errorf("URLs: CRL %v caIssuers %v OCSP %v", c.CRLDistributionPoints, c.IssuingCertificateURL, c.OCSPServer)
	}
	if !c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) || pki.SerialHex(c.SerialNumber) != plan.Serial {
		t.Error("the certificate is not for the CSR's key, or not the planned serial")
	}
	copyPEM, err := os.ReadFile(filepath.Join(d.Path(), signed.File))
	if err != nil || !bytes.Equal(copyPEM, pki.CertPEM(c.Raw)) {
		t.Errorf("the copy %s: %v", signed.File, err)
	}
	if !strings.HasPrefix(filepath.Base(signed.File), "0001-") {
		t.Errorf("copy named %s, want the counter 0001 first", signed.File)
	}
	st := d.State()
	if len(st.Issued) != 1 || st.Issued[0].Seq != 1 || st.Issued[0].Serial != plan.Serial || st.Issued[0].SHA256 != pki.Fingerprint(c.Raw) {
		t.Errorf("state issued = %+v", st.Issued)
	}
	tr := transcript(t, d)
	if len(tr) != 2 || tr[1].Action != ceremony.ActionIntermediateSign || tr[1].CSR == nil || tr[1].CSR.SHA256 != plan.CSRSHA256 ||
		tr[1].Certificate.SHA256 != pki.Fingerprint(c.Raw) || tr[1].Certificate.CRLURL != crlURL || !tr[1].Time.Equal(start.Add(30*day)) {
		t.Errorf("transcript = %+v", tr)
	}

	// A second one is counted after the first; one asked past the
	// root's expiry ends with the root.
	csr2, _ := newCSR(t, "Example Issuing CA 2")
	long := intermediate()
	long.Validity = 30 * year
	plan, err = d.PlanIntermediate(newSession(l, clk), csr2, long)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Capped || !plan.NotAfter.Equal(root.NotAfter) {
		t.Errorf("capped %v, not after %s, want the root's %s", plan.Capped, plan.NotAfter, root.NotAfter)
	}
	signed, err = plan.Sign(ctx, keys(t, d, passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(signed.File), "0002-") || len(d.State().Issued) != 2 {
		t.Errorf("second copy %s, %d issued", signed.File, len(d.State().Issued))
	}
}

func TestSignIntermediateRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLinter(t)
	clk := clock.NewFake(start)
	d := newRoot(t, l, clk)
	csr, _ := newCSR(t, "Example Issuing CA")
	badSig := bytes.Clone(csr)
	badSig[len(badSig)-3] ^= 0xff
	rootKey, err := keys(t, d, passphrase).Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rootCSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Again"}}, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	emptyKey, _ := pki.ECDSAP256.Generate(rand.Reader)
	empty, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, emptyKey)
	with := func(f func(*ceremony.IntermediateSpec)) ceremony.IntermediateSpec {
		s := intermediate()
		f(&s)
		return s
	}
	for _, tt := range []struct {
		name string
		csr  []byte
		spec ceremony.IntermediateSpec
	}{
		{"CSR signature does not verify", badSig, intermediate()},
		{"not a CSR", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), intermediate()},
		{"CSR too large", bytes.Repeat([]byte{'A'}, ceremony.MaxCSR+1), intermediate()},
		{"the root's own key", rootCSR, intermediate()},
		{"empty subject", empty, intermediate()},
		{"path length the root does not allow", csr, with(func(s *ceremony.IntermediateSpec) { s.PathLen = 1 })},
		{"no CRL URL", csr, with(func(s *ceremony.IntermediateSpec) { s.CRLURL = "" })},
		{"ldap CRL URL", csr, with(func(s *ceremony.IntermediateSpec) { s.CRLURL = "ldap://dir.example/cn=root" })},
		{"relative CRL URL", csr, with(func(s *ceremony.IntermediateSpec) { s.CRLURL = "/crl/root.crl" })},
		{"caIssuers URL without host", csr, with(func(s *ceremony.IntermediateSpec) { s.CAIssuersURL = "http://" })},
		{"31 years", csr, with(func(s *ceremony.IntermediateSpec) { s.Validity = 31 * year })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.PlanIntermediate(newSession(l, clk), tt.csr, tt.spec); !errors.Is(err, ceremony.ErrInvalid) {
				t.Errorf("PlanIntermediate = %v, want ErrInvalid", err)
			}
		})
	}
	if len(d.State().Issued) != 0 || len(transcript(t, d)) != 1 {
		t.Fatal("a refused plan changed the ceremony directory")
	}

	t.Run("wrong passphrase", func(t *testing.T) {
		plan, err := d.PlanIntermediate(newSession(l, clk), csr, intermediate())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plan.Sign(ctx, keys(t, d, passphrase+"!")); !errors.Is(err, ceremony.ErrPassphrase) {
			t.Errorf("Sign = %v, want ErrPassphrase", err)
		}
		if len(d.State().Issued) != 0 || len(transcript(t, d)) != 1 {
			t.Error("a failed signature changed the ceremony directory")
		}
	})

	t.Run("another root's key", func(t *testing.T) {
		other := newRoot(t, l, clk)
		plan, err := d.PlanIntermediate(newSession(l, clk), csr, intermediate())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plan.Sign(ctx, keys(t, other, passphrase)); err == nil || !strings.Contains(err.Error(), "not the root certificate's key") {
			t.Errorf("Sign with another root's key = %v", err)
		}
	})

	t.Run("key file readable by others", func(t *testing.T) {
		other := newRoot(t, l, clk)
		path := filepath.Join(other.Path(), ceremony.KeyFileName)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := keys(t, other, passphrase).Open(ctx); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Open of a 0644 key file = %v", err)
		}
	})

	t.Run("expired root", func(t *testing.T) {
		late := clock.NewFake(d.Root().NotAfter.Add(time.Hour))
		if _, err := d.PlanIntermediate(newSession(l, late), csr, intermediate()); !errors.Is(err, ceremony.ErrInvalid) {
			t.Errorf("PlanIntermediate after the root expired = %v, want ErrInvalid", err)
		}
	})
}

func TestSignCRL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLinter(t)
	clk := clock.NewFake(start)
	d := newRoot(t, l, clk)
	root := d.Root()
	var serials []string
	for _, cn := range []string{"Issuing A", "Issuing B"} {
		csr, _ := newCSR(t, cn)
		plan, err := d.PlanIntermediate(newSession(l, clk), csr, intermediate())
		if err != nil {
			t.Fatal(err)
		}
		s, err := plan.Sign(ctx, keys(t, d, passphrase))
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, pki.SerialHex(s.Cert.SerialNumber))
	}
	sign := func(spec ceremony.CRLSpec) (*ceremony.SignedCRL, *x509.RevocationList) {
		t.Helper()
		c, err := d.SignCRL(ctx, newSession(l, clk), keys(t, d, passphrase), spec)
		if err != nil {
			t.Fatalf("SignCRL: %v", err)
		}
		rl, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if err := rl.CheckSignatureFrom(root); err != nil {
			t.Fatalf("CRL %d does not verify under the root: %v", c.Number, err)
		}
		if rl.Number.Cmp(big.NewInt(c.Number)) != 0 || !bytes.Equal(rl.RawIssuer, root.RawSubject) || !bytes.Equal(rl.AuthorityKeyId, root.SubjectKeyId) {
			t.Errorf("CRL number %v issuer %s AKI %x", rl.Number, rl.Issuer, rl.AuthorityKeyId)
		}
		saved, err := os.ReadFile(filepath.Join(d.Path(), c.File))
		if err != nil || !bytes.Equal(saved, c.DER) {
			t.Errorf("the copy %s: %v", c.File, err)
		}
		return c, rl
	}
	listed := func(rl *x509.RevocationList) map[string]int {
		m := map[string]int{}
		for _, e := range rl.RevokedCertificateEntries {
			m[pki.SerialHex(e.SerialNumber)] = e.ReasonCode
		}
		return m
	}

	c, rl := sign(ceremony.CRLSpec{NextUpdate: 90 * day})
	if c.Number != 1 || c.Entries != 0 || !rl.ThisUpdate.Equal(start) || !rl.NextUpdate.Equal(start.Add(90*day)) {
		t.Errorf("first CRL: number %d, %d entries, %s to %s", c.Number, c.Entries, rl.ThisUpdate, rl.NextUpdate)
	}
	clk.Set(start.Add(10 * day))
	c, rl = sign(ceremony.CRLSpec{NextUpdate: 90 * day, Revoke: []ceremony.Revocation{{Serial: strings.ToUpper(serials[0]), Reason: pki.ReasonCACompromise}}})
	if got := listed(rl); c.Number != 2 || len(got) != 1 || got[serials[0]] != int(pki.ReasonCACompromise) {
		t.Errorf("second CRL: number %d, entries %v", c.Number, got)
	}
	if e := c.Entry; e.Action != ceremony.ActionCRLSign || e.CRL.Number != 2 || len(e.CRL.Revoked) != 1 || e.CRL.Revoked[0].Serial != serials[0] {
		t.Errorf("transcript entry = %+v", e)
	}
	c, rl = sign(ceremony.CRLSpec{NextUpdate: 30 * day, Revoke: []ceremony.Revocation{{Serial: serials[1], Reason: pki.ReasonSuperseded}}})
	if got := listed(rl); c.Number != 3 || len(got) != 2 || got[serials[0]] != int(pki.ReasonCACompromise) || got[serials[1]] != int(pki.ReasonSuperseded) {
		t.Errorf("third CRL: number %d, entries %v", c.Number, got)
	}

	for _, tt := range []struct {
		name string
		spec ceremony.CRLSpec
	}{
		{"revoked already", ceremony.CRLSpec{NextUpdate: 90 * day, Revoke: []ceremony.Revocation{{Serial: serials[0], Reason: pki.ReasonSuperseded}}}},
		{"never signed", ceremony.CRLSpec{NextUpdate: 90 * day, Revoke: []ceremony.Revocation{{Serial: "0badc0de", Reason: pki.ReasonSuperseded}}}},
		{"not a serial", ceremony.CRLSpec{NextUpdate: 90 * day, Revoke: []ceremony.Revocation{{Serial: "xyz", Reason: pki.ReasonSuperseded}}}},
		{"certificateHold", ceremony.CRLSpec{NextUpdate: 90 * day, Revoke: []ceremony.Revocation{{Serial: serials[1], Reason: pki.Reason(6)}}}},
		{"an hour", ceremony.CRLSpec{NextUpdate: time.Hour}},
		{"400 days", ceremony.CRLSpec{NextUpdate: 400 * day}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.SignCRL(ctx, newSession(l, clk), keys(t, d, passphrase), tt.spec); !errors.Is(err, ceremony.ErrInvalid) {
				t.Errorf("SignCRL = %v, want ErrInvalid", err)
			}
		})
	}
	if st := d.State(); st.CRLNumber != 3 || len(st.Revoked) != 2 {
		t.Fatalf("after refusals: CRL number %d, %d revoked", st.CRLNumber, len(st.Revoked))
	}

	// A copy left by a step that failed before saving the state (the CRL
	// may have been handed out): its number is skipped.
	if err := os.WriteFile(filepath.Join(d.Path(), ceremony.CRLDirName, "0004.crl"), []byte("left over"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, _ := sign(ceremony.CRLSpec{NextUpdate: 90 * day}); c.Number != 5 {
		t.Errorf("CRL number %d after a left-over 0004.crl, want 5", c.Number)
	}
	if n := len(transcript(t, d)); n != 1+2+4 {
		t.Errorf("%d transcript lines, want 7", n)
	}
}

func TestOpenRefusesAlteredDirectory(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	clk := clock.NewFake(start)
	edit := func(t *testing.T, d *ceremony.Dir, name string, f func([]byte) []byte) {
		t.Helper()
		path := filepath.Join(d.Path(), name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	withCRL := func(t *testing.T) *ceremony.Dir {
		d := newRoot(t, l, clk)
		if _, err := d.SignCRL(context.Background(), newSession(l, clk), keys(t, d, passphrase), ceremony.CRLSpec{NextUpdate: 90 * day}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tt := range []struct {
		name  string
		alter func(*testing.T, *ceremony.Dir)
	}{
		{"a transcript line changed", func(t *testing.T, d *ceremony.Dir) {
			edit(t, d, ceremony.TranscriptFileName, func(b []byte) []byte { return bytes.Replace(b, []byte(`"alice"`), []byte(`"mallory"`), 1) })
		}},
		{"a transcript line removed", func(t *testing.T, d *ceremony.Dir) {
			edit(t, d, ceremony.TranscriptFileName, func(b []byte) []byte { _, rest, _ := bytes.Cut(b, []byte("\n")); return rest })
		}},
		{"transcript gone", func(t *testing.T, d *ceremony.Dir) { os.Remove(filepath.Join(d.Path(), ceremony.TranscriptFileName)) }},
		{"root replaced", func(t *testing.T, d *ceremony.Dir) {
			other := newRoot(t, l, clk)
			b, _ := os.ReadFile(filepath.Join(other.Path(), ceremony.RootFileName))
			edit(t, d, ceremony.RootFileName, func([]byte) []byte { return b })
		}},
		{"unknown state field", func(t *testing.T, d *ceremony.Dir) {
			edit(t, d, ceremony.StateFileName, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"version"`), []byte(`"extra": 1, "version"`), 1)
			})
		}},
		{"key file outside the directory", func(t *testing.T, d *ceremony.Dir) {
			edit(t, d, ceremony.StateFileName, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"root-key.pem"`), []byte(`"../root-key.pem"`), 1)
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := withCRL(t)
			tt.alter(t, d)
			got, err := ceremony.Open(d.Path())
			if err == nil {
				_, err = got.KeySource(ceremony.Unlock{Passphrase: passFunc(passphrase)})
			}
			if !errors.Is(err, ceremony.ErrState) {
				t.Errorf("Open of an altered directory = %v, want ErrState", err)
			}
		})
	}
	if _, err := ceremony.Open(filepath.Join(t.TempDir(), "none")); !errors.Is(err, ceremony.ErrState) {
		t.Errorf("Open of a missing directory = %v, want ErrState", err)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"20y": 20 * year, "5y": 5 * year, "90d": 90 * day, "2w": 14 * day, "36h": 36 * time.Hour} {
		if got, err := ceremony.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "y", "0y", "-1y", "101y", "1.5y", "20 years", "0d"} {
		if got, err := ceremony.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %s, want an error", in, got)
		}
	}
}
