package audit_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/storetest"
)

// rewriteFrom is the attack a database writer without the KEK can make:
// delete every checkpoint at or after event x, then rewrite the events
// from x on with a recomputed chain and head, so that the chain and the
// remaining checkpoints agree.
func rewriteFrom(t *testing.T, f *fixture, x int64) {
	t.Helper()
	f.raw.exec(t, `DELETE FROM audit_checkpoints WHERE seq >= ?`, x)
	evs := events(t, f.db)
	evs[x-1].Target, evs[x-1].Principal = "serial-forged", "mallory"
	prev := evs[x-2].Hash
	for i := x - 1; i < int64(len(evs)); i++ {
		evs[i].PrevHash = prev
		evs[i].Hash = evs[i].ComputeHash(prev)
		prev = evs[i].Hash
		f.raw.writeEvent(t, evs[i].Seq, evs[i])
	}
	f.raw.setHead(t, evs[len(evs)-1].Seq, prev)
}

func anchors(t *testing.T, f *fixture) []audit.Anchor {
	t.Helper()
	as, err := f.anchor.LoadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Position != 2 || as[0].Checkpoint.Seq != secondCP {
		t.Fatalf("anchors = %+v, want checkpoint #2 at event %d", as, secondCP)
	}
	return as
}

func verifyAnchored(t *testing.T, f *fixture, as []audit.Anchor) *audit.Report {
	t.Helper()
	r, err := audit.Verify(context.Background(), f.db, f.kp, as...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// wantAnchorProblem checks that r reports tampering found by the anchor,
// naming the anchor file.
func wantAnchorProblem(t *testing.T, f *fixture, r *audit.Report, message string) {
	t.Helper()
	if r.Intact || r.Problem == nil {
		t.Fatalf("tampering not detected: %+v", r)
	}
	if r.Problem.Kind != audit.KindAnchor || !strings.Contains(r.Problem.Message, f.anchor.Path) || !strings.Contains(r.Problem.Message, message) {
		t.Fatalf("Problem = %+v, want kind anchor naming %s and saying %q", r.Problem, f.anchor.Path, message)
	}
	t.Logf("%s at %d: %s", r.Problem.Kind, r.Problem.Seq, r.Problem.Message)
}

// TestAnchorStopsCheckpointRewrite is the attack of finding 5 of issue
// 13: checkpoints at or after event X deleted, the chain rewritten from X
// on. The running checkpointer, and one started afresh, refuse to sign
// over it; verify names the anchor; and a checkpoint signed anyway (by a
// replica that keeps no anchor) does not make it pass.
func TestAnchorStopsCheckpointRewrite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, b)
			as := anchors(t, f)
			if r := verifyAnchored(t, f, as); !r.Intact {
				t.Fatalf("before the attack: %+v", r.Problem)
			}

			rewriteFrom(t, f, 60)
			if r := verify(t, f.db, f.kp); !r.Intact {
				t.Fatalf("without the anchor the rewrite should look intact (that is the attack): %+v", r.Problem)
			}
			if c, err := f.cp.Checkpoint(ctx); !errors.Is(err, audit.ErrAnchor) || c != nil {
				t.Fatalf("running checkpointer: Checkpoint = %+v, %v; want a refusal wrapping ErrAnchor", c, err)
			}
			restarted, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: f.clk, Anchor: f.anchor}, f.db, f.kp)
			if err != nil {
				t.Fatal(err)
			}
			if err := restarted.CheckAnchor(ctx); !errors.Is(err, audit.ErrAnchor) {
				t.Fatalf("restarted: CheckAnchor = %v, want ErrAnchor", err)
			}
			if c, err := restarted.Checkpoint(ctx); !errors.Is(err, audit.ErrAnchor) || c != nil {
				t.Fatalf("restarted: Checkpoint = %+v, %v; want a refusal wrapping ErrAnchor", c, err)
			}
			if cps, _ := f.db.ListCheckpoints(ctx); len(cps) != 1 || cps[0].Seq != firstCP {
				t.Fatalf("checkpoints after the refusals: %+v, want only the one at %d", cps, firstCP)
			}
			wantAnchorProblem(t, f, verifyAnchored(t, f, as), "records checkpoint #2 at event 71, but the database holds 1 checkpoint(s)")

			// A checkpointer without the anchor signs the rewritten head
			// as checkpoint #2: the anchor's #2 is a different one.
			blind, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: f.clk}, f.db, f.kp)
			if err != nil {
				t.Fatal(err)
			}
			if c, err := blind.Checkpoint(ctx); err != nil || c == nil || c.Counter != 2 || c.Seq != lastSeq {
				t.Fatalf("checkpointer without anchor: %+v, %v", c, err)
			}
			wantAnchorProblem(t, f, verifyAnchored(t, f, as), "the database's checkpoint #2 (event 81) is a different one")
		})
	}
}

