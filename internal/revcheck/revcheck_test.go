package revcheck

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revcheck/revchecktest"
	"github.com/certwright/certwright/internal/verify"
)

// problemsText is the report's problem messages, one a line.
func problemsText(rep *Report) string {
	var b strings.Builder
	for _, p := range rep.Problems() {
		b.WriteString(p.Message + "\n")
	}
	return b.String()
}

func TestCheck(t *testing.T) {
	t.Parallel()
	type fixture = revchecktest.Fixture
	tests := []struct {
		name    string
		opts    revchecktest.Options
		setup   func(t *testing.T, f *fixture)
		checker *Checker
		// leafOnly offers the roots but not the intermediate.
		leafOnly   bool
		wantStatus string
		// Substrings of Text(), of the problem messages and of the
		// warnings (each ends in a newline); {crl}, {ocsp}, {serial},
		// {interSerial}, {revokedAt} and {root} are replaced.
		wantText, wantProblems, wantWarnings []string
		// maxTime bounds the check, for the timeout cases.
		maxTime time.Duration
	}{
		{
			name: "good on both, OCSP signed by the issuer",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus: StatusGood,
			wantText: []string{
				`revocation: certificate "CN=app.example.internal", serial {serial}: good`,
				"  crl:  good ({crl}, number 7, next update",
				"  ocsp: good ({ocsp}, next update",
				`revocation: intermediate "CN=Rev Issuing CA", serial {interSerial}: not checked: it names no CRL distribution point and no OCSP responder`,
			},
		},
		{
			name: "good on both, OCSP signed by a delegated responder",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Responder, true, ocsp.Good)
			},
			wantStatus: StatusGood,
			wantText:   []string{`ocsp: good ({ocsp}, signed by responder "CN=Rev OCSP Responder"`},
		},
		{
			name: "revoked on both",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t, big.NewInt(99), f.Leaf.Cert.SerialNumber))
				f.OCSP = f.OCSPFresh(t, f.Responder, true, ocsp.Revoked)
			},
			wantStatus: StatusRevoked,
			wantText: []string{
				"crl:  revoked at {revokedAt}, reason key_compromise ({crl}, number 7",
				"ocsp: revoked at {revokedAt}, reason key_compromise ({ocsp}",
			},
			wantProblems: []string{"serial {serial} revoked at {revokedAt}, reason key_compromise (CRL {crl}, number 7; OCSP {ocsp})\n"},
		},
		{
			name: "revoked only in the CRL",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t, f.Leaf.Cert.SerialNumber))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus:   StatusRevoked,
			wantText:     []string{"ocsp: good"},
			wantProblems: []string{"serial {serial} revoked at {revokedAt}, reason key_compromise (CRL {crl}, number 7)\n"},
		},
		{
			name: "revoked only by OCSP",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Revoked)
			},
			wantStatus:   StatusRevoked,
			wantProblems: []string{"serial {serial} revoked at {revokedAt}, reason key_compromise (OCSP {ocsp})\n"},
		},
		{
			name: "OCSP unknown, CRL good",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Unknown)
			},
			wantStatus:   StatusGood,
			wantText:     []string{"ocsp: unknown: the responder does not know this certificate ({ocsp}"},
			wantWarnings: []string{"serial {serial}: OCSP {ocsp} does not know this certificate (status unknown); relying on the CRL, which says good\n"},
		},
		{
			name: "OCSP unknown, CRL missing",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeStatus(http.StatusNotFound)
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Unknown)
			},
			wantStatus:   StatusUndetermined,
			wantProblems: []string{"revocation status of serial {serial} could not be determined: CRL {crl}: HTTP 404 Not Found; OCSP {ocsp} does not know this certificate"},
		},
		{
			name: "CRL 404, OCSP good: good with a warning",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeStatus(http.StatusNotFound)
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus:   StatusGood,
			wantText:     []string{"crl:  could not be checked: HTTP 404 Not Found ({crl})"},
			wantWarnings: []string{"serial {serial}: CRL {crl}: HTTP 404 Not Found; relying on the OCSP responder, which says good\n"},
		},
		{
			name: "both failing: undetermined",
			opts: revchecktest.Options{DeadOCSP: true},
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeStatus(http.StatusNotFound)
			},
			wantStatus:   StatusUndetermined,
			wantText:     []string{`serial {serial}: undetermined`},
			wantProblems: []string{"revocation status of serial {serial} could not be determined: CRL {crl}: HTTP 404 Not Found; OCSP {ocsp}: cannot connect: connection refused\n"},
		},
		{
			name: "stale CRL is not good",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.MakeCRL(t, f.Inter, f.Now.Add(-50*time.Hour), f.Now.Add(-2*time.Hour)))
				f.OCSP = revchecktest.ServeStatus(http.StatusServiceUnavailable)
			},
			wantStatus:   StatusUndetermined,
			wantText:     []string{"crl:  could not be checked: stale: the CRL's next update was due"},
			wantProblems: []string{"CRL {crl}: stale: the CRL's next update was due", "(2 hours ago)", "OCSP {ocsp}: HTTP 503 Service Unavailable"},
		},
		{
			name: "stale OCSP response, CRL good",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPAnswer(t, f.Inter, false, ocsp.Good, f.Now.Add(-3*time.Hour), f.Now.Add(-time.Hour))
			},
			wantStatus:   StatusGood,
			wantWarnings: []string{"serial {serial}: OCSP {ocsp}: stale: the OCSP response's next update was due"},
		},
		{
			name: "CRL signed by the wrong key is not trusted",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.MakeCRL(t, f.Impostor, f.Now.Add(-time.Hour), f.Now.Add(time.Hour), f.Leaf.Cert.SerialNumber))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus:   StatusGood,
			wantText:     []string{`crl:  could not be checked: bad signature: the CRL is not signed by the issuer "CN=Rev Issuing CA"`},
			wantWarnings: []string{"serial {serial}: CRL {crl}: bad signature"},
		},
		{
			name: "CRL of another issuer",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.MakeCRL(t, f.Unrelated, f.Now.Add(-time.Hour), f.Now.Add(time.Hour), f.Leaf.Cert.SerialNumber))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus:   StatusGood,
			wantWarnings: []string{`serial {serial}: CRL {crl}: the CRL is issued by "CN=Unrelated CA", not by the certificate's issuer "CN=Rev Issuing CA"`},
		},
		{
			name: "OCSP signed by an unrelated key is not trusted",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Unrelated, false, ocsp.Revoked)
			},
			wantStatus:   StatusGood,
			wantText:     []string{"ocsp: could not be checked: bad signature"},
			wantWarnings: []string{"serial {serial}: OCSP {ocsp}: bad signature: the OCSP response is not signed by the issuer or a responder it delegated to"},
		},
		{
			name: "OCSP by an embedded responder of another CA is not trusted",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Unrelated, true, ocsp.Revoked)
			},
			wantStatus:   StatusGood,
			wantWarnings: []string{"serial {serial}: OCSP {ocsp}: bad signature"},
		},
		{
			name: "delegated responder without OCSPSigning is not trusted",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.NoEKU, true, ocsp.Revoked)
			},
			wantStatus:   StatusGood,
			wantWarnings: []string{`serial {serial}: OCSP {ocsp}: the OCSP responder certificate "CN=Rev Not A Responder" lacks the OCSPSigning extended key usage`},
		},
		{
			name: "OCSP responder error status",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = revchecktest.ServeBody(ocsp.TryLaterErrorResponse)
			},
			wantStatus:   StatusGood,
			wantWarnings: []string{`serial {serial}: OCSP {ocsp}: the responder answered "try later" instead of a status`},
		},
		{
			name:    "oversized CRL with a Content-Length",
			checker: &Checker{MaxCRL: 1 << 10},
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t, revchecktest.ManySerials(100)...))
				f.OCSP = revchecktest.ServeStatus(http.StatusInternalServerError)
			},
			wantStatus:   StatusUndetermined,
			wantProblems: []string{"CRL {crl}: the CRL is ", "bytes, larger than the 1 KiB limit", "OCSP {ocsp}: HTTP 500 Internal Server Error"},
		},
		{
			name:    "oversized CRL streamed",
			checker: &Checker{MaxCRL: 1 << 10},
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeChunked(f.FreshCRL(t, revchecktest.ManySerials(100)...))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus:   StatusGood,
			wantWarnings: []string{"serial {serial}: CRL {crl}: the CRL is larger than the 1 KiB limit; relying on the OCSP responder"},
		},
		{
			name:         "no URLs in the certificate",
			opts:         revchecktest.Options{NoLeafURLs: true},
			wantStatus:   StatusUndetermined,
			wantProblems: []string{"revocation status of serial {serial} could not be determined: the certificate names no CRL distribution point and no OCSP responder\n"},
		},
		{
			name:    "server that hangs",
			checker: &Checker{Timeout: 300 * time.Millisecond},
			setup: func(t *testing.T, f *fixture) {
				f.CRL = f.Hang()
				f.OCSP = f.Hang()
			},
			wantStatus:   StatusUndetermined,
			wantProblems: []string{"CRL {crl}: timed out: no complete answer within 300ms; OCSP {ocsp}: timed out: no complete answer within 300ms"},
			maxTime:      5 * time.Second,
		},
		{
			name:    "server that stalls in the body",
			checker: &Checker{Timeout: 300 * time.Millisecond},
			setup: func(t *testing.T, f *fixture) {
				f.CRL = f.Hang(f.FreshCRL(t)[:100]...)
				f.OCSP = f.Hang(0x30)
			},
			wantStatus:   StatusUndetermined,
			wantProblems: []string{"CRL {crl}: timed out: no complete answer within 300ms; OCSP {ocsp}: timed out: no complete answer within 300ms"},
			maxTime:      5 * time.Second,
		},
		{
			name: "PEM CRL behind 3 redirects",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = http.RedirectHandler("/hop/2", http.StatusFound)
				f.HopEnd = revchecktest.ServeBody(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: f.FreshCRL(t)}))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus: StatusGood,
			wantText:   []string{"crl:  good ({crl}, number 7"},
		},
		{
			name: "CRL behind 4 redirects",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = http.RedirectHandler("/hop/3", http.StatusFound)
				f.HopEnd = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus:   StatusGood,
			wantWarnings: []string{"serial {serial}: CRL {crl}: more than 3 redirects"},
		},
		{
			name: "not a CRL",
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(pki.CertPEM(f.Leaf.Cert.Raw))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus:   StatusGood,
			wantWarnings: []string{`serial {serial}: CRL {crl}: not a CRL: the PEM block is "CERTIFICATE", not "X509 CRL"`},
		},
		{
			name:     "issuer not available",
			leafOnly: true,
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantStatus:   StatusUndetermined,
			wantProblems: []string{`revocation status of serial {serial} could not be determined: its issuer "CN=Rev Issuing CA" was not found among the chain and the roots` + "\n"},
		},
		{
			name: "intermediate revoked by the root's CRL",
			opts: revchecktest.Options{InterCRL: true},
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
				f.RootCRL = revchecktest.ServeBody(f.MakeCRL(t, f.Root, f.Now.Add(-time.Hour), f.Now.Add(time.Hour), f.Inter.Cert.SerialNumber))
			},
			wantStatus:   StatusRevoked,
			wantText:     []string{`revocation: certificate "CN=app.example.internal", serial {serial}: good`, `revocation: intermediate "CN=Rev Issuing CA", serial {interSerial}: revoked`},
			wantProblems: []string{`intermediate "CN=Rev Issuing CA" (serial {interSerial}) revoked at {revokedAt}, reason key_compromise (CRL {root}, number 7)`},
		},
		{
			name: "intermediate good in the root's CRL, no OCSP for it",
			opts: revchecktest.Options{InterCRL: true},
			setup: func(t *testing.T, f *fixture) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
				f.RootCRL = revchecktest.ServeBody(f.MakeCRL(t, f.Root, f.Now.Add(-time.Hour), f.Now.Add(time.Hour), big.NewInt(5)))
			},
			// An OCSP responder the intermediate does not name is no failure: no warning.
			wantStatus: StatusGood,
			wantText:   []string{`revocation: intermediate "CN=Rev Issuing CA", serial {interSerial}: good`, "crl:  good ({root}", "ocsp: not offered: the certificate names no OCSP responder"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := revchecktest.New(t, tt.opts)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			f.Start()
			opts := f.VerifyOptions()
			if tt.leafOnly {
				opts.Intermediates = nil
			}
			rc := tt.checker
			if rc == nil {
				rc = &Checker{}
			}
			start := time.Now()
			rep := rc.Check(t.Context(), f.Leaf.Cert, opts)
			if tt.maxTime > 0 && time.Since(start) > tt.maxTime {
				t.Errorf("took %s, want under %s", time.Since(start), tt.maxTime)
			}
			text, problems := rep.Text(), problemsText(rep)
			warnings := strings.Join(rep.Warnings, "\n") + "\n"
			if rep.Status != tt.wantStatus {
				t.Fatalf("status %s, want %s\n%s\nproblems:\n%swarnings:\n%s", rep.Status, tt.wantStatus, text, problems, warnings)
			}
			// Problems are what makes verify fail: there are some
			// exactly when the status is not good.
			if (rep.Status == StatusGood) != (len(rep.Problems()) == 0) {
				t.Errorf("status %s with problems %q", rep.Status, problems)
			}
			if tt.wantStatus == StatusRevoked && rep.Problems()[0].Code != verify.CodeRevoked {
				t.Errorf("first problem %+v, want code %s", rep.Problems()[0], verify.CodeRevoked)
			}
			repl := strings.NewReplacer("{crl}", f.CRLURL, "{ocsp}", f.OCSPURL, "{root}", f.RootCRLURL,
				"{serial}", pki.SerialHex(f.Leaf.Cert.SerialNumber), "{interSerial}", pki.SerialHex(f.Inter.Cert.SerialNumber),
				"{revokedAt}", stamp(f.RevokedAt))
			for _, c := range []struct {
				what, got string
				want      []string
			}{{"text", text, tt.wantText}, {"problems", problems, tt.wantProblems}, {"warnings", warnings, tt.wantWarnings}} {
				for _, w := range c.want {
					if w = repl.Replace(w); !strings.Contains(c.got, w) {
						t.Errorf("%s lack %q:\n%s", c.what, w, c.got)
					}
				}
			}
			if len(tt.wantWarnings) == 0 && len(rep.Warnings) > 0 {
				t.Errorf("warnings %q, want none", rep.Warnings)
			}
		})
	}
}

