package app

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/loadgen"
	"github.com/certwright/certwright/internal/pki"
)

// benchStores lists the stores a benchmark runs on: SQLite always,
// PostgreSQL when CERTWRIGHT_TEST_POSTGRES is set.
func benchStores(b *testing.B) []string {
	out := []string{"sqlite"}
	if os.Getenv("CERTWRIGHT_TEST_POSTGRES") != "" {
		out = append(out, "postgres")
	}
	return out
}

// benchPostgresURL creates a fresh schema and returns a URL using it.
func benchPostgresURL(b *testing.B) string {
	base := os.Getenv("CERTWRIGHT_TEST_POSTGRES")
	rb := make([]byte, 6)
	_, _ = rand.Read(rb)
	schema := "cw_bench_" + hex.EncodeToString(rb)
	db, err := sql.Open("pgx", base)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if os.Getenv("CERTWRIGHT_BENCH_KEEP_SCHEMA") != "" {
			// For EXPLAIN ANALYZE on the seeded data afterwards.
			b.Logf("PostgreSQL schema %s kept (CERTWRIGHT_BENCH_KEEP_SCHEMA); drop it with DROP SCHEMA %s CASCADE", schema, schema)
			return
		}
		db, err := sql.Open("pgx", base)
		if err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func benchApp(b *testing.B, storeKind string) *App { return benchAppWith(b, storeKind, nil) }

// benchAppWith is benchApp with the configuration adjusted by tune, after
// the defaults are set.
func benchAppWith(b *testing.B, storeKind string, tune func(*config.Config)) *App {
	b.Helper()
	cfg := &config.Config{
		DataDir: filepath.Join(b.TempDir(), "data"), HTTPSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		PublicHTTPURL: "http://pki.example.internal:8080", LogLevel: "error",
	}
	if storeKind == "postgres" {
		cfg.DB = benchPostgresURL(b)
	}
	cfg.Defaults()
	if tune != nil {
		tune(cfg)
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	// The server runs with serve's GC target (ServeGCPercent, or GOGC when
	// set); the benchmarks' clients, in a child process, keep Go's.
	prevGC := debug.SetGCPercent(100)
	debug.SetGCPercent(prevGC)
	if SetServeGCTarget(os.Getenv) {
		b.Cleanup(func() { debug.SetGCPercent(prevGC) })
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	if _, err := Init(ctx, cfg, log, clock.Real{}); err != nil {
		b.Fatal(err)
	}
	a, err := Open(ctx, cfg, log, clock.Real{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a
}

// benchCSRs makes n distinct P-256 CSRs as PEM.
func benchCSRs(b *testing.B, n int) [][]byte {
	b.Helper()
	out := make([][]byte, n)
	for i := range out {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("host%d.example.internal", i)
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		}, k)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	return out
}

// BenchmarkCreateCertificateBare is the floor: x509.CreateCertificate of a
// P-256 leaf by a P-256 issuer (which includes Go's check of the signature),
// with nothing else around it.
func BenchmarkCreateCertificateBare(b *testing.B) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3, 4},
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serial, _ := pki.NewSerial(nil)
			tmpl := &x509.Certificate{
				SerialNumber: serial, Subject: pkix.Name{CommonName: "host.example.internal"},
				DNSNames: []string{"host.example.internal"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
				KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}
			if _, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, leafKey.Public(), caKey); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "certs/s")
}

// BenchmarkIssueInProcess runs the whole issuance path in-process: parse and
// verify the CSR, profile check, lint, sign, store durably. cpu-us/cert is
// the process's CPU time (RUSAGE_SELF: every goroutine, GC included) over
// the timed section per certificate; on PostgreSQL the database server's
// own CPU is not in it.
func BenchmarkIssueInProcess(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			a := benchApp(b, kind)
			csrs := benchCSRs(b, 256)
			var i atomic.Int64
			p := authz.WithRole("bench", authz.KindMachine, authz.RoleAdmin, authz.Scope{})
			ctx := context.Background()
			b.SetParallelism(16) // 32 concurrent callers on 2 cores, as the HTTPS benchmark
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), benchCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					csr, err := pki.ParseCSR(csrs[int(i.Add(1))%len(csrs)])
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := a.issuer.Issue(ctx, issue.Request{Principal: p, CA: "issuing", Profile: "web_server", CSR: csr}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu, elapsed := benchCPU(b)-cpu0, time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "certs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/cert")
		})
	}
}

