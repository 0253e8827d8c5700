package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/certwright/certwright/internal/keys/keyscan"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for reading every table

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/storetest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// ---- harness: a real instance on loopback ports

// tEnvPostgres names the variable that enables the PostgreSQL variants.
const tEnvPostgres = "CERTWRIGHT_TEST_POSTGRES"

// tBackend is a store an instance can run on.
type tBackend struct {
	name string
	// dbURL returns the config.DB value for a new instance ("" = SQLite in
	// the data directory), skipping t when the backend is unavailable.
	dbURL func(t *testing.T) string
}

var tBackends = []tBackend{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string {
		t.Helper()
		base := os.Getenv(tEnvPostgres)
		if base == "" {
			t.Skip("set " + tEnvPostgres + "=postgres://... to run this test on PostgreSQL")
		}
		// A fresh schema, dropped (with everything in it) when t ends.
		return storetest.PostgresSchema(t, base)
	}},
}

// tConfig returns a validated configuration for a new data directory.
func tConfig(t *testing.T, dbURL string) *config.Config {
	t.Helper()
	cfg := &config.Config{
		DataDir:       filepath.Join(t.TempDir(), "data"),
		DB:            dbURL,
		HTTPSListen:   "127.0.0.1:0",
		HTTPListen:    "127.0.0.1:0",
		PublicHTTPURL: "http://pki.test:8080",
		// Tests stop instances at once (no load balancer to wait for).
		ShutdownDelay: "0s",
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func tLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// tInit creates the data directory of cfg.
func tInit(t *testing.T, cfg *config.Config, clk clock.Clock) {
	t.Helper()
	if _, err := Init(context.Background(), cfg, tLogger(), clk); err != nil {
		t.Fatalf("Init: %v", err)
	}
}

// tInstance is a running server and a client that trusts it.
type tInstance struct {
	t      *testing.T
	cfg    *config.Config
	clk    clock.Clock
	app    *App
	l      Listening
	pool   *x509.CertPool
	token  string
	client *http.Client

	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// tNewServer initialises a data directory and serves it.
func tNewServer(t *testing.T, dbURL string) *tInstance {
	t.Helper()
	cfg := tConfig(t, dbURL)
	clk := clock.Real{}
	tInit(t, cfg, clk)
	return tStart(t, cfg, clk)
}

// tStillRun runs fn, in parallel, on a new server of every backend whose
// clock stands still (fn moves it when it needs to).
func tStillRun(t *testing.T, fn func(t *testing.T, in *tInstance, clk *clock.Fake)) {
	t.Helper()
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC())
			tInit(t, cfg, clk)
			fn(t, tStart(t, cfg, clk), clk)
		})
	}
}

// tStart opens an existing data directory and runs it until the test ends
// (or stop is called).
func tStart(t *testing.T, cfg *config.Config, clk clock.Clock) *tInstance {
	t.Helper()
	return tStartLogged(t, cfg, clk, tLogger())
}

// tStartLogged is tStart with the instance's logger given.
func tStartLogged(t *testing.T, cfg *config.Config, clk clock.Clock, log *slog.Logger) *tInstance {
	t.Helper()
	if strings.HasPrefix(cfg.DB, "postgres") && (cfg.ReplicaName == "" || strings.HasPrefix(cfg.ReplicaName, tNamePrefix)) {
		// Instances in one test process would all default to host:0,
		// which the replica registry refuses twice: each one started
		// here without a name of the test's gets one of its own.
		c := *cfg
		c.ReplicaName = tReplicaName()
		cfg = &c
	}
	a, err := Open(context.Background(), cfg, log, clk)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &tInstance{t: t, cfg: cfg, clk: clk, app: a, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan Listening, 1)
	go func() { in.done <- a.Run(ctx, func(l Listening) { ready <- l }) }()
	select {
	case in.l = <-ready:
	case err := <-in.done:
		cancel()
		a.Close()
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("server not ready after 20s")
	}
	// Listening; ready (as /readyz says) once the revocation state is
	// loaded, which tests of a broken store may never see.
	for deadline := time.Now().Add(10 * time.Second); a.notReady() == "starting" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() {
		if !in.stopped {
			if err := in.stop(); err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
	rootPEM, err := os.ReadFile(filepath.Join(cfg.DataDir, RootFile))
	if err != nil {
		t.Fatal(err)
	}
	in.pool = x509.NewCertPool()
	if !in.pool.AppendCertsFromPEM(rootPEM) {
		t.Fatal("root.pem holds no certificate")
	}
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	in.token = strings.TrimSpace(string(tok))
	in.client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   in.tlsConfig(),
			ForceAttemptHTTP2: true,
		},
	}
	return in
}

