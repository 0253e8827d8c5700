// Run with:
//
//	go test ./internal/app -run '^$' -bench BenchmarkACMEOrders -benchtime 2000x

package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// tACBenchWorkers is the number of concurrent ACME clients, one account each.
const tACBenchWorkers = 16

// BenchmarkACMEOrders measures complete ACME orders over HTTPS: 16 clients,
// each with its own account, run b.N orders between them, each for a new
// name: new-order, authorization, http-01 challenge, polling, finalize and
// download. It reports orders/s and the p50 and p99 latency of one order.
func BenchmarkACMEOrders(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) { tACBenchOrders(b, kind) })
	}
}

// tACBenchServer serves an instance on storeKind whose validation reaches
// h01 for every name, with the ACME limits out of the way.
func tACBenchServer(b *testing.B, storeKind string, h01 *tACHTTP01) (*App, Listening) {
	b.Helper()
	dns := validatetest.NewDNSServer(b)
	dns.SetDefaultA(netip.MustParseAddr("127.0.0.1"))
	cfg := &config.Config{
		DataDir: filepath.Join(b.TempDir(), "data"), HTTPSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		PublicHTTPURL: "http://pki.example.internal:8080", LogLevel: "error",
	}
	if storeKind == "postgres" {
		cfg.DB = benchPostgresURL(b)
	}
	cfg.Defaults()
	ac := &cfg.ACME
	ac.HTTP01Port, ac.Resolver = h01.port, dns.Addr()
	ac.OrdersPerHour, ac.AccountsPerHour = 1_000_000, 1_000_000
	ac.FailedValidationsPerHour, ac.PendingAuthorizations = 1_000_000, 1_000_000
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := Init(ctx, cfg, log, clock.Real{}); err != nil {
		b.Fatal(err)
	}
	a, err := Open(ctx, cfg, log, clock.Real{})
	if err != nil {
		b.Fatal(err)
	}
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
		a.Close()
	})
	return a, l
}

func tACBenchOrders(b *testing.B, storeKind string) {
	h01 := tACNewHTTP01(b)
	a, l := tACBenchServer(b, storeKind, h01)
	rootPEM, err := os.ReadFile(filepath.Join(a.cfg.DataDir, RootFile))
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootPEM)
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 2 * tACBenchWorkers, MaxConnsPerHost: 2 * tACBenchWorkers,
	}
	b.Cleanup(tr.CloseIdleConnections)
	counted := &tACCountingTransport{next: tr}
	hc := &http.Client{Transport: counted, Timeout: 30 * time.Second}

	clients := make([]*tACClient, tACBenchWorkers)
	for i := range clients {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if clients[i], err = tACNewClient(hc, l.HTTPSURL+"/acme/default/directory", key); err != nil {
			b.Fatal(err)
		}
		if err := clients[i].newAccount(); err != nil {
			b.Fatal(err)
		}
	}
	csrKeys := make([]*ecdsa.PrivateKey, b.N)
	for i := range csrKeys {
		if csrKeys[i], err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			b.Fatal(err)
		}
	}

	var (
		next      atomic.Int64
		failed    atomic.Bool
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		wg        sync.WaitGroup
	)
	b.ReportAllocs()
	counted.n.Store(0)
	b.ResetTimer()
	start := time.Now()
	for _, c := range clients {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := tACBenchOrder(c, h01, csrKeys[i], fmt.Sprintf("o%d.bench.test", i)); err != nil {
					b.Errorf("order %d: %v", i, err)
					failed.Store(true)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() || len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		i := min(len(latencies)-1, int(p*float64(len(latencies))))
		return float64(latencies[i].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "orders/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(counted.n.Load())/float64(b.N), "reqs/order")
}

// tACCountingTransport counts the requests the clients send.
type tACCountingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (t *tACCountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

// tACBenchOrder runs one complete order for name.
func tACBenchOrder(c *tACClient, h01 *tACHTTP01, csrKey *ecdsa.PrivateKey, name string) error {
	_, chainPEM, err := c.obtain(h01, csrKey, tACDNS(name))
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(chainPEM)
	if blk == nil {
		return fmt.Errorf("certificate for %s: no PEM", name)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("certificate for %s: %w", name, err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name {
		return fmt.Errorf("certificate for %s names %v", name, leaf.DNSNames)
	}
	return nil
}
