// Package revchecktest serves the revocation sources of a test chain for
// tests of revcheck and of its callers: New makes root -> intermediate ->
// leaf, whose CRL distribution point and OCSP responder are a loopback
// httptest server; a test sets the handlers (good, revoked, stale, too
// large, hanging, signed by the wrong key) and then starts the server.
package revchecktest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/verify"
)

// CA is a certificate and its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Options shape the chain New makes.
type Options struct {
	// NoLeafURLs leaves the CRL and OCSP URLs out of the leaf.
	NoLeafURLs bool
	// DeadOCSP points the leaf's OCSP URL at a closed port.
	DeadOCSP bool
	// InterCRL gives the intermediate a CRL distribution point on the
	// server (RootCRLURL, served by RootCRL).
	InterCRL bool
}

// Fixture is root -> intermediate -> leaf and the server of their
// revocation sources. Set the handlers, then call Start.
type Fixture struct {
	// Server is not started by New; Start starts it.
	Server *httptest.Server
	// Base is the server's http:// URL.
	Base string
	// release unblocks hanging handlers so the server can close.
	release chan struct{}

	Root, Inter, Leaf *CA
	// Responder is a delegated OCSP responder of Inter; NoEKU is the
	// same without the OCSPSigning extended key usage.
	Responder, NoEKU *CA
	// Impostor has Inter's name but another key; Unrelated is another CA.
	Impostor, Unrelated *CA

	// CRLURL and OCSPURL are the leaf's; RootCRLURL the intermediate's
	// with InterCRL.
	CRLURL, OCSPURL, RootCRLURL string
	// RevokedAt is the revocation time of every revoked answer; Now is
	// when the fixture was made.
	RevokedAt, Now time.Time

	// CRL, OCSP and RootCRL serve the URLs in the certificates; HopEnd
	// serves /hop/0, where /hop/N redirects N times. All answer 404
	// until set.
	CRL, OCSP, RootCRL, HopEnd http.Handler

	mu     sync.Mutex
	agents []string
}

// New makes the chain and an unstarted server; t's cleanup closes it.
func New(t testing.TB, o Options) *Fixture {
	t.Helper()
	f := &Fixture{release: make(chan struct{}), Now: time.Now().UTC()}
	f.RevokedAt = f.Now.Add(-48 * time.Hour).Truncate(time.Second)
	notFound := http.NotFoundHandler()
	f.CRL, f.OCSP, f.RootCRL, f.HopEnd = notFound, notFound, notFound, notFound

	mux := http.NewServeMux()
	mux.HandleFunc("/crl/inter.crl", func(w http.ResponseWriter, r *http.Request) { f.CRL.ServeHTTP(w, r) })
	mux.HandleFunc("/ocsp/inter", func(w http.ResponseWriter, r *http.Request) { f.OCSP.ServeHTTP(w, r) })
	mux.HandleFunc("/crl/root.crl", func(w http.ResponseWriter, r *http.Request) { f.RootCRL.ServeHTTP(w, r) })
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n <= 0 {
			f.HopEnd.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.agents = append(f.agents, r.UserAgent())
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(f.release)
		f.Server.Close()
	})
	f.Base = "http://" + f.Server.Listener.Addr().String()
	f.CRLURL = f.Base + "/crl/inter.crl"
	f.OCSPURL = f.Base + "/ocsp/inter"
	f.RootCRLURL = f.Base + "/crl/root.crl"
	if o.DeadOCSP {
		f.OCSPURL = "http://" + ClosedAddr(t) + "/ocsp/inter"
	}

	f.Root = Issue(t, CATemplate("Rev Root CA", 1), nil, nil)
	interTmpl := CATemplate("Rev Issuing CA", 0)
	if o.InterCRL {
		interTmpl.CRLDistributionPoints = []string{f.RootCRLURL}
	}
	f.Inter = Issue(t, interTmpl, nil, f.Root)
	leafTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "app.example.internal"},
		DNSNames:              []string{"app.example.internal"},
		NotBefore:             f.Now.Add(-time.Hour),
		NotAfter:              f.Now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if !o.NoLeafURLs {
		leafTmpl.CRLDistributionPoints = []string{f.CRLURL}
		leafTmpl.OCSPServer = []string{f.OCSPURL}
	}
	f.Leaf = Issue(t, leafTmpl, nil, f.Inter)
	f.Responder = Issue(t, responderTemplate("Rev OCSP Responder", x509.ExtKeyUsageOCSPSigning), nil, f.Inter)
	f.NoEKU = Issue(t, responderTemplate("Rev Not A Responder", x509.ExtKeyUsageServerAuth), nil, f.Inter)
	f.Impostor = Issue(t, CATemplate("Rev Issuing CA", 0), nil, f.Root)
	f.Unrelated = Issue(t, CATemplate("Unrelated CA", 0), nil, nil)
	return f
}

// Start starts the server, once the handlers are set.
func (f *Fixture) Start() { f.Server.Start() }

// UserAgents are the User-Agent headers of the requests served so far,
// in order.
func (f *Fixture) UserAgents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.agents)
}

// VerifyOptions offer the intermediate and trust the root.
func (f *Fixture) VerifyOptions() verify.Options {
	return verify.Options{Intermediates: []*x509.Certificate{f.Inter.Cert}, Roots: []*x509.Certificate{f.Root.Cert}}
}

