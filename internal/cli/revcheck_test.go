package cli

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/verify"
)

// revFixture is root -> intermediate -> leaf, whose CRL distribution point
// and OCSP responder are served by a loopback httptest server. Handlers are
// set before the server starts.
type revFixture struct {
	srv  *httptest.Server
	base string
	// release unblocks hanging handlers so the server can close.
	release chan struct{}

	root, inter, leaf *testCA
	// responder is a delegated OCSP responder of inter; noEKU is the same
	// without the OCSPSigning extended key usage.
	responder, noEKU *testCA
	// impostor has inter's name but another key; unrelated is another CA.
	impostor, unrelated *testCA

	crlURL, ocspURL string
	revokedAt       time.Time
	now             time.Time

	// Files: leaf + intermediate, leaf alone, root.
	leafFile, leafOnlyFile, rootFile string

	// crl, ocsp and rootCRL serve the URLs in the certificates; hopEnd
	// serves /hop/0, where /hop/N redirects N times.
	crl, ocsp, rootCRL, hopEnd http.Handler
}

type revFixtureOpts struct {
	noLeafURLs bool
	// deadOCSP points the leaf's OCSP URL at a closed port.
	deadOCSP bool
	// interCRL gives the intermediate a CRL distribution point on the root.
	interCRL bool
}

