// Package agent owns the host deployment agent: it keeps the certificates
// a host uses issued, renewed and in place. For each configured entry it
// reads the files on disk, asks the server whether they are due for
// renewal, generates a new key locally, has a CSR signed, writes the files
// atomically, reloads the service and checks that it serves the new
// certificate. LoadConfig reads the configuration; New builds an Agent;
// RunOnce runs one cycle and Run keeps going until its context ends.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// Retry timing after a failure: exponential from backoffStart, capped at
// the check interval, with jitter.
const backoffStart = 5 * time.Second

// maxSecretFile bounds the token file.
const maxSecretFile = 4 << 10

// clientEntryName names the agent's own client certificate in logs; it
// cannot clash with a configured name, which has no spaces.
const clientEntryName = "client certificate"

// Options are the agent's dependencies; every zero value is safe.
type Options struct {
	// Log receives one line per decision; nil: discard.
	Log *slog.Logger
	// Clock tells the time; nil: time.Now.
	Clock func() time.Time
	// HTTPClient, when set, replaces the client the agent builds from the
	// configuration (tests); it must trust the server.
	HTTPClient *http.Client
	// Rand is the randomness for keys; nil: crypto/rand.
	Rand io.Reader
	// Hostname is reported with deploy failures; "": os.Hostname.
	Hostname string
}

