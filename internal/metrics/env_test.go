package metrics_test

import (
	"context"
	"crypto/rand"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/metrics"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

const day = 24 * time.Hour

// The store implements the metrics' ports.
var (
	_ metrics.Inventory = (*store.DB)(nil)
	_ metrics.CAs       = (*store.DB)(nil)
)

var (
	admin   = authz.WithRole("alice", authz.KindHuman, authz.RoleAdmin, authz.Scope{})
	machine = authz.WithRole("deployer", authz.KindMachine, authz.RoleIssuer, authz.Scope{})
)

// env is an instance's metrics on real parts: a SQLite store, software
// keys, zlint, the issuance and revocation services reporting to the
// metrics, a root and an issuing CA, and a fake clock.
type env struct {
	db        *store.DB
	clk       *clock.Fake
	issuer    *issue.Service
	revoker   *revoke.Service
	m         *metrics.Metrics
	srv       *httptest.Server
	root, ica *ca.CA
}

func newEnv(t *testing.T, maxCerts int) *env {
	t.Helper()
	return newEnvOn(t, storetest.OpenSQLite(t), maxCerts)
}

func newEnvOn(t testing.TB, db *store.DB, maxCerts int) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	e := &env{db: db, clk: clock.NewFake(time.Now().UTC().Truncate(time.Second))}
	kek := make([]byte, software.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	kp, err := software.New(kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	linter, err := lint.New(lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.m, err = metrics.New(metrics.Config{Clock: e.clk, Log: log, MaxCertificates: maxCerts}, db, db)
	if err != nil {
		t.Fatal(err)
	}
	e.issuer, err = issue.New(issue.Config{PublicHTTPBase: "http://pki.test:8080", Clock: e.clk, Log: log, Observer: e.m},
		db, profile.NewCatalog(db, e.clk.Now), kp, linter)
	if err != nil {
		t.Fatal(err)
	}
	e.revoker, err = revoke.New(revoke.Config{Clock: e.clk, Log: log, Observer: e.m}, db, kp, linter)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.RegisterRevocation(e.revoker); err != nil {
		t.Fatal(err)
	}
	e.root, err = e.issuer.CreateRoot(ctx, admin, &ca.Spec{
		Name: "root", Subject: pkix.Name{CommonName: "Metrics Test Root"}, KeyAlg: pki.ECDSAP256, Validity: 3650 * day, MaxPathLen: 1,
	})
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	e.ica, err = e.issuer.CreateIntermediate(ctx, admin, "root", &ca.Spec{
		Name: "issuing", Subject: pkix.Name{CommonName: "Metrics Test Issuing"}, KeyAlg: pki.ECDSAP256, Validity: 1825 * day, MaxPathLen: 0,
	})
	if err != nil {
		t.Fatalf("CreateIntermediate: %v", err)
	}
	e.srv = httptest.NewServer(e.m.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// issue issues a web_server certificate for names from the issuing CA.
func (e *env) issue(t *testing.T, days int, names ...string) *inventory.Certificate {
	t.Helper()
	res, err := e.issuer.Issue(context.Background(), issue.Request{
		Principal: machine, CA: "issuing", Profile: "web_server", KeyAlgorithm: pki.ECDSAP256, DNSNames: names, ValidityDays: days,
	})
	if err != nil {
		t.Fatalf("Issue %v: %v", names, err)
	}
	return res.Cert
}

// insert records a certificate row directly (no signature: the metrics
// read only the inventory's columns).
func (e *env) insert(t testing.TB, serial, caID, profile string, notAfter time.Time, mutate func(*inventory.Certificate)) {
	t.Helper()
	c := &inventory.Certificate{
		Serial: serial, CAID: caID, Profile: profile, Requester: "test",
		Subject: "CN=" + serial + ".example.com", SANs: []string{serial + ".example.com"},
		NotBefore: notAfter.Add(-90 * day), NotAfter: notAfter, Status: inventory.StatusValid,
		DER: []byte{1}, CreatedAt: e.clk.Now(),
	}
	if mutate != nil {
		mutate(c)
	}
	if err := e.db.InsertCertificate(context.Background(), c, tev()); err != nil {
		t.Fatal(err)
	}
}

// scrape fetches the metrics over HTTP and parses the text exposition.
func scrape(t testing.TB, url string, header http.Header) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	return fams
}

func (e *env) scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	return scrape(t, e.srv.URL, nil)
}

// series returns the metrics of family name whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.GetMetric() {
		labels := labelMap(m)
		ok := true
		for k, v := range want {
			if labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// value returns the one value of family name with labels want, failing
// when there is not exactly one such series.
func value(t testing.TB, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	ms := series(fams, name, want)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(ms))
	}
	m := ms[0]
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("%s%v: unexpected metric type", name, want)
	return 0
}

// expirySerials lists the serials of certwright_certificate_expiry_seconds
// in the order of their values (soonest first).
func expirySerials(fams map[string]*dto.MetricFamily) []string {
	ms := series(fams, "certwright_certificate_expiry_seconds", nil)
	slices.SortFunc(ms, func(a, b *dto.Metric) int {
		av, bv := a.GetGauge().GetValue(), b.GetGauge().GetValue()
		switch {
		case av < bv:
			return -1
		case av > bv:
			return 1
		}
		return strings.Compare(labelMap(a)["serial"], labelMap(b)["serial"])
	})
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = labelMap(m)["serial"]
	}
	return out
}

func near(got, want, tolerance float64) bool { return got >= want-tolerance && got <= want+tolerance }

func serials(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}
