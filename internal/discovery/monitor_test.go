package discovery_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// backends are the real stores a Monitor is tested on: SQLite always,
// PostgreSQL when CERTWRIGHT_TEST_POSTGRES is set.
var backends = []struct {
	name string
	open func(testing.TB) *store.DB
}{
	{"sqlite", storetest.OpenSQLite},
	{"postgres", storetest.OpenPostgres},
}

// served is what a scanner reports: whatever observations the test set;
// with slow, only the first, after ctx ends, as a scan cut short does.
type served struct {
	obs  []discovery.Observation
	slow bool
}

func (s *served) Scan(ctx context.Context, _ []discovery.Target) ([]discovery.Observation, error) {
	if s.slow {
		<-ctx.Done()
		return s.obs[:1], ctx.Err()
	}
	return s.obs, nil
}

// raised records the problems a Monitor reports to the alerting.
type raised struct {
	mu sync.Mutex
	ps []discovery.Problem
}

func (r *raised) RaiseEndpointProblems(_ context.Context, ps []discovery.Problem) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ps = append(r.ps, ps...)
	return len(ps), nil
}

func (r *raised) kinds() []discovery.ProblemKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []discovery.ProblemKind
	for _, p := range r.ps {
		out = append(out, p.Kind)
	}
	return out
}

func newMonitor(t *testing.T, st discovery.Store, clk clock.Clock, targets ...string) (*discovery.Monitor, *served, *raised) {
	t.Helper()
	return newMonitorWith(t, st, discovery.Config{Clock: clk}, targets...)
}

// newMonitorWith is newMonitor with cfg's settings (its clock required).
func newMonitorWith(t *testing.T, st discovery.Store, cfg discovery.Config, targets ...string) (*discovery.Monitor, *served, *raised) {
	t.Helper()
	allow, err := discovery.ParseAllowList([]string{"10.0.0.0/8", "*.test"})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := discovery.ParseTargets(targets, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, al := &served{}, &raised{}
	cfg.Log, cfg.Targets, cfg.Allow = slog.New(slog.DiscardHandler), ts, allow
	m, err := discovery.NewMonitor(cfg, st, sc, al)
	if err != nil {
		t.Fatal(err)
	}
	return m, sc, al
}

// leafDER is a self-signed certificate for cn and dns, valid until notAfter.
func leafDER(t *testing.T, cn string, notAfter time.Time, dns ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: notAfter.Add(-30 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// tlsObs is a TLS endpoint at addr serving der, its key proven.
func tlsObs(addr string, at time.Time, der []byte) discovery.Observation {
	return discovery.Observation{Address: addr, ObservedAt: at, Reachable: true, Protocol: "tls",
		Encryption: discovery.EncImplicitTLS, Negotiated: discovery.VersionTLS13, Chain: [][]byte{der}, KeyProven: true}
}

func endpointAt(t *testing.T, st discovery.Store, addr string) *discovery.Endpoint {
	t.Helper()
	ep, err := st.GetEndpoint(context.Background(), addr)
	if err != nil {
		t.Fatalf("endpoint %s: %v", addr, err)
	}
	return ep
}

// TestRecordCertificateControlCharacters: a served certificate whose
// subject and SAN carry a NUL and terminal escapes is recorded, escaped,
// on every backend (PostgreSQL refuses a NUL in text), along with the
// rest of the scan.
func TestRecordCertificateControlCharacters(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			db := be.open(t)
			now := time.Now().UTC().Truncate(time.Second)
			m, _, _ := newMonitor(t, db, clock.NewFake(now))
			evil := leafDER(t, "evil\x00\x1b[2J", now.Add(90*24*time.Hour), "a\x00b.test", "x\x1b]0;t\x07.test")
			good := leafDER(t, "good.test", now.Add(90*24*time.Hour), "good.test")
			res, err := m.Record(t.Context(), []discovery.Observation{tlsObs("10.0.0.1:443", now, evil), tlsObs("10.0.0.2:443", now, good)}, false)
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
			if res.Discovered != 2 || res.Reachable != 2 {
				t.Errorf("result %+v, want 2 reachable, 2 discovered", res)
			}
			ep := endpointAt(t, db, "10.0.0.1:443")
			if ep.Match == nil || ep.Match.Status != discovery.StatusUnmanaged || !strings.Contains(ep.Match.Subject, `evil\x00\x1b[2J`) {
				t.Fatalf("match %+v, want unmanaged with the subject escaped", ep.Match)
			}
			c, err := db.GetCertificate(t.Context(), ep.Match.Serial)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.SANs, " ") != `a\x00b.test x\x1b]0;t\a.test` {
				t.Errorf("SANs stored as %q, want them escaped", c.SANs)
			}
			endpointAt(t, db, "10.0.0.2:443")
		})
	}
}

