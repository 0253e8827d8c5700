package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// groupQueue is the queue in front of a group-commit writer: callers send
// items, one goroutine takes everything queued (up to maxBatch) and hands
// it to write, so items that arrive while a commit is in flight form the
// next batch; under load the writer also waits a little for more (see
// lingerPolicy), while a lone caller pays one commit and no wait.
type groupQueue[T any] struct {
	ch    chan T
	write func([]T)
	// panicked answers an item of a batch whose write panicked (unless
	// answered already): the writer goes on, and no caller waits forever
	// or takes the process down with it.
	panicked func(item T, v any)
	log      *slog.Logger
	name     string
	lingerPolicy
	// mu orders stop after every send in progress: senders hold it
	// shared, stop takes it exclusively before closing ch.
	mu      sync.RWMutex
	closed  bool
	stopped chan struct{}
}

// lingerPolicy is when a groupQueue's writer waits for more items before
// it writes a batch: never with linger zero; otherwise when the batch
// before held more than one item (callers are arriving together) or
// coming (if set) reports items on their way, for at most linger after
// it took the batch's first item. A lone caller, whose batches hold one
// item, is never held back.
type lingerPolicy struct {
	linger time.Duration
	coming func() bool
}

func newGroupQueue[T any](log *slog.Logger, name string, lp lingerPolicy, write func([]T), panicked func(T, any)) *groupQueue[T] {
	q := &groupQueue[T]{ch: make(chan T, queueDepth), write: write, panicked: panicked, log: log, name: name, lingerPolicy: lp, stopped: make(chan struct{})}
	go q.run()
	return q
}

// send queues v, or returns errClosed after stop or ctx's error if ctx
// ends while the queue is full.
func (q *groupQueue[T]) send(ctx context.Context, v T) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return errClosed
	}
	select {
	case q.ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop lets the writer finish everything queued and waits for it.
func (q *groupQueue[T]) stop() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.stopped
}

func (q *groupQueue[T]) run() {
	defer close(q.stopped)
	batch := make([]T, 0, maxBatch)
	// The linger of the batch being formed: reset when it starts, stopped
	// when the batch is written (since Go 1.23 a stopped timer's channel
	// delivers nothing stale).
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	prev := 0 // the size of the batch before
	for first := range q.ch {
		batch = append(batch[:0], first)
		lingering := false
	fill:
		for len(batch) < maxBatch {
			select {
			case v, ok := <-q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, v)
				continue
			default:
			}
			if q.linger <= 0 || !(prev > 1 || q.coming != nil && q.coming()) {
				break fill
			}
			if !lingering {
				lingering = true
				timer.Reset(q.linger)
			}
			select {
			case v, ok := <-q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, v)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		prev = len(batch)
		q.writeGuarded(batch)
		clear(batch)
	}
}

// A groupCall is a caller's side of a group-commit writer: its context,
// the answer, and a state that decides, exactly once, whether the writer
// takes the call or its caller gives up on it.
type groupCall struct {
	ctx   context.Context
	state atomic.Int32 // callQueued, callTaken or callAbandoned
	done  chan error   // buffered: the writer never blocks answering
}

const (
	callQueued int32 = iota
	callTaken
	callAbandoned
)

func newGroupCall(ctx context.Context) groupCall {
	return groupCall{ctx: ctx, done: make(chan error, 1)}
}

// wait returns the writer's answer. If the caller's context ends before
// the writer has taken the call, it returns abandoned and the context's
// error, and the writer never acts on the call; once taken, it waits
// for the answer, so the answer is never a guess.
func (c *groupCall) wait() (abandoned bool, err error) {
	select {
	case err := <-c.done:
		return false, err
	case <-c.ctx.Done():
		if c.state.CompareAndSwap(callQueued, callAbandoned) {
			return true, c.ctx.Err()
		}
		return false, <-c.done
	}
}

// take claims the call for the writer. It reports false for a call its
// caller abandoned, and for one whose context has ended, which it answers
// with wrap(the context's error).
func (c *groupCall) take(wrap func(error) error) bool {
	if !c.state.CompareAndSwap(callQueued, callTaken) {
		return false
	}
	if err := c.ctx.Err(); err != nil {
		c.done <- wrap(err)
		return false
	}
	return true
}

// answerOnce answers the call unless it has been answered already.
func (c *groupCall) answerOnce(err error) {
	select {
	case c.done <- err:
	default:
	}
}

// writeGuarded is write that survives a panic.
func (q *groupQueue[T]) writeGuarded(batch []T) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		q.log.Error(q.name+" panicked; its callers get an error", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		for _, it := range batch {
			q.panicked(it, v)
		}
	}()
	q.write(batch)
}

// A txGroup group-commits SQLite's small write transactions: the ACME
// order path's state changes and nonce uses, several per order, each of
// which would otherwise pay SQLite's one writer a commit and an fsync of
// its own (synchronous=FULL). Every caller's function runs in its own
// savepoint of one shared transaction, in arrival order, so it sees the
// writes of the callers before it exactly as if the transactions had run
// one after the other; a function that fails is rolled back to its
// savepoint alone. The transaction commits once and every caller whose
// function succeeded gets the commit's outcome. PostgreSQL has concurrent
// writers and group-commits in the server; it runs each transaction as
// it comes (DB.groupTx).
type txGroup struct {
	db *DB
	q  *groupQueue[*txJob]
}

