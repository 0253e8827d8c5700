package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// syncBuffer is a log sink safe for the agent and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a host directory with an agent configuration for a fake server.
type env struct {
	t                 *testing.T
	f                 *fakeServer
	dir               string
	cfgPath           string
	cert, chain, key  string
	reloadLog, script string
	logs              *syncBuffer
}

// newEnv writes agent.yaml for one entry "web" (app.internal) whose
// reload runs a script that appends to reload.log; extra is appended to
// the entry.
func newEnv(t *testing.T, f *fakeServer, extra string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, f: f, dir: dir, cfgPath: filepath.Join(dir, "agent.yaml"),
		cert: filepath.Join(dir, "tls", "cert.pem"), chain: filepath.Join(dir, "tls", "chain.pem"),
		key: filepath.Join(dir, "tls", "key.pem"), reloadLog: filepath.Join(dir, "reload.log"),
		script: filepath.Join(dir, "reload.sh"), logs: &syncBuffer{}}
	if err := os.Mkdir(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agent.token"), []byte(f.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.writeRoot(t, dir)
	e.setReload("echo \"reloaded $CERTWRIGHT_ENTRY $CERTWRIGHT_SERIAL\" >> " + e.reloadLog)
	cfg := fmt.Sprintf(`server: %s
ca_file: root.pem
token_file: agent.token
certificates:
  - name: web
    dns_names: [app.internal]
    profile: internal_service
    cert: tls/cert.pem
    chain: tls/chain.pem
    key: tls/key.pem
    reload: %s
%s`, f.srv.URL, e.script, extra)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// setReload replaces the reload script's body.
func (e *env) setReload(body string) {
	e.t.Helper()
	if err := os.WriteFile(e.script, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) agent(opts Options) *Agent {
	e.t.Helper()
	cfg, err := LoadConfig(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(e.logs, nil))
	}
	a, err := New(cfg, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(a.Close)
	return a
}

// deployed reads the leaf, chain and key on disk and checks they fit.
func (e *env) deployed() (*x509.Certificate, []byte) {
	e.t.Helper()
	certPEM, err := os.ReadFile(e.cert)
	if err != nil {
		e.t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(e.key)
	if err != nil {
		e.t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		e.t.Fatalf("cert and key on disk do not form a pair: %v", err)
	}
	return pair.Leaf, keyPEM
}

func (e *env) snapshot() map[string][]byte {
	e.t.Helper()
	out := map[string][]byte{}
	for _, p := range []string{e.cert, e.chain, e.key} {
		b, err := os.ReadFile(p)
		if err != nil {
			e.t.Fatal(err)
		}
		out[p] = b
	}
	return out
}

func (e *env) assertUnchanged(before map[string][]byte) {
	e.t.Helper()
	for p, b := range before {
		now, err := os.ReadFile(p)
		if err != nil {
			e.t.Fatalf("%s is gone: %v", p, err)
		}
		if !bytes.Equal(now, b) {
			e.t.Errorf("%s changed", filepath.Base(p))
		}
	}
}

func (e *env) reloads() []string {
	b, err := os.ReadFile(e.reloadLog)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestRunOnceIssuesThenKeeps(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	a := e.agent(Options{Hostname: "web-1"})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatalf("first cycle: %v", err)
	}
	leaf, _ := e.deployed()
	req := f.lastSign()
	if req.Replaces != "" || req.RenewalKind != "" || req.Profile != "internal_service" {
		t.Errorf("first issuance sent replaces %q, renewal_kind %q, profile %q; want none, none, internal_service", req.Replaces, req.RenewalKind, req.Profile)
	}
	csr, err := pki.ParseCSR([]byte(req.CSRPEM))
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "app.internal" || len(csr.DNSNames) != 1 || csr.DNSNames[0] != "app.internal" {
		t.Errorf("CSR subject %q names %v, want app.internal", csr.Subject.CommonName, csr.DNSNames)
	}
	if alg, _ := pki.AlgorithmOf(csr.PublicKey); alg != pki.ECDSAP256 {
		t.Errorf("key type %s, want the default ecdsa-p256", alg)
	}
	for path, want := range map[string]os.FileMode{e.key: 0o600, e.cert: 0o644, e.chain: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", filepath.Base(path), fi.Mode().Perm(), want)
		}
	}
	// The chain file and the cert file's tail both chain the leaf to the root.
	chainPEM, err := os.ReadFile(e.chain)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	if !inter.AppendCertsFromPEM(chainPEM) {
		t.Fatal("chain file holds no certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "app.internal"}); err != nil {
		t.Errorf("deployed leaf does not verify to the root: %v", err)
	}
	certPEM, _ := os.ReadFile(e.cert)
	if n := bytes.Count(certPEM, []byte("BEGIN CERTIFICATE")); n != 2 {
		t.Errorf("cert file holds %d certificates, want the leaf and the issuing CA", n)
	}
	if got := e.reloads(); len(got) != 1 || got[0] != "reloaded web "+pki.SerialHex(leaf.SerialNumber) {
		t.Errorf("reload log %q, want one reload with the entry name and new serial", got)
	}

	// Second cycle: not due, nothing signed, files untouched.
	before := e.snapshot()
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatalf("second cycle: %v", err)
	}
	if n := f.signCount(); n != 1 {
		t.Errorf("%d sign requests after a cycle with nothing due, want 1", n)
	}
	e.assertUnchanged(before)
	if len(e.reloads()) != 1 {
		t.Error("reloaded although nothing changed")
	}
	logs := e.logs.String()
	for _, want := range []string{"action=issue", "action=keep", "entry=web", "serial=" + pki.SerialHex(leaf.SerialNumber), "not_after="} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, `msg="agent decision"`); n != 2 {
		t.Errorf("%d decision lines for two cycles of one entry, want 2:\n%s", n, logs)
	}
}

func TestRunOnceRenewsWhenServerAsks(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	a := e.agent(Options{})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	old, oldKey := e.deployed()
	oldSerial := pki.SerialHex(old.SerialNumber)
	f.setRenewNow(oldSerial)
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := f.lastSign()
	if req.Replaces != oldSerial || req.RenewalKind != "agent" {
		t.Errorf("renewal sent replaces %q renewal_kind %q, want %s and agent", req.Replaces, req.RenewalKind, oldSerial)
	}
	renewed, newKey := e.deployed()
	if renewed.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("the certificate on disk was not replaced")
	}
	if bytes.Equal(oldKey, newKey) {
		t.Error("the renewal reused the key: every renewal needs a new one")
	}
	f.mu.Lock()
	linked := f.certs[oldSerial].renewedBy
	f.mu.Unlock()
	if linked != pki.SerialHex(renewed.SerialNumber) {
		t.Errorf("server links the old certificate to %q, want %s", linked, pki.SerialHex(renewed.SerialNumber))
	}
	if !strings.Contains(e.logs.String(), "action=renew") || !strings.Contains(e.logs.String(), "requested") {
		t.Errorf("no renew decision with the server's reason logged:\n%s", e.logs)
	}
}

