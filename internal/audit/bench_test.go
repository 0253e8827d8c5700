package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/store"
)

// BenchmarkVerify verifies a SQLite log of 1,000,000 events. The log is
// built once, with raw SQL in large transactions, before the timer starts.
func BenchmarkVerify(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := store.Open(ctx, "sqlite:"+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	fillLog(b, path, n)
	b.Logf("built %d events in %s", n, time.Since(start).Round(time.Millisecond))
	kp := newProvider(b)

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := audit.Verify(ctx, db, kp)
		if err != nil {
			b.Fatal(err)
		}
		if !r.Intact || r.Events != n {
			b.Fatalf("Verify: %+v", r)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// fillLog appends n chained events to the SQLite database at path.
func fillLog(b *testing.B, path string, n int) {
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	const perTx = 100_000
	prev := audit.Genesis()
	t := t0.Truncate(time.Microsecond)
	for first := 1; first <= n; first += perTx {
		tx, err := raw.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_events
			(seq, time, principal, source, action, target, outcome, request_id, details, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for seq := first; seq < first+perTx && seq <= n; seq++ {
			ev := audit.Event{
				Seq: int64(seq), Time: t.Add(time.Duration(seq) * time.Millisecond), Principal: "svc-deploy",
				Source: "10.1.2.3", Action: "cert.issue", Target: fmt.Sprintf("%032x", seq),
				Outcome: audit.Success, RequestID: fmt.Sprintf("req-%d", seq),
				Details: []byte(`{"profile":"server","ca":"issuing-1","names":["host.example.com"]}`),
			}
			ev.PrevHash = prev
			ev.Hash = ev.ComputeHash(prev)
			prev = ev.Hash
			if _, err := stmt.ExecContext(ctx, ev.Seq, ev.Time.UnixMicro(), ev.Principal, ev.Source, ev.Action, ev.Target,
				string(ev.Outcome), ev.RequestID, string(ev.Details), []byte(ev.PrevHash), []byte(ev.Hash)); err != nil {
				b.Fatal(err)
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := raw.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, n, []byte(prev)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkComputeHash hashes an issuance-sized event, as every append and
// every verified event does.
func BenchmarkComputeHash(b *testing.B) {
	ev := audit.Event{
		Time: time.Now(), Principal: "bench", PrincipalID: "p_0123456789abcdef", Source: "api",
		Action: "cert.issue", Target: "0123456789abcdef0123456789abcdef", Outcome: audit.Success,
		RequestID: "req-0123456789", Details: []byte(`{"ca":"issuing","profile":"web_server","sans":["host.example.com"]}`),
	}
	prev := audit.Genesis()
	b.ReportAllocs()
	for b.Loop() {
		prev = ev.ComputeHash(prev)
	}
}