// benchServe runs a's servers until the benchmark ends.
func benchServe(b *testing.B, a *App) Listening {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Listening, 1)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, func(l Listening) { ready <- l }) }()
	var l Listening
	select {
	case l = <-ready:
	case err := <-done:
		b.Fatal(err)
	case <-time.After(20 * time.Second):
		b.Fatal("server not ready after 20s")
	}
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			b.Error("Run did not return within 20s of cancellation")
		}
	})
	return l
}

// benchIssueClients is the concurrency of BenchmarkIssueHTTPS, as in the
// issue's reference measurement.
const benchIssueClients = 32

// benchIssuePlan is what BenchmarkIssueHTTPS tells its client process.
type benchIssuePlan struct {
	URL, RootFile, TokenFile string
	Count, Warmup, Clients   int
}

// BenchmarkIssueHTTPS measures end-to-end issuance over HTTPS: 32
// concurrent keep-alive clients POST /api/v1/certificates/sign. The
// clients (internal/loadgen, as "certwright bench issue") run in a child
// process and prepare every CSR and warm every connection before the
// timer starts, so ns/op, allocs/op and cpu-us/cert (RUSAGE_SELF over the
// timed section per certificate) are the server's alone; p99-ms is the
// clients' latency. On PostgreSQL the database server's CPU is not in it.
func BenchmarkIssueHTTPS(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			a := benchApp(b, kind)
			l := benchServe(b, a)
			child := startBenchChild(b, "issue")
			child.say("plan", benchIssuePlan{
				URL: l.HTTPSURL, RootFile: filepath.Join(a.cfg.DataDir, RootFile), TokenFile: filepath.Join(a.cfg.DataDir, TokenFile),
				Count: b.N, Warmup: 2 * benchIssueClients, Clients: benchIssueClients,
			})
			var res loadgen.Result
			cpu := child.measure(&res)
			if res.Failed > 0 || res.OK != b.N {
				b.Fatalf("%d of %d issued; first failure %+v; by status %v", res.OK, b.N, res.FirstFailure, res.ErrorsByStatus)
			}
			b.ReportMetric(res.CertsPerSecond, "certs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/cert")
			b.ReportMetric(res.Latency.P99, "p99-ms")
		})
	}
}

// benchChildIssue is the client process of BenchmarkIssueHTTPS.
func benchChildIssue(t *testing.T, in *bufio.Scanner) {
	var p benchIssuePlan
	childHear(t, in, "plan", &p)
	pool := benchRoots(t, p.RootFile)
	token, err := os.ReadFile(p.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	target := loadgen.Target{URL: p.URL, Token: strings.TrimSpace(string(token)), Roots: pool}
	ctx := context.Background()
	batch, err := loadgen.Prepare(ctx, loadgen.Plan{Count: p.Count, Warmup: p.Warmup, Profile: "web_server", Key: pki.ECDSAP256, Domain: "bench.example.internal"})
	if err != nil {
		t.Fatal(err)
	}
	hc := loadgen.NewHTTPClient(target, p.Clients)
	defer hc.CloseIdleConnections()
	opts := loadgen.Options{Clients: p.Clients, MaxDuration: 10 * time.Minute}
	// The warm-up runs on its own, so that the benchmark's timer starts
	// after it and before the measured requests.
	if len(batch.Warmup) > 0 {
		warm, err := loadgen.Run(ctx, hc, target, &loadgen.Batch{Measured: batch.Warmup}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if warm.Failed > 0 {
			t.Fatalf("warm-up: %d failed, the first: %+v", warm.Failed, warm.FirstFailure)
		}
	}
	childSay(t, "ready", struct{}{})
	childHear(t, in, "go", nil)
	res, err := loadgen.Run(ctx, hc, target, &loadgen.Batch{Measured: batch.Measured}, opts)
	if err != nil {
		t.Fatal(err)
	}
	childSay(t, "result", res)
}