// TestAnchorDetectsDeletedNewestCheckpoint: deleting only the newest
// checkpoint leaves a consistent chain; the anchor shows the count went
// down.
func TestAnchorDetectsDeletedNewestCheckpoint(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b)
			as := anchors(t, f)
			f.raw.exec(t, `DELETE FROM audit_checkpoints WHERE seq = ?`, secondCP)
			wantAnchorProblem(t, f, verifyAnchored(t, f, as), "checkpoints were deleted")
			if c, err := f.cp.Checkpoint(context.Background()); !errors.Is(err, audit.ErrAnchor) {
				t.Fatalf("Checkpoint = %+v, %v; want ErrAnchor", c, err)
			}
		})
	}
}

// TestCheckpointChain: checkpoints link to each other, so deleting or
// replacing one in the middle is found without the anchor.
func TestCheckpointChain(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, b)
			appendEvents(t, f.db, f.clk, 5)
			if c, err := f.cp.Checkpoint(ctx); err != nil || c == nil || c.Counter != 3 {
				t.Fatalf("third checkpoint: %+v, %v", c, err)
			}
			cps, err := f.db.ListCheckpoints(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range cps {
				prev := audit.Genesis()
				if i > 0 {
					prev = cps[i-1].Digest()
				}
				if c.Counter != int64(i+1) || string(c.PrevHash) != string(prev) {
					t.Fatalf("checkpoint %d: counter %d, prev %s; want %d, %s", c.Seq, c.Counter, c.PrevHash, i+1, prev)
				}
			}
			// A second checkpoint #3 (another replica's, at another head)
			// is refused by the store.
			dup := *cps[2]
			dup.Seq = 999
			if err := f.db.InsertCheckpoint(ctx, &dup); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("a second checkpoint #3: %v, want ErrConflict", err)
			}
			f.raw.exec(t, `DELETE FROM audit_checkpoints WHERE seq = ?`, secondCP)
			r := verify(t, f.db, f.kp)
			if r.Intact || r.Problem.Kind != audit.KindCheckpoint || r.Problem.Seq != lastSeq+5 ||
				!strings.Contains(r.Problem.Message, "checkpoint #3 (event 86) is number 2") {
				t.Fatalf("middle checkpoint deleted: %+v", r.Problem)
			}
		})
	}
}

// TestCheckpointTableAppendOnly: the database refuses to update or delete
// a checkpoint, as it does an event, until someone drops its triggers.
func TestCheckpointTableAppendOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (*store.DB, *rawDB)
	}{
		{"sqlite", func(t *testing.T) (*store.DB, *rawDB) {
			path := filepath.Join(t.TempDir(), "audit.db")
			db := openStore(t, "sqlite:"+path)
			raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close() })
			return db, &rawDB{DB: raw}
		}},
		{"postgres", func(t *testing.T) (*store.DB, *rawDB) {
			url := storetest.PostgresSchema(t, storetest.PostgresURL(t))
			db := openStore(t, url)
			raw, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close() })
			return db, &rawDB{DB: raw, numbered: true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, raw := tc.open(t)
			cp, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clock.NewFake(t0)}, db, newProvider(t))
			if err != nil {
				t.Fatal(err)
			}
			appendEvents(t, db, clock.NewFake(t0), 3)
			if c, err := cp.Checkpoint(ctx); err != nil || c == nil {
				t.Fatalf("Checkpoint = %+v, %v", c, err)
			}
			for _, q := range []string{
				`UPDATE audit_checkpoints SET seq = seq + 1`,
				`DELETE FROM audit_checkpoints`,
			} {
				_, err := raw.ExecContext(ctx, raw.rebind(q))
				if err == nil || !strings.Contains(err.Error(), "audit_checkpoints is append-only") {
					t.Errorf("%s: %v, want the append-only refusal", q, err)
				}
			}
			if cps, err := db.ListCheckpoints(ctx); err != nil || len(cps) != 1 || cps[0].Seq != 4 {
				t.Fatalf("checkpoints after refused changes: %+v, %v", cps, err)
			}
		})
	}
}

