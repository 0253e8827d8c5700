package app

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/agent"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/scan/scantest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tAgentHost is a host directory for an agent talking to in: the root,
// a token file of a machine principal that may issue internal_service,
// and a tls/ directory for the files.
type tAgentHost struct {
	t         *testing.T
	in        *tInstance
	dir       string
	principal string
	cert, key string
	cfgPath   string
}

// tAgentPrincipal creates a machine principal bound to the issuer role
// for the internal_service profile, and returns its token.
func (in *tInstance) tAgentPrincipal(t *testing.T, name string) string {
	t.Helper()
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: name, Kind: "machine", Role: "issuer", Scope: apitypes.Scope{Profiles: []string{"internal_service"}}, Token: true,
	}, &res)
	if res.Token == nil || res.Token.Token == "" {
		t.Fatalf("no token for %s", name)
	}
	return res.Token.Token
}

func tNewAgentHost(t *testing.T, in *tInstance) *tAgentHost {
	t.Helper()
	h := &tAgentHost{t: t, in: in, dir: t.TempDir(), principal: "agent-web-1"}
	tok := in.tAgentPrincipal(t, h.principal)
	if err := os.WriteFile(filepath.Join(h.dir, "agent.token"), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(in.cfg.DataDir, RootFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "root.pem"), root, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(h.dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.cert, h.key = filepath.Join(h.dir, "tls", "cert.pem"), filepath.Join(h.dir, "tls", "key.pem")
	h.cfgPath = filepath.Join(h.dir, "agent.yaml")
	return h
}

// writeConfig writes the ten-line configuration with this reload
// command, plus extra lines for the entry.
func (h *tAgentHost) writeConfig(reload, extra string) {
	h.t.Helper()
	cfg := fmt.Sprintf(`server: %s
ca_file: %s
token_file: %s
certificates:
  - name: web
    dns_names: [app.internal]
    profile: internal_service
    cert: %s
    key: %s
    reload: %s
`, h.in.l.HTTPSURL, filepath.Join(h.dir, "root.pem"), filepath.Join(h.dir, "agent.token"), h.cert, h.key, reload)
	if n := strings.Count(cfg, "\n"); n != 10 {
		h.t.Fatalf("the configuration has %d lines, want 10", n)
	}
	if err := os.WriteFile(h.cfgPath, []byte(cfg+extra), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *tAgentHost) agent(opts agent.Options) *agent.Agent {
	h.t.Helper()
	cfg, err := agent.LoadConfig(h.cfgPath)
	if err != nil {
		h.t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(tWriter{h.t}, nil))
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(a.Close)
	return a
}

// tWriter sends log lines to the test log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// leaf is the certificate on disk.
func (h *tAgentHost) leaf() *x509.Certificate {
	h.t.Helper()
	b, err := os.ReadFile(h.cert)
	if err != nil {
		h.t.Fatal(err)
	}
	certs, err := pki.ParseCertificates(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return certs[0]
}

func (h *tAgentHost) files() map[string][]byte {
	h.t.Helper()
	out := map[string][]byte{}
	for _, p := range []string{h.cert, h.key} {
		b, err := os.ReadFile(p)
		if err != nil {
			h.t.Fatal(err)
		}
		out[p] = b
	}
	return out
}

// TestAgentIssuesFromServer runs the agent with the ten-line
// configuration against a real server: a key of mode 0600 and a
// certificate that chains to root.pem, issued to the machine principal.
func TestAgentIssuesFromServer(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	h := tNewAgentHost(t, in)
	flag := filepath.Join(h.dir, "reloaded")
	h.writeConfig("touch "+flag, "")
	a := h.agent(agent.Options{})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	fi, err := os.Stat(h.key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %04o, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(flag); err != nil {
		t.Errorf("reload command did not run: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(h.cert, h.key); err != nil {
		t.Fatalf("cert and key on disk: %v", err)
	}
	certPEM, err := os.ReadFile(h.cert)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificates(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: in.pool, Intermediates: inter, DNSName: "app.internal",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the certificate on disk does not chain to root.pem: %v", err)
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		out, err := tOpenSSL(t, h.dir, "", "verify", "-CAfile", filepath.Join(h.dir, "root.pem"), "-untrusted", h.cert, h.cert)
		if err != nil || !strings.Contains(out, ": OK") {
			t.Errorf("openssl verify: %v\n%s", err, out)
		}
	} else {
		t.Log("openssl not found (Debian package openssl): skipping the openssl verify step")
	}
	serial := pki.SerialHex(certs[0].SerialNumber)
	var rec apitypes.Certificate
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+serial, nil, &rec)
	if rec.Profile != "internal_service" || rec.Requester != h.principal {
		t.Errorf("server record: profile %q requester %q, want internal_service and %s", rec.Profile, rec.Requester, h.principal)
	}

	// Nothing due: a second cycle issues nothing and leaves the files.
	before, count := h.files(), in.certCount()
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatalf("second RunOnce: %v", err)
	}
	if n := in.certCount(); n != count {
		t.Errorf("inventory grew from %d to %d on a cycle with nothing due", count, n)
	}
	for p, b := range h.files() {
		if string(b) != string(before[p]) {
			t.Errorf("%s changed on a cycle with nothing due", p)
		}
	}
}

// tSwapServer is a TLS server on 127.0.0.1 that serves an atomically
// swapped certificate, reloaded from the agent's files whenever the
// reload command touches the flag file.
type tSwapServer struct {
	addr   string
	cert   atomic.Pointer[tls.Certificate]
	reload atomic.Int32
	errs   atomic.Int32
}

func tStartSwapServer(t *testing.T, certFile, keyFile, flag string) *tSwapServer {
	t.Helper()
	s := &tSwapServer{}
	load := func() error {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		s.cert.Store(&c)
		return nil
	}
	if err := load(); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	// The reload signal: the flag file's modification, polled.
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var last time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			fi, err := os.Stat(flag)
			if err != nil || !fi.ModTime().After(last) {
				continue
			}
			last = fi.ModTime()
			if err := load(); err != nil {
				s.errs.Add(1)
				continue
			}
			s.reload.Add(1)
		}
	}()
	return s
}

// TestAgentZeroDowntimeRenewal: while clients hammer a TLS server with
// handshakes, the agent renews the certificate it serves and reloads it.
// Every handshake succeeds; some see the old serial, some the new; the
// server links the old certificate to the new one.
func TestAgentZeroDowntimeRenewal(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	h := tNewAgentHost(t, in)
	flag := filepath.Join(h.dir, "reload-flag")
	// The first deployment, before the server exists.
	h.writeConfig("touch "+flag, "")
	if err := h.agent(agent.Options{}).RunOnce(context.Background()); err != nil {
		t.Fatalf("first RunOnce: %v", err)
	}
	old := h.leaf()
	oldSerial := pki.SerialHex(old.SerialNumber)
	srv := tStartSwapServer(t, h.cert, h.key, flag)
	// From now on the agent also checks that the server serves the new certificate.
	h.writeConfig("touch "+flag, "    check: "+srv.addr+"\n    check_timeout: 10s\n")
	a := h.agent(agent.Options{})

	roots := in.pool
	var (
		mu                sync.Mutex
		seen              = map[string]int{}
		failures          []error
		sawNew            atomic.Bool
		handshakes, total atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
				Config: &tls.Config{RootCAs: roots, ServerName: "app.internal", MinVersion: tls.VersionTLS12}}
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				total.Add(1)
				conn, err := d.DialContext(context.Background(), "tcp", srv.addr)
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					continue
				}
				serial := pki.SerialHex(conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber)
				conn.Close()
				handshakes.Add(1)
				mu.Lock()
				seen[serial]++
				mu.Unlock()
				if serial != oldSerial {
					sawNew.Store(true)
				}
			}
		}()
	}
	// Let the clients see the old certificate before renewing.
	for handshakes.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var marked apitypes.RenewNowResult
	in.must(http.StatusOK, "POST", "/api/v1/acme/renew-now", apitypes.RenewNowRequest{Serial: oldSerial}, &marked)
	if marked.Count != 1 {
		t.Fatalf("renew-now marked %d certificates, want 1", marked.Count)
	}
	runErr := a.RunOnce(context.Background())
	// A few handshakes more on the new certificate, then stop.
	for !sawNew.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	after := handshakes.Load()
	for handshakes.Load() < after+20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if runErr != nil {
		t.Fatalf("RunOnce during the hammering: %v", runErr)
	}

	renewed := h.leaf()
	newSerial := pki.SerialHex(renewed.SerialNumber)
	if newSerial == oldSerial {
		t.Fatal("the certificate was not renewed")
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d handshakes (%d attempts): %d on the old certificate, %d on the new; %d reloads",
		handshakes.Load(), total.Load(), seen[oldSerial], seen[newSerial], srv.reload.Load())
	if len(failures) > 0 {
		t.Errorf("%d failed handshakes during the renewal, want 0; first: %v", len(failures), failures[0])
	}
	if seen[oldSerial] == 0 || seen[newSerial] == 0 {
		t.Errorf("handshakes saw old %d times and new %d times, want both at least once", seen[oldSerial], seen[newSerial])
	}
	if len(seen) != 2 {
		t.Errorf("handshakes saw %d serials, want 2: %v", len(seen), seen)
	}
	if srv.errs.Load() != 0 {
		t.Errorf("the server failed to load the agent's files %d times", srv.errs.Load())
	}
	var oldRec, newRec apitypes.Certificate
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+oldSerial, nil, &oldRec)
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+newSerial, nil, &newRec)
	if oldRec.RenewedBy != newSerial {
		t.Errorf("old certificate renewed_by %q, want %s", oldRec.RenewedBy, newSerial)
	}
	if newRec.Replaces != oldSerial || newRec.RenewalKind != "agent" {
		t.Errorf("new certificate replaces %q (kind %q), want %s (agent)", newRec.Replaces, newRec.RenewalKind, oldSerial)
	}
	if renewed.PublicKeyAlgorithm != old.PublicKeyAlgorithm || renewed.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(old.PublicKey) {
		t.Error("the renewal kept the old key: every renewal needs a new one")
	}
}

