package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/storetest"
)

// The store is the one both ports are written for.
var (
	_ audit.VerifySource    = (*store.DB)(nil)
	_ audit.CheckpointStore = (*store.DB)(nil)
)

// rawDB is a second, plain connection to a store's database: the attacker's.
type rawDB struct {
	*sql.DB
	numbered bool // $n placeholders
	timeArg  func(time.Time) any
}

func (r *rawDB) rebind(q string) string {
	if !r.numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *rawDB) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := r.ExecContext(context.Background(), r.rebind(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// backend opens a fresh store and the raw connection to its database, the
// append-only triggers already disabled on the raw side.
type backend struct {
	name string
	open func(t testing.TB) (*store.DB, *rawDB)
}

var backends = []backend{
	{"sqlite", func(t testing.TB) (*store.DB, *rawDB) {
		path := filepath.Join(t.TempDir(), "audit.db")
		db := openStore(t, "sqlite:"+path)
		raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		r := &rawDB{DB: raw, timeArg: func(tm time.Time) any { return tm.UnixMicro() }}
		r.exec(t, `DROP TRIGGER audit_events_no_update`)
		r.exec(t, `DROP TRIGGER audit_events_no_delete`)
		r.exec(t, `DROP TRIGGER audit_checkpoints_no_update`)
		r.exec(t, `DROP TRIGGER audit_checkpoints_no_delete`)
		return db, r
	}},
	{"postgres", func(t testing.TB) (*store.DB, *rawDB) {
		url := storetest.PostgresSchema(t, storetest.PostgresURL(t))
		db := openStore(t, url)
		raw, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		r := &rawDB{DB: raw, numbered: true, timeArg: func(tm time.Time) any { return tm }}
		r.exec(t, `ALTER TABLE audit_events DISABLE TRIGGER USER`)
		r.exec(t, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER`)
		return db, r
	}},
}

func openStore(t testing.TB, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// newProvider returns a software key provider under a KEK kept in a file
// of a temporary directory, as the server keeps it.
func newProvider(t testing.TB) *software.Provider {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	if err := software.GenerateKEK(path); err != nil {
		t.Fatal(err)
	}
	kek, err := software.LoadKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := software.New(kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// appendEvents appends n varied events, a few per transaction.
func appendEvents(t testing.TB, db *store.DB, clk *clock.Fake, n int) {
	t.Helper()
	ctx := context.Background()
	var batch []audit.Event
	for i := range n {
		clk.Advance(time.Second + time.Nanosecond)
		ev := audit.Event{
			Time: clk.Now(), Principal: "alice", Source: "10.0.0." + strconv.Itoa(i%7),
			Action: "cert.issue", Target: fmt.Sprintf("serial-%04d", i), Outcome: audit.Success,
			RequestID: fmt.Sprintf("req-%d", i), Details: []byte(fmt.Sprintf(`{"i":%d}`, i)),
		}
		if i%5 == 4 {
			ev.Outcome, ev.Action = audit.Denied, "cert.revoke"
		}
		batch = append(batch, ev)
		if len(batch) == 3 || i == n-1 {
			if err := db.AppendAudit(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// events reads the whole log, copying each event out of the store's buffer.
func events(t testing.TB, db *store.DB) []audit.Event {
	t.Helper()
	var out []audit.Event
	err := db.EachAuditEvent(context.Background(), 0, func(ev *audit.Event) error {
		c := *ev
		c.Details = bytes.Clone(ev.Details)
		c.PrevHash = bytes.Clone(ev.PrevHash)
		c.Hash = bytes.Clone(ev.Hash)
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeEvent overwrites every column of the row at seq with ev's values.
func (r *rawDB) writeEvent(t testing.TB, seq int64, ev audit.Event) {
	t.Helper()
	r.exec(t, `UPDATE audit_events SET time = ?, principal = ?, source = ?, action = ?, target = ?, outcome = ?,
		request_id = ?, details = ?, prev_hash = ?, hash = ? WHERE seq = ?`,
		r.timeArg(ev.Time), ev.Principal, ev.Source, ev.Action, ev.Target, string(ev.Outcome),
		ev.RequestID, string(ev.Details), []byte(ev.PrevHash), []byte(ev.Hash), seq)
}

// insertEvent inserts ev as a new row.
func (r *rawDB) insertEvent(t testing.TB, ev audit.Event) {
	t.Helper()
	r.exec(t, `INSERT INTO audit_events (seq, time, principal, source, action, target, outcome, request_id, details, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Seq, r.timeArg(ev.Time), ev.Principal, ev.Source, ev.Action, ev.Target, string(ev.Outcome),
		ev.RequestID, string(ev.Details), []byte(ev.PrevHash), []byte(ev.Hash))
}

func (r *rawDB) setHead(t testing.TB, seq int64, hash audit.Hash) {
	t.Helper()
	r.exec(t, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, seq, []byte(hash))
}

func verify(t testing.TB, db *store.DB, p *software.Provider) *audit.Report {
	t.Helper()
	r, err := audit.Verify(context.Background(), db, p)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}