// stop cancels the instance's context and waits for Run to return.
func (in *tInstance) stop() error {
	in.stopped = true
	in.cancel()
	defer in.app.Close()
	if in.client != nil {
		in.client.CloseIdleConnections()
	}
	select {
	case err := <-in.done:
		return err
	case <-time.After(20 * time.Second):
		return errors.New("Run did not return within 20s of cancellation")
	}
}

// tlsConfig trusts only the instance's root and verifies at the instance's
// clock's time (which a test may have moved).
func (in *tInstance) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: in.pool, MinVersion: tls.VersionTLS12, Time: in.clk.Now}
}

func (in *tInstance) httpsAddr() string { return strings.TrimPrefix(in.l.HTTPSURL, "https://") }
func (in *tInstance) httpAddr() string  { return strings.TrimPrefix(in.l.HTTPURL, "http://") }
func (in *tInstance) bearer() string    { return "Bearer " + in.token }

// tResp is an HTTP answer with its body read.
type tResp struct {
	status int
	header http.Header
	body   []byte
}

// apiErr decodes the JSON error body every API failure carries.
func (r tResp) apiErr(t *testing.T) apitypes.Error {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error answer has Content-Type %q, want application/json (body %q)", ct, tTrim(r.body))
	}
	var e apitypes.Error
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, tTrim(r.body))
	}
	if e.Error == "" {
		t.Errorf("error body has no \"error\": %q", tTrim(r.body))
	}
	return e
}