func newRevFixture(t *testing.T, o revFixtureOpts) *revFixture {
	t.Helper()
	f := &revFixture{release: make(chan struct{}), now: time.Now().UTC()}
	f.revokedAt = f.now.Add(-48 * time.Hour).Truncate(time.Second)
	notFound := http.NotFoundHandler()
	f.crl, f.ocsp, f.rootCRL, f.hopEnd = notFound, notFound, notFound, notFound

	mux := http.NewServeMux()
	mux.HandleFunc("/crl/inter.crl", func(w http.ResponseWriter, r *http.Request) { f.crl.ServeHTTP(w, r) })
	mux.HandleFunc("/ocsp/inter", func(w http.ResponseWriter, r *http.Request) { f.ocsp.ServeHTTP(w, r) })
	mux.HandleFunc("/crl/root.crl", func(w http.ResponseWriter, r *http.Request) { f.rootCRL.ServeHTTP(w, r) })
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n <= 0 {
			f.hopEnd.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	f.srv = httptest.NewUnstartedServer(mux)
	t.Cleanup(func() {
		close(f.release)
		f.srv.Close()
	})
	f.base = "http://" + f.srv.Listener.Addr().String()
	f.crlURL = f.base + "/crl/inter.crl"
	f.ocspURL = f.base + "/ocsp/inter"
	if o.deadOCSP {
		f.ocspURL = "http://" + closedAddr(t) + "/ocsp/inter"
	}

	f.root = issueCert(t, caTemplate("Rev Root CA", 1), newKey(t), nil)
	interTmpl := caTemplate("Rev Issuing CA", 0)
	if o.interCRL {
		interTmpl.CRLDistributionPoints = []string{f.base + "/crl/root.crl"}
	}
	f.inter = issueCert(t, interTmpl, newKey(t), f.root)
	leafTmpl := leafTemplate("app.example.internal", f.now.Add(-time.Hour), f.now.Add(30*24*time.Hour))
	if !o.noLeafURLs {
		leafTmpl.CRLDistributionPoints = []string{f.crlURL}
		leafTmpl.OCSPServer = []string{f.ocspURL}
	}
	f.leaf = issueCert(t, leafTmpl, newKey(t), f.inter)
	f.responder = issueCert(t, responderTemplate("Rev OCSP Responder", x509.ExtKeyUsageOCSPSigning), newKey(t), f.inter)
	f.noEKU = issueCert(t, responderTemplate("Rev Not A Responder", x509.ExtKeyUsageServerAuth), newKey(t), f.inter)
	f.impostor = issueCert(t, caTemplate("Rev Issuing CA", 0), newKey(t), f.root)
	f.unrelated = issueCert(t, caTemplate("Unrelated CA", 0), newKey(t), nil)

	dir := t.TempDir()
	f.leafFile = filepath.Join(dir, "app.pem")
	f.leafOnlyFile = filepath.Join(dir, "app-only.pem")
	f.rootFile = filepath.Join(dir, "root.pem")
	for path, data := range map[string][]byte{
		f.leafFile:     pki.CertPEM(f.leaf.cert.Raw, f.inter.cert.Raw),
		f.leafOnlyFile: pki.CertPEM(f.leaf.cert.Raw),
		f.rootFile:     pki.CertPEM(f.root.cert.Raw),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
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

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// makeCRL returns a DER CRL number 7 signed by signer, revoking serials
// with reason keyCompromise at f.revokedAt.
func (f *revFixture) makeCRL(t *testing.T, signer *testCA, thisUpdate, nextUpdate time.Time, serials ...*big.Int) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: s, RevocationTime: f.revokedAt, ReasonCode: int(pki.ReasonKeyCompromise),
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, signer.cert, signer.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// freshCRL is a current CRL of the intermediate revoking serials.
func (f *revFixture) freshCRL(t *testing.T, serials ...*big.Int) []byte {
	t.Helper()
	return f.makeCRL(t, f.inter, f.now.Add(-time.Hour), f.now.Add(24*time.Hour), serials...)
}

func serveBody(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
}

// serveChunked sends body without a Content-Length.
func serveChunked(body []byte) http.HandlerFunc {
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

func serveStatus(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Error(w, http.StatusText(code), code) }
}

// hang answers nothing until the client gives up; with a prefix, it first
// sends the headers and those bytes of the body.
func (f *revFixture) hang(prefix ...byte) http.HandlerFunc {
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

// ocspAnswer answers for f.leaf with the given status, signed by signer;
// embed includes the signer's certificate (a delegated responder).
func (f *revFixture) ocspAnswer(t *testing.T, signer *testCA, embed bool, st int, thisUpdate, nextUpdate time.Time) http.HandlerFunc {
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
		want, _ := ocsp.ParseRequest(mustOCSPRequest(t, f.leaf.cert, f.inter.cert))
		if req.HashAlgorithm != crypto.SHA1 || req.SerialNumber.Cmp(f.leaf.cert.SerialNumber) != 0 ||
			!bytes.Equal(req.IssuerKeyHash, want.IssuerKeyHash) || !bytes.Equal(req.IssuerNameHash, want.IssuerNameHash) {
			t.Errorf("OCSP request %+v, want SHA-1 CertID of the leaf under the intermediate", req)
			w.Write(ocsp.UnauthorizedErrorResponse)
			return
		}
		tmpl := ocsp.Response{
			Status: st, SerialNumber: req.SerialNumber, ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
		}
		if st == ocsp.Revoked {
			tmpl.RevokedAt, tmpl.RevocationReason = f.revokedAt, ocsp.KeyCompromise
		}
		if embed {
			tmpl.Certificate = signer.cert
		}
		der, err := ocsp.CreateResponse(f.inter.cert, signer.cert, tmpl, signer.key)
		if err != nil {
			t.Errorf("create OCSP response: %v", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der)
	}
}

func (f *revFixture) ocspFresh(t *testing.T, signer *testCA, embed bool, st int) http.HandlerFunc {
	return f.ocspAnswer(t, signer, embed, st, f.now.Add(-time.Hour), f.now.Add(time.Hour))
}

func verifyOptsFor(f *revFixture) verify.Options {
	return verify.Options{Intermediates: []*x509.Certificate{f.inter.cert}, Roots: []*x509.Certificate{f.root.cert}}
}

func mustOCSPRequest(t *testing.T, cert, issuer *x509.Certificate) []byte {
	t.Helper()
	der, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		t.Error(err)
	}
	return der
}

// runRevVerify runs "certwright verify --check-revocation" on the leaf:
// through Main with the default limits when rc is nil, else with rc.
func runRevVerify(t *testing.T, rc *revChecker, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if rc == nil {
		return run(t, nil, append([]string{"verify", "--check-revocation"}, args...)...)
	}
	var out, errb bytes.Buffer
	r := &runner{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(string) string { return "" },
		path:   []string{"verify"}, cmd: findCommand(commandTree(), "verify"),
	}
	code = report(&errb, runVerifyWith(t.Context(), r, append([]string{"--check-revocation"}, args...), rc), wantsJSON(args))
	return code, out.String(), errb.String()
}

func TestVerifyCheckRevocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  revFixtureOpts
		setup func(t *testing.T, f *revFixture)
		rc    *revChecker
		// leafOnly verifies the file without the intermediate.
		leafOnly bool
		wantCode int
		// Substrings of stdout and stderr; {crl}, {ocsp}, {serial},
		// {interSerial}, {revokedAt}, {leaf} and {root} are replaced.
		wantOut, wantErr []string
		// maxTime bounds the run, for the timeout case.
		maxTime time.Duration
	}{
		{
			name: "good on both, OCSP signed by the issuer",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantOut: []string{
				`revocation: certificate "CN=app.example.internal", serial {serial}: good`,
				"  crl:  good ({crl}, number 7, next update",
				"  ocsp: good ({ocsp}, next update",
				`revocation: intermediate "CN=Rev Issuing CA", serial {interSerial}: not checked: it names no CRL distribution point and no OCSP responder`,
				"\nvalid\n",
			},
		},
		{
			name: "good on both, OCSP signed by a delegated responder",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.responder, true, ocsp.Good)
			},
			wantOut: []string{`ocsp: good ({ocsp}, signed by responder "CN=Rev OCSP Responder"`, "\nvalid\n"},
		},
		{
			name: "revoked on both",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t, big.NewInt(99), f.leaf.cert.SerialNumber))
				f.ocsp = f.ocspFresh(t, f.responder, true, ocsp.Revoked)
			},
			wantCode: 1,
			wantOut: []string{
				"problem:   [revoked] serial {serial} revoked at {revokedAt}, reason key_compromise",
				"crl:  revoked at {revokedAt}, reason key_compromise ({crl}, number 7",
				"ocsp: revoked at {revokedAt}, reason key_compromise ({ocsp}",
				"NOT valid: 1 problem(s)",
			},
			wantErr: []string{"certwright: verify {leaf}: revoked: serial {serial} revoked at {revokedAt}, reason key_compromise (CRL {crl}, number 7; OCSP {ocsp})\n"},
		},
		{
			name: "revoked only in the CRL",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t, f.leaf.cert.SerialNumber))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantCode: 1,
			wantOut:  []string{"ocsp: good"},
			wantErr:  []string{"revoked: serial {serial} revoked at {revokedAt}, reason key_compromise (CRL {crl}, number 7)\n"},
		},
		{
			name: "revoked only by OCSP",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Revoked)
			},
			wantCode: 1,
			wantErr:  []string{"revoked: serial {serial} revoked at {revokedAt}, reason key_compromise (OCSP {ocsp})\n"},
		},
		{
			name: "OCSP unknown, CRL good",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Unknown)
			},
			wantOut: []string{"ocsp: unknown: the responder does not know this certificate ({ocsp}", "\nvalid\n"},
			wantErr: []string{"certwright: warning: serial {serial}: OCSP {ocsp} does not know this certificate (status unknown); relying on the CRL, which says good\n"},
		},
		{
			name: "OCSP unknown, CRL missing",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveStatus(http.StatusNotFound)
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Unknown)
			},
			wantCode: 1,
			wantErr:  []string{"revocation status of serial {serial} could not be determined: CRL {crl}: HTTP 404 Not Found; OCSP {ocsp} does not know this certificate"},
		},
		{
			name: "CRL 404, OCSP good: passes with a warning",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveStatus(http.StatusNotFound)
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantOut: []string{"crl:  could not be checked: HTTP 404 Not Found ({crl})", "\nvalid\n"},
			wantErr: []string{"certwright: warning: serial {serial}: CRL {crl}: HTTP 404 Not Found; relying on the OCSP responder, which says good\n"},
		},
		{
			name: "both failing: fails closed",
			opts: revFixtureOpts{deadOCSP: true},
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveStatus(http.StatusNotFound)
			},
			wantCode: 1,
			wantOut:  []string{"[revocation_undetermined]", `serial {serial}: undetermined`, "NOT valid"},
			wantErr: []string{
				"certwright: verify {leaf}: revocation status of serial {serial} could not be determined: CRL {crl}: HTTP 404 Not Found; OCSP {ocsp}: cannot connect: connection refused\n",
				"hint: --check-revocation fails closed",
			},
		},
		{
			name: "stale CRL is not good",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.makeCRL(t, f.inter, f.now.Add(-50*time.Hour), f.now.Add(-2*time.Hour)))
				f.ocsp = serveStatus(http.StatusServiceUnavailable)
			},
			wantCode: 1,
			wantOut:  []string{"crl:  could not be checked: stale: the CRL's next update was due"},
			wantErr:  []string{"CRL {crl}: stale: the CRL's next update was due", "(2 hours ago)", "OCSP {ocsp}: HTTP 503 Service Unavailable"},
		},
		{
			name: "stale OCSP response, CRL good",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspAnswer(t, f.inter, false, ocsp.Good, f.now.Add(-3*time.Hour), f.now.Add(-time.Hour))
			},
			wantErr: []string{"warning: serial {serial}: OCSP {ocsp}: stale: the OCSP response's next update was due"},
		},
		{
			name: "CRL signed by the wrong key is not trusted",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.makeCRL(t, f.impostor, f.now.Add(-time.Hour), f.now.Add(time.Hour), f.leaf.cert.SerialNumber))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantOut: []string{`crl:  could not be checked: bad signature: the CRL is not signed by the issuer "CN=Rev Issuing CA"`, "\nvalid\n"},
			wantErr: []string{"warning: serial {serial}: CRL {crl}: bad signature"},
		},
		{
			name: "CRL of another issuer",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.makeCRL(t, f.unrelated, f.now.Add(-time.Hour), f.now.Add(time.Hour), f.leaf.cert.SerialNumber))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantErr: []string{`warning: serial {serial}: CRL {crl}: the CRL is issued by "CN=Unrelated CA", not by the certificate's issuer "CN=Rev Issuing CA"`},
		},
		{
			name: "OCSP signed by an unrelated key is not trusted",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.unrelated, false, ocsp.Revoked)
			},
			wantOut: []string{"ocsp: could not be checked: bad signature", "\nvalid\n"},
			wantErr: []string{"warning: serial {serial}: OCSP {ocsp}: bad signature: the OCSP response is not signed by the issuer or a responder it delegated to"},
		},
		{
			name: "OCSP by an embedded responder of another CA is not trusted",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.unrelated, true, ocsp.Revoked)
			},
			wantErr: []string{"warning: serial {serial}: OCSP {ocsp}: bad signature"},
		},
		{
			name: "delegated responder without OCSPSigning is not trusted",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.noEKU, true, ocsp.Revoked)
			},
			wantErr: []string{`warning: serial {serial}: OCSP {ocsp}: the OCSP responder certificate "CN=Rev Not A Responder" lacks the OCSPSigning extended key usage`},
		},
		{
			name: "OCSP responder error status",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = serveBody(ocsp.TryLaterErrorResponse)
			},
			wantErr: []string{`warning: serial {serial}: OCSP {ocsp}: the responder answered "try later" instead of a status`},
		},
		{
			name: "oversized CRL with a Content-Length",
			rc:   &revChecker{maxCRL: 1 << 10},
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t, manySerials(100)...))
				f.ocsp = serveStatus(http.StatusInternalServerError)
			},
			wantCode: 1,
			wantErr:  []string{"CRL {crl}: the CRL is ", "bytes, larger than the 1 KiB limit", "OCSP {ocsp}: HTTP 500 Internal Server Error"},
		},
		{
			name: "oversized CRL streamed",
			rc:   &revChecker{maxCRL: 1 << 10},
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveChunked(f.freshCRL(t, manySerials(100)...))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantErr: []string{"warning: serial {serial}: CRL {crl}: the CRL is larger than the 1 KiB limit; relying on the OCSP responder"},
		},
		{
			name:     "no URLs in the certificate",
			opts:     revFixtureOpts{noLeafURLs: true},
			wantCode: 1,
			wantErr:  []string{"revocation status of serial {serial} could not be determined: the certificate names no CRL distribution point and no OCSP responder\n"},
		},
		{
			name: "server that hangs",
			rc:   &revChecker{timeout: 300 * time.Millisecond},
			setup: func(t *testing.T, f *revFixture) {
				f.crl = f.hang()
				f.ocsp = f.hang()
			},
			wantCode: 1,
			wantErr:  []string{"CRL {crl}: timed out: no complete answer within 300ms; OCSP {ocsp}: timed out: no complete answer within 300ms"},
			maxTime:  5 * time.Second,
		},
		{
			name: "server that stalls in the body",
			rc:   &revChecker{timeout: 300 * time.Millisecond},
			setup: func(t *testing.T, f *revFixture) {
				f.crl = f.hang(f.freshCRL(t)[:100]...)
				f.ocsp = f.hang(0x30)
			},
			wantCode: 1,
			wantErr:  []string{"CRL {crl}: timed out: no complete answer within 300ms; OCSP {ocsp}: timed out: no complete answer within 300ms"},
			maxTime:  5 * time.Second,
		},
		{
			name: "PEM CRL behind 3 redirects",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = http.RedirectHandler("/hop/2", http.StatusFound)
				f.hopEnd = serveBody(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: f.freshCRL(t)}))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantOut: []string{"crl:  good ({crl}, number 7", "\nvalid\n"},
		},
		{
			name: "CRL behind 4 redirects",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = http.RedirectHandler("/hop/3", http.StatusFound)
				f.hopEnd = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantErr: []string{"warning: serial {serial}: CRL {crl}: more than 3 redirects"},
		},
		{
			name: "not a CRL",
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(pki.CertPEM(f.leaf.cert.Raw))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantErr: []string{`warning: serial {serial}: CRL {crl}: not a CRL: the PEM block is "CERTIFICATE", not "X509 CRL"`},
		},
		{
			name:     "issuer not available",
			leafOnly: true,
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
			},
			wantCode: 1,
			wantOut:  []string{"[untrusted]"},
			wantErr:  []string{`revocation status of serial {serial} could not be determined: its issuer "CN=Rev Issuing CA" was not found among the certificate file, --chain and the roots (add it with --chain)`},
		},
		{
			name: "intermediate revoked by the root's CRL",
			opts: revFixtureOpts{interCRL: true},
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
				f.rootCRL = serveBody(f.makeCRL(t, f.root, f.now.Add(-time.Hour), f.now.Add(time.Hour), f.inter.cert.SerialNumber))
			},
			wantCode: 1,
			wantOut:  []string{`revocation: certificate "CN=app.example.internal", serial {serial}: good`, `revocation: intermediate "CN=Rev Issuing CA", serial {interSerial}: revoked`},
			wantErr:  []string{`revoked: intermediate "CN=Rev Issuing CA" (serial {interSerial}) revoked at {revokedAt}, reason key_compromise (CRL {root}, number 7)`},
		},
		{
			name: "intermediate good in the root's CRL, no OCSP for it",
			opts: revFixtureOpts{interCRL: true},
			setup: func(t *testing.T, f *revFixture) {
				f.crl = serveBody(f.freshCRL(t))
				f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
				f.rootCRL = serveBody(f.makeCRL(t, f.root, f.now.Add(-time.Hour), f.now.Add(time.Hour), big.NewInt(5)))
			},
			// An OCSP responder the intermediate does not name is no failure: no warning.
			wantOut: []string{`revocation: intermediate "CN=Rev Issuing CA", serial {interSerial}: good`, "crl:  good ({root}", "ocsp: not offered: the certificate names no OCSP responder", "\nvalid\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newRevFixture(t, tt.opts)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			f.srv.Start()
			leafFile := f.leafFile
			if tt.leafOnly {
				leafFile = f.leafOnlyFile
			}
			start := time.Now()
			code, out, errOut := runRevVerify(t, tt.rc, leafFile, "--roots", f.rootFile)
			if tt.maxTime > 0 && time.Since(start) > tt.maxTime {
				t.Errorf("took %s, want under %s", time.Since(start), tt.maxTime)
			}
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			repl := strings.NewReplacer("{crl}", f.crlURL, "{ocsp}", f.ocspURL, "{root}", f.base+"/crl/root.crl",
				"{serial}", pki.SerialHex(f.leaf.cert.SerialNumber), "{interSerial}", pki.SerialHex(f.inter.cert.SerialNumber),
				"{revokedAt}", revStamp(f.revokedAt), "{leaf}", leafFile)
			for _, w := range tt.wantOut {
				if w = repl.Replace(w); !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantErr {
				if w = repl.Replace(w); !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if len(tt.wantErr) == 0 && errOut != "" {
				t.Errorf("stderr %q, want nothing", errOut)
			}
		})
	}
}

