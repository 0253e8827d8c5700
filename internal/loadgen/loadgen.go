// Package loadgen owns the issuance load generator behind "certwright bench
// issue": Prepare makes every signing request (a fresh key and CSR each)
// before the clock starts, Run sends them from a fixed number of HTTPS
// keep-alive clients to POST /api/v1/certificates/sign of a live server and
// returns a Result (counts, failures by status and text, when the first
// failure came, throughput, latency percentiles and, with a server PID on
// Linux, the server's CPU time per certificate read from /proc).
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// Bounds of a run, so that a typo cannot start an unbounded one.
const (
	MaxCount   = 200_000
	MaxClients = 1024
)

// SignPath is the API route every request goes to.
const SignPath = "/api/v1/certificates/sign"

// Plan says what to prepare: Warmup + Count requests, each a CSR for a
// fresh key of Key, for one distinct name under Domain.
type Plan struct {
	Count   int
	Warmup  int
	Profile string
	// CA is empty for the server's default issuing CA.
	CA     string
	Key    pki.KeyAlgorithm
	Domain string
}

// Validate reports a plan outside the bounds.
func (p Plan) Validate() error {
	switch {
	case p.Count <= 0 || p.Count > MaxCount:
		return fmt.Errorf("loadgen: count %d: want 1 to %d", p.Count, MaxCount)
	case p.Warmup < 0 || p.Warmup > MaxCount:
		return fmt.Errorf("loadgen: warmup %d: want 0 to %d", p.Warmup, MaxCount)
	case p.Profile == "":
		return errors.New("loadgen: no profile")
	case p.Domain == "":
		return errors.New("loadgen: no domain")
	}
	switch p.Key {
	case pki.ECDSAP256, pki.RSA2048:
	default:
		return fmt.Errorf("loadgen: key %q: want %s or %s", p.Key, pki.ECDSAP256, pki.RSA2048)
	}
	return nil
}

// Batch is a prepared plan: the JSON bodies of the warm-up requests, then
// those of the measured ones.
type Batch struct {
	Warmup   [][]byte
	Measured [][]byte
}

// Prepare makes the plan's CSRs on every CPU. Names are
// "<run>-<i>.<domain>" with a random run label, so that two runs never ask
// for the same name.
func Prepare(ctx context.Context, p Plan) (*Batch, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	label := make([]byte, 4)
	if _, err := rand.Read(label); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	run := "b" + hex.EncodeToString(label)
	bodies := make([][]byte, p.Warmup+p.Count)
	var next atomic.Int64
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range cap(errs) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				b, err := signBody(p, fmt.Sprintf("%s-%d.%s", run, i, p.Domain))
				if err != nil {
					errs <- err
					return
				}
				bodies[i] = b
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: preparing requests: %w", err)
	}
	return &Batch{Warmup: bodies[:p.Warmup], Measured: bodies[p.Warmup:]}, nil
}

func signBody(p Plan, name string) ([]byte, error) {
	key, err := p.Key.Generate(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("loadgen: generate %s key: %w", p.Key, err)
	}
	csr, err := pki.NewCSR(rand.Reader, key, name, pki.Names{DNS: []string{name}})
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	b, err := json.Marshal(apitypes.SignRequest{CSRPEM: string(csr), Profile: p.Profile, CA: p.CA})
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return b, nil
}

// Target is the server and the credentials to use.
type Target struct {
	// URL is the server's base URL (https://host:port).
	URL   string
	Token string
	Roots *x509.CertPool
	// ClientCert, when set, authenticates over mTLS.
	ClientCert *tls.Certificate
}

// Options shape a run.
type Options struct {
	// Clients is the number of concurrent clients, and of connections.
	Clients int
	// Timeout bounds one request; MaxDuration the whole run (warm-up and
	// measured phase). Zero means 30 s and 5 min.
	Timeout     time.Duration
	MaxDuration time.Duration
	// ServerPIDs, when set, are the server processes (replicas) whose CPU
	// time and context switches Run reads from /proc around the measured
	// phase.
	ServerPIDs []int
	// KeepCertificates keeps the PEM of every certificate received.
	KeepCertificates bool
}