// TestRunOnceCorrectsClockSkew: the decision follows the server's clock,
// whichever way the host's clock is off.
func TestRunOnceCorrectsClockSkew(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	// The host's clock is 70 days fast: past the window by its own
	// reckoning, not by the server's.
	fast := func() time.Time { return time.Now().Add(70 * 24 * time.Hour) }
	a := e.agent(Options{Clock: fast})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.signCount(); n != 1 {
		t.Fatalf("%d sign requests with a fast host clock, want 1: the skew must be corrected", n)
	}
	// Now the server is 61 days ahead (window opens at 60 of 90 days) and
	// the host's clock is right.
	f.mu.Lock()
	f.skew = 61 * 24 * time.Hour
	f.mu.Unlock()
	b := e.agent(Options{})
	if err := b.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.signCount(); n != 2 {
		t.Fatalf("%d sign requests once the server's clock is in the window, want 2", n)
	}
	if !strings.Contains(e.logs.String(), "renewal window opened") {
		t.Errorf("no window decision logged:\n%s", e.logs)
	}
}

func TestRunOnceRenewBefore(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "    renew_before: 100d\n")
	a := e.agent(Options{})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.signCount(); n != 2 {
		t.Fatalf("%d sign requests, want 2: 90-day certificates have less than renew_before 100d left", n)
	}
	if f.lastSign().Replaces == "" {
		t.Error("renew_before renewal sent no replaces")
	}
}