func manySerials(n int) []*big.Int {
	out := make([]*big.Int, n)
	for i := range out {
		out[i] = big.NewInt(int64(1000 + i))
	}
	return out
}

func TestVerifyCheckRevocationJSON(t *testing.T) {
	t.Parallel()
	type source struct {
		Source, URL, Status, Reason, Failure, Error string
		CRLNumber                                   string    `json:"crl_number"`
		RevokedAt                                   time.Time `json:"revoked_at"`
	}
	type output struct {
		Valid    bool
		Problems []struct{ Code, Message string }
		// Revocation is absent without --check-revocation.
		Revocation *struct {
			Status       string
			Warnings     []string
			Certificates []struct {
				Role, Serial, Status string
				Sources              []source
			}
		}
	}
	decode := func(t *testing.T, out string) output {
		t.Helper()
		var o output
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, out)
		}
		if o.Revocation == nil || len(o.Revocation.Certificates) == 0 {
			t.Fatalf("no revocation report:\n%s", out)
		}
		return o
	}

	t.Run("revoked", func(t *testing.T) {
		t.Parallel()
		f := newRevFixture(t, revFixtureOpts{})
		f.crl = serveBody(f.freshCRL(t, f.leaf.cert.SerialNumber))
		f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Revoked)
		f.srv.Start()
		code, out, _ := runRevVerify(t, nil, f.leafFile, "--roots", f.rootFile, "--json")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		o := decode(t, out)
		leaf := o.Revocation.Certificates[0]
		if o.Valid || len(o.Problems) != 1 || o.Problems[0].Code != codeRevoked || o.Revocation.Status != revRevoked ||
			leaf.Role != "certificate" || leaf.Serial != pki.SerialHex(f.leaf.cert.SerialNumber) || leaf.Status != revRevoked {
			t.Errorf("got %+v", o)
		}
		want := []source{
			{Source: sourceCRL, URL: f.crlURL, Status: revRevoked, Reason: "key_compromise", CRLNumber: "7", RevokedAt: f.revokedAt},
			{Source: sourceOCSP, URL: f.ocspURL, Status: revRevoked, Reason: "key_compromise", RevokedAt: f.revokedAt},
		}
		if len(leaf.Sources) != len(want) {
			t.Fatalf("sources %+v, want %+v", leaf.Sources, want)
		}
		for i, w := range want {
			if g := leaf.Sources[i]; g.Source != w.Source || g.URL != w.URL || g.Status != w.Status ||
				g.Reason != w.Reason || g.CRLNumber != w.CRLNumber || !g.RevokedAt.Equal(w.RevokedAt) {
				t.Errorf("source %d = %+v, want %+v", i, g, w)
			}
		}
	})

	t.Run("undetermined", func(t *testing.T) {
		t.Parallel()
		f := newRevFixture(t, revFixtureOpts{deadOCSP: true})
		f.crl = serveStatus(http.StatusNotFound)
		f.srv.Start()
		code, out, _ := runRevVerify(t, nil, f.leafFile, "--roots", f.rootFile, "--json")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		o := decode(t, out)
		src := o.Revocation.Certificates[0].Sources
		if o.Valid || o.Revocation.Status != revUndetermined || len(o.Problems) != 1 || o.Problems[0].Code != codeRevocationUndetermined ||
			len(src) != 2 || src[0].Failure != failHTTP || src[1].Failure != failUnreachable {
			t.Errorf("got %+v", o)
		}
	})

	t.Run("good with a warning", func(t *testing.T) {
		t.Parallel()
		f := newRevFixture(t, revFixtureOpts{})
		f.crl = serveStatus(http.StatusNotFound)
		f.ocsp = f.ocspFresh(t, f.responder, true, ocsp.Good)
		f.srv.Start()
		code, out, errOut := runRevVerify(t, nil, f.leafFile, "--roots", f.rootFile, "--json")
		if code != 0 {
			t.Fatalf("exit %d, want 0; stderr %s", code, errOut)
		}
		o := decode(t, out)
		if !o.Valid || o.Revocation.Status != revGood || len(o.Revocation.Warnings) != 1 || !strings.Contains(errOut, o.Revocation.Warnings[0]) {
			t.Errorf("got %+v, stderr %q", o, errOut)
		}
	})
}