// TestCheckStatusesAndFailures checks the stable codes of the report, which
// scripts read from --json.
func TestCheckStatusesAndFailures(t *testing.T) {
	t.Parallel()
	t.Run("revoked", func(t *testing.T) {
		t.Parallel()
		f := revchecktest.New(t, revchecktest.Options{})
		f.CRL = revchecktest.ServeBody(f.FreshCRL(t, f.Leaf.Cert.SerialNumber))
		f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Revoked)
		f.Start()
		rep := (&Checker{}).Check(t.Context(), f.Leaf.Cert, f.VerifyOptions())
		leaf := rep.Certificates[0]
		if rep.Status != StatusRevoked || leaf.Role != RoleCertificate || leaf.Serial != pki.SerialHex(f.Leaf.Cert.SerialNumber) || leaf.Status != StatusRevoked {
			t.Errorf("got %+v", rep)
		}
		// Source, URL, status, reason, CRL number, revocation time.
		var got []string
		for _, g := range leaf.Sources {
			got = append(got, strings.Join([]string{g.Source, g.URL, g.Status, g.Reason, g.CRLNumber, stamp(g.RevokedAt)}, " "))
		}
		at := stamp(f.RevokedAt)
		want := []string{
			strings.Join([]string{SourceCRL, f.CRLURL, StatusRevoked, "key_compromise", "7", at}, " "),
			strings.Join([]string{SourceOCSP, f.OCSPURL, StatusRevoked, "key_compromise", "", at}, " "),
		}
		if !slices.Equal(got, want) {
			t.Errorf("sources\n%q, want\n%q", got, want)
		}
	})
	t.Run("undetermined", func(t *testing.T) {
		t.Parallel()
		f := revchecktest.New(t, revchecktest.Options{DeadOCSP: true})
		f.CRL = revchecktest.ServeStatus(http.StatusNotFound)
		f.Start()
		rep := (&Checker{}).Check(t.Context(), f.Leaf.Cert, f.VerifyOptions())
		src := rep.Certificates[0].Sources
		if rep.Status != StatusUndetermined || len(src) != 2 || src[0].Failure != FailHTTP || src[1].Failure != FailUnreachable {
			t.Errorf("got %+v", rep)
		}
		if p := rep.Problems(); len(p) != 1 || p[0].Code != verify.CodeRevocationUndetermined {
			t.Errorf("problems %+v, want one %s", p, verify.CodeRevocationUndetermined)
		}
	})
}

