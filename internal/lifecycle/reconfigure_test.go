package lifecycle_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
)

// TestSchedulerSetIntervalWhileRunning: a job waiting out a one-hour
// interval runs again within moments of its interval being shortened,
// and the new interval is reported; unknown jobs and non-positive
// intervals are refused.
func TestSchedulerSetIntervalWhileRunning(t *testing.T) {
	t.Parallel()
	for name, db := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var runs atomic.Int32
			jobs := []lifecycle.Job{{Name: "tick", Interval: time.Hour, Run: func(context.Context, *lifecycle.JobState) (string, error) {
				runs.Add(1)
				return "ok", nil
			}}}
			sched, err := lifecycle.NewScheduler(clock.Real{}, slog.New(slog.DiscardHandler), db, testLocker(t, db), "test", jobs)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sched.Run(ctx) }()
			defer func() {
				cancel()
				<-done
			}()
			deadline := time.Now().Add(5 * time.Second)
			for runs.Load() < 1 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if runs.Load() != 1 {
				t.Fatalf("first run: %d runs", runs.Load())
			}
			if err := sched.SetInterval("tick", 20*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			for runs.Load() < 3 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if runs.Load() < 3 {
				t.Fatalf("after shortening the interval to 20ms: %d runs in 5s", runs.Load())
			}
			if got := sched.Interval("tick"); got != 20*time.Millisecond {
				t.Errorf("Interval = %v", got)
			}
			if err := sched.SetInterval("nope", time.Second); !errors.Is(err, lifecycle.ErrUnknownJob) {
				t.Errorf("unknown job: %v", err)
			}
			if err := sched.SetInterval("tick", 0); err == nil {
				t.Error("a zero interval was accepted")
			}
		})
	}
}
