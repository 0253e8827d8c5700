package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
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

func benchApp(b *testing.B, storeKind string) *App {
	b.Helper()
	cfg := &config.Config{
		DataDir: filepath.Join(b.TempDir(), "data"), HTTPSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		PublicHTTPURL: "http://pki.example.internal:8080", LogLevel: "error",
	}
	if storeKind == "postgres" {
		cfg.DB = benchPostgresURL(b)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
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
// verify the CSR, profile check, lint, sign, store durably.
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
			start := time.Now()
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
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "certs/s")
		})
	}
}

// BenchmarkIssueHTTPS measures end-to-end issuance over HTTPS: 32
// concurrent keep-alive clients POST /api/v1/certificates/sign.
func BenchmarkIssueHTTPS(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			a := benchApp(b, kind)
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan Listening, 1)
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx, func(l Listening) { ready <- l }) }()
			var l Listening
			select {
			case l = <-ready:
			case err := <-done:
				b.Fatal(err)
			}
			b.Cleanup(func() { cancel(); <-done })

			rootPEM, err := os.ReadFile(filepath.Join(a.cfg.DataDir, RootFile))
			if err != nil {
				b.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(rootPEM)
			token, err := os.ReadFile(filepath.Join(a.cfg.DataDir, TokenFile))
			if err != nil {
				b.Fatal(err)
			}
			const clients = 32
			tr := &http.Transport{
				TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
				MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, ForceAttemptHTTP2: false,
			}
			b.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			var bodies [][]byte
			for _, c := range benchCSRs(b, 256) {
				body, _ := json.Marshal(apitypes.SignRequest{CSRPEM: string(c), Profile: "web_server"})
				bodies = append(bodies, body)
			}
			auth := "Bearer " + strings.TrimSpace(string(token))
			var i atomic.Int64
			b.SetParallelism((clients + 1) / 2) // GOMAXPROCS 2 on the reference machine: 32 goroutines
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", l.HTTPSURL+"/api/v1/certificates/sign", bytes.NewReader(bodies[int(i.Add(1))%len(bodies)]))
					req.Header.Set("Authorization", auth)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "certs/s")
		})
	}
}
