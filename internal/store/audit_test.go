package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/store"
)

// tev returns a valid audit event for the changes a test makes.
func tev() audit.Event {
	return audit.Event{Time: time.Now(), Principal: "test", Action: "test.action", Outcome: audit.Success}
}

// TestAuditAppendOnly checks that plain SQL cannot rewrite or delete the
// audit log's rows.
func TestAuditAppendOnly(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		db := openStore(t, url)
		if err := db.AppendAudit(ctx, tev(), tev()); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			"UPDATE audit_events SET principal = 'mallory' WHERE seq = 1",
			"UPDATE audit_events SET seq = seq + 10",
			"DELETE FROM audit_events WHERE seq = 2",
			"DELETE FROM audit_events",
		} {
			if _, err := raw.ExecContext(ctx, q); err == nil {
				t.Errorf("%s succeeded", q)
			}
		}
		if raw.numbered {
			if _, err := raw.ExecContext(ctx, "TRUNCATE audit_events"); err == nil {
				t.Error("TRUNCATE succeeded")
			}
		}
		n := 0
		err := db.EachAuditEvent(ctx, 1, func(e *audit.Event) error {
			n++
			if e.Principal != "test" {
				t.Errorf("event %d principal %q", e.Seq, e.Principal)
			}
			return nil
		})
		if err != nil || n != 2 {
			t.Errorf("%d events, %v", n, err)
		}
	})
}

// BenchmarkEachAuditEvent streams 1,000,000 events, as verifying the chain
// or exporting the log does. Setup writes the rows with SQL (their hashes
// are not a valid chain; only the read is measured).
func BenchmarkEachAuditEvent(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, db *store.DB, raw *rawDB) {
		ctx := context.Background()
		const n = 1_000_000
		fillAuditEvents(b, raw, n)
		raw.analyze(b)
		b.ResetTimer()
		for b.Loop() {
			got := 0
			err := db.EachAuditEvent(ctx, 1, func(e *audit.Event) error {
				got++
				if len(e.Hash) != audit.HashSize {
					return fmt.Errorf("event %d: hash of %d bytes", e.Seq, len(e.Hash))
				}
				return nil
			})
			if err != nil || got != n {
				b.Fatalf("EachAuditEvent: %d events, %v", got, err)
			}
		}
		b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "events/s")
	})
}

// fillAuditEvents inserts n issuance-shaped events.
func fillAuditEvents(b *testing.B, raw *rawDB, n int) {
	b.Helper()
	details := `{"ca":"ca1","profile":"server","names":["host.example.com","www.example.com"]}`
	if raw.numbered {
		raw.exec(b, `INSERT INTO audit_events (seq, time, principal, source, action, target, outcome, request_id, details, prev_hash, hash)
			SELECT i, now() + i * interval '1 millisecond', 'acme:account-' || (i % 100), '192.0.2.' || (i % 250), 'cert.issue',
				md5(i::text), 'success', 'req-' || i, ?, sha256(int8send(i - 1)), sha256(int8send(i))
			FROM generate_series(1, ?::integer) AS i`, details, n)
		return
	}
	raw.exec(b, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
		INSERT INTO audit_events (seq, time, principal, source, action, target, outcome, request_id, details, prev_hash, hash)
		SELECT i, ? + i * 1000, 'acme:account-' || (i % 100), '192.0.2.' || (i % 250), 'cert.issue',
			lower(hex(randomblob(16))), 'success', 'req-' || i, ?, randomblob(32), randomblob(32)
		FROM s`, n, time.Now().UnixMicro(), details)
}