type txJob struct {
	groupCall
	fn func(context.Context, *sql.Tx) error
}

func newTxGroup(db *DB) *txGroup {
	g := &txGroup{db: db}
	// A panic in a caller's function or the driver: the deferred
	// Rollback in write has ended the transaction. The ACME order path
	// writes about eleven times an order, one caller at a time per order:
	// after a batch of several the writer waits for company as the
	// certificate group commit does (nothing announces these writes), which
	// about halved the commits of BenchmarkACMEOrders and cut its CPU per
	// order by about a tenth (in seven of nine side-by-side runs).
	g.q = newGroupQueue(db.logger, "write group commit", lingerPolicy{linger: db.d.commitLinger}, g.commit, func(j *txJob, v any) {
		j.answerOnce(fmt.Errorf("store: the group transaction failed (panic: %v)", v))
	})
	return g
}

// do runs fn in the next group transaction and returns once that has
// committed (nil) or fn or the transaction failed (the error; nothing fn
// wrote is kept). fn gets ctx without its cancellation: a statement
// interrupted mid-transaction would make SQLite roll back the whole group.
// If ctx ends while the job is queued, fn never runs and do returns ctx's
// error; once fn has started, do waits for the outcome, so the answer is
// never a guess.
func (g *txGroup) do(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if ctx.Value(inGroupKey{}) != nil {
		// Queued behind the transaction it runs in, it would wait for ever.
		return errNestedGroup
	}
	j := &txJob{groupCall: newGroupCall(ctx), fn: fn}
	if err := g.q.send(ctx, j); err != nil {
		return err
	}
	_, err := j.wait()
	return err
}

// inGroupKey marks the context a function runs with inside the group.
type inGroupKey struct{}

var errNestedGroup = errors.New("store: a write group function asked for another group transaction (it would wait for itself); use the transaction it was given")

const (
	sqlSavepoint  = "SAVEPOINT grp"
	sqlRollbackTo = "ROLLBACK TO grp"
	sqlRelease    = "RELEASE grp"
)

func (g *txGroup) commit(batch []*txJob) {
	live := make([]*txJob, 0, len(batch))
	for _, j := range batch {
		if j.take(func(err error) error { return err }) {
			live = append(live, j)
		}
	}
	if len(live) == 0 {
		return
	}
	results, err := g.write(live)
	for i, j := range live {
		switch {
		case results != nil && results[i] != nil:
			j.done <- results[i]
		case err != nil:
			j.done <- err
		default:
			j.done <- nil
		}
	}
}

// write runs live's functions in one transaction, each in a savepoint, and
// commits. results[i] is live[i]'s own failure; err is the transaction's
// (BEGIN, a savepoint that could not be rolled back or released, COMMIT),
// which every function that did not fail on its own shares.
func (g *txGroup) write(live []*txJob) (results []error, err error) {
	bg := context.Background()
	tx, err := g.db.write.BeginTx(bg, nil)
	if err != nil {
		return nil, fmt.Errorf("store: begin group transaction: %w", err)
	}
	defer tx.Rollback()
	// Bound to the transaction once, not per job.
	ptx := g.db.wr.tx(tx)
	savepoint, rollbackTo, release := ptx.bind(bg, sqlSavepoint), ptx.bind(bg, sqlRollbackTo), ptx.bind(bg, sqlRelease)
	results = make([]error, len(live))
	for i, j := range live {
		if _, err := savepoint.ExecContext(bg); err != nil {
			return nil, fmt.Errorf("store: group transaction: %w", err)
		}
		jerr := j.fn(context.WithValue(context.WithoutCancel(j.ctx), inGroupKey{}, true), tx)
		if jerr == nil {
			// As inTx: a caller gone before its commit keeps nothing.
			jerr = j.ctx.Err()
		}
		if jerr != nil {
			results[i] = jerr
			if _, err := rollbackTo.ExecContext(bg); err != nil {
				// SQLite rolled the whole transaction back (an I/O
				// error, a full disk): nothing of the group is kept.
				// jerr is this caller's own; the others share err, so
				// jerr is named, not wrapped (an ErrConflict of one
				// caller is not the others').
				return results, fmt.Errorf("store: group transaction rolled back after a failed write (%v): %w", jerr, err)
			}
		}
		if _, err := release.ExecContext(bg); err != nil {
			return results, fmt.Errorf("store: group transaction: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return results, fmt.Errorf("store: commit group transaction: %w", err)
	}
	return results, nil
}

// groupTx runs fn in a write transaction: on SQLite in the next group
// transaction (txGroup), elsewhere in one of its own. fn must use the
// context it is given, not its caller's.
func (db *DB) groupTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if db.group != nil {
		return db.group.do(ctx, fn)
	}
	return db.inTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
}

// execWrite runs one write statement of the hot path and returns the rows
// it affected: on SQLite in the next group transaction, elsewhere on its
// own (autocommit).
func (db *DB) execWrite(ctx context.Context, q string, args ...any) (int64, error) {
	if db.group == nil {
		return execAffected(ctx, db.wr, q, args...)
	}
	var n int64
	err := db.group.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		n, err = execAffected(ctx, db.wr.tx(tx), q, args...)
		return err
	})
	return n, err
}