func tTrim(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

// raw sends one request; auth is the whole Authorization header ("" = none).
func (in *tInstance) raw(method, path, auth string, body io.Reader) tResp {
	in.t.Helper()
	req, err := http.NewRequest(method, in.l.HTTPSURL+path, body)
	if err != nil {
		in.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.client.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		in.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return tResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// call sends v as JSON with the admin token (v nil: no body).
func (in *tInstance) call(method, path string, v any) tResp {
	in.t.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			in.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	return in.raw(method, path, in.bearer(), body)
}

// must sends like call, fails unless the status is want, and decodes the
// answer into out (when not nil).
func (in *tInstance) must(want int, method, path string, v, out any) {
	in.t.Helper()
	r := in.call(method, path, v)
	if r.status != want {
		in.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, tTrim(r.body))
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			in.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// certCount is the size of the inventory as the API lists it.
func (in *tInstance) certCount() int {
	in.t.Helper()
	var l apitypes.CertificateList
	in.must(http.StatusOK, "GET", "/api/v1/certificates?limit=1000", nil, &l)
	if l.Next != "" {
		in.t.Fatal("more than 1000 certificates: count them with paging")
	}
	return len(l.Certificates)
}

// sign signs csrPEM under web_server and returns the answer.
func (in *tInstance) sign(csrPEM []byte) apitypes.IssuedCertificate {
	in.t.Helper()
	var out apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign",
		apitypes.SignRequest{CSRPEM: string(csrPEM), Profile: "web_server"}, &out)
	return out
}

// tCSR makes a CSR for names (the first is the common name) with key.
func tCSR(t *testing.T, key crypto.Signer, names ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
	}, key)
	if err != nil {
		t.Fatalf("CSR: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func tECKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tNeedOpenSSL skips t when openssl is not on the PATH.
func tNeedOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found on the PATH: install openssl to run this test")
	}
}

// tOpenSSL runs openssl in dir and returns its combined output and error.
func tOpenSSL(t *testing.T, dir string, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// tMustOpenSSL runs openssl and fails t if it fails.
func tMustOpenSSL(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := tOpenSSL(t, dir, "", args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ---- private-key scanning: see internal/keys/keyscan

var tScanner = keyscan.NewScanner()

func tFindPrivateKey(b []byte, secrets map[string][]byte) string { return keyscan.Find(b, secrets) }

func tFindPrivateKeyEncoded(v []byte, secrets map[string][]byte) string {
	return tScanner.FindEncoded(v, secrets)
}

// tSecret returns the raw private value of a key.
func tSecret(t *testing.T, k crypto.PrivateKey) []byte {
	t.Helper()
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	case *rsa.PrivateKey:
		return k.Primes[0].Bytes()
	case ed25519.PrivateKey:
		return k.Seed()
	}
	t.Fatalf("unexpected key type %T", k)
	return nil
}

// tScanDir fails t for any file under dir holding a private key.
func tScanDir(t *testing.T, dir string, secrets map[string][]byte) {
	t.Helper()
	for _, f := range tKeysInDir(t, dir, secrets) {
		t.Error(f)
	}
}

// tKeysInDir returns what tScanDir fails for: each file under dir holding
// a private key or one of secrets.
func tKeysInDir(t *testing.T, dir string, secrets map[string][]byte) []string {
	t.Helper()
	var found []string
	files := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if f := tFindPrivateKeyEncoded(b, secrets); f != "" {
			found = append(found, fmt.Sprintf("%s holds an unencrypted private key (%s)", path, f))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("scanned only %d files under %s: is the data directory where the test thinks?", files, dir)
	}
	return found
}

// tScanTables fails t for any value in any table of cfg's store
// that holds a private key. It returns how many rows it read per table.
func tScanTables(t *testing.T, cfg *config.Config, secrets map[string][]byte) map[string]int {
	t.Helper()
	counts, found := tKeysInTables(t, cfg, secrets)
	for _, f := range found {
		t.Error(f)
	}
	return counts
}

// tKeysInTables returns how many rows tScanTables read per table, and
// what it fails for: each value holding a private key or one of secrets.
func tKeysInTables(t *testing.T, cfg *config.Config, secrets map[string][]byte) (map[string]int, []string) {
	t.Helper()
	var found []string
	ctx := context.Background()
	var (
		db        *sql.DB
		listQuery string
		listArgs  []any
		err       error
	)
	if cfg.DB == "" {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, DBFile)+"?mode=ro")
		listQuery = `SELECT name FROM sqlite_master WHERE type = 'table'`
	} else {
		u, perr := url.Parse(cfg.DB)
		if perr != nil {
			t.Fatal(perr)
		}
		schema := u.Query().Get("search_path")
		if schema == "" {
			t.Fatal("PostgreSQL URL has no search_path")
		}
		db, err = postgres.Open(ctx, cfg.DB)
		listQuery = `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'`
		listArgs = []any{schema}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.QueryContext(ctx, listQuery, listArgs...)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+strings.ReplaceAll(table, `"`, `""`)+`"`)
		if err != nil {
			t.Fatalf("table %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("table %s: %v", table, err)
			}
			counts[table]++
			for i, v := range vals {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				case nil:
					continue
				default:
					b = fmt.Appendf(nil, "%v", v)
				}
				if f := tFindPrivateKeyEncoded(b, secrets); f != "" {
					found = append(found, fmt.Sprintf("table %s, row %d, column %s holds an unencrypted private key (%s)", table, counts[table], cols[i], f))
				}
			}
		}
		if err := rows.Close(); err != nil {
			t.Fatalf("table %s: %v", table, err)
		}
	}
	return counts, found
}

// ---- tests

