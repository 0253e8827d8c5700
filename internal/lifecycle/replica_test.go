package lifecycle_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestJobHandOverAfterKill: replica A runs a long job under its lease and
// is killed (its store goes away without releasing, its run is cut off);
// replica B, trying the job every 100 ms, runs it once the lease lapses:
// within the lease's TTL (15 s) of the kill, and not before the lease
// could have lapsed. B's run records B as the replica.
func TestJobHandOverAfterKill(t *testing.T) {
	t.Parallel()
	for name, dbs := range storetest.ReplicaPairs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dbA, dbB := dbs[0], dbs[1]
			started := make(chan struct{})
			var stoppedA error
			stopped := make(chan struct{})
			slow := lifecycle.Job{Name: "slow", Interval: time.Hour, Run: func(ctx context.Context, _ *lifecycle.JobState) (string, error) {
				close(started)
				<-ctx.Done()
				stoppedA = context.Cause(ctx)
				close(stopped)
				return "", ctx.Err()
			}}
			quick := lifecycle.Job{Name: "slow", Interval: time.Hour, Run: func(context.Context, *lifecycle.JobState) (string, error) {
				return "done", nil
			}}
			lockA, err := dbA.JobLocker("replica-a", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			a, err := lifecycle.NewScheduler(clock.Real{}, slog.New(slog.DiscardHandler), dbA, lockA, "replica-a", []lifecycle.Job{slow})
			if err != nil {
				t.Fatal(err)
			}
			b, err := lifecycle.NewScheduler(clock.Real{}, slog.New(slog.DiscardHandler), dbB, testLocker(t, dbB), "replica-b", []lifecycle.Job{quick})
			if err != nil {
				t.Fatal(err)
			}
			ctxA, killA := context.WithCancel(ctx)
			go a.RunJob(ctxA, "slow")
			<-started
			// Held past one renewal: the heartbeat keeps it.
			time.Sleep(store.LeaseRenewal + time.Second)
			if st, err := b.RunJob(ctx, "slow"); err != nil || st.Outcome != lifecycle.OutcomeSkipped {
				t.Fatalf("B ran the job A holds: %+v, %v", st, err)
			}
			// The kill: A's database connections go first, so neither a
			// renewal nor the release reaches the database.
			dbA.Close()
			killed := time.Now()
			killA()
			<-stopped
			if stoppedA == nil {
				t.Fatal("A's run was not stopped")
			}
			var took time.Duration
			for {
				st, err := b.RunJob(ctx, "slow")
				if err != nil {
					t.Fatal(err)
				}
				if st.Outcome == lifecycle.OutcomeOK {
					took = time.Since(killed)
					if st.Replica != "replica-b" {
						t.Errorf("B's run recorded replica %q", st.Replica)
					}
					break
				}
				if time.Since(killed) > 2*store.LeaseTTL {
					t.Fatalf("B could not take the job %v after A was killed", time.Since(killed))
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The lease lasts LeaseTTL from A's last renewal, at most
			// LeaseRenewal before the kill.
			if took > store.LeaseTTL+time.Second || took < store.LeaseTTL-store.LeaseRenewal-time.Second {
				t.Errorf("hand-over took %v, want between TTL-renewal (%v) and TTL (%v)", took, store.LeaseTTL-store.LeaseRenewal, store.LeaseTTL)
			}
			t.Logf("%s: job taken over by replica B %v after replica A was killed (TTL %v, renewed every %v)", name, took.Round(10*time.Millisecond), store.LeaseTTL, store.LeaseRenewal)
		})
	}
}
