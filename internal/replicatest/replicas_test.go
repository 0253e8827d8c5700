package replicatest_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
	legolog "github.com/go-acme/lego/v4/log"
	"github.com/go-acme/lego/v4/registration"

	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/replicatest"
	"github.com/certwright/certwright/internal/store/storetest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// Documented bounds (README, Several replicas) the tests hold the
// replicas to.
const (
	leaseTTL        = 15 * time.Second // a dead holder's lease lapses within this
	ocspAfterRevoke = time.Second      // another replica's OCSP says revoked within this
)

// TestReplicas runs the built binary as three replicas on one PostgreSQL
// schema behind HAProxy (deploy/haproxy/certwright.cfg), kills them with
// SIGKILL and checks what the README promises of several replicas.
func TestReplicas(t *testing.T) {
	base := os.Getenv(storetest.EnvPostgres)
	if base == "" {
		t.Skipf("set %s (postgres://USER@HOST:PORT/DB?sslmode=disable) to run three replicas on PostgreSQL", storetest.EnvPostgres)
	}
	if testing.Short() {
		t.Skip("builds the binary and runs three replicas for minutes: not with -short")
	}
	// lego logs every step of every order to stderr; the test reports
	// what matters.
	legolog.Logger = log.New(io.Discard, "", 0)
	hook := newHookReceiver(t)
	dns := validatetest.NewDNSServer(t)
	dns.SetDefaultA(netip.MustParseAddr("127.0.0.1"))
	chal := newChallengeServer(t)
	c := replicatest.Start(t, replicatest.Binary(t), base, replicatest.Options{
		InitArgs: []string{"--acme-http01-port", strconv.Itoa(chal.port), "--acme-resolver", dns.Addr()},
		EditConfig: func(cfg string, _ replicatest.LB) string {
			return cfg + "alerts:\n  channels:\n    - {name: hook, type: webhook, url: \"" + hook.url + "/hook\"}\n"
		},
	})

	t.Run("RevokedOnOneReplicaOCSPOnAnother", func(t *testing.T) { testOCSPAcrossReplicas(t, c) })
	t.Run("JobsOncePerInterval", func(t *testing.T) { testJobsOncePerInterval(t, c) })
	t.Run("IssuanceThroughHAProxyWhileAReplicaIsKilled", func(t *testing.T) { testIssuanceWithKill(t, c, chal) })
	t.Run("LeaseHolderKilled", func(t *testing.T) { testLeaseHolderKilled(t, c, hook) })
}

// ---- (b) revoke through one replica, OCSP from another

