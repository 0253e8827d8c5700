package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
)

func TestCheckpointer(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, raw := b.open(t)
			kp := newProvider(t)
			clk := clock.NewFake(t0)
			cp, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clk}, db, kp)
			if err != nil {
				t.Fatal(err)
			}
			if c, err := cp.Checkpoint(ctx); c != nil || err != nil {
				t.Fatalf("empty log: Checkpoint = %+v, %v; want nil, nil", c, err)
			}
			if ks, _ := db.ListAuditKeys(ctx); len(ks) != 0 {
				t.Fatalf("a key was created for an empty log")
			}
			k, err := cp.EnsureKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(k.ID) != 32 || k.Key.Algorithm != audit.KeyAlgorithm || len(k.PublicKey) == 0 {
				t.Fatalf("key = %+v", k)
			}
			if k2, err := cp.EnsureKey(ctx); err != nil || k2.ID != k.ID {
				t.Fatalf("second EnsureKey = %+v, %v", k2, err)
			}
			evs := events(t, db)
			if len(evs) != 1 || evs[0].Action != audit.ActionKeyCreate || evs[0].Principal != "system" || evs[0].Target != k.ID {
				t.Fatalf("key creation event: %+v", evs)
			}
			var details map[string]string
			if err := json.Unmarshal(evs[0].Details, &details); err != nil || details["algorithm"] != "ecdsa-p256" {
				t.Errorf("key event details %s: %v", evs[0].Details, err)
			}

			appendEvents(t, db, clk, 4)
			c, err := cp.Checkpoint(ctx)
			if err != nil || c == nil || c.Seq != 5 || c.KeyID != k.ID {
				t.Fatalf("Checkpoint = %+v, %v", c, err)
			}
			if c, err := cp.Checkpoint(ctx); c != nil || err != nil {
				t.Fatalf("nothing new: Checkpoint = %+v, %v", c, err)
			}

			// A second checkpointer (another replica, a restart) finds the
			// key and the last checkpoint.
			cp2, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clk}, db, kp)
			if err != nil {
				t.Fatal(err)
			}
			if k2, err := cp2.EnsureKey(ctx); err != nil || k2.ID != k.ID {
				t.Fatalf("restart: EnsureKey = %+v, %v", k2, err)
			}
			appendEvents(t, db, clk, 2)
			if c, err := cp2.Checkpoint(ctx); err != nil || c == nil || c.Seq != 7 {
				t.Fatalf("restart: Checkpoint = %+v, %v", c, err)
			}
			if r := verify(t, db, kp); !r.Intact || r.Checkpoints != 2 || r.LastCheckpoint != 7 {
				t.Fatalf("Verify: %+v", r)
			}

			// Tampering since the last checkpoint: refuse to sign over it.
			appendEvents(t, db, clk, 2)
			raw.exec(t, `UPDATE audit_events SET target = ? WHERE seq = ?`, "forged", 8)
			if c, err := cp.Checkpoint(ctx); !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("after tampering: Checkpoint = %+v, %v; want ErrChainBroken", c, err)
			}

			// A replaced key record: a fresh checkpointer refuses to use it.
			raw.exec(t, `UPDATE audit_keys SET public_key = ?`, []byte("not the key"))
			cp3, err := audit.NewCheckpointer(audit.CheckpointConfig{Clock: clk}, db, kp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cp3.EnsureKey(ctx); err == nil {
				t.Fatal("EnsureKey trusted a key whose public half was replaced")
			}
		})
	}
}

func TestNewCheckpointerRejects(t *testing.T) {
	t.Parallel()
	db := openStore(t, "sqlite:"+t.TempDir()+"/a.db")
	kp := newProvider(t)
	for _, tc := range []struct {
		name string
		cfg  audit.CheckpointConfig
		st   audit.CheckpointStore
		kp   bool
	}{
		{"no store", audit.CheckpointConfig{}, nil, true},
		{"no provider", audit.CheckpointConfig{}, db, false},
		{"negative every", audit.CheckpointConfig{Every: -1}, db, true},
		{"negative poll", audit.CheckpointConfig{Poll: -time.Second}, db, true},
	} {
		var err error
		if tc.kp {
			_, err = audit.NewCheckpointer(tc.cfg, tc.st, kp)
		} else {
			_, err = audit.NewCheckpointer(tc.cfg, tc.st, nil)
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// waitCheckpoint polls until the last checkpoint reaches seq.
func waitCheckpoint(t *testing.T, db interface {
	LastCheckpoint(context.Context) (*audit.Checkpoint, error)
}, seq int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := db.LastCheckpoint(context.Background()); err == nil && c.Seq >= seq {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no checkpoint at %d within 10s", seq)
}

func TestCheckpointerRun(t *testing.T) {
	t.Parallel()
	db, _ := backends[0].open(t)
	kp := newProvider(t)
	clk := clock.NewFake(t0)
	cp, err := audit.NewCheckpointer(audit.CheckpointConfig{
		Clock: clk, Every: 10, Interval: time.Hour, Poll: time.Millisecond,
	}, db, kp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cp.Run(ctx); close(done) }()

	// Every: 9 events plus the key's creation make 10.
	if _, err := cp.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, db, clk, 9)
	waitCheckpoint(t, db, 10)

	// Interval: one event, then the (fake) hour passes.
	appendEvents(t, db, clk, 1)
	time.Sleep(20 * time.Millisecond)
	if c, _ := db.LastCheckpoint(context.Background()); c.Seq != 10 {
		t.Fatalf("checkpoint at %d before the interval passed", c.Seq)
	}
	clk.Advance(time.Hour)
	waitCheckpoint(t, db, 11)

	// Stopping writes a final checkpoint.
	appendEvents(t, db, clk, 2)
	cancel()
	<-done
	if c, err := db.LastCheckpoint(context.Background()); err != nil || c.Seq != 13 {
		t.Fatalf("final checkpoint = %+v, %v; want seq 13", c, err)
	}
	if r := verify(t, db, kp); !r.Intact || r.Unanchored != 0 {
		t.Fatalf("Verify: %+v", r)
	}
}

// TestCheckpointerRunRetriesStoreErrors: a checkpoint that fails because
// the store fails is retried soon after the store recovers, not an
// interval later.
func TestCheckpointerRunRetriesStoreErrors(t *testing.T) {
	t.Parallel()
	db, raw := backends[0].open(t)
	kp := newProvider(t)
	clk := clock.NewFake(t0)
	cp, err := audit.NewCheckpointer(audit.CheckpointConfig{
		Clock: clk, Every: 1000, Interval: time.Hour, Poll: time.Millisecond,
	}, db, kp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, db, clk, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	// The checkpoints table is out of reach while the interval passes:
	// the checkpoint that falls due fails.
	raw.exec(t, `ALTER TABLE audit_checkpoints RENAME TO audit_checkpoints_away`)
	go func() { cp.Run(ctx); close(done) }()
	time.Sleep(20 * time.Millisecond)
	clk.Advance(time.Hour)
	time.Sleep(50 * time.Millisecond)
	if c, err := db.LastCheckpoint(context.Background()); err == nil {
		t.Fatalf("checkpoint %+v written without its table", c)
	}
	raw.exec(t, `ALTER TABLE audit_checkpoints_away RENAME TO audit_checkpoints`)
	// A minute later (the interval is an hour) it has been retried.
	clk.Advance(time.Minute)
	waitCheckpoint(t, db, 4)
}
