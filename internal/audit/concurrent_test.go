package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
)

// TestVerifyWhileAppending verifies the log over and over while other
// writers append to it and sign checkpoints, as a running server does:
// an append committed during a verification is not tampering, and must
// never be reported as such (it was, as "events after N were deleted:
// the audit head records event N+1", when the head was read after the
// events from a later state of the database).
func TestVerifyWhileAppending(t *testing.T) {
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
			// A log long enough that reading it takes a while, so that
			// appends commit while it is read.
			const prefill, perTx = 2000, 100
			for i := 0; i < prefill; i += perTx {
				batch := make([]audit.Event, perTx)
				for j := range batch {
					batch[j] = concurrentEvent(i + j)
				}
				if err := db.AppendAudit(ctx, batch...); err != nil {
					t.Fatal(err)
				}
			}
			if c, err := cp.Checkpoint(ctx); err != nil || c == nil {
				t.Fatalf("Checkpoint = %+v, %v", c, err)
			}

			// Two appenders and a checkpointer run until the
			// verifications are done (each appender at most maxAppends).
			const appenders, maxAppends, rounds = 2, 5000, 20
			stop := make(chan struct{})
			errs := make(chan error, appenders+1)
			var wg sync.WaitGroup
			defer func() {
				close(stop)
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			}()
			for w := range appenders {
				wg.Go(func() {
					for i := range maxAppends {
						select {
						case <-stop:
							return
						default:
						}
						if err := db.AppendAudit(ctx, concurrentEvent(prefill+w*maxAppends+i)); err != nil {
							errs <- fmt.Errorf("appender %d: %w", w, err)
							return
						}
					}
				})
			}
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					if _, err := cp.Checkpoint(ctx); err != nil {
						errs <- fmt.Errorf("checkpointer: %w", err)
						return
					}
				}
			})

			// At least rounds verifications, and more (up to maxRounds or a
			// minute) until an append has committed between two: on a
			// loaded machine the appenders may not have run yet.
			const maxRounds = 500
			var first, last *audit.Report
			deadline := time.Now().Add(time.Minute)
			for i := 0; i < rounds || (last.HeadSeq <= first.HeadSeq && i < maxRounds && time.Now().Before(deadline)); i++ {
				r := verify(t, db, kp)
				if !r.Intact || r.Problem != nil {
					t.Fatalf("verification %d of a log appended to meanwhile: Intact=%v, Problem=%+v", i+1, r.Intact, r.Problem)
				}
				if r.Events != r.HeadSeq {
					t.Fatalf("verification %d read %d events up to head %d", i+1, r.Events, r.HeadSeq)
				}
				if last != nil && r.HeadSeq < last.HeadSeq {
					t.Fatalf("verification %d saw head %d after verification %d saw %d", i+1, r.HeadSeq, i, last.HeadSeq)
				}
				if first == nil {
					first = r
				}
				last = r
			}
			// The test means something only if appends did commit
			// between the verifications.
			if last.HeadSeq <= first.HeadSeq {
				t.Errorf("the head stayed at %d through every verification (at least %d, for up to a minute): nothing was appended concurrently", first.HeadSeq, rounds)
			}
			t.Logf("head %d to %d, %d checkpoints", first.HeadSeq, last.HeadSeq, last.Checkpoints)
		})
	}
}

// concurrentEvent is a small valid event numbered i.
func concurrentEvent(i int) audit.Event {
	return audit.Event{
		Time: t0.Add(time.Duration(i) * time.Millisecond), Principal: "alice", Source: "10.0.0.1",
		Action: "cert.issue", Target: fmt.Sprintf("serial-%06d", i), Outcome: audit.Success,
		RequestID: fmt.Sprintf("req-%d", i), Details: []byte(fmt.Sprintf(`{"i":%d}`, i)),
	}
}
