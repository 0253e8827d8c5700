package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// putRun records a run of job on replica that started at start and took a
// second, as the scheduler does.
func putRun(t *testing.T, db *store.DB, job, replica string, start time.Time, outcome, detail string) {
	t.Helper()
	st := &lifecycle.JobState{Name: job, Replica: replica, StartedAt: start, FinishedAt: start.Add(time.Second), Outcome: outcome, Detail: detail}
	if err := db.PutJob(context.Background(), st); err != nil {
		t.Fatal(err)
	}
}

func listRuns(t *testing.T, db *store.DB, q lifecycle.JobRunQuery) []lifecycle.JobRun {
	t.Helper()
	runs, err := db.ListJobRuns(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// describe renders runs as "job@replica+minutes" from base, newest first
// as listed.
func describe(runs []lifecycle.JobRun, base time.Time) string {
	var s []string
	for _, r := range runs {
		s = append(s, fmt.Sprintf("%s@%s+%d", r.Job, r.Replica, int(r.StartedAt.Sub(base)/time.Minute)))
	}
	return strings.Join(s, " ")
}

// TestJobRuns: each recorded run of a job, on either of two replicas
// sharing the database, is in the run history with the replica that ran
// it, agreeing with the job's last run; the history lists one job or
// every job since a time, newest first (ties in start time by
// insertion), up to a limit; a state that records no run (never started)
// adds none; a detail is cut as the last run's is.
func TestJobRuns(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		ctx := context.Background()
		a, b := open(t), open(t)
		base := time.Date(2026, time.March, 4, 5, 0, 0, 0, time.UTC)
		if runs := listRuns(t, a, lifecycle.JobRunQuery{Limit: 10}); len(runs) != 0 {
			t.Fatalf("runs before any: %+v", runs)
		}
		putRun(t, a, "expiry-check", "replica-a", base, lifecycle.OutcomeOK, "first")
		putRun(t, b, "alert-delivery", "replica-b", base.Add(time.Minute), lifecycle.OutcomeOK, "sent")
		putRun(t, b, "expiry-check", "replica-b", base.Add(60*time.Minute), lifecycle.OutcomeError, strings.Repeat("x", 2500))
		putRun(t, a, "expiry-check", "replica-a", base.Add(120*time.Minute), lifecycle.OutcomeOK, "third")
		// Same start (a coarse clock): the later insertion is newer.
		putRun(t, a, "alert-delivery", "replica-a", base.Add(120*time.Minute), lifecycle.OutcomeOK, "tie")
		if err := a.PutJob(ctx, &lifecycle.JobState{Name: "never-started", Outcome: lifecycle.OutcomeOK}); err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct {
			q    lifecycle.JobRunQuery
			want string
		}{
			{lifecycle.JobRunQuery{Limit: 10}, "alert-delivery@replica-a+120 expiry-check@replica-a+120 expiry-check@replica-b+60 alert-delivery@replica-b+1 expiry-check@replica-a+0"},
			{lifecycle.JobRunQuery{Job: "expiry-check", Limit: 10}, "expiry-check@replica-a+120 expiry-check@replica-b+60 expiry-check@replica-a+0"},
			{lifecycle.JobRunQuery{Job: "expiry-check", Since: base.Add(60 * time.Minute), Limit: 10}, "expiry-check@replica-a+120 expiry-check@replica-b+60"},
			{lifecycle.JobRunQuery{Since: base.Add(time.Minute), Limit: 2}, "alert-delivery@replica-a+120 expiry-check@replica-a+120"},
			{lifecycle.JobRunQuery{Job: "never-started", Limit: 10}, ""},
			{lifecycle.JobRunQuery{Job: "expiry-check", Since: base.Add(121 * time.Minute), Limit: 10}, ""},
		} {
			for name, db := range map[string]*store.DB{"a": a, "b": b} {
				if got := describe(listRuns(t, db, tc.q), base); got != tc.want {
					t.Errorf("replica %s, %+v:\n got %s\nwant %s", name, tc.q, got, tc.want)
				}
			}
		}

		runs := listRuns(t, b, lifecycle.JobRunQuery{Job: "expiry-check", Limit: 3})
		last, err := a.GetJob(ctx, "expiry-check")
		if err != nil {
			t.Fatal(err)
		}
		if r := runs[0]; r.Replica != last.Replica || !r.StartedAt.Equal(last.StartedAt) || !r.FinishedAt.Equal(last.FinishedAt) ||
			r.Outcome != last.Outcome || r.Detail != last.Detail || r.StartedAt.Location() != time.UTC {
			t.Errorf("newest run %+v disagrees with the last run %+v", r, last)
		}
		if r := runs[1]; r.Outcome != lifecycle.OutcomeError || len(r.Detail) != 2000 || !r.FinishedAt.Equal(base.Add(60*time.Minute+time.Second)) {
			t.Errorf("failed run: outcome %s, %d bytes of detail, finished %v", r.Outcome, len(r.Detail), r.FinishedAt)
		}

		counts, err := b.CountJobRuns(ctx, base.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(counts) != "map[alert-delivery:2 expiry-check:2]" {
			t.Errorf("runs since +1m: %v", counts)
		}
	})
}

// TestJobRunsRetention: adding a run prunes the job's runs that started
// more than lifecycle.RunHistoryAge before it, and keeps at most
// lifecycle.RunHistoryMax (the newest); other jobs' runs stay.
func TestJobRunsRetention(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		db := open(t)
		base := time.Date(2026, time.March, 4, 5, 0, 0, 0, time.UTC)
		putRun(t, db, "other", "r", base, lifecycle.OutcomeOK, "")
		putRun(t, db, "weekly", "r", base, lifecycle.OutcomeOK, "")
		putRun(t, db, "weekly", "r", base.Add(time.Hour), lifecycle.OutcomeOK, "")
		putRun(t, db, "weekly", "r", base.Add(lifecycle.RunHistoryAge+30*time.Minute), lifecycle.OutcomeOK, "")
		all := lifecycle.JobRunQuery{Limit: lifecycle.RunHistoryMax}
		if got, want := describe(listRuns(t, db, all), base), "weekly@r+10110 weekly@r+60 other@r+0"; got != want {
			t.Errorf("after a run a week and a half hour on:\n got %s\nwant %s", got, want)
		}

		for i := range lifecycle.RunHistoryMax + 2 {
			putRun(t, db, "often", "r", base.Add(time.Duration(i)*time.Second), lifecycle.OutcomeOK, "")
		}
		runs := listRuns(t, db, lifecycle.JobRunQuery{Job: "often", Limit: lifecycle.RunHistoryMax})
		if len(runs) != lifecycle.RunHistoryMax || !runs[len(runs)-1].StartedAt.Equal(base.Add(2*time.Second)) {
			t.Fatalf("%d runs kept, the oldest from %v; want %d from +2s", len(runs), runs[len(runs)-1].StartedAt, lifecycle.RunHistoryMax)
		}
		counts, err := db.CountJobRuns(context.Background(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if counts["often"] != lifecycle.RunHistoryMax || counts["other"] != 1 || counts["weekly"] != 2 {
			t.Errorf("runs kept: %v", counts)
		}
	})
}

// TestPutJobOneTransaction: when the run cannot be added to the history,
// the job's last run is not changed either, so the two never disagree.
func TestPutJobOneTransaction(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		ctx := context.Background()
		db := open(t)
		base := time.Date(2026, time.March, 4, 5, 0, 0, 0, time.UTC)
		putRun(t, db, "job", "r", base, lifecycle.OutcomeOK, "first")
		if _, err := store.Write(db).ExecContext(ctx, `ALTER TABLE job_runs RENAME TO job_runs_away`); err != nil {
			t.Fatal(err)
		}
		err := db.PutJob(ctx, &lifecycle.JobState{Name: "job", Replica: "r", StartedAt: base.Add(time.Hour), FinishedAt: base.Add(time.Hour), Outcome: lifecycle.OutcomeOK, Detail: "second"})
		if err == nil {
			t.Fatal("PutJob without a run history succeeded")
		}
		st, err := db.GetJob(ctx, "job")
		if err != nil {
			t.Fatal(err)
		}
		if st.Detail != "first" || !st.StartedAt.Equal(base) {
			t.Errorf("a run the history did not take is the last run: %+v", st)
		}
	})
}
