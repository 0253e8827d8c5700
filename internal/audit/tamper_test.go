package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/store"
)

// The log every tamper test starts from: 50 events, the key's creation
// (51), checkpoint 51, 20 events, checkpoint 71, 10 unanchored events.
const (
	firstCP  = 51
	secondCP = 71
	lastSeq  = 81
)

type fixture struct {
	db     *store.DB
	raw    *rawDB
	kp     *software.Provider
	cp     *audit.Checkpointer
	clk    *clock.Fake
	anchor *audit.FileAnchor
}

func newFixture(t *testing.T, b backend) *fixture {
	t.Helper()
	ctx := context.Background()
	db, raw := b.open(t)
	kp := newProvider(t)
	clk := clock.NewFake(t0)
	anchor := &audit.FileAnchor{Path: filepath.Join(t.TempDir(), "audit-anchor.json")}
	cp, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clk, Anchor: anchor}, db, kp)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, db, clk, 50)
	if c, err := cp.Checkpoint(ctx); err != nil || c == nil || c.Seq != firstCP {
		t.Fatalf("first Checkpoint = %+v, %v; want seq %d", c, err, firstCP)
	}
	appendEvents(t, db, clk, 20)
	if c, err := cp.Checkpoint(ctx); err != nil || c == nil || c.Seq != secondCP {
		t.Fatalf("second Checkpoint = %+v, %v; want seq %d", c, err, secondCP)
	}
	appendEvents(t, db, clk, 10)
	return &fixture{db: db, raw: raw, kp: kp, cp: cp, clk: clk, anchor: anchor}
}

func TestTamper(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range tamperCases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					f := newFixture(t, b)
					tc.tamper(t, f)
					r := verify(t, f.db, f.kp)
					if tc.kind == "" {
						if !r.Intact || r.Problem != nil {
							t.Fatalf("untampered log: Intact=%v, Problem=%+v", r.Intact, r.Problem)
						}
						return
					}
					if r.Intact || r.Problem == nil {
						t.Fatalf("tampering not detected: %+v", r)
					}
					if r.Problem.Kind != tc.kind || r.Problem.Seq != tc.seq {
						t.Fatalf("Problem = %+v, want kind %q at seq %d", r.Problem, tc.kind, tc.seq)
					}
					if !strings.Contains(r.Problem.Message, tc.message) {
						t.Errorf("Problem.Message = %q, want it to contain %q", r.Problem.Message, tc.message)
					}
					t.Logf("%s: %s", r.Problem.Kind, r.Problem.Message)
				})
			}
		})
	}
}