// TestCheckChain checks a chain as a server presents it, the way the
// scanner does.
func TestCheckChain(t *testing.T) {
	t.Parallel()
	t.Run("revoked leaf, roots given", func(t *testing.T) {
		t.Parallel()
		f := revchecktest.New(t, revchecktest.Options{})
		f.CRL = revchecktest.ServeBody(f.FreshCRL(t, f.Leaf.Cert.SerialNumber))
		f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Revoked)
		f.Start()
		rep := (&Checker{}).CheckChain(t.Context(), []*x509.Certificate{f.Leaf.Cert, f.Inter.Cert}, []*x509.Certificate{f.Root.Cert})
		if rep.Status != StatusRevoked || len(rep.Certificates) != 2 ||
			rep.Certificates[0].Status != StatusRevoked || rep.Certificates[1].Status != StatusNotChecked {
			t.Errorf("got %+v", rep)
		}
	})
	t.Run("good leaf, root not served and not among the system roots", func(t *testing.T) {
		t.Parallel()
		f := revchecktest.New(t, revchecktest.Options{})
		f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
		f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
		f.Start()
		rep := (&Checker{}).CheckChain(t.Context(), []*x509.Certificate{f.Leaf.Cert, f.Inter.Cert}, nil)
		if rep.Status != StatusGood || len(rep.Certificates) != 2 || rep.Certificates[0].Status != StatusGood {
			t.Fatalf("got %+v", rep)
		}
		// The intermediate names no URL, so its unknown issuer does not
		// make the chain undetermined.
		if in := rep.Certificates[1]; in.Status != StatusNotChecked || !strings.Contains(in.Note, `its issuer "CN=Rev Root CA" was not found among the chain and the roots`) {
			t.Errorf("intermediate %+v", in)
		}
	})
	t.Run("empty chain", func(t *testing.T) {
		t.Parallel()
		if rep := (&Checker{}).CheckChain(t.Context(), nil, nil); rep.Status != StatusUndetermined || len(rep.Certificates) != 0 {
			t.Errorf("got %+v", rep)
		}
	})
}