func testOCSPAcrossReplicas(t *testing.T, c *replicatest.Cluster) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found: install it (apt-get install openssl)")
	}
	a, b := c.Replicas[0], c.Replicas[1]
	dir := t.TempDir()
	leafPath, issuerPath := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "issuing.pem")
	c.Run("cert", "request", "ocsp.replica.test", "--data-dir", a.Dir, "--out", leafPath, "--key-out", filepath.Join(dir, "leaf.key"))
	c.Run("ca", "chain", "issuing", "--data-dir", a.Dir, "--out", issuerPath)
	leaf := readCert(t, leafPath)
	if len(leaf.OCSPServer) == 0 {
		t.Fatal("the certificate names no OCSP responder")
	}
	// The certificate names the load balancer (public_http_url); ask
	// replica B itself at that path.
	u, err := url.Parse(leaf.OCSPServer[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := c.LB.HTTP; !strings.HasPrefix(leaf.OCSPServer[0], want+"/") {
		t.Errorf("OCSP URL %s is not under the load balancer's %s", leaf.OCSPServer[0], want)
	}
	u.Host = b.HTTPAddr
	root := filepath.Join(a.Dir, "root.pem")
	ocspStatus := func() string {
		out, err := exec.Command("openssl", "ocsp", "-issuer", issuerPath, "-cert", leafPath, "-url", u.String(), "-CAfile", root).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl ocsp: %v\n%s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if s, ok := strings.CutPrefix(l, leafPath+": "); ok {
				return strings.TrimSpace(s)
			}
		}
		t.Fatalf("openssl ocsp printed no status:\n%s", out)
		return ""
	}
	// B has a "good" answer cached before the revocation.
	if s := ocspStatus(); s != "good" {
		t.Fatalf("before the revocation, replica %s says %q, want good", b.Name, s)
	}
	serial := pki.SerialHex(leaf.SerialNumber)
	c.Run("cert", "revoke", serial, "--reason", "key_compromise", "--data-dir", a.Dir)
	revoked := time.Now()
	for {
		s := ocspStatus()
		if s == "revoked" {
			t.Logf("revoked through %s; %s's OCSP said revoked %v after the API answered", a.Name, b.Name, time.Since(revoked).Round(time.Millisecond))
			break
		}
		if time.Since(revoked) > ocspAfterRevoke {
			t.Fatalf("replica %s's OCSP still says %q %v after the revocation through %s", b.Name, s, time.Since(revoked).Round(time.Millisecond), a.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// ---- (d) one run per job per interval

// jobs lists the jobs through base (a replica or the load balancer).
func jobs(t *testing.T, c *replicatest.Cluster, base string) ([]apitypes.Job, error) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/api/v1/jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken())
	resp, err := c.Client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s/api/v1/jobs: %d %s", base, resp.StatusCode, b)
	}
	var l apitypes.JobList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, err
	}
	return l.Jobs, nil
}

// testJobsOncePerInterval reads the run history (jobs runs, as the
// README's example does) of the short-interval jobs over a window: every
// run in it is one interval, less the slack, after the one before,
// whichever replica ran each, and the newest is the job's last run.
func testJobsOncePerInterval(t *testing.T, c *replicatest.Cluster) {
	// The short-interval jobs: several runs fit in the window.
	watch := map[string]time.Duration{"rotation": 10 * time.Second, "alert-delivery": 15 * time.Second}
	const window = 33 * time.Second
	since := time.Now().UTC().Truncate(time.Second)
	time.Sleep(window)
	for name, every := range watch {
		var l apitypes.JobRunList
		out := c.Run("jobs", "runs", name, "--since", since.Format(time.RFC3339), "--limit", "1000", "--json", "--data-dir", c.Replicas[1].Dir)
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("jobs runs %s --json: %v\n%s", name, err, out)
		}
		rs := l.Runs
		slices.Reverse(rs) // oldest first
		var desc []string
		for _, r := range rs {
			desc = append(desc, r.StartedAt.Format("15:04:05.000")+" on "+r.Replica)
			if r.Replica == "" || r.Outcome != "ok" {
				t.Errorf("%s: run at %v on %q: %s %s", name, r.StartedAt, r.Replica, r.Outcome, r.Detail)
			}
		}
		t.Logf("%s (every %v): %s", name, every, strings.Join(desc, ", "))
		// The window runs on while the command starts.
		if max := int(window/every) + 2; len(rs) > max || len(rs) < 2 {
			t.Errorf("%s: %d runs recorded in %v, want 2 to %d (one per interval)", name, len(rs), window, max)
		}
		// A scheduled run is skipped when any replica started the job
		// less than an interval (less 5%, at least 2 s) ago.
		slack := min(max(every/20, 2*time.Second), every/2)
		for i := 1; i < len(rs); i++ {
			if gap := rs[i].StartedAt.Sub(rs[i-1].StartedAt); gap < every-slack-500*time.Millisecond {
				t.Errorf("%s ran on %s only %v after the run on %s: want one run per interval (%v) across replicas",
					name, rs[i].Replica, gap.Round(time.Millisecond), rs[i-1].Replica, every)
			}
		}
	}
	js, err := jobs(t, c, c.Replicas[2].HTTPSURL())
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		if _, ok := watch[j.Name]; !ok || j.StartedAt == nil {
			continue
		}
		var l apitypes.JobRunList
		out := c.Run("jobs", "runs", j.Name, "--since", j.StartedAt.Format(time.RFC3339Nano), "--json", "--data-dir", c.Replicas[0].Dir)
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("jobs runs %s --json: %v\n%s", j.Name, err, out)
		}
		// Newer runs may have come since jobs list: the last run it
		// showed is the oldest of these.
		if n := len(l.Runs); n == 0 || !l.Runs[n-1].StartedAt.Equal(*j.StartedAt) || l.Runs[n-1].Replica != j.Replica {
			t.Errorf("%s: jobs list's last run (%v on %s) is not in the run history: %+v", j.Name, j.StartedAt, j.Replica, l.Runs)
		}
	}
	out := c.Run("jobs", "runs", "--since", "1m", "--data-dir", c.Replicas[1].Dir)
	t.Logf("certwright jobs runs --since 1m:\n%s", out)
	for name := range watch {
		if !strings.Contains(out, name) {
			t.Errorf("jobs runs does not show %s", name)
		}
	}
}

