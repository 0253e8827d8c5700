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

// Locker makes a job run once even when several replicas run it: TryLock
// returns ok false when another holder has the lock. The in-process
// LocalLocker serves one replica; a database-backed one (PostgreSQL
// advisory locks) serves many.
type Locker interface {
	TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error)
}

// LocalLocker is a Locker for one process.
type LocalLocker struct {
	mu   sync.Mutex
	held map[string]bool
}

// TryLock implements Locker.
func (l *LocalLocker) TryLock(_ context.Context, name string) (func(), bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[string]bool{}
	}
	if l.held[name] {
		return nil, false, nil
	}
	l.held[name] = true
	return func() {
		l.mu.Lock()
		delete(l.held, name)
		l.mu.Unlock()
	}, true, nil
}

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
// records every run's outcome in the store and the log.
type Scheduler struct {
	clock  clock.Clock
	log    *slog.Logger
	store  JobStore
	locker Locker
	jobs   []Job
	// triggers let a job be run now (an API call, a raised alert).
	triggers map[string]chan struct{}
	// intervals hold each job's current interval (SetInterval changes
	// it); retimed wakes the job's loop to restart its ticker.
	intervals map[string]*atomic.Int64
	retimed   map[string]chan struct{}
}

// NewScheduler returns a scheduler for jobs.
func NewScheduler(clk clock.Clock, log *slog.Logger, st JobStore, locker Locker, jobs []Job) (*Scheduler, error) {
	if clk == nil || log == nil || st == nil || locker == nil {
		return nil, errors.New("lifecycle: scheduler needs a clock, logger, store and locker")
	}
	s := &Scheduler{clock: clk, log: log, store: st, locker: locker, jobs: jobs, triggers: map[string]chan struct{}{},
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

// Run runs every job once at start, then at its interval or when
// triggered, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, j := range s.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(s.Interval(j.Name))
			defer t.Stop()
			// wait returns true when the job is due, false when ctx ended.
			wait := func() bool {
				for {
					select {
					case <-ctx.Done():
						return false
					case <-t.C:
						return true
					case <-s.triggers[j.Name]:
						return true
					case <-s.retimed[j.Name]:
						t.Reset(s.Interval(j.Name))
					}
				}
			}
			if d := s.untilDue(ctx, j); d > 0 {
				s.log.Debug("job resumes its schedule", "job", j.Name, "due_in", d.Round(time.Second))
				t.Reset(d)
				if !wait() {
					return
				}
				t.Reset(s.Interval(j.Name))
			}
			for {
				// RunJob records a panicking job as failed; this guard
				// keeps the loop alive if the recording itself panics.
				recovery.Do(s.log, "job "+j.Name, func() {
					if _, err := s.RunJob(ctx, j.Name); err != nil && ctx.Err() == nil {
						s.log.Error("job could not run", "job", j.Name, "err", err)
					}
				})
				if !wait() {
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

// RunJob runs job name now, under its lock, and returns its recorded
// state; Outcome is OutcomeSkipped when another runner holds the lock.
func (s *Scheduler) RunJob(ctx context.Context, name string) (*JobState, error) {
	i := slices.IndexFunc(s.jobs, func(j Job) bool { return j.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	j := s.jobs[i]
	unlock, ok, err := s.locker.TryLock(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: lock job %s: %w", name, err)
	}
	if !ok {
		s.log.Debug("job skipped: running elsewhere", "job", name)
		return &JobState{Name: name, Outcome: OutcomeSkipped, Interval: s.Interval(name)}, nil
	}
	defer unlock()
	st, err := s.store.GetJob(ctx, name)
	if err != nil {
		st = &JobState{Name: name}
	}
	st.Interval = s.Interval(name)
	st.Idle = false
	st.StartedAt = s.clock.Now().UTC()
	start := time.Now()
	var detail string
	// A panic (one bad record) fails this run, recorded like any error;
	// the scheduler and every other job keep running.
	runErr := recovery.CallLogged(s.log, "job "+name, func() (err error) {
		detail, err = j.Run(ctx, st)
		return err
	})
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
		return st, err
	}
	return st, nil
}

// Jobs returns every job's last recorded run.
func (s *Scheduler) Jobs(ctx context.Context, p authz.Principal) ([]*JobState, error) {
	if !p.Can(authz.PermCertRead) {
		return nil, authz.Refuse(authz.RuleRole, "%s has no role granting %s", p.Name, authz.PermCertRead)
	}
	out := make([]*JobState, 0, len(s.jobs))
	for _, j := range s.jobs {
		st, err := s.store.GetJob(ctx, j.Name)
		if err != nil {
			st = &JobState{Name: j.Name, Outcome: "never run"}
		}
		st.Interval = s.Interval(j.Name)
		out = append(out, st)
	}
	return out, nil
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
	if !slices.ContainsFunc(s.jobs, func(j Job) bool { return j.Name == name }) {
		return nil, fmt.Errorf("%w %q", ErrUnknownJob, name)
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
			return fmt.Sprintf("%d renewed, %d failed", res.Renewed, res.Failed), err
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