// Issue certifies key (nil: a new P-256 key) with tmpl, signed by parent
// (nil: self-signed), giving it a random serial and a subject key
// identifier.
func Issue(t testing.TB, tmpl *x509.Certificate, key crypto.Signer, parent *CA) *CA {
	t.Helper()
	var err error
	if key == nil {
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if tmpl.SerialNumber, err = pki.NewSerial(nil); err != nil {
		t.Fatal(err)
	}
	if tmpl.SubjectKeyId, err = pki.SubjectKeyID(key.Public()); err != nil {
		t.Fatal(err)
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: c, Key: key}
}

// CATemplate is a CA certificate named cn, valid from a year ago for ten
// years, with the path length constraint pathLen.
func CATemplate(cn string, pathLen int) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-365 * 24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            pathLen,
		MaxPathLenZero:        pathLen == 0,
	}
}

func responderTemplate(cn string, eku x509.ExtKeyUsage) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{eku},
		BasicConstraintsValid: true,
	}
}

// ClosedAddr returns a loopback address where nothing listens.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// MakeCRL returns a DER CRL number 7 signed by signer, revoking serials
// with reason keyCompromise at f.RevokedAt.
func (f *Fixture) MakeCRL(t testing.TB, signer *CA, thisUpdate, nextUpdate time.Time, serials ...*big.Int) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: s, RevocationTime: f.RevokedAt, ReasonCode: int(pki.ReasonKeyCompromise),
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, signer.Cert, signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// FreshCRL is a current CRL of the intermediate revoking serials.
func (f *Fixture) FreshCRL(t testing.TB, serials ...*big.Int) []byte {
	t.Helper()
	return f.MakeCRL(t, f.Inter, f.Now.Add(-time.Hour), f.Now.Add(24*time.Hour), serials...)
}

// ManySerials returns n serials, to make a CRL large.
func ManySerials(n int) []*big.Int {
	out := make([]*big.Int, n)
	for i := range out {
		out[i] = big.NewInt(int64(1000 + i))
	}
	return out
}

// ServeBody answers body with its Content-Length.
func ServeBody(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
}

// ServeChunked sends body without a Content-Length.
func ServeChunked(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for b := body; len(b) > 0; {
			n := min(512, len(b))
			w.Write(b[:n])
			w.(http.Flusher).Flush()
			b = b[n:]
		}
	}
}

// ServeStatus answers code.
func ServeStatus(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Error(w, http.StatusText(code), code) }
}

// Hang answers nothing until the client gives up; with a prefix, it first
// sends the headers and those bytes of the body.
func (f *Fixture) Hang(prefix ...byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(prefix) > 0 {
			w.WriteHeader(http.StatusOK)
			w.Write(prefix)
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
	}
}

// OCSPAnswer answers for f.Leaf with the status st (ocsp.Good, Revoked
// or Unknown), signed by signer; embed includes the signer's certificate
// (a delegated responder). A request that is not a POST of the leaf's
// SHA-1 CertID fails t.
func (f *Fixture) OCSPAnswer(t testing.TB, signer *CA, embed bool, st int, thisUpdate, nextUpdate time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/ocsp-request" {
			t.Errorf("OCSP request %s with Content-Type %q, want POST application/ocsp-request", r.Method, r.Header.Get("Content-Type"))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			t.Errorf("OCSP request does not parse: %v", err)
			w.Write(ocsp.MalformedRequestErrorResponse)
			return
		}
		wantDER, err := ocsp.CreateRequest(f.Leaf.Cert, f.Inter.Cert, nil)
		if err != nil {
			t.Errorf("create the expected OCSP request: %v", err)
		}
		want, _ := ocsp.ParseRequest(wantDER)
		if req.HashAlgorithm != crypto.SHA1 || req.SerialNumber.Cmp(f.Leaf.Cert.SerialNumber) != 0 ||
			!bytes.Equal(req.IssuerKeyHash, want.IssuerKeyHash) || !bytes.Equal(req.IssuerNameHash, want.IssuerNameHash) {
			t.Errorf("OCSP request %+v, want SHA-1 CertID of the leaf under the intermediate", req)
			w.Write(ocsp.UnauthorizedErrorResponse)
			return
		}
		tmpl := ocsp.Response{
			Status: st, SerialNumber: req.SerialNumber, ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
		}
		if st == ocsp.Revoked {
			tmpl.RevokedAt, tmpl.RevocationReason = f.RevokedAt, ocsp.KeyCompromise
		}
		if embed {
			tmpl.Certificate = signer.Cert
		}
		der, err := ocsp.CreateResponse(f.Inter.Cert, signer.Cert, tmpl, signer.Key)
		if err != nil {
			t.Errorf("create OCSP response: %v", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der)
	}
}

// OCSPFresh is OCSPAnswer with a response current for an hour either side
// of f.Now.
func (f *Fixture) OCSPFresh(t testing.TB, signer *CA, embed bool, st int) http.HandlerFunc {
	return f.OCSPAnswer(t, signer, embed, st, f.Now.Add(-time.Hour), f.Now.Add(time.Hour))
}