// ---- (a) issuance through HAProxy with lego while a replica is killed

// statusCounter is a RoundTripper counting the HTTP statuses lego got.
type statusCounter struct {
	base   http.RoundTripper
	mu     sync.Mutex
	byCode map[int]int
	errs   int
}

func (s *statusCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs++
		return nil, err
	}
	s.byCode[resp.StatusCode]++
	return resp, nil
}

// challengeServer answers http-01 challenges of every lego client in the
// test on one port: lego's own server would bind it per client.
type challengeServer struct {
	port int
	mu   sync.Mutex
	keys map[string]string // token → key authorization
}

func newChallengeServer(t *testing.T) *challengeServer {
	s := &challengeServer{keys: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		s.mu.Lock()
		ka, found := s.keys[tok]
		s.mu.Unlock()
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, ka)
	}))
	t.Cleanup(srv.Close)
	s.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return s
}

func (s *challengeServer) Present(_, token, keyAuth string) error {
	s.mu.Lock()
	s.keys[token] = keyAuth
	s.mu.Unlock()
	return nil
}

func (s *challengeServer) CleanUp(_, token, _ string) error {
	s.mu.Lock()
	delete(s.keys, token)
	s.mu.Unlock()
	return nil
}

type legoUser struct {
	key crypto.PrivateKey
	reg *registration.Resource
}

func (u *legoUser) GetEmail() string                        { return "ops@replica.test" }
func (u *legoUser) GetRegistration() *registration.Resource { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.PrivateKey        { return u.key }

// legoClient registers a new account through the load balancer.
func legoClient(c *replicatest.Cluster, chal *challengeServer, counter *statusCounter) (*lego.Client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	user := &legoUser{key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = c.LB.HTTPS + "/acme/default/directory"
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: counter}
	cfg.UserAgent = "certwright-replica-test"
	cfg.Certificate.KeyType = certcrypto.EC256
	cfg.Certificate.Timeout = 30 * time.Second
	lc, err := lego.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if err := lc.Challenge.SetHTTP01Provider(chal); err != nil {
		return nil, err
	}
	reg, err := lc.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return nil, err
	}
	user.reg = reg
	return lc, nil
}