// signV1 signs c as the version before chained checkpoints did.
func signV1(t *testing.T, s crypto.Signer, c *audit.Checkpoint) []byte {
	t.Helper()
	sum := sha256.Sum256(c.Message())
	sig, err := s.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestLegacyCheckpointsStillVerify: checkpoints written before they were
// chained (counter 0, the v1 message) verify, and new ones chain from the
// last of them.
func TestLegacyCheckpointsStillVerify(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, _ := b.open(t)
			kp := newProvider(t)
			clk := clock.NewFake(t0)
			cp, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clk}, db, kp)
			if err != nil {
				t.Fatal(err)
			}
			k, err := cp.EnsureKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := kp.Signer(ctx, k.Key, keys.AuditPurpose(k.ID))
			if err != nil {
				t.Fatal(err)
			}
			// Two checkpoints as the previous version wrote them.
			for range 2 {
				appendEvents(t, db, clk, 10)
				seq, hash, err := db.AuditHead(ctx)
				if err != nil {
					t.Fatal(err)
				}
				old := &audit.Checkpoint{Seq: seq, Hash: hash, Time: clk.Now().UTC().Truncate(time.Microsecond), KeyID: k.ID}
				old.Signature = signV1(t, signer, old)
				if err := db.InsertCheckpoint(ctx, old); err != nil {
					t.Fatal(err)
				}
			}
			if r := verify(t, db, kp); !r.Intact || r.Checkpoints != 2 {
				t.Fatalf("legacy checkpoints: %+v %+v", r, r.Problem)
			}
			anchor := &audit.FileAnchor{Path: t.TempDir() + "/audit-anchor.json"}
			up, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clk, Anchor: anchor}, db, kp)
			if err != nil {
				t.Fatal(err)
			}
			if err := up.CheckAnchor(ctx); err != nil {
				t.Fatalf("first start after the upgrade: CheckAnchor = %v", err)
			}
			if a, err := anchor.Load(ctx); err != nil || a == nil || a.Position != 2 || a.Checkpoint.Seq != 21 {
				t.Fatalf("anchor after the upgrade = %+v, %v; want the last legacy checkpoint at position 2", a, err)
			}
			appendEvents(t, db, clk, 3)
			c, err := up.Checkpoint(ctx)
			if err != nil || c == nil || c.Counter != 3 {
				t.Fatalf("first chained checkpoint = %+v, %v; want counter 3", c, err)
			}
			as, err := anchor.LoadAll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := audit.Verify(ctx, db, kp, as...); err != nil || !r.Intact || r.Checkpoints != 3 {
				t.Fatalf("after the upgrade: %+v, %v", r, err)
			}
		})
	}
}

// TestAnchorLog: with a log configured, every checkpoint is appended, and
// verify checks the log's last line too.
func TestAnchorLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, raw := backends[0].open(t)
	kp := newProvider(t)
	clk := clock.NewFake(t0)
	dir := t.TempDir()
	anchor := &audit.FileAnchor{Path: dir + "/audit-anchor.json", LogPath: dir + "/anchors.jsonl"}
	cp, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clk, Anchor: anchor}, db, kp)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		appendEvents(t, db, clk, 4)
		if _, err := cp.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(anchor.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 3 {
		t.Fatalf("anchor log has %d lines, want 3:\n%s", n, b)
	}
	for _, p := range []string{anchor.Path, anchor.LogPath} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want mode 0600", p, fi.Mode(), err)
		}
	}
	// The anchor file lost (replaced by an older copy, say): the log
	// still shows the deleted checkpoint.
	if err := os.Remove(anchor.Path); err != nil {
		t.Fatal(err)
	}
	raw.exec(t, `DELETE FROM audit_checkpoints WHERE counter = 3`)
	as, err := anchor.LoadAll(ctx)
	if err != nil || len(as) != 1 {
		t.Fatalf("LoadAll = %+v, %v", as, err)
	}
	r, err := audit.Verify(ctx, db, kp, as...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Intact || r.Problem.Kind != audit.KindAnchor || !strings.Contains(r.Problem.Message, "anchor log "+anchor.LogPath) {
		t.Fatalf("Problem = %+v, want the anchor log named", r.Problem)
	}
}