// Issued is one certificate received.
type Issued struct {
	Serial string
	PEM    string
}

// Failure describes the first failed request of the measured phase.
type Failure struct {
	// AfterSeconds is when it was sent, from the start of the measured phase.
	AfterSeconds float64 `json:"after_seconds"`
	// At is when it was sent, by this machine's clock, to compare with
	// the time of a change made during the run (a token revoked, a CA
	// disabled).
	At      time.Time `json:"at"`
	Request int       `json:"request"`
	Status  int       `json:"status,omitempty"`
	Error   string    `json:"error"`
}

// Latency holds percentiles of successful requests, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Result is the summary of a run. Counts are of the measured phase.
type Result struct {
	Clients  int `json:"clients"`
	Warmup   int `json:"warmup"`
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	Failed   int `json:"failed"`
	// NotSent counts the requests left when MaxDuration ended the run.
	NotSent        int     `json:"not_sent"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	CertsPerSecond float64 `json:"certs_per_second"`
	Latency        Latency `json:"latency"`
	// ErrorsByStatus counts failures by HTTP status; "transport" counts
	// requests that got no HTTP answer.
	ErrorsByStatus map[string]int `json:"errors_by_status,omitempty"`
	// ErrorsByText counts failures by their (truncated) message.
	ErrorsByText map[string]int `json:"errors_by_text,omitempty"`
	FirstFailure *Failure       `json:"first_failure,omitempty"`
	CPU          *CPU           `json:"cpu,omitempty"`
	// Stopped says why the run ended early, if it did.
	Stopped string `json:"stopped,omitempty"`
	// Issued lists every certificate received, warm-up included, with its
	// PEM when Options.KeepCertificates.
	Issued []Issued `json:"-"`
}

// maxErrorText and maxErrorTexts bound the error summary.
const (
	maxErrorText  = 160
	maxErrorTexts = 20
	otherErrors   = "(other errors)"
)

// maxAnswer bounds the body read from one answer.
const maxAnswer = 1 << 20

// NewHTTPClient is a client for t: HTTP/1.1 keep-alive over TLS with at most
// clients connections, no redirects (the token must not follow one).
func NewHTTPClient(t Target, clients int) *http.Client {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: t.Roots}
	if t.ClientCert != nil {
		tc.Certificates = []tls.Certificate{*t.ClientCert}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: 10 * time.Second,
			// An empty TLSNextProto keeps every connection on HTTP/1.1.
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
			MaxConnsPerHost:     clients,
			MaxIdleConnsPerHost: clients,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run sends the batch to t: the warm-up requests first (not measured; any
// failure among them ends the run with an error), then the measured ones.
// A request that fails does not stop the others: the Result says how many
// failed and how. Run returns an error only when it could not measure.
func Run(ctx context.Context, hc *http.Client, t Target, b *Batch, o Options) (*Result, error) {
	if o.Clients <= 0 || o.Clients > MaxClients {
		return nil, fmt.Errorf("loadgen: clients %d: want 1 to %d", o.Clients, MaxClients)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.MaxDuration)
	defer cancel()
	r := &runner{hc: hc, url: strings.TrimRight(t.URL, "/") + SignPath, o: o}
	if t.Token != "" {
		r.auth = "Bearer " + t.Token
	}

	warm := r.phase(ctx, b.Warmup, time.Now())
	if warm.failed > 0 {
		return nil, fmt.Errorf("loadgen: %d of %d warm-up requests failed, the first: %s", warm.failed, len(b.Warmup), warm.first.Error)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("loadgen: warm-up did not finish within %s", o.MaxDuration)
	}

	var before cpuSample
	if len(o.ServerPIDs) > 0 {
		var err error
		if before, err = sampleCPU(o.ServerPIDs); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	m := r.phase(ctx, b.Measured, start)
	elapsed := time.Since(start)
	res := &Result{
		Clients: o.Clients, Warmup: len(b.Warmup), Requests: m.sent, OK: m.ok, Failed: m.failed,
		NotSent: len(b.Measured) - m.sent, ElapsedSeconds: elapsed.Seconds(),
		CertsPerSecond: float64(m.ok) / elapsed.Seconds(),
		Latency:        percentiles(m.latencies),
		FirstFailure:   m.first,
		Issued:         append(warm.issued, m.issued...),
	}
	if m.failed > 0 {
		res.ErrorsByStatus, res.ErrorsByText = m.byStatus, m.byText
	}
	if res.NotSent > 0 {
		res.Stopped = fmt.Sprintf("max duration %s reached", o.MaxDuration)
		if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
			res.Stopped = err.Error()
		}
	}
	if len(o.ServerPIDs) > 0 {
		after, err := sampleCPU(o.ServerPIDs)
		if err != nil {
			return nil, err
		}
		res.CPU = cpuBetween(o.ServerPIDs, before, after, m.ok, m.sent)
	}
	return res, nil
}

// runner sends requests; phase runs one list of them.
type runner struct {
	hc   *http.Client
	url  string
	auth string
	o    Options
}

// phaseResult is what one phase observed.
type phaseResult struct {
	sent, ok, failed int
	latencies        []time.Duration
	byStatus         map[string]int
	byText           map[string]int
	first            *Failure
	issued           []Issued
}

func (r *runner) phase(ctx context.Context, bodies [][]byte, start time.Time) *phaseResult {
	res := &phaseResult{byStatus: map[string]int{}, byText: map[string]int{}}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(r.o.Clients, len(bodies)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				sent := time.Now()
				is, status, err := r.one(ctx, bodies[i])
				d := time.Since(sent)
				if err != nil && ctx.Err() != nil {
					// Cut off by the run's end (--max-duration), not
					// refused by the server: counted as not sent.
					return
				}
				mu.Lock()
				res.sent++
				if err == nil {
					res.ok++
					res.latencies = append(res.latencies, d)
					res.issued = append(res.issued, is)
				} else {
					res.fail(i, sent, sent.Sub(start), status, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}

// fail records a failed request; the caller holds the lock.
func (res *phaseResult) fail(i int, sent time.Time, after time.Duration, status int, err error) {
	res.failed++
	key := "transport"
	if status != 0 {
		key = strconv.Itoa(status)
	}
	res.byStatus[key]++
	text := err.Error()
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "…"
	}
	if _, seen := res.byText[text]; !seen && len(res.byText) >= maxErrorTexts {
		text = otherErrors
	}
	res.byText[text]++
	if res.first == nil || after.Seconds() < res.first.AfterSeconds {
		res.first = &Failure{AfterSeconds: after.Seconds(), At: sent.UTC(), Request: i, Status: status, Error: text}
	}
}

// answer is the part of the API's answer that Run reads.
type answer struct {
	Serial         string `json:"serial"`
	CertificatePEM string `json:"certificate_pem"`
}

// one sends one request; status is 0 when no HTTP answer came.
func (r *runner) one(ctx context.Context, body []byte) (Issued, int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return Issued{}, 0, fmt.Errorf("loadgen: %w", err)
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return Issued{}, 0, transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Issued{}, 0, fmt.Errorf("reading the answer: %w", transportError(err))
	}
	if resp.StatusCode != http.StatusCreated {
		return Issued{}, resp.StatusCode, errors.New(apitypes.StatusMessage(resp.StatusCode, data))
	}
	var a answer
	if err := json.Unmarshal(data, &a); err != nil || a.Serial == "" {
		return Issued{}, resp.StatusCode, fmt.Errorf("201 without a certificate in the answer (%v)", err)
	}
	is := Issued{Serial: a.Serial}
	if r.o.KeepCertificates {
		is.PEM = a.CertificatePEM
	}
	return is, resp.StatusCode, nil
}

// transportError drops the URL from a client error: it is the same for
// every request and would split the summary by nothing.
func transportError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func percentiles(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := min(len(ds)-1, int(p*float64(len(ds))))
		return ms(ds[i])
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
