package scan

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/revcheck/revchecktest"
	"github.com/certwright/certwright/internal/scan/scantest"
)

// testsslFindings are testssl.sh's JSON findings by id (without the
// " <cert#n>" suffix it adds when a server has several certificates).
type testsslFindings map[string]string

// protocols says, per version name as discovery spells it, whether
// testssl found it offered.
func (f testsslFindings) protocols(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for id, v := range map[string]string{"SSLv3": discovery.VersionSSL3, "TLS1": discovery.VersionTLS10,
		"TLS1_1": discovery.VersionTLS11, "TLS1_2": discovery.VersionTLS12, "TLS1_3": discovery.VersionTLS13} {
		finding, ok := f[id]
		if !ok {
			t.Fatalf("testssl reported no %s finding: %v", id, f)
		}
		out[v] = strings.HasPrefix(finding, "offered")
	}
	return out
}

// suites are the IANA names of the cipher suites testssl found (-e),
// sorted, and whether any of them has a forward-secret key exchange
// (its third column, "ECDH 253" or "DH 2048", against "RSA").
func (f testsslFindings) suites(t *testing.T) (names []string, fs bool) {
	t.Helper()
	for id, finding := range f {
		if !strings.HasPrefix(id, "cipher_x") {
			continue
		}
		// "xc02f  ECDHE-RSA-AES128-GCM-SHA256  ECDH 253  AESGCM  128  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
		fields := strings.Fields(finding)
		if len(fields) < 4 {
			t.Fatalf("testssl cipher finding %s: %q has too few columns", id, finding)
		}
		names = append(names, fields[len(fields)-1])
		fs = fs || fields[2] == "ECDH" || fields[2] == "DH"
	}
	if len(names) == 0 {
		t.Fatalf("testssl reported no cipher suites: %v", f)
	}
	slices.Sort(names)
	return names, fs
}