// TestRunOnceReissues: files the agent cannot use are replaced by a new
// certificate; replaces is sent only when the server knows the old one.
func TestRunOnceReissues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		spoil        func(t *testing.T, e *env)
		wantReplaces bool
	}{
		{"key does not match", func(t *testing.T, e *env) {
			if err := os.WriteFile(e.key, encodeKey(t, mustKey(t)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"cert unparsable", func(t *testing.T, e *env) {
			if err := os.WriteFile(e.cert, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"chain missing", func(t *testing.T, e *env) {
			if err := os.Remove(e.chain); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"names changed", func(t *testing.T, e *env) {
			b, _ := os.ReadFile(e.cfgPath)
			if err := os.WriteFile(e.cfgPath, bytes.Replace(b, []byte("[app.internal]"), []byte("[app.internal, api.internal]"), 1), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"unknown to the server", func(t *testing.T, e *env) {
			k := mustKey(t)
			c := e.f.ca.leaf(t, k.Public(), time.Now().Add(-time.Hour), 24*time.Hour, []string{"app.internal"}, nil)
			if err := os.WriteFile(e.cert, []byte(pemOf(c, e.f.ca.issuing)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.key, encodeKey(t, k), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t, false)
			e := newEnv(t, f, "")
			if err := e.agent(Options{}).RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			first := pki.SerialHex(mustLeaf(t, e.cert).SerialNumber)
			tt.spoil(t, e)
			if err := e.agent(Options{}).RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := f.signCount(); n != 2 {
				t.Fatalf("%d sign requests, want a new certificate", n)
			}
			leaf, _ := e.deployed()
			if got := pki.SerialHex(leaf.SerialNumber); got == first {
				t.Error("the old certificate is still deployed")
			}
			replaces := f.lastSign().Replaces
			if tt.wantReplaces && replaces != first {
				t.Errorf("replaces %q, want the old serial %s", replaces, first)
			}
			if !tt.wantReplaces && replaces != "" {
				t.Errorf("replaces %q, want none", replaces)
			}
		})
	}
}

func mustLeaf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// TestRunOnceServerUnavailable: a 5xx or an unreachable server leaves the
// files exactly as they were and reports a retryable error.
func TestRunOnceServerUnavailable(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	a := e.agent(Options{})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.setRenewNow(pki.SerialHex(mustLeaf(t, e.cert).SerialNumber))
	before := e.snapshot()

	f.setDown(true)
	err := a.RunOnce(context.Background())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("RunOnce with the server answering 503: %v, want ErrUnavailable", err)
	}
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Entry != "web" {
		t.Errorf("error %v does not name the entry", err)
	}
	e.assertUnchanged(before)

	f.srv.Close()
	if err := a.RunOnce(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("RunOnce with the server down: %v, want ErrUnavailable", err)
	}
	e.assertUnchanged(before)
	if st := a.states["web"]; st.failures != 2 || !st.next.After(time.Now()) {
		t.Errorf("after two failures: failures %d, next %s; want 2 and a later retry", st.failures, st.next)
	}
}

// TestRunOnceReloadFailure: the new files stay, the failure is reported
// to the server, and the reload alone is retried until it works.
func TestRunOnceReloadFailure(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	e.setReload("echo 'cannot reach the service' >&2; exit 3")
	a := e.agent(Options{Hostname: "web-1"})
	err := a.RunOnce(context.Background())
	if !errors.Is(err, ErrDeploy) {
		t.Fatalf("RunOnce with a failing reload: %v, want ErrDeploy", err)
	}
	leaf, _ := e.deployed()
	serial := pki.SerialHex(leaf.SerialNumber)
	fails := f.deployFailures()
	if len(fails) != 1 {
		t.Fatalf("%d deploy-failed reports, want 1", len(fails))
	}
	if r := fails[0]; r.Entry != "web" || r.Host != "web-1" || r.Serial != serial ||
		!strings.Contains(r.Error, "exit status 3") || !strings.Contains(r.Error, "cannot reach the service") {
		t.Errorf("report %+v, want entry web, host web-1, serial %s and the command's status and output", r, serial)
	}

	// Still failing: retried without a new certificate, reported again.
	if err := a.RunOnce(context.Background()); !errors.Is(err, ErrDeploy) {
		t.Fatalf("second cycle: %v, want ErrDeploy", err)
	}
	if n := f.signCount(); n != 1 {
		t.Errorf("%d sign requests, want 1: a failed reload is retried, not re-issued", n)
	}
	if n := len(f.deployFailures()); n != 2 {
		t.Errorf("%d reports, want 2", n)
	}

	// Fixed: the reload runs once more and the retry state clears.
	e.setReload("echo \"reloaded $CERTWRIGHT_SERIAL\" >> " + e.reloadLog)
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatalf("cycle with the reload fixed: %v", err)
	}
	if got := e.reloads(); len(got) != 1 || got[0] != "reloaded "+serial {
		t.Errorf("reloads %q, want one for %s", got, serial)
	}
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.reloads()); n != 1 {
		t.Errorf("%d reloads after the retry succeeded, want 1", n)
	}
	if n := f.signCount(); n != 1 {
		t.Errorf("%d sign requests, want 1", n)
	}
}

// TestStateDirKeepsPendingReload: a restarted agent still retries the
// reload that failed before it stopped.
func TestStateDirKeepsPendingReload(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	b, _ := os.ReadFile(e.cfgPath)
	if err := os.WriteFile(e.cfgPath, append([]byte("state_dir: state\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	e.setReload("exit 1")
	if err := e.agent(Options{}).RunOnce(context.Background()); !errors.Is(err, ErrDeploy) {
		t.Fatalf("RunOnce: %v, want ErrDeploy", err)
	}
	fi, err := os.Stat(filepath.Join(e.dir, "state", stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %04o, want 0600", fi.Mode().Perm())
	}
	e.setReload("echo reloaded >> " + e.reloadLog)
	if err := e.agent(Options{}).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.reloads()); n != 1 {
		t.Errorf("%d reloads by the restarted agent, want 1", n)
	}
	if n := f.signCount(); n != 1 {
		t.Errorf("%d sign requests, want 1", n)
	}
}

// TestRunOnceWriteFailure: when the files cannot be written the old ones
// stay, and the certificate already issued is written at the next cycle
// instead of asking for another.
func TestRunOnceWriteFailure(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	a := e.agent(Options{})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.setRenewNow(pki.SerialHex(mustLeaf(t, e.cert).SerialNumber))
	before := e.snapshot()
	a.fs = &faultFS{failWrite: func(p string) error {
		if p == e.chain {
			return syscall.ENOSPC
		}
		return nil
	}}
	err := a.RunOnce(context.Background())
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("RunOnce on a full disk: %v, want ENOSPC", err)
	}
	e.assertUnchanged(before)
	assertNoScratch(t, filepath.Dir(e.cert))
	if len(e.reloads()) != 1 {
		t.Error("reloaded although the files were not written")
	}

	a.fs = osFiles{}
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.signCount(); n != 2 {
		t.Errorf("%d sign requests, want 2: the issued certificate is written, not issued again", n)
	}
	leaf, _ := e.deployed()
	f.mu.Lock()
	_, known := f.certs[pki.SerialHex(leaf.SerialNumber)]
	f.mu.Unlock()
	if !known || pki.SerialHex(leaf.SerialNumber) == pki.SerialHex(mustLeafFromBytes(t, before[e.cert]).SerialNumber) {
		t.Error("the certificate issued during the failed cycle is not the one deployed")
	}
}

func mustLeafFromBytes(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	certs, err := pki.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// fileServer is a TLS server on 127.0.0.1 that presents whatever cert
// and key files are on disk at each handshake (or a fixed certificate).
func fileServer(t *testing.T, certFile, keyFile string, fixed *tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if fixed != nil {
			return fixed, nil
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &c, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRunOnceCheck(t *testing.T) {
	t.Parallel()
	t.Run("serves the new certificate", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, false)
		e := newEnv(t, f, "    check: 127.0.0.1:1\n")
		// A server presenting the env's files, whatever they are at each handshake.
		rewriteCheck(t, e, fileServer(t, e.cert, e.key, nil))
		if err := e.agent(Options{}).RunOnce(context.Background()); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		if !strings.Contains(e.logs.String(), "agent check") {
			t.Errorf("no check logged:\n%s", e.logs)
		}
	})
	t.Run("serves an old certificate", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, false)
		k := mustKey(t)
		other := f.ca.leaf(t, k.Public(), time.Now().Add(-time.Hour), time.Hour, []string{"app.internal"}, nil)
		addr := fileServer(t, "", "", &tls.Certificate{Certificate: [][]byte{other.Raw}, PrivateKey: k})
		e := newEnv(t, f, "    check: "+addr+"\n    check_timeout: 3s\n") // room for a loaded machine
		start := time.Now()
		err := e.agent(Options{}).RunOnce(context.Background())
		if !errors.Is(err, ErrDeploy) {
			t.Fatalf("RunOnce: %v, want ErrDeploy", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("check_timeout 3s took %s", d)
		}
		if !strings.Contains(err.Error(), pki.SerialHex(other.SerialNumber)) {
			t.Errorf("error %q does not name the serial served", err)
		}
		fails := f.deployFailures()
		if len(fails) != 1 || !strings.Contains(fails[0].Error, "check") {
			t.Errorf("reports %+v, want one naming the check", fails)
		}
	})
}

// TestRunOnceCheckRevocation: after the check finds the new certificate
// served, the agent asks the CRL the certificate names, from this host: a
// revoked certificate fails the deployment and is reported to the server;
// a CRL out of reach (refused, or hanging past check_timeout) is a
// warning, or a failure under check_revocation: require; off asks nothing.
func TestRunOnceCheckRevocation(t *testing.T) {
	t.Parallel()
	// setup returns an env whose check is served the env's files.
	setup := func(t *testing.T, f *fakeServer, extra string) *env {
		e := newEnv(t, f, "    check: 127.0.0.1:1\n"+extra)
		rewriteCheck(t, e, fileServer(t, e.cert, e.key, nil))
		return e
	}
	t.Run("revoked", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, false)
		hits := f.serveCRL(t, true)
		e := setup(t, f, "")
		err := e.agent(Options{}).RunOnce(context.Background())
		if !errors.Is(err, ErrDeploy) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("RunOnce: %v, want ErrDeploy naming the revocation", err)
		}
		leaf, _ := e.deployed()
		serial := pki.SerialHex(leaf.SerialNumber)
		fails := f.deployFailures()
		if len(fails) != 1 || fails[0].Serial != serial || !strings.Contains(fails[0].Error, "revoked certificate") || !strings.Contains(fails[0].Error, "serial "+serial) {
			t.Errorf("reports %+v, want one naming the revoked serial %s", fails, serial)
		}
		if hits.Load() == 0 {
			t.Error("the CRL was never fetched")
		}
	})
	t.Run("good", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, false)
		hits := f.serveCRL(t, false)
		e := setup(t, f, "")
		if err := e.agent(Options{}).RunOnce(context.Background()); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		if hits.Load() == 0 || !strings.Contains(e.logs.String(), `msg="agent revocation check" entry=web`) || !strings.Contains(e.logs.String(), "status=good") {
			t.Errorf("%d CRL fetches, logs:\n%s\nwant the CRL asked and the status logged good", hits.Load(), e.logs)
		}
	})
	t.Run("unreachable warns", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, false)
		f.setCRL("http://127.0.0.1:1/issuing.crl")
		e := setup(t, f, "")
		if err := e.agent(Options{}).RunOnce(context.Background()); err != nil {
			t.Fatalf("RunOnce: %v: an unreachable CRL must not fail the deployment by default", err)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, `level=WARN msg="agent revocation check"`) || !strings.Contains(logs, "status=undetermined") || !strings.Contains(logs, "127.0.0.1:1") {
			t.Errorf("logs:\n%s\nwant a warning naming the CRL out of reach", logs)
		}
		if fails := f.deployFailures(); len(fails) != 0 {
			t.Errorf("reports %+v, want none", fails)
		}
	})
	t.Run("require fails when undetermined", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, false)
		f.setCRL("http://127.0.0.1:1/issuing.crl")
		e := setup(t, f, "    check_revocation: require\n")
		err := e.agent(Options{}).RunOnce(context.Background())
		if !errors.Is(err, ErrDeploy) || !strings.Contains(err.Error(), "could not be determined") {
			t.Fatalf("RunOnce: %v, want ErrDeploy saying revocation could not be determined", err)
		}
		if fails := f.deployFailures(); len(fails) != 1 || !strings.Contains(fails[0].Error, "require") {
			t.Errorf("reports %+v, want one", fails)
		}
	})
	t.Run("hanging CRL bounded by check_timeout", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, false)
		stop := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}))
		t.Cleanup(func() { close(stop); hang.Close() })
		f.setCRL(hang.URL + "/issuing.crl")
		e := setup(t, f, "    check_timeout: 2s\n")
		start := time.Now()
		if err := e.agent(Options{}).RunOnce(context.Background()); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("a CRL that never answers held the agent %s with check_timeout 2s", d)
		}
		if !strings.Contains(e.logs.String(), "status=undetermined") {
			t.Errorf("logs:\n%s\nwant the status undetermined", e.logs)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, false)
		hits := f.serveCRL(t, true)
		e := setup(t, f, "    check_revocation: off\n")
		if err := e.agent(Options{}).RunOnce(context.Background()); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		if hits.Load() != 0 {
			t.Errorf("%d CRL fetches with check_revocation: off", hits.Load())
		}
	})
}

