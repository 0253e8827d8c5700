package cli

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revcheck"
	"github.com/certwright/certwright/internal/revcheck/revchecktest"
)

// The revocation checker itself is tested in internal/revcheck; these
// tests cover how verify shows its report: where the text goes, the
// warnings on stderr, the error line and its hint, the JSON.

// revFiles are the fixture's certificates as verify reads them: the leaf
// with the intermediate, the leaf alone, the root.
type revFiles struct {
	*revchecktest.Fixture
	leafFile, leafOnlyFile, rootFile string
}

func newRevFiles(t *testing.T, o revchecktest.Options) *revFiles {
	t.Helper()
	f := &revFiles{Fixture: revchecktest.New(t, o)}
	dir := t.TempDir()
	f.leafFile = filepath.Join(dir, "app.pem")
	f.leafOnlyFile = filepath.Join(dir, "app-only.pem")
	f.rootFile = filepath.Join(dir, "root.pem")
	for path, data := range map[string][]byte{
		f.leafFile:     pki.CertPEM(f.Leaf.Cert.Raw, f.Inter.Cert.Raw),
		f.leafOnlyFile: pki.CertPEM(f.Leaf.Cert.Raw),
		f.rootFile:     pki.CertPEM(f.Root.Cert.Raw),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// runRevVerify runs "certwright verify --check-revocation" on the leaf:
// through Main with the default checker when rc is nil, else with rc.
func runRevVerify(t *testing.T, rc *revcheck.Checker, args ...string) (code int, stdout, stderr string) {
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
		opts  revchecktest.Options
		setup func(t *testing.T, f *revFiles)
		rc    *revcheck.Checker
		// leafOnly verifies the file without the intermediate.
		leafOnly bool
		wantCode int
		// Substrings of stdout and stderr; {crl}, {ocsp}, {serial},
		// {interSerial}, {revokedAt}, {leaf} and {root} are replaced.
		wantOut, wantErr []string
	}{
		{
			name: "good on both",
			setup: func(t *testing.T, f *revFiles) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantOut: []string{
				"roots:     {rootFile}\n",
				`revocation: certificate "CN=app.example.internal", serial {serial}: good`,
				"  crl:  good ({crl}, number 7, next update",
				"  ocsp: good ({ocsp}, next update",
				`revocation: intermediate "CN=Rev Issuing CA", serial {interSerial}: not checked: it names no CRL distribution point and no OCSP responder` + "\nvalid\n",
			},
		},
		{
			name: "revoked on both",
			setup: func(t *testing.T, f *revFiles) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t, big.NewInt(99), f.Leaf.Cert.SerialNumber))
				f.OCSP = f.OCSPFresh(t, f.Responder, true, ocsp.Revoked)
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
			name: "OCSP unknown, CRL good: a warning",
			setup: func(t *testing.T, f *revFiles) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Unknown)
			},
			wantOut: []string{"ocsp: unknown: the responder does not know this certificate ({ocsp}", "\nvalid\n"},
			wantErr: []string{"certwright: warning: serial {serial}: OCSP {ocsp} does not know this certificate (status unknown); relying on the CRL, which says good\n"},
		},
		{
			name: "CRL 404, OCSP good: passes with a warning",
			setup: func(t *testing.T, f *revFiles) {
				f.CRL = revchecktest.ServeStatus(http.StatusNotFound)
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantOut: []string{"crl:  could not be checked: HTTP 404 Not Found ({crl})", "\nvalid\n"},
			wantErr: []string{"certwright: warning: serial {serial}: CRL {crl}: HTTP 404 Not Found; relying on the OCSP responder, which says good\n"},
		},
		{
			name: "both failing: fails closed",
			opts: revchecktest.Options{DeadOCSP: true},
			setup: func(t *testing.T, f *revFiles) {
				f.CRL = revchecktest.ServeStatus(http.StatusNotFound)
			},
			wantCode: 1,
			wantOut:  []string{"[revocation_undetermined]", `serial {serial}: undetermined`, "NOT valid"},
			wantErr: []string{
				"certwright: verify {leaf}: revocation status of serial {serial} could not be determined: CRL {crl}: HTTP 404 Not Found; OCSP {ocsp}: cannot connect: connection refused\n",
				"hint: --check-revocation fails closed",
			},
		},
		{
			name: "oversized CRL, with the limits given",
			rc:   &revcheck.Checker{MaxCRL: 1 << 10},
			setup: func(t *testing.T, f *revFiles) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t, revchecktest.ManySerials(100)...))
				f.OCSP = revchecktest.ServeStatus(http.StatusInternalServerError)
			},
			wantCode: 1,
			wantErr:  []string{"CRL {crl}: the CRL is ", "bytes, larger than the 1 KiB limit", "OCSP {ocsp}: HTTP 500 Internal Server Error"},
		},
		{
			name:     "issuer not available",
			leafOnly: true,
			setup: func(t *testing.T, f *revFiles) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
			},
			wantCode: 1,
			wantOut:  []string{"[untrusted]"},
			wantErr:  []string{`revocation status of serial {serial} could not be determined: its issuer "CN=Rev Issuing CA" was not found among the certificate file, --chain and the roots (add it with --chain)`},
		},
		{
			name: "intermediate revoked by the root's CRL",
			opts: revchecktest.Options{InterCRL: true},
			setup: func(t *testing.T, f *revFiles) {
				f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
				f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
				f.RootCRL = revchecktest.ServeBody(f.MakeCRL(t, f.Root, f.Now.Add(-time.Hour), f.Now.Add(time.Hour), f.Inter.Cert.SerialNumber))
			},
			wantCode: 1,
			wantOut:  []string{`revocation: certificate "CN=app.example.internal", serial {serial}: good`, `revocation: intermediate "CN=Rev Issuing CA", serial {interSerial}: revoked`},
			wantErr:  []string{`revoked: intermediate "CN=Rev Issuing CA" (serial {interSerial}) revoked at {revokedAt}, reason key_compromise (CRL {root}, number 7)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newRevFiles(t, tt.opts)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			f.Start()
			leafFile := f.leafFile
			if tt.leafOnly {
				leafFile = f.leafOnlyFile
			}
			code, out, errOut := runRevVerify(t, tt.rc, leafFile, "--roots", f.rootFile)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			repl := strings.NewReplacer("{crl}", f.CRLURL, "{ocsp}", f.OCSPURL, "{root}", f.RootCRLURL,
				"{serial}", pki.SerialHex(f.Leaf.Cert.SerialNumber), "{interSerial}", pki.SerialHex(f.Inter.Cert.SerialNumber),
				"{revokedAt}", f.RevokedAt.UTC().Format("2006-01-02 15:04:05 UTC"), "{leaf}", leafFile, "{rootFile}", f.rootFile)
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
		f := newRevFiles(t, revchecktest.Options{})
		f.CRL = revchecktest.ServeBody(f.FreshCRL(t, f.Leaf.Cert.SerialNumber))
		f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Revoked)
		f.Start()
		code, out, _ := runRevVerify(t, nil, f.leafFile, "--roots", f.rootFile, "--json")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		o := decode(t, out)
		leaf := o.Revocation.Certificates[0]
		if o.Valid || len(o.Problems) != 1 || o.Problems[0].Code != "revoked" || o.Revocation.Status != "revoked" ||
			leaf.Role != "certificate" || leaf.Serial != pki.SerialHex(f.Leaf.Cert.SerialNumber) || leaf.Status != "revoked" {
			t.Errorf("got %+v", o)
		}
		want := []source{
			{Source: "crl", URL: f.CRLURL, Status: "revoked", Reason: "key_compromise", CRLNumber: "7", RevokedAt: f.RevokedAt},
			{Source: "ocsp", URL: f.OCSPURL, Status: "revoked", Reason: "key_compromise", RevokedAt: f.RevokedAt},
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
		f := newRevFiles(t, revchecktest.Options{DeadOCSP: true})
		f.CRL = revchecktest.ServeStatus(http.StatusNotFound)
		f.Start()
		code, out, _ := runRevVerify(t, nil, f.leafFile, "--roots", f.rootFile, "--json")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		o := decode(t, out)
		src := o.Revocation.Certificates[0].Sources
		if o.Valid || o.Revocation.Status != "undetermined" || len(o.Problems) != 1 || o.Problems[0].Code != "revocation_undetermined" ||
			len(src) != 2 || src[0].Failure != "http_error" || src[1].Failure != "unreachable" {
			t.Errorf("got %+v", o)
		}
	})

	t.Run("good with a warning", func(t *testing.T) {
		t.Parallel()
		f := newRevFiles(t, revchecktest.Options{})
		f.CRL = revchecktest.ServeStatus(http.StatusNotFound)
		f.OCSP = f.OCSPFresh(t, f.Responder, true, ocsp.Good)
		f.Start()
		code, out, errOut := runRevVerify(t, nil, f.leafFile, "--roots", f.rootFile, "--json")
		if code != 0 {
			t.Fatalf("exit %d, want 0; stderr %s", code, errOut)
		}
		o := decode(t, out)
		if !o.Valid || o.Revocation.Status != "good" || len(o.Revocation.Warnings) != 1 || !strings.Contains(errOut, o.Revocation.Warnings[0]) {
			t.Errorf("got %+v, stderr %q", o, errOut)
		}
	})
}

// TestVerifyCheckRevocationUserAgent: verify names itself and its version
// to the CRL and OCSP servers.
func TestVerifyCheckRevocationUserAgent(t *testing.T) {
	t.Parallel()
	f := newRevFiles(t, revchecktest.Options{})
	f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
	f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
	f.Start()
	if code, _, errOut := runRevVerify(t, nil, f.leafFile, "--roots", f.rootFile); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := []string{"certwright/" + version, "certwright/" + version}
	if got := f.UserAgents(); !slices.Equal(got, want) {
		t.Errorf("User-Agent headers %q, want %q", got, want)
	}
}

// TestVerifyCheckRevocationOfTrustAnchor: a root verified against itself
// has no issuer to ask, which is not a failure.
func TestVerifyCheckRevocationOfTrustAnchor(t *testing.T) {
	t.Parallel()
	f := newRevFiles(t, revchecktest.Options{})
	code, out, errOut := runRevVerify(t, nil, f.rootFile, "--roots", f.rootFile)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `revocation: certificate "CN=Rev Root CA", serial ` + pki.SerialHex(f.Root.Cert.SerialNumber) + ": not checked: it is a trust anchor"
	if !strings.Contains(out, want) || strings.Count(out, "revocation:") != 1 {
		t.Errorf("stdout lacks %q, or has more than one revocation line:\n%s", want, out)
	}
}
