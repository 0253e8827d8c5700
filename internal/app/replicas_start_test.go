package app

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/storetest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tPGConfig is tConfig on a fresh PostgreSQL schema, skipping t without
// PostgreSQL (several replicas need it; SQLite has one process).
func tPGConfig(t *testing.T) *config.Config {
	t.Helper()
	base := os.Getenv(tEnvPostgres)
	if base == "" {
		t.Skip("set " + tEnvPostgres + "=postgres://... to run the replica start-up tests")
	}
	return tConfig(t, storetest.PostgresSchema(t, base))
}

// tRawDB opens the schema of cfg directly, closed when t ends.
func tRawDB(t *testing.T, cfg *config.Config) *sql.DB {
	t.Helper()
	raw, err := postgres.Open(context.Background(), cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func tCount(t *testing.T, raw *sql.DB, query string) int {
	t.Helper()
	var n int
	if err := raw.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestReplicasStartTogetherOneAuditKey: two replicas started at the same
// instant on an initialised database without an audit key end with one
// key between them, both sign checkpoints with it, and audit verify
// finds the log intact.
func TestReplicasStartTogetherOneAuditKey(t *testing.T) {
	t.Parallel()
	cfg := tPGConfig(t)
	clk := clock.Real{}
	tInit(t, cfg, clk)
	raw := tRawDB(t, cfg)
	// As before the first start of a database whose key was never made
	// (the append-only triggers set aside for this session).
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`SET LOCAL session_replication_role = replica`, `DELETE FROM audit_checkpoints`, `DELETE FROM audit_keys`} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg.DataDir, AnchorFile)); err != nil {
		t.Fatal(err)
	}
	servers := [2]int{tCount(t, raw, `SELECT COUNT(*) FROM certificates`), 0}

	apps := make([]*App, 2)
	for i := range apps {
		own := *cfg
		own.ReplicaName = tReplicaName()
		a, err := Open(context.Background(), &own, tLogger(), clk)
		if err != nil {
			t.Fatal(err)
		}
		apps[i] = a
	}
	ctx, cancel := context.WithCancel(context.Background())
	go1 := make(chan struct{})
	ready := make(chan error, 2)
	done := make(chan error, 2)
	for _, a := range apps {
		go func() {
			<-go1
			done <- a.Run(ctx, func(Listening) { ready <- nil })
		}()
	}
	close(go1)
	t.Cleanup(func() {
		cancel()
		for range apps {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
		for _, a := range apps {
			a.Close()
		}
	})
	for range apps {
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("Run returned before ready: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("replicas not ready after 30s")
		}
	}
	if n := tCount(t, raw, `SELECT COUNT(*) FROM audit_keys`); n != 1 {
		t.Fatalf("%d audit keys after two replicas started together, want 1", n)
	}
	// The server certificate too was issued by neither (init's is good).
	if servers[1] = tCount(t, raw, `SELECT COUNT(*) FROM certificates`); servers[1] != servers[0] {
		t.Errorf("%d certificates after the starts, %d before: a replica issued a server certificate", servers[1], servers[0])
	}
	for _, a := range apps {
		if err := a.store.AppendAudit(context.Background(), tAuditEvent(a)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.audit.Checkpoint(context.Background()); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
	}
	for i, a := range apps {
		rep, err := auditor{DB: a.store, app: a}.Verify(context.Background(), authz.System())
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Intact || rep.Checkpoints < 2 {
			b, _ := json.Marshal(rep)
			t.Errorf("replica %d: audit verify: %s; want intact with both replicas' checkpoints", i, b)
		}
	}
}

// TestReplicasStartTogetherOneServerCertificateAndResponder: with no
// server certificate and no OCSP responder stored, two replicas started
// together issue one of each between them.
func TestReplicasStartTogetherOneServerCertificateAndResponder(t *testing.T) {
	t.Parallel()
	cfg := tPGConfig(t)
	clk := clock.Real{}
	tInit(t, cfg, clk)
	raw := tRawDB(t, cfg)
	for _, q := range []string{`DELETE FROM settings WHERE name = 'server_tls_serial'`, `DELETE FROM ocsp_responders`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	before := tCount(t, raw, `SELECT COUNT(*) FROM certificates`)
	const issued = `SELECT COUNT(*) FROM audit_events WHERE action = 'ocsp.responder.issue'`
	eventsBefore := tCount(t, raw, issued)
	var a, b *tInstance
	var wg sync.WaitGroup
	wg.Go(func() { a = tStart(t, cfg, clk) })
	wg.Go(func() { b = tStart(t, cfg, clk) })
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := tCount(t, raw, `SELECT COUNT(*) FROM certificates`) - before; n != 1 {
		t.Errorf("%d server certificates issued by two replicas starting together, want 1", n)
	}
	if sa, sb := a.app.tls.cert.Load().Leaf.SerialNumber, b.app.tls.cert.Load().Leaf.SerialNumber; sa.Cmp(sb) != 0 {
		t.Errorf("the replicas serve different server certificates: %x and %x", sa, sb)
	}
	// Both answer OCSP at once: one responder between them.
	leaf, issuer := tIssued(t, a, "responder.example.com")
	var ocspWG sync.WaitGroup
	for _, in := range []*tInstance{a, b} {
		ocspWG.Go(func() { tOCSPStatus(t, in, leaf, issuer) })
	}
	ocspWG.Wait()
	// One per CA (the root answers for the issuing CA's certificate).
	// The root's is issued by the replicas' background pre-signing, which
	// a busy machine may not have run yet: it is waited for (bounded).
	cas := tCount(t, raw, `SELECT COUNT(*) FROM cas`)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if tCount(t, raw, `SELECT COUNT(*) FROM ocsp_responders`) >= cas {
			break
		}
	}
	events := tCount(t, raw, issued) - eventsBefore
	if responders := tCount(t, raw, `SELECT COUNT(*) FROM ocsp_responders`); responders != cas || events != cas {
		t.Errorf("%d responders stored and %d issued by two replicas for %d CAs, want one per CA", responders, events, cas)
	}
}

// tAuditEvent is an event for a to append.
func tAuditEvent(a *App) audit.Event {
	return audit.New(authz.System(), a.clock.Now(), "test.replica", "replica", nil)
}

// TestInitConcurrentOneSetOfCAs: two init runs against one empty schema
// (two data directories) at the same instant: exactly one succeeds, the
// other is refused with the clean message and leaves neither rows nor its
// directory behind.
func TestInitConcurrentOneSetOfCAs(t *testing.T) {
	t.Parallel()
	cfg := tPGConfig(t)
	other := *cfg
	other.DataDir = filepath.Join(t.TempDir(), "data2")
	other.Init.RootName = "other-root" // so a CA name clash cannot be what stops it
	other.Init.IssuingName = "other-issuing"
	other.DefaultCA = "other-issuing"
	go1 := make(chan struct{})
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, c := range []*config.Config{cfg, &other} {
		wg.Go(func() {
			<-go1
			_, errs[i] = Init(context.Background(), c, tLogger(), clock.Real{})
		})
	}
	close(go1)
	wg.Wait()
	ok := slices.IndexFunc(errs, func(err error) bool { return err == nil })
	if ok < 0 || errs[1-ok] == nil {
		t.Fatalf("init results %v; want exactly one success", errs)
	}
	if msg := errs[1-ok].Error(); !strings.Contains(msg, "already holds CAs; to add a replica, copy the existing data directory (with its kek) instead of running init") {
		t.Errorf("the second init: %v; want the clean refusal", errs[1-ok])
	}
	loser := []*config.Config{cfg, &other}[1-ok]
	if Exists(loser.DataDir) {
		t.Errorf("the refused init left its data directory %s", loser.DataDir)
	}
	raw := tRawDB(t, cfg)
	if n := tCount(t, raw, `SELECT COUNT(*) FROM cas`); n != 2 {
		t.Errorf("%d CAs after two inits, want one root and one issuing CA", n)
	}
	for _, q := range []string{`SELECT COUNT(*) FROM audit_keys`, `SELECT COUNT(*) FROM principals WHERE name = 'admin'`} {
		if n := tCount(t, raw, q); n != 1 {
			t.Errorf("%s = %d, want 1", q, n)
		}
	}
	// The winner starts.
	tStart(t, []*config.Config{cfg, &other}[ok], clock.Real{})
}

// TestReplicaRefusedOnDisagreeingTLSNames: a replica configured with other
// tls_names than a running one is refused at start, naming tls_names; once
// the running one has stopped it starts.
func TestReplicaRefusedOnDisagreeingTLSNames(t *testing.T) {
	t.Parallel()
	cfg := tPGConfig(t)
	clk := clock.Real{}
	tInit(t, cfg, clk)
	a := tStart(t, cfg, clk)
	serial := a.app.tls.cert.Load().Leaf.SerialNumber

	odd := *cfg
	odd.TLSNames = []string{"localhost", "127.0.0.1", "pki.other.test"}
	b, err := Open(context.Background(), &odd, tLogger(), clk)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Run(context.Background(), func(Listening) { t.Error("the disagreeing replica started") })
	var dis *DisagreementError
	if !errors.As(err, &dis) || !slices.Equal(dis.Settings, []string{"tls_names"}) {
		t.Fatalf("Run with other tls_names: %v; want a refusal naming tls_names", err)
	}
	if !strings.Contains(err.Error(), "tls_names") || !strings.Contains(err.Error(), "pki.other.test") {
		t.Errorf("refusal %q does not say what differs", err)
	}
	if got := a.app.tls.cert.Load().Leaf.SerialNumber; got.Cmp(serial) != 0 {
		t.Error("the refused replica replaced the server certificate")
	}
	t.Logf("refused: %v", err)

	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	in := tStart(t, &odd, clk)
	if names := certNames(in.app.tls.cert.Load().Leaf); !slices.Contains(names, "pki.other.test") {
		t.Errorf("after the other replica stopped: server certificate names %v", names)
	}
}

// TestReplicaReloadDisagreeingRefused: a reload that would make a
// replica's agreed settings differ from a running replica's is refused,
// and /readyz reports it until a reload agrees again.
func TestReplicaReloadDisagreeingRefused(t *testing.T) {
	t.Parallel()
	a, b := tReplicas(t)
	cfg := a.cfg
	next := *cfg
	next.TLSNames = []string{"localhost", "pki.changed.test"}
	load := &next
	r := b.app.NewReloader(nil, func() (*config.Config, error) { c := *load; return &c, nil })
	if _, err := r.Reload(context.Background()); !errors.As(err, new(*DisagreementError)) {
		t.Fatalf("reload with other tls_names while A runs: %v; want a disagreement", err)
	}
	if why := b.app.notReady(); !strings.Contains(why, "reload refused") {
		t.Errorf("after the refused reload /readyz says %q", why)
	}
	if names := certNames(b.app.tls.cert.Load().Leaf); slices.Contains(names, "pki.changed.test") {
		t.Error("the refused reload re-issued the server certificate")
	}
	load = cfg
	if _, err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if why := b.app.notReady(); why != "" {
		t.Errorf("after an agreeing reload /readyz says %q", why)
	}
}

// TestReplicaCursorKeyShared: replicas (copies of one data directory)
// seal list cursors under one key, derived from their KEK; another
// instance's KEK gives another.
func TestReplicaCursorKeyShared(t *testing.T) {
	t.Parallel()
	a, b := tReplicas(t)
	if len(a.app.cursorKey) != 32 || !bytes.Equal(a.app.cursorKey, b.app.cursorKey) {
		t.Fatalf("replicas' cursor keys differ (%d bytes)", len(a.app.cursorKey))
	}
	c := tNewServer(t, "")
	if bytes.Equal(c.app.cursorKey, a.app.cursorKey) {
		t.Error("another instance derived the same cursor key")
	}
}

// TestReadyzStoreUnreachable: /readyz answers 503 while the database is
// unreachable, says so once the notification listener has not caught up
// past its grace, and answers ready again when the database is back;
// whether the connections are cut (reset) or stall (a silent network,
// which the listener notices only by its deadlines).
func TestReadyzStoreUnreachable(t *testing.T) {
	t.Parallel()
	for _, outage := range []string{"cut", "stall"} {
		t.Run(outage, func(t *testing.T) {
			t.Parallel()
			cfg, proxy := tProxiedPostgres(t)
			tInit(t, cfg, clock.Real{})
			in := tStart(t, cfg, clock.Real{})
			plain := &http.Client{Timeout: 10 * time.Second}
			readyz := func() tResp {
				r, _ := tTimed(t, plain, "GET", in.l.HTTPURL+"/readyz", "")
				return r
			}
			if r := readyz(); r.status != http.StatusOK {
				t.Fatalf("/readyz before the outage: %d %q", r.status, r.body)
			}
			if outage == "cut" {
				proxy.cut()
			} else {
				proxy.stall()
			}
			time.Sleep(1100 * time.Millisecond) // past the health cache
			if r := readyz(); r.status != http.StatusServiceUnavailable {
				t.Errorf("/readyz with the database %s: %d %q, want 503", outage, r.status, r.body)
			}
			time.Sleep(listenerGrace)
			if r := readyz(); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "notification listener") {
				t.Errorf("/readyz with the database %s past the listener's grace: %d %q", outage, r.status, r.body)
			}
			proxy.forward()
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				r := readyz()
				if r.status == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz still %d %q 15s after the database came back", r.status, r.body)
				}
			}
		})
	}
}