// TestNoPlaintextPrivateKeys issues certificates (one with a managed key),
// creates an intermediate, and then looks for any private key — in any
// encoding, and by the raw secret of every key the test can name — in every
// file of the data directory and every value of every table.
func TestNoPlaintextPrivateKeys(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			in.tUseMachineAdmin(t)
			ctx := context.Background()

			csrKey := tECKey(t, elliptic.P256())
			in.sign(tCSR(t, csrKey, "app.example.internal"))
			var managed apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
				Profile: "internal_service", CommonName: "svc.example.internal", DNSNames: []string{"svc.example.internal"},
			}, &managed)
			var p12 apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
				Profile: "web_server", CommonName: "p12.example.internal", KeyAlgorithm: "rsa-2048",
				KeyFormat: "pkcs12", Password: "correct horse battery",
			}, &p12)
			in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
				Name: "team", Type: "intermediate", Parent: "root", CommonName: "Team CA",
			}, nil)
			in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
				Name: "ext", Type: "external", CommonName: "Ext CA", KeyAlgorithm: "rsa-2048",
			}, nil)

			// The raw secrets of every key the test can name: the managed
			// key handed out once, the server's TLS key and every CA key.
			secrets := map[string][]byte{}
			block, _ := pem.Decode([]byte(managed.PrivateKeyPEM))
			if block == nil {
				t.Fatal("managed-key answer holds no private key PEM")
			}
			mk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			secrets["the managed key"] = tSecret(t, mk)
			secrets["the server TLS key"] = tSecret(t, in.app.tls.cert.Load().PrivateKey)
			cas, err := in.app.store.ListCAs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(cas) != 4 {
				t.Fatalf("%d CAs, want root, issuing, team and ext", len(cas))
			}
			for _, c := range cas {
				s, err := in.app.keys.Signer(ctx, c.Key, keys.CAPurpose(c.ID))
				if err != nil {
					t.Fatal(err)
				}
				secrets["CA "+c.Name] = tSecret(t, s)
			}

			// The scanner finds what it looks for (else passing proves nothing).
			if f := tFindPrivateKey(append([]byte("xx"), block.Bytes...), nil); f == "" {
				t.Fatal("scanner misses a DER PKCS#8 key")
			}
			for _, enc := range []string{
				`["` + base64.StdEncoding.EncodeToString(block.Bytes) + `"]`,
				`{"k":"` + base64.RawURLEncoding.EncodeToString(block.Bytes) + `"}`,
				"x" + hex.EncodeToString(block.Bytes) + "x",
			} {
				if f := tFindPrivateKeyEncoded([]byte(enc), nil); f == "" {
					t.Fatalf("scanner misses an encoded PKCS#8 key in %.40q...", enc)
				}
			}
			if f := tFindPrivateKey(append([]byte("xx"), secrets["CA root"]...), secrets); f == "" {
				t.Fatal("scanner misses a raw secret")
			}

			// While running (SQLite's WAL is live), then stopped.
			tScanDir(t, in.cfg.DataDir, secrets)
			if err := in.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			tScanDir(t, in.cfg.DataDir, secrets)
			counts := tScanTables(t, in.cfg, secrets)
			for _, table := range []string{"cas", "certificates", "api_tokens", "settings", "audit_keys", "audit_events"} {
				if counts[table] == 0 {
					t.Errorf("table %s: no rows read (tables read: %v)", table, counts)
				}
			}
			if counts["cas"] != 4 || counts["certificates"] != 4 {
				t.Errorf("read %d CA rows and %d certificate rows, want 4 and 4 (server TLS, signed, managed, PKCS#12)", counts["cas"], counts["certificates"])
			}
		})
	}
}