// TestCheckerHTTPSettings checks the User-Agent, IssuerSources and the
// DialContext hook every fetch goes through.
func TestCheckerHTTPSettings(t *testing.T) {
	t.Parallel()
	f := revchecktest.New(t, revchecktest.Options{})
	f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
	f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
	f.Start()

	for _, tc := range []struct{ set, want string }{{"", DefaultUserAgent}, {"certwright/1.2.3", "certwright/1.2.3"}} {
		before := len(f.UserAgents())
		rep := (&Checker{UserAgent: tc.set}).Check(t.Context(), f.Leaf.Cert, f.VerifyOptions())
		if rep.Status != StatusGood {
			t.Fatalf("status %s: %s", rep.Status, rep.Text())
		}
		if got := f.UserAgents()[before:]; !slices.Equal(got, []string{tc.want, tc.want}) {
			t.Errorf("UserAgent %q: the CRL and OCSP requests had User-Agent %q, want %q each", tc.set, got, tc.want)
		}
	}

	refuse := errors.New("refused by the test's dialer")
	var dials atomic.Int32
	rc := &Checker{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return nil, refuse
		},
		IssuerSources: "the served chain",
	}
	rep := rc.Check(t.Context(), f.Leaf.Cert, f.VerifyOptions())
	if rep.Status != StatusUndetermined || dials.Load() != 2 {
		t.Fatalf("status %s after %d dials, want %s after 2: %s", rep.Status, dials.Load(), StatusUndetermined, rep.Text())
	}
	for _, s := range rep.Certificates[0].Sources {
		if s.Failure != FailUnreachable || !strings.Contains(s.Error, refuse.Error()) {
			t.Errorf("source %s: %s %q, want %s naming the dialer's error", s.Source, s.Failure, s.Error, FailUnreachable)
		}
	}
	rep = rc.Check(t.Context(), f.Leaf.Cert, verify.Options{Roots: []*x509.Certificate{f.Root.Cert}})
	if want := "was not found among the served chain"; !strings.Contains(rep.Certificates[0].Note, want) {
		t.Errorf("note %q lacks %q", rep.Certificates[0].Note, want)
	}
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
		{"next update passed", now.Add(-time.Hour), now.Add(-6 * time.Minute), FailStale, "(6 minutes ago)"},
		{"this update slightly ahead, within skew", now.Add(4 * time.Minute), now.Add(time.Hour), "", ""},
		{"this update in the future", now.Add(time.Hour), now.Add(2 * time.Hour), FailNotYetValid, "1 hour from now"},
		{"no next update, recent", now.Add(-23 * time.Hour), time.Time{}, "", ""},
		{"no next update, old", now.Add(-25 * time.Hour), time.Time{}, FailStale, "has no next update"},
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
			var se *sourceError
			if !errors.As(err, &se) || se.kind != tt.wantKind || !strings.Contains(err.Error(), tt.wantMsgSubstring) {
				t.Fatalf("fresh: %v, want %s containing %q", err, tt.wantKind, tt.wantMsgSubstring)
			}
		})
	}
}