// TestRevocationFreshness checks the thisUpdate/nextUpdate rules, with
// the clock skew allowance, on a fake clock.
func TestRevocationFreshness(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	const skew = 5 * time.Minute
	tests := []struct {
		name             string
		this, next       time.Time
		wantKind         string // "" for fresh
		wantMsgSubstring string
	}{
		{"current", now.Add(-time.Hour), now.Add(time.Hour), "", ""},
		{"next update just passed, within skew", now.Add(-time.Hour), now.Add(-4 * time.Minute), "", ""},
		{"next update passed", now.Add(-time.Hour), now.Add(-6 * time.Minute), failStale, "(6 minutes ago)"},
		{"this update slightly ahead, within skew", now.Add(4 * time.Minute), now.Add(time.Hour), "", ""},
		{"this update in the future", now.Add(time.Hour), now.Add(2 * time.Hour), failNotYetValid, "1 hour from now"},
		{"no next update, recent", now.Add(-23 * time.Hour), time.Time{}, "", ""},
		{"no next update, old", now.Add(-25 * time.Hour), time.Time{}, failStale, "has no next update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkFreshness("CRL", tt.this, tt.next, now, skew)
			if tt.wantKind == "" {
				if err != nil {
					t.Fatalf("fresh: %v, want nil", err)
				}
				return
			}
			var re *revError
			if !errors.As(err, &re) || re.kind != tt.wantKind || !strings.Contains(err.Error(), tt.wantMsgSubstring) {
				t.Fatalf("fresh: %v, want %s containing %q", err, tt.wantKind, tt.wantMsgSubstring)
			}
		})
	}
}