// tCountCAs counts the CA rows by opening the store directly.
func tCountCAs(t *testing.T, cfg *config.Config) int {
	t.Helper()
	st, err := store.Open(context.Background(), DBURL(cfg), tLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cas, err := st.ListCAs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(cas)
}

// TestWrongKEKRefusesToStart replaces the KEK and checks that Open refuses,
// says why, and creates nothing.
func TestWrongKEKRefusesToStart(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			tInit(t, cfg, clock.Real{})
			before := tCountCAs(t, cfg)
			if before != 2 {
				t.Fatalf("%d CAs after init, want 2", before)
			}
			kekPath := filepath.Join(cfg.DataDir, KEKFile)
			old, err := os.ReadFile(kekPath)
			if err != nil {
				t.Fatal(err)
			}
			other := make([]byte, len(old))
			rand.Read(other)
			if bytes.Equal(other, old) {
				t.Fatal("random KEK equals the old one")
			}
			if err := os.WriteFile(kekPath, other, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(kekPath, 0o600); err != nil {
				t.Fatal(err)
			}

			a, err := Open(context.Background(), cfg, tLogger(), clock.Real{})
			if err == nil {
				a.Close()
				t.Fatal("Open succeeded with the wrong KEK")
			}
			if !errors.Is(err, keys.ErrWrongKEK) {
				t.Errorf("error %v does not wrap keys.ErrWrongKEK", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "key-encryption key") || !strings.Contains(msg, kekPath) {
				t.Errorf("error %q does not name the key-encryption key file %s", msg, kekPath)
			}
			if after := tCountCAs(t, cfg); after != before {
				t.Errorf("%d CAs after the refused start, want %d", after, before)
			}

			// The right KEK still opens: the refusal was about the key alone.
			if err := os.WriteFile(kekPath, old, 0o600); err != nil {
				t.Fatal(err)
			}
			a, err = Open(context.Background(), cfg, tLogger(), clock.Real{})
			if err != nil {
				t.Fatalf("Open with the original KEK: %v", err)
			}
			a.Close()
		})
	}
}

// tCorpProfile is a custom profile: ECDSA only, names under example.internal.
const tCorpProfile = `name: corp_web
keys: [{algorithm: ECDSA, min_bits: 256}]
max_validity_days: 90
renew_before_days: 30
key_usage: [digital_signature]
ext_key_usage: [server_auth]
names:
  dns: {allow: true, suffixes: [example.internal]}
  require_san: true
subject_fields: [common_name]
`

// servedLeaf dials the instance on a new connection and returns the
// certificate it presents.
func (in *tInstance) servedLeaf() *x509.Certificate {
	in.t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", in.httpsAddr(), in.tlsConfig())
	if err != nil {
		in.t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestRestartKeepsEverything issues, stops, opens again and checks that the
// certificates, CAs, profiles, token and TLS certificate are all still there
// and that issuance works.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			tInit(t, cfg, clock.Real{})
			in := tStart(t, cfg, clock.Real{})
			csr := tCSR(t, tECKey(t, elliptic.P256()), "app.example.internal")
			first := in.sign(csr)
			if r := in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tCorpProfile)); r.status != http.StatusCreated {
				t.Fatalf("create profile: %d %s", r.status, r.body)
			}
			in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
				Name: "team", Type: "intermediate", Parent: "root", CommonName: "Team CA",
			}, nil)
			count := in.certCount()
			tlsSerial := in.servedLeaf().SerialNumber
			if err := in.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			in2 := tStart(t, cfg, clock.Real{})
			if in2.token != in.token {
				t.Fatal("admin token file changed across a restart")
			}
			var got apitypes.Certificate
			in2.must(http.StatusOK, "GET", "/api/v1/certificates/"+first.Serial, nil, &got)
			if got.Fingerprint != first.Fingerprint || got.Profile != "web_server" {
				t.Errorf("after restart: %+v, want the certificate issued before (%s)", got, first.Fingerprint)
			}
			if n := in2.certCount(); n != count {
				t.Errorf("after restart the inventory lists %d certificates, want %d", n, count)
			}
			in2.must(http.StatusOK, "GET", "/api/v1/profiles/corp_web", nil, nil)
			in2.must(http.StatusOK, "GET", "/api/v1/cas/team", nil, nil)
			if s := in2.servedLeaf().SerialNumber; s.Cmp(tlsSerial) != 0 {
				t.Errorf("served TLS certificate %x after restart, want the stored %x (not a new one)", s, tlsSerial)
			}
			again := in2.sign(csr)
			if again.Serial == first.Serial {
				t.Error("a new issuance reused the serial")
			}
			var corp apitypes.IssuedCertificate
			in2.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(csr), Profile: "corp_web", CA: "team",
			}, &corp)
			if n := in2.certCount(); n != count+2 {
				t.Errorf("inventory lists %d certificates, want %d", n, count+2)
			}
		})
	}
}