// ourSuites are the IANA names of the suites the prober found, over
// every version, sorted.
func ourSuites(o discovery.Observation) []string {
	var names []string
	for _, p := range o.Protocols {
		for _, s := range p.Suites {
			if !slices.Contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// certProblems are the certificate problems testssl found (-S), named
// as the engine's finding codes so the two can be compared: expired
// (cert_expirationStatus), self-signed or untrusted (cert_chain_of_trust),
// name mismatch (cert_trust), revoked (cert_crlRevoked or
// cert_ocspRevoked, with --phone-out).
func (f testsslFindings) certProblems(t *testing.T) []string {
	t.Helper()
	for _, id := range []string{"cert_expirationStatus", "cert_chain_of_trust", "cert_trust"} {
		if _, ok := f[id]; !ok {
			t.Fatalf("testssl reported no %s finding: %v", id, f)
		}
	}
	var out []string
	if strings.HasPrefix(f["cert_expirationStatus"], "expired") {
		out = append(out, "certificate-expired")
	}
	switch chain := f["cert_chain_of_trust"]; {
	case strings.HasPrefix(chain, "passed"):
	case strings.Contains(chain, "self signed"):
		out = append(out, "certificate-self-signed")
	case strings.Contains(chain, "expired"): // reported above
	default:
		out = append(out, "certificate-untrusted")
	}
	if strings.Contains(f["cert_trust"], "does not match") {
		out = append(out, "certificate-name-mismatch")
	}
	if f["cert_crlRevoked"] == "revoked" || f["cert_ocspRevoked"] == "revoked" {
		out = append(out, CodeCertRevoked)
	}
	slices.Sort(out)
	return out
}

// ourCertProblems are the engine's certificate findings among those
// testssl reports.
func ourCertProblems(o discovery.Observation) []string {
	var out []string
	for _, c := range findingCodes(o) {
		switch c {
		case "certificate-expired", "certificate-self-signed", "certificate-untrusted", "certificate-name-mismatch", CodeCertRevoked:
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	return out
}

// runTestssl runs testssl.sh with args against name:port (connecting
// to 127.0.0.1 whatever the name) and returns its JSON findings.
func runTestssl(ctx context.Context, bin, dir, name, addr string, args ...string) (testsslFindings, error) {
	jsonFile := filepath.Join(dir, "testssl.json")
	// --nodns none: the test has no DNS; --ip: connect to loopback but
	// send the name (SNI, the certificate name check).
	// --fast: openssl, not testssl's own sockets, tries the cipher
	// suites (-e), for about 40 % less CPU with the same findings here.
	all := append([]string{"--quiet", "--warnings", "off", "--color", "0", "--nodns", "none", "--fast",
		"--ip", "127.0.0.1", "--jsonfile", jsonFile}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, name+":"+port(addr))...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NXCONNECT=127.0.0.1:0") // do not resolve "invalid." while probing openssl
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("testssl did not finish: %w", ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return nil, fmt.Errorf("testssl: %w\n%s", err, out)
	}
	raw, err := os.ReadFile(jsonFile)
	if err != nil {
		return nil, fmt.Errorf("testssl wrote no JSON (%w):\n%s", err, out)
	}
	var list []struct{ ID, Finding string }
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("testssl JSON: %w", err)
	}
	f := testsslFindings{}
	for _, e := range list {
		id, _, _ := strings.Cut(e.ID, " ")
		f[id] = e.Finding
	}
	return f, nil
}

// httpsServer serves cfg as HTTPS on a loopback port (testssl reads the
// service from an HTTP answer).
func httpsServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // testssl's probes fail handshakes on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestCrossCheckTestssl holds the scanner to testssl.sh, server by
// server, over the test servers of TestEngineGrades' kinds: a strict Go
// server, an openssl server with TLS 1.0 enabled (legacy), an openssl
// server without forward secrecy, and the STARTTLS SMTP server are
// compared on the protocols offered, the set of cipher suites and
// forward secrecy (-p -e); the strict server and the expired,
// wrong-name, self-signed and revoked ones on their certificate
// problems (-S, and --phone-out for the revoked one's CRL and OCSP
// answers). testssl 3.0 prints no overall rating, so the findings the
// grade is computed from are what is compared.
//
// testssl costs some 20 to 40 s of CPU per run here, so the eight runs
// go two at a time; the test runs only without -short.
func TestCrossCheckTestssl(t *testing.T) {
	if testing.Short() {
		t.Skip("testssl takes minutes: skipped with -short")
	}
	bin, err := exec.LookPath("testssl")
	if err != nil {
		if bin, err = exec.LookPath("testssl.sh"); err != nil {
			t.Skip("testssl not installed (Debian package testssl.sh)")
		}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed (Debian package openssl)")
	}
	t.Parallel()

	root := revchecktest.Issue(t, revchecktest.CATemplate("Scan Test Root", 1), nil, nil)
	inter := revchecktest.Issue(t, revchecktest.CATemplate("Scan Test Issuing CA", 0), nil, root)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := revchecktest.Issue(t, leafTemplate(nil), nil, inter)
	goodRSA := revchecktest.Issue(t, leafTemplate(nil), rsaKey, inter)
	expired := revchecktest.Issue(t, leafTemplate(func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-60*24*time.Hour), time.Now().Add(-24*time.Hour)
	}), nil, inter)
	otherName := revchecktest.Issue(t, leafTemplate(func(c *x509.Certificate) {
		c.Subject.CommonName, c.DNSNames = "other.test", []string{"other.test"}
	}), nil, inter)
	self := revchecktest.Issue(t, leafTemplate(nil), nil, nil)
	strictCfg := func(c tls.Certificate) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	}
	openssl := func(args ...string) string {
		certPEM, keyPEM := scantest.PEM(t, []*x509.Certificate{goodRSA.Cert, inter.Cert}, goodRSA.Key)
		return scantest.StartOpenSSL(t, certPEM, keyPEM, args...)
	}

	// The revoked server: its leaf and intermediate revoked in the CRL
	// and the OCSP answer its certificate points at (loopback).
	fx := revchecktest.New(t, revchecktest.Options{})
	fx.CRL = revchecktest.ServeBody(fx.FreshCRL(t, fx.Leaf.Cert.SerialNumber))
	fx.OCSP = fx.OCSPFresh(t, fx.Inter, false, ocsp.Revoked)
	fx.Start()

	dir := t.TempDir()
	cas := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(cas, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.Root.Cert.Raw})...), 0o600); err != nil {
		t.Fatal(err)
	}

	const (
		checkTLS  = 1 << iota // protocols, suites, forward secrecy: -p -e
		checkCert             // certificate problems: -S
	)
	servers := []struct {
		name   string
		host   string
		addr   string
		checks int
		args   []string // more testssl arguments
		// What both must find, so that agreeing on nothing fails:
		// protocols that must be offered, whether forward secrecy is,
		// and the certificate problems.
		offered  []string
		fs       bool
		problems []string
	}{
		{name: "strict", host: "svc.test", addr: httpsServer(t, strictCfg(tlsCert(good, inter))), checks: checkTLS | checkCert,
			offered: []string{discovery.VersionTLS12, discovery.VersionTLS13}, fs: true},
		{name: "legacy (TLS 1.0 on)", host: "svc.test", addr: openssl("-cipher", "DEFAULT@SECLEVEL=0"), checks: checkTLS,
			offered: []string{discovery.VersionTLS10, discovery.VersionTLS11, discovery.VersionTLS12, discovery.VersionTLS13}, fs: true},
		{name: "no forward secrecy", host: "svc.test", addr: openssl("-no_tls1_3", "-cipher", "AES128-GCM-SHA256:AES256-SHA"), checks: checkTLS,
			offered: []string{discovery.VersionTLS12}},
		{name: "STARTTLS SMTP", host: "svc.test", checks: checkTLS, args: []string{"--starttls", "smtp"},
			offered: []string{discovery.VersionTLS12, discovery.VersionTLS13}, fs: true,
			addr: func() string {
				a, _ := scantest.ServeLoopback(t, smtpServer(strictCfg(tlsCert(good, inter))))
				return a
			}()},
		{name: "expired", host: "svc.test", addr: httpsServer(t, strictCfg(tlsCert(expired, inter))), checks: checkCert,
			problems: []string{"certificate-expired"}},
		{name: "wrong name", host: "svc.test", addr: httpsServer(t, strictCfg(tlsCert(otherName, inter))), checks: checkCert,
			problems: []string{"certificate-name-mismatch"}},
		{name: "self-signed", host: "svc.test", addr: httpsServer(t, strictCfg(tlsCert(self))), checks: checkCert,
			problems: []string{"certificate-self-signed"}},
		{name: "revoked", host: "app.example.internal", addr: httpsServer(t, strictCfg(tlsCert(fx.Leaf, fx.Inter))), checks: checkCert,
			args: []string{"--phone-out"}, problems: []string{CodeCertRevoked}},
	}

	e := testEngine(t, EngineConfig{Roots: []*x509.Certificate{root.Cert, fx.Root.Cert},
		Fetch: FetchPolicy{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute) // 4 minutes on two idle cores
	defer cancel()
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	results := make([]testsslFindings, len(servers))
	errs := make([]error, len(servers))
	for i, s := range servers {
		var args []string
		if s.checks&checkTLS != 0 {
			args = append(args, "-p", "-e")
		}
		if s.checks&checkCert != 0 {
			args = append(args, "-S", "--add-ca", cas)
			if s.checks == checkCert {
				// Certificates only: openssl's handshakes, not testssl's
				// own sockets, for about a fifth less CPU (328 s to 263 s for the
				// whole test, measured once on a busy machine).
				args = append(args, "--ssl-native")
			}
		}
		args = append(args, s.args...)
		sub := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			results[i], errs[i] = runTestssl(ctx, bin, sub, s.host, s.addr, args...)
		}()
	}
	wg.Wait()

	for i, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			if errs[i] != nil {
				t.Fatalf("testssl on %s: %v", s.addr, errs[i])
			}
			theirs := results[i]
			o := scanOne(t, e, s.host+":"+port(s.addr))
			if !o.Reachable || o.Grade == nil {
				t.Fatalf("reachable %v, grade %v, error %q: want a graded TLS endpoint", o.Reachable, o.Grade, o.Error)
			}
			if s.checks&checkTLS != 0 {
				offered := theirs.protocols(t)
				for _, v := range []string{discovery.VersionSSL3, discovery.VersionTLS10, discovery.VersionTLS11, discovery.VersionTLS12, discovery.VersionTLS13} {
					if ours := slices.Contains(o.Versions, v); ours != offered[v] {
						t.Errorf("%s: testssl says offered=%t, we say %t (versions %v)", v, offered[v], ours, o.Versions)
					}
				}
				for _, v := range s.offered {
					if !offered[v] {
						t.Errorf("testssl does not find %s offered; the server is set up to offer it", v)
					}
				}
				names, fs := theirs.suites(t)
				if fs != s.fs {
					t.Errorf("testssl finds forward secrecy offered=%t; the server is set up for %t", fs, s.fs)
				}
				if ours := ourSuites(o); !slices.Equal(ours, names) {
					t.Errorf("cipher suites:\n ours    %v\n testssl %v", ours, names)
				}
				if ours := o.ForwardSecrecy != discovery.FSNone; ours != fs {
					t.Errorf("forward secrecy offered: ours %t (%q), testssl's %t", ours, o.ForwardSecrecy, fs)
				}
			}
			if s.checks&checkCert != 0 {
				them := theirs.certProblems(t)
				if !slices.Equal(them, s.problems) {
					t.Errorf("testssl finds the certificate problems %v; the server is set up for %v", them, s.problems)
				}
				if ours := ourCertProblems(o); !slices.Equal(ours, them) {
					t.Errorf("certificate problems: ours %v, testssl's %v (chain of trust %q, trust %q, expiry %q, CRL %q, OCSP %q)",
						ours, them, theirs["cert_chain_of_trust"], theirs["cert_trust"], theirs["cert_expirationStatus"],
						theirs["cert_crlRevoked"], theirs["cert_ocspRevoked"])
				}
			}
		})
	}
}