func rewriteCheck(t *testing.T, e *env, addr string) {
	t.Helper()
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "    check: ") {
			lines[i] = "    check: " + addr
		}
	}
	if err := os.WriteFile(e.cfgPath, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadOutputBoundedAndTimed(t *testing.T) {
	t.Parallel()
	t.Run("output bounded", func(t *testing.T) {
		t.Parallel()
		e := &Entry{Name: "x", Reload: "head -c 200000 /dev/zero | tr '\\0' a; exit 1", ReloadTimeout: 10 * time.Second}
		out, err := reload(context.Background(), e, "01")
		if !errors.Is(err, ErrDeploy) {
			t.Fatalf("reload: %v, want ErrDeploy", err)
		}
		if !strings.HasPrefix(out, strings.Repeat("a", maxOutput)) || !strings.Contains(out, fmt.Sprintf("[%d more bytes not kept]", 200000-maxOutput)) {
			t.Errorf("output of %d bytes, want the first %d and a note of the rest", len(out), maxOutput)
		}
	})
	t.Run("timeout kills the command and its children", func(t *testing.T) {
		t.Parallel()
		e := &Entry{Name: "x", Reload: "sleep 30 & sleep 30", ReloadTimeout: 300 * time.Millisecond}
		start := time.Now()
		_, err := reload(context.Background(), e, "01")
		if !errors.Is(err, ErrDeploy) || !strings.Contains(err.Error(), "did not finish within 300ms") {
			t.Fatalf("reload: %v, want a timeout", err)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("a 300ms timeout returned after %s", d)
		}
	})
	t.Run("argv", func(t *testing.T) {
		t.Parallel()
		e := &Entry{Name: "x", ReloadArgv: []string{"/bin/sh", "-c", "echo $0 $CERTWRIGHT_SERIAL", "arg0"}, ReloadTimeout: 10 * time.Second}
		out, err := reload(context.Background(), e, "abcd")
		if err != nil || out != "arg0 abcd" {
			t.Errorf("reload_argv: %q, %v", out, err)
		}
	})
}

func TestNewRefusesOpenSecrets(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	tok := filepath.Join(e.dir, "agent.token")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(tok, mode); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(e.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg, Options{})
		if err == nil {
			t.Errorf("token file mode %04o accepted", mode)
			continue
		}
		if want := fmt.Sprintf("has mode %04o", mode); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tok) {
			t.Errorf("error %q does not name the file and %s", err, want)
		}
	}
	if err := os.Chmod(tok, 0o600); err != nil {
		t.Fatal(err)
	}
	e.agent(Options{})
}

