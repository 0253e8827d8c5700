package app

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/est"
)

// benchESTPlan is what BenchmarkESTEnroll tells its client process: one
// IDevID (certificate and key, PEM) per device.
type benchESTPlan struct {
	URL, RootFile          string
	Devices                [][2]string
	Count, Warmup, Clients int
}

// benchESTResult is the client process's measurement.
type benchESTResult struct {
	OK, Failed     int
	First          string
	CertsPerSecond float64
	P99            float64 // ms
}

// BenchmarkESTEnroll measures EST enrolment as BenchmarkIssueHTTPS
// measures the API: 32 devices, each with its own IDevID as TLS client
// certificate on a keep-alive connection, POST simpleenroll in a child
// process; cpu-us/cert is the server's CPU per enrolment.
func BenchmarkESTEnroll(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			a := benchApp(b, kind)
			maker := tNewESTCA(b, "Bench Maker CA")
			if _, err := a.est.CreateProvisioner(context.Background(), authz.System(), est.ProvisionerSpec{
				Name: "bench", CA: "issuing", Profile: "web_server", Auth: est.AuthClientCert,
				BootstrapPEM: maker.pem(), IdentityFrom: "san:*.devices.example.internal",
			}); err != nil {
				b.Fatal(err)
			}
			plan := benchESTPlan{RootFile: filepath.Join(a.cfg.DataDir, RootFile), Count: b.N, Warmup: 2 * benchIssueClients, Clients: benchIssueClients}
			for i := range benchIssueClients {
				key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 100)), Subject: pkix.Name{CommonName: "IDevID", SerialNumber: fmt.Sprint(i)},
					DNSNames: []string{fmt.Sprintf("dev-%d.devices.example.internal", i)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, maker.cert, key.Public(), maker.key)
				if err != nil {
					b.Fatal(err)
				}
				kder, _ := x509.MarshalPKCS8PrivateKey(key)
				plan.Devices = append(plan.Devices, [2]string{
					string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
					string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
				})
			}
			l := benchServe(b, a)
			plan.URL = l.HTTPSURL
			child := startBenchChild(b, "est")
			child.say("plan", plan)
			var res benchESTResult
			cpu := child.measure(&res)
			if res.Failed > 0 || res.OK != b.N {
				b.Fatalf("%d of %d enrolled; first failure %s", res.OK, b.N, res.First)
			}
			b.ReportMetric(res.CertsPerSecond, "certs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/cert")
			b.ReportMetric(res.P99, "p99-ms")
		})
	}
}

// benchChildEST is the client process of BenchmarkESTEnroll.
func benchChildEST(t *testing.T, in *bufio.Scanner) {
	var p benchESTPlan
	childHear(t, in, "plan", &p)
	pool := benchRoots(t, p.RootFile)
	type dev struct {
		hc   *http.Client
		body string
	}
	devs := make([]dev, len(p.Devices))
	for i, d := range p.Devices {
		pair, err := tls.X509KeyPair([]byte(d[0]), []byte(d[1]))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("dev-%d.devices.example.internal", i)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, pair.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = dev{
			hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1,
				TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}},
			body: string(est.EncodeBody(csr)),
		}
	}
	enrol := func(d dev) error {
		req, _ := http.NewRequest("POST", p.URL+"/.well-known/est/bench/simpleenroll", strings.NewReader(d.body))
		req.Header.Set("Content-Type", "application/pkcs10")
		resp, err := d.hc.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	}
	run := func(n int) benchESTResult {
		var mu sync.Mutex
		var lat []time.Duration
		var res benchESTResult
		next := make(chan struct{}, n)
		for range n {
			next <- struct{}{}
		}
		close(next)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range p.Clients {
			wg.Add(1)
			go func(d dev) {
				defer wg.Done()
				for range next {
					t0 := time.Now()
					err := enrol(d)
					mu.Lock()
					if err != nil {
						res.Failed++
						if res.First == "" {
							res.First = err.Error()
						}
					} else {
						res.OK++
						lat = append(lat, time.Since(t0))
					}
					mu.Unlock()
				}
			}(devs[i%len(devs)])
		}
		wg.Wait()
		res.CertsPerSecond = float64(res.OK) / time.Since(start).Seconds()
		if len(lat) > 0 {
			slices.Sort(lat)
			res.P99 = float64(lat[(len(lat)*99)/100]) / float64(time.Millisecond)
		}
		return res
	}
	if w := run(p.Warmup); w.Failed > 0 {
		t.Fatalf("warm-up: %d failed, the first: %s", w.Failed, w.First)
	}
	childSay(t, "ready", struct{}{})
	childHear(t, in, "go", nil)
	childSay(t, "result", run(p.Count))
}