// TestAgentServerDown: with the server stopped the agent keeps the files
// and reports a retryable error.
func TestAgentServerDown(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	h := tNewAgentHost(t, in)
	h.writeConfig("true", "")
	a := h.agent(agent.Options{})
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Due, but the server goes away before the agent asks.
	in.must(http.StatusOK, "POST", "/api/v1/acme/renew-now", apitypes.RenewNowRequest{Serial: pki.SerialHex(h.leaf().SerialNumber)}, nil)
	before := h.files()
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	err := a.RunOnce(context.Background())
	if !errors.Is(err, agent.ErrUnavailable) {
		t.Fatalf("RunOnce with the server down: %v, want agent.ErrUnavailable", err)
	}
	var ee *agent.EntryError
	if !errors.As(err, &ee) || ee.Entry != "web" {
		t.Errorf("error %v does not name the entry", err)
	}
	for p, b := range h.files() {
		if string(b) != string(before[p]) {
			t.Errorf("%s changed while the server was down", p)
		}
	}
}

// TestAgentReloadFailureRaisesAlert: a failing reload keeps the new files
// and the server raises a deploy_failed alert for the host and entry.
func TestAgentReloadFailureRaisesAlert(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	h := tNewAgentHost(t, in)
	h.writeConfig("echo 'app refused the new certificate' >&2; exit 7", "")
	a := h.agent(agent.Options{Hostname: "web-1.example.internal"})
	err := a.RunOnce(context.Background())
	if !errors.Is(err, agent.ErrDeploy) {
		t.Fatalf("RunOnce with a failing reload: %v, want agent.ErrDeploy", err)
	}
	serial := pki.SerialHex(h.leaf().SerialNumber)
	if _, err := tls.LoadX509KeyPair(h.cert, h.key); err != nil {
		t.Errorf("the new files are not in place: %v", err)
	}
	var list apitypes.AlertList
	in.must(http.StatusOK, "GET", "/api/v1/alerts", nil, &list)
	var found *apitypes.Alert
	for i, al := range list.Alerts {
		if al.Kind == "deploy_failed" {
			found = &list.Alerts[i]
		}
	}
	if found == nil {
		t.Fatalf("no deploy_failed alert among %d alerts", len(list.Alerts))
	}
	// The subject is the reporting principal and the certificate; the host
	// and entry are the agent's description, shown as reported.
	if found.Serial != serial || !strings.Contains(found.Subject, serial) ||
		!strings.Contains(found.Detail, `"web-1.example.internal", as reported`) || !strings.Contains(found.Detail, `entry "web"`) ||
		!strings.Contains(found.Detail, "exit status 7") || !strings.Contains(found.Detail, "app refused the new certificate") {
		t.Errorf("alert %+v, want serial %s, the reported host and entry, and the command's failure", *found, serial)
	}
	// The retry reports again; the server keeps one alert for the same
	// principal and certificate (one per 10 minutes).
	if err := a.RunOnce(context.Background()); !errors.Is(err, agent.ErrDeploy) {
		t.Fatalf("second RunOnce: %v, want agent.ErrDeploy", err)
	}
	in.must(http.StatusOK, "GET", "/api/v1/alerts", nil, &list)
	n := 0
	for _, al := range list.Alerts {
		if al.Kind == "deploy_failed" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d deploy_failed alerts after two reports of the same failure, want 1", n)
	}
}

