package issue_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

// countingSigner stands in for a signer that is not one of Go's own keys
// (an HSM): it counts its signatures and, when corrupt is set, returns
// a wrong one.
type countingSigner struct {
	crypto.Signer
	n       *atomic.Int64
	corrupt bool
}

func (c countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	sig, err := c.Signer.Sign(r, digest, opts)
	if err == nil && c.corrupt {
		sig[len(sig)/2] ^= 0xff
	}
	return sig, err
}

type countingProvider struct {
	*software.Provider
	n       atomic.Int64
	corrupt bool
}

func (p *countingProvider) Signer(ctx context.Context, ref keys.Ref, purpose keys.Purpose) (crypto.Signer, error) {
	sg, err := p.Provider.Signer(ctx, ref, purpose)
	if err != nil {
		return nil, err
	}
	return countingSigner{Signer: sg, n: &p.n, corrupt: p.corrupt}, nil
}

func (e *env) countingService(t *testing.T, corrupt bool) (*issue.Service, *countingProvider) {
	t.Helper()
	kp := &countingProvider{Provider: e.kp, corrupt: corrupt}
	svc, err := issue.New(issue.Config{PublicHTTPBase: base, Clock: e.clk, Log: slog.New(slog.DiscardHandler)}, e.db, e.profiles, kp, e.linter)
	if err != nil {
		t.Fatal(err)
	}
	return svc, kp
}

// TestLintFailureNeverSigns: a certificate that fails a lint is never
// signed by the CA key; one that passes is signed exactly once.
func TestLintFailureNeverSigns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc, kp := e.countingService(t, false)
	ctx := context.Background()
	_, err := svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "web_server",
		Subject: pkix.Name{CommonName: strings.Repeat("a", 65)}, DNSNames: []string{"a.example.internal"}})
	var le *lint.Error
	if !errors.As(err, &le) {
		t.Fatalf("Issue = %v, want a lint error", err)
	}
	if n := kp.n.Load(); n != 0 {
		t.Fatalf("the CA key signed %d times for a certificate that failed lint", n)
	}
	res, err := svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "web_server",
		CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))})
	if err != nil {
		t.Fatal(err)
	}
	if n := kp.n.Load(); n != 1 {
		t.Errorf("the CA key signed %d times for one certificate, want 1", n)
	}
	if err := res.Leaf.CheckSignatureFrom(e.interCert); err != nil {
		t.Error(err)
	}
}

// TestBadSignatureRefused: a signer that is not Go's own key has its
// signature checked, and a wrong one is neither stored nor returned.
func TestBadSignatureRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc, kp := e.countingService(t, true)
	n := e.count(t)
	res, err := svc.Issue(context.Background(), issue.Request{Principal: admin, CA: "issuing", Profile: "web_server",
		CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))})
	if !errors.Is(err, issue.ErrBadSignature) {
		t.Fatalf("Issue = %+v, %v; want ErrBadSignature", res, err)
	}
	if kp.n.Load() != 1 {
		t.Errorf("signed %d times, want 1", kp.n.Load())
	}
	if got := e.count(t); got != n {
		t.Error("a certificate with a bad signature was stored")
	}
}

// TestIssueUnderEachCAKeyType: the certificate assembled around the one
// real signature parses and verifies under CAs of every key type, with
// the signature algorithm the CA's key calls for.
func TestIssueUnderEachCAKeyType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, alg := range []pki.KeyAlgorithm{pki.ECDSAP256, pki.ECDSAP384, pki.RSA2048, pki.Ed25519} {
		c := e.intermediate(t, "root", "issuing-"+string(alg), alg, 365*day, 0, nil)
		caCert := mustParse(t, c.CertDER)
		res, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: c.Name, Profile: "web_server",
			CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		leaf, err := x509.ParseCertificate(res.Cert.DER)
		if err != nil {
			t.Fatalf("%s: stored DER does not parse: %v", alg, err)
		}
		if err := leaf.CheckSignatureFrom(caCert); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
		if want := pki.SignatureAlgorithmFor(caCert.PublicKey); leaf.SignatureAlgorithm != want {
			t.Errorf("%s: signature algorithm %v, want %v", alg, leaf.SignatureAlgorithm, want)
		}
		if err := verify(leaf, append([]*x509.Certificate{caCert}, e.rootCert), e.clk.Now()); err != nil {
			t.Errorf("%s: chain: %v", alg, err)
		}
	}
}