func testIssuanceWithKill(t *testing.T, c *replicatest.Cluster, chal *challengeServer) {
	if !c.HAProxy {
		t.Skip("haproxy not found: install it (apt-get install haproxy) to run issuance through a load balancer")
	}
	const (
		workers      = 3
		killAfter    = 5               // certificates before the kill
		afterRestart = 15              // certificates once it is back in HAProxy, then stop
		maxTries     = 600             // obtain calls, at most (about 200 per account, under the 300 orders an hour one may place)
		limit        = 3 * time.Minute // the whole run
		down         = 2 * time.Second // how long the killed replica stays down
	)
	victim := c.Replicas[1]
	// A new connection per request: HAProxy spreads the requests of one
	// order (new-order, challenge, finalize, download) across replicas.
	base := c.Client().Transport.(*http.Transport)
	base.DisableKeepAlives = true
	counter := &statusCounter{base: base, byCode: map[int]int{}}

	var (
		mu      sync.Mutex
		serials []string
		failed  []string
		tries   atomic.Int32
		got     = make(chan struct{}, maxTries) // one per certificate
	)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lc *lego.Client
			for ctx.Err() == nil {
				n := int(tries.Add(1))
				if n > maxTries {
					return
				}
				if lc == nil {
					var err error
					if lc, err = legoClient(c, chal, counter); err != nil {
						mu.Lock()
						failed = append(failed, fmt.Sprintf("worker %d: register: %v", w, err))
						mu.Unlock()
						continue
					}
				}
				name := fmt.Sprintf("w%d-%d.replica.test", w, n)
				res, err := lc.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{name}, Bundle: true})
				mu.Lock()
				if err != nil {
					failed = append(failed, fmt.Sprintf("%s: %v", name, err))
				} else if blk, _ := pem.Decode(res.Certificate); blk == nil {
					t.Errorf("%s: lego got no PEM certificate", name)
				} else if cert, err := x509.ParseCertificate(blk.Bytes); err != nil {
					t.Errorf("%s: %v", name, err)
				} else {
					serials = append(serials, pki.SerialHex(cert.SerialNumber))
					got <- struct{}{}
				}
				mu.Unlock()
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	// await waits for n more certificates; false when the workers ended
	// first.
	await := func(n int) bool {
		for range n {
			select {
			case <-got:
			case <-workersDone:
				return false
			}
		}
		return true
	}
	// Kill and restart from the test's goroutine while the workers run.
	var restartLog int64
	if !await(killAfter) {
		t.Errorf("the workers stopped before %d certificates: no kill", killAfter)
	} else {
		victim.Kill()
		t.Logf("%s killed with SIGKILL after %d certificates", victim.Name, killAfter)
		time.Sleep(down)
		if fi, err := os.Stat(victim.LogPath()); err == nil {
			restartLog = fi.Size()
		}
		victim.Start()
		victim.WaitReady(90 * time.Second)
		// HAProxy puts it back after two passed checks a second apart.
		time.Sleep(3 * time.Second)
		t.Logf("%s restarted and ready", victim.Name)
		// Count only certificates from now on.
		for len(got) > 0 {
			<-got
		}
		if !await(afterRestart) {
			t.Errorf("the workers stopped before %d certificates after the restart", afterRestart)
		}
	}
	cancel()
	<-workersDone
	if b, err := os.ReadFile(victim.LogPath()); err == nil && int64(len(b)) >= restartLog {
		t.Logf("%s issued %d certificates after its restart", victim.Name, strings.Count(string(b[restartLog:]), `msg="certificate issued"`))
	}

	counter.mu.Lock()
	codes := maps(counter.byCode)
	errs := counter.errs
	counter.mu.Unlock()
	t.Logf("lego: %d certificates, %d failed obtains, HTTP statuses %v, %d transport errors", len(serials), len(failed), codes, errs)
	for _, f := range failed {
		t.Logf("failed: %s", f)
	}
	for code, n := range counter.byCode {
		if code >= 500 {
			t.Errorf("lego got HTTP %d %d times", code, n)
		}
	}

	// Every certificate lego got is in the inventory, whichever replica
	// is asked.
	for _, s := range serials {
		for _, r := range []*replicatest.Replica{c.Replicas[0], c.Replicas[2]} {
			req, err := http.NewRequest("GET", r.HTTPSURL()+"/api/v1/certificates/"+s, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+c.AdminToken())
			resp, err := c.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("certificate %s that lego got: %s answers %d, want it in the inventory", s, r.Name, resp.StatusCode)
			}
		}
	}

	// No order or challenge stays in processing: what the killed
	// replica was validating or finalising is taken up elsewhere once its
	// claim expires (90 s after it was taken; README "Several replicas"),
	// at the next sweep (every 5 s).
	db := c.DB()
	stuck := func() []string {
		var out []string
		rows, err := db.QueryContext(context.Background(), `SELECT 'order ' || id FROM acme_orders WHERE status = 'processing'
			UNION ALL SELECT 'challenge ' || id FROM acme_challenges WHERE status = 'processing'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	const settle = 90*time.Second + 2*5*time.Second
	var left []string
	for end := time.Now().Add(settle); ; {
		if left = stuck(); len(left) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("still processing %v after the run: %s; what a killed replica was validating or finalising must be taken up by another replica or end",
			settle, strings.Join(left, ", "))
	}
}

func maps(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// ---- (c) the replica holding a job's lease is killed

// hookReceiver is the webhook alerts are sent to. It holds every request
// until the sender goes away or the test ends, so the replica delivering
// an alert holds the alert-delivery lease meanwhile.
type hookReceiver struct {
	url  string
	got  chan struct{}
	quit chan struct{}
	once sync.Once
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{got: make(chan struct{}, 64), quit: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case h.got <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-h.quit:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(h.quit) }) // runs before srv.Close
	h.url = srv.URL
	return h
}

func testLeaseHolderKilled(t *testing.T, c *replicatest.Cluster, hook *hookReceiver) {
	a := c.Replicas[0]
	dir := t.TempDir()
	// A certificate with 2 days left: the expiry check raises an alert,
	// and the replica that raised it starts a delivery run at once.
	c.Run("cert", "request", "expiring.replica.test", "--days", "2", "--data-dir", a.Dir,
		"--out", filepath.Join(dir, "e.pem"), "--key-out", filepath.Join(dir, "e.key"))
	c.Run("jobs", "run", "expiry-check", "--data-dir", a.Dir)
	select {
	case <-hook.got:
	case <-time.After(30 * time.Second):
		t.Fatal("no alert reached the webhook within 30s")
	}
	db := c.DB()
	var holder string
	err := db.QueryRowContext(context.Background(),
		`SELECT replica FROM job_leases WHERE name = 'alert-delivery' AND expires_at > now()`).Scan(&holder)
	if err != nil {
		t.Fatalf("the alert-delivery lease while a delivery hangs: %v", err)
	}
	victim := c.Replica(holder)
	victim.Kill()
	killed := time.Now()
	t.Logf("%s held the alert-delivery lease; killed with SIGKILL", holder)
	var other *replicatest.Replica
	for _, r := range c.Replicas {
		if r != victim {
			other = r
			break
		}
	}
	// A scheduled run takes over once the lease lapsed: within the lease's
	// TTL plus one interval (a replica that found the lease held waits for
	// its next tick).
	const every = 15 * time.Second
	bound := leaseTTL + every + 5*time.Second
	for {
		js, err := jobs(t, c, other.HTTPSURL())
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(js, func(j apitypes.Job) bool { return j.Name == "alert-delivery" })
		if i < 0 {
			t.Fatal("jobs list has no alert-delivery")
		}
		if j := js[i]; j.StartedAt != nil && j.StartedAt.After(killed) && j.Replica != holder {
			t.Logf("alert-delivery ran on %s %v after %s was killed (bound %v)", j.Replica, time.Since(killed).Round(time.Millisecond), holder, bound)
			break
		}
		if time.Since(killed) > bound {
			t.Fatalf("alert-delivery has not run on another replica %v after its lease holder %s was killed (last: %+v)", bound, holder, js[i])
		}
		time.Sleep(250 * time.Millisecond)
	}
	var now string
	if err := db.QueryRowContext(context.Background(), `SELECT replica FROM job_leases WHERE name = 'alert-delivery'`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	if now == holder {
		t.Errorf("job_leases still names %s for alert-delivery", holder)
	}
	victim.Start()
	victim.WaitReady(90 * time.Second)
}