// TestAgentMTLSRenewsItsClientCertificate: an agent authenticated by a
// client certificate renews that certificate through the sign call it
// authenticates, and issues its entry with the new one.
func TestAgentMTLSRenewsItsClientCertificate(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	dir := t.TempDir()
	const name, uri = "agent-mtls", "spiffe://example.internal/agent/web-1"
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: name, Kind: "machine", Role: "issuer", Scope: apitypes.Scope{Profiles: []string{"internal_service"}},
	}, &res)
	in.must(http.StatusCreated, "POST", "/api/v1/principals/"+name+"/identities", apitypes.Identity{Kind: "uri", Value: uri}, nil)

	key := tECKey(t, elliptic.P256())
	u, _ := url.Parse(uri)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent web-1"}, URIs: []*url.URL{u}}, key)
	if err != nil {
		t.Fatal(err)
	}
	var client apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), Profile: "internal_service",
	}, &client)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"client.pem": {[]byte(client.CertificatePEM + client.ChainPEM), 0o644},
		"client.key": {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		"root.pem":   {[]byte(client.RootPEM), 0o644},
	}
	for n, f := range files {
		if err := os.WriteFile(filepath.Join(dir, n), f.data, f.mode); err != nil {
			t.Fatal(err)
		}
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
    bundle: app.pem
`, in.l.HTTPSURL)), 0o644); err != nil {
		t.Fatal(err)
	}
	in.must(http.StatusOK, "POST", "/api/v1/acme/renew-now", apitypes.RenewNowRequest{Serial: client.Serial}, nil)
	cfg, err := agent.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Options{Log: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "client.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	newSerial := pki.SerialHex(certs[0].SerialNumber)
	if newSerial == client.Serial {
		t.Fatal("the client certificate was not renewed")
	}
	var oldRec, newRec, appRec apitypes.Certificate
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+client.Serial, nil, &oldRec)
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+newSerial, nil, &newRec)
	if oldRec.RenewedBy != newSerial || newRec.Replaces != client.Serial || newRec.Requester != name {
		t.Errorf("old renewed_by %q, new replaces %q requester %q; want %s, %s, %s (the renewal authenticated by the client certificate)",
			oldRec.RenewedBy, newRec.Replaces, newRec.Requester, newSerial, client.Serial, name)
	}
	if len(certs[0].URIs) != 1 || certs[0].URIs[0].String() != uri {
		t.Errorf("renewed client certificate names %v, want %s", certs[0].URIs, uri)
	}
	bundle, err := os.ReadFile(filepath.Join(dir, "app.pem"))
	if err != nil {
		t.Fatal(err)
	}
	appCerts, err := pki.ParseCertificates(bundle)
	if err != nil {
		t.Fatal(err)
	}
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+pki.SerialHex(appCerts[0].SerialNumber), nil, &appRec)
	if appRec.Requester != name {
		t.Errorf("entry issued to %q, want %s", appRec.Requester, name)
	}
	// The old client certificate is no longer needed: a new agent
	// starts from the renewed files.
	if _, err := agent.New(cfg, agent.Options{}); err != nil {
		t.Errorf("an agent started on the renewed files: %v", err)
	}
}

// TestAgentReportsRevokedServedCertificate: the agent's check asks the
// CRL and OCSP URLs of the chain it finds served, which are this server's
// own: a certificate revoked between its issue and its deployment fails
// the deployment, and the server raises deploy_failed naming the
// revocation.
func TestAgentReportsRevokedServedCertificate(t *testing.T) {
	t.Parallel()
	// The certificates' URLs must reach the instance: its HTTP listener
	// on a port taken before it starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	cfg := tConfig(t, "")
	cfg.HTTPListen, cfg.PublicHTTPURL = httpAddr, "http://"+httpAddr
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	h := tNewAgentHost(t, in)

	// The service presents the files on disk at each handshake.
	svcTLS := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(h.cert, h.key)
		return &c, err
	}}
	svc, _ := scantest.ServeLoopback(t, func(c net.Conn) { _ = tls.Server(c, svcTLS).Handshake() })
	// The reload says it has run, then waits for the test: the
	// certificate is revoked before the check looks at it.
	reloaded, goOn := filepath.Join(h.dir, "reloaded"), filepath.Join(h.dir, "go-on")
	h.writeConfig(fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done", reloaded, goOn), "    check: "+svc+"\n")
	a := h.agent(agent.Options{Hostname: "web-1.example.internal"})
	done := make(chan error, 1)
	go func() { done <- a.RunOnce(context.Background()) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(reloaded); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reload never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	serial := pki.SerialHex(h.leaf().SerialNumber)
	in.must(http.StatusOK, "POST", "/api/v1/certificates/"+serial+"/revoke", apitypes.RevokeRequest{Reason: "key_compromise"}, nil)
	if err := os.WriteFile(goOn, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, agent.ErrDeploy) || !strings.Contains(err.Error(), "revoked certificate") || !strings.Contains(err.Error(), "serial "+serial) {
		t.Fatalf("RunOnce: %v, want agent.ErrDeploy naming the revoked serial %s", err, serial)
	}
	var list apitypes.AlertList
	in.must(http.StatusOK, "GET", "/api/v1/alerts", nil, &list)
	i := slices.IndexFunc(list.Alerts, func(al apitypes.Alert) bool { return al.Kind == "deploy_failed" })
	if i < 0 {
		t.Fatalf("no deploy_failed alert among %d alerts", len(list.Alerts))
	}
	if al := list.Alerts[i]; al.Serial != serial || !strings.Contains(al.Detail, "revoked") || !strings.Contains(al.Detail, "key") {
		t.Errorf("alert %+v, want serial %s and the revocation with its reason", al, serial)
	}
}
