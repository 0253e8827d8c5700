package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/store"
)

// TestCertificatePageQueries: a certificate's audit events (by target,
// optionally by action) and its alerts (a deploy failure's subject is not
// its serial) come newest first, bounded; on SQLite both read an index
// (the plan names it), never the whole table.
func TestCertificatePageQueries(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		db := openStore(t, url)
		const serial = "0a1b2c3d"
		base := time.Now().Add(-time.Hour)
		var evs []audit.Event
		for i := range 30 {
			ev := tev()
			ev.Time, ev.Target, ev.Action = base.Add(time.Duration(i)*time.Second), serial, "certificate.issue"
			if i%3 == 0 {
				ev.Action = "alert.deploy_failed"
			}
			other := tev()
			other.Target = "ffff"
			evs = append(evs, ev, other)
		}
		if err := db.AppendAudit(ctx, evs...); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindAuditEvents(ctx, audit.Query{Target: serial, Limit: 20})
		if err != nil || len(got) != 20 {
			t.Fatalf("FindAuditEvents by target: %d events, %v", len(got), err)
		}
		for i, ev := range got {
			if ev.Target != serial || (i > 0 && ev.Seq >= got[i-1].Seq) {
				t.Errorf("event %d: target %q, seq %d after %d: not this target's, newest first", i, ev.Target, ev.Seq, got[max(i-1, 0)].Seq)
			}
		}
		if got[0].Seq != 59 || len(got[0].Hash) != audit.HashSize {
			t.Errorf("the newest event is %d with a %d-byte hash, want 59 with its hash", got[0].Seq, len(got[0].Hash))
		}
		deploys, err := db.FindAuditEvents(ctx, audit.Query{Target: serial, Action: "alert.deploy_failed", Limit: 100})
		if err != nil || len(deploys) != 10 {
			t.Errorf("deploy reports: %d, %v; want 10", len(deploys), err)
		}

		now := time.Now().UTC()
		ref := &lifecycle.CertRef{Serial: serial}
		for i, a := range []*lifecycle.Alert{
			{ID: "a1", Kind: lifecycle.AlertExpiring, Subject: serial, Threshold: "30d", Cert: ref, CreatedAt: now.Add(-2 * time.Hour)},
			{ID: "a2", Kind: lifecycle.AlertDeployFailed, Subject: "deploy:p1/" + serial, Threshold: "w1", Cert: ref, CreatedAt: now.Add(-time.Hour)},
			{ID: "a3", Kind: lifecycle.AlertExpiring, Subject: "ffff", Threshold: "30d", Cert: &lifecycle.CertRef{Serial: "ffff"}, CreatedAt: now},
			{ID: "a4", Kind: lifecycle.AlertRevocationStale, Subject: "crl:ca1", CreatedAt: now},
		} {
			if _, err := db.RaiseAlert(ctx, a, []string{fmt.Sprintf("ch%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := db.CertificateAlerts(ctx, serial, 10)
		if err != nil || len(recs) != 2 || recs[0].Alert.ID != "a2" || recs[1].Alert.ID != "a1" || len(recs[0].Deliveries) != 1 {
			t.Errorf("CertificateAlerts: %d records, %v; want a2 then a1, with their deliveries", len(recs), err)
		}
		if recs, err := db.CertificateAlerts(ctx, serial, 1); err != nil || len(recs) != 1 {
			t.Errorf("CertificateAlerts limited to 1: %d, %v", len(recs), err)
		}
		if recs, err := db.CertificateAlerts(ctx, "", 10); err != nil || len(recs) != 0 {
			t.Errorf("CertificateAlerts of no serial: %d, %v", len(recs), err)
		}

		if raw.numbered {
			return // PostgreSQL's plans depend on the table's size: BenchmarkCertificatePage1M measures them
		}
		for q, index := range map[string]string{
			`SELECT seq FROM audit_events WHERE target = ? ORDER BY target DESC, seq DESC LIMIT 21`:                                "audit_events_target",
			`SELECT seq FROM audit_events WHERE target = ? AND action || '' = ? ORDER BY target DESC, seq DESC LIMIT 21`:           "audit_events_target",
			`SELECT seq FROM audit_events WHERE principal = ? ORDER BY principal DESC, seq DESC LIMIT 21`:                          "audit_events_principal",
			`SELECT seq FROM audit_events WHERE action = ? ORDER BY action DESC, seq DESC LIMIT 21`:                                "audit_events_action",
			`SELECT payload FROM alerts WHERE serial = ? AND serial <> '' ORDER BY serial DESC, created_at DESC, id DESC LIMIT 21`: "alerts_serial",
		} {
			args := []any{serial}
			if strings.Contains(q, "AND action") {
				args = append(args, "x")
			}
			rows, err := raw.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			if p := strings.Join(plan, "; "); !strings.Contains(p, index) || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("%s: plan %q does not read %s in order", q, p, index)
			}
		}
	})
}

// BenchmarkCertificatePage1M reads one certificate's newest 21 audit
// events (and its agents' reports) among 1,000,000, as the certificate
// page does.
func BenchmarkCertificatePage1M(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, db *store.DB, raw *rawDB) {
		ctx := context.Background()
		const n = 1_000_000
		fillAuditEvents(b, raw, n)
		details := `{"host":"web-7","entry":"nginx","error":"reload failed"}`
		for i := 1; i <= 40; i++ {
			action := "certificate.issue"
			if i%4 == 0 {
				action = "alert.deploy_failed"
			}
			raw.exec(b, `INSERT INTO audit_events (seq, time, principal, source, action, target, outcome, request_id, details, prev_hash, hash)
				VALUES (?, ?, 'agent', '192.0.2.1', ?, '0a1b2c3d', 'success', 'req', ?, ?, ?)`,
				n+i, raw.timeArg(time.Now()), action, details, make([]byte, 32), make([]byte, 32))
		}
		raw.analyze(b)
		b.ResetTimer()
		for b.Loop() {
			evs, err := db.FindAuditEvents(ctx, audit.Query{Target: "0a1b2c3d", Limit: 21})
			if err != nil || len(evs) != 21 {
				b.Fatalf("events: %d, %v", len(evs), err)
			}
			deploys, err := db.FindAuditEvents(ctx, audit.Query{Target: "0a1b2c3d", Action: "alert.deploy_failed", Limit: 21})
			if err != nil || len(deploys) != 10 {
				b.Fatalf("deploy reports: %d, %v", len(deploys), err)
			}
		}
	})
}