// TestRevocationCheckerClock checks that the checker reads the time from
// its clock: a CRL that is current today is stale a week later.
func TestRevocationCheckerClock(t *testing.T) {
	t.Parallel()
	f := revchecktest.New(t, revchecktest.Options{})
	f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
	f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
	f.Start()
	rc := &Checker{Clock: clock.NewFake(f.Now.Add(7 * 24 * time.Hour))}
	rep := rc.Check(t.Context(), f.Leaf.Cert, f.VerifyOptions())
	if rep.Status != StatusUndetermined {
		t.Fatalf("status %s, want %s: %+v", rep.Status, StatusUndetermined, rep)
	}
	for _, s := range rep.Certificates[0].Sources {
		if s.Failure != FailStale {
			t.Errorf("source %s: failure %q (%s), want %s", s.Source, s.Failure, s.Error, FailStale)
		}
	}
}

// TestRevocationOfTrustAnchor: a root checked against itself has no
// issuer to ask, which is not a failure.
func TestRevocationOfTrustAnchor(t *testing.T) {
	t.Parallel()
	f := revchecktest.New(t, revchecktest.Options{})
	rep := (&Checker{}).Check(t.Context(), f.Root.Cert, verify.Options{Roots: []*x509.Certificate{f.Root.Cert}})
	if rep.Status != StatusGood || len(rep.Certificates) != 1 || rep.Certificates[0].Status != StatusNotChecked ||
		!strings.Contains(rep.Certificates[0].Note, "it is a trust anchor") {
		t.Errorf("got %+v", rep)
	}
}
