package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	smscep "github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/scep"
)

// benchSCEPPlan is what BenchmarkSCEPEnrol tells its client process.
type benchSCEPPlan struct {
	URL string // the provisioner's SCEP URL
	// ChallengeFile holds one challenge a line, one per enrolment, the
	// warm-up's first (a file: the plan's line would outgrow the pipe's
	// line buffer).
	ChallengeFile string
	Warmup        int
	Clients       int
}

// benchSCEPResult is the client process's measurement.
type benchSCEPResult struct {
	OK, Failed int
	FirstError string
	PerSecond  float64
	P99ms      float64
}

// BenchmarkSCEPEnrol measures SCEP enrolment (PKCSReq with a one-time
// dynamic challenge, through GetCACert-pinned RA encryption, the
// challenge's atomic consumption, the issuance path and the CertRep) with
// 32 concurrent devices, beside BenchmarkIssueHTTPS. The devices run in a
// child process with every PKIMessage built before the timer starts, so
// cpu-us/cert is the server's alone; p99-ms is the devices' latency.
func BenchmarkSCEPEnrol(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			a := benchApp(b, kind)
			l := benchServe(b, a)
			ctx := context.Background()
			if _, err := a.scep.CreateProvisioner(ctx, authz.System(), scep.ProvisionerSpec{
				Name: "bench", CA: "issuing", Profile: "client_auth", Challenge: scep.ChallengeDynamic,
			}); err != nil {
				b.Fatal(err)
			}
			warm := 2 * benchIssueClients
			plan := benchSCEPPlan{URL: l.HTTPURL + "/scep/bench", Warmup: warm, Clients: benchIssueClients}
			var chs strings.Builder
			for range b.N + warm {
				c, err := a.scep.CreateChallenge(ctx, authz.System(), "bench", time.Hour, "")
				if err != nil {
					b.Fatal(err)
				}
				chs.WriteString(c.Challenge + "\n")
			}
			plan.ChallengeFile = filepath.Join(b.TempDir(), "challenges")
			if err := os.WriteFile(plan.ChallengeFile, []byte(chs.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			child := startBenchChild(b, "scep")
			child.say("plan", plan)
			var res benchSCEPResult
			cpu := child.measure(&res)
			if res.Failed > 0 || res.OK != b.N {
				b.Fatalf("%d of %d enrolled; first failure: %s", res.OK, b.N, res.FirstError)
			}
			b.ReportMetric(res.PerSecond, "certs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/cert")
			b.ReportMetric(res.P99ms, "p99-ms")
		})
	}
}

// benchChildSCEP is the devices' process of BenchmarkSCEPEnrol.
func benchChildSCEP(t *testing.T, in *bufio.Scanner) {
	var p benchSCEPPlan
	childHear(t, in, "plan", &p)
	var resp *http.Response
	chFile, err := os.ReadFile(p.ChallengeFile)
	if err != nil {
		t.Fatal(err)
	}
	challenges := strings.Fields(string(chFile))
	resp, err = http.Get(p.URL + "?operation=GetCACert")
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	certs, err := smscep.CACerts(der)
	if err != nil {
		t.Fatal(err)
	}
	ra := certs[0]
	// One RSA key per device (client); each enrolment a new CSR.
	type device struct {
		key  *rsa.PrivateKey
		self *x509.Certificate
	}
	devs := make([]device, p.Clients)
	for i := range devs {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = device{key: k, self: tSCEPSelfSigned(t, k, fmt.Sprintf("device-%d", i))}
	}
	msgs := make([][]byte, len(challenges))
	for i, ch := range challenges {
		d := devs[i%len(devs)]
		csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
			CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("device-%d", i)}}, ChallengePassword: ch,
		}, d.key)
		if err != nil {
			t.Fatal(err)
		}
		csr, _ := x509.ParseCertificateRequest(csrDER)
		m, err := smscep.NewCSRRequest(csr, &smscep.PKIMessage{MessageType: smscep.PKCSReq, Recipients: []*x509.Certificate{ra}, SignerKey: d.key, SignerCert: d.self})
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m.Raw
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: p.Clients}}
	run := func(batch [][]byte) benchSCEPResult {
		var (
			mu    sync.Mutex
			res   benchSCEPResult
			lat   []time.Duration
			wg    sync.WaitGroup
			next  = make(chan []byte)
			start = time.Now()
		)
		for range p.Clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range next {
					t0 := time.Now()
					err := benchSCEPSend(hc, p.URL, m, ra)
					d := time.Since(t0)
					mu.Lock()
					lat = append(lat, d)
					if err != nil {
						res.Failed++
						if res.FirstError == "" {
							res.FirstError = err.Error()
						}
					} else {
						res.OK++
					}
					mu.Unlock()
				}
			}()
		}
		for _, m := range batch {
			next <- m
		}
		close(next)
		wg.Wait()
		res.PerSecond = float64(res.OK) / time.Since(start).Seconds()
		slices.Sort(lat)
		if len(lat) > 0 {
			res.P99ms = float64(lat[(len(lat)*99)/100-boolInt(len(lat)%100 == 0)].Microseconds()) / 1000
		}
		return res
	}
	if w := run(msgs[:p.Warmup]); w.Failed > 0 {
		t.Fatalf("warm-up: %d failed, the first: %s", w.Failed, w.FirstError)
	}
	childSay(t, "ready", struct{}{})
	childHear(t, in, "go", nil)
	childSay(t, "result", run(msgs[p.Warmup:]))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// benchSCEPSend posts one PKIMessage and checks that the CertRep says
// SUCCESS (its envelope is not opened: that is the device's work).
func benchSCEPSend(hc *http.Client, url string, msg []byte, ra *x509.Certificate) error {
	resp, err := hc.Post(url+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(msg))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	rep, err := smscep.ParsePKIMessage(body, smscep.WithCACerts([]*x509.Certificate{ra}))
	if err != nil {
		return err
	}
	if rep.PKIStatus != smscep.SUCCESS {
		return fmt.Errorf("pkiStatus %s failInfo %s", rep.PKIStatus, rep.FailInfo)
	}
	return nil
}
