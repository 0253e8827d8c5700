package lifecycle_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// openStores opens a fresh SQLite store, and a PostgreSQL one when
// CERTWRIGHT_TEST_POSTGRES is set.
func openStores(t *testing.T) map[string]*store.DB {
	t.Helper()
	urls := map[string]string{"sqlite": "sqlite:" + t.TempDir() + "/db"}
	if base := os.Getenv("CERTWRIGHT_TEST_POSTGRES"); base != "" {
		urls["postgres"] = storetest.PostgresSchema(t, base)
	}
	out := map[string]*store.DB{}
	for name, u := range urls {
		db, err := store.Open(context.Background(), u, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { db.Close() })
		out[name] = db
	}
	return out
}

// testLocker is the store's job locker on db, as serve uses it.
func testLocker(t *testing.T, db *store.DB) *store.JobLocker {
	t.Helper()
	l, err := db.JobLocker("test", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSchedulerSurvivesPanickingJob: a job that panics (one bad record)
// is recorded as a failed run with the panic in its detail; the
// scheduler goes on running it and every other job (issue 13 #8: a panic
// in the renewal job crash-looped the server and took OCSP/CRL down).
func TestSchedulerSurvivesPanickingJob(t *testing.T) {
	t.Parallel()
	for name, db := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var bad, good atomic.Int32
			jobs := []lifecycle.Job{
				{Name: "bad", Interval: 10 * time.Millisecond, Run: func(context.Context, *lifecycle.JobState) (string, error) {
					bad.Add(1)
					var m map[string]int
					m["record"]++ // assignment to a nil map: a runtime panic
					return "unreachable", nil
				}},
				{Name: "good", Interval: 10 * time.Millisecond, Run: func(context.Context, *lifecycle.JobState) (string, error) {
					good.Add(1)
					return "fine", nil
				}},
			}
			sched, err := lifecycle.NewScheduler(clock.Real{}, slog.New(slog.DiscardHandler), db, testLocker(t, db), "test", jobs)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			st, err := sched.RunJob(ctx, "bad")
			if err != nil {
				t.Fatalf("RunJob(bad) = %v", err)
			}
			if st.Outcome != lifecycle.OutcomeError || !strings.Contains(st.Detail, "panic") || !strings.Contains(st.Detail, "nil map") {
				t.Fatalf("panicking run recorded as %s: %q", st.Outcome, st.Detail)
			}
			stored, err := db.GetJob(ctx, "bad")
			if err != nil || stored.Outcome != lifecycle.OutcomeError || !strings.Contains(stored.Detail, "panic") {
				t.Fatalf("stored run of the panicking job = %+v, %v", stored, err)
			}

			// Under Run, both jobs keep being run after the panics.
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- sched.Run(runCtx) }()
			deadline := time.Now().Add(10 * time.Second)
			for bad.Load() < 4 || good.Load() < 4 {
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("after 10s: bad ran %d times, good %d; want both at least 4", bad.Load(), good.Load())
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancellation")
			}
			if st, err := db.GetJob(ctx, "good"); err != nil || st.Outcome != lifecycle.OutcomeOK {
				t.Errorf("the other job's last run = %+v, %v", st, err)
			}
		})
	}
}

// TestSchedulerLogsIdleRunsAtDebug: a run that found nothing to do is
// logged at debug, one that did something at info.
func TestSchedulerLogsIdleRunsAtDebug(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	var buf strings.Builder // RunJob logs before it returns
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jobs := []lifecycle.Job{
		{Name: "idle", Interval: time.Hour, Run: func(_ context.Context, st *lifecycle.JobState) (string, error) {
			st.Idle = true
			return "0 done", nil
		}},
		{Name: "busy", Interval: time.Hour, Run: func(context.Context, *lifecycle.JobState) (string, error) {
			return "3 done", nil
		}},
	}
	sched, err := lifecycle.NewScheduler(clock.Real{}, log, db, testLocker(t, db), "test", jobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"idle", "busy"} {
		if _, err := sched.RunJob(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if !strings.Contains(out, `level=DEBUG msg="job ran" job=idle`) || !strings.Contains(out, `level=INFO msg="job ran" job=busy`) {
		t.Errorf("job log:\n%s", out)
	}
}

// TestSchedulerResumesFreshJob: at start a job that any replica ran less
// than an interval ago waits (a trigger still runs it at once); one whose
// last run is an interval old, or that never ran, runs at once. A Resume
// job's failed run does not count, another job's does.
func TestSchedulerResumesFreshJob(t *testing.T) {
	t.Parallel()
	db := openStores(t)["sqlite"]
	ctx := context.Background()
	now := time.Now().UTC()
	for name, st := range map[string]lifecycle.JobState{
		"fresh":        {StartedAt: now.Add(-10 * time.Minute), Outcome: lifecycle.OutcomeOK},
		"fresh-plain":  {StartedAt: now.Add(-10 * time.Minute), Outcome: lifecycle.OutcomeOK},
		"stale":        {StartedAt: now.Add(-2 * time.Hour), Outcome: lifecycle.OutcomeOK},
		"failed-plain": {StartedAt: now.Add(-10 * time.Minute), Outcome: lifecycle.OutcomeError},
		"failed":       {StartedAt: now.Add(-10 * time.Minute), Outcome: lifecycle.OutcomeError},
		"never-before": {},
	} {
		if st.StartedAt.IsZero() {
			continue
		}
		st.Name, st.FinishedAt = name, st.StartedAt
		if err := db.PutJob(ctx, &st); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	ran := map[string]int{}
	job := func(name string, resume bool) lifecycle.Job {
		return lifecycle.Job{Name: name, Interval: time.Hour, Resume: resume, Run: func(context.Context, *lifecycle.JobState) (string, error) {
			mu.Lock()
			ran[name]++
			mu.Unlock()
			return "ran", nil
		}}
	}
	sched, err := lifecycle.NewScheduler(clock.Real{}, slog.New(slog.DiscardHandler), db, testLocker(t, db), "test", []lifecycle.Job{
		job("fresh", true), job("fresh-plain", false), job("stale", true), job("failed", true), job("never-before", true),
		job("failed-plain", false),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sched.Run(runCtx)
	count := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return ran[name]
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range []string{"stale", "failed", "never-before"} {
		for count(name) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("job %s did not run at start", name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, name := range []string{"fresh", "fresh-plain", "failed-plain"} {
		if n := count(name); n != 0 {
			t.Fatalf("job %s, run 10 minutes ago, ran %d times at start, want it to wait out its interval", name, n)
		}
	}
	for _, name := range []string{"fresh", "fresh-plain"} {
		if err := sched.Trigger(name); err != nil {
			t.Fatal(err)
		}
		for count(name) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("a trigger did not run the waiting job %s", name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