// TestServerTLSRenewal moves a fake clock across two thirds of the server
// certificate's lifetime and checks that it is renewed then, and not before.
func TestServerTLSRenewal(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now().UTC())
	cfg := tConfig(t, "")
	tInit(t, cfg, clk)
	in := tStart(t, cfg, clk)
	ctx := context.Background()

	orig := in.servedLeaf()
	life := orig.NotAfter.Sub(orig.NotBefore)
	if want := time.Duration(cfg.TLSValidityDays) * 24 * time.Hour; life != want {
		t.Fatalf("server certificate lives %s, want %s", life, want)
	}
	renewAt := orig.NotAfter.Add(-life / 3)

	// Just before two thirds of the lifetime: kept.
	clk.Set(renewAt.Add(-time.Hour))
	if err := in.app.tls.refresh(ctx, false); err != nil {
		t.Fatal(err)
	}
	if s := in.servedLeaf().SerialNumber; s.Cmp(orig.SerialNumber) != 0 {
		t.Fatalf("renewed at %s, before two thirds of the lifetime (due %s)", clk.Now(), renewAt)
	}

	// Just after: renewed, served on a new connection, recorded.
	clk.Set(renewAt.Add(time.Hour))
	if err := in.app.tls.refresh(ctx, false); err != nil {
		t.Fatal(err)
	}
	renewed := in.servedLeaf()
	if renewed.SerialNumber.Cmp(orig.SerialNumber) == 0 {
		t.Fatalf("not renewed at %s, past two thirds of the lifetime (due %s)", clk.Now(), renewAt)
	}
	if !renewed.NotBefore.After(orig.NotBefore) || !renewed.NotAfter.After(orig.NotAfter) {
		t.Errorf("renewed certificate %s..%s does not start later than %s..%s",
			renewed.NotBefore, renewed.NotAfter, orig.NotBefore, orig.NotAfter)
	}
	if renewed.PublicKeyAlgorithm != orig.PublicKeyAlgorithm {
		t.Errorf("renewed key algorithm %s, was %s", renewed.PublicKeyAlgorithm, orig.PublicKeyAlgorithm)
	}
	stored, err := in.app.store.GetSetting(ctx, settingServerTLS)
	if err != nil {
		t.Fatal(err)
	}
	if want := pki.SerialHex(renewed.SerialNumber); string(stored) != want {
		t.Errorf("stored server TLS serial %s, want %s", stored, want)
	}
	// A second refresh keeps the renewed certificate.
	if err := in.app.tls.refresh(ctx, false); err != nil {
		t.Fatal(err)
	}
	if s := in.servedLeaf().SerialNumber; s.Cmp(renewed.SerialNumber) != 0 {
		t.Errorf("refresh renewed again (%x, want %x)", s, renewed.SerialNumber)
	}
	// The API still answers over the renewed certificate.
	in.client.CloseIdleConnections()
	in.must(http.StatusOK, "GET", "/api/v1/whoami", nil, nil)
}

