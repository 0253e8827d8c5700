package loadgen

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

func TestParseProcessTicks(t *testing.T) {
	t.Parallel()
	// A command name with spaces and a parenthesis must not shift the fields.
	line := "4242 (cert wright) x) S 1 2 3 0 -1 4194304 97 0 0 0 1234 567 0 0 20 0 1 0 107832\n"
	got, err := parseProcessTicks([]byte(line))
	if err != nil || got != 1234+567 {
		t.Fatalf("got %d, %v; want %d", got, err, 1234+567)
	}
	if _, err := parseProcessTicks([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("a short line parsed")
	}
}

func TestParseMachineBusy(t *testing.T) {
	t.Parallel()
	got, err := parseMachineBusy([]byte("cpu  100 1 50 9000 30 2 7 3 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if want := uint64(100 + 1 + 50 + 2 + 7 + 3); err != nil || got != want {
		t.Fatalf("got %d, %v; want %d (idle and iowait left out)", got, err, want)
	}
	if _, err := parseMachineBusy([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a line other than cpu parsed")
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := percentiles(ds)
	if got != (Latency{P50: 51, P90: 91, P99: 100, Max: 100}) {
		t.Errorf("got %+v", got)
	}
	if percentiles(nil) != (Latency{}) {
		t.Error("no samples, yet percentiles")
	}
}

func TestPlanValidate(t *testing.T) {
	t.Parallel()
	ok := Plan{Count: 10, Profile: "web_server", Key: pki.ECDSAP256, Domain: "bench.example.internal"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Plan){
		"zero count":   func(p *Plan) { p.Count = 0 },
		"count":        func(p *Plan) { p.Count = MaxCount + 1 },
		"warmup":       func(p *Plan) { p.Warmup = -1 },
		"key":          func(p *Plan) { p.Key = pki.Ed25519 },
		"no profile":   func(p *Plan) { p.Profile = "" },
		"no domain":    func(p *Plan) { p.Domain = "" },
		"unknown key":  func(p *Plan) { p.Key = "dsa" },
		"huge warm-up": func(p *Plan) { p.Warmup = MaxCount + 1 },
	} {
		p := ok
		mutate(&p)
		if p.Validate() == nil {
			t.Errorf("%s: %+v accepted", name, p)
		}
	}
}

// fakeSigner is a TLS server that answers the first okFirst requests with
// a certificate and the rest with 401, after delay each.
type fakeSigner struct {
	*httptest.Server
	n      atomic.Int64
	mu     sync.Mutex
	auth   []string
	protos map[string]int
}

func newFakeSigner(t *testing.T, okFirst int64, delay time.Duration) *fakeSigner {
	t.Helper()
	f := &fakeSigner{protos: map[string]int{}}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req apitypes.SignRequest
		if r.URL.Path != SignPath || json.NewDecoder(r.Body).Decode(&req) != nil || req.Profile != "web_server" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.protos[r.Proto]++
		f.mu.Unlock()
		time.Sleep(delay)
		i := f.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if i > okFirst {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(apitypes.Error{Error: "unauthorized", Detail: strings.Repeat("x", 300)})
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(apitypes.IssuedCertificate{Certificate: apitypes.Certificate{
			Serial: "01ab", CertificatePEM: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}})
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSigner) target() Target {
	return Target{URL: f.URL, Token: "cwt_secret", Roots: f.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
}

func prepare(t *testing.T, count, warmup int) *Batch {
	t.Helper()
	b, err := Prepare(context.Background(), Plan{Count: count, Warmup: warmup, Profile: "web_server", Key: pki.ECDSAP256, Domain: "bench.example.internal"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunCountsFailuresAndTheFirst(t *testing.T) {
	t.Parallel()
	f := newFakeSigner(t, 25, 0)
	b := prepare(t, 40, 5)
	hc := NewHTTPClient(f.target(), 3)
	defer hc.CloseIdleConnections()
	res, err := Run(context.Background(), hc, f.target(), b, Options{Clients: 3, KeepCertificates: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 40 || res.OK != 20 || res.Failed != 20 || res.NotSent != 0 || res.Warmup != 5 {
		t.Fatalf("report %+v: want 40 requests, 20 ok, 20 failed after 5 warm-up", res)
	}
	if res.ErrorsByStatus["401"] != 20 || len(res.ErrorsByText) != 1 {
		t.Errorf("errors by status %v, by text %v", res.ErrorsByStatus, res.ErrorsByText)
	}
	for text := range res.ErrorsByText {
		if len(text) > maxErrorText+len("…") || !strings.HasPrefix(text, "401 Unauthorized: unauthorized: xxx") {
			t.Errorf("error text %q: want it truncated to %d bytes", text, maxErrorText)
		}
	}
	if ff := res.FirstFailure; ff == nil || ff.Status != 401 || ff.AfterSeconds < 0 || ff.AfterSeconds > res.ElapsedSeconds {
		t.Errorf("first failure %+v", res.FirstFailure)
	}
	if len(res.Issued) != 25 || res.Issued[0].Serial != "01ab" || res.Issued[0].PEM == "" {
		t.Errorf("issued %d (%+v), want 25 with PEM, warm-up included", len(res.Issued), res.Issued[:min(1, len(res.Issued))])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.auth {
		if a != "Bearer cwt_secret" {
			t.Fatalf("Authorization %q", a)
		}
	}
	if f.protos["HTTP/1.1"] != 45 {
		t.Errorf("protocols %v: want HTTP/1.1 only", f.protos)
	}
}

func TestRunWarmupFailureIsAnError(t *testing.T) {
	t.Parallel()
	f := newFakeSigner(t, 0, 0)
	hc := NewHTTPClient(f.target(), 2)
	defer hc.CloseIdleConnections()
	if _, err := Run(context.Background(), hc, f.target(), prepare(t, 2, 2), Options{Clients: 2}); err == nil || !strings.Contains(err.Error(), "warm-up") {
		t.Fatalf("err = %v, want the warm-up's failure", err)
	}
}

func TestRunStopsAtMaxDuration(t *testing.T) {
	t.Parallel()
	f := newFakeSigner(t, 1000, 20*time.Millisecond)
	hc := NewHTTPClient(f.target(), 2)
	defer hc.CloseIdleConnections()
	start := time.Now()
	res, err := Run(context.Background(), hc, f.target(), prepare(t, 200, 0), Options{Clients: 2, MaxDuration: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second || res.NotSent == 0 || res.NotSent+res.Requests != 200 || !strings.Contains(res.Stopped, "max duration") {
		t.Fatalf("after %s: report %+v", time.Since(start), res)
	}
	// Requests in flight when the run ended were cut off, not refused.
	if res.Failed != 0 {
		t.Fatalf("%d requests cut off by the max duration counted as failed: %+v", res.Failed, res.ErrorsByText)
	}
}

func TestRunRejectsClients(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, MaxClients + 1} {
		if _, err := Run(context.Background(), http.DefaultClient, Target{}, &Batch{}, Options{Clients: n}); err == nil {
			t.Errorf("clients %d accepted", n)
		}
	}
}

func TestPrepareMakesDistinctNames(t *testing.T) {
	t.Parallel()
	b := prepare(t, 6, 2)
	if len(b.Warmup) != 2 || len(b.Measured) != 6 {
		t.Fatalf("%d + %d bodies", len(b.Warmup), len(b.Measured))
	}
	seen := map[string]bool{}
	for _, body := range append(b.Warmup, b.Measured...) {
		var req apitypes.SignRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatal(err)
		}
		csr, err := pki.ParseCSR([]byte(req.CSRPEM))
		if err != nil {
			t.Fatal(err)
		}
		if alg, _ := pki.AlgorithmOf(csr.PublicKey); alg != pki.ECDSAP256 || len(csr.DNSNames) != 1 || seen[csr.DNSNames[0]] {
			t.Fatalf("CSR %s for %v", alg, csr.DNSNames)
		}
		seen[csr.DNSNames[0]] = true
	}
}

func TestCPUBetween(t *testing.T) {
	t.Parallel()
	before := cpuSample{server: 100, self: 10, machine: 1000, switches: map[string]uint64{"7/7": 10, "7/8": 5, "9/9": 3, "7/gone": 50}}
	after := cpuSample{server: 300, self: 30, machine: 1500, switches: map[string]uint64{"7/7": 1010, "7/8": 505, "9/9": 503, "7/new": 40}}
	c := cpuBetween([]int{7, 9}, before, after, 1000, 4000)
	want := CPU{ServerPIDs: []int{7, 9}, ServerSeconds: 2, ServerMSPerCert: 2, ServerMSPerRequest: 0.5, LoadgenSeconds: 0.2, OtherSeconds: 2.8, MachineBusySeconds: 5,
		ServerContextSwitches: 2040, ServerSwitchesPerCert: 2.04}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got %+v\nwant %+v (a thread that ended is not counted, a new one in full)", *c, want)
	}
}

func TestParseSwitches(t *testing.T) {
	t.Parallel()
	n, err := parseSwitches([]byte("Name:\tcertwright\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n"))
	if err != nil || n != 127 {
		t.Errorf("parseSwitches = %d, %v; want 127", n, err)
	}
	if _, err := parseSwitches([]byte("Name:\tx\nvoluntary_ctxt_switches:\t1\n")); err == nil {
		t.Error("a status without nonvoluntary_ctxt_switches was accepted")
	}
	if _, err := parseSwitches([]byte("voluntary_ctxt_switches:\tmany\nnonvoluntary_ctxt_switches:\t1\n")); err == nil {
		t.Error("a count that is no number was accepted")
	}
}

// TestSampleCPUSwitches reads this process's own threads, which switch.
func TestSampleCPUSwitches(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("needs Linux /proc")
	}
	a, err := sampleCPU([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		time.Sleep(time.Millisecond)
	}
	b, err := sampleCPU([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if c := cpuBetween([]int{os.Getpid()}, a, b, 1, 1); c.ServerContextSwitches == 0 {
		t.Errorf("no context switches counted across 20 sleeps: %+v", c)
	}
}
