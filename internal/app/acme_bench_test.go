// Run with:
//
//	go test ./internal/app -run '^$' -bench BenchmarkACMEOrders -benchtime 2000x

package app

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/config"
)

// tACBenchWorkers is the number of concurrent ACME clients, one account each.
const tACBenchWorkers = 16

// BenchmarkACMEOrders measures complete ACME orders over HTTPS: 16 clients,
// each with its own account, run b.N orders between them, each for a new
// name: new-order, authorization, http-01 challenge, polling, finalize and
// download. The clients, their http-01 responder and the DNS server the
// validation asks run in a child process (see TestBenchClientHelper), so
// cpu-ms/order (RUSAGE_SELF over the timed section per order) and
// allocs/op are the server's alone. It also reports orders/s, the p50 and
// p99 latency of one order and the requests one order takes.
func BenchmarkACMEOrders(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) { tACBenchOrders(b, kind) })
	}
}

// tACBenchListening is where the client process answers validation.
type tACBenchListening struct {
	HTTP01Port int
	DNS        string
}

// tACBenchPlan is what the benchmark tells its client process.
type tACBenchPlan struct {
	DirURL, RootFile string
	Orders, Workers  int
}

// tACBenchResult is what the client process reports.
type tACBenchResult struct {
	Orders         int
	Error          string
	ElapsedSeconds float64
	P50MS, P99MS   float64
	Requests       int64
}

// tACBenchServer serves an instance on storeKind whose validation reaches
// the http-01 responder on h01Port for every name (resolved by the DNS
// server at dns), with the ACME limits out of the way.
func tACBenchServer(b *testing.B, storeKind string, at tACBenchListening) (*App, Listening) {
	b.Helper()
	a := benchAppWith(b, storeKind, func(cfg *config.Config) {
		ac := &cfg.ACME
		ac.HTTP01Port, ac.Resolver = at.HTTP01Port, at.DNS
		ac.OrdersPerHour, ac.AccountsPerHour = 1_000_000, 1_000_000
		ac.FailedValidationsPerHour, ac.PendingAuthorizations = 1_000_000, 1_000_000
	})
	return a, benchServe(b, a)
}

func tACBenchOrders(b *testing.B, storeKind string) {
	child := startBenchChild(b, "acme")
	var at tACBenchListening
	child.hear("listening", &at)
	a, l := tACBenchServer(b, storeKind, at)
	child.say("plan", tACBenchPlan{
		DirURL: l.HTTPSURL + "/acme/default/directory", RootFile: filepath.Join(a.cfg.DataDir, RootFile),
		Orders: b.N, Workers: tACBenchWorkers,
	})
	var res tACBenchResult
	cpu := child.measure(&res)
	if res.Error != "" || res.Orders != b.N {
		b.Fatalf("%d of %d orders: %s", res.Orders, b.N, res.Error)
	}
	b.ReportMetric(float64(b.N)/res.ElapsedSeconds, "orders/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/order")
	b.ReportMetric(res.P50MS, "p50-ms")
	b.ReportMetric(res.P99MS, "p99-ms")
	b.ReportMetric(float64(res.Requests)/float64(b.N), "reqs/order")
}

// benchChildACME is the client process of BenchmarkACMEOrders: the http-01
// responder, the DNS server and the ACME clients.
func benchChildACME(t *testing.T, in *bufio.Scanner) {
	h01 := tACNewHTTP01(t)
	dns := validatetest.NewDNSServer(t)
	dns.SetDefaultA(netip.MustParseAddr("127.0.0.1"))
	childSay(t, "listening", tACBenchListening{HTTP01Port: h01.port, DNS: dns.Addr()})
	var p tACBenchPlan
	childHear(t, in, "plan", &p)

	pool := benchRoots(t, p.RootFile)
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 2 * p.Workers, MaxConnsPerHost: 2 * p.Workers,
	}
	defer tr.CloseIdleConnections()
	counted := &tACCountingTransport{next: tr}
	hc := &http.Client{Transport: counted, Timeout: 30 * time.Second}

	clients := make([]*tACClient, p.Workers)
	for i := range clients {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if clients[i], err = tACNewClient(hc, p.DirURL, key); err != nil {
			t.Fatal(err)
		}
		if err := clients[i].newAccount(); err != nil {
			t.Fatal(err)
		}
	}
	csrKeys := make([]*ecdsa.PrivateKey, p.Orders)
	for i := range csrKeys {
		var err error
		if csrKeys[i], err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	childSay(t, "ready", struct{}{})
	childHear(t, in, "go", nil)

	var (
		next      atomic.Int64
		mu        sync.Mutex
		firstErr  error
		latencies = make([]time.Duration, 0, p.Orders)
		wg        sync.WaitGroup
	)
	counted.n.Store(0)
	start := time.Now()
	for _, c := range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= p.Orders {
					return
				}
				t0 := time.Now()
				err := tACBenchOrder(c, h01, csrKeys[i], fmt.Sprintf("o%d.bench.test", i))
				d := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("order %d: %w", i, err)
					next.Store(int64(p.Orders)) // the others stop after their current order
				}
				if err == nil {
					latencies = append(latencies, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res := tACBenchResult{Orders: len(latencies), ElapsedSeconds: time.Since(start).Seconds(), Requests: counted.n.Load()}
	if firstErr != nil {
		res.Error = firstErr.Error()
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		pct := func(q float64) float64 {
			i := min(len(latencies)-1, int(q*float64(len(latencies))))
			return float64(latencies[i].Microseconds()) / 1000
		}
		res.P50MS, res.P99MS = pct(0.50), pct(0.99)
	}
	childSay(t, "result", res)
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
