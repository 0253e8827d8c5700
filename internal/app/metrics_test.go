package app

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"github.com/certwright/certwright/internal/store/postgres"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// tMetrics scrapes /metrics on the HTTPS listener with the admin token.
func (in *tInstance) tMetrics() map[string]*dto.MetricFamily {
	in.t.Helper()
	r := in.raw("GET", "/metrics", in.bearer(), nil)
	if r.status != http.StatusOK {
		in.t.Fatalf("GET /metrics: status %d: %s", r.status, tTrim(r.body))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		in.t.Fatalf("GET /metrics: parse: %v", err)
	}
	return fams
}

// tMetric returns the value of the one series of name whose labels
// include want, and whether there is one.
func tMetric(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	var found []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		ok := true
		for k, v := range want {
			has := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					has = true
				}
			}
			ok = ok && has
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return 0, false
	}
	m := found[0]
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	}
	return m.GetUntyped().GetValue(), true
}

// TestMetricsWired checks the Prometheus endpoint of a running server: it
// needs an API token, exports the certificates it issues with their
// expiry, counts issuance, revocation and ACME traffic, and reports CRL
// freshness.
func TestMetricsWired(t *testing.T) {
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			if r := in.raw("GET", "/metrics", "", nil); r.status != http.StatusUnauthorized {
				t.Fatalf("GET /metrics without a token: status %d, want 401", r.status)
			}

			leaf := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "metrics.example.com"))
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+leaf.Serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil)
			kept := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "kept.example.com"))
			if r := in.raw("GET", "/acme/"+DefaultACMEProvisioner+"/directory", "", nil); r.status != http.StatusOK {
				t.Fatalf("ACME directory: status %d", r.status)
			}

			issuing := in.cfg.Init.IssuingName
			var fams map[string]*dto.MetricFamily
			// The CRL is built by the background job right after start;
			// give it a bounded moment.
			for deadline := time.Now().Add(10 * time.Second); ; {
				fams = in.tMetrics()
				if _, ok := tMetric(fams, "certwright_crl_next_update_seconds", map[string]string{"ca": issuing}); ok || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			expiry, ok := tMetric(fams, "certwright_certificate_expiry_seconds", map[string]string{
				"ca": issuing, "profile": "web_server", "serial": kept.Serial, "name": "kept.example.com"})
			if want := time.Until(kept.NotAfter).Seconds(); !ok || expiry < want-5 || expiry > want+5 {
				t.Errorf("expiry of %s = %v (found %v), want %.0f ±5 s", kept.Serial, expiry, ok, want)
			}
			if _, ok := tMetric(fams, "certwright_certificate_expiry_seconds", map[string]string{"serial": leaf.Serial}); ok {
				t.Errorf("the revoked certificate %s still has an expiry series", leaf.Serial)
			}
			for _, c := range []struct {
				name   string
				labels map[string]string
				want   float64
			}{
				{"certwright_certificates_issued_total", map[string]string{"ca": issuing, "profile": "web_server"}, 2},
				{"certwright_revocations_total", map[string]string{"reason": "superseded"}, 1},
				{"certwright_acme_requests_total", map[string]string{"endpoint": "directory", "status_class": "2xx"}, 1},
				{"certwright_certificates", map[string]string{"state": "revoked"}, 1},
				{"certwright_revocation_refresh_failing", map[string]string{"ca": issuing, "kind": "crl"}, 0},
			} {
				if got, ok := tMetric(fams, c.name, c.labels); !ok || got != c.want {
					t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
				}
			}
			if next, ok := tMetric(fams, "certwright_crl_next_update_seconds", map[string]string{"ca": issuing}); !ok || next <= 0 {
				t.Errorf("crl_next_update_seconds{ca=%q} = %v (found %v), want a positive value", issuing, next, ok)
			}
			if _, ok := tMetric(fams, "certwright_ca_expiry_seconds", map[string]string{"ca": issuing}); !ok {
				t.Errorf("no ca_expiry_seconds for %s", issuing)
			}
		})
	}
}

// TestMetricsBus: on PostgreSQL the replica reports how long ago its
// notification listener caught up and counts the notices it dropped as
// forged (sent by anyone who can connect to the database, without the
// KEK); on SQLite, which has no bus, the age stays 0.
func TestMetricsBus(t *testing.T) {
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			url := be.dbURL(t)
			in := tNewServer(t, url)
			value := func(name string) float64 {
				v, ok := tMetric(in.tMetrics(), name, nil)
				if !ok {
					t.Fatalf("no %s", name)
				}
				return v
			}
			if be.name == "sqlite" {
				if age := value("certwright_bus_catchup_age_seconds"); age != 0 {
					t.Errorf("certwright_bus_catchup_age_seconds = %v on SQLite, want 0", age)
				}
				return
			}
			before := value("certwright_bus_notices_rejected_total")
			db, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			const forged = 3
			for range forged {
				if _, err := db.ExecContext(t.Context(), `SELECT pg_notify('certwright', '{"k":"revoked","ca":"x","all":true}')`); err != nil {
					t.Fatal(err)
				}
			}
			for deadline := time.Now().Add(5 * time.Second); value("certwright_bus_notices_rejected_total") < before+forged; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("certwright_bus_notices_rejected_total did not grow by %d within 5 s of %d forged notices", forged, forged)
				}
			}
			if age := value("certwright_bus_catchup_age_seconds"); age <= 0 || age > 5 {
				t.Errorf("certwright_bus_catchup_age_seconds = %v, want within (0, 5]: the listener catches up every 2 s", age)
			}
		})
	}
}