// TestGracefulShutdown cancels the context: Run returns nil promptly, open
// connections are closed and both ports stop accepting.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	// A kept-alive connection, used once.
	conn, err := tls.Dial("tcp", in.httpsAddr(), in.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	if n, err := conn.Read(buf); err != nil || !bytes.Contains(buf[:n], []byte("200 OK")) {
		t.Fatalf("healthz over a kept-alive connection: %v %q", err, buf[:n])
	}
	plain, err := http.Get(in.l.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusOK {
		t.Fatalf("plain HTTP healthz: %d", plain.StatusCode)
	}

	start := time.Now()
	in.stopped = true
	in.cancel()
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("Run returned %v after cancellation, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancellation")
	}
	in.app.Close()
	t.Logf("shut down in %s", time.Since(start))

	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(buf); err == nil {
		t.Errorf("kept-alive connection still open after shutdown: read %q", buf[:n])
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("kept-alive connection still open after shutdown (read timed out)")
	}
	for _, addr := range []string{in.httpsAddr(), in.httpAddr()} {
		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after shutdown", addr)
		}
	}
}

// TestTLSPolicy: TLS 1.2 minimum with AEAD suites only, TLS 1.3 preferred,
// checked with Go's client and with openssl s_client.
func TestTLSPolicy(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	dial := func(c *tls.Config) (tls.ConnectionState, error) {
		c.RootCAs = in.pool
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", in.httpsAddr(), c)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.ConnectionState(), nil
	}
	tests := []struct {
		name      string
		cfg       *tls.Config
		ok        bool
		version   uint16
		suite     uint16
		errSubstr string
	}{
		{name: "TLS 1.1 refused", cfg: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
			errSubstr: "protocol version"},
		{name: "TLS 1.2 CBC refused", cfg: &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, errSubstr: "handshake failure"},
		{name: "TLS 1.2 ECDHE-ECDSA-AES128-GCM accepted", cfg: &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			ok: true, version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.3 accepted", cfg: &tls.Config{MinVersion: tls.VersionTLS13}, ok: true, version: tls.VersionTLS13},
		{name: "TLS 1.3 negotiated by default", cfg: &tls.Config{}, ok: true, version: tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, err := dial(tt.cfg)
			if !tt.ok {
				if err == nil {
					t.Fatalf("handshake succeeded: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
				if !strings.Contains(err.Error(), tt.errSubstr) {
					t.Errorf("handshake error %q, want the server's %q alert", err, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if st.Version != tt.version {
				t.Errorf("negotiated %s, want %s", tls.VersionName(st.Version), tls.VersionName(tt.version))
			}
			if tt.suite != 0 && st.CipherSuite != tt.suite {
				t.Errorf("negotiated %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tt.suite))
			}
		})
	}

	t.Run("openssl s_client", func(t *testing.T) {
		t.Parallel()
		tNeedOpenSSL(t)
		root := filepath.Join(in.cfg.DataDir, RootFile)
		sclient := func(extra ...string) (string, error) {
			args := append([]string{"s_client", "-connect", in.httpsAddr(), "-CAfile", root, "-verify_return_error"}, extra...)
			return tOpenSSL(t, t.TempDir(), "", args...)
		}
		// SECLEVEL=0 lets openssl itself offer TLS 1.1, so a failure is the server's refusal.
		out, err := sclient("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
		if err == nil {
			t.Errorf("openssl -tls1_1 connected:\n%s", out)
		} else if !strings.Contains(out, "alert protocol version") {
			t.Errorf("openssl -tls1_1 failed without the server's protocol_version alert:\n%s", out)
		}
		out, err = sclient("-tls1_3")
		if err != nil {
			t.Fatalf("openssl -tls1_3: %v\n%s", err, out)
		}
		if !strings.Contains(out, "TLSv1.3") || !strings.Contains(out, "Verify return code: 0 (ok)") {
			t.Errorf("openssl -tls1_3 did not negotiate a verified TLS 1.3 session:\n%s", out)
		}
		out, err = sclient("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
		if err == nil {
			t.Errorf("openssl -tls1_2 with ECDHE-ECDSA-AES128-SHA (CBC) connected:\n%s", out)
		}
	})
}

// tNamePrefix starts the replica names tReplicaName makes.
const tNamePrefix = "t-"

// tReplicaName is a random replica_name for an instance.
func tReplicaName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return tNamePrefix + hex.EncodeToString(b[:])
}