// failingImports is the real store, failing the import of a certificate
// whose subject names "unstorable": an endpoint the store cannot record
// the discovery of.
type failingImports struct{ *store.DB }

func (f failingImports) ImportCertificates(ctx context.Context, certs []*inventory.Certificate, evs []audit.Event) ([]bool, error) {
	for _, c := range certs {
		if strings.Contains(c.Subject, "unstorable") {
			return nil, errors.New("store: import 1 certificates: refused")
		}
	}
	return f.DB.ImportCertificates(ctx, certs, evs)
}

// TestRecordFailureStaysLocal: when one endpoint's served certificate
// cannot be matched against the inventory, the scan is still recorded
// and alerted on; that endpoint says why it has no match.
func TestRecordFailureStaysLocal(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	now := time.Now().UTC().Truncate(time.Second)
	m, _, al := newMonitor(t, failingImports{db}, clock.NewFake(now))
	bad := leafDER(t, "unstorable.test", now.Add(90*24*time.Hour), "unstorable.test")
	expired := leafDER(t, "old.test", now.Add(-time.Hour), "old.test")
	res, err := m.Record(t.Context(), []discovery.Observation{tlsObs("10.0.0.1:443", now, bad), tlsObs("10.0.0.2:443", now, expired)}, false)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if res.Reachable != 2 || res.Discovered != 1 {
		t.Errorf("result %+v, want 2 reachable, 1 discovered", res)
	}
	ep := endpointAt(t, db, "10.0.0.1:443")
	if ep.Match != nil || !strings.Contains(findingText(ep.Latest, discovery.CodeMatchFailed), "could not be matched") {
		t.Errorf("the failed endpoint: match %+v, findings %+v", ep.Match, ep.Latest.Findings)
	}
	if ep := endpointAt(t, db, "10.0.0.2:443"); ep.Match == nil || ep.Match.Status != discovery.StatusExpired {
		t.Errorf("the other endpoint: match %+v, want expired", ep.Match)
	}
	if k := al.kinds(); len(k) != 1 || k[0] != discovery.ProblemServedExpired {
		t.Errorf("problems raised %v, want served_expired", k)
	}
}

func findingText(o discovery.Observation, code string) string {
	for _, f := range o.Findings {
		if f.Code == code {
			return f.Message
		}
	}
	return ""
}