var tamperCases = []struct {
	name    string
	tamper  func(t *testing.T, f *fixture)
	kind    string // "" for intact
	seq     int64
	message string
}{
	{
		name:   "untampered",
		tamper: func(t *testing.T, f *fixture) {},
	},
	{
		name: "update one row",
		tamper: func(t *testing.T, f *fixture) {
			f.raw.exec(t, `UPDATE audit_events SET target = ? WHERE seq = ?`, "serial-forged", 10)
		},
		kind: "modified", seq: 10, message: "event 10 was modified",
	},
	{
		name: "update one unanchored row",
		tamper: func(t *testing.T, f *fixture) {
			f.raw.exec(t, `UPDATE audit_events SET principal = ? WHERE seq = ?`, "mallory", 75)
		},
		kind: "modified", seq: 75, message: "event 75 was modified",
	},
	{
		// A careful attacker rewrites the row and every hash after it,
		// and the head: the chain is consistent, the checkpoints are not.
		name: "update a row and recompute every later hash",
		tamper: func(t *testing.T, f *fixture) {
			evs := events(t, f.db)
			evs[9].Target = "serial-forged"
			prev := evs[8].Hash
			for i := 9; i < len(evs); i++ {
				evs[i].PrevHash = prev
				evs[i].Hash = evs[i].ComputeHash(prev)
				prev = evs[i].Hash
				f.raw.writeEvent(t, evs[i].Seq, evs[i])
			}
			f.raw.setHead(t, lastSeq, prev)
		},
		kind: "checkpoint", seq: firstCP, message: "changed after checkpoint 51 was signed",
	},
	{
		name: "delete a row",
		tamper: func(t *testing.T, f *fixture) {
			f.raw.exec(t, `DELETE FROM audit_events WHERE seq = ?`, 30)
		},
		kind: "deleted", seq: 30, message: "event 30 is missing",
	},
	{
		name: "delete the first row",
		tamper: func(t *testing.T, f *fixture) {
			f.raw.exec(t, `DELETE FROM audit_events WHERE seq = ?`, 1)
		},
		kind: "deleted", seq: 1, message: "event 1 is missing",
	},
	{
		name: "swap two rows",
		tamper: func(t *testing.T, f *fixture) {
			evs := events(t, f.db)
			a, b := evs[19], evs[24]
			f.raw.writeEvent(t, 20, b)
			f.raw.writeEvent(t, 25, a)
		},
		kind: "reordered", seq: 20, message: "event 20 does not follow event 19",
	},
	{
		name: "swap two adjacent rows",
		tamper: func(t *testing.T, f *fixture) {
			evs := events(t, f.db)
			a, b := evs[59], evs[60]
			f.raw.writeEvent(t, 60, b)
			f.raw.writeEvent(t, 61, a)
		},
		kind: "reordered", seq: 60, message: "event 60 does not follow event 59",
	},
	{
		// Renumber 40.. up by one and insert a forged event 40 that
		// chains from 39: the old 40, now 41, follows 39.
		name: "renumber to insert a forged event",
		tamper: func(t *testing.T, f *fixture) {
			evs := events(t, f.db)
			f.raw.exec(t, `UPDATE audit_events SET seq = -seq WHERE seq >= ?`, 40)
			f.raw.exec(t, `UPDATE audit_events SET seq = 1 - seq WHERE seq < 0`)
			forged := evs[38]
			forged.Seq, forged.Target, forged.Principal = 40, "serial-forged", "mallory"
			forged.PrevHash = evs[38].Hash
			forged.Hash = forged.ComputeHash(forged.PrevHash)
			f.raw.insertEvent(t, forged)
			f.raw.setHead(t, lastSeq+1, evs[lastSeq-1].Hash)
		},
		kind: "inserted", seq: 40, message: "event 40 was inserted: event 41 follows event 39",
	},
	{
		name: "append a forged event at the end",
		tamper: func(t *testing.T, f *fixture) {
			evs := events(t, f.db)
			forged := evs[lastSeq-1]
			forged.Seq, forged.Target = lastSeq+1, "serial-forged"
			forged.PrevHash = evs[lastSeq-1].Hash
			forged.Hash = forged.ComputeHash(forged.PrevHash)
			f.raw.insertEvent(t, forged)
		},
		kind: "modified", seq: lastSeq + 1, message: "the audit head records event 81 but the log runs to event 82",
	},
	{
		// Tail deleted, head rewritten to match: only the checkpoint
		// that covered the deleted events shows it.
		name: "truncate the tail past a checkpoint",
		tamper: func(t *testing.T, f *fixture) {
			evs := events(t, f.db)
			f.raw.exec(t, `DELETE FROM audit_events WHERE seq > ?`, 60)
			f.raw.setHead(t, 60, evs[59].Hash)
		},
		kind: "truncated", seq: 61, message: "events after 60 were deleted: checkpoint 71 covers them",
	},
	{
		name: "delete unanchored tail rows, head left",
		tamper: func(t *testing.T, f *fixture) {
			f.raw.exec(t, `DELETE FROM audit_events WHERE seq > ?`, secondCP)
		},
		kind: "truncated", seq: secondCP + 1, message: "events after 71 were deleted: the audit head records event 81",
	},
	{
		// The attacker swaps in a key of their own and re-signs every
		// checkpoint; they cannot re-wrap it under the KEK.
		name: "replace the audit key's public key and re-sign",
		tamper: func(t *testing.T, f *fixture) {
			ctx := context.Background()
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			der, err := x509.MarshalPKIXPublicKey(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			f.raw.exec(t, `UPDATE audit_keys SET public_key = ?`, der)
			cps, err := f.db.ListCheckpoints(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cps {
				sum := sha256.Sum256(c.Message())
				sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
				if err != nil {
					t.Fatal(err)
				}
				f.raw.exec(t, `UPDATE audit_checkpoints SET signature = ? WHERE seq = ?`, sig, c.Seq)
			}
		},
		kind: "checkpoint", seq: firstCP, message: "does not match its private key",
	},
	{
		name: "move a checkpoint to another seq",
		tamper: func(t *testing.T, f *fixture) {
			f.raw.exec(t, `UPDATE audit_checkpoints SET seq = ? WHERE seq = ?`, secondCP+5, secondCP)
		},
		kind: "checkpoint", seq: secondCP + 5, message: "invalid signature",
	},
	{
		name: "replace the wrapped key blob",
		tamper: func(t *testing.T, f *fixture) {
			f.raw.exec(t, `UPDATE audit_keys SET key_blob = ?`, []byte("not a wrapped key"))
		},
		kind: "checkpoint", seq: firstCP, message: "cannot be unwrapped",
	},
}
