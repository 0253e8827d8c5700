package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/recovery"
)

// Locker makes a job run on one replica at a time. TryLock returns ok
// false when another holder has the lock on name. While the lock is held,
// held (derived from ctx) stays live; it ends with cause ErrLockLost when
// the lock is lost (it could not be renewed, or another holder took it
// after it lapsed), and the holder must stop. release frees the lock.
// store.JobLocker implements it with leases in the database, shared by
// every replica.
type Locker interface {
	TryLock(ctx context.Context, name string) (held context.Context, release func(), ok bool, err error)
}

// ErrLockLost is the cause of a held lock's context ending because the
// lock was lost.
var ErrLockLost = errors.New("lifecycle: lock lost")

// Job is one scheduled task. Run gets the job's stored state (its cursor)
// and returns a one-line outcome; a returned cursor replaces the stored one.
type Job struct {
	Name     string
	Interval time.Duration
	Run      func(ctx context.Context, st *JobState) (detail string, err error)
	// Resume makes the first run after start wait until one interval
	// after the last recorded successful run, so a restart does not redo
	// a long job (a summary over every certificate) that is still fresh.
	Resume bool
}

// Scheduler runs jobs at their intervals, each under its lock, and
// records every run's outcome in the store and the log. With several
// replicas each runs a Scheduler on the shared store: a scheduled run
// takes the job's lock and then runs only if no replica started the job
// less than an interval ago, so a job runs once per interval across them.
type Scheduler struct {
	clock  clock.Clock
	log    *slog.Logger
	store  JobStore
	locker Locker
	// replica names this replica in the runs it records.
	replica string
	jobs    []Job
	// triggers let a job be run now (an API call, a raised alert).
	triggers map[string]chan struct{}
	// intervals hold each job's current interval (SetInterval changes
	// it); retimed wakes the job's loop to restart its ticker.
	intervals map[string]*atomic.Int64
	retimed   map[string]chan struct{}
}

// NewScheduler returns a scheduler for jobs, recording its runs as
// replica's.
func NewScheduler(clk clock.Clock, log *slog.Logger, st JobStore, locker Locker, replica string, jobs []Job) (*Scheduler, error) {
	if clk == nil || log == nil || st == nil || locker == nil || replica == "" {
		return nil, errors.New("lifecycle: scheduler needs a clock, logger, store, locker and replica name")
	}
	s := &Scheduler{clock: clk, log: log, store: st, locker: locker, replica: replica, jobs: jobs, triggers: map[string]chan struct{}{},
		intervals: map[string]*atomic.Int64{}, retimed: map[string]chan struct{}{}}
	for _, j := range jobs {
		if j.Name == "" || j.Interval <= 0 || j.Run == nil {
			return nil, fmt.Errorf("lifecycle: job %q needs a name, a positive interval and a function", j.Name)
		}
		if _, dup := s.triggers[j.Name]; dup {
			return nil, fmt.Errorf("lifecycle: job %q is defined twice", j.Name)
		}
		s.triggers[j.Name] = make(chan struct{}, 1)
		s.retimed[j.Name] = make(chan struct{}, 1)
		s.intervals[j.Name] = new(atomic.Int64)
		s.intervals[j.Name].Store(int64(j.Interval))
	}
	return s, nil
}

// Interval returns job name's current interval (0 for an unknown job).
func (s *Scheduler) Interval(name string) time.Duration {
	if iv, ok := s.intervals[name]; ok {
		return time.Duration(iv.Load())
	}
	return 0
}