// EntryError is the failure of one entry in a cycle.
type EntryError struct {
	Entry string
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("entry %s: %v", e.Entry, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// entryState is what the agent remembers about an entry between cycles.
type entryState struct {
	// next is when Run looks at the entry again.
	next     time.Time
	failures int
	// pending is the serial of a deployed certificate whose reload or
	// check has not succeeded yet.
	pending string
	// unwritten was issued but could not be written; the write is
	// retried before anything else.
	unwritten *material
}

// Agent keeps the configured certificates deployed. It is not safe for
// concurrent use: call Run or RunOnce from one goroutine.
type Agent struct {
	cfg     *Config
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader
	host    string
	api     *apiClient
	fs      fileOps
	entries []*Entry
	states  map[string]*entryState
	// client is the mTLS client certificate in use (mTLS only).
	client *atomic.Pointer[tls.Certificate]
	// savedState is the last state file written, to skip identical writes.
	savedState []byte
	// caRoots are ca_file's certificates: trusted for the server's TLS,
	// and the trust anchors of a revocation check when the server's own
	// root is not at hand.
	caRoots []*x509.Certificate
}

// New builds an agent for cfg: it reads the credentials and the trust
// anchor and refuses a token or client key that others can read.
func New(cfg *Config, opts Options) (*Agent, error) {
	if cfg == nil || cfg.Server == nil {
		return nil, errors.New("agent: a configuration with a server is required")
	}
	a := &Agent{cfg: cfg, log: opts.Log, now: opts.Clock, rand: opts.Rand, host: opts.Hostname,
		fs: osFiles{}, states: map[string]*entryState{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	if a.host == "" {
		h, err := os.Hostname()
		if err != nil {
			h = "unknown"
		}
		a.host = h
	}
	a.api = &apiClient{base: strings.TrimRight(cfg.Server.String(), "/"), now: a.now}
	if cfg.TokenFile != "" {
		tok, err := readSecret(cfg.TokenFile, "token file")
		if err != nil {
			return nil, err
		}
		a.api.token = tok
	}
	if cfg.ClientCert != "" {
		if err := a.loadClientCert(); err != nil {
			return nil, err
		}
	}
	if cfg.CAFile != "" {
		b, err := readLimited(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("agent: ca_file: %w", err)
		}
		certs, _, err := parsePEM(b)
		if err != nil || len(certs) == 0 {
			return nil, fmt.Errorf("agent: ca_file %s holds no PEM certificate (%v)", cfg.CAFile, err)
		}
		a.caRoots = certs
	}
	a.api.http = opts.HTTPClient
	if a.api.http == nil {
		c, err := a.httpClient()
		if err != nil {
			return nil, err
		}
		a.api.http = c
	}
	for i := range cfg.Certificates {
		a.entries = append(a.entries, &cfg.Certificates[i])
	}
	for _, e := range a.entries {
		a.states[e.Name] = &entryState{}
	}
	if err := a.loadState(); err != nil {
		return nil, err
	}
	return a, nil
}

// readSecret reads a file holding a secret, refusing one that group or
// others may access.
func readSecret(path, what string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("agent: %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("agent: %s %s is not a regular file", what, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("agent: %s %s has mode %04o: it holds a secret, so group and others must have no access (chmod 600 %s)", what, path, perm, path)
	}
	b, err := readLimited(path)
	if err != nil {
		return "", fmt.Errorf("agent: %s: %w", what, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("agent: %s %s is larger than %d bytes", what, path, maxSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("agent: %s %s must hold exactly one token", what, path)
	}
	return s, nil
}

// loadClientCert reads the mTLS certificate and adds the entry that renews it.
func (a *Agent) loadClientCert() error {
	cfg := a.cfg
	if fi, err := os.Stat(cfg.ClientKey); err != nil {
		return fmt.Errorf("agent: client_key: %w", err)
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("agent: client_key %s has mode %04o: a private key must not be open to group or others (chmod 600 %s)", cfg.ClientKey, perm, cfg.ClientKey)
	}
	certPEM, err := readLimited(cfg.ClientCert)
	if err != nil {
		return fmt.Errorf("agent: client_cert: %w", err)
	}
	keyPEM, err := readLimited(cfg.ClientKey)
	if err != nil {
		return fmt.Errorf("agent: client_key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return fmt.Errorf("agent: client_cert %s and client_key %s: %w", cfg.ClientCert, cfg.ClientKey, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("agent: client_cert %s: %w", cfg.ClientCert, err)
		}
		pair.Leaf = leaf
	}
	alg, err := pki.AlgorithmOf(leaf.PublicKey)
	if err != nil {
		return fmt.Errorf("agent: client_cert %s: %w", cfg.ClientCert, err)
	}
	a.client = &atomic.Pointer[tls.Certificate]{}
	a.client.Store(&pair)
	e := &Entry{
		Name: clientEntryName, CommonName: leaf.Subject.CommonName, DNSNames: leaf.DNSNames,
		IPAddresses: leaf.IPAddresses, URIs: leaf.URIs, Profile: cfg.ClientProfile, KeyType: alg,
		Cert: cfg.ClientCert, Key: cfg.ClientKey, UID: -1, GID: -1,
		Mode: FileModes{Cert: defaultPublicMode, Key: defaultSecretMode},
	}
	if e.CommonName == "" && len(e.DNSNames) > 0 {
		e.CommonName = e.DNSNames[0]
	}
	a.entries = append([]*Entry{e}, a.entries...)
	return nil
}

func (a *Agent) isClient(e *Entry) bool { return a.client != nil && e.Name == clientEntryName }

// httpClient builds the client that trusts ca_file and presents the
// current client certificate.
func (a *Agent) httpClient() (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(a.caRoots) > 0 {
		tc.RootCAs = x509.NewCertPool()
		for _, c := range a.caRoots {
			tc.RootCAs.AddCert(c)
		}
	}
	if a.client != nil {
		current := a.client
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return current.Load(), nil }
	}
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: tc, ForceAttemptHTTP2: true,
			TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: 90 * time.Second, MaxIdleConns: 4,
		},
	}, nil
}

// Close releases idle connections to the server.
func (a *Agent) Close() { a.api.http.CloseIdleConnections() }

// RunOnce looks at every entry now and returns the failures, each an
// *EntryError; errors.Is(err, ErrUnavailable) tells that the server could
// not be reached and the files were kept, errors.Is(err, ErrDeploy) that a
// reload or check failed.
func (a *Agent) RunOnce(ctx context.Context) error {
	var errs []error
	for _, e := range a.entries {
		if err := a.runOne(ctx, e); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := a.saveState(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run runs cycles until ctx ends, each entry on its own schedule: every
// check_interval (sooner when its renewal window opens), and with
// exponential backoff after a failure. It returns nil when ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent started", "server", a.api.base, "entries", len(a.entries), "check_interval", a.cfg.CheckInterval)
	for {
		now := a.now()
		for _, e := range a.entries {
			if ctx.Err() != nil {
				return nil
			}
			if !now.Before(a.states[e.Name].next) {
				_ = a.runOne(ctx, e)
			}
		}
		if err := a.saveState(); err != nil {
			a.log.Error("agent state not saved", "err", err)
		}
		wake := now.Add(a.cfg.CheckInterval)
		for _, e := range a.entries {
			if n := a.states[e.Name].next; n.Before(wake) {
				wake = n
			}
		}
		wait := max(wake.Sub(a.now()), time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// runOne runs one entry and schedules its next look.
func (a *Agent) runOne(ctx context.Context, e *Entry) error {
	st := a.states[e.Name]
	next, err := a.runEntry(ctx, e, st)
	if err == nil {
		st.failures = 0
		st.next = next
		return nil
	}
	if ctx.Err() != nil {
		return &EntryError{Entry: e.Name, Err: err}
	}
	st.failures++
	delay := a.backoff(st.failures)
	if ra := (*RetryAfterError)(nil); errors.As(err, &ra) {
		// The server said when: no sooner, and no later than the
		// check interval.
		delay = max(delay, min(ra.After, a.cfg.CheckInterval))
	}
	st.next = a.now().Add(delay)
	a.log.Error("agent entry failed", "entry", e.Name, "err", err, "attempt", st.failures, "retry_in", delay.Round(time.Second).String(),
		"retryable", errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDeploy))
	return &EntryError{Entry: e.Name, Err: err}
}

// backoff is the wait before attempt n+1 after n failures: 5s doubling,
// capped at the check interval, jittered down by up to half.
func (a *Agent) backoff(n int) time.Duration {
	d := a.cfg.CheckInterval
	if n < 30 {
		d = min(backoffStart<<(n-1), a.cfg.CheckInterval)
	}
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	return time.Duration(half + mrand.Int64N(half+1))
}

// runEntry runs one cycle of e and returns when to look at it next.
func (a *Agent) runEntry(ctx context.Context, e *Entry, st *entryState) (time.Time, error) {
	now := a.now()
	if m := st.unwritten; m != nil {
		st.unwritten = nil
		if now.Before(m.leaf.NotAfter) {
			a.decision(e, m.leaf, "write", "retrying the write of the certificate issued before")
			return a.deploy(ctx, e, st, m)
		}
	}
	cur, leaf, problem := readCurrent(e)
	var (
		info *apitypes.RenewalInfo
		skew time.Duration
	)
	if leaf != nil {
		serial := pki.SerialHex(leaf.SerialNumber)
		i, at, err := a.api.renewalInfo(ctx, serial)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return time.Time{}, fmt.Errorf("renewal information for %s: %w", serial, err)
		default:
			info = i
			if !i.ServerTime.IsZero() {
				skew = i.ServerTime.Sub(at)
			}
		}
	}
	serverNow := now.Add(skew)
	action, reason := "keep", ""
	switch {
	case problem != "":
		action, reason = "issue", problem
	case info == nil:
		action, reason = "issue", "the server does not know the certificate on disk"
	default:
		if r := dueReason(e, info, leaf, serverNow); r != "" {
			action, reason = "renew", r
		}
	}
	if action == "keep" {
		if st.pending != "" && st.pending == pki.SerialHex(cur.leaf.SerialNumber) {
			a.decision(e, cur.leaf, "reload", "the last reload or check of this certificate failed")
			return a.activate(ctx, e, st, cur)
		}
		st.pending = ""
		next := a.nextCheck(e, info, skew, now)
		a.decision(e, leaf, "keep", "not due for renewal", "next_check", next.Format(time.RFC3339))
		return next, nil
	}
	replaces := ""
	if info != nil && !info.Revoked && serverNow.Before(leaf.NotAfter) {
		replaces = pki.SerialHex(leaf.SerialNumber)
		if info.RenewedBy != "" {
			// The server already holds a successor (an earlier attempt
			// whose files were never written): this one replaces it.
			replaces = info.RenewedBy
		}
	}
	a.decision(e, leaf, action, reason, "replaces", replaces)
	m, err := a.obtain(ctx, e, replaces)
	if err != nil {
		return time.Time{}, err
	}
	return a.deploy(ctx, e, st, m)
}

// decision logs what the agent decided for an entry and why.
func (a *Agent) decision(e *Entry, leaf *x509.Certificate, action, reason string, more ...any) {
	args := []any{"entry", e.Name, "action", action}
	if leaf != nil {
		args = append(args, "serial", pki.SerialHex(leaf.SerialNumber), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	args = append(args, "reason", reason)
	for i := 0; i+1 < len(more); i += 2 {
		if v, ok := more[i+1].(string); ok && v == "" {
			continue
		}
		args = append(args, more[i], more[i+1])
	}
	a.log.Info("agent decision", args...)
}

// dueReason says why the certificate must be renewed now, or "".
func dueReason(e *Entry, info *apitypes.RenewalInfo, leaf *x509.Certificate, serverNow time.Time) string {
	switch {
	case info.Revoked:
		return "the server says the certificate is revoked"
	case info.RenewNow:
		if info.Reason != "" {
			return "the server asks for renewal now (" + info.Reason + ")"
		}
		return "the server asks for renewal now"
	case !info.WindowStart.IsZero() && !serverNow.Before(info.WindowStart):
		return "the renewal window opened at " + info.WindowStart.UTC().Format(time.RFC3339)
	case e.RenewBefore > 0 && leaf.NotAfter.Sub(serverNow) < e.RenewBefore:
		return fmt.Sprintf("less than renew_before (%s) is left", e.RenewBefore)
	case !serverNow.Before(leaf.NotAfter):
		return "the certificate has expired"
	}
	return ""
}

// nextCheck is when to ask again: after the check interval, or when the
// renewal window (or renew_before) opens if that is sooner.
func (a *Agent) nextCheck(e *Entry, info *apitypes.RenewalInfo, skew time.Duration, now time.Time) time.Time {
	next := now.Add(a.cfg.CheckInterval)
	if info == nil {
		return next
	}
	candidates := []time.Time{info.WindowStart.Add(-skew)}
	if e.RenewBefore > 0 {
		candidates = append(candidates, info.NotAfter.Add(-skew).Add(-e.RenewBefore))
	}
	for _, c := range candidates {
		if c.After(now) && c.Before(next) {
			next = c
		}
	}
	return next
}

// obtain generates a key and has a certificate for e signed with it.
func (a *Agent) obtain(ctx context.Context, e *Entry, replaces string) (*material, error) {
	profile, ca := e.Profile, e.CA
	if a.isClient(e) && profile == "" {
		cur := a.client.Load().Leaf
		rec, err := a.api.certificate(ctx, pki.SerialHex(cur.SerialNumber))
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("the server does not know the client certificate, so its profile is unknown: set client_profile: %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("look up the client certificate's profile: %w", err)
		}
		profile, ca = rec.Profile, rec.CA
	}
	key, err := e.KeyType.Generate(a.rand)
	if err != nil {
		return nil, fmt.Errorf("agent: generate %s key: %w", e.KeyType, err)
	}
	csr, err := newCSR(e, key, a.rand)
	if err != nil {
		return nil, err
	}
	req := &apitypes.SignRequest{CSRPEM: string(csr), Profile: profile, CA: ca, ValidityDays: e.ValidityDays,
		Tags: e.Tags, Owner: e.Owner}
	if replaces != "" {
		req.Replaces, req.RenewalKind = replaces, "agent"
	}
	resp, err := a.api.sign(ctx, req)
	var apiErr *APIError
	if replaces != "" && errors.As(err, &apiErr) && (apiErr.Status == http.StatusBadRequest || apiErr.Status == http.StatusConflict || apiErr.Status == http.StatusUnprocessableEntity) {
		a.log.Warn("the server refused the request naming the certificate it replaces; asking again without replaces",
			"entry", e.Name, "replaces", replaces, "err", err)
		req.Replaces, req.RenewalKind = "", ""
		resp, err = a.api.sign(ctx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	m, err := checkIssued(e, key, resp.CertificatePEM, resp.ChainPEM, resp.RootPEM)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// deploy writes m's files, then reloads and checks.
func (a *Agent) deploy(ctx context.Context, e *Entry, st *entryState, m *material) (time.Time, error) {
	specs, err := fileSpecs(e, m)
	if err != nil {
		return time.Time{}, err
	}
	err = writeFiles(a.fs, specs)
	for _, s := range specs {
		clear(s.data)
	}
	if err != nil {
		st.unwritten = m
		return time.Time{}, fmt.Errorf("new certificate %s issued but not written (the previous files are intact): %w", m.serial(), err)
	}
	a.log.Info("agent wrote files", "entry", e.Name, "serial", m.serial(), "not_after", m.leaf.NotAfter.UTC().Format(time.RFC3339), "action", "written")
	if a.isClient(e) {
		pair := &tls.Certificate{PrivateKey: m.key, Leaf: m.leaf}
		for _, c := range append([]*x509.Certificate{m.leaf}, m.chain...) {
			pair.Certificate = append(pair.Certificate, c.Raw)
		}
		a.client.Store(pair)
		// New connections present the new certificate.
		a.api.http.CloseIdleConnections()
	}
	st.pending = m.serial()
	_ = a.saveState()
	return a.activate(ctx, e, st, m)
}

// activate reloads the service and checks it serves m.
func (a *Agent) activate(ctx context.Context, e *Entry, st *entryState, m *material) (time.Time, error) {
	out, err := reload(ctx, e, m.serial())
	if e.Reload != "" || len(e.ReloadArgv) > 0 {
		lvl := slog.LevelInfo
		if err != nil {
			lvl = slog.LevelWarn
		}
		a.log.Log(ctx, lvl, "agent reload", "entry", e.Name, "serial", m.serial(), "ok", err == nil, "output", out)
	}
	if err == nil {
		var served []*x509.Certificate
		served, err = checkServed(ctx, e, m.leaf)
		if e.Check != "" && err == nil {
			a.log.Info("agent check", "entry", e.Name, "serial", m.serial(), "check", e.Check, "ok", true)
			err = a.checkRevocation(ctx, e, m, served)
		}
	}
	if err != nil {
		if out != "" {
			err = fmt.Errorf("%w (output: %s)", err, truncate(out, 2000))
		}
		a.reportDeployFailed(ctx, e, m.serial(), err)
		return time.Time{}, err
	}
	st.pending = ""
	_ = a.saveState()
	return a.now().Add(a.cfg.CheckInterval), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// reportDeployFailed tells the server, best effort, so it raises an alert.
func (a *Agent) reportDeployFailed(ctx context.Context, e *Entry, serial string, cause error) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := a.api.deployFailed(ctx, apitypes.DeployFailure{Entry: e.Name, Host: a.host, Serial: serial, Error: truncate(cause.Error(), 4000)})
	if err != nil {
		a.log.Warn("agent could not report the deploy failure to the server", "entry", e.Name, "serial", serial, "err", err)
		return
	}
	a.log.Info("agent reported the deploy failure", "entry", e.Name, "serial", serial)
}
