package app

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tAttacker opens the instance's database as someone who can write it
// (but has no KEK) and switches off the append-only triggers.
func tAttacker(t *testing.T, in *tInstance) (db *sql.DB, rebind func(string) string) {
	t.Helper()
	if in.cfg.DB == "" {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(in.cfg.DataDir, DBFile)+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		for _, tr := range []string{"audit_events_no_update", "audit_events_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete"} {
			if _, err := db.Exec(`DROP TRIGGER IF EXISTS ` + tr); err != nil {
				t.Fatal(err)
			}
		}
		return db, func(q string) string { return q }
	}
	db, err := postgres.Open(context.Background(), in.cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{`ALTER TABLE audit_events DISABLE TRIGGER USER`, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db, func(q string) string {
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
}

// tAppendEvents appends n events to the instance's audit log.
func tAppendEvents(t *testing.T, in *tInstance, n int) {
	t.Helper()
	for i := range n {
		ev := audit.New(authz.System(), time.Now(), "test.event", "serial-"+string(rune('a'+i%26)), map[string]int{"i": i})
		if err := in.app.store.AppendAudit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditCheckpointRewriteIsTampered is the attack of finding 5 of issue
// 13 against a running server: delete the checkpoints at or after event X,
// rewrite the events from X on with a recomputed chain, and let the
// server checkpoint. The server refuses to sign over it and keeps
// serving, and audit verify reports TAMPERED, naming the anchor.
func TestAuditCheckpointRewriteIsTampered(t *testing.T) {
	for _, b := range tBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg := tConfig(t, b.dbURL(t))
			tInit(t, cfg, clock.Real{})
			in := tStart(t, cfg, clock.Real{})

			tAppendEvents(t, in, 10)
			first, err := in.app.audit.Checkpoint(ctx)
			if err != nil || first == nil {
				t.Fatalf("Checkpoint: %+v, %v", first, err)
			}
			tAppendEvents(t, in, 10)
			if c, err := in.app.audit.Checkpoint(ctx); err != nil || c == nil {
				t.Fatalf("Checkpoint: %+v, %v", c, err)
			}
			tAppendEvents(t, in, 5)
			var res apitypes.AuditVerifyResult
			in.must(http.StatusOK, "GET", "/api/v1/audit/verify", nil, &res)
			if !res.Intact {
				t.Fatalf("before the attack: %+v", res.Problem)
			}

			db, rebind := tAttacker(t, in)
			x := first.Seq + 3
			if _, err := db.Exec(rebind(`DELETE FROM audit_checkpoints WHERE seq >= ?`), x); err != nil {
				t.Fatal(err)
			}
			evs := tAuditEvents(t, in, 0)
			prev := evs[x-2].Hash
			for i := x - 1; i < int64(len(evs)); i++ {
				ev := &evs[i]
				if ev.Seq == x {
					ev.Target = "serial-forged"
				}
				ev.PrevHash = prev
				ev.Hash = ev.ComputeHash(prev)
				prev = ev.Hash
				if _, err := db.Exec(rebind(`UPDATE audit_events SET target = ?, prev_hash = ?, hash = ? WHERE seq = ?`),
					ev.Target, []byte(ev.PrevHash), []byte(ev.Hash), ev.Seq); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(rebind(`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`), evs[len(evs)-1].Seq, []byte(prev)); err != nil {
				t.Fatal(err)
			}

			// The server checkpoints: it must refuse, and go on serving.
			if c, err := in.app.audit.Checkpoint(ctx); err == nil {
				t.Errorf("the server signed checkpoint %+v over the rewritten chain", c)
			} else {
				t.Logf("refused: %v", err)
			}
			in.must(http.StatusOK, "GET", "/api/v1/cas", nil, nil)
			resp, err := http.Get(in.l.HTTPURL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/healthz: %d", resp.StatusCode)
			}

			in.must(http.StatusOK, "GET", "/api/v1/audit/verify", nil, &res)
			if res.Intact || res.Problem == nil || res.Problem.Kind != "anchor" || !strings.Contains(res.Problem.Message, "audit-anchor.json") {
				t.Fatalf("audit verify after the attack: intact=%v problem=%+v; want TAMPERED naming the anchor", res.Intact, res.Problem)
			}
			t.Logf("TAMPERED: %s at event %d: %s", res.Problem.Kind, res.Problem.Seq, res.Problem.Message)
		})
	}
}

// TestAuditVerifyJob: the audit-verify job records a verification by the
// system that the console's audit page shows; after an event is changed
// in the database the job fails, its outcome says NOT intact (naming no
// more than the kind and event), and the page says so too.
func TestAuditVerifyJob(t *testing.T) {
	in := tNewServer(t, "")
	tAppendEvents(t, in, 5)
	st := tRunJob(t, in, AuditVerifyJob)
	if st.Outcome != lifecycle.OutcomeOK || !strings.HasPrefix(st.Detail, "intact up to event ") {
		t.Fatalf("audit-verify on an untouched log: %s %q", st.Outcome, st.Detail)
	}
	db, rebind := tAttacker(t, in)
	if _, err := db.Exec(rebind(`UPDATE audit_events SET target = ? WHERE seq = ?`), "serial-forged", 3); err != nil {
		t.Fatal(err)
	}
	for st.Outcome = lifecycle.OutcomeSkipped; st.Outcome == lifecycle.OutcomeSkipped; time.Sleep(20 * time.Millisecond) {
		var err error
		if st, err = in.app.scheduler.RunJob(context.Background(), AuditVerifyJob); err != nil {
			t.Fatal(err)
		}
	}
	if st.Outcome != lifecycle.OutcomeError || !strings.Contains(st.Detail, "NOT intact: modified at event 3") || strings.Contains(st.Detail, "serial-forged") {
		t.Errorf("audit-verify after a change: %s %q", st.Outcome, st.Detail)
	}
	b := in.browser(t)
	b.signIn(in.token)
	if page := string(b.do("GET", "/audit", nil).body); !strings.Contains(tSection(page, "chain"), "NOT intact") {
		t.Errorf("the audit page after a failed verification: %s", tSection(page, "chain"))
	}
}