// SetInterval changes job name's interval while the scheduler runs: the
// job next runs one new interval from now (or when triggered).
func (s *Scheduler) SetInterval(name string, d time.Duration) error {
	iv, ok := s.intervals[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	if d <= 0 {
		return fmt.Errorf("lifecycle: job %q needs a positive interval, not %v", name, d)
	}
	if time.Duration(iv.Swap(int64(d))) != d {
		select {
		case s.retimed[name] <- struct{}{}:
		default:
		}
	}
	return nil
}

// ErrUnknownJob marks a job name the scheduler does not have.
var ErrUnknownJob = errors.New("lifecycle: unknown job")

// Trigger asks job name to run as soon as possible.
func (s *Scheduler) Trigger(name string) error {
	ch, ok := s.triggers[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	select {
	case ch <- struct{}{}:
	default:
	}
	return nil
}

// Run runs every job at start unless a replica ran it less than an
// interval ago, then at its interval or when triggered, until ctx ends.
// A scheduled run skipped because another replica ran the job moves this
// replica's next attempt to one interval after that run, so the job keeps
// its interval when the replica that ran it stops.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, j := range s.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			period := s.Interval(j.Name)
			t := time.NewTicker(period)
			defer t.Stop()
			reset := func(d time.Duration) {
				period = d
				t.Reset(d)
			}
			// wait returns when the job is due: scheduled is false for a
			// trigger; ok is false when ctx ended.
			wait := func() (scheduled, ok bool) {
				for {
					select {
					case <-ctx.Done():
						return false, false
					case <-t.C:
						if iv := s.Interval(j.Name); period != iv {
							reset(iv)
						}
						return true, true
					case <-s.triggers[j.Name]:
						return false, true
					case <-s.retimed[j.Name]:
						reset(s.Interval(j.Name))
					}
				}
			}
			scheduled := true
			if d := s.untilDue(ctx, j); d > 0 {
				s.log.Debug("job resumes its schedule", "job", j.Name, "due_in", d.Round(time.Second))
				reset(d)
				var ok bool
				if scheduled, ok = wait(); !ok {
					return
				}
			}
			for {
				// The job records a panic as a failed run; this guard
				// keeps the loop alive if the recording itself panics.
				recovery.Do(s.log, "job "+j.Name, func() {
					_, next, err := s.run(ctx, j, scheduled)
					if err != nil && ctx.Err() == nil {
						s.log.Error("job could not run", "job", j.Name, "err", err)
					}
					if next > 0 {
						reset(next)
					}
				})
				var ok bool
				if scheduled, ok = wait(); !ok {
					return
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// untilDue returns how long a Resume job waits at start: until one
// interval after its last recorded successful run (never more than one
// interval, whatever the clocks say); 0 to run now.
func (s *Scheduler) untilDue(ctx context.Context, j Job) time.Duration {
	if !j.Resume {
		return 0
	}
	st, err := s.store.GetJob(ctx, j.Name)
	if err != nil || st.Outcome != OutcomeOK || st.StartedAt.IsZero() {
		return 0
	}
	every := s.Interval(j.Name)
	return min(st.StartedAt.Add(every).Sub(s.clock.Now()), every)
}

// dueSlack is how much short of one interval since the last run a
// scheduled run still finds the job due: replicas' tickers, and one
// replica's from run to run, drift by the time taking the lock and
// starting take. 5% of the interval, at least 2 s, at most half of it.
func dueSlack(every time.Duration) time.Duration {
	return min(max(every/20, 2*time.Second), every/2)
}

// RunJob runs job name now, under its lock, and returns its recorded
// state; Outcome is OutcomeSkipped when another runner holds the lock.
// Triggers (a raised alert, a started rotation, jobs run) come here.
func (s *Scheduler) RunJob(ctx context.Context, name string) (*JobState, error) {
	j, err := s.job(name)
	if err != nil {
		return nil, err
	}
	st, _, err := s.run(ctx, j, false)
	return st, err
}

// RunDue is a scheduled run of job name: as RunJob, but skipped as well
// (OutcomeSkipped, not recorded) when any replica started the job less
// than an interval ago (less a small slack).
func (s *Scheduler) RunDue(ctx context.Context, name string) (*JobState, error) {
	j, err := s.job(name)
	if err != nil {
		return nil, err
	}
	st, _, err := s.run(ctx, j, true)
	return st, err
}

func (s *Scheduler) job(name string) (Job, error) {
	i := slices.IndexFunc(s.jobs, func(j Job) bool { return j.Name == name })
	if i < 0 {
		return Job{}, fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	return s.jobs[i], nil
}

// run runs j under its lock; with scheduled, only when it is due. A run
// skipped because it ran recently returns how long until it is due.
func (s *Scheduler) run(ctx context.Context, j Job, scheduled bool) (*JobState, time.Duration, error) {
	name, every := j.Name, s.Interval(j.Name)
	held, release, ok, err := s.locker.TryLock(ctx, name)
	if err != nil {
		return nil, 0, fmt.Errorf("lifecycle: lock job %s: %w", name, err)
	}
	if !ok {
		s.log.Debug("job skipped: running elsewhere", "job", name)
		return &JobState{Name: name, Outcome: OutcomeSkipped, Interval: every, Detail: "running on another replica"}, 0, nil
	}
	defer release()
	st, err := s.store.GetJob(held, name)
	if err != nil {
		st = &JobState{Name: name}
	}
	now := s.clock.Now().UTC()
	// A Resume job's failed run does not count (as at start, untilDue).
	counts := !st.StartedAt.IsZero() && (!j.Resume || st.Outcome == OutcomeOK)
	if since := now.Sub(st.StartedAt); scheduled && counts && since > -every && since < every-dueSlack(every) {
		s.log.Debug("job skipped: ran recently", "job", name, "replica", st.Replica, "ago", since.Round(time.Second))
		skipped := &JobState{Name: name, Outcome: OutcomeSkipped, Interval: every, StartedAt: st.StartedAt, Replica: st.Replica,
			Detail: fmt.Sprintf("ran on %s %s ago", st.Replica, since.Round(time.Second))}
		return skipped, min(every-since, every), nil
	}
	st.Interval = every
	st.Idle = false
	st.StartedAt = now
	st.Replica = s.replica
	start := time.Now()
	var detail string
	// A panic (one bad record) fails this run, recorded like any error;
	// the scheduler and every other job keep running.
	runErr := recovery.CallLogged(s.log, "job "+name, func() (err error) {
		detail, err = j.Run(held, st)
		return err
	})
	if ctx.Err() == nil && errors.Is(context.Cause(held), ErrLockLost) {
		// Another replica may be running it now: its record stands.
		s.log.Error("job stopped: its lock was lost", "job", name, "elapsed", time.Since(start).Round(time.Millisecond), "err", context.Cause(held))
		return &JobState{Name: name, Outcome: OutcomeError, Interval: every, StartedAt: st.StartedAt, Replica: s.replica,
			Detail: "stopped: the job's lock was lost, another replica may run it"}, 0, nil
	}
	st.FinishedAt = s.clock.Now().UTC()
	st.Detail = detail
	st.Outcome = OutcomeOK
	if runErr != nil {
		st.Outcome = OutcomeError
		if detail != "" {
			st.Detail = detail + "; "
		}
		st.Detail += runErr.Error()
		s.log.Error("job failed", "job", name, "elapsed", time.Since(start).Round(time.Millisecond), "detail", st.Detail)
	} else {
		level := slog.LevelInfo
		if st.Idle {
			level = slog.LevelDebug
		}
		s.log.Log(ctx, level, "job ran", "job", name, "elapsed", time.Since(start).Round(time.Millisecond), "outcome", detail)
	}
	if err := s.store.PutJob(context.WithoutCancel(ctx), st); err != nil {
		return st, 0, err
	}
	return st, 0, nil
}

// canRead refuses p unless it may see the jobs' runs: their outcomes are
// shown to every cert:read holder, scoped or not.
func canRead(p authz.Principal) error {
	if !p.Can(authz.PermCertRead) {
		return authz.Refuse(authz.RuleRole, "%s has no role granting %s", p.Name, authz.PermCertRead)
	}
	return nil
}

// Jobs returns every job's last recorded run, with how many runs the
// history holds of the last RecentRunsWindow.
func (s *Scheduler) Jobs(ctx context.Context, p authz.Principal) ([]*JobState, error) {
	if err := canRead(p); err != nil {
		return nil, err
	}
	// The run history is extra: the last runs are listed without it.
	recent, err := s.store.CountJobRuns(ctx, s.clock.Now().Add(-RecentRunsWindow))
	if err != nil {
		s.log.Warn("jobs: count recent runs", "err", err)
	}
	out := make([]*JobState, 0, len(s.jobs))
	for _, j := range s.jobs {
		st, err := s.store.GetJob(ctx, j.Name)
		if err != nil {
			st = &JobState{Name: j.Name, Outcome: "never run"}
		}
		st.Interval = s.Interval(j.Name)
		if recent != nil {
			n := recent[j.Name]
			st.RecentRuns = &n
		}
		out = append(out, st)
	}
	return out, nil
}

// Runs returns the recorded runs q selects, newest first: of one job of
// this scheduler (ErrUnknownJob for another name), or of every job.
func (s *Scheduler) Runs(ctx context.Context, p authz.Principal, q JobRunQuery) ([]JobRun, error) {
	if err := canRead(p); err != nil {
		return nil, err
	}
	if q.Job != "" {
		if _, err := s.job(q.Job); err != nil {
			return nil, err
		}
	}
	if q.Limit < 1 || q.Limit > RunHistoryMax {
		return nil, fmt.Errorf("lifecycle: job runs: limit %d, want 1 to %d", q.Limit, RunHistoryMax)
	}
	runs, err := s.store.ListJobRuns(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: job runs: %w", err)
	}
	return runs, nil
}

// RunAs runs job name now for principal p. A job works across every CA,
// profile and name, so p needs ca:manage with no scope.
func (s *Scheduler) RunAs(ctx context.Context, p authz.Principal, name string) (*JobState, error) {
	if !p.Everywhere(authz.PermCAManage) {
		if p.Can(authz.PermCAManage) {
			return nil, authz.Refuse(authz.RuleScope, "%s holds %s only within a scope; a job works across every CA, so running one needs it unscoped", p.Name, authz.PermCAManage)
		}
		return nil, authz.Refuse(authz.RuleRole, "%s has no role granting %s", p.Name, authz.PermCAManage)
	}
	if _, err := s.job(name); err != nil {
		return nil, err
	}
	started := s.clock.Now().UTC()
	st, err := s.RunJob(ctx, name)
	var outcome error
	details := map[string]any{"started_at": started}
	switch {
	case err != nil:
		outcome = err
	case st.Outcome == OutcomeError:
		outcome = errors.New(st.Detail)
	}
	if st != nil {
		details["outcome"], details["detail"] = st.Outcome, st.Detail
	}
	if aerr := recordAction(ctx, s.store, p, s.clock.Now(), ActionJobRun, name, outcome, details); aerr != nil {
		return st, errors.Join(err, aerr)
	}
	return st, err
}

// Intervals configure the standard jobs.
type Intervals struct {
	ExpiryCheck, Delivery, Renewal, Supersede, Rotation time.Duration
}

// Jobs returns the lifecycle's standard jobs.
func (s *Service) Jobs(iv Intervals) []Job {
	def := func(d, v time.Duration) time.Duration {
		if d <= 0 {
			return v
		}
		return d
	}
	return []Job{
		{Name: "expiry-check", Interval: def(iv.ExpiryCheck, time.Hour), Run: func(ctx context.Context, st *JobState) (string, error) {
			now := s.cfg.Clock.Now().UTC()
			res, err := s.CheckExpiry(ctx, st.Cursor)
			if err == nil {
				st.Cursor = now
			}
			st.Idle = res.Raised == 0
			return fmt.Sprintf("%d certificates examined, %d CAs, %d alerts raised", res.Examined, res.CAs, res.Raised), err
		}},
		{Name: "alert-delivery", Interval: def(iv.Delivery, 15*time.Second), Run: func(ctx context.Context, st *JobState) (string, error) {
			res, err := s.Deliver(ctx)
			st.Idle = res.Sent+res.Retrying+res.Failed == 0
			return fmt.Sprintf("%d sent, %d to retry, %d failed", res.Sent, res.Retrying, res.Failed), err
		}},
		{Name: "renewal", Interval: def(iv.Renewal, 10*time.Minute), Run: func(ctx context.Context, st *JobState) (string, error) {
			res, err := s.RenewDue(ctx)
			st.Idle = res.Renewed+res.Failed == 0
			detail := fmt.Sprintf("%d renewed, %d failed", res.Renewed, res.Failed)
			if res.Elsewhere > 0 {
				detail += fmt.Sprintf(", %d renewed by another replica meanwhile", res.Elsewhere)
			}
			return detail, err
		}},
		{Name: "supersede", Interval: def(iv.Supersede, 10*time.Minute), Run: func(ctx context.Context, st *JobState) (string, error) {
			n, err := s.SupersedeDue(ctx)
			st.Idle = n == 0
			return fmt.Sprintf("%d superseded certificates revoked", n), err
		}},
		{Name: "rotation", Interval: def(iv.Rotation, 10*time.Second), Run: func(ctx context.Context, st *JobState) (string, error) {
			n, err := s.ProcessRotations(ctx)
			st.Idle = n == 0
			return fmt.Sprintf("%d running rotations advanced", n), err
		}},
	}
}