// TestRecordUnprovenChain: a chain presented by a server that did not
// prove it holds the key (anyone can replay a public certificate) is
// kept as seen, but matched to nothing: a certificate of the inventory
// is not sighted there (no fake "managed"), an unknown one is not added
// as discovered, and neither raises a served-certificate alert.
func TestRecordUnprovenChain(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	now := time.Now().UTC().Truncate(time.Second)
	m, _, al := newMonitor(t, db, clock.NewFake(now))
	ours := leafDER(t, "ours.test", now.Add(90*24*time.Hour), "ours.test")
	cert, err := x509.ParseCertificate(ours)
	if err != nil {
		t.Fatal(err)
	}
	rec := inventory.External(cert, nil, inventory.SourceImported, "", now)
	ev := audit.Event{Time: now, Principal: "system", Action: "certificate.import", Target: rec.Serial, Outcome: audit.Success}
	if _, err := db.ImportCertificates(t.Context(), []*inventory.Certificate{rec}, []audit.Event{ev}); err != nil {
		t.Fatal(err)
	}
	expired := leafDER(t, "old.test", now.Add(-time.Hour), "old.test")
	replayed, unknown := tlsObs("10.0.0.1:443", now, ours), tlsObs("10.0.0.2:443", now, expired)
	replayed.KeyProven, unknown.KeyProven = false, false
	res, err := m.Record(t.Context(), []discovery.Observation{replayed, unknown}, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Discovered != 0 || res.Reachable != 2 {
		t.Errorf("result %+v, want 2 reachable and nothing discovered", res)
	}
	for _, addr := range []string{"10.0.0.1:443", "10.0.0.2:443"} {
		if ep := endpointAt(t, db, addr); ep.Match != nil || len(ep.Latest.Chain) != 1 {
			t.Errorf("%s: match %+v, chain of %d, want no match and the chain kept", addr, ep.Match, len(ep.Latest.Chain))
		}
	}
	if seen, err := db.CertificateSightings(t.Context(), rec.Fingerprint); err != nil || len(seen) != 0 {
		t.Errorf("sightings of the replayed certificate: %+v (%v), want none", seen, err)
	}
	if found, err := db.ListCertificates(t.Context(), inventory.Filter{Source: inventory.SourceDiscovered}); err != nil || len(found) != 0 {
		t.Errorf("discovered certificates: %d (%v), want none", len(found), err)
	}
	if k := al.kinds(); len(k) != 0 {
		t.Errorf("problems raised %v, want none", k)
	}
}

// TestRecordIncompleteKeepsMatch: a scan that reaches an endpoint but
// times out keeps what the last complete scan matched: the expired
// certificate served there still calls for its alert, and its sighting
// is not extended, since this scan did not see it.
func TestRecordIncompleteKeepsMatch(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	now := time.Now().UTC().Truncate(time.Second)
	clk := clock.NewFake(now)
	m, _, al := newMonitor(t, db, clk)
	expired := leafDER(t, "old.test", now.Add(-time.Hour), "old.test")
	if _, err := m.Record(t.Context(), []discovery.Observation{tlsObs("10.0.0.1:443", now, expired)}, false); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	later := clk.Now().UTC()
	timedOut := discovery.Observation{Address: "10.0.0.1:443", ObservedAt: later, Reachable: true, Encryption: discovery.EncUnknown,
		Error: "the scan of this target timed out after 2m0s"}
	res, err := m.Record(t.Context(), []discovery.Observation{timedOut}, false)
	if err != nil {
		t.Fatal(err)
	}
	ep := endpointAt(t, db, "10.0.0.1:443")
	if ep.Match == nil || ep.Match.Status != discovery.StatusExpired || ep.Latest.Encryption != discovery.EncImplicitTLS || ep.LastError == "" {
		t.Errorf("after a timeout: match %+v, encryption %s, last error %q", ep.Match, ep.Latest.Encryption, ep.LastError)
	}
	if res.Changes != 0 {
		t.Errorf("%d changes recorded for a timeout", res.Changes)
	}
	if k := al.kinds(); len(k) != 2 || k[1] != discovery.ProblemServedExpired {
		t.Errorf("problems raised %v, want served_expired twice", k)
	}
	seen, err := db.CertificateSightings(t.Context(), ep.Match.Fingerprint)
	if err != nil || len(seen) != 1 || !seen[0].LastSeen.Equal(now) {
		t.Errorf("sightings %+v (%v), want last seen at the complete scan", seen, err)
	}
}

// TestScheduledMissesOnlyConfiguredEndpoints: the scheduled scan misses
// (and in the end calls gone) only the endpoints of scan.targets; one
// found by a scan asked for through the API, outside them, is not its to
// miss. An endpoint a scheduled scan recorded stays its own after its
// target leaves the configuration, and disappears.
func TestScheduledMissesOnlyConfiguredEndpoints(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	now := time.Now().UTC().Truncate(time.Second)
	clk := clock.NewFake(now)
	m, sc, _ := newMonitor(t, db, clk, "10.0.0.1:443", "10.0.0.2:443")
	cert := leafDER(t, "svc.test", now.Add(90*24*time.Hour), "svc.test")
	sc.obs = []discovery.Observation{tlsObs("10.0.0.1:443", now, cert), tlsObs("10.0.0.2:443", now, cert)}
	if _, err := m.Scheduled(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Record(t.Context(), []discovery.Observation{tlsObs("10.0.0.9:443", now, cert)}, false); err != nil {
		t.Fatal(err)
	}
	// 10.0.0.2 stops answering; then it leaves scan.targets.
	sc.obs = []discovery.Observation{tlsObs("10.0.0.1:443", now, cert), {Address: "10.0.0.2:443", ObservedAt: now, Error: "connection refused"}}
	for range 2 {
		clk.Advance(time.Hour)
		if _, err := m.Scheduled(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	m2, sc2, _ := newMonitor(t, db, clk, "10.0.0.1:443")
	sc2.obs = sc.obs[:1]
	clk.Advance(time.Hour)
	if _, err := m2.Scheduled(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ep := endpointAt(t, db, "10.0.0.9:443"); ep.Misses != 0 || ep.Gone {
		t.Errorf("the endpoint found through the API: misses %d, gone %v; the scheduled scan does not cover it", ep.Misses, ep.Gone)
	}
	if ep := endpointAt(t, db, "10.0.0.2:443"); ep.Misses != 3 || !ep.Gone {
		t.Errorf("the configured endpoint that stopped answering: misses %d, gone %v, want gone after 3", ep.Misses, ep.Gone)
	}
	if ep := endpointAt(t, db, "10.0.0.1:443"); ep.Misses != 0 || ep.Gone {
		t.Errorf("the endpoint still answering: misses %d, gone %v", ep.Misses, ep.Gone)
	}
}

// TestRecordDiscoveryLimits: a hostile range serving a fresh certificate
// per endpoint and per scan does not flood the inventory and the alerts:
// a scan adds at most MaxDiscovered certificates, an endpoint at most one
// a day, and an endpoint serving expired certificates one after another
// raises one served_expired alert while it does.
func TestRecordDiscoveryLimits(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	now := time.Now().UTC().Truncate(time.Second)
	clk := clock.NewFake(now)
	m, _, al := newMonitorWith(t, db, discovery.Config{Clock: clk, MaxDiscovered: 2})
	fresh := func(addr string, expired bool) discovery.Observation {
		notAfter := clk.Now().Add(90 * 24 * time.Hour)
		if expired {
			notAfter = clk.Now().Add(-time.Hour)
		}
		return tlsObs(addr, clk.Now().UTC(), leafDER(t, "flood.test", notAfter, "flood.test"))
	}
	var obs []discovery.Observation
	for _, a := range []string{"10.0.0.1:443", "10.0.0.2:443", "10.0.0.3:443", "10.0.0.4:443"} {
		obs = append(obs, fresh(a, true))
	}
	res, err := m.Record(t.Context(), obs, false)
	if err != nil || res.Discovered != 2 {
		t.Fatalf("first scan: %+v (%v), want 2 discovered (the cap)", res, err)
	}
	capped := endpointAt(t, db, "10.0.0.4:443")
	if capped.Match != nil || !strings.Contains(findingText(capped.Latest, discovery.CodeNotDiscovered), "at most 2") {
		t.Errorf("over the cap: match %+v, findings %+v", capped.Match, capped.Latest.Findings)
	}
	if k := al.kinds(); len(k) != 2 {
		t.Errorf("problems %v, want served_expired for the 2 discovered", k)
	}
	// An hour later 10.0.0.1 serves another fresh expired certificate:
	// not added (one a day per endpoint), and no new alert key.
	clk.Advance(time.Hour)
	if res, err := m.Record(t.Context(), []discovery.Observation{fresh("10.0.0.1:443", true)}, false); err != nil || res.Discovered != 0 {
		t.Fatalf("an hour later: %+v (%v), want nothing discovered", res, err)
	}
	ep := endpointAt(t, db, "10.0.0.1:443")
	if ep.Match != nil || !strings.Contains(findingText(ep.Latest, discovery.CodeNotDiscovered), "in the last 24 hours") {
		t.Errorf("the same endpoint an hour later: match %+v, findings %+v", ep.Match, ep.Latest.Findings)
	}
	// A day later it is added; its alert has the key of the first.
	clk.Advance(24 * time.Hour)
	if res, err := m.Record(t.Context(), []discovery.Observation{fresh("10.0.0.1:443", true)}, false); err != nil || res.Discovered != 1 {
		t.Fatalf("a day later: %+v (%v), want 1 discovered", res, err)
	}
	keys := map[string]bool{}
	al.mu.Lock()
	for _, p := range al.ps {
		if p.Endpoint == "10.0.0.1:443" {
			keys[p.Key] = true
		}
	}
	al.mu.Unlock()
	if len(keys) != 1 {
		t.Errorf("served_expired keys of 10.0.0.1: %v, want one while it keeps serving expired certificates", keys)
	}
	// Once it serves a current certificate the problem ends; expired
	// again, it is a new problem with a new key.
	clk.Advance(25 * time.Hour)
	if _, err := m.Record(t.Context(), []discovery.Observation{fresh("10.0.0.1:443", false)}, false); err != nil {
		t.Fatal(err)
	}
	if ep := endpointAt(t, db, "10.0.0.1:443"); ep.Match == nil || ep.Match.Status != discovery.StatusUnmanaged {
		t.Fatalf("current certificate: match %+v", ep.Match)
	}
	clk.Advance(25 * time.Hour)
	if _, err := m.Record(t.Context(), []discovery.Observation{fresh("10.0.0.1:443", true)}, false); err != nil {
		t.Fatal(err)
	}
	al.mu.Lock()
	last := al.ps[len(al.ps)-1]
	al.mu.Unlock()
	if last.Kind != discovery.ProblemServedExpired || keys[last.Key] || last.Key != last.Cert.Fingerprint {
		t.Errorf("expired again after a current certificate: %+v, want a new key (its own fingerprint)", last)
	}
}

// TestRunNowRecordsWithinTheDeadline: a scan asked for through the API
// runs under the request's deadline; it stops early enough to record
// what it saw (with a context of its own), says how many targets it did
// not finish, and refuses more targets than fit in a request.
func TestRunNowRecordsWithinTheDeadline(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	now := time.Now().UTC().Truncate(time.Second)
	m, sc, _ := newMonitor(t, db, clock.NewFake(now))
	cert := leafDER(t, "svc.test", now.Add(90*24*time.Hour), "svc.test")
	sc.obs, sc.slow = []discovery.Observation{tlsObs("10.0.0.1:443", now, cert), tlsObs("10.0.0.2:443", now, cert)}, true
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	res, err := m.RunNow(ctx, authz.System(), []string{"10.0.0.1:443", "10.0.0.2:443"})
	if err != nil {
		t.Fatalf("RunNow: %v", err)
	}
	if res.Targets != 2 || res.Reachable != 1 || res.Unfinished != 1 || !strings.Contains(res.Summary(), "1 not finished") {
		t.Errorf("result %+v (%s), want 1 of 2 finished", res, res.Summary())
	}
	endpointAt(t, db, "10.0.0.1:443")
	// The configured targets, cut short: the unfinished one is not missed.
	db2 := storetest.OpenSQLite(t)
	m2, sc2, _ := newMonitor(t, db2, clock.NewFake(now), "10.0.0.1:443", "10.0.0.2:443")
	sc2.obs = sc.obs
	if _, err := m2.Scheduled(t.Context()); err != nil {
		t.Fatal(err)
	}
	sc2.slow = true
	ctx2, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel2()
	if res, err := m2.RunNow(ctx2, authz.System(), nil); err != nil || res.Unfinished != 1 {
		t.Fatalf("RunNow of the configured targets: %+v, %v", res, err)
	}
	if ep := endpointAt(t, db2, "10.0.0.2:443"); ep.Misses != 0 {
		t.Errorf("an unfinished target counted as missed (%d)", ep.Misses)
	}
	if _, err := m.RunNow(t.Context(), authz.System(), []string{"10.0.0.0/20:443,8443"}); !errors.Is(err, discovery.ErrInvalid) ||
		!strings.Contains(err.Error(), "scan.targets") {
		t.Errorf("RunNow of 8188 targets: %v, want refused, pointing at scan.targets", err)
	}
}
