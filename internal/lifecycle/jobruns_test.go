package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestSchedulerRunHistory: two replicas' schedulers on one database, on
// a fake clock, both attempt each scheduled run: the history holds one run
// per interval, each with the replica that ran it and agreeing with the
// job's last run; the skipped attempts are not in it. Jobs counts the
// runs of the last hour. Reading the history needs cert:read, and a job
// the scheduler does not have is unknown.
func TestSchedulerRunHistory(t *testing.T) {
	t.Parallel()
	for name, dbs := range storetest.ReplicaPairs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := clock.NewFake(time.Date(2026, time.March, 4, 5, 0, 0, 0, time.UTC))
			n := 0
			job := lifecycle.Job{Name: "check", Interval: 10 * time.Minute, Run: func(context.Context, *lifecycle.JobState) (string, error) {
				n++
				return fmt.Sprintf("run %d", n), nil
			}}
			var scheds []*lifecycle.Scheduler
			for i, replica := range []string{"replica-a", "replica-b"} {
				s, err := lifecycle.NewScheduler(clk, slog.New(slog.DiscardHandler), dbs[i], testLocker(t, dbs[i]), replica, []lifecycle.Job{job})
				if err != nil {
					t.Fatal(err)
				}
				scheds = append(scheds, s)
			}
			// Replica b attempts first at odd steps: each runs some.
			const steps = 4
			var want []string
			for k := range steps {
				order := []int{0, 1}
				if k%2 == 1 {
					order = []int{1, 0}
				}
				ran := 0
				for _, i := range order {
					st, err := scheds[i].RunDue(ctx, "check")
					if err != nil {
						t.Fatal(err)
					}
					if st.Outcome != lifecycle.OutcomeSkipped {
						ran++
						want = append([]string{fmt.Sprintf("%s %s %s", st.StartedAt.Format("15:04"), st.Replica, st.Detail)}, want...)
					}
				}
				if ran != 1 {
					t.Fatalf("step %d: the job ran %d times", k, ran)
				}
				clk.Advance(job.Interval)
			}
			for i, s := range scheds {
				runs, err := s.Runs(ctx, authz.System(), lifecycle.JobRunQuery{Job: "check", Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range runs {
					got = append(got, fmt.Sprintf("%s %s %s", r.StartedAt.Format("15:04"), r.Replica, r.Detail))
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("history on replica %d:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if !strings.Contains(strings.Join(got, " "), "replica-a") || !strings.Contains(strings.Join(got, " "), "replica-b") {
					t.Errorf("history on replica %d names one replica only: %v", i, got)
				}
			}
			// At +70m the last hour holds the runs at +10m (its very
			// start), +20m and +30m, not the one at +0.
			clk.Advance(30 * time.Minute)
			jobs, err := scheds[1].Jobs(ctx, authz.System())
			if err != nil {
				t.Fatal(err)
			}
			if r := jobs[0].RecentRuns; r == nil || *r != steps-1 {
				t.Errorf("runs in the last hour: %v, want %d", r, steps-1)
			}

			nobody := authz.Principal{ID: "p_0123456789abcdef", Name: "nobody", Kind: authz.KindMachine}
			if _, err := scheds[0].Runs(ctx, nobody, lifecycle.JobRunQuery{Limit: 10}); !errors.Is(err, authz.ErrForbidden) {
				t.Errorf("history without cert:read: %v, want ErrForbidden", err)
			}
			if _, err := scheds[0].Runs(ctx, authz.System(), lifecycle.JobRunQuery{Job: "renewal", Limit: 10}); !errors.Is(err, lifecycle.ErrUnknownJob) {
				t.Errorf("history of a job the scheduler lacks: %v, want ErrUnknownJob", err)
			}
			for _, limit := range []int{0, lifecycle.RunHistoryMax + 1} {
				if _, err := scheds[0].Runs(ctx, authz.System(), lifecycle.JobRunQuery{Limit: limit}); err == nil {
					t.Errorf("limit %d accepted", limit)
				}
			}
		})
	}
}