// TestDrainReadyzAndInFlight: on shutdown /readyz turns 503 "draining"
// at once while the listeners go on serving for shutdown_delay; a request
// in flight when the listeners shut down completes.
func TestDrainReadyzAndInFlight(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			cfg.ShutdownDelay = "1500ms"
			tInit(t, cfg, clock.Real{})
			in := tStart(t, cfg, clock.Real{})
			plain := &http.Client{Timeout: 10 * time.Second}

			// A request in flight: its body arrives after shutdown began.
			pr, pw := io.Pipe()
			req, err := http.NewRequest("POST", in.l.HTTPSURL+"/api/v1/certificates/sign", pr)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", in.bearer())
			req.Header.Set("Content-Type", "application/json")
			body, _ := json.Marshal(apitypes.SignRequest{CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "drain.example.com")), Profile: "web_server"})
			answered := make(chan tResp, 1)
			go func() {
				resp, err := in.client.Do(req)
				if err != nil {
					answered <- tResp{status: -1, body: []byte(err.Error())}
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				answered <- tResp{status: resp.StatusCode, body: b}
			}()
			if _, err := pw.Write(body[:10]); err != nil {
				t.Fatal(err)
			}

			stopped := make(chan error, 1)
			go func() { stopped <- in.stop() }()
			at := time.Now()
			for in.app.notReady() == "" {
				time.Sleep(time.Millisecond)
			}
			if r, _ := tTimed(t, plain, "GET", in.l.HTTPURL+"/readyz", ""); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "draining") {
				t.Errorf("/readyz while draining: %d %q", r.status, r.body)
			}
			// Still serving new requests within shutdown_delay.
			if r, _ := tTimed(t, plain, "GET", in.l.HTTPURL+"/healthz", ""); r.status != http.StatusOK {
				t.Errorf("/healthz while draining: %d %q, want 200 (liveness, and still serving)", r.status, r.body)
			}
			// Past the delay the listeners shut down; the request in
			// flight gets its body and its answer.
			time.Sleep(2 * time.Second)
			if _, err := pw.Write(body[10:]); err != nil {
				t.Fatalf("finishing the in-flight request's body: %v", err)
			}
			pw.Close()
			select {
			case r := <-answered:
				if r.status != http.StatusCreated {
					t.Errorf("the request in flight during shutdown: %d %s", r.status, tTrim(r.body))
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no answer to the request in flight")
			}
			if err := <-stopped; err != nil {
				t.Errorf("Run: %v", err)
			}
			if took := time.Since(at); took < 1500*time.Millisecond {
				t.Errorf("Run returned %s after the shutdown began, before shutdown_delay", took)
			}
		})
	}
}