// TestMTLSRenewsOwnClientCertificate: an agent authenticating with a
// client certificate renews it through the same sign call, authenticated
// by the current certificate, and uses the new one afterwards.
func TestMTLSRenewsOwnClientCertificate(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, true)
	dir := t.TempDir()
	f.writeRoot(t, dir)
	ck := mustKey(t)
	client := f.ca.leaf(t, ck.Public(), time.Now().Add(-time.Hour), 90*24*time.Hour, []string{"agent.web-1.internal"}, nil)
	f.record(client).profile = "machine_client"
	f.setRenewNow(pki.SerialHex(client.SerialNumber))
	certPath, keyPath := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(certPath, []byte(pemOf(client, f.ca.issuing)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, encodeKey(t, ck), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`server: %s
ca_file: root.pem
client_cert: client.pem
client_key: client.key
certificates:
  - name: web
    dns_names: [app.internal]
    profile: internal_service
    bundle: bundle.pem
`, f.srv.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	signs, by := append(f.signs[:0:0], f.signs...), append([]string(nil), f.signedBy...)
	f.mu.Unlock()
	if len(signs) != 2 {
		t.Fatalf("%d sign requests, want the client certificate's renewal and the entry's", len(signs))
	}
	old := pki.SerialHex(client.SerialNumber)
	if signs[0].Replaces != old || signs[0].Profile != "machine_client" || signs[0].CA != "issuing" {
		t.Errorf("client renewal %+v, want replaces %s under the recorded profile machine_client", signs[0], old)
	}
	renewed := mustLeaf(t, certPath)
	if pki.SerialHex(renewed.SerialNumber) == old {
		t.Fatal("client certificate file not renewed")
	}
	if by[0] != old || by[1] != pki.SerialHex(renewed.SerialNumber) {
		t.Errorf("sign requests authenticated by %v, want the old client certificate then the new %s", by, pki.SerialHex(renewed.SerialNumber))
	}
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("client key mode %04o, want 0600", fi.Mode().Perm())
	}
	bundle, err := os.ReadFile(filepath.Join(dir, "bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if certs, key, err := parsePEM(bundle); err != nil || len(certs) != 2 || key == nil || !keyMatches(certs[0], key) {
		t.Errorf("bundle: %d certificates, key %v, err %v; want leaf, chain and its key", len(certs), key != nil, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "bundle.pem")); fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode %04o, want 0600", fi.Mode().Perm())
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	a := &Agent{cfg: &Config{CheckInterval: time.Hour}}
	for _, tt := range []struct {
		n        int
		min, max time.Duration
	}{{1, 2500 * time.Millisecond, 5 * time.Second}, {3, 10 * time.Second, 20 * time.Second}, {12, 30 * time.Minute, time.Hour}, {100, 30 * time.Minute, time.Hour}} {
		for range 50 {
			if d := a.backoff(tt.n); d < tt.min || d > tt.max {
				t.Errorf("backoff(%d) = %s, want in [%s, %s]", tt.n, d, tt.min, tt.max)
			}
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	a := e.agent(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.signCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if f.signCount() == 0 {
		t.Fatal("Run issued nothing within 10s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancellation, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancellation")
	}
}

// TestRunOnceHonoursRetryAfter: a 503 with Retry-After (the server's store
// is down) puts the next attempt no sooner than the server asked.
func TestRunOnceHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, false)
	e := newEnv(t, f, "")
	a := e.agent(Options{})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.setRenewNow(pki.SerialHex(mustLeaf(t, e.cert).SerialNumber))
	f.setDown(true)
	f.setRetryAfter("120")
	start := time.Now()
	err := a.RunOnce(context.Background())
	var ra *RetryAfterError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ra) || ra.After != 2*time.Minute {
		t.Fatalf("RunOnce with a 503 and Retry-After 120: %v", err)
	}
	// The backoff alone would retry within 5s.
	if st := a.states["web"]; st.next.Before(start.Add(2 * time.Minute)) {
		t.Errorf("next attempt at %s, want at least 120s after %s", st.next, start)
	}
}