// TestRevocationCheckerClock checks that the checker reads the time from
// its clock: a CRL that is current today is stale a week later.
func TestRevocationCheckerClock(t *testing.T) {
	t.Parallel()
	f := newRevFixture(t, revFixtureOpts{})
	f.crl = serveBody(f.freshCRL(t))
	f.ocsp = f.ocspFresh(t, f.inter, false, ocsp.Good)
	f.srv.Start()
	rc := &revChecker{clock: clock.NewFake(f.now.Add(7 * 24 * time.Hour))}
	rep := rc.check(t.Context(), f.leaf.cert, verifyOptsFor(f))
	if rep.Status != revUndetermined {
		t.Fatalf("status %s, want %s: %+v", rep.Status, revUndetermined, rep)
	}
	for _, s := range rep.Certificates[0].Sources {
		if s.Failure != failStale {
			t.Errorf("source %s: failure %q (%s), want %s", s.Source, s.Failure, s.Error, failStale)
		}
	}
}

// TestRevocationOfTrustAnchor: a root verified against itself has no
// issuer to ask, which is not a failure.
func TestRevocationOfTrustAnchor(t *testing.T) {
	t.Parallel()
	f := newRevFixture(t, revFixtureOpts{})
	f.srv.Start()
	code, out, errOut := runRevVerify(t, nil, f.rootFile, "--roots", f.rootFile)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `revocation: certificate "CN=Rev Root CA", serial ` + pki.SerialHex(f.root.cert.SerialNumber) + ": not checked: it is a trust anchor"
	if !strings.Contains(out, want) || strings.Count(out, "revocation:") != 1 {
		t.Errorf("stdout lacks %q, or has more than one revocation line:\n%s", want, out)
	}
}
